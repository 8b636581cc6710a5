"""The pages' people features through AppTest: the Compliance log page on a real SQLite log (charts,
violations, CSV download, date filter, missing and broken files), the Live page's people, privacy and
event-log settings, the Video page with the event log on; and hidden faces on the Images page's work."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from maskapp.app.analysis import analyze_image
from maskapp.app.compliance_log import read_log, violations_file_name
from maskapp.cli import main
from maskapp.events.recorder import EndedPerson, EventRecorder, PersonObservation
from maskapp.events.store import Event, SqliteEventStore, iso_utc
from maskapp.media.images import encode_png
from maskapp.vision.anonymize import FILL_BGR
from tests.conftest import (
    DAY,
    Gate,
    assert_no_exception,
    dev_photo,
    metrics,
    open_page,
    record_counts_only,
    record_day,
    record_four_cameras,
    write_lock_held_elsewhere,
    write_people_clip,
)


def test_compliance_log_shows_sources_charts_violations_and_a_csv(app, tmp_path):
    database = record_day(tmp_path / "log.sqlite")
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(database)).run()
    assert not at.exception and not at.error
    shown = metrics(at)
    assert shown["People"] == "6" and shown["Violations"] == "3" and shown["Sources"] == "2"
    assert shown["Compliance of people"] == "50%"
    # A column per source, every figure a row (a row per source hid the last columns at 1000 px), the
    # verdicts in the classes' order, a verdict nobody at a source had a 0 there, compliance in percent.
    sources = at.table[0].value
    assert list(sources.columns) == ["", "door", "hall"]
    figures = {row[""]: (row["door"], row["hall"]) for row in sources.to_dict("records")}
    assert list(figures)[:7] == [
        "People",
        "Mask",
        "Mask worn incorrectly",
        "No mask",
        "Violations",
        "Compliance of people",
        "Still present",
    ]
    assert figures["People"] == ("4", "2") and figures["Mask worn incorrectly"] == ("1", "0")
    assert figures["Compliance of people"] == ("25%", "100%")
    assert len(at.get("plotly_chart")) == 2  # compliance per source over time, people per hour
    violations = at.dataframe[0].value
    assert len(violations) == 3 and set(violations["verdict"]) == {"No mask", "Mask worn incorrectly"}
    (download,) = at.get("download_button")
    assert "violations" in download.proto.label.lower()
    # The date filter: the first day only.
    at.date_input[0].set_value((DAY.date(), DAY.date())).run()
    shown = metrics(at)
    assert shown["People"] == "3" and shown["Violations"] == "1"
    # A camera still writing: the page's view is cached per version of the file, so the next run shows
    # the new person.
    with SqliteEventStore(database) as store:
        moment = iso_utc(DAY + timedelta(minutes=30))
        store.write_events([Event(moment, "door", "later", 1, "person_seen", "with_mask", 1)])
    at.run()
    assert metrics(at)["People"] == "4"


def test_an_aggregate_only_log_says_its_violations_were_not_logged(app, tmp_path):
    """A log of counts alone showed 'Violations 0' (on the page and in its source's column) beside two
    non-compliant people, as if nobody had been unmasked; it now says the violations were not logged and
    why. A log of people one by one beside it still counts its own."""
    database = record_counts_only(tmp_path / "counts.sqlite")
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(database)).run()
    assert_no_exception(at)
    shown = metrics(at)
    assert shown["People"] == "3" and shown["Compliance of people"] == "33%"
    assert shown["Violations"] == "n/a"
    figures = {row[""]: row["gate"] for row in at.table[0].value.to_dict("records")}
    assert figures["Violations"] == "not logged" and figures["Aggregate windows"] == "1"
    assert not at.dataframe and "no per-person row" in at.info[0].value
    (download,) = at.get("download_button")
    assert download.proto.disabled
    # The same log with a door logged person by person: the door's violations are counted, the gate's not.
    record_day(database, door="door", hall="hall")
    at.run()
    assert metrics(at)["Violations"] == "3" and not at.info
    figures = {row[""]: (row["door"], row["gate"]) for row in at.table[0].value.to_dict("records")}
    assert figures["Violations"] == ("3", "not logged")


def test_the_violations_figure_of_a_log_with_aggregate_only_sources_says_what_it_leaves_out(app, tmp_path):
    """Beside an aggregate-only source, the top 'Violations 3' counted the per-person sources alone with
    no word of it, as if it were every source's. It now says where it counted, and which source's
    violations the list below leaves out and why."""
    database = record_day(record_counts_only(tmp_path / "log.sqlite"), door="door", hall="hall")
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(database)).run()
    assert_no_exception(at)
    (figure,) = [metric for metric in at.metric if metric.label == "Violations"]
    assert (figure.value, figure.delta) == ("3", "counted at 2 of 3 sources")
    assert "Not logged at gate" in figure.proto.help
    assert any("Not listed, here or in the CSV: the violations at gate" in c.value for c in at.caption)
    at.date_input[0].set_value((DAY.date() + timedelta(days=1),) * 2).run()  # the door and hall alone
    (figure,) = [metric for metric in at.metric if metric.label == "Violations"]
    assert (figure.value, figure.delta) == ("2", "")
    assert not any("Not listed" in caption.value for caption in at.caption)


def test_the_violations_csv_beside_aggregate_only_sources_says_it_leaves_them_out(app, tmp_path):
    """The page said the violations list left out the aggregate-only sources, but the CSV downloaded
    under it, named violations_DAY_DAY.csv, read once saved as every source's violations. Its name now
    says how many sources it holds, and the note above the button names the CSV; the CSV holds data rows
    alone."""
    database = record_day(record_counts_only(tmp_path / "log.sqlite"), door="door", hall="hall")
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(database)).run()
    assert_no_exception(at)
    assert any("in the CSV: the violations at gate" in caption.value for caption in at.caption)
    first, last = DAY.date(), DAY.date() + timedelta(days=1)
    view = read_log(database, first, last)
    assert violations_file_name(view.summary, first, last) == (
        "violations_2026-11-24_2026-11-25_2_of_3_sources.csv"
    )
    assert view.violations_csv.splitlines()[0] == "time,source,run,person,kind,label,frame"
    assert len(view.violations_csv.splitlines()) == 1 + len(view.violations)
    door_and_hall = read_log(database, last, last)  # the gate's day left out: every source's violations
    assert violations_file_name(door_and_hall.summary, last, last) == "violations_2026-11-25_2026-11-25.csv"


def test_the_compliance_log_names_each_verdict_as_its_charts_do(app, tmp_path):
    """The charts' legends said Mask and No mask, the source table and the violations with_mask and
    without_mask: one verdict under two names on one page. Each is now named as on every other page; the
    CSV keeps the stored labels."""
    database = record_day(tmp_path / "log.sqlite")
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(database)).run()
    assert_no_exception(at)
    per_hour = json.loads(at.get("plotly_chart")[1].proto.spec)
    legend = [trace["name"] for trace in per_hour["data"]]
    assert legend == ["Mask", "Mask worn incorrectly", "No mask"]
    rows = [row[""] for row in at.table[0].value.to_dict("records")]
    assert [row for row in rows if row in legend] == legend
    assert not {"with_mask", "mask_worn_incorrectly", "without_mask"} & set(rows)
    # Headed "verdict", as "People by verdict per hour" above it ("label" was the CSV's machine word).
    assert "label" not in at.dataframe[0].value.columns
    assert set(at.dataframe[0].value["verdict"]) <= set(legend)
    csv_lines = read_log(database).violations_csv.splitlines()
    assert csv_lines[0].split(",")[5] == "label"  # the CSV, for other programs, keeps its column and values
    assert {line.split(",")[5] for line in csv_lines[1:]} == {"without_mask", "mask_worn_incorrectly"}


def test_the_source_tables_figures_are_named_in_one_style(app, tmp_path):
    """The table's rows read 'people', 'violations', 'still present' beside 'Mask', 'No mask': two styles
    in one column. Every row is now named as the verdicts and the figures above it are."""
    database = record_day(record_counts_only(tmp_path / "log.sqlite"), door="door", hall="hall")
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(database)).run()
    assert_no_exception(at)
    rows = [row[""] for row in at.table[0].value.to_dict("records")]
    assert rows == [
        "People",
        "Mask",
        "Mask worn incorrectly",
        "No mask",
        "Violations",
        "Compliance of people",
        "Still present",
        "Aggregate windows",
        "From (UTC)",
        "To (UTC)",
    ]


def test_who_is_still_present_reads_not_logged_for_an_aggregate_only_source(app, tmp_path, capsys):
    """An aggregate-only source stores counts alone, yet its 'still present' read 0 on the page and in
    `events`, a fact nobody logged (everyone gone). It now reads not logged, and a source logged person
    by person beside it still counts its own."""
    database = record_day(record_counts_only(tmp_path / "log.sqlite"), door="door", hall="hall")
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(database)).run()
    assert_no_exception(at)
    figures = {row[""]: (row["door"], row["gate"]) for row in at.table[0].value.to_dict("records")}
    assert figures["Still present"] == ("0", "not logged")
    assert main(["events", str(database)]) == 0
    gate = capsys.readouterr().out.split("source gate")[1].split("source hall")[0]
    assert "still present not logged" in gate and "still present at the end of the log" not in gate


def test_an_aggregate_only_sources_span_reads_as_its_windows_on_the_page_and_in_events(app, tmp_path, capsys):
    """An aggregate-only source's 'to' was its last window's nominal end (08:05 for people last seen at
    08:03), which read as the camera running until then. The page and `events` now show the window; a
    source logged person by person beside it keeps its own times."""
    database = record_day(record_counts_only(tmp_path / "log.sqlite"), door="door", hall="hall")
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(database)).run()
    assert_no_exception(at)
    figures = {row[""]: (row["door"], row["gate"]) for row in at.table[0].value.to_dict("records")}
    window = "window 2026-11-24 08:00:00–08:05:00"
    assert figures["From (UTC)"] == ("2026-11-24 08:00:00", window)
    assert figures["To (UTC)"] == ("2026-11-25 08:21:00", window)
    assert main(["events", str(database)]) == 0
    gate = capsys.readouterr().out.split("source gate")[1].split("source hall")[0]
    assert f"within {window}" in gate and "to 2026-11-24 08:05:00" not in gate


def test_a_person_flagged_then_compliant_is_explained_on_the_page_and_by_events(app, tmp_path, capsys):
    """A real clip logged a violation for a person later judged masked: the page showed 23 violations
    beside 22 non-compliant people (3 + 19) with no word of why. Both the page and `events` say it now."""
    path = tmp_path / "log.sqlite"
    with SqliteEventStore(path) as store:
        recorder = EventRecorder(store, "door", clock=lambda: DAY)
        recorder.observe(
            0, [PersonObservation(1, "without_mask", True), PersonObservation(2, "without_mask", True)]
        )
        recorder.observe(1, [], [EndedPerson(1, "with_mask"), EndedPerson(2, "without_mask")])
        recorder.close(1)
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(path)).run()
    assert_no_exception(at)
    figures = {row[""]: row["door"] for row in at.table[0].value.to_dict("records")}
    assert (figures["Violations"], figures["Mask"], figures["No mask"]) == ("2", "1", "1")
    assert any("1 person was flagged and then left compliant" in caption.value for caption in at.caption)
    assert main(["events", str(path)]) == 0
    assert "violations 2 (1 of them left compliant)" in capsys.readouterr().out
    record_day(path, door="gate")  # nobody there flagged and then compliant: the door's note alone
    at.run()
    assert sum("flagged and then left compliant" in caption.value for caption in at.caption) == 1


def test_the_violations_csv_downloads_without_running_the_compliance_log_again(app, tmp_path):
    """A click on the CSV download ran the page again (the log read again, seconds for a year-long one);
    the CSV is written from the violations shown, before the click, so the click now only fetches it."""
    database = record_day(tmp_path / "log.sqlite")
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(database)).run()
    assert_no_exception(at)
    (download,) = at.get("download_button")
    assert download.proto.label == "Download violations (CSV)" and not download.proto.disabled
    assert download.proto.ignore_rerun


def test_compliance_log_with_camera_paths_for_sources_keeps_every_source_and_label_on_the_page(app, tmp_path):
    """A camera's path or URL is one unbreakable word: as a column header it pushed the next sources off a
    1000 px page, and in the violations table the label came after it, cut. Headers may now break after
    each / and _, and a violation's label comes right after its time."""
    door = "rtsp://camera.local:554/entrance_north_door/stream"
    database = record_day(tmp_path / "log.sqlite", door=door, hall="/srv/videos/lobby_camera.avi")
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(database)).run()
    assert_no_exception(at)
    headers = list(at.table[0].value.columns)[1:]
    assert [header.replace("\u200b", "") for header in headers] == ["/srv/videos/lobby_camera.avi", door]
    assert (
        headers[1] == "rtsp:/\u200b/\u200bcamera.local:554/\u200bentrance_\u200bnorth_\u200bdoor/\u200bstream"
    )
    violations = at.dataframe[0].value
    assert list(violations.columns)[:3] == ["time (UTC)", "verdict", "person"]
    assert set(violations["source"]) == {door}  # the data itself as stored


