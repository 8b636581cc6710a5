"""Every input fails safe (issue 5): the detect CLI over a folder of bad and odd files, broken and
dropping videos and streams in the library and the `video` command, and random frames and boxes fed to
the pipeline. Real weights, real photos, real sockets; no mocks.

Already covered elsewhere, not repeated here: image decoding of each bad and odd file
(tests/test_images.py, tests/test_fuzz_images.py), thread safety of one pipeline
(tests/test_pipeline.py::test_the_pipeline_is_thread_safe), unopenable URLs in the library
(tests/test_video.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from maskapp.app import plots
from maskapp.cli import build_parser, main, video_source
from maskapp.config import QuantizeConfig, TrainConfig, config_from_args, typed_path
from maskapp.errors import MaskappError, RunFormatError, VideoError
from maskapp.labels import CLASS_NAMES
from maskapp.media.video import open_source, process_video
from maskapp.results import FrameResult
from maskapp.training.runs import CONFIG_FILE, load_run
from maskapp.vision.crops import crop_face
from tests.badfiles import BAD_IMAGE_CASES, ODD_VALID_CASES
from tests.conftest import DEV, PHOTO, TWELVE_K, WEIGHTS, dev_photo, run_cli

STEMS = ("maksssksksss0", "maksssksksss104", "maksssksksss105")
SIZE = (320, 240)
CLIP_FRAMES = 20
FUZZ_EXAMPLES = 100  # per hypothesis test below; docs/reliability.md quotes it


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def street_frames(count: int) -> list[np.ndarray]:
    photos = [cv2.resize(dev_photo(stem), SIZE) for stem in STEMS]
    return [photos[index % len(photos)] for index in range(count)]


# --- 1. the detect CLI over every bad and odd image file ------------------------------------------
def test_detect_cli_over_every_bad_and_odd_file_keeps_the_good_ones(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    bad = {make(folder).name for make in BAD_IMAGE_CASES.values()}
    odd = {make(folder).name for make in ODD_VALID_CASES.values()}
    assert len(bad) == len(BAD_IMAGE_CASES) and len(odd) == len(ODD_VALID_CASES) and not bad & odd
    out = tmp_path / "detections.json"
    done = run_cli("detect", str(folder), "--json", str(out), "--weights", str(WEIGHTS))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and not error_lines(done.stderr)
    skipped = [line for line in done.stderr.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == len(bad)
    for name in bad:
        assert sum(f"{os.sep}{name}: " in line for line in skipped) == 1, f"{name} not reported"
    images = json.loads(out.read_text())["images"]
    assert set(images) == odd
    for name in odd:
        count = len(images[name])
        assert f"{name}: {count} face{'' if count == 1 else 's'}," in done.stdout
    # the odd files are the street photo in other formats: faces are found in the full-size ones
    assert images["rgba.png"] and images["cmyk.jpg"] and images["gray16.png"]


@pytest.mark.parametrize("contents", ["only_bad", "empty"])
def test_detect_cli_with_nothing_readable_is_one_error_line_and_exit_2(tmp_path, contents):
    folder = tmp_path / contents
    folder.mkdir()
    if contents == "only_bad":
        for make in BAD_IMAGE_CASES.values():
            make(folder)
    done = run_cli("detect", str(folder), "--weights", str(WEIGHTS))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = error_lines(done.stderr)
    if contents == "only_bad":
        assert f"none of the {len(BAD_IMAGE_CASES)} files could be read" in line
    else:
        assert "has no images" in line
    assert done.stdout == ""


# --- 2. videos: broken files, no video stream, unreachable, silent and dropping streams -------------
def write_clip(path: Path, fourcc: str, frames: int = CLIP_FRAMES) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, SIZE)
    for frame in street_frames(frames):
        writer.write(frame)
    writer.release()
    return path


def write_audio(path: Path, container: str, codec: str) -> Path:
    """A second of silence, written with PyAV: a file with an audio stream and no video stream."""
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=16_000)
        sample_format = "s16" if codec == "pcm_s16le" else "fltp"
        dtype = np.int16 if sample_format == "s16" else np.float32
        for index in range(16):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), dtype), format=sample_format, layout="mono"
            )
            frame.sample_rate, frame.pts = 16_000, index * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def truncated(path: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    target = path.with_name(f"truncated_{path.name}")
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def bad_video(kind: str, folder: Path) -> Path:
    if kind == "random_bytes":
        target = folder / "random.mp4"
        target.write_bytes(np.random.default_rng(5).integers(0, 256, 60_000, np.uint8).tobytes())
        return target
    if kind == "mp4_cut_before_index":  # mp4v writes its index (moov) last: half a file has none
        return truncated(write_clip(folder / "clip.mp4", "mp4v"))
    if kind == "avi_bad_header":
        data = bytearray(write_clip(folder / "clip.avi", "MJPG").read_bytes())
        data[:4096] = np.random.default_rng(7).integers(0, 256, 4096, np.uint8).tobytes()  # header noise
        target = folder / "bad_header.avi"
        target.write_bytes(bytes(data))
        return target
    if kind == "wav_audio_only":
        return write_audio(folder / "sound.wav", "wav", "pcm_s16le")
    if kind == "mp4_audio_only":
        return write_audio(folder / "sound.mp4", "mp4", "aac")
    raise AssertionError(kind)


BAD_VIDEOS = ("random_bytes", "mp4_cut_before_index", "avi_bad_header", "wav_audio_only", "mp4_audio_only")


@pytest.mark.parametrize("kind", BAD_VIDEOS)
def test_unreadable_videos_are_a_clear_error_in_the_library(tmp_path, kind):
    path = bad_video(kind, tmp_path)
    with pytest.raises(VideoError, match="is not a readable video; allowed: "):
        open_source(str(path))


@pytest.mark.parametrize("kind", ["random_bytes", "wav_audio_only"])
def test_unreadable_videos_are_one_error_line_and_exit_2_in_the_cli(tmp_path, kind):
    path = bad_video(kind, tmp_path)
    done = run_cli("video", str(path), "--json", str(tmp_path / "counts.json"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = error_lines(done.stderr)
    assert path.name in line and "not a readable video" in line
    assert not (tmp_path / "counts.json").exists()


@pytest.mark.parametrize(("name", "picture_format"), [("photo.mp4", "PNG"), ("photo.avi", "JPEG")])
def test_a_photo_named_as_a_video_is_refused_not_played_as_one_frame(tmp_path, name, picture_format):
    path = tmp_path / name
    extension = ".png" if picture_format == "PNG" else ".jpg"
    path.write_bytes(cv2.imencode(extension, dev_photo())[1].tobytes())
    assert cv2.VideoCapture(str(path)).read()[0]  # FFmpeg alone would play it as a one-frame video
    with pytest.raises(VideoError, match=f"{name} is a still {picture_format} picture, not a video; allowed"):
        open_source(str(path))
    done = run_cli("video", str(path), "--json", str(tmp_path / "counts.json"))
    assert done.returncode == 2 and len(error_lines(done.stderr)) == 1 and "Images page" in done.stderr


def test_a_raw_mpeg_video_stream_is_still_a_video(tmp_path):
    """Pillow identifies a raw MPEG-2 stream (.m2v) as an "MPEG" picture: the photo check must not."""
    path = tmp_path / "entrance.m2v"
    with av.open(str(path), "w", format="mpeg2video") as out:
        stream = out.add_stream("mpeg2video", rate=25)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        for frame in street_frames(5):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with open_source(str(path)) as frames:
        assert sum(1 for _ in frames) == 5


def test_a_video_with_no_frames_says_so(tmp_path):
    path = tmp_path / "empty.avi"
    cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (64, 48)).release()
    assert cv2.VideoCapture(str(path)).isOpened()  # a valid container, but with nothing in it
    with pytest.raises(VideoError, match=r"empty\.avi has no frame that can be read"):
        open_source(str(path))


def test_a_truncated_video_keeps_and_reports_the_frames_before_the_cut(tmp_path, pipeline):
    """An MJPEG AVI cut in half (a copy that stopped midway): the first half is processed and kept."""
    clip = truncated(write_clip(tmp_path / "clip.avi", "MJPG"))
    out = tmp_path / "annotated.avi"
    summary = process_video(str(clip), pipeline, out, progress=False)
    assert 0 < summary.frames < CLIP_FRAMES
    assert [c.frame for c in summary.counts] == list(range(summary.frames))
    assert "truncated or damaged" in summary.stopped_early
    assert f"after {summary.frames} of " in summary.stopped_early
    with open_source(str(out)) as written:
        assert len(list(written)) == summary.frames
    assert sum(c.faces for c in summary.counts) > 0


def test_the_video_cli_keeps_a_truncated_files_frames(tmp_path, capsys):
    clip = truncated(write_clip(tmp_path / "clip.avi", "MJPG"))
    counts, out = tmp_path / "counts.json", tmp_path / "annotated.mp4"
    argv = ["video", str(clip), "--json", str(counts), "--out", str(out), "--weights", str(WEIGHTS)]
    assert main(argv) == 0
    data = json.loads(counts.read_text())
    assert 0 < data["frames"] == len(data["counts"]) < CLIP_FRAMES and out.is_file()
    assert "truncated or damaged" in data["stopped_early"]
    printed = capsys.readouterr().out
    assert f"{data['frames']} frames at" in printed and "stopped early: the video ended" in printed


class MjpegServer:
    """A local HTTP MJPEG camera on a real socket: it sends `frames` JPEGs of real photos, then either
    closes the connection (`then="close"`) or keeps it open and says nothing (`then="silent"`).
    `frames=None` with `then="silent"`: accepts the connection and never answers at all."""

    def __init__(self, frames: int | None, then: str):
        self.frames, self.then = frames, then
        self.jpegs = [cv2.imencode(".jpg", frame)[1].tobytes() for frame in street_frames(len(STEMS))]
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(4)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.getsockname()[1]}/camera.mjpg"

    def __enter__(self) -> MjpegServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        self.server.close()
        self.thread.join(timeout=10)

    def _serve(self) -> None:
        try:
            connection, _ = self.server.accept()
        except OSError:  # closed before anyone connected
            return
        with connection:
            if self.frames is not None:
                connection.recv(65536)  # the request
                connection.sendall(
                    b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n"
                )
                for index in range(self.frames):
                    jpeg = self.jpegs[index % len(self.jpegs)]
                    header = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                    connection.sendall(header + jpeg + b"\r\n")
            if self.then == "silent":
                self.stop.wait(60)


@pytest.mark.parametrize("then", ["close", "silent"])
def test_a_stream_that_drops_or_goes_silent_midway_keeps_its_frames(pipeline, then):
    with MjpegServer(12, then) as server:
        started = time.monotonic()
        summary = process_video(open_source(server.url, timeout_s=2), pipeline, progress=False)
        waited = time.monotonic() - started
    assert summary.frames == 12 and [c.frame for c in summary.counts] == list(range(12))
    assert sum(c.faces for c in summary.counts) > 0
    assert waited < 60  # a silent stream ends by the read timeout, not by the server giving up


@pytest.mark.parametrize("then", ["close", "silent"])
def test_the_video_cli_reports_a_stream_that_drops_midway(tmp_path, capsys, then):
    counts = tmp_path / "counts.json"
    with MjpegServer(12, then) as server:
        argv = [
            "video",
            server.url,
            "--timeout",
            "2",
            "--json",
            str(counts),
            "--weights",
            str(WEIGHTS),
        ]
        assert main(argv) == 0
    assert json.loads(counts.read_text())["frames"] == 12
    assert "the stream ended after 12 frames" in capsys.readouterr().out


SILENT_SERVERS = {
    "silent_server": lambda: MjpegServer(None, "silent"),  # accepts, never answers
    "headers_then_silence": lambda: MjpegServer(0, "silent"),  # answers the headers, then no frame
}


@pytest.mark.parametrize(
    "source", ["rtsp://127.0.0.1:9/stream", "http://127.0.0.1:9/video.mjpg", *SILENT_SERVERS]
)
def test_the_video_cli_on_an_unreachable_or_silent_stream_is_one_error_line(source, capsys):
    """A closed port is refused at once; a silent server is given up after the 2 s timeout."""
    if source in SILENT_SERVERS:
        with SILENT_SERVERS[source]() as server:
            assert main(["video", server.url, "--timeout", "2", "--weights", str(WEIGHTS)]) == 2
    else:
        assert main(["video", source, "--timeout", "2"]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert "could not be opened within 2 s" in line or "no frame could be read" in line


# --- 3. random frames and boxes into the pipeline ---------------------------------------------------
def frame_shapes():
    side = st.integers(0, 48) | st.sampled_from([1, 2, 3, 600])
    return st.one_of(
        st.tuples(side, side),  # grayscale 2-D
        st.tuples(side, side, st.sampled_from([1, 2, 3, 4])),
        st.tuples(side, side, st.just(3)),  # the valid layout, more often
        st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
    )


DTYPES = st.sampled_from([np.uint8, np.uint8, np.uint16, np.int16, np.float32, np.float64, np.bool_])


def check_result(result: FrameResult, frame: np.ndarray) -> None:
    assert isinstance(result, FrameResult)
    assert (result.frame_width, result.frame_height) == (frame.shape[1], frame.shape[0])
    for face in result.faces:
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= frame.shape[1] and 0 <= y1 < y2 <= frame.shape[0]
        assert face.label in CLASS_NAMES and 0.0 <= face.probability <= 1.0


@settings(
    max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(frame=hnp.arrays(DTYPES, frame_shapes(), elements=None))
def test_random_frames_are_processed_or_refused_clearly(pipeline, frame):
    valid = frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8 and min(frame.shape[:2]) > 0
    try:
        result = pipeline.process(frame)
    except MaskappError as error:
        assert not valid, f"a valid {frame.shape} frame was refused: {error}"
        assert str(error).startswith("a frame must ")
        return
    assert valid, f"a {frame.dtype} {frame.shape} frame was accepted"
    check_result(result, frame)


@settings(
    max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    window=st.tuples(st.floats(0, 1), st.floats(0, 1), st.integers(1, 400), st.integers(1, 400)),
    layout=st.sampled_from(["bgr", "gray", "bgra", "strided"]),
)
def test_random_pieces_of_a_real_photo_are_processed_or_refused_clearly(pipeline, window, layout):
    """Crops of a street photo at random places and sizes (1x1, 1xN, faces cut by the border)."""
    photo = dev_photo(STEMS[0])
    fx, fy, width, height = window
    x = int(fx * (photo.shape[1] - 1))
    y = int(fy * (photo.shape[0] - 1))
    piece = photo[y : y + height, x : x + width]
    if layout == "gray":
        piece = cv2.cvtColor(piece, cv2.COLOR_BGR2GRAY)
    elif layout == "bgra":
        piece = cv2.cvtColor(piece, cv2.COLOR_BGR2BGRA)
    elif layout == "strided":
        piece = piece[::2, ::-1]  # a non-contiguous view, mirrored
    try:
        result = pipeline.process(piece)
    except MaskappError as error:
        assert layout in ("gray", "bgra"), str(error)
        assert "HxWx3" in str(error)
        return
    assert layout in ("bgr", "strided")
    check_result(result, piece)


COORD = st.integers(-2000, 2000)


@settings(max_examples=FUZZ_EXAMPLES * 3, deadline=None)
@given(
    size=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    box=st.tuples(COORD, COORD, COORD, COORD),
    margin=st.floats(0, 2),
)
def test_crop_face_with_any_box_gives_a_non_empty_crop_inside_the_frame(size, box, margin):
    """Out-of-frame, zero-size and inverted boxes included: never empty, never an exception."""
    height, width = size
    frame = np.arange(height * width * 3, dtype=np.uint32).astype(np.uint8).reshape(height, width, 3)
    crop = crop_face(frame, box, margin)
    assert crop.ndim == 3 and crop.shape[2] == 3
    assert 1 <= crop.shape[0] <= height and 1 <= crop.shape[1] <= width
    assert np.shares_memory(crop, frame)  # a view into the frame, not new pixels


@pytest.mark.parametrize(
    "box",
    [
        (0, 0, 0, 0),
        (10, 10, 10, 10),
        (30, 30, 5, 5),
        (-50, -50, -10, -10),
        (900, 900, 1000, 1000),
        (5, -80, 6, 900),
    ],
    ids=["zero_at_origin", "zero_inside", "inverted", "left_above", "right_below", "one_pixel_tall_strip"],
)
def test_crop_face_named_bad_boxes_feed_the_classifier(pipeline, box):
    crop = crop_face(cv2.resize(dev_photo(), (64, 48)), box)
    assert crop.size > 0
    (prediction,) = pipeline.classifier.classify([crop])
    assert prediction.label in CLASS_NAMES


# --- 4. runs for the metrics page: missing files, malformed lines and values, NaN losses ------------
GOOD_EPOCH = {"epoch": 1, "train_loss": 0.5, "train_accuracy": 0.8, "val_loss": 0.6, "val_accuracy": 0.7}
GOOD_EPOCH |= {"lr": 0.001, "seconds": 3.0}
GOOD_CLASS = {"precision": 0.9, "recall": 0.8, "f1": 0.85, "support": 10}
GOOD_METRICS = {"accuracy": 0.9, "balanced_accuracy": 0.9, "labels": ["with_mask", "without_mask"]}
GOOD_METRICS |= {"per_class": {"with_mask": GOOD_CLASS, "without_mask": GOOD_CLASS}}
GOOD_METRICS |= {"confusion_matrix": [[9, 1], [1, 9]]}
NAN_EPOCH = json.dumps(GOOD_EPOCH).replace("0.5", "NaN").replace("0.6", "Infinity")
BAD_RUN_FILES = {
    "history_nan_losses": ("history.jsonl", NAN_EPOCH + "\n", 0),
    "history_bad_lines": (
        "history.jsonl",
        "not json\n[1, 2]\nnull\n" + json.dumps({"epoch": 2}) + "\n" + json.dumps(GOOD_EPOCH) + "\n",
        4,
    ),
    "history_wrong_types": ("history.jsonl", json.dumps({**GOOD_EPOCH, "train_loss": "low", "lr": [1]}), 1),
    "history_not_utf8": ("history.jsonl", "\udcff\udcfe garbage", 1),
    "system_wrong_types": (
        "system.jsonl",
        json.dumps({"seconds": "a", "cpu_percent": 1, "ram_percent": 2, "rss_mb": {}}),
        1,
    ),
    "metrics_not_an_object": ("metrics.json", "[1, 2]", 1),
    "metrics_not_json": ("metrics.json", "{accuracy: 1", 1),
    "metrics_per_class_a_list": ("metrics.json", json.dumps({**GOOD_METRICS, "per_class": []}), 1),
    "metrics_missing_keys": ("metrics.json", json.dumps({"accuracy": 0.9}), 1),
}


@pytest.mark.parametrize("case", list(BAD_RUN_FILES))
def test_malformed_run_files_become_warnings_and_the_plots_still_draw(tmp_path, case):
    name, text, expected_warnings = BAD_RUN_FILES[case]
    run_dir = tmp_path / case
    run_dir.mkdir()
    (run_dir / CONFIG_FILE).write_text(json.dumps({"model": "cnn"}))
    (run_dir / name).write_bytes(text.encode("utf-8", "surrogateescape"))
    run = load_run(run_dir)
    about_it = [w for w in run.warnings if name in w]
    assert len([w for w in about_it if "is missing" not in w]) == expected_warnings, run.warnings
    for record in run.history:
        assert all(v is None or isinstance(v, int | float) for v in vars(record).values())
    plots.training_curves([run])
    plots.comparison_figure([run])
    plots.comparison_rows([run])
    plots.system_usage_figure(run)
    if run.metrics is not None:
        plots.confusion_matrix_figure(run.metrics)
        plots.per_class_rows(run.metrics)


@pytest.mark.parametrize("case", ["no_directory", "no_config", "config_not_json", "config_a_list"])
def test_a_run_without_a_readable_config_is_one_clear_error(tmp_path, case):
    run_dir = tmp_path / "run"
    if case != "no_directory":
        run_dir.mkdir()
    if case == "config_not_json":
        (run_dir / CONFIG_FILE).write_text("{oops")
    elif case == "config_a_list":
        (run_dir / CONFIG_FILE).write_text("[]")
    with pytest.raises(RunFormatError) as caught:
        load_run(run_dir)
    assert "\n" not in str(caught.value) and ("run" in str(caught.value))


# --- result files --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "command",
    [
        ["evaluate", str(TWELVE_K / "test"), "--json", "{bad}"],
        ["evaluate-tracking", "--json", "{bad}"],
        ["bench", "--json", "{bad}"],
        ["events", "{log}", "--csv", "{bad}"],
        ["pack-data", "{bad}"],
        ["train", "--out", "{bad}"],
    ],
    ids=lambda command: command[0],
)
def test_a_result_path_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys, caplog, command):
    """Minutes of work, then no file, was the old way; now one error line and nothing done."""
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    bad = a_file / "result.out"
    log = tmp_path / "events.sqlite"
    caplog.set_level(logging.INFO)
    assert main([arg.format(bad=bad, log=log) for arg in command]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines() == [err.strip()] and err.startswith("error: cannot write")
    assert str(bad) in err and "allowed: a writable" in err
    assert f"({a_file} is a file, not a folder)" in err  # not mkdir's puzzling "File exists"
    assert not [record for record in caplog.records if record.name.startswith("maskapp")]
    assert not log.exists()


# --- a file where a folder is expected, and the reverse ------------------------------------------------
@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["evaluate", "{file}"], "error: data folder {file} is a file, not a folder; give a folder of class"),
        (
            ["train", "--data", "{file}", "--out", "{tmp}"],
            "error: data folder {file} is a file, not a folder",
        ),
        (
            ["evaluate-detection", "--images", "{file}", "--annotations", "{tmp}"],
            "error: images folder {file} is a file, not a folder; give the folder of the photos",
        ),
        (
            ["evaluate-detection", "--images", "{tmp}", "--annotations", "{file}"],
            "error: annotations folder {file} is a file, not a folder; give a folder of PASCAL VOC",
        ),
        (["video", "{tmp}"], "error: video file {tmp} is a folder, not a file; allowed: a video file"),
    ],
    ids=lambda value: value[0] if isinstance(value, list) else None,
)
def test_a_file_for_a_folder_or_a_folder_for_a_file_is_named_as_such(tmp_path, capsys, command, message):
    """They were reported as not existing, which sends the user looking for a typo in a path that is there."""
    a_file = tmp_path / "faces.jpg"
    a_file.write_text("a file")
    assert main([arg.format(file=a_file, tmp=tmp_path) for arg in command]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(message.format(file=a_file, tmp=tmp_path))


@pytest.mark.parametrize(
    "command",
    [
        ["detect", ""],
        ["export", ""],
        ["events", ""],
        ["evaluate-detection", "--images", "", "--annotations", "{tmp}"],
        ["evaluate-tracking", "--json", ""],
        ["video", "{tmp}/clip.avi", "--out", " "],
    ],
    ids=lambda command: command[0],
)
def test_an_empty_path_is_one_error_line_not_the_working_directory(tmp_path, capsys, command):
    """Path("") is ".": `detect "$PHOTOS"` with the variable unset read every image of the working
    directory, and the other commands named the working directory in their errors."""
    with pytest.raises(SystemExit) as stopped:
        main([arg.format(tmp=tmp_path) for arg in command])
    assert stopped.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith(f"python -m maskapp {command[0]}: error: argument ")
    assert last.endswith(": the path is empty; give a file or folder path")


def path_flags() -> list[tuple[str, str]]:
    """(command, flag) of every argument that takes a path, positional ones by their metavar."""
    found = []
    for command, sub in build_parser()._subparsers._group_actions[0].choices.items():
        for action in sub._actions:
            if action.type in (typed_path, video_source):
                found.append((command, action.option_strings[0] if action.option_strings else action.dest))
    return found


@pytest.mark.parametrize(("command", "flag"), path_flags())
def test_every_path_flag_takes_tilde_as_the_home_folder_and_refuses_a_blank(command, flag, capsys):
    """`--out=~/runs` (the shell expands no `~` after '=') and a quoted "~/runs" were taken literally: a
    folder named '~' in the working directory. A blank argument was a file named ' '."""
    action = next(
        a
        for a in build_parser()._subparsers._group_actions[0].choices[command]._actions
        if flag in (a.dest, *a.option_strings)
    )
    assert str(action.type("~/runs")) == str(Path.home() / "runs")
    if action.type is typed_path:
        with pytest.raises(argparse.ArgumentTypeError, match="the path is empty; give a file or folder path"):
            action.type(" ")


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--out=~/runs", "--data", "~/photos", "--pack", "~/p.npz", "--init-weights", "~/m.pt"],
        ["pack-data", "p.npz", "--data=~/photos"],
        ["quantize-detector", "--data", "~/photos"],
    ],
    ids=lambda args: args[0],
)
def test_config_paths_take_tilde_as_the_home_folder(args, monkeypatch, tmp_path):
    """The TrainConfig and QuantizeConfig paths (str fields made absolute by config_from_args)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    config = config_from_args(
        build_parser().parse_args(args), QuantizeConfig if args[0] == "quantize-detector" else TrainConfig
    )
    typed = [arg.split("=")[-1] for arg in args if "~" in arg]  # --out=~/runs and ~/photos
    paths = [config.data] if isinstance(config.data, str) else list(config.data)
    paths += [getattr(config, name, "") for name in ("out", "pack", "init_weights")]
    assert sorted(p for p in paths if p.startswith(str(tmp_path))) == sorted(
        str(tmp_path / t[2:]) for t in typed
    )


def test_a_json_flag_with_tilde_after_equals_writes_in_the_home_folder(tmp_path):
    """The whole command: `detect PHOTO --json=~/faces.json` from another folder."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    photo = str(DEV / "images" / f"{PHOTO}.png")
    done = run_cli("detect", photo, "--json=~/faces.json", cwd=work, env={"HOME": str(home)}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert list(json.loads((home / "faces.json").read_text())["images"]) == [Path(photo).name]
    assert list(work.iterdir()) == []


@pytest.mark.parametrize("flag", ["--pack", "--init-weights", "--out", "--data"])
def test_a_blank_train_path_is_one_error_line(flag, tmp_path):
    """`--pack " "` was a file named ' ' in the working directory ("does not exist"), `--out " "` a
    folder named ' '; '' stays "none" for --pack and --init-weights."""
    done = run_cli("train", flag, " ", cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    assert done.stderr == (
        f"error: {flag} is empty (an unset shell variable?); allowed: a path, or no {flag} for its default\n"
    )
    assert list(tmp_path.iterdir()) == []
