"""The app's entry point: `streamlit run streamlit_app.py`. Navigation and logging set-up only."""

import logging

import streamlit as st

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

st.set_page_config(page_title="maskapp: face-mask compliance", page_icon=":material/masks:", layout="wide")

# The page scripts live in app_pages/, not pages/: with a pages/ folder beside this file Streamlit
# starts a fresh server in its old folder-based navigation and may run a page without this file.
PAGES = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/images.py", url_path="images", title="Images", icon=":material/image:"),
    st.Page("app_pages/live.py", url_path="live", title="Live webcam", icon=":material/videocam:"),
    st.Page("app_pages/video.py", url_path="video", title="Video & IP camera", icon=":material/movie:"),
    st.Page(
        "app_pages/compliance_log.py",
        url_path="compliance-log",
        title="Compliance log",
        icon=":material/fact_check:",
    ),
    st.Page("app_pages/metrics.py", url_path="metrics", title="Metrics", icon=":material/monitoring:"),
]

st.navigation(PAGES).run()