def test_the_compliance_logs_events_file_stays_after_another_page(app, tmp_path):
    """The events file typed in came back as the default after a look at another page, and the page
    said there was no log yet."""
    database = record_day(tmp_path / "log.sqlite")
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(database)).run()
    at.switch_page("app_pages/home.py").run()
    at.switch_page("app_pages/compliance_log.py").run()
    assert_no_exception(at)
    assert at.text_input[0].value == str(database)
    assert metrics(at)["People"] == "6" and not at.info


def test_the_compliance_logs_dates_and_time_zone_stay_after_another_page(app, tmp_path):
    """The date filter came back as the whole log, and 'Times in' as the browser's zone, after a look at
    another page. Another log still opens with all its days."""
    database = record_day(tmp_path / "log.sqlite")
    app.context = {"timezone": "Europe/Paris"}
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(database)).run()
    assert at.radio[0].label == "Times in" and at.radio[0].value == "Europe/Paris"
    at.radio[0].set_value("UTC").run()
    second_day = DAY.date() + timedelta(days=1)
    at.date_input[0].set_value((second_day, second_day)).run()
    assert metrics(at)["People"] == "3"
    at.switch_page("app_pages/home.py").run()
    at.switch_page("app_pages/compliance_log.py").run()
    assert_no_exception(at)
    assert at.radio[0].value == "UTC" and at.date_input[0].value == (second_day, second_day)
    assert metrics(at)["People"] == "3"
    at.text_input[0].set_value(str(record_day(tmp_path / "other.sqlite"))).run()
    assert metrics(at)["People"] == "6"


