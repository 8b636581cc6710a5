"""The command line: python -m maskapp COMMAND [FLAGS], one command per task (listed below).

Every command's flags, what it prints and the JSON it writes are here; the work is in the library.
Flags shared by several commands are defined once (`add_json_flag`, and `add_config_arguments`, which
makes one flag per field of InferenceConfig or TrainConfig, with the field's reason as help).
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime
from pathlib import Path

# Packages only (their __init__ files import nothing): the modules a command uses are imported when it
# runs (`Command.modules`) and reached as attributes, e.g. `vision.pipeline.load_pipeline`.
from maskapp import PROJECT_ROOT, app, events, media, metrics, training, vision
from maskapp.config import (
    ALLOWED_SOURCES,
    ANONYMIZE_MODES,
    LIVE_DETECTOR,
    LIVE_DETECTOR_INT8,
    SPLIT_FIELDS,
    SPLITS,
    STREAM_TIMEOUT_S,
    InferenceConfig,
    QuantizeConfig,
    TrainConfig,
    add_config_arguments,
    check_face_threshold_floor,
    config_from_args,
    typed_path,
)
from maskapp.errors import ImageError, MaskappError, OutputError, Terminated, VideoError
from maskapp.labels import CLASS_NAMES
from maskapp.outputs import (
    ensure_writable_file,
    ensure_writable_folder,
    path_text,
    refuse_overwriting,
    unwritable,
)


# --- output ------------------------------------------------------------------------------------------
def write_json(path: Path, data) -> None:
    """`data` as indented JSON at `path` (its folder made when missing); OutputError when not writable."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")
    except OSError as error:
        raise unwritable(path, error) from None


# --json -: the JSON on stdout, for a pipe (it wrote a file named "-"); the report then goes to stderr.
STDOUT = Path("-")


def print_and_write(text: str, json_path: Path | None, data) -> int:
    """`data` as JSON when --json was given, then the command's report on stdout. The exit status: 0."""
    if json_path == STDOUT:
        print_text(text, file=sys.stderr)
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return 0
    if json_path:
        write_json(json_path, data)
    print_text(text)
    return 0


def print_text(text: str, file=None) -> None:
    """print(), with what the terminal cannot show escaped: a file name in another encoding must not end
    a run in a UnicodeEncodeError after its work is done. Name bytes that are not UTF-8 show as \\xNN, as
    in the JSON files, not as \\udcNN."""
    stream = file or sys.stdout
    encoding = getattr(stream, "encoding", None) or "utf-8"
    print(path_text(text).encode(encoding, "backslashreplace").decode(encoding), file=stream)


# Flags naming a file that a command writes when its work is done: checked before the work starts.
RESULT_FILE_FLAGS = ("json", "csv")


def check_result_files(args: argparse.Namespace) -> None:
    for flag in RESULT_FILE_FLAGS:
        path = getattr(args, flag, None)
        if path == STDOUT and flag != "json":
            raise OutputError(
                f"--{flag} - would write a file named -; allowed: a file path (only --json takes -)"
            )
        if path and path != STDOUT:
            ensure_writable_file(path)


# --- shared flags ------------------------------------------------------------------------------------
def add_json_flag(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--json",
        type=typed_path,
        metavar="FILE",
        help=f"write {what} to this JSON file (-: to stdout, and the report to stderr)",
    )


def add_inference_flags(
    parser: argparse.ArgumentParser,
    only: tuple[str, ...] | None = None,
    defaults: dict[str, object] | None = None,
) -> None:
    """--weights, --detector, --face-threshold, --margin (or those named in `only`): InferenceConfig."""
    add_config_arguments(parser, InferenceConfig, only, defaults)


def inference_config(args: argparse.Namespace) -> InferenceConfig:
    """The flags given, the defaults for the rest; an out-of-range value, or a face threshold under the
    detector's floor, is a MaskappError."""
    return check_face_threshold_floor(config_from_args(args, InferenceConfig))


def add_live_inference_flags(parser: argparse.ArgumentParser) -> None:
    """The inference flags with the live detector as the default (frame rate first on a camera)."""
    add_inference_flags(parser, defaults={"detector": LIVE_DETECTOR})


def add_anonymize_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--anonymize",
        choices=ANONYMIZE_MODES,
        default="none",
        help="hide every detected face in the annotated output, box and verdict kept: fill (a solid "
        "box, the safe choice for anything shared), blur (recognition models can partly undo it), none "
        "(default: the output stays with its operator)",
    )


