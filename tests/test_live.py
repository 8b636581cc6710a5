"""The live page's worker side: alert debouncing, FPS, the result holder, the frame callback on real
photos through the real pipeline, ICE configuration and the alert sound."""

from __future__ import annotations

import contextlib
import gc
import io
import itertools
import json
import os
import sqlite3
import sys
import threading
import time
import types
import wave

import av
import cv2
import numpy as np
import psutil
import pytest

from maskapp import PROJECT_ROOT
from maskapp.app import ui
from maskapp.app.live import (
    DEFAULT_TRIGGER_FRAMES,
    LIVE_SOURCE,
    NO_MASK_ALERT,
    STALE_SECONDS,
    WORN_INCORRECTLY_ALERT,
    AlertChime,
    AlertDebouncer,
    ChimeCue,
    FpsMeter,
    LatestResult,
    LivePeople,
    LiveProcessor,
    LiveStats,
    alert_text,
    alert_wav,
    panel_mode,
    parse_ice_servers,
    since_start_text,
)
from maskapp.config import InferenceConfig
from maskapp.errors import LiveConfigError
from maskapp.events.report import EventLog
from maskapp.events.session import EventSettings, PeopleLog
from maskapp.labels import CLASS_NAMES, WITH_MASK, WITHOUT_MASK, WORN_INCORRECTLY
from maskapp.media.images import read_image
from maskapp.results import Face, FaceResult, FrameResult, Prediction, StageTimings
from maskapp.vision.pipeline import load_pipeline
from tests.conftest import (
    DEV,
    ILC,
    Gate,
    arriving_person_frames,
    free_port,
    letterbox,
    real_images,
    run_in_threads,
)

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


def test_error_frames_neither_clear_nor_extend_an_unmasked_run():
    debouncer = AlertDebouncer(trigger_frames=2, clear_frames=2)
    states = [debouncer.update(flag) for flag in (True, None, True, None, None, None, False, False)]
    assert [s.active for s in states] == [False, False, True, True, True, True, True, False]
    assert [s.started for s in states].count(True) == 1 and states[-1].episode == 1


def test_frames_that_raised_an_error_do_not_count_as_clear(pipeline):
    """A camera that hiccups (frames the pipeline refuses) shows nobody: not 'everyone masked'."""
    processor = LiveProcessor(pipeline, trigger_frames=2, clear_frames=2)
    unmasked, refused = webcam_frame(UNMASKED_PHOTO), np.zeros((0, 0, 3), np.uint8)
    for _ in range(2):
        processor.process(unmasked)
    assert (processor.latest().alert, processor.latest().episode) == (True, 1)
    for _ in range(3):  # more refused frames in a row than clear_frames
        processor.process(refused)
        stats = processor.latest()
        assert stats.error and stats.alert, "a refused frame ended the alert episode"
    processor.process(unmasked)
    assert (processor.latest().alert, processor.latest().episode) == (True, 1)  # no second sound


def test_frames_published_from_several_threads_are_all_counted_and_never_read_out_of_order(pipeline):
    """Several threads publish through one LiveProcessor while the page's thread reads `latest()`:
    no frame is lost from the count, and the reader never sees an older frame after a newer one."""
    processor = LiveProcessor(pipeline)
    refused = np.zeros((0, 0, 3), np.uint8)  # refused at once: the publishing is what runs
    writers, per_writer = 4, 2000
    stop, seen = threading.Event(), []

    def read():
        while not stop.is_set():
            stats = processor.latest()
            if stats is not None:
                seen.append(stats.frame_index)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up
    reader = threading.Thread(target=read)
    reader.start()
    try:
        run_in_threads(lambda: [processor.process(refused) for _ in range(per_writer)], [()] * writers)
    finally:
        stop.set()
        reader.join()
        sys.setswitchinterval(interval)
    assert processor.latest().frame_index == writers * per_writer
    went_back = [(a, b) for a, b in itertools.pairwise(seen) if b < a]
    assert len(seen) > 100 and not went_back, went_back[:5]


class GatedResult(LatestResult):
    """The real result holder, whose first `put` waits (up to `wait_s`) until another one has been made:
    the first frame's stats arrive late, as when its thread is descheduled just before publishing."""

    def __init__(self, wait_s: float):
        super().__init__()
        self.wait_s, self.first_waiting, self.later_put = wait_s, threading.Event(), threading.Event()

    def put(self, value: LiveStats) -> None:
        if not self.first_waiting.is_set():
            self.first_waiting.set()
            self.later_put.wait(self.wait_s)
        else:
            self.later_put.set()
        super().put(value)