def test_an_untouched_date_filter_takes_in_the_days_a_log_gains(app, tmp_path):
    """The kept date filter keeps only a range the reader picked: until then it is the whole log, also
    after a camera logs a new day."""
    database = record_day(tmp_path / "log.sqlite")
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(database)).run()
    assert at.date_input[0].value == (DAY.date(), DAY.date() + timedelta(days=1))
    third_day = DAY + timedelta(days=2)
    with SqliteEventStore(database) as store:
        store.write_events([Event(iso_utc(third_day), "door", "later", 9, "person_seen", "with_mask", 1)])
    at.run()
    assert_no_exception(at)
    assert at.date_input[0].value == (DAY.date(), third_day.date())


def test_compliance_log_without_a_file_says_how_to_start_one(app, tmp_path):
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(tmp_path / "none_*yet*.sqlite")).run()
    assert not at.exception and not at.error
    (info,) = [info.value for info in at.info if "No event log" in info.value]
    # The command as code (its backticks were escaped and showed), the typed path as typed.
    assert "run `python -m maskapp video SOURCE --events FILE.sqlite`, then" in info
    assert "none\\_\\*yet\\*.sqlite" in info


def test_compliance_log_reads_a_home_path_and_refuses_a_name_too_long(app, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    record_day(tmp_path / "log.sqlite")
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value("~/log.sqlite").run()  # as a shell would read it
    assert not at.exception and not at.error and metrics(at)["People"] == "6"
    at.text_input[0].set_value(str(tmp_path / ("a" * 300 + ".sqlite"))).run()
    assert not at.exception
    assert (
        "(File name too long); give a path whose folder and file names are at most 255" in at.error[0].value
    )


def test_compliance_log_pointed_at_a_missing_file_a_folder_then_back(app, tmp_path):
    database = record_day(tmp_path / "log.sqlite")
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(database)).run()
    assert metrics(at)["People"] == "6"
    at.text_input[0].set_value(str(tmp_path / "none.sqlite")).run()
    assert not at.exception and not at.error and any("No event log" in i.value for i in at.info)
    at.text_input[0].set_value(str(tmp_path)).run()  # "No event log ... yet" before
    assert not at.exception and len(at.error) == 1
    assert "is a folder; give the events file in it, such as" in at.error[0].value
    at.text_input[0].set_value(str(database)).run()
    assert not at.exception and not at.error and metrics(at)["People"] == "6"


