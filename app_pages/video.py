"""Video & IP camera: annotate an uploaded video file, or watch an rtsp:// / http(s):// stream live."""

import streamlit as st

from maskapp.app import plots, ui
from maskapp.app.text import plain, stem
from maskapp.app.video import (
    VIDEO_SUFFIXES,
    LoggedClips,
    LoggedRun,
    ShownVideo,
    VideoRun,
    analyze_video,
    event_log_caption,
    not_logged_again,
    watch_stream,
)
from maskapp.config import STREAM_TIMEOUT_S
from maskapp.errors import MaskappError
from maskapp.vision.draw import summary_caption


def show_summary(run: VideoRun, key: str) -> None:
    """Totals; with people followed, the people first (each counted once), then every face-frame."""
    summary = run.summary
    ui.metric_row([("Frames", summary.frames), ("Processing", f"{summary.processing_fps:.1f} FPS")])
    if summary.stopped_early:
        st.info(plain(f"Stopped early: {summary.stopped_early}. The frames processed so far are kept."))
    if run.people is not None:
        show_people(run, f"{key}_people")
        st.subheader("Face-frames", anchor=False)
        st.caption("Every face in every frame, counted again in each frame it is seen.")
    st.metric("Faces seen", summary.faces_seen)
    ui.count_metrics(summary.label_counts_seen, summary.compliance, in_row=True)
    st.plotly_chart(plots.counts_over_time_figure(run.samples()), key=key)


def show_people(run: VideoRun, key: str) -> None:
    """People, not face-frames: each tracked person counted once with their verdict."""
    # No "People" heading: the first metric reads People right under it.
    st.caption("Each person followed, counted once with their verdict.")
    ui.people_metrics(run.people.counts)
    st.plotly_chart(plots.people_over_time_figure(run.people_points()), key=key)
    log = run.people.events
    logged = None if log is None else event_log_caption(log, ui.browser_time_zone())
    if logged:
        st.caption(plain(logged))
    if log is not None and log.hook is not None:
        st.caption(f"Webhook: {log.hook.sent} sent, {log.hook.failed} failed, {log.hook.dropped} dropped.")


def replace_logged_rows(earlier: LoggedRun) -> None:
    """The button's work, before the page runs again: the earlier rows deleted and the result forgotten,
    so that the run that follows logs the people once, dated as the sidebar now says."""
    try:
        st.session_state["video_clips_logged"].replace(earlier)
    except MaskappError as error:
        st.session_state["video_replace_error"] = plain(error)
        return
    st.session_state.pop("video_file_run", None)


st.title("Video & IP camera")
settings = ui.pipeline_sidebar()
with st.sidebar:
    st.header("People")
    track = ui.follow_people_toggle(
        "video", help="Each person keeps an id and one steady verdict over the frames, and is counted once."
    )
anonymize = ui.privacy_sidebar("video")
event_settings = ui.events_sidebar("video", recording_start=True) if track else ui.no_event_log_sidebar()
ui.color_legend()
pipeline = ui.pipeline_for(settings)  # unusable weights: one error now, before any upload
file_tab, stream_tab = st.tabs(["Video file", "IP camera / stream"])

