"""Speed on this machine (what `python -m maskapp bench` measures).

Per-frame latency (p50, p95) and FPS at 640x480 with 1 and with 5 faces (real photos from the shared
data), for our pipeline and, in the same run, the source write-ups' pipeline (ResNet-10 SSD at 300x300,
then MobileNetV2 at 224 one face at a time) and the live pipeline with a baseline classifier (the 2-class
model the shipped one replaced: its live p50 is the budget's "today"); each detector alone; the
classifier alone per face at batch 1 and 8.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from maskapp import DEFAULT_WEIGHTS
from maskapp.config import DEFAULT_DETECTOR, DETECTOR_NAMES, LIVE_DETECTOR, InferenceConfig
from maskapp.errors import DataError
from maskapp.metrics.bench_results import (
    BENCH_SIZE,
    LIVE,
    LIVE_BASELINE,
    SOURCE,
    BaselineComparison,
    BenchFrame,
    BenchReport,
    Int8Timing,
    Latency,
    PipelineBench,
    TrackedBench,
    bench_frame,
    time_calls,
)
from maskapp.vision.classify import MaskClassifier
from maskapp.vision.detect import FastCenterFaceDetector, create_detector
from maskapp.vision.onnx_export import OnnxMaskClassifier
from maskapp.vision.onnx_runtime import default_threads
from maskapp.vision.pipeline import MaskPipeline, load_pipeline, load_serving_classifier, load_source_pipeline
from maskapp.vision.tracked import TrackedPipeline

logger = logging.getLogger(__name__)


def turn_order(names: list[str], round_index: int, pair: tuple[str, str] | None) -> list[str]:
    """The pipelines' order in one round: as given, but the two of `pair` (next to each other) trade
    places every other round, so neither always runs right after the same neighbour."""
    if pair is None or round_index % 2 == 0:
        return names
    first, second = names.index(pair[0]), names.index(pair[1])
    swapped = list(names)
    swapped[first], swapped[second] = pair[1], pair[0]
    return swapped


def bench_pipelines(
    pipelines: dict[str, object], frame: BenchFrame, repeats: int, pair: tuple[str, str] | None = None
) -> list[PipelineBench]:
    """The pipelines take turns frame by frame, so a load spike on this shared CPU hits them alike.
    `pair`: two pipelines compared with each other, which trade places every other round (turn_order)."""
    samples: dict[str, list[float]] = {name: [] for name in pipelines}
    for pipeline in pipelines.values():
        time_calls(lambda p=pipeline: p.process(frame.frame), 0, warmup=3)
    for round_index in range(repeats):
        for name in turn_order(list(pipelines), round_index, pair):
            samples[name] += time_calls(lambda p=pipelines[name]: p.process(frame.frame), 1, warmup=0)
    return [
        PipelineBench(
            name, frame.annotated_faces, len(pipeline.process(frame.frame).faces), Latency.of(samples[name])
        )
        for name, pipeline in pipelines.items()
    ]


def bench_detector(name: str, frame: BenchFrame, repeats: int) -> Latency:
    detector = create_detector(name)
    return Latency.of(time_calls(lambda: detector.detect(frame.frame), repeats))


def bench_int8_detector(frame: BenchFrame, repeats: int) -> tuple[Int8Timing, ...]:
    """The live detector with its int8 network and with the float one, taking turns call by call, for one
    look and with the tracker's mirror look; () when the int8 network is missing (nothing to compare)."""
    int8, float32 = FastCenterFaceDetector(), FastCenterFaceDetector(int8=False)
    if int8.int8_file is None:
        return ()
    looks = {
        "one look": lambda detector: detector.detect(frame.frame),
        "with the mirror look": lambda detector: detector.detect_with_mirror_image(frame.frame),
    }
    timings = []
    for name, look in looks.items():
        samples: dict[FastCenterFaceDetector, list[float]] = {int8: [], float32: []}
        for detector in samples:
            time_calls(lambda d=detector, call=look: call(d), 0)  # warm-up only
        for _ in range(repeats):
            for detector, times in samples.items():
                times += time_calls(lambda d=detector, call=look: call(d), 1, warmup=0)
        timings.append(Int8Timing.of(name, samples[int8], samples[float32]))
    return tuple(timings)