def test_compliance_log_of_a_log_another_program_holds_locked_names_the_lock(app, tmp_path):
    database = record_day(tmp_path / "log.sqlite")
    at = open_page(app, "app_pages/compliance_log.py")
    with write_lock_held_elsewhere(database):
        at.text_input[0].set_value(str(database)).run()
        assert not at.exception and len(at.error) == 1
        assert "locked by another connection or process (a write lock, still held after" in at.error[0].value
    at.run()
    assert not at.exception and not at.error and metrics(at)["People"] == "6"


def test_compliance_log_dates_picked_end_first_or_with_nobody(app, tmp_path):
    database = record_day(tmp_path / "log.sqlite")
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(database)).run()
    second_day = DAY.date() + timedelta(days=1)
    at.date_input[0].set_value((second_day, DAY.date())).run()  # an error naming one moment twice before
    assert not at.exception and not at.error and metrics(at)["People"] == "6"
    at.date_input[0].set_value((second_day, second_day)).run()
    assert metrics(at)["People"] == "3"
    later = DAY.date() + timedelta(days=5)
    at.date_input[0].set_value((later, later)).run()
    assert not at.exception and not at.error and metrics(at)["People"] == "0"
    assert any("Nobody in this date range" in i.value for i in at.info)


@pytest.mark.parametrize("kind", ["device", "pipe"])
def test_compliance_log_pointed_at_a_device_or_a_pipe_says_it_is_not_a_file(app, tmp_path, kind):
    """/dev/null or a named pipe exist but are no file: "No event log at /dev/null yet. Turn on 'Log
    people...'" sent the reader to start a log where none can ever be written."""
    database = record_day(tmp_path / "log.sqlite")
    if kind == "device":
        path = Path(os.devnull)
    else:
        path = tmp_path / "pipe.sqlite"
        os.mkfifo(path)
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(path)).run()
    assert not at.exception and not any("No event log" in i.value for i in at.info)
    assert len(at.error) == 1 and "is not a regular file (a device, pipe or socket)" in at.error[0].value
    at.text_input[0].set_value(str(database)).run()  # the page goes on
    assert not at.exception and not at.error and metrics(at)["People"] == "6"


