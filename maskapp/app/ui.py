"""What the pages share: cached model loaders, sidebar settings, error display.

The only library module that imports streamlit, and only Streamlit glue: models load once per
process (`st.cache_resource`) and are shared by every session; library errors (`MaskappError`)
become one `st.error` sentence, never a traceback. The work itself is in the library (image
analysis in maskapp.app.analysis, video in maskapp.app.video, runs in maskapp.training.runs, the model
card in maskapp.app.model_card).
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, tzinfo
from datetime import time as dtime
from pathlib import Path
from typing import NoReturn

import pandas as pd
import streamlit as st

from maskapp import DEFAULT_WEIGHTS
from maskapp.app import plots
from maskapp.app.analysis import ImageAnalysis, analyze_image, noncompliant_sum, probability_column
from maskapp.app.compliance_log import (
    VERDICT_COLUMN,
    LogView,
    log_version,
    read_log,
    time_column,
    time_zone,
    zone_name,
)
from maskapp.app.live import parse_ice_servers
from maskapp.app.model_card import ModelCard
from maskapp.app.model_card import model_card as read_model_card
from maskapp.app.text import plain
from maskapp.config import (
    ANONYMIZE_MODES,
    DEFAULT_DETECTOR,
    DETECTOR_MIN_THRESHOLDS,
    DETECTOR_NAMES,
    DETECTOR_THRESHOLDS,
    LIVE_DETECTOR,
    InferenceConfig,
)
from maskapp.errors import MaskappError
from maskapp.events.recorder import MAX_WINDOW_MINUTES
from maskapp.events.session import EventSettings, PeopleLog
from maskapp.events.store import DEFAULT_EVENTS_PATH, MAX_KEEP_DAYS
from maskapp.labels import CLASS_NAMES, COMPLIANT_LABEL
from maskapp.vision.classify import MaskClassifier
from maskapp.vision.detect import FaceDetector, create_detector
from maskapp.vision.draw import label_style
from maskapp.vision.model import missing_weights
from maskapp.vision.pipeline import (
    MaskPipeline,
    load_serving_classifier,
    with_face_threshold,
    with_noncompliant_threshold,
)
from maskapp.vision.tracked import PeopleCounts

logger = logging.getLogger(__name__)

WEIGHTS_ENV = "MASKAPP_WEIGHTS"  # another classifier checkpoint for the app (default: the shipped one)
ICE_SERVERS_ENV = "MASKAPP_ICE_SERVERS"
ICE_SERVERS_SECRET = "ice_servers"


# --- errors ----------------------------------------------------------------------------------------
def fail(error: Exception | str) -> NoReturn:
    """Show one clear sentence and end this page run (the traceback goes to the log, not the page)."""
    st.error(plain(error), icon=":material/error:")
    st.stop()


# --- models ----------------------------------------------------------------------------------------
def detector_names() -> tuple[str, ...]:
    return DETECTOR_NAMES


@st.cache_resource(show_spinner="Loading the face detector…", max_entries=4)
def loaded_detector(name: str) -> FaceDetector:
    """A detector's network, loaded once for the whole process and shared by every session (each
    detector guards its own non-thread-safe parts); `get_pipeline` gives it its threshold."""
    logger.info("loading detector %s", name)
    return create_detector(name)


@st.cache_resource(show_spinner="Loading the mask classifier…", max_entries=4)
def loaded_classifier(weights: Path) -> MaskClassifier:
    """A checkpoint's classifier (its ONNX export and session), loaded once for the whole process and
    shared by every session; `get_pipeline` gives it its non-compliant threshold."""
    logger.info("loading classifier %s", weights)
    return load_serving_classifier(weights)


def get_pipeline(config: InferenceConfig) -> MaskPipeline:
    """The pipeline of an inference config, on the cached models. The detector and the classifier are
    cached apart: as one pipeline, a change of detector in the sidebar exported and loaded the
    classifier again too (seconds), and a change of weights the detector. Neither threshold is part of a
    cache key: each step of a threshold slider loaded both models again."""
    models = MaskPipeline(loaded_detector(config.detector), loaded_classifier(config.weights), config.margin)
    pipeline = with_face_threshold(models, config.face_threshold)
    if config.noncompliant_threshold is None:
        return pipeline  # the checkpoint's decision rule, as loaded
    return with_noncompliant_threshold(pipeline, config.noncompliant_threshold)


def pipeline_for(config: InferenceConfig) -> MaskPipeline:
    """The cached pipeline; a MaskappError (missing weights, bad detector) ends the page run."""
    try:
        return get_pipeline(config)
    except MaskappError as error:
        fail(error)


def weights_path() -> Path:
    """The classifier checkpoint the app serves: MASKAPP_WEIGHTS, else weights/mask_classifier.pt."""
    return Path(os.environ.get(WEIGHTS_ENV) or DEFAULT_WEIGHTS)


def _remembered(key: str, default):
    """A sidebar value kept across pages (widget state is dropped when a page does not draw it)."""
    return st.session_state.get(f"saved_{key}", default)


def _remember(key: str, value) -> None:
    st.session_state[f"saved_{key}"] = value


def pipeline_sidebar(*, live: bool = False) -> InferenceConfig:
    """Detector and threshold in the sidebar; the live page defaults to the faster detector and
    remembers its own choice."""
    default, scope = (LIVE_DETECTOR, "live") if live else (DEFAULT_DETECTOR, "photo")
    with st.sidebar:
        st.header("Detection settings")
        # Keyed widgets with a fixed default: drawn with the last remembered value as their default, each
        # move gave them a new identity and Streamlit dropped the reader's next move.
        detector = kept_selectbox(
            "Face detector",
            list(detector_names()),
            f"{scope}_detector",
            default=default,
            help="centerface finds small and turned faces; centerface-fast runs it at 320 px, sharpened, for "
            "live video (misses the smallest faces); res10 is the detector of the original write-ups.",
        )
        lowest = DETECTOR_MIN_THRESHOLDS[detector]
        threshold = kept_widget(
            st.slider,
            "Face confidence threshold",
            f"{scope}_threshold_{detector}",  # per detector: each has its own range and measured default
            DETECTOR_THRESHOLDS[detector],
            min_value=lowest,
            max_value=0.95,
            step=0.05,
            help="Detections below this score are ignored. Lower finds more faces and more false ones; "
            f"the lowest, {lowest:g}, still finds no face in a blank picture with {detector}.",
        )
        noncompliant = noncompliant_threshold_input()
    return InferenceConfig(
        weights=weights_path(),
        detector=detector,
        face_threshold=float(threshold),
        noncompliant_threshold=noncompliant,
    )


def checkpoint_threshold() -> float | None:
    """The served checkpoint's non-compliant threshold; None when it has none or cannot be read (the
    page says why when it loads the pipeline)."""
    try:
        return load_model_card().noncompliant_threshold
    except MaskappError:
        return None


def noncompliant_key() -> str:
    """The non-compliant threshold's widget key: per checkpoint, each has its own default."""
    return f"noncompliant_{weights_path()}"