def bench_classifier(classifier, frame: BenchFrame, repeats: int) -> dict[int, float]:
    """ms per face at batch 1 and 8, on real face crops."""
    face = create_detector().detect(frame.frame)[0]
    x1, y1, x2, y2 = face.box
    crop = frame.frame[y1:y2, x1:x2]
    return {
        batch: float(np.median(time_calls(lambda b=batch: classifier.classify([crop] * b), repeats))) / batch
        for batch in (1, 8)
    }


TRACKED_WARMUP = 10  # frames before timing: the people are confirmed and their verdicts settle
MOTION_RADIUS_PX = 3.0  # the bench frame drifts along a circle this wide: a camera held by hand
MOTION_PERIOD = 40  # frames per turn


def moving_frames(frame: BenchFrame, count: int) -> list[np.ndarray]:
    """The bench frame shifted a little more each frame along a small circle: the same faces, moving
    slightly, as a camera sees people standing at a door (what lets tracking reuse verdicts)."""
    height, width = frame.frame.shape[:2]
    frames = []
    for index in range(count):
        angle = 2 * np.pi * index / MOTION_PERIOD
        shift = np.float32(
            [[1, 0, MOTION_RADIUS_PX * np.cos(angle)], [0, 1, MOTION_RADIUS_PX * np.sin(angle)]]
        )
        frames.append(cv2.warpAffine(frame.frame, shift, (width, height), borderMode=cv2.BORDER_REPLICATE))
    return frames


def bench_tracked(name: str, pipeline: MaskPipeline, frame: BenchFrame, repeats: int) -> TrackedBench:
    """Untracked and tracked take turns on each moving frame, so a load spike hits both alike."""
    frames = moving_frames(frame, TRACKED_WARMUP + repeats)
    tracked = TrackedPipeline(pipeline)
    untracked_ms, tracked_ms = [], []
    for index, image in enumerate(frames):
        start = time.perf_counter()
        pipeline.process(image)
        middle = time.perf_counter()
        tracked.process(image, index)
        end = time.perf_counter()
        if index >= TRACKED_WARMUP:
            untracked_ms.append((middle - start) * 1000.0)
            tracked_ms.append((end - middle) * 1000.0)
    share = tracked.classified_faces / tracked.detected_faces if tracked.detected_faces else 0.0
    return TrackedBench(name, frame.annotated_faces, Latency.of(untracked_ms), Latency.of(tracked_ms), share)


def tracked_pipelines(weights: Path) -> dict[str, MaskPipeline]:
    """Our pipeline with the live detector (video, the Live page) and with the default one."""
    live = load_pipeline(InferenceConfig(weights=weights, detector=LIVE_DETECTOR))
    default = MaskPipeline(create_detector(DEFAULT_DETECTOR), live.classifier, live.margin)
    return {f"ours live ({LIVE_DETECTOR})": live, f"ours ({DEFAULT_DETECTOR})": default}


def _check_repeats(repeats: int) -> None:
    if not (isinstance(repeats, int) and repeats >= 1):
        raise DataError(
            f"repeats (timed runs per measurement) must be a whole number, 1 or more, got {repeats!r}"
        )


def run_tracked_bench(weights: Path = DEFAULT_WEIGHTS, repeats: int = 50) -> BenchReport:
    """`bench --tracked`: only the tracked mode, tracked vs untracked at 640x480 with 5 faces."""
    _check_repeats(repeats)
    load_before = os.getloadavg()[0]
    frame = bench_frame(5)
    rows = tuple(bench_tracked(name, p, frame, repeats) for name, p in tracked_pipelines(weights).items())
    settings = {
        "frames": {"5 faces": frame.name},
        "frame_size": list(BENCH_SIZE),
        "repeats": repeats,
        "motion": f"{MOTION_RADIUS_PX:g} px circle every {MOTION_PERIOD} frames",
        "load_average_1min": [load_before, os.getloadavg()[0]],
    }
    return BenchReport((), {}, {}, {}, settings, rows)


