"""maskapp: face-mask compliance detection (face detector + MobileNetV2 mask classifier)."""

from pathlib import Path

__version__ = "0.1.0"

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WEIGHTS_DIR = PROJECT_ROOT / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "mask_classifier.pt"
SHARED_DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"
