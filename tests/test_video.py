"""Video files, cameras and streams: frames in, annotated video and per-frame counts out."""

from __future__ import annotations

import json
import os
import shutil
import socket
from dataclasses import asdict

import av
import cv2
import numpy as np
import pytest

from maskapp.app import video as video_page
from maskapp.cli import main
from maskapp.errors import MaskappError, VideoError
from maskapp.labels import CLASS_NAMES, WITH_MASK, WITHOUT_MASK, WORN_INCORRECTLY
from maskapp.media import video
from maskapp.media.video import FrameSource, open_source, process_video
from maskapp.vision.draw import annotate
from tests.conftest import (
    ASCII_LOCALE,
    TWO_CLASS_WEIGHTS,
    WEIGHTS,
    dev_photo,
    http_folder,
    run_cli,
    write_people_clip,
)

STEMS = ("maksssksksss0", "maksssksksss104", "maksssksksss105", "maksssksksss0")
FRAMES = 8


def write_clip(path, frames: int, fourcc: str = "mp4v"):
    """`frames` 640x480 frames of real street photos, two frames each, at 10 fps."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, (640, 480))
    for index in range(frames):
        writer.write(cv2.resize(dev_photo(STEMS[index // 2 % len(STEMS)]), (640, 480)))
    writer.release()
    return path


def plain_opencv_frames(path) -> list[np.ndarray]:
    """Every frame as a bare cv2.VideoCapture reads it, from the start, with no probing or seeking."""
    capture, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """An 8-frame 640x480 video of real street photos, two frames each."""
    return write_clip(tmp_path_factory.mktemp("video") / "street.mp4", FRAMES)


def test_a_file_source_iterates_bgr_frames(clip):
    with open_source(str(clip)) as source:
        assert isinstance(source, FrameSource) and not source.is_stream
        assert source.frame_count == FRAMES and source.fps == pytest.approx(10.0)
        frames = list(source)
    assert len(frames) == FRAMES
    assert all(frame.shape == (480, 640, 3) and frame.dtype == np.uint8 for frame in frames)


def test_a_file_source_gives_every_frame_from_the_first(clip):
    with open_source(str(clip)) as source:
        frames = list(source)
    expected = plain_opencv_frames(clip)
    assert len(frames) == len(expected) == FRAMES
    assert all(np.array_equal(got, want) for got, want in zip(frames, expected, strict=True))


@pytest.mark.parametrize(("name", "fourcc"), [("one.mp4", "mp4v"), ("one.avi", "MJPG")])
def test_a_one_frame_video_gives_its_frame(tmp_path, pipeline, name, fourcc):
    path = write_clip(tmp_path / name, 1, fourcc)
    (expected,) = plain_opencv_frames(path)
    with open_source(str(path)) as source:
        frames = list(source)
    assert len(frames) == 1 and np.array_equal(frames[0], expected)
    summary = process_video(str(path), pipeline, progress=False)
    assert summary.frames == 1 and summary.stopped_early is None and summary.counts[0].faces > 0


def test_the_video_command_reads_a_one_frame_video(tmp_path, capsys):
    path = write_clip(tmp_path / "one.mp4", 1)
    assert main(["video", str(path), "--weights", str(WEIGHTS)]) == 0
    assert capsys.readouterr().out.startswith("1 frames at")


@pytest.fixture
def annotate_calls(monkeypatch) -> list[int]:
    """Counts the calls of the real annotate() from the video loop and the Video page's helpers."""
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return annotate(*args, **kwargs)

    for module in (video, video_page):
        monkeypatch.setattr(module, "annotate", counted)
    return calls


def test_frames_are_annotated_only_when_an_annotated_video_is_written(
    clip, pipeline, tmp_path, annotate_calls
):
    summary = process_video(str(clip), pipeline, None, progress=False, max_frames=3)
    assert summary.frames == 3 and annotate_calls == []
    process_video(str(clip), pipeline, tmp_path / "out.avi", progress=False, max_frames=3)
    assert len(annotate_calls) == 3


def test_a_watched_stream_annotates_each_frame_once(tmp_path, pipeline, annotate_calls):
    write_clip(tmp_path / "camera.avi", 4, "MJPG")
    shown = []
    with http_folder(tmp_path) as url:
        run = video_page.watch_stream(
            pipeline, url + "camera.avi", max_seconds=300, on_frame=lambda i, image, r: shown.append(image)
        )
    assert run.summary.frames == len(shown) == 4
    assert len(annotate_calls) == 4
    assert not np.array_equal(shown[0], cv2.resize(dev_photo(STEMS[0]), (640, 480)))  # boxes drawn


