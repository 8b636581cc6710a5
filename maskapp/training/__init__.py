"""Training the classifier: data folders and splits, augmentation, preparation, the training loop,
evaluation, the run format."""
