"""People, not frames, end to end: `video` tracked with --json people and faces_by_frame, --events (one
violation per non-compliant person), --aggregate-minutes (no per-person row), --on-violation to a real
local HTTP server and to a closed port, --anonymize fill (no original face pixel left), a stream that
drops mid-way, bad events files and URLs, the `events` command, and the Live page's worker (one alert per
person, people counts, the event log, hidden faces)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskapp import PROJECT_ROOT
from maskapp.app.live import LiveProcessor
from maskapp.app.video import analyze_video
from maskapp.cli import main, stop_signals_as_interrupt
from maskapp.errors import VideoError
from maskapp.events.recorder import EndedPerson, EventRecorder, PersonObservation
from maskapp.events.session import EventSettings, PeopleLog, watch_people
from maskapp.events.store import SqliteEventStore
from maskapp.labels import CLASS_NAMES, verdict_name
from maskapp.media.video import open_source
from maskapp.vision.anonymize import FILL_BGR
from maskapp.vision.draw import label_style
from tests.conftest import (
    DAY,
    PEOPLE_IN_SCENES,
    PEOPLE_SCENES,
    WEIGHTS,
    Gate,
    dev_photo,
    drifting_frames,
    free_port,
    http_folder,
    no_proxy,
    record_counts_only,
    record_day,
    run_cli,
    run_main,
    signal_once,
    with_project_on_path,
    write_people_clip,
)

FRAMES_PER_SCENE = 15
FRAMES = FRAMES_PER_SCENE * len(PEOPLE_SCENES)
PEOPLE = sum(len(labels) for labels in PEOPLE_IN_SCENES.values())  # 5: 3 without a mask, 2 with
NONCOMPLIANT = sum(label != "with_mask" for labels in PEOPLE_IN_SCENES.values() for label in labels)


def rows(database: Path, sql: str) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        return conn.execute(sql).fetchall()


def read_frames(path: Path) -> list[np.ndarray]:
    with open_source(str(path)) as frames:
        return list(frames)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """45 frames at 15 fps: a street with 3 people, then 1 person without a mask, then 1 with."""
    return write_people_clip(
        tmp_path_factory.mktemp("people") / "door.mp4", frames_per_scene=FRAMES_PER_SCENE
    )


@pytest.fixture(scope="module")
def logged_run(clip, tmp_path_factory):
    """One tracked `video` run: annotated video with faces filled, --json, --events, and a webhook."""
    folder = tmp_path_factory.mktemp("logged")
    gate = Gate()
    try:
        with no_proxy():
            status, out, err = run_main(
                "video",
                str(clip),
                "--weights",
                str(WEIGHTS),
                "--out",
                str(folder / "annotated.mp4"),
                "--json",
                str(folder / "run.json"),
                "--events",
                str(folder / "events.sqlite"),
                "--on-violation",
                gate.url,
                "--anonymize",
                "fill",
                "--keep-days",
                "30",
            )
    finally:
        gate.stop()
    assert status == 0, err
    return {"folder": folder, "out": out, "data": json.loads((folder / "run.json").read_text()), "gate": gate}


def test_video_json_keeps_its_keys_and_adds_people_and_faces_by_frame(logged_run):
    data = logged_run["data"]
    for key in ("source", "frames", "counts", "stopped_early", "processing_fps", "out_path", "faces_seen"):
        assert key in data  # today's keys
    assert data["frames"] == FRAMES and len(data["counts"]) == FRAMES
    assert isinstance(data["second_looks"], int) and 0 <= data["second_looks"] <= FRAMES
    people = data["people"]
    assert len(people) == PEOPLE, people
    assert [p["id"] for p in people] == list(range(1, PEOPLE + 1))
    assert all(set(p) == {"id", "label", "first_frame", "last_frame", "frames"} for p in people)
    assert sorted(p["label"] for p in people) == sorted(
        label for labels in PEOPLE_IN_SCENES.values() for label in labels
    )
    assert all(p["last_frame"] - p["first_frame"] + 1 >= p["frames"] >= FRAMES_PER_SCENE - 2 for p in people)
    faces_by_frame = data["faces_by_frame"]
    assert len(faces_by_frame) == FRAMES
    assert [len(faces) for faces in faces_by_frame] == [count["faces"] for count in data["counts"]]
    face = faces_by_frame[10][0]
    assert set(face) >= {"box", "label", "score", "person", "frame_label"}
    assert len(face["box"]) == 4 and 0 <= face["score"] <= 1
    # A person's shown label holds over the frames (no flicker): one label per person id.
    shown: dict[int, set[str]] = {}
    for faces in faces_by_frame:
        for entry in faces:
            if entry["person"] is not None:
                shown.setdefault(entry["person"], set()).add(entry["label"])
    assert set(shown) == {p["id"] for p in people} and all(len(labels) == 1 for labels in shown.values())
    # Only some faces were classified again: settled people reuse their verdict.
    raw = [entry["frame_label"] for faces in faces_by_frame for entry in faces]
    assert raw.count(None) > len(raw) / 2
    out_lines = logged_run["out"].splitlines()
    (people_line,) = [i for i, line in enumerate(out_lines) if line.startswith(f"{PEOPLE} people (")]
    (face_frames_line,) = [i for i, line in enumerate(out_lines) if "face-frames (every face" in line]
    assert people_line < face_frames_line  # people first, each counted once


def test_events_hold_one_violation_per_non_compliant_person_and_everyone_leaves(logged_run):
    database = logged_run["folder"] / "events.sqlite"
    kinds = dict(rows(database, "SELECT kind, COUNT(*) FROM events GROUP BY kind"))
    assert kinds == {"person_seen": PEOPLE, "person_left": PEOPLE, "violation": NONCOMPLIANT}
    assert logged_run["data"]["events"]["rows_deleted"] == 0  # --keep-days 30: every row is minutes old
    violators = rows(database, "SELECT person, label FROM events WHERE kind = 'violation' ORDER BY person")
    assert len({person for person, _ in violators}) == NONCOMPLIANT  # once per person, never per frame
    assert all(label != "with_mask" for _, label in violators)
    (source,) = rows(database, "SELECT DISTINCT source FROM events")
    assert source[0].endswith("door.mp4")
    assert "no image" and not rows(database, "SELECT * FROM events WHERE typeof(label) = 'blob'")


def test_the_gate_receives_each_violation_as_json(logged_run):
    received = logged_run["gate"].received
    assert len(received) == NONCOMPLIANT
    assert {event["kind"] for event in received} == {"violation"}
    assert set(received[0]) == {"time", "source", "run", "person", "kind", "label", "frame"}
    assert "webhook: 3 sent, 0 failed" in logged_run["out"]


def test_anonymized_output_holds_no_original_face_pixels(logged_run, clip):
    originals = read_frames(clip)
    written = read_frames(logged_run["folder"] / "annotated.mp4")
    assert len(written) == FRAMES
    checked = 0
    for index, faces in enumerate(logged_run["data"]["faces_by_frame"]):
        for face in faces:
            x1, y1, x2, y2 = face["box"]
            if x2 - x1 < 100:
                continue  # the street's small faces: a neighbour's label may be drawn over the fill
            # Inside the drawn box lines, below the caption (drawn inside a box at the frame's top).
            inner = (slice(y1 + (y2 - y1) // 3, y2 - 5), slice(x1 + 5, x2 - 5))
            before, after = originals[index][inner].astype(int), written[index][inner].astype(int)
            assert before.std() > 15  # a face has detail ...
            assert np.abs(after - np.array(FILL_BGR)).mean() < 8  # ... the output holds only the fill,
            assert after.std() < 6  # flat up to the video codec's noise: no trace of the face's detail
            checked += 1
    assert checked >= 2 * FRAMES_PER_SCENE - 2  # the one-person scenes


def test_events_command_prints_a_summary_and_exports_csv(logged_run):
    database, csv_path = logged_run["folder"] / "events.sqlite", logged_run["folder"] / "events.csv"
    status, out, err = run_main("events", str(database), "--csv", str(csv_path))
    assert status == 0, err
    assert f"{PEOPLE} people" in out and f"violations {NONCOMPLIANT}" in out
    assert "compliance 40%" in out  # 2 of 5 people wore a mask
    lines = csv_path.read_text().splitlines()
    assert (
        lines[0] == "time,source,run,person,kind,label,frame" and len(lines) == 1 + 2 * PEOPLE + NONCOMPLIANT
    )
    # The real command: the export said once (a log line on stderr said it again, above the summary).
    done = run_cli("events", str(database), "--csv", str(csv_path), timeout=120)
    assert done.returncode == 0 and done.stderr == ""
    assert (done.stdout + done.stderr).count(f" to {csv_path}") == 1
    status, out, _ = run_main("events", str(database), "--from", "2000-01-01", "--to", "2000-01-02")
    assert status == 0 and "no people" in out
    status, _, err = run_main("events", str(database), "--from", "2000-01-02", "--to", "2000-01-01")
    # named as given, not as the bounds it became ("starts (2000-01-02 00:00) at or after its end (2000-01-02
    # 00:00)": the --to day's end, which read as the --from day given twice)
    assert status == 2 and len(err.splitlines()) == 1
    assert err.startswith("error: --from 2000-01-02 is not before the end of --to 2000-01-01 (a --to day")
    status, _, err = run_main("events", str(database.with_name("missing.sqlite")))
    assert status == 2 and err.startswith("error: no events database")
    status, _, err = run_main("events", str(database.with_name("missing.sqlite")), "--keep-days", "30")
    assert status == 2 and err.startswith("error: no events database")
    assert not database.with_name("missing.sqlite").exists()
    edited = database.with_name("edited.sqlite")
    edited.write_bytes(database.read_bytes())
    with contextlib.closing(sqlite3.connect(edited)) as conn, conn:
        conn.execute("UPDATE events SET time = 'garbage' WHERE id = 1")
    status, out, err = run_main("events", str(edited))
    assert status == 2 and err.startswith("error: events database") and len(err.splitlines()) == 1
    aged = database.with_name("aged.sqlite")  # the first person seen a year ago: past 30 days to keep
    aged.write_bytes(database.read_bytes())
    with contextlib.closing(sqlite3.connect(aged)) as conn, conn:
        old_rows = conn.execute(
            "UPDATE events SET time = '2025-11-01T09:00:00.000+00:00' WHERE person = 1"
        ).rowcount
    status, out, err = run_main("events", str(aged), "--keep-days", "30")
    assert status == 0, err
    assert (
        out.startswith(f"deleted {old_rows} row(s) older than 30 day(s)\n") and f"{PEOPLE - 1} people" in out
    )


def test_aggregate_mode_stores_no_per_person_row_and_a_closed_gate_does_not_stop_the_video(
    clip, tmp_path, caplog
):
    database = tmp_path / "counts.sqlite"
    closed = f"http://127.0.0.1:{free_port()}/violation"
    with no_proxy(), caplog.at_level(logging.WARNING):
        status, out, err = run_main(
            "video",
            str(clip),
            "--weights",
            str(WEIGHTS),
            "--events",
            str(database),
            "--aggregate-minutes",
            "60",
            "--on-violation",
            closed,
        )
    assert status == 0, err
    assert f"{FRAMES} frames" in out and f"webhook: 0 sent, {NONCOMPLIANT} failed" in out
    # The README quoted "webhook: 0 sent, 3 failed", without the dropped count the line ends with.
    quoted = re.search(
        r"`(webhook: [^`]*)` at the end of `video`", PROJECT_ROOT.joinpath("README.md").read_text()
    )
    assert re.search("^" + re.sub(r"\d+", r"\\d+", quoted.group(1)) + "$", out, re.MULTILINE), quoted.group(1)
    assert rows(database, "SELECT COUNT(*) FROM events") == [(0,)]  # never a per-person row
    # "N violation(s)" after the windows read as stored, where `events` and the page say "not logged".
    assert f"(counts only: the {NONCOMPLIANT} violation(s) seen are in no row)" in out
    (total,) = rows(database, "SELECT SUM(total) FROM aggregates")
    assert total == (PEOPLE,)
    assert any("not delivered" in record.getMessage() for record in caplog.records)


def counts_only_log(path: Path) -> Path:
    """An aggregate-only log (`video --aggregate-minutes`): 3 people in one 5-minute window, one of each
    verdict, so 2 non-compliant; no per-person row."""
    moments = iter(datetime(2026, 11, 24, 8, minute, tzinfo=UTC) for minute in range(60))
    with SqliteEventStore(path) as store:
        recorder = EventRecorder(store, "gate", aggregate_minutes=5, clock=lambda: next(moments))
        people = [(1, "with_mask"), (2, "without_mask"), (3, "mask_worn_incorrectly")]
        recorder.observe(0, [PersonObservation(p, label, True) for p, label in people])
        recorder.observe(1, [], [EndedPerson(p, label) for p, label in people])
        recorder.close(1)
    return path


def test_a_reader_that_leaves_before_the_output_gets_no_traceback(tmp_path):
    """`python -m maskapp events LOG | head` ended in a BrokenPipeError traceback once head had its
    lines. Here the reader leaves before the first line: the command ends quietly, as a pipe's writer does
    (status 128 + SIGPIPE), with nothing on stderr about the pipe."""
    log = record_day(tmp_path / "log.sqlite")
    process = subprocess.Popen(
        [sys.executable, "-m", "maskapp", "events", str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": with_project_on_path()},
    )
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 128 + signal.SIGPIPE, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Broken pipe" not in err


def test_events_command_on_an_aggregate_only_log_says_what_was_not_logged(tmp_path):
    """An aggregate-only log: `events` said 'violations 0' beside its non-compliant people, and '--csv'
    'wrote 0 event row(s)' (the header alone) with no word of why; it now says both were not logged."""
    database = counts_only_log(tmp_path / "counts.sqlite")
    csv_path = tmp_path / "counts.csv"
    status, out, err = run_main("events", str(database), "--csv", str(csv_path))
    assert status == 0, err
    assert "3 people" in out and "compliance 33%" in out
    assert "violations not logged (aggregate counts only" in out and "violations 0" not in out
    assert csv_path.read_text().splitlines() == ["time,source,run,person,kind,label,frame"]
    assert out.splitlines()[-1] == (
        f"wrote 0 event row(s) to {csv_path} (the 1 aggregate window(s) above hold counts only, no event "
        "row: --json FILE writes them)"
    )


def test_events_csv_of_a_mixed_log_names_the_sources_it_leaves_out(tmp_path):
    """`events --csv` on doors logged person by person beside a gate logged as counts alone: the CSV holds
    no row of the gate, and nothing said which source it left out (the page's note names it); now one
    line does."""
    database = record_day(record_counts_only(tmp_path / "log.sqlite"))
    csv_path = tmp_path / "log.csv"
    status, out, err = run_main("events", str(database), "--csv", str(csv_path))
    assert status == 0, err
    assert {row["source"] for row in csv.DictReader(csv_path.open())} == {"door", "hall"}
    left_out = [line for line in out.splitlines() if line.startswith("not in the CSV")]
    assert left_out == [
        "not in the CSV: gate, logged with aggregate counts only (people by verdict per time window, no "
        "per-person row)"
    ]
    status, out, err = run_main("events", str(record_day(tmp_path / "doors.sqlite")), "--csv", str(csv_path))
    assert status == 0 and "not in the CSV" not in out  # every source has its rows


def test_events_command_lists_verdicts_in_the_classes_order_as_the_page_does(tmp_path):
    """The summary listed verdicts alphabetically (mask_worn_incorrectly first), the Compliance log page
    in the classes' order (with_mask first): the same figures read in two orders. And it printed the
    stored labels (with_mask, without_mask) where the page says Mask, No mask; the CSV keeps them."""
    database, csv_path = counts_only_log(tmp_path / "counts.sqlite"), tmp_path / "counts.csv"
    status, out, err = run_main("events", str(database))
    assert status == 0, err
    shown = [verdict_name(label) for label in CLASS_NAMES]
    assert shown == [label_style(label).caption for label in CLASS_NAMES]  # the words of the boxes and page
    assert "people 3 (Mask 1, Mask worn incorrectly 1, No mask 1)" in out
    assert out.rstrip().endswith("gate: Mask 1, Mask worn incorrectly 1, No mask 1")  # the window
    assert not any(label in out for label in CLASS_NAMES)
    status, out, err = run_main("events", str(record_day(tmp_path / "day.sqlite")), "--csv", str(csv_path))
    assert status == 0, err
    assert "people 2 (Mask 2, Mask worn incorrectly 0, No mask 0)" in out  # every class, as the page's table
    labels = {row["label"] for row in csv.DictReader(csv_path.open())}
    assert labels == set(CLASS_NAMES)  # machine-readable: the stored labels, as --help says
    help_text = io.StringIO()
    with contextlib.redirect_stdout(help_text), pytest.raises(SystemExit):
        main(["events", "--help"])
    assert "each label as stored (with_mask, mask_worn_incorrectly, without_mask" in " ".join(
        help_text.getvalue().split()
    )


def test_a_stream_that_drops_midway_closes_its_people(pipeline, tmp_path):
    whole = write_people_clip(tmp_path / "camera.avi", PEOPLE_SCENES[1:], frames_per_scene=12)
    data = whole.read_bytes()
    (tmp_path / "dropped.avi").write_bytes(data[: len(data) * 3 // 4])  # cut off in the second scene
    database = tmp_path / "events.sqlite"
    with http_folder(tmp_path) as url:
        frames = open_source(url + "dropped.avi", timeout_s=5)
        run = watch_people(frames, pipeline, log=PeopleLog(EventSettings(database), frames.source))
    assert 12 < run.summary.frames < 24
    seen = rows(database, "SELECT person FROM events WHERE kind = 'person_seen' ORDER BY person")
    left = rows(database, "SELECT person FROM events WHERE kind = 'person_left' ORDER BY person")
    assert len(seen) == 2 and left == seen  # everyone in view when it dropped has left
    assert run.events.recorder.people_present == 0


def stopped_by_streamlit(aggregate: bool) -> BaseException:
    """What Streamlit raises from the next st call in a run it stops: a rerun after a setting changed, or
    a stop after Stop (top right)."""
    from streamlit.runtime.scriptrunner_utils.exceptions import RerunException, StopException
    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData

    return StopException() if aggregate else RerunException(RerunData())


@pytest.mark.parametrize("aggregate", [False, True], ids=["per-person", "aggregate-only"])
def test_a_video_page_analysis_stopped_midway_then_run_again_logs_each_person_once(
    pipeline, clip, tmp_path, aggregate
):
    """The Video page's run stopped mid-file (a setting changed, or Stop pressed) raises from its progress
    callback; the page then analyses the video again from the start. The stopped run's people stayed in
    the log (per person: its rows; aggregate-only: its window, written on close), so a reader found them
    twice: 2 + 4 people in the walk."""
    database = tmp_path / "events.sqlite"
    settings = EventSettings(database, aggregate_minutes=60 if aggregate else None)
    data, at_stop = clip.read_bytes(), {}

    def stop_midway(fraction, preview):
        if fraction >= 0.3:  # mid-file, the first scene's people seen
            at_stop["seen"] = people_seen(database)
            raise stopped_by_streamlit(aggregate)

    def log() -> PeopleLog:  # one moment: every window the same hour on any host
        return PeopleLog(settings, clip.name, clock=lambda: DAY)

    tick = iter(range(10**6))  # every frame's progress due: the stop comes at the fraction asked
    with pytest.raises(BaseException) as stopped:
        analyze_video(pipeline, data, clip.name, stop_midway, log=log(), clock=lambda: float(next(tick)))
    assert type(stopped.value).__name__ in ("RerunException", "StopException")
    assert (at_stop["seen"] == 0) if aggregate else at_stop["seen"] > 0  # written before the stop
    assert rows(database, "SELECT COUNT(*) FROM events")[0][0] == 0
    assert rows(database, "SELECT COUNT(*) FROM aggregates")[0][0] == 0

    run = analyze_video(pipeline, data, clip.name, log=log())
    people = len(run.people.people)
    assert people == PEOPLE
    if aggregate:
        assert rows(database, "SELECT total FROM aggregates") == [(people,)]
    else:
        assert rows(database, "SELECT COUNT(DISTINCT run) FROM events") == [(1,)]
        for kind in ("person_seen", "person_left"):
            assert rows(database, f"SELECT COUNT(*) FROM events WHERE kind = '{kind}'") == [(people,)]


def test_a_video_page_analysis_failing_after_its_last_frame_logs_nobody_and_says_why(
    pipeline, clip, tmp_path, monkeypatch
):
    """The annotated video is finished after the last frame (the browser MP4's last frames, the file read
    back). An analysis failing there (its temporary folder cleaned meanwhile, a full disk) kept its people
    in the events file, though the page showed no result and its next run logs them again, and the page
    showed FFmpeg's traceback: now it ends as a stop inside the loop does (its run discarded), with a
    VideoError (the page's st.error)."""
    database = tmp_path / "events.sqlite"
    scratch = tmp_path / "scratch"  # this analysis's temporary folder, and no other's
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    def clean_temporary_folder(fraction, preview):
        if fraction == 1.0:  # the last frame: its people are all in the log by now
            assert people_seen(database) > 0
            for folder in scratch.glob("maskapp-video-*"):
                shutil.rmtree(folder)

    log = PeopleLog(EventSettings(database), clip.name, clock=lambda: DAY)
    with pytest.raises(VideoError, match="the annotated video could not be written"):
        analyze_video(pipeline, clip.read_bytes(), clip.name, clean_temporary_folder, log=log)
    assert rows(database, "SELECT COUNT(*) FROM events") == [(0,)]
    assert rows(database, "SELECT COUNT(*) FROM aggregates") == [(0,)]


@pytest.mark.parametrize("aggregate", [False, True], ids=["rerun", "stop"])
def test_a_video_page_analysis_stopped_while_its_video_fails_ends_as_the_stop(
    pipeline, clip, tmp_path, monkeypatch, caplog, aggregate
):
    """Streamlit stops the run (a setting changed, Stop) while the browser MP4 cannot be finished (its
    temporary folder cleaned, a full disk): the writer's VideoError, raised as the loop closed it, replaced
    Streamlit's stop, so the page showed an error about a video nobody would see and went on in a run
    Streamlit meant to end. The stop goes on now (the run discarded as for any stop), the failure logged."""
    database = tmp_path / "events.sqlite"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    def clean_then_stop(fraction, preview):
        if fraction == 1.0:
            for folder in scratch.glob("maskapp-video-*"):
                shutil.rmtree(folder)
            raise stopped_by_streamlit(aggregate)

    log = PeopleLog(EventSettings(database), clip.name, clock=lambda: DAY)
    with pytest.raises(BaseException) as stopped:
        analyze_video(pipeline, clip.read_bytes(), clip.name, clean_then_stop, log=log)
    assert type(stopped.value).__name__ in ("RerunException", "StopException")
    assert "the annotated video was not finished" in caplog.text
    assert rows(database, "SELECT COUNT(*) FROM events") == [(0,)]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--events", "{tmp}"], "is a folder"),
        (["--events", "{tmp}/corrupt.sqlite"], "corrupt or not an SQLite database"),
        (["--events", "{tmp}/other.sqlite"], "not a maskapp events log"),
        (["--on-violation", "ftp://gate.local/x"], "only http:// and https:// are allowed"),
        (["--aggregate-minutes", "5"], "add --events"),
        (["--keep-days", "30"], "add --events"),
        (["--events", "{tmp}/e.sqlite", "--keep-days", "-2"], "days to keep events must be a positive"),
        (["--events", "{tmp}/e.sqlite", "--keep-days", "1e12"], "up to 3650 (ten years)"),
        (["--events", "{tmp}/e.sqlite", "--aggregate-minutes", "-1"], "positive number of minutes"),
        (["--events", "{tmp}/e.sqlite", "--aggregate-minutes", "1e12"], "up to 10080 (a week)"),
        (["--events", "{tmp}/e.sqlite", "--on-violation", "ftp://gate.local/x"], "only http://"),
        (["--no-track", "--events", "{tmp}/e.sqlite"], "needs tracking"),
    ],
)
def test_bad_events_files_and_urls_are_one_error_line_before_starting(clip, tmp_path, flags, message):
    (tmp_path / "corrupt.sqlite").write_bytes(b"not a database at all" * 100)
    with contextlib.closing(sqlite3.connect(tmp_path / "other.sqlite")) as other:
        other.execute("CREATE TABLE songs (title TEXT)")
    argv = [flag.format(tmp=tmp_path) for flag in flags]
    status, out, err = run_main("video", str(clip), "--weights", str(WEIGHTS), *argv)
    assert status == 2 and not out
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "e.sqlite").exists()  # a bad setting leaves no events file behind