def add_people_flags(parser: argparse.ArgumentParser) -> None:
    """Tracking, the event log, aggregate-only mode and the violation hook."""
    add_switch(
        parser,
        "--track",
        "follow each person: one id and one smoothed verdict per person, classified again only every few "
        "frames",
    )
    add_second_look_flag(parser)
    parser.add_argument(
        "--events",
        type=typed_path,
        metavar="FILE.sqlite",
        help="log person_seen, violation (once per non-compliant person) and person_left events to this "
        "SQLite file (made when missing); no image is stored",
    )
    parser.add_argument(
        "--aggregate-minutes",
        type=float,
        metavar="N",
        default=None,
        help="with --events: store only people counts by verdict per N-minute window, no per-person row",
    )
    parser.add_argument(
        "--on-violation",
        metavar="URL",
        help="POST each violation event as JSON to this http(s) URL (a gate); never blocks the video",
    )
    add_keep_days_flag(parser, "with --events: delete rows older than N days when the run starts and hourly")
    parser.add_argument(
        "--recorded-at",
        metavar="TIME",
        help="a video file's recording start, ISO-8601 (2026-11-28T08:00:00 on this machine's clock; Z or "
        "+01:00 accepted): events and the webhook's violations are dated start + frame / the file's frame "
        "rate, as are --aggregate-minutes windows (default: the moment each frame is processed). Files "
        "only; refused with a --keep-days shorter than the recording's age, whose rows would be deleted as "
        "soon as written (a warning would leave a log that empties itself)",
    )


def add_keep_days_flag(parser: argparse.ArgumentParser, when: str) -> None:
    parser.add_argument(
        "--keep-days",
        type=float,
        metavar="N",
        default=None,
        help=f"{when}; deleted rows are overwritten, not left in the file (default: keep every row)",
    )


def add_switch(parser: argparse.ArgumentParser, flag: str, help: str) -> None:
    """An on-by-default setting that --no-FLAG turns off."""
    parser.add_argument(
        flag, action=argparse.BooleanOptionalAction, default=True, help=f"{help} (default: on)"
    )


def add_second_look_flag(parser: argparse.ArgumentParser) -> None:
    add_switch(
        parser,
        "--second-look",
        "with tracking: while a face is in doubt (not yet a person, or a person just missed), also detect on "
        "the mirror image and keep the better score; more people found in crowds, at about 1.7x the "
        "detector's time on those frames",
    )


def event_settings(args: argparse.Namespace):
    """The people flags as EventSettings; MaskappError for a combination that cannot work."""
    if not args.track and (args.events or args.on_violation):
        raise MaskappError("--events and --on-violation count people, which needs tracking: drop --no-track")
    for flag, value in (("--aggregate-minutes", args.aggregate_minutes), ("--keep-days", args.keep_days)):
        if value is not None and not args.events:
            raise MaskappError(f"{flag} applies to an events file: add --events FILE.sqlite")
    recorded_at = None
    if args.recorded_at is not None:
        if not (args.events or args.on_violation):  # it would date nothing: said, not silently ignored
            raise MaskappError(
                "--recorded-at dates the event log's rows and the webhook's violations: add --events "
                "FILE.sqlite or --on-violation URL"
            )
        if media.video.is_live_source(args.source):  # before a stream is waited for
            raise events.session.live_source_error(media.sources.redact_source(args.source))
        recorded_at = events.session.recording_start(args.recorded_at)
    return events.session.EventSettings(
        args.events, args.aggregate_minutes, args.on_violation, args.keep_days, recorded_at
    )


# --- train -------------------------------------------------------------------------------------------
def train_flags(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, TrainConfig)


def run_train(args: argparse.Namespace) -> int:
    config = config_from_args(args, TrainConfig)
    training.train.fit(config)
    return 0


PACK_FIELDS = (*SPLIT_FIELDS, "input_size")


def pack_data_flags(parser: argparse.ArgumentParser) -> None:
    # Not `out`: config_from_args would take it for TrainConfig.out, the runs folder.
    parser.add_argument("pack_file", type=typed_path, metavar="OUT.npz", help="the pack file to write")
    add_config_arguments(parser, TrainConfig, only=PACK_FIELDS)
    parser.add_argument(
        "--splits",
        nargs="+",
        choices=SPLITS,
        default=list(SPLITS),
        help="the splits to pack (default: all three; train and val are what training needs)",
    )
    parser.add_argument(
        "--quality",
        type=int,
        default=90,
        help="WebP quality 1-100 (default: 90; 80 keeps the shipped 17k train+val faces near 45 MB)",
    )


def run_pack_data(args: argparse.Namespace) -> int:
    config = config_from_args(args, TrainConfig)
    size = training.train.pack_data(config, args.pack_file, tuple(args.splits), args.quality)
    print(f"wrote {args.pack_file} ({size / 1e6:.1f} MB, splits {' '.join(args.splits)})")
    return 0


def average_weights_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "weights", type=typed_path, nargs="+", metavar="MODEL.pt", help="two or more runs' model.pt files"
    )
    parser.add_argument(
        "--out", type=typed_path, required=True, metavar="RUN_DIR", help="the run directory to write"
    )


def run_average_weights(args: argparse.Namespace) -> int:
    run_dir = training.average.average_runs(args.weights, ensure_writable_folder(args.out))
    print(f"wrote {run_dir}")
    return 0