def test_a_frame_published_late_never_replaces_a_newer_one(pipeline):
    """Frame 1's thread stalls while publishing and frame 2's thread goes on: the page must end up
    showing frame 2, never frame 1 after it (the count and the alert state are frame 2's)."""
    processor = LiveProcessor(pipeline)
    gated = processor.results = GatedResult(wait_s=2)
    refused = np.zeros((0, 0, 3), np.uint8)  # refused at once: the publishing is what runs
    first = threading.Thread(target=processor.process, args=(refused,))
    first.start()
    assert gated.first_waiting.wait(30)
    second = threading.Thread(target=processor.process, args=(refused,))
    second.start()
    for thread in (first, second):
        thread.join(30)
    assert processor.latest().frame_index == 2


class HeldPipeline:
    """The real pipeline, held inside `process` until released: a frame stays in flight as long as the
    test needs."""

    def __init__(self, pipeline):
        self.pipeline, self.entered, self.release = pipeline, threading.Event(), threading.Event()

    def process(self, frame):
        self.entered.set()
        assert self.release.wait(60), "never released"
        return self.pipeline.process(frame)

    def __getattr__(self, name):  # the rest (classifier, detector, ...) is the real pipeline's
        return getattr(self.pipeline, name)


def test_the_page_reads_and_configures_while_a_frame_is_in_flight(pipeline):
    """The page's thread (latest, configure) never waits for the worker's frame to finish: a lock held
    around the pipeline would freeze the page for as long as a frame takes."""
    held = HeldPipeline(pipeline)
    processor = LiveProcessor(held, trigger_frames=5)
    worker = threading.Thread(target=processor.process, args=(webcam_frame(UNMASKED_PHOTO),))
    worker.start()
    try:
        assert held.entered.wait(60)
        page = threading.Thread(target=lambda: (processor.latest(), processor.configure(trigger_frames=1)))
        page.start()
        page.join(timeout=10)
        assert not page.is_alive(), "the page's thread waited for the frame in flight"
        assert processor.latest() is None  # nothing published yet: the frame is still in flight
    finally:
        held.release.set()
        worker.join()
    stats = processor.latest()
    assert stats.frame_index == 1 and stats.unmasked >= 1 and stats.alert  # trigger_frames=1 applied


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


# --- the alert's words: no mask, or a mask worn badly ----------------------------------------------
@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ([], None),
        ([WITH_MASK, WITH_MASK], None),
        ([WITH_MASK, WORN_INCORRECTLY], WORN_INCORRECTLY_ALERT),
        ([WORN_INCORRECTLY, WORN_INCORRECTLY], WORN_INCORRECTLY_ALERT),
        ([WITHOUT_MASK], NO_MASK_ALERT),
        ([WORN_INCORRECTLY, WITHOUT_MASK, WITH_MASK], NO_MASK_ALERT),  # no mask comes first
        (["hat"], NO_MASK_ALERT),  # a label that is not a mask is not compliant
    ],
)
def test_alert_text_asks_for_a_mask_or_for_it_over_nose_and_mouth(labels, expected):
    assert alert_text(labels) == expected
    assert alert_text(iter(labels)) == expected  # any iterable, read once
    assert NO_MASK_ALERT == "Please wear a face mask"
    assert WORN_INCORRECTLY_ALERT == "Please wear your mask over your nose and mouth"


def probs(label: str) -> dict[str, float]:
    return {name: 0.9 if name == label else 0.05 for name in CLASS_NAMES}


class FixedLabels:
    """A pipeline stand-in whose frame holds one face per label given to `show` (the alert's logic,
    apart from what a model decides; the real pipeline is tested below)."""

    classifier = types.SimpleNamespace(class_names=CLASS_NAMES)  # what the people followed underneath read

    def __init__(self):
        self.labels: tuple[str, ...] = ()

    def process(self, frame):
        faces = tuple(
            FaceResult(Face((10 + 60 * i, 10, 60 + 60 * i, 70), 0.9), Prediction(label, 0.9, probs(label)))
            for i, label in enumerate(self.labels)
        )
        return FrameResult(faces, StageTimings(1.0, 1.0, 2.0), frame.shape[1], frame.shape[0])