def test_results_over_the_input_video_or_log_are_refused_and_the_input_kept(clip, logged_run, tmp_path):
    video = tmp_path / "door.avi"
    video.write_bytes(clip.read_bytes())
    for flag in ("--out", "--json"):
        status, _, err = run_main("video", str(video), "--weights", str(WEIGHTS), flag, str(video))
        assert status == 2 and f"{flag} {video} is also this command's input" in err
    assert video.read_bytes() == clip.read_bytes()
    database = tmp_path / "events.sqlite"
    database.write_bytes((logged_run["folder"] / "events.sqlite").read_bytes())
    for flag in ("--csv", "--json"):
        status, _, err = run_main("events", str(database), flag, str(database))
        assert status == 2 and f"{flag} {database} is also this command's input" in err
    status, out, _ = run_main("events", str(database))  # still the log it was
    assert status == 0 and f"{PEOPLE} people" in out


def people_seen(database: Path) -> int:
    """The person_seen rows so far of a log another process is writing (0 before its tables exist)."""
    try:
        return rows(database, "SELECT COUNT(*) FROM events WHERE kind = 'person_seen'")[0][0]
    except sqlite3.Error:
        return 0


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stop_signal_stops_the_video_as_ctrl_c_does(tmp_path, stop_signal):
    """`kill`, `docker stop`, a service manager (SIGTERM), the terminal closed (SIGHUP): either ended the
    process at once (no summary, no JSON, people left in the log without person_left); now it stops as
    Ctrl-C does, keeping it all."""
    # Long enough that a loaded host still sends the signal mid-run (600 frames once finished first).
    clip = write_people_clip(tmp_path / "long.avi", PEOPLE_SCENES[:1], frames_per_scene=1500)
    log, data, annotated = tmp_path / "events.sqlite", tmp_path / "run.json", tmp_path / "annotated.avi"
    command = ["video", str(clip), "--weights", str(WEIGHTS), "--events", str(log), "--json", str(data)]
    child = subprocess.Popen(
        [sys.executable, "-m", "maskapp", *command, "--out", str(annotated)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: under nohup a test run passes SIGHUP down ignored, which video rightly keeps.
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
    )
    out, err = signal_once(
        child, lambda: log.is_file() and people_seen(log), stop_signal, "no person was seen"
    )
    assert child.returncode == 0, err[-2000:]
    assert f"stopped early: interrupted ({stop_signal.name})" in out and "Traceback" not in err
    frames = json.loads(data.read_text())["frames"]
    assert 0 < frames < 1500 and len(read_frames(annotated)) == frames
    seen = rows(log, "SELECT person FROM events WHERE kind = 'person_seen' ORDER BY person")
    assert seen and seen == rows(log, "SELECT person FROM events WHERE kind = 'person_left' ORDER BY person")


def test_a_signal_ignored_under_nohup_stays_ignored_and_every_handler_comes_back():
    term_before = signal.getsignal(signal.SIGTERM)
    hup_before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_signals_as_interrupt():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN  # `nohup video ...` keeps running
            assert signal.getsignal(signal.SIGTERM) is not term_before
        assert signal.getsignal(signal.SIGTERM) is term_before
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, hup_before)


