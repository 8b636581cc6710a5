"""Frames to faces and labels: detectors, crops, the classifier and its preprocessing, the pipeline,
drawing."""