def test_a_stream_watched_to_its_time_limit_says_so_in_the_readers_words(tmp_path, pipeline):
    """The Video page's *Stop after (seconds)* reached: the summary said "Stopped early: stopped by the
    caller", naming nobody the reader knows; it names the limit they set."""
    write_clip(tmp_path / "camera.avi", 4, "MJPG")
    with http_folder(tmp_path) as url:
        run = video_page.watch_stream(pipeline, url + "camera.avi", max_seconds=0)
    assert run.summary.frames == 1 and run.summary.stopped_early == "reached the 0-second limit"
    with http_folder(tmp_path) as url:
        whole = video_page.watch_stream(pipeline, url + "camera.avi", max_seconds=300)
    assert whole.summary.frames == 4 and whole.summary.stopped_early is None


def test_a_watched_streams_charts_run_in_the_seconds_it_was_watched(tmp_path, pipeline):
    """A stream's frames come as fast as they are processed and its frame rate is a claim or a guess:
    its charts drew frame / fps, so an MJPEG camera watched for 20 s read 3 s. Now the seconds of the
    clock at which each frame was watched (a clock two seconds further at each reading here)."""
    write_clip(tmp_path / "camera.avi", 4, "MJPG")
    readings = iter(range(0, 100, 2))
    with http_folder(tmp_path) as url:
        run = video_page.watch_stream(
            pipeline, url + "camera.avi", max_seconds=300, clock=lambda: float(next(readings))
        )
    assert [sample.seconds for sample in run.samples()] == [2.0, 4.0, 6.0, 8.0]
    assert [point.seconds for point in run.people_points()] == [2.0, 4.0, 6.0, 8.0]


def test_process_video_writes_the_annotated_video_and_counts(clip, pipeline, tmp_path):
    out = tmp_path / "annotated.mp4"
    summary = process_video(str(clip), pipeline, out, progress=False)
    assert summary.frames == FRAMES and summary.stopped_early is None
    assert [c.frame for c in summary.counts] == list(range(FRAMES))
    assert all(c.faces == c.masked + c.unmasked for c in summary.counts)
    assert summary.counts[0].faces > 0
    with open_source(str(out)) as written:
        assert written.frame_count == FRAMES
        first = next(iter(written))
    assert first.shape == (480, 640, 3)
    assert json.loads(json.dumps(summary.to_dict()))["frames"] == FRAMES


def test_stopping_early_keeps_what_was_processed(clip, pipeline, tmp_path):
    out = tmp_path / "partial.avi"
    summary = process_video(str(clip), pipeline, out, progress=False, on_frame=lambda i, f, r: i < 2)
    assert summary.frames == 3 and summary.stopped_early == "stopped by the caller"
    with open_source(str(out)) as written:
        assert len(list(written)) == 3


def test_ctrl_c_stops_cleanly_and_keeps_the_frames(clip, pipeline, tmp_path):
    def interrupt(index, frame, result):
        if index == 4:
            raise KeyboardInterrupt

    out = tmp_path / "interrupted.mp4"
    summary = process_video(str(clip), pipeline, out, progress=False, on_frame=interrupt)
    assert summary.frames == 5 and summary.stopped_early.startswith("interrupted")
    with open_source(str(out)) as written:
        assert len(list(written)) == 5