def test_untracked_video_json_has_faces_without_people(clip, tmp_path):
    status, out, err = run_main(
        "video",
        str(clip),
        "--weights",
        str(WEIGHTS),
        "--no-track",
        "--max-frames",
        "3",
        "--json",
        str(tmp_path / "r.json"),
    )
    assert status == 0, err
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["people"] == [] and len(data["faces_by_frame"]) == 3 and data["second_looks"] == 0
    assert all(f["person"] is None and f["frame_label"] == f["label"] for f in data["faces_by_frame"][0])
    assert "people" not in out


def test_video_takes_a_second_look_at_a_face_in_doubt_unless_told_not_to(tmp_path):
    """maksssksksss401: a masked face the live detector scores under the confirm score (0.6)."""
    clip = write_people_clip(tmp_path / "doubt.avi", ("maksssksksss401",), frames_per_scene=8)
    looks = {}
    for flag in ("--second-look", "--no-second-look"):
        out = tmp_path / f"{flag}.json"
        status, _, err = run_main(
            "video",
            str(clip),
            "--weights",
            str(WEIGHTS),
            "--detector",
            "centerface-fast",
            flag,
            "--json",
            str(out),
        )
        assert status == 0, err
        looks[flag] = json.loads(out.read_text())["second_looks"]
    assert looks["--second-look"] > 0 and looks["--no-second-look"] == 0