def noncompliant_threshold_set() -> float | None:
    """The non-compliant threshold the reader set on the pages, when it is not the checkpoint's own."""
    value = _remembered(noncompliant_key(), None)
    return None if value is None or float(value) == slider_default(checkpoint_threshold()) else float(value)


def slider_default(checkpoint: float | None) -> float:
    """Where the slider starts: the checkpoint's threshold, or 0.50 (two classes' likeliest-wins) if none."""
    return 0.5 if checkpoint is None else round(float(checkpoint), 2)


def noncompliant_threshold_input() -> float | None:
    """The 'Non-compliant threshold' slider, shared by every page; None while it stays at the
    checkpoint's own (so the pipeline keeps the checkpoint's decision rule)."""
    default = checkpoint_threshold()
    shown_default = slider_default(default)
    key = noncompliant_key()
    st.slider(
        "Non-compliant threshold",
        min_value=0.01,
        max_value=0.99,
        step=0.01,
        key=_kept(key, shown_default),
        help="A face is called non-compliant (no mask, or a mask worn badly) once the model's "
        "P(non-compliant) reaches this. Lower it to miss fewer people, at the cost of more false alerts.",
    )
    st.caption(
        f"Checkpoint default: {default:.2f} (chosen on validation data)"
        if default is not None
        else "The checkpoint has no threshold: the likeliest class wins (0.50 for two classes)."
    )
    value = float(_keep(key))
    return None if value == shown_default else value