def speedups(results: list[PipelineBench]) -> dict[str, float]:
    """FPS of each of our pipelines over the source pipeline's, on the same frame."""
    source = {row.faces_in_frame: row.latency.fps for row in results if row.pipeline == SOURCE}
    return {
        f"{row.pipeline}, {row.faces_in_frame} face(s)": row.latency.fps / source[row.faces_in_frame]
        for row in results
        if row.pipeline != SOURCE
    }


def run_bench(
    weights: Path = DEFAULT_WEIGHTS,
    repeats: int = 50,
    progress: bool = True,
    torch_threads: int | None = None,
    baseline_weights: Path | None = None,
) -> BenchReport:
    """`torch_threads`: PyTorch's thread count (the source pipeline's classifier); None keeps its default.
    `baseline_weights`: a classifier checkpoint run in the live pipeline beside the shipped one, timed in
    turn on the same frames; None leaves that row out."""
    _check_repeats(repeats)
    if torch_threads is not None:
        if torch_threads < 1:
            raise DataError(f"--torch-threads must be at least 1, got {torch_threads}")
        torch.set_num_threads(torch_threads)
    load_before = os.getloadavg()[0]
    ours = load_pipeline(InferenceConfig(weights=weights))
    live_detector = create_detector(LIVE_DETECTOR)
    pipelines = {
        f"ours ({DEFAULT_DETECTOR})": ours,
        LIVE: MaskPipeline(live_detector, ours.classifier),
    }
    pair = None
    if baseline_weights is not None:
        # Loaded as serving loads the shipped one, and sharing its detector: only the classifier differs.
        # Next to the shipped live pipeline and trading places with it every round; never right after the
        # source pipeline: placed there, it once measured 2.4x slower than its twin of the same
        # architecture (the shared CPU still busy with the source pipeline's PyTorch work).
        baseline = load_serving_classifier(baseline_weights)
        pipelines[LIVE_BASELINE] = MaskPipeline(live_detector, baseline)
        pair = (LIVE, LIVE_BASELINE)
    pipelines[SOURCE] = load_source_pipeline(weights)
    frames = {"1 face": bench_frame(1), "5 faces": bench_frame(5)}
    results = []
    for frame in tqdm(frames.values(), desc="bench", unit="frame", disable=not progress):
        results += bench_pipelines(pipelines, frame, repeats, pair)
    detectors = {name: bench_detector(name, frames["5 faces"], repeats) for name in DETECTOR_NAMES}
    int8 = bench_int8_detector(frames["5 faces"], repeats)
    torch_classifier = MaskClassifier.from_checkpoint(weights)
    per_face = {}
    for engine, classifier in (
        ("pytorch", torch_classifier),
        ("onnxruntime", OnnxMaskClassifier(torch_classifier)),
    ):
        for batch, ms in bench_classifier(classifier, frames["5 faces"], repeats).items():
            per_face[f"{engine} batch {batch}"] = ms
    speedup = speedups(results)
    tracked = tuple(
        bench_tracked(name, p, frames["5 faces"], repeats) for name, p in tracked_pipelines(weights).items()
    )
    settings = {
        "frames": {label: frame.name for label, frame in frames.items()},
        "frame_size": list(BENCH_SIZE),
        "repeats": repeats,
        "detector": ours.detector.name,
        "classifier_input": ours.classifier.spec.input_size,
        "classes": list(ours.classifier.class_names),
        "classifier_engine": type(ours.classifier).__name__,
        "opencv_threads": cv2.getNumThreads(),
        "torch_threads": torch.get_num_threads(),
        "onnxruntime_threads": default_threads(),
        # Other processes on the same cores slow everything, PyTorch's thread pool most: say how busy it was.
        "load_average_1min": [load_before, os.getloadavg()[0]],
    }
    comparison = None
    if baseline_weights is not None:
        classes = list(pipelines[LIVE_BASELINE].classifier.class_names)
        comparison = BaselineComparison.of(baseline_weights, classes, results)
    return BenchReport(tuple(results), detectors, per_face, speedup, settings, tracked, comparison, int8)