# --- the Live page's worker ---------------------------------------------------------------------------


def webcam(stem: str, count: int) -> list[np.ndarray]:
    return drifting_frames(dev_photo(stem), count)


def show(processor: LiveProcessor, stem: str, count: int) -> list:
    """`count` webcam frames of a photo through the processor; the stats after each."""
    stats = []
    for frame in webcam(stem, count):
        processor.process(frame)
        stats.append(processor.latest())
    return stats


def test_live_alerts_once_per_non_compliant_person_and_counts_people(pipeline):
    processor = LiveProcessor(pipeline, track=True)
    unmasked = show(processor, "maksssksksss609", 20)
    assert unmasked[1].alert is False  # the verdict settles first
    assert [s.episode for s in unmasked].count(1) >= 10 and unmasked[-1].alert  # on while the person stays
    assert max(s.episode for s in unmasked) == 1  # and never repeated for them
    masked = show(processor, "maksssksksss313", 10)
    assert not masked[-1].alert and masked[-1].episode == 1  # the unmasked person left
    again = show(processor, "maksssksksss609", 10)
    assert again[-1].alert and again[-1].episode == 2  # a new person: a new alert
    stats = again[-1]
    assert stats.people.total == 3 and stats.people.compliant == 1 and stats.people_in_view == 1
    assert stats.people.compliance == pytest.approx(1 / 3)
    assert len(stats.timeline) >= 1