def quantize_detector_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=typed_path,
        default=LIVE_DETECTOR_INT8,
        metavar="FILE.onnx",
        help=f"the int8 network to write (default: {LIVE_DETECTOR_INT8.relative_to(PROJECT_ROOT)}, which "
        f"the {LIVE_DETECTOR} detector loads)",
    )
    add_config_arguments(parser, QuantizeConfig)


def run_quantize_detector(args: argparse.Namespace) -> int:
    written = training.quantize.quantize_live_detector(config_from_args(args, QuantizeConfig), args.out)
    print(
        f"wrote {path_text(written.path)} ({written.size_bytes / 1e6:.1f} MB) from {written.frames} "
        f"calibration frames in {written.seconds:.0f} s"
    )
    return 0


# --- evaluate ----------------------------------------------------------------------------------------
def class_list(text: str) -> tuple[str, ...]:
    """--classes with_mask,without_mask -> the names (checked against the model when it is loaded)."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError("give class names separated by commas, e.g. with_mask,without_mask")
    return names


def evaluate_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "data_dir",
        type=typed_path,
        nargs="?",
        metavar="DATA_DIR",
        help="class folders of face crops (all or some of the model's classes; a manifest.csv face box "
        "is cut with the serving margin), or a VOC folder (annotations/ + images/) whose boxes are cut "
        "as serving cuts faces; with --split: one of the checkpoint's training folders, or 'all' "
        "(the default)",
    )
    add_inference_flags(parser, only=("weights", "noncompliant_threshold"))
    add_json_flag(parser, "the figures (confusion matrix, per class, compliance, precision-recall curve)")
    parser.add_argument(
        "--split",
        choices=("train", "val", "test"),
        help="only this part of the checkpoint's own seeded split of DATA_DIR (or of all its training "
        "folders), prepared as training prepared it",
    )
    parser.add_argument(
        "--split-from",
        type=typed_path,
        metavar="CHECKPOINT",
        help="with --split: use this checkpoint's split (e.g. measure a 2-class model on the 3-class "
        "model's test faces)",
    )
    parser.add_argument(
        "--classes",
        type=class_list,
        metavar="A,B",
        help="evaluate only these classes and leave the faces of the others out (e.g. a 2-class model "
        "on 3-class data: with_mask,without_mask)",
    )
    parser.add_argument(
        "--min-face",
        type=int,
        default=None,
        metavar="PX",
        help="VOC folders: leave out annotated faces with a shorter side (default: 32)",
    )
    parser.add_argument(
        "--occlude",
        action="store_true",
        help="also paste each training occluder (hand, phone, paper, ...) over every without_mask face "
        "and count those called with_mask, bare and covered",
    )
    parser.add_argument(
        "--worn-incorrectly-as-noncompliant",
        action="store_true",
        help="a model without the mask_worn_incorrectly class (2-class): keep those faces and count them "
        "as non-compliant in the compliance view (one called with_mask is a missed non-compliant face); "
        "the per-class figures and confusion matrix leave them out",
    )


def run_evaluate(args: argparse.Namespace) -> int:
    config = inference_config(args)
    options = {
        "classes": args.classes,
        "noncompliant_threshold": config.noncompliant_threshold,
        "occlude": args.occlude,
        "worn_incorrectly_as_noncompliant": args.worn_incorrectly_as_noncompliant,
    }
    if args.data_dir and not args.split and metrics.face_crops.is_voc_folder(args.data_dir):
        min_face = {} if args.min_face is None else {"min_face": args.min_face}
        result = metrics.face_crops.evaluate_voc(args.data_dir, config.weights, **min_face, **options)
    else:
        if args.min_face is not None:  # it would be ignored, whatever its value
            raise MaskappError(
                "--min-face leaves out small annotated faces of a VOC folder (annotations/ + images/), "
                "without --split; class folders of face crops have no face box to measure: drop --min-face"
            )
        result = training.evaluate.evaluate(
            args.data_dir, config.weights, args.split, split_from=args.split_from, **options
        )
    text = metrics.report.format_classification(result.figures)
    if result.occlusion is not None:
        text += "\n" + metrics.report.format_occlusion(result.occlusion.to_dict())
    if result.unreadable:
        text += f"\nskipped {result.unreadable} unreadable images"
    return print_and_write(text, args.json, result.to_dict())


# --- export ------------------------------------------------------------------------------------------
def export_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", type=typed_path, metavar="DIR", help="folder to write (made when missing)")
    add_inference_flags(parser, only=("weights", "noncompliant_threshold"))


def run_export(args: argparse.Namespace) -> int:
    config = inference_config(args)
    written = vision.export.export_bundle(config.weights, args.out_dir, config.noncompliant_threshold)
    print("\n".join(f"wrote {path}" for path in written))
    return 0


# --- detect ------------------------------------------------------------------------------------------
def detect_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=typed_path, metavar="PATH", help="image files or folders")
    add_json_flag(parser, "the detections")
    parser.add_argument(
        "--annotate", type=typed_path, metavar="DIR", help="write annotated copies (PNG) here"
    )
    add_inference_flags(parser)
    add_anonymize_flag(parser)


def summary_line(name: str, summary: dict) -> str:
    """'a.png: 4 faces, 2 with_mask, 1 mask_worn_incorrectly, 1 without_mask, compliance 50%'."""
    compliance = "-" if summary["compliance"] is None else f"{summary['compliance']:.0%}"
    counts = ", ".join(f"{summary[name]} {name}" for name in CLASS_NAMES)
    faces = f"{summary['faces']} face" + ("" if summary["faces"] == 1 else "s")
    return f"{name}: {faces}, {counts}, compliance {compliance}"


def run_detect(args: argparse.Namespace) -> int:
    config = inference_config(args)  # a bad threshold fails before the slow model loading
    if args.anonymize != "none" and not args.annotate:
        # Nothing else shows a face, so the flag would do nothing: say so rather than seem to protect.
        raise MaskappError("--anonymize hides faces in the annotated copies: add --annotate DIR")
    files = media.photos.expand_paths(args.paths)
    copies = media.photos.annotated_names(files).values() if args.annotate else ()
    refuse_overwriting({"--json": args.json, "--annotate": [args.annotate / name for name in copies]}, files)
    annotate_dir = ensure_writable_folder(args.annotate) if args.annotate else None
    pipeline = vision.pipeline.load_pipeline(config)
    result = media.photos.detect_files(pipeline, files, annotate_dir, anonymize=args.anonymize)
    for path, why in result.skipped:
        print_text(f"skipped {path}: {why}", file=sys.stderr)
    if not result.results:
        if result.interrupted is not None:
            raise result.interrupted
        raise ImageError(f"none of the {len(files)} files could be read as an image")
    text = "\n".join(summary_line(name, summary) for name, summary in result.summaries.items())
    total = result.total()
    if total["images"] > 1:
        text += "\n" + summary_line(f"all {total['images']} images", total)
    data = {"classes": list(pipeline.classifier.class_names), "images": result.results}
    if annotate_dir is not None:  # inputs sharing a stem get numbered copies: say which is which
        copies = {key: path_text(path) for key, path in result.annotated.items()}
        renamed = {key: copy for key, copy in copies.items() if Path(copy).name != f"{Path(key).stem}.png"}
        text += "".join(f"\nannotated copy of {key}: {copy}" for key, copy in renamed.items())
        data["annotated"] = copies
    if result.interrupted is not None:  # the files done are kept: written, then the exit status says so
        stop = result.interrupted
        data["stopped_early"] = f"interrupted ({getattr(stop, 'signal_name', 'Ctrl-C')})"
        done = len(result.results) + len(result.skipped)
        text += f"\n{data['stopped_early']} after {done} of {len(files)} files: the figures above are theirs"
    print_and_write(text, args.json, {**data, "summary": result.summaries, "total": total})
    if result.interrupted is not None:
        raise result.interrupted
    return 0


# --- evaluate-detection ------------------------------------------------------------------------------
def evaluate_detection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", required=True, type=typed_path, help="folder of images")
    parser.add_argument(
        "--annotations", required=True, type=typed_path, help="folder of PASCAL VOC .xml files"
    )
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
    parser.add_argument(
        "--three-class",
        action="store_true",
        help="add the three-class view: AP of with_mask, mask_worn_incorrectly and without_mask, and mAP",
    )


def run_evaluate_detection(args: argparse.Namespace) -> int:
    if args.compare_detectors:
        rows = metrics.detection.compare_detectors(args.images, args.annotations)
        data = {"detectors": [asdict(row) for row in rows]}
        return print_and_write(metrics.report.format_detector_rows(rows), args.json, data)
    config = inference_config(args)
    if args.source_pipeline:
        refuse_settings_of_the_source_pipeline(args)
        pipeline = vision.pipeline.load_source_pipeline(config.weights)
    else:
        pipeline = vision.pipeline.load_pipeline(config)
    report = metrics.detection.evaluate_pipeline(
        pipeline, args.images, args.annotations, three_class=args.three_class
    )
    text = metrics.report.format_detection(report)
    size, source_size = pipeline.classifier.spec.input_size, vision.pipeline.SOURCE_CLASSIFIER_SIZE
    if args.source_pipeline and size != source_size:
        text += (
            f"\nnote: the {pipeline.classifier.architecture} checkpoint has a fixed input size, so the "
            f"source pipeline classified its faces at {size} px, not at the write-ups' {source_size} px"
        )
    return print_and_write(text, args.json, report.to_dict())


def refuse_settings_of_the_source_pipeline(args: argparse.Namespace) -> None:
    """The source pipeline is fixed (ResNet-10 SSD at 0.5, the bare face box, the checkpoint's own
    decision): an inference flag other than --weights would be ignored, so it is an error instead."""
    given = [
        "--" + item.name.replace("_", "-")
        for item in fields(InferenceConfig)
        if item.name != "weights" and getattr(args, item.name, None) is not None
    ]
    if given:
        raise MaskappError(
            f"--source-pipeline runs the source write-ups' fixed settings, so {' and '.join(given)} would be "
            "ignored; allowed with --source-pipeline: --weights only"
        )


# --- video -------------------------------------------------------------------------------------------
def video_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=video_source, metavar="SOURCE", help=ALLOWED_SOURCES)
    parser.add_argument("--out", type=typed_path, help="write the annotated video here (.mp4 or .avi)")
    add_json_flag(parser, "per-frame counts")
    add_inference_flags(parser)
    parser.add_argument(
        "--max-frames", type=whole_number(1, "frame count"), default=None, help="stop after this many frames"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=STREAM_TIMEOUT_S,
        help=f"stream open timeout, seconds (default: {STREAM_TIMEOUT_S:g})",
    )
    add_people_flags(parser)
    add_anonymize_flag(parser)


def video_source(text: str) -> str:
    """SOURCE as open_source takes it, a file's `~` expanded as for every path flag (a camera index or
    a URL has none)."""
    return str(typed_path(text)) if text.startswith("~") else text


def people_lines(run) -> list[str]:
    """What `video` prints about people, each counted once (run: maskapp.events.session.PeopleVideo)."""
    if not run.tracked:
        return []
    counts = run.counts
    verdicts = ", ".join(f"{n} {label}" for label, n in counts.by_verdict.items())
    compliance = "-" if counts.compliance is None else f"{counts.compliance:.0%}"
    return [f"{counts.total} people ({verdicts}), compliance of people {compliance}"]


def event_log_lines(run) -> list[str]:
    """What `video` prints about its event log and webhook, when it has them."""
    log, lines = run.events, []
    if log is not None and log.path is not None:
        recorder = log.recorder
        if recorder.aggregate_minutes:  # "N violation(s)" read as stored, where the log says "not logged"
            lines.append(
                f"events: {recorder.windows_written} aggregate window(s) written to {log.path} (counts "
                f"only: the {recorder.violations} violation(s) seen are in no row)"
            )
        else:
            lines.append(
                f"events: {recorder.events_written} event(s) written to {log.path}, "
                f"{recorder.violations} violation(s)"
            )
        if log.rows_deleted:
            lines.append(f"events: {log.rows_deleted} row(s) older than the days to keep deleted")
        if recorder.dropped_writes:
            lines.append(f"events: {recorder.dropped_writes} write(s) dropped (see the warnings above)")
    if log is not None and log.hook is not None:
        hook = log.hook
        line = f"webhook: {hook.sent} sent, {hook.failed} failed, {hook.dropped} dropped"
        if hook.pending:  # the gate had not answered when the run ended
            line += f", {hook.pending} unconfirmed (no answer from the gate when the run ended)"
        lines.append(line)
    return lines


def run_video(args: argparse.Namespace) -> int:
    config = inference_config(args)  # a bad threshold fails before the source is opened
    settings = event_settings(args)
    refuse_overwriting({"--out": args.out, "--json": args.json}, [Path(args.source)])
    if args.out is not None:
        media.video.check_video_out(args.out)  # not at the first frame, after the models have loaded
    frames = media.video.open_source(args.source, args.timeout)  # fail fast, before loading models
    log = None
    try:
        # An events file that cannot be used, or a webhook URL of another scheme: an error before starting.
        log = events.session.PeopleLog(settings, frames.source) if args.track else None
        pipeline = vision.pipeline.load_pipeline(config)
    except BaseException:
        if log is not None:
            log.close()
        frames.close()
        raise
    run = events.session.watch_people(
        frames,
        pipeline,
        out_path=args.out,
        track=args.track,
        anonymize=args.anonymize,
        max_frames=args.max_frames,
        progress=True,
        keep_faces=args.json is not None,
        log=log,
        second_look=args.second_look,
    )
    summary = run.summary
    if summary.frames == 0:
        raise VideoError(
            f"no frame could be read from {frames.source} (it ended, dropped or stayed silent at once); "
            f"allowed: {ALLOWED_SOURCES}"
        )
    seen = summary.label_counts_seen
    face_frames = f"{summary.faces_seen} face-frames (every face in every frame): " + ", ".join(
        f"{seen[name]} {name}" for name in CLASS_NAMES
    )
    # People first when they are followed: each is counted once, where a face-frame counts every frame.
    lines = [f"{summary.frames} frames at {summary.processing_fps:.1f} FPS", *people_lines(run), face_frames]
    lines += event_log_lines(run)
    if summary.stopped_early:
        lines.append(f"stopped early: {summary.stopped_early}")
    elif frames.is_stream:
        lines.append(f"the stream ended after {summary.frames} frames (it closed, dropped or went silent)")
    data = {"classes": list(pipeline.classifier.class_names), **run.to_dict()}
    return print_and_write("\n".join(lines), args.json, data)


# --- evaluate-tracking -------------------------------------------------------------------------------
def evaluate_tracking_flags(parser: argparse.ArgumentParser) -> None:
    add_json_flag(parser, "the figures, with one entry per person")
    add_live_inference_flags(parser)
    add_second_look_flag(parser)
    parser.add_argument(
        "--write-clip",
        type=typed_path,
        metavar="FILE",
        help="also write the clip to this .avi or .mp4 file (to time `video` end to end on it)",
    )
    parser.add_argument(
        "--clip-seed",
        type=whole_number(0, "clip seed"),
        nargs="+",
        default=[0],
        metavar="N",
        help="which photos and camera paths make the clip; 0 is the clip the README quotes, others check "
        "that figures hold on other scenes; several: each clip and all of them pooled (default: 0)",
    )


def whole_number(minimum: int, what: str):
    """An argparse type: a whole number of at least `minimum`, else one line naming `what` it should be."""

    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            number = minimum - 1
        if number < minimum:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a {what}; give a whole number, {minimum} or more"
            )
        return number

    return parse


def run_evaluate_tracking(args: argparse.Namespace) -> int:
    if args.write_clip is not None and len(args.clip_seed) > 1:
        raise MaskappError("--write-clip writes one clip; give one --clip-seed with it")
    config = inference_config(args)
    # The clips first: a missing or broken dataset is reported before the models load.
    clips = [metrics.tracking.build_clip(metrics.tracking.ClipSpec(seed=seed)) for seed in args.clip_seed]
    pipeline = vision.pipeline.load_pipeline(config)
    reports = []
    for clip in clips:
        if args.write_clip is not None:
            clip.save(args.write_clip)
        reports.append(
            metrics.tracking.evaluate_tracked_pipeline(pipeline, clip, second_look=args.second_look)
        )
    if len(reports) == 1:
        return print_and_write(metrics.report.format_tracking(reports[0]), args.json, reports[0].to_dict())
    report = metrics.tracking.ClipsTrackingReport(tuple(reports))
    return print_and_write(metrics.report.format_tracking_clips(report), args.json, report.to_dict())


# --- events ------------------------------------------------------------------------------------------
def date_or_moment(text: str) -> date | datetime:
    """--from / --to: a day (2026-11-26) or a moment (2026-11-26T14:00; on --timezone's clock unless an
    offset is given)."""
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date; give YYYY-MM-DD or an ISO 8601 moment such as 2026-11-26T14:00"
        ) from None


def events_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "database", type=typed_path, metavar="FILE.sqlite", help="an events log (video --events)"
    )
    parser.add_argument(
        "--csv",
        type=typed_path,
        metavar="OUT",
        help="export the event rows in the range here, for other programs: each label as stored ("
        f"{', '.join(CLASS_NAMES)}; the summary names them as the pages do), times in UTC",
    )
    parser.add_argument(
        "--from", dest="start", type=date_or_moment, metavar="DATE", help="from this day or moment"
    )
    parser.add_argument(
        "--to", dest="end", type=date_or_moment, metavar="DATE", help="through this day, or up to this moment"
    )
    parser.add_argument(
        "--timezone",
        default="UTC",
        metavar="NAME",
        help="an IANA time zone (e.g. Europe/Paris): the days and moments of --from/--to are on its clock "
        "and the summary's times are shown in it; the log and the CSV keep UTC (default: UTC)",
    )
    add_keep_days_flag(parser, "first delete the rows older than N days from the file (a daily job)")
    add_json_flag(parser, "the summary")


def run_events(args: argparse.Namespace) -> int:
    refuse_overwriting({"--csv": args.csv, "--json": args.json}, [args.database])
    zone = events.report.parse_zone(args.timezone)
    start, end = events.report.zoned_range(args.start, args.end, zone)
    if start is not None and end is not None and start >= end:  # said as given: a --to day ends at its end
        raise MaskappError(
            f"--from {args.start.isoformat()} is not before the end of --to {args.end.isoformat()} (a --to "
            "day counts through its end), so the range is empty; allowed: a --from before the --to"
        )
    pruned = events.store.delete_old_rows(args.database, args.keep_days) if args.keep_days else None
    with events.report.EventLog(args.database) as log:
        summary = log.summary(start=start, end=end)
        text = events.report.format_summary(summary, zone)
        if pruned is not None:
            text = f"deleted {pruned} row(s) older than {args.keep_days:g} day(s)\n{text}"
        if args.csv:
            rows = log.export_csv(args.csv, start=start, end=end)
            text += f"\nwrote {rows} event row(s) to {args.csv}{csv_leaves_out(summary)}"
    return print_and_write(text, args.json, asdict(summary))


def csv_leaves_out(summary: events.report.LogSummary) -> str:
    """What the events CSV does not hold: an aggregate-only log's CSV is its header alone, and 'wrote 0
    event row(s)' under 56 people read as an export that failed. Beside sources logged person by person,
    the aggregate-only ones by name, as the Compliance log page's note does: their people are in the
    summary above and in no row of the CSV, which read as every source's."""
    if not summary.windows:
        return ""
    windows = (
        f" (the {len(summary.windows)} aggregate window(s) above hold counts only, no event row: "
        "--json FILE writes them)"
    )
    left_out = summary.counts_only_sources
    if not left_out or not summary.violations_logged:
        return windows
    return (
        f"{windows}\nnot in the CSV: {', '.join(left_out)}, logged with aggregate counts only (people by "
        "verdict per time window, no per-person row)"
    )


