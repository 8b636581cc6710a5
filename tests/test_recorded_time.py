"""A video file dated by its recording (`video --recorded-at`, the Video page's *Recording started at*):
on a real clip with the shipped model, the event log's rows, its aggregate windows and the webhook's
violations carry start + frame / the file's frame rate, not the time they were processed; bad input is
one error line (exit 2) before anything starts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from maskapp.errors import EventStoreError
from maskapp.events.session import EventSettings, PeopleLog, recording_start, watch_people
from maskapp.events.store import iso_utc
from maskapp.media.video import open_source
from tests.conftest import (
    WEIGHTS,
    Gate,
    assert_no_exception,
    http_folder,
    open_page,
    run_cli,
    run_main,
    write_people_clip,
)
from tests.test_people import FRAMES, NONCOMPLIANT, PEOPLE, rows
from tests.test_people_pages import events_file, sidebar_toggle

# Read in Europe/Paris (UTC+1 in November): 08:00 there is 07:00 UTC.
LOCAL_START, PARIS, START_UTC = "2026-11-28T08:00:00", "Europe/Paris", datetime(2026, 11, 28, 7, tzinfo=UTC)


def recorded(start: datetime, frame: int, fps: float) -> str:
    """The time a row of `frame` carries, as the log writes it."""
    return iso_utc(start + timedelta(seconds=frame / fps))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """45 frames at 15 fps of five real people (3 without a mask): three seconds of a door camera."""
    return write_people_clip(tmp_path_factory.mktemp("recorded") / "entrance.mp4", frames_per_scene=15)


def frame_rate(path: Path) -> float:
    with open_source(str(path)) as frames:
        return frames.fps


def test_a_recordings_events_and_webhook_carry_its_recorded_time(clip, tmp_path):
    """Yesterday's recording processed today: every row (first and last included) and every violation
    the gate hears of is at start + frame / fps, the start read on the machine's clock (TZ)."""
    database, gate = tmp_path / "log.sqlite", Gate()
    try:
        done = run_cli(
            "video", str(clip), "--weights", str(WEIGHTS), "--events", str(database),
            "--on-violation", gate.url, "--recorded-at", LOCAL_START,
            env={"TZ": PARIS, "no_proxy": "127.0.0.1,localhost", "http_proxy": "", "HTTP_PROXY": ""},
        )  # fmt: skip
    finally:
        gate.stop()
    assert done.returncode == 0, done.stderr[-2000:]
    fps = frame_rate(clip)
    logged = rows(database, "SELECT time, frame, kind, person FROM events ORDER BY id")
    assert len(logged) == 2 * PEOPLE + NONCOMPLIANT
    assert [time for time, *_ in logged] == [recorded(START_UTC, frame, fps) for _, frame, *_ in logged]
    (first, first_frame, *_), (last, last_frame, *_) = logged[0], logged[-1]
    assert first == recorded(START_UTC, first_frame, fps) and first.startswith("2026-11-28T07:00:00")
    assert last_frame == FRAMES - 1 and last == recorded(START_UTC, FRAMES - 1, fps)
    violations = {person: time for time, _, kind, person in logged if kind == "violation"}
    assert len(gate.received) == NONCOMPLIANT
    assert {body["person"]: body["time"] for body in gate.received} == violations


def test_aggregate_windows_fall_on_the_recordings_hours(clip, tmp_path):
    """A clip started two seconds before 09:00 UTC: its people fill the 08:00 and 09:00 windows, not the
    window of the moment it was processed."""
    database = tmp_path / "counts.sqlite"
    status, _, err = run_main(
        "video", str(clip), "--weights", str(WEIGHTS), "--events", str(database),
        "--aggregate-minutes", "60", "--recorded-at", "2026-11-28T08:59:58Z",
    )  # fmt: skip
    assert status == 0, err
    windows = rows(database, "SELECT window_start, window_end FROM aggregates ORDER BY window_start")
    assert windows == [
        ("2026-11-28T08:00:00.000+00:00", "2026-11-28T09:00:00.000+00:00"),
        ("2026-11-28T09:00:00.000+00:00", "2026-11-28T10:00:00.000+00:00"),
    ]
    assert rows(database, "SELECT SUM(total) FROM aggregates") == [(PEOPLE,)]
    assert rows(database, "SELECT COUNT(*) FROM events") == [(0,)]


