"""The live page's worker side: alert debouncing, FPS, the result holder, the frame callback on real
photos through the real pipeline, ICE configuration and the alert sound."""

from __future__ import annotations

import gc
import io
import json
import os
import threading
import time
import wave

import av
import cv2
import numpy as np
import psutil
import pytest

from maskapp import PROJECT_ROOT
from maskapp.app import ui
from maskapp.app.live import (
    AlertDebouncer,
    FpsMeter,
    LatestResult,
    LiveProcessor,
    LiveStats,
    alert_wav,
    parse_ice_servers,
)
from maskapp.config import InferenceConfig
from maskapp.errors import LiveConfigError
from maskapp.media.images import read_image
from maskapp.vision.pipeline import load_pipeline
from tests.conftest import DEV, letterbox, run_in_threads

PHOTOS = DEV / "images"
UNMASKED_PHOTO = PHOTOS / "maksssksksss609.png"  # one person, no mask, large face
MASKED_PHOTO = PHOTOS / "maksssksksss313.png"  # one person with a mask
ARTIFACTS = PROJECT_ROOT / "test-artifacts"


def webcam_frame(path, width=640, height=480) -> np.ndarray:
    return letterbox(read_image(path), width, height)


def test_alert_starts_after_n_consecutive_unmasked_frames_once_per_episode():
    debouncer = AlertDebouncer(trigger_frames=3, clear_frames=2)
    states = [debouncer.update(flag) for flag in (True, True, False, True, True, True, True, True)]
    assert [s.active for s in states] == [False, False, False, False, False, True, True, True]
    assert [s.started for s in states].count(True) == 1
    assert states[-1].episode == 1


def test_alert_episode_ends_after_clear_frames_and_a_new_one_counts_again():
    debouncer = AlertDebouncer(trigger_frames=2, clear_frames=3)
    for flag in (True, True, False, False):  # a short gap keeps the episode
        state = debouncer.update(flag)
    assert state.active and state.episode == 1
    state = debouncer.update(False)  # third clear frame in a row ends it
    assert not state.active
    for _ in range(2):
        state = debouncer.update(True)
    assert state.active and state.started and state.episode == 2


@pytest.mark.parametrize("frames", [0, -1, 2.5, True, "3"])
def test_alert_delay_must_be_a_positive_whole_number(frames):
    with pytest.raises(LiveConfigError, match="trigger_frames"):
        AlertDebouncer(trigger_frames=frames)


def test_fps_meter_averages_over_its_window():
    now = [0.0]
    meter = FpsMeter(window=5, clock=lambda: now[0])
    assert meter.tick() == 0.0
    for _ in range(10):
        now[0] += 0.1
        fps = meter.tick()
    assert fps == pytest.approx(10.0)


def test_latest_result_never_shows_a_torn_value_across_threads():
    holder = LatestResult()
    stop = threading.Event()
    seen = []

    def write():
        index = 0
        while not stop.is_set():
            index += 1
            holder.put(LiveStats(index, index, index, 0, 0.0, 0.0, False, 0, 0.0))

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _ in range(20_000):
            value = holder.get()
            if value is not None:
                seen.append(value)
                assert value.frame_index == value.faces == value.masked
    finally:
        stop.set()
        writer.join()
    assert seen and seen[-1].frame_index >= seen[0].frame_index


def test_callback_annotates_real_webcam_frames_and_reports_counts(pipeline):
    processor = LiveProcessor(pipeline, trigger_frames=3)
    frame = av.VideoFrame.from_ndarray(webcam_frame(UNMASKED_PHOTO), format="bgr24")
    frame.pts = 1234
    out = processor.callback(frame)
    assert isinstance(out, av.VideoFrame)
    assert (out.width, out.height, out.pts) == (640, 480, 1234)
    assert not np.array_equal(out.to_ndarray(format="bgr24"), frame.to_ndarray(format="bgr24"))
    stats = processor.latest()
    assert stats.frame_index == 1 and stats.faces >= 1 and stats.error is None
    assert stats.latency_ms > 0


def test_unmasked_face_raises_the_alert_once_and_a_masked_face_clears_it(pipeline):
    processor = LiveProcessor(pipeline, trigger_frames=3, clear_frames=2)
    unmasked, masked = webcam_frame(UNMASKED_PHOTO), webcam_frame(MASKED_PHOTO)
    episodes = []
    for frame in [unmasked] * 5 + [masked] * 3 + [unmasked] * 3:
        processor.process(frame)
        stats = processor.latest()
        episodes.append((stats.alert, stats.episode))
    assert episodes[1] == (False, 0)  # not yet: debounced
    assert episodes[4] == (True, 1)
    assert episodes[7] == (False, 1)  # masked frames ended the episode
    assert episodes[-1] == (True, 2)  # a new episode, a new sound
    assert processor.latest().fps > 0