def test_video_command_writes_counts_json(clip, tmp_path, capsys):
    out, counts = tmp_path / "cli.mp4", tmp_path / "counts.json"
    argv = ["video", str(clip), "--out", str(out), "--json", str(counts), "--weights", str(WEIGHTS)]
    assert main([*argv, "--max-frames", "3"]) == 0
    data = json.loads(counts.read_text())
    assert data["frames"] == 3 and len(data["counts"]) == 3 and out.is_file()
    assert "3 frames" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("limit", "stopped"), [(FRAMES, None), (FRAMES - 1, f"reached the {FRAMES - 1}-frame limit")]
)
def test_a_frame_limit_says_stopped_early_only_when_frames_were_left(clip, tmp_path, capsys, limit, stopped):
    counts = tmp_path / "counts.json"
    argv = ["video", str(clip), "--json", str(counts), "--weights", str(WEIGHTS), "--max-frames", str(limit)]
    assert main(argv) == 0
    data = json.loads(counts.read_text())
    assert data["frames"] == limit and data["stopped_early"] == stopped
    assert ("stopped early" in capsys.readouterr().out) == (stopped is not None)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{tmp}/missing.mp4", "does not exist"),
        ("{tmp}/notes.mp4", "not a readable video"),
        ("7", "camera 7 could not be opened"),
        ("rtsp://127.0.0.1:9/stream", "could not be opened within 2 s"),
        ("http://127.0.0.1:9/video.mjpg", "could not be opened within 2 s"),
        ("ftp://example.org/video.mp4", "unsupported stream scheme"),
        ("  ", "empty video source"),
        (
            "http://[::1/live",
            r"stream URL http://\[::1/live is malformed \(Invalid IPv6 URL\); allowed: e\.g\.",
        ),
        ("rtsp://", "stream URL rtsp:// has no host; allowed: e.g. rtsp://camera.local:554/stream"),
        ("rtsp://cam:99999/live", r"is malformed \(Port out of range"),
    ],
)
def test_bad_sources_are_clear_errors(tmp_path, source, message):
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(VideoError, match=message):
        open_source(source.format(tmp=tmp_path), timeout_s=2)


@pytest.mark.parametrize(
    "url",
    ["rtsp://admin:secret@127.0.0.1:9/live?token=abc", "ftp://admin:secret@example.org/v.mp4?token=abc"],
)
def test_a_stream_error_shows_no_password_or_token(url):
    with pytest.raises(VideoError) as raised:
        open_source(url, timeout_s=2)
    assert "127.0.0.1:9/live" in str(raised.value) or "example.org/v.mp4" in str(raised.value)
    assert "secret" not in str(raised.value) and "abc" not in str(raised.value)


def test_a_stream_is_named_without_its_password(tmp_path):
    """The name that the summary, the JSON and the pages show."""
    write_clip(tmp_path / "camera.avi", 2, "MJPG")
    with http_folder(tmp_path) as url:
        address = url.replace("http://", "http://viewer:secret@") + "camera.avi?token=abc"
        with open_source(address, timeout_s=10) as frames:
            assert frames.source == url + "camera.avi"


@pytest.mark.parametrize("limit", ["0", "-1", "x"])
def test_a_frame_limit_under_one_is_refused(clip, capsys, limit):
    with pytest.raises(SystemExit) as exited:
        main(["video", str(clip), "--max-frames", limit])
    assert exited.value.code == 2 and "is not a frame count" in capsys.readouterr().err
    with pytest.raises(VideoError, match="frame limit must be 1 or more"):
        process_video(str(clip), None, progress=False, max_frames=0)


def test_video_command_bad_source_is_one_error_line(tmp_path, capsys):
    assert main(["video", str(tmp_path / "missing.mp4")]) == 2
    assert capsys.readouterr().err.startswith("error: video file")


@pytest.mark.parametrize("timeout", ["nan", "0", "-1", "1e308"])
def test_a_stream_timeout_that_is_not_a_duration_is_one_error_line(capsys, timeout):
    # nan and 1e308 were a ValueError / OverflowError traceback on a stream, silently ignored on a file
    assert main(["video", "http://127.0.0.1:9/stream", "--timeout", timeout]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: stream timeout must be a number of seconds above 0") and err.count("\n") == 1
    )