def test_a_recording_start_is_read_as_iso_8601_with_or_without_an_offset():
    assert recording_start("2026-11-28T08:00:00Z") == datetime(2026, 11, 28, 8, tzinfo=UTC)
    assert recording_start("2026-11-28T08:00:00+01:00") == START_UTC
    naive = datetime(2026, 11, 28, 8)  # no offset: this machine's local time
    assert recording_start("2026-11-28T08:00:00") == naive.astimezone(UTC)


LOG = ["--events", "{tmp}/e.sqlite"]
AT = "--recorded-at"


@pytest.mark.parametrize(
    ("source", "flags", "message"),
    [
        (None, [*LOG, AT, "yesterday 8am"], "is not a time; allowed: an ISO-8601"),
        (None, [*LOG, AT, "2026-13-01T08:00"], "is not a time"),
        ("rtsp://cam.local:554/x", [*LOG, AT, "2026-11-28T08:00Z"], "only a video file has a recording time"),
        ("0", [*LOG, AT, "2026-11-28T08:00Z"], "only a video file has a recording time"),
        (None, [*LOG, AT, "2999-01-01T00:00:00Z"], "is in the future"),
        (None, [AT, "2026-11-28T08:00Z"], "add --events FILE.sqlite or --on-violation URL"),
        (None, [*LOG, "--keep-days", "30", AT, "2020-01-01T08:00Z"], "older than the 30 days to keep"),
    ],
)
def test_bad_recording_starts_are_one_error_line_before_starting(clip, tmp_path, source, flags, message):
    argv = [flag.format(tmp=tmp_path) for flag in flags]
    status, out, err = run_main("video", source or str(clip), "--weights", str(WEIGHTS), *argv)
    assert status == 2 and not out
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert "allowed" in err or "add --events" in err
    assert not (tmp_path / "e.sqlite").exists()  # refused before the events file is made


def test_a_recording_start_is_only_for_files_in_the_library_too(clip, tmp_path, pipeline):
    """A stream's settings drop the recording start (the Video page's stream tab); kept, a stream (the
    clip served over HTTP) is refused by the call that dates a file, and nothing is logged."""
    database = tmp_path / "e.sqlite"
    settings = EventSettings(database, recorded_at=START_UTC)
    assert settings.for_stream().recorded_at is None and settings.for_stream().path == settings.path
    with http_folder(clip.parent) as base, open_source(base + clip.name) as frames:
        log = PeopleLog(settings, frames.source)
        with pytest.raises(EventStoreError, match="only a video file has a recording time"):
            watch_people(frames, pipeline, log=log)
    assert rows(database, "SELECT COUNT(*) FROM events") == [(0,)]
    assert rows(database, "SELECT COUNT(*) FROM aggregates") == [(0,)]


def recording_inputs(at):
    (toggle,) = [t for t in at.sidebar.toggle if t.label == "Recording started at"]
    (day,) = [d for d in at.sidebar.date_input if d.label.startswith("Recording date")]
    (clock,) = [t for t in at.sidebar.time_input if t.label.startswith("Recording time")]
    return toggle, day, clock


