"""`python -m maskapp export DIR`: what a device at an entrance (a Raspberry Pi, a Jetson) needs to run
the compliance check with onnxruntime alone: the classifier as ONNX, its classes, preprocessing and
decision rule (model.json), the face detector, and a README that says how to use them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from maskapp import DEFAULT_WEIGHTS, PROJECT_ROOT
from maskapp.config import DETECTOR_THRESHOLDS, FACE_MARGIN
from maskapp.errors import CheckpointError, OutputError
from maskapp.labels import COMPLIANT_LABEL
from maskapp.outputs import require_new_folder, why_unwritable
from maskapp.vision.classify import MaskClassifier
from maskapp.vision.detect import (
    CENTERFACE_FILE,
    CENTERFACE_LABELLED_SHIFT,
    CENTERFACE_NMS_IOU,
    CENTERFACE_PACKAGE,
    CENTERFACE_STRIDE,
    SHARPEN_SIGMA,
    FastCenterFaceDetector,
)
from maskapp.vision.model_files import package_file
from maskapp.vision.onnx_export import INPUT_NAME, OPSET, OUTPUT_NAME, export_onnx
from maskapp.vision.onnx_runtime import free_input_size

EXPORT_FORMAT = "maskapp-edge/1"
CLASSIFIER_FILE = "classifier.onnx"
MODEL_FILE = "model.json"
DETECTOR_FILE = "centerface.onnx"
LIVE_DETECTOR_FILE = "centerface_live_int8.onnx"  # the live detector's int8 network, for a camera
README_FILE = "README.md"
DETECTOR = "centerface"  # the serving default for photos; the only detector shipped as ONNX


def shown_path(path: Path) -> str:
    """A path inside the project relative to it, else the file name (no machine paths in a bundle)."""
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return path.name


def model_description(classifier: MaskClassifier, weights: Path, onnx_bytes: bytes) -> dict:
    """model.json: everything a reimplementation needs besides the two ONNX files."""
    spec = classifier.spec
    return {
        "format": EXPORT_FORMAT,
        "architecture": classifier.architecture,
        "source_weights": shown_path(weights),
        "class_names": list(classifier.class_names),
        "compliant_label": COMPLIANT_LABEL,
        # null: the likeliest class wins; a value: non-compliant once 1 - P(with_mask) reaches it.
        "noncompliant_threshold": classifier.noncompliant_threshold,
        "classifier": {
            "file": CLASSIFIER_FILE,
            "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
            "opset": OPSET,
            "input_name": INPUT_NAME,
            "input_layout": "NCHW float32, RGB, any batch size",
            "output_name": OUTPUT_NAME,
            "output": "logits, one per class name; apply softmax",
            "input_size": spec.input_size,
            "resize_size": spec.resize_size,
            "resize_ratio": spec.resize_ratio,
            "pixel_scale": 1 / 255,
            "mean": list(spec.mean),
            "std": list(spec.std),
        },
        "face_detector": {
            "file": DETECTOR_FILE,
            "name": DETECTOR,
            "input_name": "input.1",
            "score_threshold": DETECTOR_THRESHOLDS[DETECTOR],
            "nms_iou": CENTERFACE_NMS_IOU,
            "stride": CENTERFACE_STRIDE,
            "face_margin": FACE_MARGIN,
            "shown_box_shift": CENTERFACE_LABELLED_SHIFT,
            "live_file": LIVE_DETECTOR_FILE,
            "live_long_side": FastCenterFaceDetector.long_side,
            "live_sharpen": FastCenterFaceDetector.sharpen,
            "sharpen_sigma": SHARPEN_SIGMA,
        },
    }


README = """# Face-mask compliance check for an edge device

Exported by `python -m maskapp export` from `{source_weights}` ({architecture}, classes
{class_list}). Runs with `onnxruntime` (`pip install onnxruntime numpy opencv-python-headless`; on a
Jetson, the `onnxruntime-gpu` wheel for its JetPack) and no PyTorch.

