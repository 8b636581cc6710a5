"""PASCAL VOC annotations of faces, read with the three class names (`mask_weared_incorrect` becomes
`mask_worn_incorrectly`), their 2-class compliance view (a mask worn incorrectly counts as no mask), and
the box type detection metrics compare them with."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path

from maskapp.errors import DataError
from maskapp.labels import canonical_label, is_compliant
from maskapp.outputs import why_not_there
from maskapp.results import MASK_LABEL, NO_MASK_LABEL


def compliance_label(label: str) -> str:
    """The 2-class compliance view of a class: with_mask stays, anything else is without_mask."""
    return MASK_LABEL if is_compliant(label) else NO_MASK_LABEL


@dataclass(frozen=True)
class Box:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    label: str
    score: float = 1.0
    face_score: float | None = None  # the detector's confidence alone; ranks the face-only figures

    @property
    def short_side(self) -> float:
        return min(self.box[2] - self.box[0], self.box[3] - self.box[1])


@dataclass(frozen=True)
class ImageAnnotation:
    filename: str
    objects: tuple[Box, ...]
    size: tuple[int, int] | None = None  # width, height from <size>; None where the file gives none

    def compliance_view(self) -> ImageAnnotation:
        """The same boxes with 2-class labels (a mask worn incorrectly is no mask)."""
        return replace(self, objects=tuple(as_compliance(obj) for obj in self.objects))


def as_compliance(box: Box) -> Box:
    return replace(box, label=compliance_label(box.label))


def _annotated_box(obj: ET.Element) -> tuple[float, float, float, float]:
    """A box as drawn by an annotator; an inverted or NaN one would change every AP without a word."""
    box = tuple(float(obj.find(f"bndbox/{k}").text) for k in ("xmin", "ymin", "xmax", "ymax"))
    if not (all(math.isfinite(v) for v in box) and box[0] < box[2] and box[1] < box[3]):
        raise ValueError(f"box {box} is not xmin < xmax and ymin < ymax in finite pixels")
    return box


def parse_annotation(path: Path) -> ImageAnnotation:
    try:
        root = ET.parse(path).getroot()
        objects = tuple(Box(_annotated_box(obj), label(obj)) for obj in root.iter("object"))
        filename = root.findtext("filename") or f"{path.stem}.png"
        size = image_size(root)
    except OSError as error:  # a folder named x.xml, a symlink loop, a file that cannot be read
        raise DataError(
            f"cannot read annotation {path} ({error.strerror or error}); {_ANNOTATIONS_ALLOWED}"
        ) from None
    except (ET.ParseError, AttributeError, TypeError, ValueError, DataError) as error:
        raise DataError(
            f"annotation {path} is not a PASCAL VOC file with numeric bndbox and size fields ({error})"
        ) from None
    return ImageAnnotation(filename, objects, size)


def image_size(root: ET.Element) -> tuple[int, int] | None:
    """Width and height; detection metrics never need them, so a file without them is still read."""
    width, height = root.findtext("size/width"), root.findtext("size/height")
    return (int(width), int(height)) if width and height else None


def label(obj: ET.Element) -> str:
    """The object's class as one of the three names; an unknown class is a DataError naming the allowed."""
    return canonical_label((obj.findtext("name") or "").strip())


_ANNOTATIONS_ALLOWED = (
    "give a folder of PASCAL VOC .xml files, e.g. ../shared/datasets/face-mask-detection-dev/annotations"
)


def load_annotations(folder: str | Path) -> list[ImageAnnotation]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(
            f"annotations folder {folder} {why_not_there(folder, 'folder')}; {_ANNOTATIONS_ALLOWED}"
        )
    paths = sorted(folder.glob("*.xml"))
    if not paths:
        raise DataError(f"annotations folder {folder} has no PASCAL VOC .xml files; {_ANNOTATIONS_ALLOWED}")
    annotations = [parse_annotation(path) for path in paths]
    first_of: dict[str, Path] = {}
    for path, annotation in zip(paths, annotations, strict=True):
        other = first_of.setdefault(annotation.filename, path)
        if other != path:  # the image's faces would count twice, every AP changed without a word
            raise DataError(
                f"annotations {other.name} and {path.name} both describe image {annotation.filename}; "
                "allowed: one annotation file per image"
            )
    return annotations