def test_live_session_logs_people_and_closes_them_when_the_camera_stops(pipeline, tmp_path):
    database = tmp_path / "live.sqlite"
    processor = LiveProcessor(pipeline, track=True)
    processor.configure(events=PeopleLog(EventSettings(database), "live webcam"))
    assert processor.event_settings.path == database
    for frame in webcam("maksssksksss609", 8):
        processor.process(frame)
    processor.end_stream()
    kinds = [kind for (kind,) in rows(database, "SELECT kind FROM events ORDER BY id")]
    assert kinds == ["person_seen", "violation", "person_left"]
    for frame in webcam("maksssksksss609", 4):  # START again: the log reopens, a new person
        processor.process(frame)
    processor.end_stream()
    assert rows(database, "SELECT COUNT(DISTINCT run) FROM events") == [(2,)]


def test_live_view_hides_faces_when_asked(pipeline):
    processor = LiveProcessor(pipeline, track=True, anonymize="fill")
    frame = webcam("maksssksksss609", 1)[0]
    shown = processor.process(frame)
    (face,) = pipeline.process(frame).faces
    x1, y1, x2, y2 = face.box
    inner = shown[y1 + 5 : y2 - 5, x1 + 5 : x2 - 5].astype(int)
    assert np.abs(inner - np.array(FILL_BGR)).max() == 0
    processor.configure(anonymize="none")
    shown = processor.process(webcam("maksssksksss609", 2)[1])
    assert np.abs(shown[y1 + 5 : y2 - 5, x1 + 5 : x2 - 5].astype(int) - np.array(FILL_BGR)).mean() > 25
    assert cv2.countNonZero(cv2.absdiff(frame, frame)[..., 0]) == 0  # the input is never changed