@pytest.mark.parametrize("content", [b"garbage" * 200, None, "same table names"])
def test_compliance_log_with_a_broken_or_foreign_file_shows_an_error(app, tmp_path, content):
    path = tmp_path / "bad.sqlite"
    if content is None:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("CREATE TABLE songs (title TEXT)")
    elif content == "same table names":  # another program's: 'no such column: key' before
        with contextlib.closing(sqlite3.connect(path)) as conn:
            for table in ("meta (name, body)", "events (title)", "aggregates (total)"):
                conn.execute(f"CREATE TABLE {table}")
    else:
        path.write_bytes(content)
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(path)).run()
    assert not at.exception
    assert len(at.error) == 1 and "events" in at.error[0].value
    assert "SQLite error" not in at.error[0].value


@pytest.mark.parametrize("version", ["2", "beta"])
def test_compliance_log_of_another_version_says_which_maskapp_reads_it(app, tmp_path, version):
    """A log from a newer maskapp read 'this maskapp reads versions 1 to 1: use a newer maskapp'; one
    whose version is no number was sent after a newer maskapp too, which would not read it either."""
    database = record_day(tmp_path / "log.sqlite")
    with contextlib.closing(sqlite3.connect(database)) as conn, conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'version'", (version,))
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(database)).run()
    assert_no_exception(at)
    (error,) = at.error
    if version == "2":
        assert "version 2, written by a newer maskapp" in error.value and "version 1 and older" in error.value
    else:
        assert "not a maskapp events log (its version 'beta' is no version number)" in error.value
    assert "1 to 1" not in error.value


