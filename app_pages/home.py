"""Home: what the app does, the loaded model and detector, where to go next."""

import streamlit as st

from maskapp.app import ui
from maskapp.app.plots import score_text
from maskapp.app.text import plain, shown_path
from maskapp.errors import MaskappError

st.title("Face-mask compliance")
st.markdown(
    "This app finds the faces in a picture or a video and tells, for each face, whether it wears "
    "a mask, and wears it properly. Two models work in turn:\n\n"
    "1. a **face detector** finds every face and its box;\n"
    "2. a **mask classifier** (MobileNetV2 fine-tuned from ImageNet, or a small baseline CNN) labels "
    "each face crop *Mask*, *Mask worn incorrectly* (nose or mouth uncovered, mask under the chin) "
    "or *No mask* (a hand, scarf or phone over the mouth is no mask), with its probability.\n\n"
    "Only a mask over nose and mouth is compliant; compliance is the share of faces wearing one (of "
    "people, where people are followed).\n\n"
    "On the Live and Video pages each **person** is followed from frame to frame and gets one steady "
    "verdict: people are counted once, the Live page alerts once per non-compliant person, and an optional "
    "event log (read back on the Compliance log page) records who came and who was not compliant, never "
    "an image. *Hide faces* (in the sidebar of the Images, Live and Video pages) blurs or fills every face "
    "in what the app shows and saves: the pictures, their downloads, the live view and the annotated videos."
)
ui.color_legend()

st.subheader("Loaded model")
try:
    card = ui.load_model_card()
except MaskappError as error:
    st.warning(
        plain(f"No classifier is available yet: {error}. The Metrics page still works."),
        icon=":material/warning:",
    )
else:
    threshold = card.noncompliant_threshold
    # Home said the checkpoint's threshold while the pages flagged faces at the reader's own.
    set_on_pages = ui.noncompliant_threshold_set()
    ui.metric_row(
        [
            ("Architecture", card.architecture_name),
            ("Input size", f"{card.input_size} px"),
            (
                "Test accuracy",
                # As the Metrics page writes it: "98.6%" here read as another figure than its 0.986.
                "n/a" if card.test_accuracy is None else score_text(card.test_accuracy),
                "On the held-out test split of the run's own data folders. Photos from other sources score "
                "lower: the README's Results give per-class figures on real street and web photos.",
            ),
            ("Macro F1", "n/a" if card.macro_f1 is None else score_text(card.macro_f1)),
            (
                "Non-compliant threshold",
                "none" if threshold is None else f"{threshold:.2f}",
                "A face is non-compliant once P(no mask or badly worn) reaches this (chosen on validation "
                "data; none: the likeliest class wins). The Images, Live and Video pages can change it.",
                None if set_on_pages is None else f"{set_on_pages:.2f} set on the pages",
            ),
        ]
    )
    st.markdown(
        f"Classes: {', '.join(f'`{name}`' for name in card.class_names)}. "
        f"Weights: {plain(shown_path(card.weights))}"
        + (f", trained in run `{card.run_name}`." if card.run_name else ".")
    )
st.markdown(
    f"Face detectors: {', '.join(f'`{name}`' for name in ui.detector_names())} "
    "(choose one in the sidebar of the Images, Live and Video pages)."
)

st.subheader("Where to go next")
st.page_link(
    "app_pages/images.py", label="Images: upload photos, get annotated results", icon=":material/image:"
)
st.page_link(
    "app_pages/live.py",
    label="Live webcam: people followed, one alert per non-compliant person",
    icon=":material/videocam:",
)
st.page_link(
    "app_pages/video.py",
    label="Video & IP camera: files and streams, people counted",
    icon=":material/movie:",
)
st.page_link(
    "app_pages/compliance_log.py",
    label="Compliance log: people and compliance over time, violations",
    icon=":material/fact_check:",
)
st.page_link(
    "app_pages/metrics.py",
    label="Metrics: the training runs compared on the same test faces, the threshold to serve",
    icon=":material/monitoring:",
)