@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_a_stream_that_never_answers_times_out(scheme):
    """A server that accepts the connection and then says nothing: the open gives up after the timeout."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        url = f"{scheme}://127.0.0.1:{server.getsockname()[1]}/stream"
        with pytest.raises(VideoError, match="could not be opened within 1 s"):
            open_source(url, timeout_s=1)


# --- three classes ---------------------------------------------------------------------------------
FRAME_KEYS = ["frame", "faces", "masked", "unmasked", "compliance", "latency_ms", *CLASS_NAMES]


def test_per_frame_counts_by_class_from_a_three_class_model(clip, three_class_pipeline):
    summary = process_video(str(clip), three_class_pipeline, None, progress=False, max_frames=4)
    assert summary.frames == 4 and summary.faces_seen > 0
    for counts in summary.counts:
        assert counts.with_mask == counts.masked  # compliant: with_mask only
        assert counts.mask_worn_incorrectly + counts.without_mask == counts.unmasked
        assert sum(counts.label_counts.values()) == counts.faces
    seen = summary.label_counts_seen
    assert list(seen) == list(CLASS_NAMES) and sum(seen.values()) == summary.faces_seen
    assert summary.compliance == pytest.approx(seen[WITH_MASK] / summary.faces_seen)


def run_video_json(clip, tmp_path, weights) -> dict:
    out = tmp_path / f"{weights.stem}-{len(list(tmp_path.iterdir()))}.json"
    assert main(["video", str(clip), "--json", str(out), "--weights", str(weights), "--max-frames", "3"]) == 0
    return json.loads(out.read_text())


def test_video_json_three_class_schema(clip, tmp_path, three_class_weights, capsys):
    data = run_video_json(clip, tmp_path, three_class_weights)
    assert data["classes"] == list(CLASS_NAMES) and data["frames"] == 3
    for counts in data["counts"]:
        assert list(counts)[: len(FRAME_KEYS)] == FRAME_KEYS
        assert counts["with_mask"] == counts["masked"]
        assert counts["mask_worn_incorrectly"] + counts["without_mask"] == counts["unmasked"]
    totals = data["label_counts"]
    assert list(totals) == list(CLASS_NAMES) and sum(totals.values()) == data["faces_seen"] > 0
    assert data["compliance"] == pytest.approx(totals[WITH_MASK] / data["faces_seen"])
    assert f"{totals[WORN_INCORRECTLY]} {WORN_INCORRECTLY}" in capsys.readouterr().out


def test_video_json_from_a_two_class_checkpoint_keeps_its_keys_and_counts_no_badly_worn_mask(clip, tmp_path):
    data = run_video_json(clip, tmp_path, TWO_CLASS_WEIGHTS)
    assert data["classes"] == [WITH_MASK, WITHOUT_MASK]
    assert all(counts["mask_worn_incorrectly"] == 0 for counts in data["counts"])
    assert all(counts["without_mask"] == counts["unmasked"] for counts in data["counts"])
    assert data["label_counts"][WORN_INCORRECTLY] == 0 and data["faces_seen"] > 0


@pytest.mark.parametrize("size", [(1, 1), (1, 200), (3, 5)])
def test_a_video_one_pixel_wide_still_plays_in_the_browser(tmp_path, size):
    """H.264 in yuv420p needs even sides: a side of 1 pixel becomes 2, not 0."""
    writer = video_page.BrowserVideoWriter(tmp_path / "thin.mp4", 10.0)
    for _ in range(3):
        writer.write(np.full((size[1], size[0], 3), 128, np.uint8))
    writer.close()
    assert writer.mp4 == (tmp_path / "thin.mp4").read_bytes()
    with av.open(str(tmp_path / "thin.mp4")) as played:
        frames = list(played.decode(video=0))
    assert len(frames) == 3
    assert (frames[0].width, frames[0].height) == tuple(max(2, side // 2 * 2) for side in size)


@pytest.mark.parametrize(("size", "waiting"), [((3840, 2160), 2), ((640, 480), 8)], ids=["4K", "VGA"])
def test_the_browser_encoders_queue_holds_a_bounded_number_of_bytes(tmp_path, size, waiting):
    """Eight frames waited for the encoder whatever their size: 200 MB of 4K video held while a slow encoder
    caught up. The queue is now bounded by bytes too (64 MiB, at least one frame); small frames keep 8."""
    frame = cv2.resize(dev_photo(), size)
    writer = video_page.BrowserVideoWriter(tmp_path / "big.mp4", 10.0)
    for _ in range(3):
        writer.write(frame)
    assert writer._queue.maxsize == waiting
    assert writer._queue.maxsize * frame.nbytes <= 64 * 2**20
    writer.close()
    with av.open(str(tmp_path / "big.mp4")) as played:
        frames = list(played.decode(video=0))
    assert len(frames) == 3 and (frames[0].width, frames[0].height) == size


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"out_path": "annotated.mp4", "writer": "browser"}, "give out_path or a writer, not both"),
        ({"anonymize": "pixelate"}, "pixelate"),
        ({"out_path": "."}, "it is a folder"),
    ],
    ids=["out-path-and-writer", "bad-anonymize", "out-path-a-folder"],
)
def test_process_video_refusing_its_arguments_closes_the_source_and_writer_it_was_given(
    clip, tmp_path, pipeline, arguments, message
):
    """process_video closes the source and the writer it is given; refusing its arguments it left them
    open (a capture on the upload, with its file handle), for a caller that had handed them over."""
    source = open_source(str(clip))
    writer = video_page.BrowserVideoWriter(tmp_path / "browser.mp4", source.fps)
    given = {**arguments, "writer": writer} if "writer" in arguments else dict(arguments)
    if "out_path" in given:
        given["out_path"] = tmp_path / given["out_path"]
    with pytest.raises(MaskappError, match=message):
        process_video(source, pipeline, progress=False, **given)
    assert not source.capture.isOpened()


def write_phone_clip(path, upright: np.ndarray, display_rotation: int, frames: int = 3):
    """A clip as a phone records it: the sensor's frames stored turned, and a display matrix (the
    rotation tag) that turns them upright, `display_rotation` degrees counter-clockwise."""
    stored = np.ascontiguousarray(np.rot90(upright, k=-display_rotation // 90))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = stored.shape[1], stored.shape[0], "yuv420p"
        stream.set_display_rotation(display_rotation)
        for _ in range(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(stored, format="bgr24")))
        container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("display_rotation", [90, -90, 180])
@pytest.mark.parametrize("served", [False, True], ids=["file", "http"])
def test_a_phone_video_with_a_rotation_tag_gives_upright_frames(tmp_path, pipeline, display_rotation, served):
    """OpenCV applies the display matrix (CAP_PROP_ORIENTATION_AUTO, on by default for FFmpeg): each
    frame comes out as the phone showed it, width and height swapped for a quarter turn; the annotated
    video takes the frames' own size."""
    upright = dev_photo()
    clip = write_phone_clip(tmp_path / "phone.mp4", upright, display_rotation)
    with http_folder(tmp_path) as base, open_source(f"{base}phone.mp4" if served else str(clip)) as source:
        frames = list(source)
    assert len(frames) == 3 and all(frame.shape == upright.shape for frame in frames)
    turns = [np.rot90(upright, k) for k in range(4)]
    errors = [
        np.abs(frames[0].astype(int) - turn.astype(int)).mean()
        for turn in turns
        if turn.shape == upright.shape
    ]
    assert errors[0] == min(errors) and errors[0] < errors[1] / 4  # upright, not turned half round
    summary = process_video(str(clip), pipeline, tmp_path / "annotated.avi", progress=False)
    assert summary.frames == 3 and summary.counts[0].faces > 0
    assert plain_opencv_frames(tmp_path / "annotated.avi")[0].shape == upright.shape


