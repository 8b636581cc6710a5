"""Soak (issue 5): the Live page's frame callback over 5,000 real frames; memory must stay flat.

The callback is the one the Live page hands to streamlit-webrtc (`make_frame_callback`), driven here
with av.VideoFrame objects built from real street photos at 320x240, with the live detector. The
process RSS is read after a 200-frame warm-up and at the end; the figures are printed and written to
the soak section of docs/reliability.md.
"""

from __future__ import annotations

import datetime
import re

import av
import cv2
import psutil
import pytest

from maskapp import DEFAULT_WEIGHTS, PROJECT_ROOT
from maskapp.detect import LIVE_DETECTOR
from maskapp.live import LiveProcessor, make_frame_callback
from maskapp.pipeline import load_pipeline
from tests.test_detect import dev_photo

FRAMES = 5000
WARM_UP = 200
MAX_GROWTH_MB = 60.0
STEMS = ("maksssksksss0", "maksssksksss104", "maksssksksss105", "maksssksksss107", "maksssksksss108")
REPORT = PROJECT_ROOT / "docs" / "reliability.md"
SOAK_BEGIN, SOAK_END = "<!-- soak:begin -->", "<!-- soak:end -->"


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def write_report(text: str) -> None:
    """Replace the soak block of docs/reliability.md (left alone when the file or block is missing)."""
    if not REPORT.is_file():
        return
    doc = REPORT.read_text()
    block = re.compile(re.escape(SOAK_BEGIN) + ".*?" + re.escape(SOAK_END), re.S)
    if block.search(doc):
        REPORT.write_text(block.sub(lambda _: f"{SOAK_BEGIN}\n{text}\n{SOAK_END}", doc))


@pytest.mark.slow
def test_the_live_callback_runs_5000_frames_with_flat_memory():
    processor = LiveProcessor(load_pipeline(DEFAULT_WEIGHTS, LIVE_DETECTOR))
    callback = make_frame_callback(processor)
    photos = [cv2.resize(dev_photo(stem), (320, 240)) for stem in STEMS]
    faces = errors = 0
    start_mb = None
    for index in range(FRAMES):
        # a new frame object each time, as the browser stream gives; mirrored every other cycle
        pixels = photos[index % len(photos)]
        frame = av.VideoFrame.from_ndarray(pixels if index % 10 < 5 else pixels[:, ::-1], format="bgr24")
        frame.pts = index
        out = callback(frame)
        assert out.width == 320 and out.height == 240 and out.pts == index
        stats = processor.latest()
        assert stats.frame_index == index + 1
        faces += stats.faces
        errors += stats.error is not None
        if index + 1 == WARM_UP:
            start_mb = rss_mb()
    end_mb = rss_mb()
    growth = end_mb - start_mb
    line = (
        f"| {FRAMES} | {WARM_UP} | {start_mb:.1f} MB | {end_mb:.1f} MB | {growth:+.1f} MB | "
        f"{faces} | {errors} | {datetime.date.today().isoformat()} |"
    )
    print(f"soak: {FRAMES} frames, RSS after warm-up {start_mb:.1f} MB, at end {end_mb:.1f} MB")
    print(f"soak: growth {growth:+.1f} MB, {faces} faces, {errors} frame errors")
    header = (
        "| frames | warm-up frames | RSS after warm-up | RSS at end | growth | faces seen | frame errors "
        "| run |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    write_report(f"{header}\n{line}")
    assert errors == 0 and faces > FRAMES  # the frames were really processed, several faces each
    assert growth < MAX_GROWTH_MB, f"RSS grew {growth:.1f} MB over {FRAMES - WARM_UP} frames"