ANALYSES_KEY = "images_analyses"


def image_analyses(
    pipeline: MaskPipeline,
    config: InferenceConfig,
    inputs: list[tuple[str, bytes]],
    *,
    one_face: bool,
    anonymize: str,
) -> Iterator[tuple[str, ImageAnalysis | MaskappError]]:
    """Each photo's analysis (or why it has none), one at a time so the page shows each as it comes. A
    photo already analysed with these settings is not analysed again: every click reran the page and
    analysed every photo, seconds for each phone photo (more with faces blurred), for nothing new on a
    visit to another page and back. The session keeps only the analyses of the last run."""
    earlier = st.session_state.get(ANALYSES_KEY, {})
    kept: dict[tuple, ImageAnalysis | MaskappError] = {}
    st.session_state[ANALYSES_KEY] = kept
    for name, data in inputs:
        key = (hashlib.sha256(data).hexdigest(), name, config, one_face, anonymize)
        if key not in earlier:
            try:
                earlier[key] = analyze_image(pipeline, data, name, one_face=one_face, anonymize=anonymize)
            except MaskappError as error:
                earlier[key] = error
        kept[key] = earlier[key]
        yield name, kept[key]


# --- counts and colours ----------------------------------------------------------------------------
def count_metrics(
    label_counts: Mapping[str, int],
    compliance: float | None,
    *,
    in_row: bool = False,
    faces: int | None = None,
) -> None:
    """One st.metric per class (Mask, Mask worn incorrectly, No mask) and compliance, after the `faces`
    when given: stacked, or `in_row` (see metric_row)."""
    cells = [("Faces", faces)] if faces is not None else []
    cells += [(label_style(name).caption, label_counts.get(name, 0)) for name in CLASS_NAMES]
    cells.append(("Compliance", "n/a" if compliance is None else f"{compliance:.0%}"))
    if in_row:
        metric_row(cells)
    else:
        for label, value in cells:
            st.metric(label, value)


def metric_row(cells: list[tuple]) -> None:
    """Metrics side by side, (label, value), (label, value, help) or (label, value, help, note) each, going
    on to the next line where the page is narrow: in st.columns each metric got a fixed share of the
    width, and at 1000 px the shares were narrower than the text ('Test ac…  98.…', 'People: Mask …').
    A note is a few grey words under the value (what it leaves out), not a change."""
    with st.container(horizontal=True, wrap=True, gap="medium"):
        for label, value, *more in cells:
            help_text, note = (*more, None, None)[:2]
            st.metric(
                label,
                value,
                note,
                "off",
                help=help_text,
                width="content",
                delta_arrow="off" if note else "auto",
            )


CHIP_CSS = "padding:0.1em 0.5em;border-radius:0.3em;margin-right:0.4em;white-space:nowrap"


def color_legend() -> None:
    """The box colours: one chip per class, in the colours the annotated images use."""
    chips = []
    for name in CLASS_NAMES:
        style = label_style(name)
        css = f"background:{style.hex};color:{style.text_hex};" + CHIP_CSS
        chips.append(f'<span style="{css}">{html.escape(style.caption)}</span>')
    st.markdown("Box colours: " + "".join(chips), unsafe_allow_html=True)
    # The rule in words: a red 'No mask 49%' read as a contradiction to anyone who had not been told.
    st.caption(
        f"The percentage on a box is how likely its verdict is: P({label_style(COMPLIANT_LABEL).caption}) "
        f"on a green box; on the others the chance of not being compliant, {noncompliant_sum(CLASS_NAMES)}, "
        "which calls a face not compliant once it reaches the *Non-compliant threshold* (sidebar)."
    )


