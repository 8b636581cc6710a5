"""maskapp: face-mask compliance detection (face detector + MobileNetV2 mask classifier)."""

from pathlib import Path

__version__ = "0.1.0"

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WEIGHTS_DIR = PROJECT_ROOT / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "mask_classifier.pt"
SHARED_DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"
# Street and crowd photos with VOC-annotated faces: detection, tracking, the bench and the sample pictures.
DEV_DATASET = SHARED_DATASETS / "face-mask-detection-dev"
