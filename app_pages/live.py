"""Live webcam: the pipeline on every frame, live counts beside the video, a debounced mask alert."""

import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from maskapp.app import ui
from maskapp.app.live import ALERT_TEXT, DEFAULT_TRIGGER_FRAMES, LiveProcessor, alert_wav
from maskapp.app.text import plain
from maskapp.errors import MaskappError

STALE_SECONDS = 2.0  # no frame for this long: the stream is stalled or stopping
REFRESH_SECONDS = 0.5

st.title("Live webcam")
settings = ui.pipeline_sidebar(live=True)
with st.sidebar:
    st.header("Alert")
    trigger_frames = st.slider(
        "Alert after this many frames with an unmasked face",
        min_value=1,
        max_value=60,
        value=DEFAULT_TRIGGER_FRAMES,
        help="Debouncing: a face misread for a frame or two does not raise the alert.",
    )
    muted = st.toggle("Mute the sound", value=False)

pipeline = ui.pipeline_for(settings)
try:
    rtc_configuration = ui.rtc_configuration()
except MaskappError as error:
    ui.fail(error)

# One processor per browser session; the pipeline it calls is shared by all sessions.
processor = st.session_state.get("live_processor")
if processor is None:
    processor = st.session_state["live_processor"] = LiveProcessor(pipeline, trigger_frames=trigger_frames)
processor.configure(pipeline=pipeline, trigger_frames=trigger_frames)

video, panel = st.columns([3, 2])
with video:
    # The callback runs in streamlit-webrtc's worker thread: it only calls the processor (no st.*).
    context = webrtc_streamer(
        key="live",
        mode=WebRtcMode.SENDRECV,
        rtc_configuration=rtc_configuration,
        video_frame_callback=processor.callback,
        media_stream_constraints={"video": True, "audio": False},
        async_processing=True,
    )
    st.caption("Press START and allow the camera. Green: masked, red: unmasked; top left: FPS and latency.")


def show_live_stats() -> None:
    """Counts and the alert, read from the holder the callback writes (re-run every half second)."""
    stats = processor.latest()
    if not context.state.playing:
        st.info("The camera is off. Press START.")
        return
    if stats is None or stats.age() > STALE_SECONDS:
        st.info("Waiting for frames…")
        return
    if stats.alert:
        st.error(f"**{ALERT_TEXT}**", icon=":material/masks:")
        if not muted:
            # Rendered unchanged while the episode lasts, so the browser plays it once per episode.
            st.audio(alert_wav(), format="audio/wav", autoplay=True)
    else:
        st.success("No alert", icon=":material/check_circle:")
    if stats.error:
        st.warning(plain(stats.error), icon=":material/warning:")
    first, second = st.columns(2)
    first.metric("Faces", stats.faces)
    second.metric("Compliance", "n/a" if stats.compliance is None else f"{stats.compliance:.0%}")
    first.metric("Masked", stats.masked)
    second.metric("Unmasked", stats.unmasked)
    first.metric("FPS", f"{stats.fps:.1f}")
    second.metric("Latency", f"{stats.latency_ms:.0f} ms")
    st.caption(f"Frames processed: {stats.frame_index} · alert episodes: {stats.episode}")


with panel:
    st.fragment(show_live_stats, run_every=REFRESH_SECONDS if context.state.playing else None)()