def test_badly_worn_masks_raise_the_alert_with_their_own_words():
    pipeline, frame = FixedLabels(), np.zeros((240, 320, 3), np.uint8)
    processor = LiveProcessor(pipeline, trigger_frames=2, clear_frames=2)

    def show(*labels):
        pipeline.labels = labels
        processor.process(frame)
        return processor.latest()

    show(WORN_INCORRECTLY, WITH_MASK)
    stats = show(WORN_INCORRECTLY, WITH_MASK)
    assert (stats.alert, stats.alert_text) == (True, WORN_INCORRECTLY_ALERT)  # counted like no mask
    assert (stats.masked, stats.unmasked, stats.faces) == (1, 1, 2)
    assert stats.label_counts == {WITH_MASK: 1, WORN_INCORRECTLY: 1, WITHOUT_MASK: 0}
    assert show(WITHOUT_MASK, WORN_INCORRECTLY).alert_text == NO_MASK_ALERT  # the same episode, now no mask
    stats = show(WITH_MASK)  # a clear frame: the episode goes on with the last words
    assert (stats.alert, stats.alert_text, stats.episode) == (True, NO_MASK_ALERT, 1)
    stats = show(WITH_MASK)
    assert (stats.alert, stats.alert_text) == (False, None)


def test_live_counts_and_alert_words_follow_a_three_class_model_on_real_badly_worn_faces(three_class_weights):
    """Real badly worn masks through a real 3-class pipeline: the stats hold the frame's counts per
    class, and the alert's words are those its labels call for."""
    config = InferenceConfig(weights=three_class_weights, detector="centerface", noncompliant_threshold=0.01)
    pipeline = load_pipeline(config)  # 0.01: any doubt makes a face non-compliant, so the alert rises
    processor = LiveProcessor(pipeline, trigger_frames=1)
    assert pipeline.classifier.class_names == CLASS_NAMES
    for path in real_images(ILC, WORN_INCORRECTLY, 3):
        frame = webcam_frame(path)
        result = pipeline.process(frame)
        processor.process(frame)
        stats = processor.latest()
        assert stats.label_counts == result.label_counts and stats.faces == len(result.faces)
        assert stats.unmasked == result.unmasked_count
        if result.unmasked_count:
            assert stats.alert and stats.alert_text == alert_text(face.label for face in result.faces)
    assert processor.latest().episode >= 1


# --- the chime: once per new non-compliant person ------------------------------------------------------
def test_the_chime_sounds_once_for_each_new_episode_even_while_the_alert_stays_on():
    chime = AlertChime()
    assert chime.update(False, 0) is None
    first = chime.update(True, 1)
    assert first.autoplay
    assert chime.update(True, 1) == first  # unchanged on the page: the browser does not play it again
    second = chime.update(True, 2)  # a second person while the first one's alert is still on
    assert second.autoplay and second.variant != first.variant  # a new source: the browser plays it
    assert chime.update(True, 2) == second
    assert chime.update(False, 2) is None  # they put a mask on ...
    assert chime.update(True, 2) == ChimeCue(second.variant, autoplay=False)  # ... and off: no repeat
    third = chime.update(True, 4)  # two new people between two refreshes: one chime
    assert third.autoplay and third.variant != second.variant
    assert chime.update(True, 5, muted=True) is None  # muted: the episode passes unsounded ...
    assert not chime.update(True, 5).autoplay  # ... and stays so


def test_the_two_copies_of_the_chime_differ_in_bytes_only_by_silence():
    with wave.open(io.BytesIO(alert_wav(0))) as a, wave.open(io.BytesIO(alert_wav(1))) as b:
        frames_a, frames_b = a.readframes(a.getnframes()), b.readframes(b.getnframes())
    assert alert_wav(0) != alert_wav(1) and frames_b == frames_a + b"\x00\x00"


def test_a_second_unmasked_person_sounds_the_chime_again_while_the_first_ones_alert_is_on(pipeline):
    """Real people through the tracked worker, the page's chime decision on every frame: the first
    unmasked person, then a second one who joins while the first stays: two chimes, never a third."""
    processor, chime = LiveProcessor(pipeline, track=True), AlertChime()
    frames = arriving_person_frames([0.0] * 20 + [i / 6 for i in range(1, 7)] + [1.0] * 25)
    cues, alerts = [], []
    for frame in frames:
        processor.process(frame)
        stats = processor.latest()
        cues.append(chime.update(stats.alert, stats.episode))
        alerts.append(stats.alert)
    chimes = [i for i, (before, cue) in enumerate(itertools.pairwise([None, *cues])) if started(before, cue)]
    assert len(chimes) == 2, cues
    assert chimes[0] < 20 <= chimes[1]  # the second one once the right person came in
    assert all(alerts[chimes[0] :]), "the first person's alert went off: not the case under test"
    stats = processor.latest()
    assert (stats.episode, stats.people.total, stats.people_in_view) == (2, 2, 2)