def test_events_and_the_page_tell_an_idle_window_from_a_camera_that_sent_no_frame(tmp_path):
    """A 15-minute window with frames and nobody in them is stored ('nobody'); one with no frame at all
    is not, and `events` skipped it without a word, so it read as an idle window dropped, against the
    README. `events` now lists that stretch as no window (not running), and the Compliance log's table
    of sources counts such gaps beside the source's windows."""
    from maskapp.app.compliance_log import source_rows
    from maskapp.events.report import EventLog

    database = tmp_path / "gate.sqlite"
    now = [DAY]
    with SqliteEventStore(database) as store:
        recorder = EventRecorder(store, "gate", aggregate_minutes=15, clock=lambda: now[0])
        for frame, minute in enumerate((0, 20, 25, 50)):  # frames at 08:00, 08:20, 08:25; none 08:30-08:45
            now[0] = DAY + timedelta(minutes=minute)
            recorder.observe(frame, [PersonObservation(1, "with_mask", True)] if minute == 0 else [])
        recorder.observe(4, [], [EndedPerson(1, "with_mask")])
        recorder.close(5)
    status, out, err = run_main("events", str(database))
    assert status == 0, err
    assert "2026-11-24 08:15:00 to 2026-11-24 08:30:00  gate: nobody" in out
    assert "2026-11-24 08:30:00 to 2026-11-24 08:45:00  gate: no window (no frame came in" in out
    assert "aggregate windows 3 (1 gap with no window: not running)" in out
    with EventLog(database) as log:
        (row,) = source_rows(log.summary())
    assert row["Aggregate windows"] == "3 (1 gap with no window: not running)"
