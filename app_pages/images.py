"""Images: upload photos (or pick a sample), get every face boxed and labelled, download the results."""

import json

import streamlit as st

from maskapp.app import samples, ui
from maskapp.app.analysis import (
    NO_FACE_HINT,
    detection_json,
    face_rows,
    page_picture,
    photos_total,
    timing_text,
    verdict_notes,
)
from maskapp.app.text import plain, stem
from maskapp.errors import MaskappError
from maskapp.media.images import DEFAULT_MAX_BYTES, IMAGE_FORMATS, encode_png

st.title("Images")
settings = ui.pipeline_sidebar()
anonymize = ui.privacy_sidebar("images")

sample_names = [sample.name for sample in samples.available_samples()]
source = ui.kept_radio("Image source", ["Upload", "Sample"] if sample_names else ["Upload"], "images_source")
if source == "Upload":
    inputs = ui.kept_uploads(
        "Upload one or more images",
        list(IMAGE_FORMATS),
        "images_upload",
        # The photos' own limit: the uploader said "200MB per file" (the videos' server limit), and a
        # photo over 25 MB, taken in, was then refused.
        max_mb=DEFAULT_MAX_BYTES // 2**20,
    )
else:
    name = ui.kept_selectbox(
        "Sample picture",
        sample_names,
        "images_sample",
        format_func=lambda n: f"{n}: {next(s.description for s in samples.SAMPLES if s.name == n)}",
    )
    inputs = [(f"sample {name}.png", samples.sample_png(name))]
one_face = ui.kept_toggle(
    "This image is one face",
    "images_one_face",
    False,
    help="Skip face detection and classify the whole image, for pictures that are already a face crop.",
)
if not inputs:
    st.info(f"Upload an image ({', '.join(IMAGE_FORMATS)}) or pick a sample to start.")
    st.stop()

pipeline = ui.pipeline_for(settings)
ui.color_legend()
# Filled once every photo is in: with several, the figures of all of them (as `detect` prints) come first.
overall = st.container()
shown = []
analyses = ui.image_analyses(pipeline, settings, inputs, one_face=one_face, anonymize=anonymize)
for index, (name, analysis) in enumerate(analyses):
    st.divider()
    st.subheader(plain(name), anchor=False)
    if isinstance(analysis, MaskappError):
        st.error(plain(analysis), icon=":material/error:")
        continue
    result = analysis.result
    shown.append(analysis)
    # The figures in one row above the picture, as the photos' total reads: stacked beside it, five
    # figures stood taller than the picture and pushed it into two thirds of the page.
    ui.count_metrics(result.label_counts, result.compliance, in_row=True, faces=len(result.faces))
    st.caption(timing_text(analysis))
    st.image(page_picture(analysis.annotated), channels="BGR", caption=f"{len(result.faces)} face(s)")
    if result.faces:
        st.dataframe(
            face_rows(analysis),
            hide_index=True,
            column_config=ui.face_table_columns(analysis.classes),
            row_height=ui.FACE_ROW_HEIGHT,
            height="content",  # every face: the default height showed 5 of these tall rows
        )
        for note in verdict_notes(analysis):
            st.caption(note)
    else:
        st.info(NO_FACE_HINT)
    file_stem = stem(name)
    left, right = st.columns(2)
    left.download_button(
        "Download annotated PNG",
        # Encoded on the click, not on every run: 8 s for a 48-megapixel photo, each time the page reran.
        lambda image=analysis.annotated: encode_png(image),
        file_name=f"{file_stem}_annotated.png",
        mime="image/png",
        key=f"png_{index}",
        icon=":material/download:",
        on_click="ignore",  # a rerun analysed every photo again, seconds for big ones, for nothing new
    )
    right.download_button(
        "Download JSON",
        json.dumps(detection_json(analysis), indent=2),
        file_name=f"{file_stem}.json",
        mime="application/json",
        key=f"json_{index}",
        icon=":material/data_object:",
        on_click="ignore",
    )

if len(shown) > 1:
    total = photos_total(shown)
    with overall:
        st.subheader(f"All {len(shown)} photos", anchor=False)
        ui.count_metrics(total, total["compliance"], in_row=True, faces=total["faces"])
        st.download_button(
            "Download JSON of all photos",
            json.dumps(detection_json(shown), indent=2),
            file_name="detections.json",
            mime="application/json",
            key="json_all",
            icon=":material/data_object:",
            on_click="ignore",
        )
