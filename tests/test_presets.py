"""Serving, evaluation and training's eval view share one preprocessing definition."""

import cv2
import numpy as np
import torch

from maskapp.training.evaluate import predict_rgb
from maskapp.training.train import eval_batch
from maskapp.vision.classify import MaskClassifier
from maskapp.vision.model import BaselineCNN
from maskapp.vision.presets import InputSpec, bgr_crops_to_batch, resize_square, to_model_input
from tests.conftest import TWO_CLASS, real_images


def _real_bgr(count=3):
    return [cv2.imread(str(p)) for p in real_images(TWO_CLASS, "with_mask", count)]


def test_serving_and_evaluation_preprocess_identically():
    spec = InputSpec(input_size=128)
    crops = _real_bgr()
    served = bgr_crops_to_batch(crops, spec)
    evaluated = torch.stack([to_model_input(cv2.cvtColor(c, cv2.COLOR_BGR2RGB), spec) for c in crops])
    trained_eval_view = eval_batch(
        np.stack([resize_square(cv2.cvtColor(crops[0], cv2.COLOR_BGR2RGB), spec)]), spec
    )
    assert torch.equal(served, evaluated)
    assert torch.equal(trained_eval_view[0], served[0])


def test_serving_and_evaluation_give_the_same_probabilities():
    spec = InputSpec(input_size=64)
    torch.manual_seed(0)
    classifier = MaskClassifier(BaselineCNN(2, input_size=64), ("with_mask", "without_mask"), spec, "cnn")
    crops = _real_bgr(4)
    served = np.array([[p.probs["with_mask"], p.probs["without_mask"]] for p in classifier.classify(crops)])
    evaluated = predict_rgb(classifier, [cv2.cvtColor(c, cv2.COLOR_BGR2RGB) for c in crops])
    np.testing.assert_allclose(served, evaluated, rtol=1e-6)


def test_preprocessing_uses_the_saved_size_and_normalisation():
    spec = InputSpec(input_size=96, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    tensor = to_model_input(np.full((300, 200, 3), 255, np.uint8), spec)
    assert tensor.shape == (3, 96, 96)
    assert torch.allclose(tensor, torch.full_like(tensor, 2.0))