def started(before: ChimeCue | None, cue: ChimeCue | None) -> bool:
    """Whether the browser starts the chime on this refresh: an autoplaying element newly shown or with a
    new source."""
    return cue is not None and cue.autoplay and (before is None or before.variant != cue.variant)


# --- a stream that ends without STOP ----------------------------------------------------------------
def event_rows(database) -> list[tuple[int, str]]:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        return conn.execute("SELECT person, kind FROM events ORDER BY id").fetchall()


def logging_processor(pipeline, database, **options) -> LiveProcessor:
    """A tracked session with its event log on, as the page sets it up."""
    processor = LiveProcessor(pipeline, track=True, **options)
    processor.configure(events=PeopleLog(EventSettings(database), "live webcam"))
    return processor


def assert_everyone_left(rows: list[tuple[int, str]], people: int) -> None:
    seen = sorted(person for person, kind in rows if kind == "person_seen")
    left = sorted(person for person, kind in rows if kind == "person_left")
    assert len(seen) == people and left == seen, rows


def test_the_streams_end_hook_closes_the_people_still_in_view(pipeline, tmp_path):
    """streamlit-webrtc calls `on_ended` when the connection ends (a closed tab, no STOP, so the page
    never runs again): the people still in view leave, in the log, and a new stream starts afresh."""
    database = tmp_path / "live.sqlite"
    processor = logging_processor(pipeline, database)
    for frame in arriving_person_frames([1.0] * 8):
        processor.process(frame)
    assert not [kind for _, kind in event_rows(database) if kind == "person_left"]
    processor.on_ended().join(30)
    rows = event_rows(database)
    assert_everyone_left(rows, people=2)
    processor.on_ended().join(30)  # a second end signal (the page's own) writes nothing more
    assert event_rows(database) == rows
    for frame in arriving_person_frames([1.0] * 3):  # START again: new people, in a new run
        processor.process(frame)
    processor.end_stream()
    assert_everyone_left(event_rows(database), people=4)


def test_a_stream_whose_frames_stop_closes_its_people_after_the_idle_timeout(pipeline, tmp_path):
    """No end signal at all (a connection that just went quiet): no frame for `idle_end_s` ends it."""
    database = tmp_path / "live.sqlite"
    processor = logging_processor(pipeline, database, idle_end_s=1.0)
    for frame in arriving_person_frames([1.0] * 6):
        processor.process(frame)
    deadline = time.monotonic() + 30
    while [kind for _, kind in event_rows(database)].count("person_left") < 2:
        assert time.monotonic() < deadline, f"people not closed: {event_rows(database)}"
        time.sleep(0.2)
    assert_everyone_left(event_rows(database), people=2)
    for frame in arriving_person_frames([1.0] * 3):  # frames again: the watch is armed again
        processor.process(frame)
    time.sleep(3)
    assert_everyone_left(event_rows(database), people=4)


def test_start_after_stop_counts_the_people_of_the_new_stream_only(pipeline):
    """STOP then START with the same two people in view: the panel counts two people (it counted four,
    the last stream's two on top, and kept drawing the last stream's people-in-view chart)."""
    processor = LiveProcessor(pipeline, track=True)
    for frame in arriving_person_frames([1.0] * 8):
        processor.process(frame)
    assert processor.latest().people.total == 2
    processor.end_stream()
    time.sleep(1.1)  # over the chart's one point a second: a chart that went on would gain one
    restart = time.monotonic()
    for frame in arriving_person_frames([1.0] * 8):
        processor.process(frame)
    stats = processor.latest()
    assert (stats.people.total, stats.people_in_view) == (2, 2)
    assert stats.timeline[-1].seconds <= time.monotonic() - restart  # the chart starts again too
    assert stats.episode == 4  # the chime's count goes on: each new person's chime still sounds
    assert (stats.stream_frames, stats.stream_alerts) == (8, 2)  # the panel's: this run's only


