"""Video files, cameras and streams: frames in, annotated video and per-frame counts out."""

from __future__ import annotations

import json
import socket

import cv2
import numpy as np
import pytest

from maskapp.cli import main
from maskapp.errors import VideoError
from maskapp.media.video import FrameSource, open_source, process_video
from tests.conftest import WEIGHTS, dev_photo

STEMS = ("maksssksksss0", "maksssksksss104", "maksssksksss105", "maksssksksss0")
FRAMES = 8


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """An 8-frame 640x480 video of real street photos, two frames each."""
    path = tmp_path_factory.mktemp("video") / "street.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (640, 480))
    for index in range(FRAMES):
        writer.write(cv2.resize(dev_photo(STEMS[index // 2]), (640, 480)))
    writer.release()
    return path


def test_a_file_source_iterates_bgr_frames(clip):
    with open_source(str(clip)) as source:
        assert isinstance(source, FrameSource) and not source.is_stream
        assert source.frame_count == FRAMES and source.fps == pytest.approx(10.0)
        frames = list(source)
    assert len(frames) == FRAMES
    assert all(frame.shape == (480, 640, 3) and frame.dtype == np.uint8 for frame in frames)


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
    ("source", "message"),
    [
        ("{tmp}/missing.mp4", "does not exist"),
        ("{tmp}/notes.mp4", "not a readable video"),
        ("7", "camera 7 could not be opened"),
        ("rtsp://127.0.0.1:9/stream", "could not be opened within 2 s"),
        ("http://127.0.0.1:9/video.mjpg", "could not be opened within 2 s"),
        ("ftp://example.org/video.mp4", "unsupported stream scheme"),
        ("  ", "empty video source"),
    ],
)
def test_bad_sources_are_clear_errors(tmp_path, source, message):
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(VideoError, match=message):
        open_source(source.format(tmp=tmp_path), timeout_s=2)


def test_video_command_bad_source_is_one_error_line(tmp_path, capsys):
    assert main(["video", str(tmp_path / "missing.mp4")]) == 2
    assert capsys.readouterr().err.startswith("error: video file")


@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_a_stream_that_never_answers_times_out(scheme):
    """A server that accepts the connection and then says nothing: the open gives up after the timeout."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        url = f"{scheme}://127.0.0.1:{server.getsockname()[1]}/stream"
        with pytest.raises(VideoError, match="could not be opened within 1 s"):
            open_source(url, timeout_s=1)