def test_compliance_log_with_a_time_edited_by_hand_shows_an_error(app, tmp_path):
    path = tmp_path / "edited.sqlite"
    with SqliteEventStore(path) as store:
        moment = iso_utc(datetime(2026, 11, 27, 9, 0, tzinfo=UTC))
        store.write_events(
            [Event(moment, "door", "run", 1, kind, "with_mask", 1) for kind in ("person_seen",)]
        )
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE events SET time = 'garbage'")
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(path)).run()
    assert not at.exception
    assert len(at.error) == 1 and "'garbage'; allowed: ISO-8601" in at.error[0].value


def test_compliance_log_of_a_camera_just_starting_reads_as_empty_then_fills(app, tmp_path):
    """The page read while `python -m maskapp video CLIP --events F` starts: for a moment F exists with no
    table yet (a reader during a real run said 'not a maskapp events log', a false error, before)."""
    path = tmp_path / "starting.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")  # what the writer does before it adds its tables
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(path)).run()
    assert not at.exception and not at.error
    assert any("The event log is empty" in info.value for info in at.info)
    with SqliteEventStore(path) as store:
        store.write_events([Event(iso_utc(DAY), "door", "run", 1, "person_seen", "with_mask", 1)])
    at.run()
    assert not at.exception and not at.error and metrics(at)["People"] == "1"


def sidebar_toggle(at: AppTest, label: str):
    (toggle,) = [t for t in at.sidebar.toggle if t.label == label]
    return toggle


def events_file(at: AppTest):
    (text,) = [t for t in at.sidebar.text_input if t.label == "Events file"]
    return text


def test_live_page_follows_people_and_takes_privacy_and_event_log_settings(app, tmp_path, monkeypatch):
    at = open_page(app, "app_pages/live.py")
    processor = at.session_state["live_processor"]
    assert processor.tracks and processor.event_settings.path is None
    (hide,) = [s for s in at.sidebar.selectbox if s.label == "Hide faces"]
    hide.set_value("fill").run()
    assert at.session_state["live_processor"]._anonymize == "fill"
    log_settings = ("Aggregate counts only", "Window (minutes)", "Keep rows for (days; 0: keep all)")
    widgets = [*at.sidebar.toggle, *at.sidebar.number_input]
    assert [w.disabled for w in widgets if w.label in log_settings] == [True, True, True]
    events_file(at).set_value(str(tmp_path)).run()  # a folder: one clear error, the session goes on
    sidebar_toggle(at, "Log people to an events file").set_value(True).run()
    assert not at.exception and any("is a folder" in e.value for e in at.error)
    events_file(at).set_value(str(tmp_path / ("a" * 300 + ".sqlite"))).run()  # one clear error too
    assert not at.exception and "File name too long" in at.error[0].value
    monkeypatch.setenv("HOME", str(tmp_path))
    events_file(at).set_value("~/live.sqlite").run()  # home, as a shell would read it
    assert not at.error
    assert at.session_state["live_processor"].event_settings.path == tmp_path / "live.sqlite"
    assert (tmp_path / "live.sqlite").is_file()
    (keep,) = [n for n in at.sidebar.number_input if n.label.startswith("Keep rows for")]
    assert not keep.disabled  # the log is on
    keep.set_value(30).run()
    assert at.session_state["live_processor"].event_settings.keep_days == 30
    (webhook,) = [t for t in at.sidebar.text_input if t.label == "Violation webhook (optional)"]
    webhook.set_value("ftp://gate.local/x").run()  # another scheme: one clear error, no traceback
    assert not at.exception and [e.value for e in at.sidebar.error] == [
        "webhook URL 'ftp://gate.local/x' has scheme 'ftp'; only http:// and https:// are allowed"
    ]
    # The page goes on (a stopped run ended the stream), with the log already in use.
    assert any("The camera is off" in info.value for info in at.info)
    assert at.session_state["live_processor"].event_settings.keep_days == 30
    webhook.set_value("http://[::1/violation").run()  # a typo in an IPv6 host
    assert not at.exception and "is malformed (Invalid IPv6 URL)" in at.error[0].value
    webhook.set_value("").run()
    assert not at.exception and not at.error
    sidebar_toggle(at, "Follow people").set_value(False).run()
    assert not at.session_state["live_processor"].tracks  # frames on their own, debounced alert
    # The log's settings go from the sidebar: it says why (they vanished, the log on going silent).
    assert any("Off while *Follow people* is off" in c.value for c in at.sidebar.caption)


