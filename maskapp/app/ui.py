"""What the pages share: cached model loaders, sidebar settings, error display.

The only library module that imports streamlit, and only Streamlit glue: models load once per
process (`st.cache_resource`) and are shared by every session; library errors (`MaskappError`)
become one `st.error` sentence, never a traceback. The work itself is in the library (image
analysis in maskapp.app.analysis, video in maskapp.app.video, runs in maskapp.training.runs, the model
card in maskapp.app.model_card).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import NoReturn

import streamlit as st

from maskapp import DEFAULT_WEIGHTS
from maskapp.app.live import parse_ice_servers
from maskapp.app.model_card import ModelCard
from maskapp.app.model_card import model_card as read_model_card
from maskapp.app.text import plain
from maskapp.config import (
    DEFAULT_DETECTOR,
    DETECTOR_NAMES,
    DETECTOR_THRESHOLDS,
    LIVE_DETECTOR,
    InferenceConfig,
)
from maskapp.errors import CheckpointError, MaskappError
from maskapp.vision.pipeline import MaskPipeline, load_pipeline

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


@st.cache_resource(show_spinner="Loading the face detector and the mask classifier…", max_entries=4)
def get_pipeline(config: InferenceConfig) -> MaskPipeline:
    """One pipeline per inference config for the whole process; thread-safe, shared."""
    logger.info("loading pipeline %s", config)
    return load_pipeline(config)


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
    names = detector_names()
    with st.sidebar:
        st.header("Detection settings")
        saved = _remembered(f"{scope}_detector", default)
        detector = st.selectbox(
            "Face detector",
            names,
            index=names.index(saved) if saved in names else 0,
            help="centerface finds small and turned faces; centerface-fast runs it at 320 px for live video "
            "(misses the smallest faces); res10 is the detector of the original write-ups.",
        )
        threshold = st.slider(
            "Face confidence threshold",
            min_value=0.05,
            max_value=0.95,
            value=float(_remembered(f"{scope}_threshold_{detector}", DETECTOR_THRESHOLDS[detector])),
            step=0.05,
            help="Detections below this score are ignored. Lower finds more faces and more false ones.",
        )
    _remember(f"{scope}_detector", detector)
    _remember(f"{scope}_threshold_{detector}", threshold)
    return InferenceConfig(weights=weights_path(), detector=detector, face_threshold=float(threshold))


# --- model card ------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=8)
def model_card(weights: str, modified: float) -> ModelCard:
    """What the shipped checkpoint is and how it scored; `modified` invalidates the cache."""
    return read_model_card(weights)


def load_model_card() -> ModelCard:
    """The served checkpoint's card; raises CheckpointError when it is missing or unreadable."""
    weights = weights_path()
    if not weights.is_file():
        raise CheckpointError(f"weights file {weights} does not exist")
    return model_card(str(weights), weights.stat().st_mtime)


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
