"""The command line: python -m maskapp {train,evaluate,detect,evaluate-detection,video,bench}.

Every command's flags, what it prints and the JSON it writes are here; the work is in the library.
Flags shared by several commands are defined once (`add_json_flag`, and `add_config_arguments`, which
makes one flag per field of InferenceConfig or TrainConfig, with the field's reason as help).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

# Packages only (their __init__ files import nothing): the modules a command uses are imported when it
# runs (`Command.modules`) and reached as attributes, e.g. `vision.pipeline.load_pipeline`.
from maskapp import media, metrics, training, vision
from maskapp.config import (
    ALLOWED_SOURCES,
    STREAM_TIMEOUT_S,
    InferenceConfig,
    TrainConfig,
    add_config_arguments,
    config_from_args,
)
from maskapp.errors import ImageError, MaskappError, OutputError, VideoError


# --- output ------------------------------------------------------------------------------------------
def write_json(path: Path, data) -> None:
    """`data` as indented JSON at `path` (its folder made when missing); OutputError when not writable."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")
    except OSError as error:
        raise OutputError(f"cannot write {path} ({error.strerror}); allowed: a writable file path") from None


def print_and_write(text: str, json_path: Path | None, data) -> int:
    """A command's report on stdout; `data` as JSON when --json was given. The exit status: 0."""
    print(text)
    if json_path:
        write_json(json_path, data)
    return 0