def test_the_video_page_dates_an_uploaded_recording_by_its_start(app, tmp_path):
    """Off by default (rows at processing time); on, with a date and a time (UTC here: AppTest has no
    browser time zone), the rows are at start + frame / fps, through the same library call."""
    database = tmp_path / "page.sqlite"
    clip = write_people_clip(tmp_path / "door.avi", frames_per_scene=6)
    at = open_page(app, "app_pages/video.py")
    toggle, day, clock = recording_inputs(at)
    assert not toggle.value and day.disabled and clock.disabled  # off by default, and no log yet
    events_file(at).set_value(str(database)).run()
    sidebar_toggle(at, "Log people to an events file").set_value(True).run()
    toggle, _, _ = recording_inputs(at)
    toggle.set_value(True).run()
    _, day, clock = recording_inputs(at)
    assert "UTC" in day.label and not day.disabled
    day.set_value(START_UTC.date()).run()
    _, _, clock = recording_inputs(at)
    clock.set_value(START_UTC.time()).run()
    at.file_uploader[0].set_value(("door.avi", clip.read_bytes(), "video/x-msvideo")).run()
    assert_no_exception(at)
    assert not at.error
    fps = frame_rate(clip)
    logged = rows(database, "SELECT time, frame FROM events ORDER BY id")
    assert logged and [time for time, _ in logged] == [recorded(START_UTC, frame, fps) for _, frame in logged]
    # The page says which hours the rows went on, on the clock the start was typed on (it said only where).
    (said,) = [c.value for c in at.caption if c.value.startswith("Event log:")]
    assert f"{len(logged)} event(s) written to" in said
    assert "dated by the recording, from its start 2026-11-28 07:00 (UTC)" in said
    tomorrow = datetime.now(UTC).date() + timedelta(days=2)
    _, day, _ = recording_inputs(at)
    day.set_value(tomorrow).run()  # a start ahead of now: one clear error, no traceback
    assert_no_exception(at)
    assert any("is in the future" in error.value for error in at.error)


def test_without_a_recording_start_rows_are_at_processing_time(clip, tmp_path):
    """Default unchanged: without --recorded-at the rows are at the moment they were processed."""
    database = tmp_path / "now.sqlite"
    before = datetime.now(UTC)
    status, _, err = run_main("video", str(clip), "--weights", str(WEIGHTS), "--events", str(database))
    assert status == 0, err
    times = [datetime.fromisoformat(time) for (time,) in rows(database, "SELECT time FROM events")]
    assert times and all(before - timedelta(seconds=1) <= time <= datetime.now(UTC) for time in times)


def test_a_corrected_recording_start_re_dates_the_videos_rows_once_replaced(app, tmp_path):
    """Analysed with a wrong start, then corrected: the page says plainly that the rows logged first keep
    their dating (the correction silently changed nothing: the clip was not logged again), and its
    button replaces them, re-dated, with each person still logged once."""
    database = tmp_path / "page.sqlite"
    clip = write_people_clip(tmp_path / "door.avi", frames_per_scene=6)
    wrong, right = START_UTC - timedelta(days=1), START_UTC
    at = open_page(app, "app_pages/video.py")
    events_file(at).set_value(str(database)).run()
    sidebar_toggle(at, "Log people to an events file").set_value(True).run()
    recording_inputs(at)[0].set_value(True).run()
    recording_inputs(at)[1].set_value(wrong.date()).run()
    recording_inputs(at)[2].set_value(wrong.time()).run()
    at.file_uploader[0].set_value(("door.avi", clip.read_bytes(), "video/x-msvideo")).run()
    fps = frame_rate(clip)
    assert not replace_buttons(at)  # logged the first time: nothing to replace
    recording_inputs(at)[1].set_value(right.date()).run()  # the start corrected
    assert_no_exception(at)
    (said,) = [i.value for i in at.info if "not logged again" in i.value]
    assert "stay dated from the recording start 2026-11-27 07:00 (UTC)" in said and "replace them" in said
    first = rows(database, "SELECT time, frame FROM events ORDER BY id")
    assert [time for time, _ in first] == [recorded(wrong, frame, fps) for _, frame in first]  # unchanged
    (replace,) = replace_buttons(at)
    replace.click().run()
    assert_no_exception(at)
    assert not at.error
    logged = rows(database, "SELECT time, frame FROM events ORDER BY id")
    assert len(logged) == len(first)
    assert [time for time, _ in logged] == [recorded(right, frame, fps) for _, frame in logged]
    assert rows(database, "SELECT COUNT(*) FROM events WHERE kind = 'person_seen'") == [(5,)]
    assert not replace_buttons(at)


def replace_buttons(at):
    return [b for b in at.button if b.label == "Replace this video's rows, re-dated"]