def test_a_frame_the_pipeline_refuses_comes_back_unchanged_with_the_reason(pipeline):
    processor = LiveProcessor(pipeline)
    empty = np.zeros((0, 0, 3), np.uint8)
    assert processor.process(empty) is empty
    assert "empty" in processor.latest().error


def test_two_sessions_share_one_pipeline_from_two_threads(pipeline):
    frames = [webcam_frame(UNMASKED_PHOTO), webcam_frame(MASKED_PHOTO)]
    expected = [pipeline.process(frame) for frame in frames]
    processors = [LiveProcessor(pipeline), LiveProcessor(pipeline)]

    def session(processor, frame, result):
        for _ in range(5):
            processor.process(frame)
            stats = processor.latest()
            assert (stats.masked, stats.unmasked) == (result.masked_count, result.unmasked_count)

    run_in_threads(session, zip(processors, frames, expected, strict=True))
    assert [p.latest().frame_index for p in processors] == [5, 5]


def test_configure_changes_the_alert_delay_between_frames(pipeline):
    processor = LiveProcessor(pipeline, trigger_frames=50)
    processor.configure(trigger_frames=1)
    processor.process(webcam_frame(UNMASKED_PHOTO))
    assert processor.latest().alert
    with pytest.raises(LiveConfigError):
        processor.configure(trigger_frames=0)


def test_alert_sound_is_a_short_wav():
    with wave.open(io.BytesIO(alert_wav())) as sound:
        seconds = sound.getnframes() / sound.getframerate()
        assert sound.getnchannels() == 1 and sound.getsampwidth() == 2
    assert 0.3 < seconds < 1.5


def test_ice_servers_accept_a_list_or_an_rtc_configuration():
    turn = {"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "p"}
    assert parse_ice_servers('[{"urls": "stun:stun.example.org:3478"}]') == {
        "iceServers": [{"urls": "stun:stun.example.org:3478"}]
    }
    assert parse_ice_servers(json.dumps({"iceServers": [turn]})) == {"iceServers": [turn]}
    assert parse_ice_servers("[]") == {"iceServers": []}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"servers": []}', "must be a JSON list"),
        ('[{"url": "stun:x"}]', 'needs "urls"'),
        ('[{"urls": "http://x"}]', "must start with"),
        ('["stun:x"]', 'needs "urls"'),
    ],
)
def test_malformed_ice_servers_are_one_clear_error(text, message):
    with pytest.raises(LiveConfigError, match=message):
        parse_ice_servers(text)


def test_ice_servers_come_from_the_environment(monkeypatch):
    monkeypatch.delenv(ui.ICE_SERVERS_ENV, raising=False)
    assert ui.rtc_configuration() == {"iceServers": []}
    monkeypatch.setenv(
        ui.ICE_SERVERS_ENV, '[{"urls": "turn:turn.example.org", "username": "a", "credential": "b"}]'
    )
    assert ui.rtc_configuration()["iceServers"][0]["username"] == "a"


SOAK_FRAMES = int(os.environ.get("MASKAPP_SOAK_FRAMES", "5000"))
SOAK_WARMUP = 300  # allocator and torch caches settle during these


@pytest.mark.slow
def test_soak_live_callback_memory_stays_flat():
    """The frame callback over SOAK_FRAMES real frames: RSS after warm-up and at the end stay close.
    Figures go to test-artifacts/live_soak.json (the README's reliability section quotes them)."""
    pipeline = load_pipeline(InferenceConfig(weights=ui.weights_path(), detector="res10"))  # cheaper detector
    processor = LiveProcessor(pipeline, trigger_frames=5)
    frames = [
        av.VideoFrame.from_ndarray(cv2.resize(webcam_frame(path), (320, 240)), format="bgr24")
        for path in (UNMASKED_PHOTO, MASKED_PHOTO)
    ]
    process = psutil.Process()
    start_rss = process.memory_info().rss
    warm_rss = start_rss
    started = time.perf_counter()
    for index in range(SOAK_FRAMES):
        processor.callback(frames[(index // 50) % 2])  # alternate every 50 frames: alert episodes
        if index + 1 == SOAK_WARMUP:
            gc.collect()
            warm_rss = process.memory_info().rss
    gc.collect()
    end_rss = process.memory_info().rss
    seconds = time.perf_counter() - started
    stats = processor.latest()
    report = {
        "frames": SOAK_FRAMES,
        "seconds": round(seconds, 1),
        "rss_start_mb": round(start_rss / 2**20, 1),
        "rss_after_warmup_mb": round(warm_rss / 2**20, 1),
        "rss_end_mb": round(end_rss / 2**20, 1),
        "alert_episodes": stats.episode,
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "live_soak.json").write_text(json.dumps(report, indent=2) + "\n")
    assert stats.frame_index == SOAK_FRAMES and stats.error is None
    assert stats.episode >= SOAK_FRAMES // 100 - 1  # one alert per unmasked stretch, not one per frame
    assert end_rss - warm_rss < 40 * 2**20, report