def test_the_people_chart_covers_the_whole_stream_however_long(pipeline):
    """The chart kept the last 600 points, one a second: a run of an hour was drawn from its 50th minute
    on, its time axis shorter than the run. Once full, the timeline now keeps every other point and
    doubles its spacing (here with room for 10 points, and a clock that moves a second a frame)."""
    ticks = itertools.count()
    people = LivePeople(pipeline, clock=lambda: float(next(ticks)), timeline_points=10)
    frames = arriving_person_frames([1.0] * 5)
    for frame in itertools.islice(itertools.cycle(frames), 40):
        people.process(frame)
    seconds = [point.seconds for point in people.timeline]
    assert seconds[0] == 0 and seconds[-1] >= 39 - people.timeline.spacing and len(seconds) < 10
    assert seconds == sorted(seconds) and all(
        point.compliant + point.noncompliant for point in people.timeline
    )
    people.end_stream()  # a new stream: one point a second again
    assert len(people.timeline) == 0 and people.timeline.spacing == 1.0


# --- the panel beside the video ---------------------------------------------------------------------
def test_the_panel_keeps_a_slow_streams_last_counts_and_drops_them_when_the_camera_stops(pipeline):
    """Two sessions on two busy cores: a session's next frame can come later than STALE_SECONDS while its
    video still shows the last annotated frame; its counts stay on the panel (not "waiting")."""
    processor = LiveProcessor(pipeline, track=True)
    assert panel_mode(processor.latest(), playing=True) == "waiting"
    processor.process(webcam_frame(UNMASKED_PHOTO))
    stats = processor.latest()
    assert panel_mode(stats, playing=True, now=stats.updated_at + 0.5) == "live"
    assert panel_mode(stats, playing=True, now=stats.updated_at + STALE_SECONDS + 10) == "stale"
    assert panel_mode(stats, playing=False) == "off"
    processor.end_stream()  # STOP: a new START shows nothing of this stream
    assert processor.latest() is None and panel_mode(processor.latest(), playing=True) == "waiting"


def test_the_panel_says_the_camera_is_connecting_between_start_and_its_first_frame():
    """START pressed, the stream not up yet (the component signalling): the panel said "The camera is off.
    Press START." under the START just pressed."""
    assert panel_mode(None, playing=False, connecting=True) == "connecting"
    assert panel_mode(None, playing=False) == "off"
    assert panel_mode(None, playing=True, connecting=True) == "waiting"