# The face table's rows are this tall so that a cell's text may take two lines (Streamlit wraps text
# only in rows over 64 px): the label and the box fit narrow columns.
FACE_ROW_HEIGHT = 72


def face_table_columns(class_names: tuple[str, ...]) -> dict:
    """The Images page's face table: every column narrow (pixels), so that at 1000 px they all show
    without scrolling (the face score and the box were behind the scroll bar): the verdict as its caption
    on up to two lines, each bar headed by the class's short name, the box's corners on two lines."""
    return {
        "face": st.column_config.NumberColumn(
            "face",
            width=36,
            help="The number its caption starts with in the picture above, '4: No mask 96%'.",
        ),
        "crop": st.column_config.ImageColumn("crop", width=56),
        VERDICT_COLUMN: st.column_config.TextColumn(
            VERDICT_COLUMN,
            width=96,
            help="The verdict on this face: its likeliest class, or not compliant once the *Non-compliant "
            "threshold* says so (notes under the table); in the JSON, `label`.",
        ),
        **probability_columns(class_names),
        "face score": st.column_config.TextColumn(
            "score",
            width=52,
            help="The face detector's confidence that this is a face; 'whole image' where no detector ran "
            "('This image is one face').",
        ),
        "box": st.column_config.TextColumn(
            "box", width=76, help="The face's corners in the picture, in pixels: left,top and right,bottom."
        ),
    }


def violation_table_columns(zone: tzinfo) -> dict:
    """The Compliance log's violations: every column narrow (pixels), so that at 1000 px the person and
    the frame show without scrolling (they were behind the scroll bar): the time's day and clock, the
    label and a camera's path each on up to two lines (rows of FACE_ROW_HEIGHT), the person's run (twelve
    digits) and number whole."""
    return {
        # Its zone in the help: "time (Europe/Paris)" was cut to "time (Europe/P" over a column this wide.
        time_column(zone): st.column_config.TextColumn(
            "time", width=96, help=f"In {zone_name(zone)}, as chosen above; the CSV download keeps UTC."
        ),
        VERDICT_COLUMN: st.column_config.TextColumn(
            VERDICT_COLUMN,
            width=96,
            help="The verdict when the person was first judged non-compliant; in the CSV, the label column "
            "(mask_worn_incorrectly, without_mask).",
        ),
        "person": st.column_config.TextColumn(
            "person",
            width=120,
            help="Their run (one per start of a camera or video) and their number in it: numbers start at 1 "
            "in each run, so #1 of two runs, or of two cameras, are two people. The CSV has them in its "
            "run and person columns.",
        ),
        "source": st.column_config.TextColumn("source", width=168),
        "frame": st.column_config.NumberColumn(
            "frame",
            width=52,
            help="The frame of the person's run in which they were first judged non-compliant.",
        ),
    }


def probability_columns(class_names: tuple[str, ...]) -> dict:
    """The face table's probability bars, one column per class in the class's box colour (a single
    bar in the theme's red read as 'no mask' even for a masked face), headed by its short name
    ('Incorrect': 'Mask worn incorrectly' alone took a quarter of a 1000 px page)."""
    columns = {}
    for name in class_names:
        style = label_style(name)
        columns[probability_column(name)] = st.column_config.ProgressColumn(
            style.short,
            help=f"P({style.caption})",
            min_value=0.0,
            max_value=100.0,
            # Whole percents: at 1000 px "99.93%" took the column and left the bar a dot; the JSON
            # download keeps every digit.
            format="%.0f%%",
            color=style.hex,
            width=max(72, 7 * len(style.short) + 8),  # room for a bar beside "97%", and the header
        )
    return columns