# --- bench -------------------------------------------------------------------------------------------
def bench_flags(parser: argparse.ArgumentParser) -> None:
    add_json_flag(parser, "the figures")
    parser.add_argument(
        "--repeats",
        type=whole_number(1, "number of timed runs"),
        default=50,
        help="timed runs per measurement (default: 50)",
    )
    add_inference_flags(parser, only=("weights",))
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="PyTorch threads (the source pipeline's classifier); 1 avoids stalls on a busy CPU",
    )
    parser.add_argument(
        "--tracked",
        action="store_true",
        help="only the tracked mode: tracked vs untracked FPS in the same run, 640x480, 5 faces moving "
        "slightly (the full bench includes it too)",
    )
    parser.add_argument(
        "--baseline-weights",
        type=typed_path,
        metavar="PATH",
        help="also time the live pipeline with this classifier, in turn with the shipped one on the same "
        "frames, and report their p50 ratio (the live budget: within 10%% of it); default: the 2-class "
        "run weights/runs/mobilenet_v2/model.pt when present",
    )


def bench_baseline(args: argparse.Namespace) -> Path | None:
    """The baseline classifier to time: the one given, else the 2-class run when this checkout has it."""
    if args.baseline_weights is not None:
        if args.tracked:
            raise MaskappError(
                "--baseline-weights adds a row to the untracked pipelines; --tracked times only tracking: "
                "drop one of them"
            )
        return args.baseline_weights
    default = metrics.bench_results.BASELINE_WEIGHTS
    return default if default.is_file() else None