with file_tab:
    upload = st.file_uploader(
        "Upload a video",
        type=list(VIDEO_SUFFIXES),
        key="video_upload",
        on_change=ui.forget_when_emptied("video_upload", "video_file_run"),
    )
    cached = None
    if upload is None:  # after a visit to another page (Streamlit empties the uploader): the last result
        cached = st.session_state.get("video_file_run")
        if cached is None:
            st.info(
                "Upload a video file (mp4, avi, mov, mkv, webm) to annotate every frame. An analysis "
                "stopped before its end (Stop, or a setting changed meanwhile) leaves none of its people "
                "in the event log: the next run logs each person once."
            )
        else:
            st.caption(plain(f"{cached.name}, analysed before. Upload it again to use other settings."))
    else:
        # Keep the result across reruns (any widget's change reruns the page): only new input reprocesses.
        key = (upload.file_id, settings, track, anonymize, event_settings)
        cached = st.session_state.get("video_file_run")
        if cached is not None and cached.key != key:
            cached = None
        if cached is None:
            progress = st.progress(0.0, text="Processing…")
            preview = st.empty()

            def on_progress(fraction, image):
                progress.progress(fraction, text=f"Processing… {fraction:.0%}")
                if image is not None:
                    preview.image(image, channels="BGR", caption="Preview")

            data = upload.getvalue()
            logged = st.session_state.setdefault("video_clips_logged", LoggedClips())
            log_settings = logged.settings_for(data, event_settings)
            redate = logged.dated_otherwise(data, event_settings) if track else None
            zone = ui.browser_time_zone()
            repeat = not_logged_again(event_settings, log_settings, redate, zone) if track else None
            # An events file or webhook that cannot be used: its error shows, and nothing is processed.
            log = ui.open_people_log(log_settings, upload.name) if track else None
            try:
                if not track or log is not None:
                    run = analyze_video(
                        pipeline, data, upload.name, on_progress, track=track, log=log, anonymize=anonymize
                    )
                    cached = ShownVideo(key, upload.name, run, repeat, redate)
                    if track:
                        logged.remember(data, log_settings, run.people.events)
            except MaskappError as error:
                st.error(plain(error), icon=":material/error:")
            finally:
                progress.empty()
                preview.empty()
            if cached is not None:  # an error keeps the last result: back to its settings, the video is
                st.session_state["video_file_run"] = cached  # not processed (and its people logged) twice
    if cached is not None:
        run = cached.run
        if cached.not_logged_again:
            st.info(plain(cached.not_logged_again), icon=":material/info:")
        if cached.redate is not None and cached.redate.run is not None and upload is not None:
            st.button(
                "Replace this video's rows, re-dated",
                icon=":material/event_repeat:",
                on_click=replace_logged_rows,
                args=(cached.redate,),
            )
        if replace_error := st.session_state.pop("video_replace_error", None):
            st.error(replace_error, icon=":material/error:")
        player, _ = st.columns([3, 1])
        player.video(run.video_mp4, format="video/mp4")
        st.download_button(
            "Download annotated video",
            run.video_mp4,
            file_name=f"{stem(cached.name)}_annotated.mp4",
            mime="video/mp4",
            icon=":material/download:",
            on_click="ignore",  # the bytes are the ones shown: a rerun only drew the same page again
        )
        show_summary(run, "file_chart")

with stream_tab:
    url = ui.kept_text_input(
        "Stream URL",
        "video_stream_url",
        placeholder="rtsp://camera.local:554/stream or https://example.org/live.mjpg",
    )
    max_seconds = ui.kept_number_input(
        "Stop after (seconds)", "video_stream_seconds", 60, min_value=5, max_value=3600, step=5
    )
    st.caption(  # Stop ends a Streamlit run for good: nothing can be drawn after it, so no summary
        f"The URL must answer within {STREAM_TIMEOUT_S:g} s. The summary comes when the stream ends or at "
        "*Stop after*; Stop (top right) ends the watch at once, without a summary."
    )
    if st.button("Watch stream", icon=":material/play_arrow:", disabled=not url.strip()):
        frame_slot, numbers_slot = st.empty(), st.empty()
        people_seen: set[int] = set()

        def on_frame(index, annotated, result):
            frame_slot.image(annotated, channels="BGR", caption=f"frame {index + 1}")
            numbers = f"Faces {len(result.faces)} · {summary_caption(result)}"
            if track:  # people so far: each counted once, while the stream runs
                in_view = result.people_in_view()
                people_seen.update(in_view)
                numbers = f"People so far {len(people_seen)} · in view {len(in_view)} · {numbers}"
            numbers_slot.caption(numbers)

        log = ui.open_people_log(event_settings.for_stream(), url.strip()) if track else None
        if track and log is None:
            st.stop()
        with st.spinner("Watching the stream…"):
            try:
                run = watch_stream(
                    pipeline,
                    url,
                    max_seconds=float(max_seconds),
                    on_frame=on_frame,
                    track=track,
                    log=log,
                    anonymize=anonymize,
                )
            except MaskappError as error:
                ui.fail(error)
        if not run.summary.stopped_early:
            st.info(f"The stream ended after {run.summary.frames} frames.")
        show_summary(run, "stream_chart")