# --- tables ----------------------------------------------------------------------------------------
def figures_table(rows: list[dict], *, min_column_width: str | None = None) -> None:
    """A small table shown whole: headers wrap and every row and column shows, where st.dataframe's grid
    hid the last columns of a narrow page behind a scroll bar. Cells read by `plots.cell_text` (figures
    as `plots.figure_text` writes them, shown literally, not as markdown); a missing one is blank.
    `min_column_width` (CSS) keeps every column after the first at least that wide."""
    # Objects, not numpy columns: a column of counts with a blank (faces: 871, None) became floats.
    frame = pd.DataFrame(rows, dtype=object)
    formats = {column: functools.partial(plots.cell_text, column) for column in frame.columns}
    styler = frame.style.format(formats, na_rep="")
    if min_column_width is not None and len(frame.columns) > 1:
        styler = styler.set_properties(subset=list(frame.columns[1:]), **{"min-width": min_column_width})
    st.table(styler, hide_index=True)


# --- people, events, privacy -----------------------------------------------------------------------
ANONYMIZE_LABELS = {"none": "Show faces", "blur": "Blur faces", "fill": "Fill faces (safest to share)"}


def _kept(key: str, default):
    """A widget key whose value survives pages that do not draw the widget (Streamlit drops the state
    of widgets a page run does not draw): the widget is drawn with `key=` and no changing default, so
    its identity stays the same and every edit is kept."""
    # Written back on every run, not only when missing: Streamlit ties widget state to the page that drew
    # it, so a key shared by several pages (the non-compliant threshold) otherwise came back on the next
    # page at the slider's minimum, 0.01, flagging nearly every face.
    st.session_state[key] = st.session_state[key] if key in st.session_state else _remembered(key, default)
    return key


def _keep(key: str) -> object:
    value = st.session_state[key]
    _remember(key, value)
    return value


def forget_when_emptied(uploader_key: str, result_key: str) -> Callable[[], None]:
    """An uploader's on_change: the reader removed its file, so its kept result goes too (a page visit
    empties the uploader without calling it, and the result stays)."""

    def forget() -> None:
        if not st.session_state.get(uploader_key):
            st.session_state.pop(result_key, None)

    return forget


def kept_uploads(
    label: str, types: list[str], key: str, max_mb: int | None = None
) -> list[tuple[str, bytes]]:
    """A multi-file uploader whose files stay when the reader visits another page and comes back:
    Streamlit empties an uploader that a page run does not draw, and the photos and their results were
    gone. The files as (name, bytes); kept ones are said to be so, with a button to clear them. `max_mb`:
    the largest file it takes and says it takes (None: the server's maxUploadSize)."""
    kept_key = f"{key}_kept"

    def keep() -> None:  # the reader added or removed files: those are the ones to keep
        st.session_state[kept_key] = [(f.name, f.getvalue()) for f in st.session_state[key] or []]

    uploads = st.file_uploader(
        label, type=types, accept_multiple_files=True, key=key, on_change=keep, max_upload_size=max_mb
    )
    if uploads:
        return [(upload.name, upload.getvalue()) for upload in uploads]
    kept = st.session_state.get(kept_key, [])
    if kept:
        st.caption(f"Showing the {len(kept)} image(s) uploaded before. Upload others to replace them.")
        if st.button("Clear them", icon=":material/close:"):
            st.session_state[kept_key] = []
            st.rerun()
    return kept


def follow_people_toggle(scope: str, help: str) -> bool:
    """The 'Follow people' switch of a page's sidebar, kept when the reader visits another page and
    comes back (it came back on: tracking and the event log silently on again)."""
    return kept_toggle("Follow people", f"{scope}_follow_people", True, help=help)


def kept_widget(widget: Callable, label: str, key: str, default, **options):
    """Any input widget (st.toggle, st.text_input, st.number_input, ...) whose value stays when the
    reader visits another page and comes back; its value."""
    widget(label, key=_kept(key, default), **options)
    return _keep(key)


def kept_toggle(label: str, key: str, default: bool, *, help: str | None = None) -> bool:
    """A switch whose setting stays when the reader visits another page and comes back."""
    return bool(kept_widget(st.toggle, label, key, default, help=help))


def kept_text_input(label: str, key: str, default: str = "", **options) -> str:
    """A text box whose text stays when the reader visits another page and comes back (the Compliance
    log's events file came back as the default, and the page said there was no log yet)."""
    return str(kept_widget(st.text_input, label, key, default, **options))