def video_logged_to(app, database: Path, frames_per_scene: int) -> AppTest:
    """The Video page after a clip of five people was processed with the event log in `database`."""
    clip = write_people_clip(database.with_name("door.avi"), frames_per_scene=frames_per_scene)
    at = open_page(app, "app_pages/video.py")
    events_file(at).set_value(str(database)).run()
    sidebar_toggle(at, "Log people to an events file").set_value(True).run()
    at.file_uploader[0].set_value(("door.avi", clip.read_bytes(), "video/x-msvideo")).run()
    return at


def test_video_page_counts_people_and_logs_them(app, tmp_path):
    database = tmp_path / "video.sqlite"
    at = video_logged_to(app, database, frames_per_scene=10)
    assert not at.exception and not at.error
    shown = metrics(at)
    assert shown["People"] == "5" and shown["Compliance of people"] == "40%"
    with contextlib.closing(sqlite3.connect(database)) as conn:
        kinds = dict(conn.execute("SELECT kind, COUNT(*) FROM events GROUP BY kind").fetchall())
    assert kinds == {"person_seen": 5, "violation": 3, "person_left": 5}
    (said,) = [c.value for c in at.caption if c.value.startswith("Event log:")]
    assert "13 event(s) written to" in said and "dated when analysed, now" in said  # not the recording's


def test_a_mistyped_events_file_corrected_does_not_log_the_video_twice(app, tmp_path):
    database = tmp_path / "video.sqlite"
    at = video_logged_to(app, database, frames_per_scene=6)
    assert metrics(at)["People"] == "5"
    events_file(at).set_value(str(tmp_path)).run()  # a folder: one clear error
    assert not at.exception and "is a folder" in at.error[0].value
    events_file(at).set_value(str(database)).run()  # corrected: the same settings as the result shown
    assert not at.exception and not at.error and metrics(at)["People"] == "5"
    with contextlib.closing(sqlite3.connect(database)) as conn:
        (seen,) = conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'person_seen'").fetchone()
    assert seen == 5  # 10 before: the video was processed again and its people logged twice


def test_the_log_switched_off_and_on_again_does_not_log_the_video_twice(app, tmp_path):
    """Off, then on: the video is analysed again and shown, its people not logged a second time (they
    were, and the Compliance log counted ten people for five); a new events file still gets them."""
    database = tmp_path / "video.sqlite"
    at = video_logged_to(app, database, frames_per_scene=6)
    sidebar_toggle(at, "Log people to an events file").set_value(False).run()
    sidebar_toggle(at, "Log people to an events file").set_value(True).run()
    assert_no_exception(at)
    assert metrics(at)["People"] == "5" and "not logged again" in at.info[0].value
    assert people_seen(database) == 5
    events_file(at).set_value(str(tmp_path / "other.sqlite")).run()
    assert not at.info and people_seen(tmp_path / "other.sqlite") == 5


def people_seen(database: Path) -> int:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        return conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'person_seen'").fetchone()[0]