def test_event_settings_changed_while_streaming_tell_the_gate_of_each_person_once(
    pipeline, tmp_path, monkeypatch
):
    """The webhook typed, then the events file switched on, then aggregate mode, the same two unmasked
    people in view all along: each change opens a new log, and each new log POSTed both people's
    violation to the gate again (six for two people). A gate of another URL still hears of them."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    gate, other_gate = Gate(), Gate()
    try:
        processor = LiveProcessor(pipeline, track=True)
        frames = arriving_person_frames([1.0] * 8)
        database = tmp_path / "live.sqlite"
        for settings in (
            EventSettings(None, None, gate.url),
            EventSettings(database, None, gate.url),
            EventSettings(database, 15.0, gate.url),
            EventSettings(database, 15.0, other_gate.url),
        ):
            processor.configure(events=PeopleLog(settings, LIVE_SOURCE))
            for frame in frames:
                processor.process(frame)
        assert processor.latest().stream_alerts == 2  # the page's alert: once per person, as always
        processor.end_stream()
        for server in (gate, other_gate):
            people = [event["person"] for event in server.received if event["kind"] == "violation"]
            assert len(people) == len(set(people)) == 2, server.received
    finally:
        gate.stop()
        other_gate.stop()


def test_event_settings_changed_while_streaming_count_each_person_once_in_the_events_file(pipeline, tmp_path):
    """The same events file all along, its days to keep typed, then *Aggregate counts only* switched on
    and off, the same two people in view: each change ended them in the file and counted them again in
    the next mode or run (the Compliance log read eight people for two). Now each is counted once."""
    database = tmp_path / "live.sqlite"
    processor = LiveProcessor(pipeline, track=True)
    frames = arriving_person_frames([1.0] * 8)
    for settings in (
        EventSettings(database),
        EventSettings(database, keep_days=30.0),
        EventSettings(database, 15.0, keep_days=30.0),
        EventSettings(database, keep_days=30.0),
    ):
        processor.configure(events=PeopleLog(settings, LIVE_SOURCE))
        for frame in frames:
            processor.process(frame)
    processor.end_stream()
    with EventLog(database) as log:
        summary = log.summary()
    assert (summary.people, summary.compliance) == (2, 0.0), summary
    assert_everyone_left(event_rows(database), people=2)


def test_the_since_start_line_says_1_alert_not_1_alerts(pipeline):
    """With *Follow people* off, the two unmasked people of the webcam make one alert episode: the
    panel read 'Since START: 135 frames processed · 1 alerts'."""
    processor = LiveProcessor(pipeline, trigger_frames=2)
    for frame in arriving_person_frames([1.0] * 3):
        processor.process(frame)
    stats = processor.latest()
    assert (stats.stream_frames, stats.stream_alerts) == (3, 1)
    assert since_start_text(stats) == "Since START: 3 frames processed · 1 alert"


def test_follow_people_switched_off_and_on_counts_alerts_and_tells_each_person_once(
    pipeline, tmp_path, monkeypatch
):
    """Logging to a file and a gate, two unmasked people in view all along, *Follow people* switched off
    and on again mid-stream (`configure(track=...)`, as the page does): a new tracker took them for new
    people, so the panel counted, the chime sounded, the gate heard and the file logged them again."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    database, gate, chime, cues, alerts = tmp_path / "live.sqlite", Gate(), AlertChime(), [], []
    try:
        processor = LiveProcessor(pipeline, track=True)
        processor.configure(events=PeopleLog(EventSettings(database, webhook_url=gate.url), LIVE_SOURCE))
        for follow in (True, False, True):
            processor.configure(track=follow)
            for frame in arriving_person_frames([1.0] * 12):
                processor.process(frame)
                stats = processor.latest()
                cues.append(chime.update(stats.alert, stats.episode))  # the page's refresh, at every frame
                alerts.append(stats.alert)
        stats = processor.latest()
        assert (stats.people.total, stats.people_in_view, stats.stream_alerts) == (2, 2, 2)
        chimes = [cue for before, cue in itertools.pairwise([None, *cues]) if started(before, cue)]
        assert 1 <= len(chimes) <= 2, cues  # the people's, never again for them
        assert all(alerts[alerts.index(True) :]), alerts  # on once, and on over both switches
        processor.end_stream()  # STOP
        with EventLog(database) as log:
            assert log.summary().people == 2
        assert_everyone_left(event_rows(database), people=2)
        violations = [event["person"] for event in gate.received if event["kind"] == "violation"]
        assert len(violations) == len(set(violations)) == 2, gate.received
    finally:
        gate.stop()


def test_people_who_came_while_follow_people_was_off_are_not_chimed_again_when_it_comes_back_on(pipeline):
    """Two unmasked people arrive while *Follow people* is off: the frame alert goes on and chimes. It is
    switched on again with them still in view: the same alert stays on, with no new chime (their
    violations made new episodes, so the chime sounded a second time for people it had sounded for)."""
    processor, chime, cues, alerts = LiveProcessor(pipeline, track=False), AlertChime(), [], []
    for follow in (False, True):
        processor.configure(track=follow)
        for frame in arriving_person_frames([1.0] * (DEFAULT_TRIGGER_FRAMES + 12)):
            processor.process(frame)
            stats = processor.latest()
            cues.append(chime.update(stats.alert, stats.episode))  # the page's refresh, at every frame
            alerts.append(stats.alert)
    stats = processor.latest()
    assert (stats.people.total, stats.people_in_view) == (2, 2)
    chimes = [cue for before, cue in itertools.pairwise([None, *cues]) if started(before, cue)]
    assert len(chimes) == 1, cues
    assert stats.stream_alerts == 1 and all(alerts[alerts.index(True) :]), alerts


def test_a_webhook_that_is_down_is_said_on_the_live_panel(pipeline, monkeypatch):
    """The gate's webhook does not answer (nothing listens on its port) while two unmasked people are in
    view: the panel says their violations were not delivered (only the server log said so)."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    down = f"http://127.0.0.1:{free_port()}/violation"
    processor = LiveProcessor(pipeline, track=True)
    processor.configure(events=PeopleLog(EventSettings(webhook_url=down), LIVE_SOURCE))
    frames, deadline = itertools.cycle(arriving_person_frames([1.0])), time.monotonic() + 120
    while not (processor.latest() and processor.latest().webhook_warning):
        assert time.monotonic() < deadline, "the panel never said the webhook was down"
        processor.process(next(frames))
    warning = processor.latest().webhook_warning
    assert down in warning and "not delivered" in warning, warning
    processor.end_stream()