def kept_number_input(label: str, key: str, default: int, **options) -> int:
    """A whole number that stays when the reader visits another page and comes back (the Video page's
    'Stop after' came back as 60 s)."""
    return int(kept_widget(st.number_input, label, key, default, **options))


# Days as the page's tables and charts write them (2026-11-27): Streamlit's own 2026/11/27 in the date
# filter read as a second style beside the From and To times just under it.
DATE_FORMAT = "YYYY-MM-DD"


def kept_date_range(label: str, key: str, default: tuple[date, date], **options):
    """A date range that stays, once the reader has picked one, when they visit another page and come
    back (the Compliance log's filter came back as the whole log). Until then it follows `default`, so
    a log that gains a day still shows it whole."""
    picked = _remembered(key, None)
    st.session_state[key] = default if picked is None else picked

    def remember_pick() -> None:
        _remember(key, st.session_state[key])

    return st.date_input(label, key=key, on_change=remember_pick, **options)


def kept_radio(label: str, options: list[str], key: str, **extra) -> str:
    """A horizontal choice that stays when the reader visits another page and comes back; its options
    shown as written (`literally`)."""
    extra["format_func"] = literally(extra.get("format_func", str))
    return _kept_choice(st.radio, label, options, key, None, horizontal=True, **extra)


def literally(format_func: Callable[[str], object] = str) -> Callable[[str], str]:
    """A format_func for st.radio and st.pills, which draw each option as markdown: a run named
    `*bold*_run_` read as two words in italics, and one with backticks as code. st.multiselect and
    st.selectbox draw their options as text: escaped there, they would show the backslashes."""
    return lambda option: plain(format_func(option))


def kept_selectbox(
    label: str, options: list[str], key: str, default: str | None = None, **options_of_the_box
) -> str:
    """A drop-down choice that stays when the reader visits another page and comes back (the Images
    page's sample picture came back as the first one); `default`: the choice until one is made (None:
    the first)."""
    return _kept_choice(st.selectbox, label, options, key, default, **options_of_the_box)


def _kept_choice(
    widget, label: str, options: list[str], key: str, default: str | None = None, **extra
) -> str:
    first = options[0] if default is None else default
    if st.session_state.get(key, _remembered(key, first)) not in options:
        st.session_state.pop(key, None)
        _remember(key, first)
    widget(label, options, key=_kept(key, first), **extra)
    return str(_keep(key))


def kept_multiselect(label: str, options: list[str], key: str, **extra) -> list[str]:
    """Picks among `options` that stay when the reader visits another page and comes back (the Metrics
    page's runs came back all picked); all of them until the reader picks. Picks no longer offered go."""
    picked = st.session_state.get(key, _remembered(key, list(options)))
    st.session_state[key] = [option for option in picked if option in options]
    st.multiselect(label, options, key=key, **extra)
    return list(_keep(key))


def kept_pills(label: str, options: list[str], key: str, default: str | None, **extra) -> str | None:
    """A pill choice that stays when the reader visits another page and comes back, `default` until
    one is picked or when the one picked is no longer offered; None once the reader unpicks it. Its
    options shown as written (`literally`)."""
    picked = st.session_state.get(key, _remembered(key, default))
    st.session_state[key] = picked if picked is None or picked in options else default
    extra["format_func"] = literally(extra.get("format_func", str))
    st.pills(label, options, key=key, **extra)
    return _keep(key)


def privacy_sidebar(scope: str) -> str:
    """The 'Hide faces' choice (none, blur, fill) for what a page shows and lets you download."""
    with st.sidebar:
        st.header("Privacy")
        st.selectbox(
            "Hide faces",
            ANONYMIZE_MODES,
            key=_kept(f"{scope}_anonymize", "none"),
            format_func=ANONYMIZE_LABELS.get,
            help="Hides every detected face in the annotated picture or video; the coloured box and the "
            "verdict stay. Fill leaves nothing to recover: use it for anything you share. Blur can be "
            "partly undone by face recognition models.",
        )
    return _keep(f"{scope}_anonymize")


