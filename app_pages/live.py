"""Live webcam: the pipeline on every frame, people followed from frame to frame, one alert per
non-compliant person, an optional event log."""

import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from maskapp.app import plots, ui
from maskapp.app.live import (
    DEFAULT_TRIGGER_FRAMES,
    LIVE_SOURCE,
    NO_MASK_ALERT,
    AlertChime,
    ChimeCue,
    LiveProcessor,
    LiveStats,
    alert_wav,
    live_video_caption,
    panel_mode,
    since_start_text,
)
from maskapp.app.text import plain
from maskapp.errors import MaskappError

# The panel reruns this often in every session. At 0.5 s, two sessions on a two-core machine kept the
# server's event loop (which also carries every session's WebRTC traffic) so busy that one page's panel
# never finished drawing its counts and streams dropped (two-session browser test: 9 of 19 runs passed
# at 0.5 s, 10 of 10 at 1 s, same machine and load).
REFRESH_SECONDS = 1.0

st.title("Live webcam")
settings = ui.pipeline_sidebar(live=True)
with st.sidebar:
    st.header("Alert")
    track = ui.follow_people_toggle(
        "live",
        help="Each person keeps an id and one steady verdict; the alert sounds once per non-compliant "
        "person and does not repeat while that person stays. Off: every frame on its own, and the alert "
        "follows the frames (the setting below).",
    )
    # Both kept over a visit to another page: they came back at 10 frames and unmuted (a chime again).
    trigger_frames = ui.kept_widget(
        st.slider,
        "Alert after this many frames with a non-compliant face",
        "live_trigger_frames",
        DEFAULT_TRIGGER_FRAMES,
        min_value=1,
        max_value=60,
        disabled=track,
        help="When not following people: no mask or a badly worn one. Debouncing: a face misread for a "
        "frame or two does not raise the alert.",
    )
    if track:
        # Greyed out with its reason behind the "?", the slider read as broken to anyone moving it.
        st.caption(
            "Off while *Follow people* is on: each person's alert comes once their verdict has settled. "
            "Switch it off to set the delay in frames."
        )
    muted = ui.kept_toggle("Mute the sound", "live_muted", False)
anonymize = ui.privacy_sidebar("live")
# A mistyped webhook keeps the stream and its log as they are: the error shows in the sidebar.
event_settings = ui.events_sidebar("live", keep_running=True) if track else ui.no_event_log_sidebar()

pipeline = ui.pipeline_for(settings)
try:
    rtc_configuration = ui.rtc_configuration()
except MaskappError as error:
    ui.fail(error)

# One processor per browser session (it holds the session's people); the pipeline it calls is shared by
# all sessions. *Follow people* switched changes what it shows, never whom it knows: a new processor
# took the people in view for new people, counted, alerted, told to the gate and logged again.
processor = st.session_state.get("live_processor")
if processor is None:
    processor = st.session_state["live_processor"] = LiveProcessor(pipeline, track=track)
processor.configure(pipeline=pipeline, trigger_frames=trigger_frames, anonymize=anonymize, track=track)
# Always drawn, empty unless the events file is refused: an error appearing above the video (or going)
# shifted the video's place on the page, and the browser remounted it, ending the stream.
notice = st.container()
if track and event_settings is not None and event_settings != processor.event_settings:
    # Opened here, in the page's thread, so that an unusable file or URL shows as an error now.
    with notice:
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
        # Also when the page never runs again (a closed tab, a dropped connection): the people leave.
        on_video_ended=processor.on_ended,
        media_stream_constraints={"video": True, "audio": False},
        async_processing=True,
    )
    st.caption(live_video_caption(context.state.playing))
    ui.color_legend()


def show_live_stats() -> None:
    """Counts and the alert, read from the holder the callback writes (re-run every REFRESH_SECONDS)."""
    stats = processor.latest()
    chime = st.session_state.setdefault("live_chime", AlertChime())
    mode = panel_mode(stats, context.state.playing, connecting=context.state.signalling)
    if mode != "live":
        chime.off()
    if mode in ("off", "connecting"):
        processor.end_stream()  # the people leave (person_left in the log); a new START starts afresh
        st.info("Connecting to the camera…" if mode == "connecting" else "The camera is off. Press START.")
        return
    if mode == "waiting":
        st.info("Waiting for frames…")
        return
    if mode == "stale":
        st.info(f"No new frame for {stats.age():.0f} s (a busy machine or a stalled camera): last counts.")
    else:
        show_alert(stats, chime.update(stats.alert, stats.episode, muted=muted))
    if stats.error:
        st.warning(plain(stats.error), icon=":material/warning:")
    if stats.webhook_warning:
        st.warning(plain(stats.webhook_warning), icon=":material/warning:")
    show_counts(stats)


def show_alert(stats: LiveStats, cue: ChimeCue | None) -> None:
    if not stats.alert:
        st.success("No alert", icon=":material/check_circle:")
        return
    st.error(f"**{stats.alert_text or NO_MASK_ALERT}**", icon=":material/masks:")
    if cue is not None:
        # Once per new non-compliant person: the element stays unchanged until the next one (see
        # AlertChime), so the refreshes never restart it. st.audio, not an <audio> element of our own in
        # st.html (no player on the page): on a loaded host that one's chime at times never started.
        st.audio(alert_wav(cue.variant), format="audio/wav", autoplay=cue.autoplay)


def show_counts(stats: LiveStats) -> None:
    if stats.people is not None:
        st.markdown("**People** (each counted once, with their verdict)")
        ui.people_metrics(stats.people, in_view=stats.people_in_view)
        if len(stats.timeline) > 1:
            show_people_chart(stats.timeline)
        st.markdown("**This frame**")
    ui.count_metrics(stats.label_counts, stats.compliance, in_row=True)
    ui.metric_row(
        [("Faces", stats.faces), ("FPS", f"{stats.fps:.1f}"), ("Latency", f"{stats.latency_ms:.0f} ms")]
    )
    st.caption(since_start_text(stats))


def show_people_chart(timeline: tuple) -> None:
    """Rebuilt only when it gained a point (about once a second), not on every refresh: building the
    figure is the panel's costliest step, and the browser does not redraw an unchanged one."""
    drawn = (len(timeline), timeline[-1])
    cached = st.session_state.get("live_people_figure")
    if cached is None or cached[0] != drawn:
        cached = st.session_state["live_people_figure"] = (drawn, plots.people_over_time_figure(timeline))
    st.plotly_chart(cached[1], key="live_people_chart")


with panel:
    st.fragment(show_live_stats, run_every=REFRESH_SECONDS if context.state.playing else None)()