def run_bench(args: argparse.Namespace) -> int:
    config = inference_config(args)
    baseline = bench_baseline(args)
    if args.tracked:
        report = metrics.bench.run_tracked_bench(config.weights, args.repeats)
        return print_and_write(metrics.report.format_tracked_bench(report), args.json, report.to_dict())
    report = metrics.bench.run_bench(
        config.weights, args.repeats, torch_threads=args.torch_threads, baseline_weights=baseline
    )
    return print_and_write(metrics.report.format_bench(report), args.json, report.to_dict())


def bench_video_page_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", type=typed_path, metavar="FILE", help="a video file (e.g. evaluate-tracking --write-clip)"
    )
    parser.add_argument(
        "--repeats",
        type=whole_number(1, "number of rounds"),
        default=3,
        help="rounds, each timing both once (default: 3)",
    )
    add_json_flag(parser, "every round and the medians")
    add_inference_flags(parser)


def run_bench_video_page(args: argparse.Namespace) -> int:
    config = inference_config(args)
    media.video.open_file(args.file).close()  # an unreadable file fails before the models load
    pipeline = vision.pipeline.load_pipeline(config)
    report = app.video_pace.compare_page_with_cli(pipeline, args.file, args.repeats)
    return print_and_write("\n".join(report.lines()), args.json, report.to_dict())


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
    "pack-data": Command(
        "split and prepare the data folders into one file, to train elsewhere",
        "The train command's split, near-duplicate grouping and detector crops, made here and written "
        "as one WebP-encoded .npz, so that `train --pack OUT.npz` runs on a machine without the data "
        "folders or the detector (a GPU box).",
        pack_data_flags,
        run_pack_data,
        ("maskapp.training.train",),
    ),
    "average-weights": Command(
        "average runs fine-tuned from one another into one model (a model soup)",
        "The mean of two or more runs' weights (same model, classes, input size and data split; runs "
        "fine-tuned from one another), written as a run directory: its non-compliant threshold chosen on "
        "the validation split and its figures on the test split, as train does.",
        average_weights_flags,
        run_average_weights,
        ("maskapp.training.average",),
    ),
    "quantize-detector": Command(
        "make the live detector's int8 network (calibrated on real photos)",
        "CenterFace quantized to int8 (weights per channel, activations calibrated on frames tiled from "
        "real face photos, fed as the live detector feeds it), written where the centerface-fast detector "
        "loads it: about 1.5x faster than the float network for one look (README: Detection), at about the "
        "same AP on faces >= 32 px.",
        quantize_detector_flags,
        run_quantize_detector,
        ("maskapp.training.quantize",),
    ),
    "evaluate": Command(
        "accuracy, per-class P/R/F1, confusion matrix, compliance view on face crops",
        "The classifier on face crops, decided as serving decides (with the non-compliant threshold): "
        "the confusion matrix over the model's classes, precision, recall and F1 of the classes present, "
        "non-compliant and with_mask recall, the non-compliant precision-recall curve (--json).",
        evaluate_flags,
        run_evaluate,
        ("maskapp.training.evaluate", "maskapp.metrics.face_crops", "maskapp.metrics.report"),
    ),
    "export": Command(
        "write the classifier (ONNX), its preprocessing and the face detector for an edge device",
        "classifier.onnx, model.json (classes, preprocessing, decision rule), centerface.onnx, "
        "centerface_live_int8.onnx (the live detector's int8 network) and a README for running them on a "
        "Raspberry Pi or a Jetson with onnxruntime alone.",
        export_flags,
        run_export,
        ("maskapp.vision.export",),
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
        "2-class compliance view (and with --three-class the three-class view), over all boxes and over "
        "boxes >= 32 px; face AP and recall.",
        evaluate_detection_flags,
        run_evaluate_detection,
        ("maskapp.metrics.detection", "maskapp.metrics.report", "maskapp.vision.pipeline"),
    ),
    "video": Command(
        "annotate a video file, camera or stream",
        "Every frame of a video file, camera or network stream through the pipeline; the annotated "
        "video and per-frame counts are kept up to the end of the source, or to Ctrl-C, SIGTERM or SIGHUP. "
        "Tracked (the default): each person gets an id and one smoothed verdict, --json adds people and "
        "faces_by_frame; --events logs people (once each, no image), --on-violation tells a gate; "
        "everyone still in view leaves (person_left) when the source ends, drops or is interrupted.",
        video_flags,
        run_video,
        ("maskapp.events.session", "maskapp.vision.pipeline"),
    ),
    "evaluate-tracking": Command(
        "tracking figures of the real pipeline on a synthetic camera clip",
        "A 900-frame clip of 45 people (dev-set photos seen through a drifting, zooming camera, ten "
        "scenes) through detector + tracker + classifier: coverage, ids per person, label agreement, "
        "per-person verdicts, false people, ID switches, FPS, and which issue-9 targets are met.",
        evaluate_tracking_flags,
        run_evaluate_tracking,
        ("maskapp.metrics.tracking", "maskapp.metrics.report", "maskapp.vision.pipeline"),
    ),
    "events": Command(
        "summarise an events log and export it as CSV",
        "Per source: people by verdict, violations, compliance of people and the time span; the "
        "aggregate windows; --csv writes the event rows (in the --from/--to range) with their UTC times.",
        events_flags,
        run_events,
        ("maskapp.events.report",),
    ),
    "bench": Command(
        "latency and FPS, ours vs the source pipeline",
        "Per-frame latency (p50, p95) and FPS at 640x480 with 1 and 5 faces, for our pipeline, the "
        "source write-ups' pipeline and the live pipeline with the baseline classifier in the same run "
        "(p50 ratio shipped / baseline); each detector alone; the classifier alone per face at batch 1 "
        "and 8.",
        bench_flags,
        run_bench,
        ("maskapp.metrics.bench", "maskapp.metrics.bench_results", "maskapp.metrics.report"),
    ),
    "bench-video-page": Command(
        "the Video page's analysis of a file against the video command's, in turns",
        "The Video page's analysis of FILE (from the uploaded bytes to its browser MP4) and `video FILE`, "
        "one after the other for --repeats rounds on one pipeline: each one's time and FPS figure, the "
        "median of the rounds' ratios, and whether both found the same people and counts.",
        bench_video_page_flags,
        run_bench_video_page,
        ("maskapp.app.video_pace", "maskapp.media.video", "maskapp.vision.pipeline"),
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
    try:
        return run_command(argv)
    except BrokenPipeError:  # `maskapp events LOG | head`: the reader left; a traceback helps no one
        quiet_stdout()
        return 128 + signal.SIGPIPE


def quiet_stdout() -> None:
    """Standard output to /dev/null, so that the interpreter's last flush into the closed pipe does not
    print an error of its own at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):  # not a real file (in-process callers)
        pass


def run_command(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    command = COMMANDS[args.command]
    try:
        with stop_signals_as_interrupt():
            check_result_files(args)
            for module in command.modules:
                importlib.import_module(module)
            return int(command.run(args) or 0)
    except MaskappError as error:
        print_text(f"error: {error}", file=sys.stderr)  # a name not in UTF-8 as \xNN, as elsewhere
        return 2
    except Terminated as stop:
        print(f"interrupted ({stop.signal_name})", file=sys.stderr)
        return 128 + signal.Signals[stop.signal_name]
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


# Signals that stop a command as Ctrl-C does; their default action ended the process at once, with no
# person_left in the event log, no JSON and an annotated video cut short.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # kill / docker stop / timeout; the terminal closed


@contextmanager
def stop_signals_as_interrupt() -> Iterator[None]:
    """STOP_SIGNALS raise Terminated (a KeyboardInterrupt) while the command runs. A signal already
    ignored (SIGHUP under `nohup`) stays ignored."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread sets handlers
        yield
        return

    def stop(signum, frame):
        raise Terminated(signal.Signals(signum).name)

    # None: a handler set outside Python, which could not be put back afterwards
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    replaced = {n: handler for n, handler in previous.items() if handler not in (signal.SIG_IGN, None)}
    for number in replaced:
        signal.signal(number, stop)
    try:
        yield
    finally:
        for number, handler in replaced.items():
            signal.signal(number, handler)