def events_sidebar(
    scope: str, *, keep_running: bool = False, recording_start: bool = False
) -> EventSettings | None:
    """The event log switch, its file, aggregate-only mode, the days to keep rows and the gate webhook;
    with `recording_start` (the Video page), an optional recording start for video files.
    Unusable settings end the page run with one error; with `keep_running` (the Live page, whose stream
    a stopped run would end) the error shows in the sidebar instead, and the result is None."""
    names = ("on", "path", "aggregate", "minutes", "keep_days", "webhook")
    keys = {name: f"{scope}_events_{name}" for name in names}
    with st.sidebar:
        st.header("Event log")
        logging_people = st.toggle(
            "Log people to an events file",
            key=_kept(keys["on"], False),
            help="One person_seen and one person_left row per person, one violation row per "
            "non-compliant person; a time, a source, a person number and a label, never an image.",
        )
        st.text_input("Events file", key=_kept(keys["path"], str(DEFAULT_EVENTS_PATH)))
        aggregate_only = st.toggle(
            "Aggregate counts only",
            key=_kept(keys["aggregate"], False),
            disabled=not logging_people,
            help="Store only the number of people by verdict per time window, no per-person row (the "
            "mode French rules for mask-compliance cameras ask for).",
        )
        st.number_input(
            "Window (minutes)",
            min_value=1,
            max_value=MAX_WINDOW_MINUTES,
            key=_kept(keys["minutes"], 15),
            disabled=not (logging_people and aggregate_only),
        )
        st.number_input(
            "Keep rows for (days; 0: keep all)",
            min_value=0,
            max_value=MAX_KEEP_DAYS,
            key=_kept(keys["keep_days"], 0),
            disabled=not logging_people,
            help="Rows older than this are deleted when the camera starts and every hour, and overwritten "
            "in the file, not only hidden.",
        )
        st.text_input(
            "Violation webhook (optional)",
            key=_kept(keys["webhook"], ""),
            placeholder="http://gate.local:8080/violation",
            help="Each violation is POSTed there as JSON, on a background thread.",
        )
        dated_by_recording = logging_people or bool(st.session_state[keys["webhook"]].strip())
        recorded_at = recording_start_inputs(scope, dated_by_recording) if recording_start else None
    on, path, aggregate, minutes, keep_days, webhook = (_keep(key) for key in keys.values())
    events_path = Path(path.strip()) if on and path.strip() else None  # EventSettings expands `~`
    try:
        return EventSettings(
            events_path,
            float(minutes) if events_path and aggregate else None,
            webhook.strip() or None,
            float(keep_days) if events_path and keep_days else None,
            recorded_at,
        )
    except MaskappError as error:  # a webhook URL of another scheme, without a host...
        if not keep_running:
            fail(error)
        st.sidebar.error(plain(error), icon=":material/error:")
        return None


def browser_time_zone() -> tzinfo:
    """The browser's time zone (UTC when it tells none): the clock a recording start is typed on."""
    return time_zone(st.context.timezone)


def recording_start_inputs(scope: str, enabled: bool) -> datetime | None:
    """*Recording started at*, a date and a time on the browser's clock (as the Compliance log shows
    times), for an uploaded recording; None while off, or while neither the log nor a webhook is on."""
    zone = browser_time_zone()
    # Off with neither the log nor a webhook, as the log's other settings are: it was the one switch
    # that moved while the date and time under it stayed greyed out, with no word why.
    on = kept_widget(
        st.toggle,
        "Recording started at",
        f"{scope}_events_recorded",
        False,
        disabled=not enabled,
        help="For an uploaded recording: its people are dated from this moment plus their place in the "
        "video, the hours it shows, not when it is analysed. Streams are dated as they are watched. "
        "It dates the events file's rows and the webhook's violations: on with either of them.",
    )
    usable = enabled and on
    day = kept_widget(
        st.date_input,
        f"Recording date ({zone_name(zone)})",
        f"{scope}_events_recorded_day",
        datetime.now(zone).date(),
        format=DATE_FORMAT,  # as the caption after the run and the Compliance log write days
        disabled=not usable,
    )
    moment = kept_widget(
        st.time_input,
        f"Recording time ({zone_name(zone)})",
        f"{scope}_events_recorded_time",
        dtime(0, 0),
        step=60,
        disabled=not usable,
    )
    return datetime.combine(day, moment, tzinfo=zone) if usable else None