def test_a_non_ascii_video_name_under_an_ascii_locale_is_read_and_written(clip, tmp_path):
    """LANG=C in a bare container: OpenCV crashed the process (a segmentation fault, no message) on the
    source and on --out; the names' bytes are UTF-8, and OpenCV gets them as such."""
    source, out = tmp_path / "rue é.mp4", tmp_path / "annoté.avi"
    shutil.copy(clip, source)
    done = run_cli(
        "video", str(source), "--out", str(out), "--weights", str(WEIGHTS), env=ASCII_LOCALE, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{FRAMES} frames at" in done.stdout and len(plain_opencv_frames(out)) == FRAMES


@pytest.mark.parametrize("flag", ["source", "--out"])
def test_a_video_name_that_is_not_utf8_is_one_error_line(clip, tmp_path, flag):
    """Bytes of another encoding (Latin-1): no str can name the file to OpenCV, so it is refused clearly
    (a segmentation fault before)."""
    latin = tmp_path / os.fsdecode(b"rue \xe9.avi")
    if flag == "source":
        shutil.copy(clip, latin)
        args = [str(latin)]
    else:
        args = [str(clip), "--out", str(latin)]
    done = run_cli("video", *args, "--weights", str(WEIGHTS), timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert "its name is not UTF-8 text" in line and "allowed: a UTF-8 name" in line
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("annotated.xyz", "cannot write video {out}: OpenCV has no writer for the suffix '.xyz'"),
        ("annotated", "cannot write video {out}: OpenCV has no writer for the suffix '(none)'"),
        ("a_folder", "cannot write video {out} (it is a folder)"),
        ("a_file/annotated.mp4", "cannot write {out} ({tmp}/a_file is a file, not a folder)"),
    ],
)
def test_an_annotated_video_path_that_cannot_be_written_is_refused_before_any_work(
    clip, tmp_path, capsys, caplog, out, message
):
    """These failed at the first frame, after the models had loaded and the source had opened."""
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "a_file").write_text("not a folder")
    out = tmp_path / out
    caplog.set_level("INFO")
    assert main(["video", str(clip), "--out", str(out), "--weights", str(WEIGHTS)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: " + message.format(out=out, tmp=tmp_path))
    assert not [record for record in caplog.records if record.name.startswith("maskapp")]  # no loading


def test_checking_an_annotated_video_path_keeps_the_video_already_there(tmp_path):
    earlier = tmp_path / "annotated.mp4"
    earlier.write_bytes(b"an earlier run's video")
    assert video.check_video_out(earlier) == earlier
    assert earlier.read_bytes() == b"an earlier run's video"
    assert video.check_video_out(tmp_path / "new.avi") and not (tmp_path / "new.avi").exists()


# --- the Video page's pace: every frame processed, the page updated a few times a second -------------------
class TickingClock:
    """A clock that moves `step_s` each time it is read: a run at a known pace on any host, not a timing."""

    def __init__(self, step_s: float) -> None:
        self.step_s, self.now = step_s, 0.0

    def __call__(self) -> float:
        self.now += self.step_s
        return self.now


@pytest.fixture(scope="module")
def people_clip(tmp_path_factory):
    """90 frames of three drifting dev-set street photos (15 fps): a clip long enough that an update per
    frame would be many."""
    return write_people_clip(tmp_path_factory.mktemp("paced") / "people.avi", frames_per_scene=30)


@pytest.fixture(scope="module")
def paced_run(people_clip, pipeline):
    """The Video page's analysis of the clip on a clock that moves 20 ms a frame read, with its updates."""
    clock, updates = TickingClock(0.02), []
    run = video_page.analyze_video(
        pipeline,
        people_clip.read_bytes(),
        people_clip.name,
        lambda fraction, preview: updates.append((fraction, preview)),
        clock=clock,
    )
    return run, updates, clock.now


def test_a_long_video_updates_the_page_a_few_times_a_second_and_processes_every_frame(paced_run):
    """Each update is a message the server sends and the browser redraws: with one a frame the page ran well
    under the CLI's rate on a 2-core host (README, The app)."""
    run, updates, seconds = paced_run
    assert run.summary.frames == len(run.summary.counts) == 90
    assert 2 <= len(updates) <= seconds / video_page.PROGRESS_INTERVAL_S + 1
    previews = [preview for _, preview in updates if preview is not None]
    assert 1 <= len(previews) <= seconds / video_page.PREVIEW_INTERVAL_S + 1
    assert updates[0][1] is not None and updates[0][1].shape == (480, 640, 3)  # the first frame shows at once
    assert updates[-1][0] == 1.0  # the bar ends full
    assert [fraction for fraction, _ in updates] == sorted(fraction for fraction, _ in updates)


def test_the_video_pages_analysis_finds_the_clis_people_and_counts(paced_run, people_clip, tmp_path):
    run, _, _ = paced_run
    out = tmp_path / "cli.json"
    assert main(["video", str(people_clip), "--json", str(out), "--weights", str(WEIGHTS)]) == 0
    cli = json.loads(out.read_text())
    assert cli["people"] and [person.to_dict() for person in run.people.people] == cli["people"]
    page_counts = [{**asdict(c), "latency_ms": None} for c in run.summary.counts]
    assert page_counts == [{**c, "latency_ms": None} for c in cli["counts"]]
    assert run.people.second_looks == cli["second_looks"]


def test_bench_video_page_runs_the_page_and_the_command_in_turns_on_one_file(clip, tmp_path, capsys):
    """Figures, not times, are checked: both paths saw the file's frames and found the same people."""
    out = tmp_path / "pace.json"
    argv = ["bench-video-page", str(clip), "--repeats", "2", "--json", str(out), "--weights", str(WEIGHTS)]
    assert main(argv) == 0
    data = json.loads(out.read_text())
    assert data["frames"] == FRAMES and data["same_people"] and len(data["rounds"]) == 2
    assert set(data["medians"]) >= {"page_s", "cli_s", "ratio"}
    assert "page / command" in capsys.readouterr().out
