"""Image files and folders of images through a pipeline (what `python -m maskapp detect` runs):
unreadable files are reported and skipped, never fatal; annotated copies are written on request."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from maskapp.errors import ImageError, OutputError
from maskapp.media.images import IMAGE_SUFFIXES, encode_png, list_images, read_image
from maskapp.outputs import path_text, why_unwritable
from maskapp.results import combine_summaries
from maskapp.vision.anonymize import anonymize_faces, check_mode
from maskapp.vision.draw import annotate


@dataclass(frozen=True)
class DetectRun:
    results: dict[str, list[dict]]  # file name -> detect-JSON entries
    skipped: tuple[tuple[Path, str], ...]  # (file, why)
    summaries: dict[str, dict] = field(default_factory=dict)  # file name -> FrameResult.summary()
    annotated: dict[str, Path] = field(default_factory=dict)  # file name -> its annotated copy
    # Ctrl-C, SIGTERM or SIGHUP during the run: the exception, to raise once the results so far are kept
    interrupted: KeyboardInterrupt | None = None

    def total(self) -> dict:
        return combine_summaries(list(self.summaries.values()))


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given, folders as the images directly inside them; nothing to read is an ImageError."""
    files = []
    for path in paths:
        if path.is_dir():
            found = list_images(path)
            if not found:
                raise ImageError(f"folder {path} has no images; allowed suffixes: {' '.join(IMAGE_SUFFIXES)}")
            files += found
        elif path.exists():
            files.append(path)
        else:
            raise ImageError(f"{path} does not exist; allowed: image files or folders of images")
    return files


def result_keys(files: list[Path]) -> dict[Path, str]:
    """Each input's key in the results: its file name; inputs that share a file name (a/x.png and
    b/x.png) are all keyed by the path as given, so that no key of that name is bare."""
    names = Counter(path.name for path in set(files))
    return {path: path_text(path.name if names[path.name] == 1 else path) for path in files}


def annotated_names(files: list[Path]) -> dict[Path, str]:
    """Each input's annotated copy: STEM.png; inputs that share a stem (a/x.png and b/x.png, x.jpg
    and x.png) get STEM-1.png, STEM-2.png... in input order, never the name of another copy."""
    unique = list(dict.fromkeys(files))
    stems = Counter(path.stem for path in unique)
    names = {path: f"{path.stem}.png" for path in unique if stems[path.stem] == 1}
    taken, numbers = set(names.values()), Counter()
    for path in unique:
        while path not in names:
            numbers[path.stem] += 1
            name = f"{path.stem}-{numbers[path.stem]}.png"
            if name not in taken:
                names[path] = name
                taken.add(name)
    return names


def write_annotated(target: Path, image) -> None:
    """PNG bytes written by Python, not cv2.imwrite: OpenCV ends the process on a name that is not UTF-8
    (the copy of a photo named in another encoding)."""
    try:
        target.write_bytes(encode_png(image))
    except OSError as error:
        reason = why_unwritable(target.parent, error)
        raise OutputError(
            f"cannot write the annotated image {path_text(target)} ({reason}); allowed: a writable folder"
        ) from None


def detect_files(
    pipeline, files: list[Path], annotate_dir: Path | None = None, anonymize: str = "none"
) -> DetectRun:
    """Run the pipeline on each file; unreadable files are reported and skipped, not fatal.
    `anonymize` (none, blur, fill): how the faces are hidden in the annotated copies (box and verdict
    stay); the results themselves are the same in every mode. Ctrl-C (or Terminated) stops the run with
    the files done kept, in `interrupted`: a folder of thousands of photos is not lost to one keypress."""
    check_mode(anonymize)  # before the first file, not after the slow ones
    results, skipped, summaries, annotated = {}, [], {}, {}
    keys, copy_names = result_keys(files), annotated_names(files)
    interrupted = None
    try:
        for path in tqdm(files, desc="detect", unit="image", disable=len(files) < 10):
            try:
                frame = read_image(path)
            except ImageError as error:
                skipped.append((path, str(error)))
                continue
            result = pipeline.process(frame)
            key, entry, summary = keys[path], result.to_json(), result.summary()
            if annotate_dir is not None:  # the copy first: a result is kept only with its copy
                shown = anonymize_faces(frame, result, anonymize)
                write_annotated(annotate_dir / copy_names[path], annotate(shown, result))
                annotated[key] = annotate_dir / copy_names[path]
            results[key], summaries[key] = entry, summary
    except KeyboardInterrupt as stop:
        interrupted = stop
    return DetectRun(results, tuple(skipped), summaries, annotated, interrupted)
