"""Compliance log: an event database read back: compliance per source over time, people by verdict per
hour, the violations with a CSV download, a date filter."""

import streamlit as st

from maskapp.app import plots, ui
from maskapp.app.compliance_log import (
    AGGREGATE_ONLY,
    SOURCE_COLUMN_MIN_WIDTH,
    date_range,
    existing_log,
    flagged_then_compliant_note,
    log_days,
    source_table,
    table_height,
    unlogged_violations_note,
    violations_figure,
    violations_file_name,
    zone_name,
)
from maskapp.app.text import plain
from maskapp.errors import MaskappError
from maskapp.events.store import DEFAULT_EVENTS_PATH

st.title("Compliance log")
path_text = ui.kept_text_input(
    "Events file",
    "compliance_log_path",
    str(DEFAULT_EVENTS_PATH),
    help="An SQLite events log written by the Live or Video page (Event log switch) or by "
    "`python -m maskapp video SOURCE --events FILE.sqlite`.",
)
try:
    path = existing_log(path_text)
except MaskappError as error:
    ui.fail(error)
if path is None:
    # Only the typed path is escaped: escaping the whole sentence showed the command's backticks.
    st.info(
        f"No event log at {plain(path_text.strip() or '(no path)')} yet. Turn on 'Log people to an events "
        "file' on the Live or Video page, or run `python -m maskapp video SOURCE --events FILE.sqlite`, "
        "then come back.",
        icon=":material/info:",
    )
    st.stop()

zone = ui.reader_time_zone()
try:
    first_day, last_day = log_days(path, zone)
except MaskappError as error:
    ui.fail(error)
if first_day is None:
    st.info("The event log is empty: nobody has been seen yet.", icon=":material/info:")
    st.stop()

picked = ui.kept_date_range(
    f"Dates ({zone_name(zone)})",
    f"compliance_log_dates_{path}",  # per log: another log starts with all its days
    (first_day, last_day),
    help="Both days included. A person counts on the day of their last event (normally when they left).",
    format=ui.DATE_FORMAT,
)
start, end = date_range(picked)
try:
    view = ui.event_log_view(path, start, end, zone)
except MaskappError as error:
    ui.fail(error)

summary = view.summary
violations = violations_figure(summary, len(view.violations))
ui.metric_row(
    [
        ("People", summary.people),
        ("Compliance of people", "n/a" if summary.compliance is None else f"{summary.compliance:.0%}"),
        ("Violations", violations.value, violations.help, violations.note),
        ("Sources", len(summary.sources)),
    ]
)
if not summary.sources:
    st.info("Nobody in this date range.", icon=":material/info:")
    st.stop()
ui.figures_table(source_table(summary, zone), min_column_width=SOURCE_COLUMN_MIN_WIDTH)
if note := flagged_then_compliant_note(summary):
    st.caption(note)

st.subheader("Compliance per source over time", anchor=False)
st.plotly_chart(plots.compliance_by_source_figure(view.compliance, zone_name(zone)), key="compliance_chart")
st.subheader("People by verdict per hour", anchor=False)
st.plotly_chart(plots.people_per_hour_figure(view.per_hour, zone_name(zone)), key="per_hour_chart")

st.subheader("Violations", anchor=False)
if view.violations:
    st.dataframe(
        view.violations,
        hide_index=True,
        column_config=ui.violation_table_columns(zone),
        row_height=ui.FACE_ROW_HEIGHT,
        height=table_height(len(view.violations), ui.FACE_ROW_HEIGHT),
    )
    if note := unlogged_violations_note(summary):
        st.caption(note)
elif not summary.violations_logged:
    st.info(AGGREGATE_ONLY, icon=":material/info:")
else:
    st.caption("No violation in this range.")
st.download_button(
    "Download violations (CSV)",
    view.violations_csv,
    file_name=violations_file_name(summary, start, end),
    mime="text/csv",
    icon=":material/download:",
    disabled=not view.violations,
    on_click="ignore",  # the CSV of the violations shown: a rerun only read the log again
)