def test_images_work_hides_every_face_and_its_thumbnail(pipeline):
    data = encode_png(dev_photo("maksssksksss0"))
    analysis = analyze_image(pipeline, data, "street.png", anonymize="fill")
    assert len(analysis.result.faces) == 3
    for face, crop in zip(analysis.result.faces, analysis.crops, strict=True):
        x1, y1, x2, y2 = face.box
        lower = analysis.annotated[y1 + (y2 - y1) // 2 : y2 - 3, x1 + 3 : x2 - 3]  # below the caption
        assert (lower == np.array(FILL_BGR, np.uint8)).all()
        filled = (crop == np.array(FILL_BGR, np.uint8)).all(axis=2).mean()
        assert filled > 0.6  # the thumbnail is the hidden face (and a rim of what was around it)
    plain = analyze_image(pipeline, data, "street.png")
    assert not np.array_equal(plain.annotated, analysis.annotated)


def test_follow_people_switched_off_and_on_keeps_the_live_sessions_people(app):
    """*Follow people* switched off and on again: the page keeps the session's processor, and with it the
    people in view (see `test_live.py::test_follow_people_switched_off_and_on_counts_alerts_*`);
    it made a new one each time, whose new tracker counted, alerted and logged them again."""
    at = open_page(app, "app_pages/live.py")
    processor = at.session_state["live_processor"]
    for follow in (False, True):
        sidebar_toggle(at, "Follow people").set_value(follow).run()
        assert_no_exception(at)
        assert at.session_state["live_processor"] is processor and processor.tracks == follow


def test_a_new_webhook_does_not_log_the_video_again_to_the_same_events_file(app, tmp_path, monkeypatch):
    """The events file and the webhook are each remembered: the same video with a new webhook went to the
    same file again (the walk's clip of four people read eight there), and with a new file told the same
    gate again. Now each new target hears of the people once, the others not again."""
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    first, second = Gate(), Gate()
    try:
        database = tmp_path / "video.sqlite"
        at = open_page(app, "app_pages/video.py")
        webhook(at).set_value(first.url).run()
        clip = write_people_clip(tmp_path / "door.avi", frames_per_scene=6)
        events_file(at).set_value(str(database)).run()
        sidebar_toggle(at, "Log people to an events file").set_value(True).run()
        at.file_uploader[0].set_value(("door.avi", clip.read_bytes(), "video/x-msvideo")).run()
        violations = len(first.received)
        assert people_seen(database) == 5 and violations > 0
        webhook(at).set_value(second.url).run()  # a new gate: told; the same file: not again
        assert_no_exception(at)
        assert people_seen(database) == 5 and "not logged again" in at.info[0].value
        events_file(at).set_value(str(tmp_path / "other.sqlite")).run()  # a new file: logged; gates: not
        assert people_seen(tmp_path / "other.sqlite") == 5
    finally:
        first.stop()
        second.stop()
    assert len(first.received) == violations and len(second.received) == violations


def webhook(at: AppTest):
    (text,) = [t for t in at.sidebar.text_input if t.label == "Violation webhook (optional)"]
    return text


def test_the_violations_table_names_each_person_with_their_run(app, tmp_path):
    """Person numbers start at 1 in each run, so the violations table showed 'person 1' at two cameras
    (and in two runs of one) with nothing saying they were two people. Each person now reads as their
    run and number ('f39e55fdd1de #1'), the column's help says why; the CSV keeps its run and person."""
    database = record_day(record_four_cameras(tmp_path / "four.sqlite"), door="lobby")
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(database)).run()
    assert_no_exception(at)
    shown = at.dataframe[0].value
    stored = list(csv.DictReader(io.StringIO(read_log(database).violations_csv)))
    assert len({row["person"] for row in stored}) < len(stored)  # the same numbers, in several runs
    assert sorted(shown["person"]) == sorted(f"{row['run']} #{row['person']}" for row in stored)
    assert shown["person"].is_unique
    person = next(c for c in json.loads(at.dataframe[0].proto.columns).values() if c.get("label") == "person")
    assert "two people" in person["help"]


def test_the_compliance_logs_date_filter_writes_days_as_the_page_does(app, tmp_path):
    """The date filter read 2026/11/24 – 2026/11/25 above a table and charts that write 2026-11-24:
    it now writes its days the same way."""
    database = record_day(tmp_path / "log.sqlite")
    at = open_page(app, "app_pages/compliance_log.py")
    at.text_input[0].set_value(str(database)).run()
    assert_no_exception(at)
    (dates,) = at.date_input
    assert dates.proto.format == "YYYY-MM-DD"
    assert "2026-11-24" in read_log(database).violations[0]["time (UTC)"]  # the page's own style