def no_event_log_sidebar() -> EventSettings:
    """Where the event log's settings were, with *Follow people* off: why they are gone (the section just
    vanished, and a log switched on went silent with no word). Returns settings that store nothing."""
    with st.sidebar:
        st.header("Event log")
        st.caption(
            "Off while *Follow people* is off: the log records people, each once with their verdict, "
            "and the webhook hears of each non-compliant person. Switch it on to log them."
        )
    return EventSettings()


def open_people_log(settings: EventSettings, source: str) -> PeopleLog | None:
    """The log the settings ask for; a file or URL that cannot be used is one st.error, and None."""
    try:
        return PeopleLog(settings, source)
    except MaskappError as error:
        st.error(plain(error), icon=":material/error:")
        return None


def people_metrics(counts: PeopleCounts, *, in_view: int | None = None) -> None:
    """People (not face-frames): how many, by verdict, and the compliance of people, in a metric_row."""
    cells = [("People", counts.total)] + ([("In view", in_view)] if in_view is not None else [])
    cells += [
        (f"People: {label_style(name).caption}", counts.by_verdict.get(name, 0)) for name in CLASS_NAMES
    ]
    compliance = "n/a" if counts.compliance is None else f"{counts.compliance:.0%}"
    cells.append(("Compliance of people", compliance))
    metric_row(cells)


# --- model card ------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=8)
def model_card(weights: str, modified: float) -> ModelCard:
    """What the shipped checkpoint is and how it scored; `modified` invalidates the cache."""
    return read_model_card(weights)


def load_model_card() -> ModelCard:
    """The served checkpoint's card; raises CheckpointError when it is missing or unreadable."""
    weights = weights_path()
    if not weights.is_file():
        raise missing_weights(weights)
    return model_card(str(weights), weights.stat().st_mtime)


# --- compliance log --------------------------------------------------------------------------------
def reader_time_zone() -> tzinfo:
    """The time zone the page shows: the browser's (the default) or UTC, as the reader picks; UTC alone
    when the browser tells none."""
    browser = time_zone(st.context.timezone)
    if zone_name(browser) == "UTC":
        return UTC
    picked = kept_radio(
        "Times in",
        [zone_name(browser), "UTC"],
        "compliance_log_zone",
        help="Your browser's time zone or UTC: the days of the date filter, the hours of the charts and "
        "the times in the tables. The log stores UTC; the CSV download keeps it.",
    )
    return UTC if picked == "UTC" else browser


@st.cache_data(show_spinner="Reading the event log…", max_entries=4)
def _log_view(path: str, start: date | None, end: date | None, zone: str, version: tuple) -> LogView:
    return read_log(path, start, end, time_zone(zone))


def event_log_view(path: Path, start: date | None, end: date | None, zone: tzinfo) -> LogView:
    """The Compliance log page's view, read once per version of the file: a year-long log takes seconds
    to read, and every click on the page (a download too) runs the page again."""
    return _log_view(str(path), start, end, zone_name(zone), log_version(path))


# --- live ------------------------------------------------------------------------------------------
def rtc_configuration() -> dict:
    """ICE servers for WebRTC: env MASKAPP_ICE_SERVERS (JSON), else st.secrets, else none (localhost)."""
    text = os.environ.get(ICE_SERVERS_ENV)
    if text:
        return parse_ice_servers(text)
    try:
        servers = st.secrets.get(ICE_SERVERS_SECRET)
    except (FileNotFoundError, KeyError, st.errors.StreamlitSecretNotFoundError):
        servers = None
    if servers:
        return parse_ice_servers(json.dumps(_plain_data(servers)))
    return {"iceServers": []}


def _plain_data(value):
    """st.secrets values (AttrDict) as plain lists and dicts."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _plain_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_data(v) for v in value]
    return value