| file | what |
|---|---|
| `{detector_file}` | CenterFace face detector (any input size, multiples of 32) |
| `{live_file}` | the same network in int8 for the live input below (1.5-1.9x faster on an x86 CPU) |
| `{classifier_file}` | the mask classifier: input `{input_name}` N×3×{size}×{size}, output `{output_name}` |
| `{model_file}` | class names, preprocessing and the decision rule as JSON (read it, don't hard-code) |

## 1. Find faces (`{detector_file}`)
Frame as RGB float32 0–255, NCHW, resized to multiples of 32 (the app uses a 640 px long side), input
`input.1`. For live video the app runs it at a {live_long_side} px long side and sharpens the resized
frame first: `frame + {live_sharpen} * (frame - GaussianBlur(frame, sigma {sharpen_sigma}))` (more
out-of-focus faces found); `{live_file}` is calibrated for that input (measured 1.5-1.9x faster than
float on an x86 CPU with AVX-512 VNNI; not measured on ARM), same outputs and decoding. Outputs: heatmap,
scale, offset, landmarks at stride {stride}. A face is a
heatmap cell above {face_threshold}: centre `((x + offset_x + 0.5) * {stride}, (y + offset_y + 0.5) *
{stride})`, size `exp(scale) * {stride}`; then non-maximum suppression at IoU {nms_iou}; scale boxes
back to the frame. To draw or report a face as people box it, move the box down by {shown_box_shift} of
its height; cut the crop (step 2) at the detector's own box, as training did.

## 2. Cut each face
Grow the box by {margin} of its size on every side, make it square on its long side (same centre),
clip it to the frame and cut it out.

## 3. Preprocess each crop (exactly as training did)
1. BGR → RGB.
2. Resize so the short side is {resize_size} px (area interpolation when shrinking, bilinear when
   enlarging; each side `max({size}, round(side * scale))`).
3. Centre-crop {size}×{size} (top = (height − {size}) // 2, left = (width − {size}) // 2).
4. Divide by 255, subtract mean {mean}, divide by std {std} (RGB order).
5. HWC → CHW; stack the crops of a frame into one N×3×{size}×{size} float32 batch.

## 4. Decide
Softmax over the logits gives P(class) in the order {class_list}. {rule}
Compliant means `{compliant}` only: count a face as compliant only when it is `{compliant}`.
"""


def readme_text(description: dict) -> str:
    classifier, detector = description["classifier"], description["face_detector"]
    threshold = description["noncompliant_threshold"]
    compliant = description["compliant_label"]
    if threshold is None:
        rule = "The likeliest class is the label."
    else:
        rule = (
            f"A face is non-compliant once 1 − P({compliant}) ≥ {threshold} (chosen on validation "
            f"data; lower it to miss fewer people); it then takes the likelier of the other classes. "
            f"Otherwise it is `{compliant}`."
        )
    return README.format(
        source_weights=description["source_weights"],
        architecture=description["architecture"],
        class_list=", ".join(f"`{name}`" for name in description["class_names"]),
        detector_file=detector["file"],
        classifier_file=classifier["file"],
        model_file=MODEL_FILE,
        input_name=classifier["input_name"],
        output_name=classifier["output_name"],
        size=classifier["input_size"],
        resize_size=classifier["resize_size"],
        stride=detector["stride"],
        face_threshold=detector["score_threshold"],
        nms_iou=detector["nms_iou"],
        margin=detector["face_margin"],
        shown_box_shift=detector["shown_box_shift"],
        live_file=detector["live_file"],
        live_long_side=detector["live_long_side"],
        live_sharpen=detector["live_sharpen"],
        sharpen_sigma=detector["sharpen_sigma"],
        mean=", ".join(f"{v:.3f}" for v in classifier["mean"]),
        std=", ".join(f"{v:.3f}" for v in classifier["std"]),
        rule=rule,
        compliant=compliant,
    )


def _write(path: Path, data: bytes) -> Path:
    try:
        path.write_bytes(data)
    except OSError as error:
        raise OutputError(f"cannot write {path} ({error.strerror}); allowed: a writable folder") from None
    return path


def export_bundle(
    weights: str | Path = DEFAULT_WEIGHTS, out_dir: str | Path = "export", noncompliant_threshold=None
) -> list[Path]:
    """Write classifier.onnx, model.json, centerface.onnx, centerface_live_int8.onnx and README.md into
    `out_dir`; the paths. CheckpointError when the live detector's int8 network is missing."""
    out_dir, weights = Path(out_dir), Path(weights)
    files = (CLASSIFIER_FILE, MODEL_FILE, DETECTOR_FILE, LIVE_DETECTOR_FILE, README_FILE)
    require_new_folder(out_dir, "an export", files)
    try:  # before the slow export: a folder that cannot be made fails at once
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = why_unwritable(out_dir, error)
        raise OutputError(
            f"cannot create export folder {out_dir} ({reason}); allowed: a writable folder path"
        ) from None
    classifier = MaskClassifier.from_checkpoint(weights, noncompliant_threshold)
    onnx_bytes = export_onnx(classifier)
    description = model_description(classifier, weights, onnx_bytes)
    # The detector with its fixed 32x32 input freed, so a device can run it at its camera's size.
    detector = free_input_size(package_file(CENTERFACE_PACKAGE, CENTERFACE_FILE).read_bytes())
    live_detector = _live_int8_network()
    return [
        _write(out_dir / CLASSIFIER_FILE, onnx_bytes),
        _write(out_dir / MODEL_FILE, (json.dumps(description, indent=2) + "\n").encode()),
        _write(out_dir / DETECTOR_FILE, detector),
        _write(out_dir / LIVE_DETECTOR_FILE, live_detector),
        _write(out_dir / README_FILE, readme_text(description).encode()),
    ]


def _live_int8_network() -> bytes:
    path = FastCenterFaceDetector.int8_file
    if path is None or not path.is_file():
        raise CheckpointError(
            f"the live detector's int8 network {path} is missing; allowed: rebuild it with "
            "`python -m maskapp quantize-detector`, then export"
        )
    return path.read_bytes()
