"""Live webcam: the pipeline on every frame, people followed from frame to frame, one alert per
non-compliant person, an optional event log."""

import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from maskapp.app import plots, ui
from maskapp.app.live import DEFAULT_TRIGGER_FRAMES, LIVE_SOURCE, NO_MASK_ALERT, LiveProcessor, alert_wav
from maskapp.app.text import plain
from maskapp.errors import MaskappError
from maskapp.events.session import EventSettings

STALE_SECONDS = 2.0  # no frame for this long: the stream is stalled or stopping
REFRESH_SECONDS = 0.5

st.title("Live webcam")
settings = ui.pipeline_sidebar(live=True)
with st.sidebar:
    st.header("Alert")
    track = st.toggle(
        "Follow people",
        value=True,
        help="Each person keeps an id and one steady verdict; the alert sounds once per non-compliant "
        "person and does not repeat while that person stays. Off: every frame on its own, and the alert "
        "follows the frames (the setting below).",
    )
    trigger_frames = st.slider(
        "Alert after this many frames with a non-compliant face",
        min_value=1,
        max_value=60,
        value=DEFAULT_TRIGGER_FRAMES,
        disabled=track,
        help="When not following people: no mask or a badly worn one. Debouncing: a face misread for a "
        "frame or two does not raise the alert.",
    )
    muted = st.toggle("Mute the sound", value=False)
anonymize = ui.privacy_sidebar("live")
event_settings = ui.events_sidebar("live") if track else EventSettings()

pipeline = ui.pipeline_for(settings)
try:
    rtc_configuration = ui.rtc_configuration()
except MaskappError as error:
    ui.fail(error)

# One processor per browser session (it holds the session's tracks); the pipeline it calls is shared by
# all sessions. Switching tracking on or off starts a new one.
processor = st.session_state.get("live_processor")
if processor is None or processor.tracks != track:
    if processor is not None:
        processor.end_stream()
    processor = LiveProcessor(pipeline, trigger_frames=trigger_frames, track=track)
    st.session_state["live_processor"] = processor
processor.configure(pipeline=pipeline, trigger_frames=trigger_frames, anonymize=anonymize)
if track and event_settings != processor.event_settings:
    # Opened here, in the page's thread, so that an unusable file or URL shows as an error now.
    log = ui.open_people_log(event_settings, LIVE_SOURCE)
    if log is not None:
        processor.configure(events=log)

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
    st.caption("Press START and allow the camera. Top left: counts, FPS and latency.")
    ui.color_legend()


def show_live_stats() -> None:
    """Counts and the alert, read from the holder the callback writes (re-run every half second)."""
    stats = processor.latest()
    if not context.state.playing:
        processor.end_stream()  # the people leave (person_left in the log); a new START starts afresh
        st.info("The camera is off. Press START.")
        return
    if stats is None or stats.age() > STALE_SECONDS:
        st.info("Waiting for frames…")
        return
    if stats.alert:
        st.error(f"**{stats.alert_text or NO_MASK_ALERT}**", icon=":material/masks:")
        if not muted:
            # Rendered unchanged while the episode lasts, so the browser plays it once per episode.
            st.audio(alert_wav(), format="audio/wav", autoplay=True)
    else:
        st.success("No alert", icon=":material/check_circle:")
    if stats.error:
        st.warning(plain(stats.error), icon=":material/warning:")
    if stats.people is not None:
        st.markdown("**People** (each counted once, with their verdict)")
        ui.people_metrics(stats.people, columns=2, in_view=stats.people_in_view)
        if len(stats.timeline) > 1:
            st.plotly_chart(plots.people_over_time_figure(stats.timeline), key="live_people_chart")
        st.markdown("**This frame**")
    ui.count_metrics(stats.label_counts, stats.compliance, columns=2)
    first, second = st.columns(2)
    first.metric("Faces", stats.faces)
    second.metric("FPS", f"{stats.fps:.1f}")
    first.metric("Latency", f"{stats.latency_ms:.0f} ms")
    st.caption(f"Frames processed: {stats.frame_index} · alert episodes: {stats.episode}")


with panel:
    st.fragment(show_live_stats, run_every=REFRESH_SECONDS if context.state.playing else None)()