def make_folder(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(
            f"cannot create folder {folder} ({error.strerror}); allowed: a writable path"
        ) from None
    return folder


# --- shared flags ------------------------------------------------------------------------------------
def add_json_flag(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", type=Path, metavar="FILE", help=f"write {what} to this JSON file")


def add_inference_flags(parser: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    """--weights, --detector, --face-threshold, --margin (or those named in `only`): InferenceConfig."""
    add_config_arguments(parser, InferenceConfig, only)


def inference_config(args: argparse.Namespace) -> InferenceConfig:
    """The flags given, the defaults for the rest; an out-of-range value is a MaskappError."""
    return config_from_args(args, InferenceConfig)


# --- train -------------------------------------------------------------------------------------------
def train_flags(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, TrainConfig)


def run_train(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args, TrainConfig)
    except ValueError as error:
        raise MaskappError(str(error)) from None
    training.train.fit(config)
    return 0


# --- evaluate ----------------------------------------------------------------------------------------
def evaluate_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data_dir", help="folder with one subfolder per class (with_mask/, without_mask/)")
    add_inference_flags(parser, only=("weights",))
    add_json_flag(parser, "the figures")
    parser.add_argument(
        "--split",
        choices=("train", "val", "test"),
        help="only this part of the checkpoint's own seeded split of DATA_DIR (a training folder)",
    )


def run_evaluate(args: argparse.Namespace) -> int:
    config = inference_config(args)
    figures, skipped = training.evaluate.evaluate(args.data_dir, config.weights, args.split)
    text = metrics.report.format_classification(figures)
    if skipped:
        text += f"\nskipped {skipped} unreadable images"
    return print_and_write(text, args.json, figures.to_dict())


# --- detect ------------------------------------------------------------------------------------------
def detect_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files or folders")
    add_json_flag(parser, "the detections")
    parser.add_argument("--annotate", type=Path, metavar="DIR", help="write annotated copies (PNG) here")
    add_inference_flags(parser)


def summary_line(name: str, entries: list[dict]) -> str:
    masked = sum(1 for entry in entries if entry["label"] == "with_mask")
    return f"{name}: {len(entries)} faces, {masked} with mask, {len(entries) - masked} without"


def run_detect(args: argparse.Namespace) -> int:
    config = inference_config(args)  # a bad threshold fails before the slow model loading
    files = media.photos.expand_paths(args.paths)
    annotate_dir = make_folder(args.annotate) if args.annotate else None
    pipeline = vision.pipeline.load_pipeline(config)
    result = media.photos.detect_files(pipeline, files, annotate_dir)
    for path, why in result.skipped:
        print(f"skipped {path}: {why}", file=sys.stderr)
    if not result.results:
        raise ImageError(f"none of the {len(files)} files could be read as an image")
    text = "\n".join(summary_line(name, entries) for name, entries in result.results.items())
    return print_and_write(text, args.json, {"images": result.results})


# --- evaluate-detection ------------------------------------------------------------------------------
def evaluate_detection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", required=True, type=Path, help="folder of images")
    parser.add_argument("--annotations", required=True, type=Path, help="folder of PASCAL VOC .xml files")
    add_json_flag(parser, "the figures")
    add_inference_flags(parser)
    parser.add_argument(
        "--source-pipeline",
        action="store_true",
        help="evaluate the source write-ups' pipeline instead of ours",
    )
    parser.add_argument(
        "--compare-detectors",
        action="store_true",
        help="face AP/recall and speed of every detector at several thresholds (no classifier)",
    )


def run_evaluate_detection(args: argparse.Namespace) -> int:
    if args.compare_detectors:
        rows = metrics.detection.compare_detectors(args.images, args.annotations)
        data = {"detectors": [asdict(row) for row in rows]}
        return print_and_write(metrics.report.format_detector_rows(rows), args.json, data)
    config = inference_config(args)
    if args.source_pipeline:
        pipeline = vision.pipeline.load_source_pipeline(config.weights)
    else:
        pipeline = vision.pipeline.load_pipeline(config)
    report = metrics.detection.evaluate_pipeline(pipeline, args.images, args.annotations)
    return print_and_write(metrics.report.format_detection(report), args.json, report.to_dict())


# --- video -------------------------------------------------------------------------------------------
def video_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE", help=ALLOWED_SOURCES)
    parser.add_argument("--out", type=Path, help="write the annotated video here (.mp4 or .avi)")
    add_json_flag(parser, "per-frame counts")
    add_inference_flags(parser)
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    parser.add_argument(
        "--timeout", type=float, default=STREAM_TIMEOUT_S, help="stream open timeout, seconds"
    )


def run_video(args: argparse.Namespace) -> int:
    frames = media.video.open_source(args.source, args.timeout)  # fail fast, before loading models
    try:
        pipeline = vision.pipeline.load_pipeline(inference_config(args))
    except BaseException:
        frames.close()
        raise
    summary = media.video.process_video(frames, pipeline, args.out, progress=True, max_frames=args.max_frames)
    if summary.frames == 0:
        raise VideoError(
            f"no frame could be read from {frames.source} (it ended, dropped or stayed silent at once); "
            f"allowed: {ALLOWED_SOURCES}"
        )
    lines = [
        f"{summary.frames} frames at {summary.processing_fps:.1f} FPS, {summary.faces_seen} faces seen, "
        f"{summary.masked_seen} with mask"
    ]
    if summary.stopped_early:
        lines.append(f"stopped early: {summary.stopped_early}")
    elif frames.is_stream:
        lines.append(f"the stream ended after {summary.frames} frames (it closed, dropped or went silent)")
    return print_and_write("\n".join(lines), args.json, summary.to_dict())


# --- bench -------------------------------------------------------------------------------------------
def bench_flags(parser: argparse.ArgumentParser) -> None:
    add_json_flag(parser, "the figures")
    parser.add_argument("--repeats", type=int, default=50, help="timed runs per measurement")
    add_inference_flags(parser, only=("weights",))
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="PyTorch threads (the source pipeline's classifier); 1 avoids stalls on a busy CPU",
    )


def run_bench(args: argparse.Namespace) -> int:
    config = inference_config(args)
    report = metrics.bench.run_bench(config.weights, args.repeats, torch_threads=args.torch_threads)
    return print_and_write(metrics.report.format_bench(report), args.json, report.to_dict())


# --- the commands ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Command:
    help: str
    description: str
    add_flags: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    # What `run` uses. These modules import torch, OpenCV, onnxruntime or PyAV (seconds), so this is the
    # one place maskapp imports modules late: when the command runs, never for `--help`, a mistyped flag
    # or a bad value.
    modules: tuple[str, ...]


COMMANDS = {
    "train": Command(
        "train a classifier and write a run directory",
        "Data folders -> seeded split -> augmentation -> training -> a run directory. Every flag is a "
        "TrainConfig field, with its reason.",
        train_flags,
        run_train,
        ("maskapp.training.train",),
    ),
    "evaluate": Command(
        "accuracy, per-class P/R/F1, confusion matrix on face crops",
        "Every image of DATA_DIR is taken as an already-cropped face and preprocessed as serving does.",
        evaluate_flags,
        run_evaluate,
        ("maskapp.training.evaluate", "maskapp.metrics.report"),
    ),
    "detect": Command(
        "find faces and mask labels in images",
        "Faces and mask labels in image files or folders of images.",
        detect_flags,
        run_detect,
        ("maskapp.media.photos", "maskapp.vision.pipeline"),
    ),
    "evaluate-detection": Command(
        "VOC AP@0.5 of the whole pipeline on annotated photos",
        "VOC average precision at IoU 0.5 of the whole pipeline on PASCAL VOC annotated photos, in the "
        "2-class compliance view, over all boxes and over boxes >= 32 px; face AP and recall.",
        evaluate_detection_flags,
        run_evaluate_detection,
        ("maskapp.metrics.detection", "maskapp.metrics.report", "maskapp.vision.pipeline"),
    ),
    "video": Command(
        "annotate a video file, camera or stream",
        "Every frame of a video file, camera or network stream through the pipeline; the annotated "
        "video and per-frame counts are kept up to the end of the source, or to Ctrl-C.",
        video_flags,
        run_video,
        ("maskapp.media.video", "maskapp.vision.pipeline"),
    ),
    "bench": Command(
        "latency and FPS, ours vs the source pipeline",
        "Per-frame latency (p50, p95) and FPS at 640x480 with 1 and 5 faces, for our pipeline and the "
        "source write-ups' pipeline in the same run; each detector alone; the classifier alone per face "
        "at batch 1 and 8.",
        bench_flags,
        run_bench,
        ("maskapp.metrics.bench", "maskapp.metrics.report"),
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m maskapp", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        command.add_flags(subparsers.add_parser(name, help=command.help, description=command.description))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    command = COMMANDS[args.command]
    try:
        for module in command.modules:
            importlib.import_module(module)
        return int(command.run(args) or 0)
    except MaskappError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
