"""Every page through streamlit.testing's AppTest: the shipped model, real photo and video bytes, the
shipped training runs, and the error paths (broken uploads, missing weights, malformed runs, bad
streams). A page may show st.error; it must never raise."""

from __future__ import annotations

import io
import json
import re
import shutil
import socket
import struct
import zlib
from datetime import UTC
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from PIL import Image
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from maskapp import PROJECT_ROOT
from maskapp.app import plots, samples, ui
from maskapp.app.analysis import (
    MAX_PICTURE_HEIGHT,
    MAX_PICTURE_ZOOM,
    analyze_image,
    detection_json,
    face_rows,
    page_picture,
    probability_column,
)
from maskapp.app.compliance_log import VERDICT_COLUMN
from maskapp.app.live import alert_wav
from maskapp.app.model_card import model_card
from maskapp.app.text import plain
from maskapp.config import DETECTOR_NAMES, DETECTOR_THRESHOLDS, LIVE_DETECTOR, InferenceConfig
from maskapp.labels import CLASS_NAMES, VERDICT_NAMES, WORN_INCORRECTLY
from maskapp.media.images import DEFAULT_MAX_BYTES
from maskapp.training.runs import (
    CONFIG_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    RUN_DIRS_ENV,
    find_runs,
    load_runs,
    write_json,
)
from maskapp.vision.crops import crop_face
from maskapp.vision.detect import create_detector
from maskapp.vision.draw import LABEL_STYLES, annotate, face_captions
from tests.conftest import (
    APP_TIMEOUT,
    DEV,
    TWELVE_K,
    TWO_CLASS,
    TWO_CLASS_WEIGHTS,
    assert_no_exception,
    dev_photo,
    free_port,
    http_folder,
    letterbox,
    metrics,
    nearly_perfect_run,
    open_page,
    run_cli,
)

STREET_PHOTO = DEV / "images" / "maksssksksss0.png"
ONE_FACE_PHOTO = DEV / "images" / "maksssksksss609.png"
FACE_CROPS = TWELVE_K / "test" / "without_mask"
MASKED_PHOTOS = TWO_CLASS / "with_mask"


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def photo_faces(at: AppTest) -> list[str]:
    """Each photo's Faces on the Images page, without the figure of all photos above them."""
    faces = [m.value for m in at.metric if m.label == "Faces"]
    return faces[1:] if at.subheader and at.subheader[0].value.startswith("All ") else faces


def webcam_video(path: Path, frames: int = 8) -> Path:
    """An MJPG .avi of real photos (the sample collages), 640x480 at 8 fps."""
    pictures = [samples.compose(samples.SAMPLES[0]), samples.compose(samples.SAMPLES[2])]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 8, (640, 480))
    for index in range(frames):
        writer.write(letterbox(pictures[index * len(pictures) // frames]))
    writer.release()
    return path


# --- Home --------------------------------------------------------------------------------------------
def test_home_shows_the_shipped_model_and_its_test_accuracy(app):
    """Home wrote the served run's test accuracy as "98.6%" while the Metrics page wrote the same figure
    0.986: it reads as the Metrics page writes it."""
    at = app.run()
    assert_no_exception(at)
    shown = metrics(at)
    assert shown["Architecture"] in {"MobileNetV2", "Baseline CNN"}
    card = model_card(str(ui.weights_path()))
    assert card.test_accuracy is not None, "the shipped weights should match a shipped run"
    assert shown["Test accuracy"] == plots.figure_text("test accuracy", card.test_accuracy)
    assert shown["Macro F1"] == plots.figure_text("macro F1", card.macro_f1)
    assert len(at.get("page_link")) == 5  # every other page, the Compliance log included


def test_home_names_the_verdicts_as_its_legend_and_the_pages_do(app):
    """Home described the classifier's verdicts as `with_mask`, `mask_worn_incorrectly` and `without_mask`
    right above its legend's chips, *Mask*, *Mask worn incorrectly*, *No mask*, the names every page shows."""
    at = app.run()
    assert_no_exception(at)
    (intro,) = [m.value for m in at.markdown if "labels each face crop" in m.value]
    for label, name in VERDICT_NAMES.items():
        assert f"*{name}*" in intro and f"`{label}`" not in intro


def test_home_puts_the_alert_on_the_live_page_and_compliance_on_people(app):
    """Home said that on the Live and Video pages the alert sounds once per non-compliant person, while
    only the Live page alerts (the Video page logs and posts to a webhook), and that compliance is a share
    of faces, while those pages give the compliance of people first."""
    at = app.run()
    assert_no_exception(at)
    (intro,) = [m.value for m in at.markdown if "labels each face crop" in m.value]
    assert "the Live page alerts once per non-compliant person" in intro
    assert "the alert sounds" not in intro
    assert "(of people, where people are followed)" in intro


def test_the_readme_app_table_names_each_figure_home_shows(app):
    """The README's Home row named the architecture, classes and test accuracy, while Home also shows the
    input size, the macro F1, the non-compliant threshold and the legend of box colours."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    (home_row,) = [line for line in readme.splitlines() if line.startswith("| Home |")]
    at = app.run()
    assert_no_exception(at)
    for label in metrics(at):
        assert label.lower() in home_row.lower(), label
    assert any(m.value.startswith("Box colours") for m in at.markdown) and "box colours" in home_row


def test_home_links_the_metrics_page_by_what_it_now_does(app):
    """Home's link read *Metrics: training curves, test figures*, while the page's first sections compare
    the runs, one group of runs tested on the same faces at a time, and end with a threshold picker."""
    at = app.run()
    assert_no_exception(at)
    (link,) = [link.label for link in at.get("page_link") if link.proto.page == "metrics"]
    assert "compared on the same test faces" in link and "threshold" in link
    at.switch_page("app_pages/metrics.py").run()
    assert "Comparison" in [header.value for header in at.subheader]
    assert any(slider.label == "Threshold to consider" for slider in at.select_slider)


def test_home_without_weights_warns_instead_of_failing(app, monkeypatch, tmp_path):
    monkeypatch.setenv(ui.WEIGHTS_ENV, str(tmp_path / "missing.pt"))
    at = app.run()
    assert_no_exception(at)
    assert any("does not exist" in w.value for w in at.warning)


# --- Images ------------------------------------------------------------------------------------------
def test_uploaded_photo_gives_annotated_image_face_table_and_downloads(app):
    at = open_page(app, "app_pages/images.py")
    at.file_uploader[0].set_value(("street.png", STREET_PHOTO.read_bytes(), "image/png")).run()
    assert_no_exception(at)
    assert not errors(at)
    faces = int(metrics(at)["Faces"])
    assert faces >= 2
    assert len(at.image) >= 1  # the annotated picture
    table = at.dataframe[0].value
    assert len(table) == faces
    assert set(table[VERDICT_COLUMN]) <= {style.caption for style in LABEL_STYLES.values()}
    assert all(str(url).startswith("data:image/png;base64,") for url in table["crop"])
    labels = [button.label for button in at.download_button]
    assert labels == ["Download annotated PNG", "Download JSON"]


def test_the_annotated_png_is_encoded_when_downloaded_not_on_every_run(app, monkeypatch):
    """The PNG download was encoded on every run of the page, for every picture: 8 s for a 48-megapixel
    photo (under the 50-megapixel limit), again after each click anywhere on the page."""
    deferred = {}
    register = MediaFileManager.add_deferred

    def keep(self, data_callable, mimetype, coordinates, file_name=None, **options):
        deferred[file_name] = data_callable
        return register(self, data_callable, mimetype, coordinates, file_name, **options)

    monkeypatch.setattr(MediaFileManager, "add_deferred", keep)
    at = open_page(app, "app_pages/images.py")
    at.file_uploader[0].set_value(("street.png", STREET_PHOTO.read_bytes(), "image/png")).run()
    assert_no_exception(at)
    png_button = at.download_button[0]
    assert png_button.label == "Download annotated PNG"
    assert png_button.proto.deferred_file_id and not png_button.proto.url  # nothing encoded yet
    png = Image.open(io.BytesIO(deferred["street_annotated.png"]()))  # the click
    assert png.format == "PNG" and png.size == Image.open(STREET_PHOTO).size


def test_a_download_click_on_the_images_page_does_not_run_the_page_again(app):
    """Each click on a download ran the page again, so every photo was decoded and analysed again
    (seconds for a big one) to give the same file. The browser test clicks it and reads the file."""
    at = open_page(app, "app_pages/images.py")
    at.file_uploader[0].set_value(("street.png", STREET_PHOTO.read_bytes(), "image/png")).run()
    assert_no_exception(at)
    assert [(b.label, b.proto.ignore_rerun) for b in at.download_button] == [
        ("Download annotated PNG", True),
        ("Download JSON", True),
    ]


def test_the_face_table_shows_every_face_without_scrolling(app, monkeypatch):
    """With 64 px rows Streamlit's default table height showed five faces and a half: in a photo of 7
    faces the last ones were cut off (seen in a demo); the table now takes the height of its rows."""
    import streamlit as st

    shown = []
    real = st.dataframe

    def spy(data, *args, **kwargs):
        shown.append(kwargs.get("height", "auto"))
        return real(data, *args, **kwargs)

    monkeypatch.setattr(st, "dataframe", spy)
    photo = DEV / "images" / "maksssksksss698.png"
    at = open_page(app, "app_pages/images.py")
    at.file_uploader[0].set_value((photo.name, photo.read_bytes(), "image/png")).run()
    assert_no_exception(at)
    assert len(at.dataframe[0].value) == int(metrics(at)["Faces"]) >= 6
    assert shown == ["content"]


def spy_on_dataframe_configs(monkeypatch) -> list[dict]:
    """The column_config of every st.dataframe the page draws, in order (AppTest does not expose it)."""
    import streamlit as st

    configs = []
    real = st.dataframe

    def spy(data, *args, **kwargs):
        configs.append(kwargs.get("column_config") or {})
        return real(data, *args, **kwargs)

    monkeypatch.setattr(st, "dataframe", spy)
    return configs


def test_the_face_table_shows_each_class_probability_in_its_box_colour(app, monkeypatch):
    """One bar per face in the theme's red read as 'no mask' for a masked face too: each class now has
    its own column, in the colour of its boxes, and the probabilities of a face add up to one."""
    configs = spy_on_dataframe_configs(monkeypatch)
    at = open_page(app, "app_pages/images.py")
    at.file_uploader[0].set_value(("street.png", STREET_PHOTO.read_bytes(), "image/png")).run()
    assert_no_exception(at)
    table = at.dataframe[0].value
    columns = [probability_column(name) for name in CLASS_NAMES]
    assert np.allclose(table[columns].sum(axis=1), 100.0, atol=0.1)  # in percent
    bars = {name: configs[0][probability_column(name)] for name in CLASS_NAMES}
    assert {name: bar["type_config"]["color"] for name, bar in bars.items()} == {
        name: style.hex for name, style in LABEL_STYLES.items()
    }
    assert "probability" not in table.columns


def test_the_face_tables_verdict_column_is_named_as_the_violations_tables(app, monkeypatch):
    """The Images page's face table headed its verdicts "label" while the Compliance log's violations table
    headed the same words "verdict": one word on every page (the JSON keeps `label`)."""
    configs = spy_on_dataframe_configs(monkeypatch)
    at = open_page(app, "app_pages/images.py")
    at.file_uploader[0].set_value(("street.png", STREET_PHOTO.read_bytes(), "image/png")).run()
    assert_no_exception(at)
    headers = [configs[0][column]["label"] for column in at.dataframe[0].value.columns]
    assert VERDICT_COLUMN in headers and "label" not in headers
    assert ui.violation_table_columns(UTC)[VERDICT_COLUMN]["label"] == VERDICT_COLUMN


# The width of the page's main column in a 1000 px browser window, beside the sidebar (measured in
# chromium: the face table's box is 540 px wide, 538 inside its border).
MAIN_WIDTH_AT_1000_PX = 538


def test_the_face_table_shows_every_column_in_a_1000_px_window(app, monkeypatch):
    """With Streamlit's own column widths the No mask bar (the one that tells a violation) was behind the
    table's scroll bar at 1000 px, and then the face score and the box were: every column now has a
    width in pixels, together they fit, each header whole; rows are tall enough for the label and the
    box to take two lines (Streamlit wraps text only in rows over 64 px). The browser test looks."""
    configs = spy_on_dataframe_configs(monkeypatch)
    at = open_page(app, "app_pages/images.py")
    at.file_uploader[0].set_value(("street.png", STREET_PHOTO.read_bytes(), "image/png")).run()
    assert_no_exception(at)
    shown = list(at.dataframe[0].value.columns)
    assert {"face score", "box"} <= set(shown)
    widths = [configs[0][column]["width"] for column in shown]
    assert all(isinstance(width, int) for width in widths), widths
    assert sum(widths) <= MAIN_WIDTH_AT_1000_PX
    for column in shown:
        header = configs[0][column]
        assert header["width"] >= 7 * len(header["label"])  # about 7 px a character at the header's size
    assert ui.FACE_ROW_HEIGHT > 64


def test_uploaded_photos_and_their_results_are_still_there_after_another_page(app):
    """Streamlit empties an uploader a page run does not draw: the photos and their faces were gone
    after a look at the Metrics page. They stay until cleared, and clearing takes them away."""
    at = open_page(app, "app_pages/images.py")
    at.file_uploader[0].set_value(("street.png", STREET_PHOTO.read_bytes(), "image/png")).run()
    faces = metrics(at)["Faces"]
    at.switch_page("app_pages/metrics.py").run()
    at.switch_page("app_pages/images.py").run()
    assert_no_exception(at)
    assert metrics(at)["Faces"] == faces and at.subheader[0].value == "street.png"
    assert "uploaded before" in at.caption[0].value
    (clear,) = [button for button in at.button if button.label == "Clear them"]
    clear.click().run()
    assert_no_exception(at)
    assert "Faces" not in metrics(at) and "Upload an image" in at.info[0].value


def test_the_images_pages_prompt_names_every_format_the_uploader_takes(app):
    """It said "jpg, png, webp, bmp" while the uploader also took gif, jpeg, tif and tiff."""
    at = open_page(app, "app_pages/images.py")
    assert_no_exception(at)
    taken = [suffix.lstrip(".") for suffix in at.file_uploader[0].allowed_type]  # streamlit adds the dots
    assert {"gif", "tiff"} <= set(taken)
    assert at.info[0].value == f"Upload an image ({', '.join(taken)}) or pick a sample to start."


def test_the_images_pages_choices_stay_after_another_page(app):
    """The kept photos were shown with 'This image is one face' switched back off (other results), a
    chosen sample went back to the uploader, and the sample picked came back as the first one."""
    at = open_page(app, "app_pages/images.py")
    at.radio[0].set_value("Sample").run()
    (one_face,) = [t for t in at.toggle if t.label == "This image is one face"]
    one_face.set_value(True).run()
    (sample,) = [box for box in at.selectbox if box.label == "Sample picture"]
    first, *_, picked = [s.name for s in samples.available_samples()]
    sample.set_value(picked).run()
    at.switch_page("app_pages/metrics.py").run()
    at.switch_page("app_pages/images.py").run()
    assert_no_exception(at)
    (one_face,) = [t for t in at.toggle if t.label == "This image is one face"]
    assert at.radio[0].value == "Sample" and one_face.value is True
    (sample,) = [box for box in at.selectbox if box.label == "Sample picture"]
    assert sample.value == picked != first
    assert metrics(at)["Faces"] == "1"  # the whole picture classified as one face


def test_a_photo_removed_from_the_uploader_does_not_come_back(app):
    at = open_page(app, "app_pages/images.py")
    at.file_uploader[0].set_value(("street.png", STREET_PHOTO.read_bytes(), "image/png")).run()
    at.file_uploader[0].set_value([]).run()  # its x pressed: gone, not shown as one kept from before
    assert_no_exception(at)
    assert "Faces" not in metrics(at) and "Upload an image" in at.info[0].value


BROKEN_UPLOADS = [
    ("empty.jpg", b"", "empty (0 bytes)"),
    ("report.jpg", b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "PDF"),
    ("notes.png", b"just some text, not an image\n" * 10, "not an image"),
]


def test_broken_uploads_get_one_error_each_and_the_good_photo_still_shows(app):
    good = sorted(MASKED_PHOTOS.glob("*.jpg"))[1].read_bytes()
    truncated = good[: len(good) // 2]
    uploads = [("good.jpg", good, "image/jpeg"), ("truncated.jpg", truncated, "image/jpeg")]
    uploads += [(name, data, "image/jpeg") for name, data, _ in BROKEN_UPLOADS]
    at = open_page(app, "app_pages/images.py")
    at.file_uploader[0].set_value(uploads).run()
    assert_no_exception(at)
    shown = errors(at)
    assert len(shown) == 4, shown
    for (name, _, reason), message in zip(BROKEN_UPLOADS, shown[1:], strict=True):
        assert name in message and reason in message
    assert "truncated.jpg" in shown[0]
    assert int(metrics(at)["Faces"]) >= 1  # good.jpg still analysed


def _encode(image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with one tiny data chunk: refused before decoding."""
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    data = _png_chunk(b"IDAT", zlib.compress(bytes(64)))
    return b"\x89PNG\r\n\x1a\n" + header + data + _png_chunk(b"IEND", b"")


def odd_but_valid_uploads() -> list[tuple[str, bytes, str]]:
    """One real photo of an unmasked face in every odd form a user's file may take."""
    photo = Image.open(ONE_FACE_PHOTO).convert("RGB")
    other = Image.open(STREET_PHOTO).convert("RGB").resize(photo.size)
    rotated = photo.transpose(Image.Transpose.ROTATE_90)  # stored sideways, EXIF says turn it back
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    bgr16 = cv2.cvtColor(np.asarray(photo), cv2.COLOR_RGB2BGR).astype(np.uint16) * 257
    return [
        ("gray.jpg", _encode(photo.convert("L"), "JPEG"), "image/jpeg"),
        ("palette.png", _encode(photo.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"), "image/png"),
        ("rgba.png", _encode(photo.convert("RGBA"), "PNG"), "image/png"),
        ("deep16.png", cv2.imencode(".png", bgr16)[1].tobytes(), "image/png"),
        ("cmyk.jpg", _encode(photo.convert("CMYK"), "JPEG"), "image/jpeg"),
        ("rotated.jpg", _encode(rotated, "JPEG", exif=exif), "image/jpeg"),
        ("animated.gif", _encode(photo, "GIF", save_all=True, append_images=[other]), "image/gif"),
        ("animated.webp", _encode(photo, "WEBP", save_all=True, append_images=[other]), "image/webp"),
        ("photo.bmp", _encode(photo, "BMP"), "image/bmp"),
    ]


def test_odd_but_valid_images_all_find_the_face(app):
    uploads = odd_but_valid_uploads()
    at = open_page(app, "app_pages/images.py")
    at.file_uploader[0].set_value(uploads).run()
    assert_no_exception(at)
    assert not errors(at)
    faces = photo_faces(at)
    assert len(faces) == len(uploads)
    assert all(int(count) >= 1 for count in faces), dict(zip([u[0] for u in uploads], faces, strict=True))


def test_tiny_huge_and_truncated_images_fail_safe(app):
    png = STREET_PHOTO.read_bytes()
    uploads = [
        ("dot.png", _encode(Image.new("RGB", (1, 1), "white"), "PNG"), "image/png"),
        ("giant.png", _png_header_only(8000, 8000), "image/png"),
        ("cut.png", png[: len(png) // 2], "image/png"),
        # Valid, but the page would shrink it to no rows at all (Streamlit shows 1,460 px at most).
        ("stripe.png", _encode(Image.new("RGB", (4000, 1), "white"), "PNG"), "image/png"),
        ("street.png", png, "image/png"),  # the pictures after a refused one still get their result
    ]
    at = open_page(app, "app_pages/images.py")
    at.file_uploader[0].set_value(uploads).run()
    assert_no_exception(at)
    shown = errors(at)
    assert len(shown) == 3, shown
    assert "giant.png" in shown[0] and "pixel" in shown[0]
    assert "cut.png" in shown[1]
    assert "stripe.png is 4000x1 pixels, too wide to show; allowed: an image at most 1000 times" in shown[2]
    faces = photo_faces(at)
    assert faces[0] == "0" and int(faces[1]) >= 1  # a 1x1 image is valid, faceless


def test_a_hostile_file_name_is_shown_as_text(app):
    name = "<img src=x onerror=alert(1)>**bold**.png"
    at = open_page(app, "app_pages/images.py")
    uploads = [(name, STREET_PHOTO.read_bytes(), "image/png"), (name, b"", "image/png")]
    at.file_uploader[0].set_value(uploads).run()
    assert_no_exception(at)
    heading = at.subheader[0].value
    assert "<img" not in heading.replace("\\<img", "") and "\\*\\*bold" in heading
    assert "<img" not in errors(at)[0].replace("\\<img", "")


def test_upload_over_the_size_limit_is_refused_before_decoding(app):
    at = open_page(app, "app_pages/images.py")
    huge = b"\xff\xd8\xff" + bytes(DEFAULT_MAX_BYTES)
    at.file_uploader[0].set_value(("huge.jpg", huge, "image/jpeg")).run()
    assert_no_exception(at)
    assert "upload limit" in errors(at)[0]


def test_the_photo_uploader_states_the_limit_photos_are_held_to(app):
    """The uploader read "200MB per file" (the server's limit, set for videos), while a photo over 25 MiB
    was refused once uploaded: it now says, and keeps to, the photos' limit."""
    at = open_page(app, "app_pages/images.py")
    assert_no_exception(at)
    assert at.file_uploader[0].proto.max_upload_size_mb * 2**20 == DEFAULT_MAX_BYTES


def test_mixed_group_sample_finds_two_masked_and_two_unmasked(app):
    at = open_page(app, "app_pages/images.py")
    at.radio[0].set_value("Sample").run()
    assert_no_exception(at)
    shown = metrics(at)
    assert (shown["Faces"], shown["Mask"]) == ("4", "2")
    assert int(shown["No mask"]) + int(shown["Mask worn incorrectly"]) == 2
    assert shown["Compliance"] == "50%"


def test_no_face_sample_says_so(app):
    at = open_page(app, "app_pages/images.py")
    at.radio[0].set_value("Sample").run()
    sample_box = next(box for box in at.selectbox if box.label == "Sample picture")
    sample_box.set_value("No faces").run()
    assert_no_exception(at)
    assert metrics(at)["Faces"] == "0"
    (hint,) = [info.value for info in at.info if "No face found" in info.value]
    # 'This image is one face' is offered for a close-up crop of one face only: it was offered for any
    # picture, this one of no face included, where its verdict means nothing.
    assert "This image is one face" in hint and "close-up crop of one face" in hint


def test_one_face_switch_classifies_a_face_crop_without_detection(app):
    crop = sorted(FACE_CROPS.glob("*.jpg"))[0]
    at = open_page(app, "app_pages/images.py")
    at.file_uploader[0].set_value((crop.name, crop.read_bytes(), "image/jpeg"))
    at.toggle[0].set_value(True).run()
    assert_no_exception(at)
    assert metrics(at)["Faces"] == "1"
    assert len(at.dataframe[0].value) == 1


def test_a_picture_taken_as_one_face_has_no_face_score_in_the_table_or_the_json(app):
    """'This image is one face' runs no detector, yet the table and the JSON gave the face a detector
    score of 1.00, a certainty nobody measured: the table says 'whole image', the JSON null (`score`,
    which ranks faces, is then the label's probability alone)."""
    crop = sorted(FACE_CROPS.glob("*.jpg"))[0]
    at = open_page(app, "app_pages/images.py")
    at.file_uploader[0].set_value((crop.name, crop.read_bytes(), "image/jpeg"))
    (one_face,) = [t for t in at.toggle if t.label == "This image is one face"]
    one_face.set_value(True).run()
    assert_no_exception(at)
    assert list(at.dataframe[0].value["face score"]) == ["whole image"]
    pipeline = ui.get_pipeline(InferenceConfig(weights=ui.weights_path(), detector="centerface"))
    analysis = analyze_image(pipeline, crop.read_bytes(), crop.name, one_face=True)
    (entry,) = json.loads(json.dumps(detection_json(analysis)))["images"][crop.name]
    assert set(entry) == {"box", "label", "score", "face_score", "probs", "compliant"}
    assert entry["face_score"] is None
    assert entry["score"] == pytest.approx(entry["probs"][entry["label"]])
    photo = analyze_image(pipeline, STREET_PHOTO.read_bytes(), "street.png")  # detected faces keep theirs
    assert all(
        row["face score"] == f"{face.face.score:.2f}"
        for row, face in zip(face_rows(photo), photo.result.faces, strict=True)
    )


def test_a_face_flagged_though_mask_is_its_likeliest_class_is_explained_on_the_page(app):
    """Face 4 of this street photo has P(with_mask) 63% and is flagged at the threshold 0.32: its row read
    'No mask' beside a Mask bar longer than its No mask bar, with no word why. A caption under the table
    names the rule and the face's figure, and the legend says what a box's percentage is."""
    photo = DEV / "images" / "maksssksksss185.png"
    at = open_page(app, "app_pages/images.py")
    at.file_uploader[0].set_value((photo.name, photo.read_bytes(), "image/png")).run()
    assert_no_exception(at)
    table = at.dataframe[0].value
    columns = {probability_column(name): LABEL_STYLES[name].caption for name in CLASS_NAMES}
    likeliest = table[list(columns)].astype(float).idxmax(axis=1).map(columns)
    flipped = table.index[table[VERDICT_COLUMN] != likeliest]
    assert len(flipped) >= 1
    notes = [c.value for c in at.caption if re.match(r"Face \d+ is called", c.value)]
    assert len(notes) == len(flipped)
    for row, note in zip(flipped, notes, strict=True):
        masked = float(table.loc[row, probability_column(CLASS_NAMES[0])]) / 100
        assert note.startswith(
            f"Face {table.loc[row, 'face']} is called {table.loc[row, VERDICT_COLUMN]} though Mask"
        )
        assert f"({masked:.0%})" in note and f"{1 - masked:.0%}" in note and "0.32" in note
    assert any("percentage on a box is how likely its verdict is" in c.value for c in at.caption)


def test_a_picture_taken_as_one_face_says_no_detector_ran_in_its_timing(app):
    """The timing under a picture taken as one face read '4 ms (detect 0 ms)', as if a detector had found
    its face in no time; it says no detection ran, and a detected photo still gives its detector's time."""
    at = open_page(app, "app_pages/images.py")
    at.file_uploader[0].set_value((STREET_PHOTO.name, STREET_PHOTO.read_bytes(), "image/png")).run()
    assert any(re.fullmatch(r"\d+ ms \(detect \d+ ms\)", c.value) for c in at.caption)
    (one_face,) = [t for t in at.toggle if t.label == "This image is one face"]
    one_face.set_value(True).run()
    assert_no_exception(at)
    timings = [c.value for c in at.caption if re.match(r"\d+ ms ", c.value)]
    assert len(timings) == 1 and timings[0].endswith("(no face detection: the whole image is the face)")


def test_json_download_follows_the_detect_command_schema():
    pipeline = ui.get_pipeline(InferenceConfig(weights=ui.weights_path(), detector="centerface"))
    analysis = analyze_image(pipeline, STREET_PHOTO.read_bytes(), "street.png")
    payload = json.loads(json.dumps(detection_json(analysis)))
    (faces,) = payload["images"].values()
    assert list(payload["images"]) == ["street.png"] and len(faces) == len(analysis.result.faces)
    assert set(faces[0]) == {"box", "label", "score", "face_score", "probs", "compliant"}
    assert payload["classes"] == list(pipeline.classifier.class_names)
    assert payload["summary"]["street.png"]["faces"] == len(faces)
    assert payload["total"] == {"images": 1, **payload["summary"]["street.png"]}


def test_the_annotated_photo_numbers_its_faces_as_the_face_table_does():
    """In a crowd (maksssksksss104, about ten faces) the face table's rows, numbered 1, 2, ..., and the
    note 'Face 4 is called ...' could not be matched to the boxes: each box's caption now starts with
    its row's number."""
    pipeline = ui.get_pipeline(InferenceConfig(weights=ui.weights_path(), detector="centerface"))
    photo = DEV / "images" / "maksssksksss104.png"
    analysis = analyze_image(pipeline, photo.read_bytes(), photo.name)
    faces = analysis.result.faces
    assert len(faces) >= 8
    assert [row["face"] for row in face_rows(analysis)] == list(range(1, len(faces) + 1))
    numbered = annotate(analysis.image, analysis.result, numbered=True)
    assert np.array_equal(analysis.annotated, numbered)
    assert not np.array_equal(analysis.annotated, annotate(analysis.image, analysis.result))
    assert face_captions(faces, numbered=True)[3].startswith("4: ")
    # The table says where its numbers are: nothing told a reader to look for them on the picture.
    assert "picture" in ui.face_table_columns(analysis.classes)["face"]["help"]


def test_the_images_page_shows_a_small_photo_larger_and_a_tall_one_no_taller_than_a_screen():
    """The street photos are 400 px wide: shown as they are, their captions could not be read; a phone's
    portrait photo as wide as the page was three screens tall. The download keeps the picture as it is."""
    street = cv2.imread(str(STREET_PHOTO))
    shown = page_picture(street)
    height, width = street.shape[:2]
    assert shown.shape[1] > width
    assert shown.shape[0] == min(round(height * MAX_PICTURE_ZOOM), MAX_PICTURE_HEIGHT)
    portrait = np.zeros((4000, 3000, 3), np.uint8)
    assert page_picture(portrait).shape[:2] == (MAX_PICTURE_HEIGHT, 540)


def test_face_thumbnails_are_cut_with_the_pipelines_margin():
    """The table's crop is what the classifier saw: the pipeline's margin, not the default one."""
    margin = 0.6
    config = InferenceConfig(weights=ui.weights_path(), detector="centerface", margin=margin)
    pipeline = ui.get_pipeline(config)
    analysis = analyze_image(pipeline, STREET_PHOTO.read_bytes(), "street.png")
    assert analysis.result.faces
    for face, crop in zip(analysis.result.faces, analysis.crops, strict=True):
        assert np.array_equal(crop, crop_face(analysis.image, face.face.classifier_box, margin))
        assert (
            crop.shape != crop_face(analysis.image, face.face.classifier_box).shape
        )  # the default margin differs


def test_images_page_with_missing_weights_shows_an_error(app, monkeypatch, tmp_path):
    monkeypatch.setenv(ui.WEIGHTS_ENV, str(tmp_path / "missing.pt"))
    at = open_page(app, "app_pages/images.py")
    at.file_uploader[0].set_value(("street.png", STREET_PHOTO.read_bytes(), "image/png")).run()
    assert_no_exception(at)
    assert any("does not exist" in message for message in errors(at))


@pytest.mark.parametrize("page", ["app_pages/live.py", "app_pages/video.py"])
def test_a_video_page_with_unusable_weights_says_so_before_anything_is_given(app, monkeypatch, page):
    monkeypatch.setenv(ui.WEIGHTS_ENV, "/etc/passwd")  # a file, but not a checkpoint
    at = open_page(app, page)
    assert_no_exception(at)
    (message,) = errors(at)
    assert message.startswith("/etc/passwd is not a readable maskapp checkpoint (not a PyTorch file); give a")


def test_images_page_with_a_corrupt_checkpoint_shows_an_error(app, monkeypatch, tmp_path):
    weights = tmp_path / "corrupt.pt"
    weights.write_bytes(b"PK\x03\x04 not really a zip")
    monkeypatch.setenv(ui.WEIGHTS_ENV, str(weights))
    at = open_page(app, "app_pages/images.py")
    at.file_uploader[0].set_value(("street.png", STREET_PHOTO.read_bytes(), "image/png")).run()
    assert_no_exception(at)
    assert any("checkpoint" in message for message in errors(at))


# --- Live --------------------------------------------------------------------------------------------
def webrtc_args(at: AppTest) -> dict:
    (component,) = at.get("component_instance")  # the streamlit-webrtc iframe
    return json.loads(component.proto.json_args)


def test_live_page_renders_the_webrtc_component(app):
    at = open_page(app, "app_pages/live.py")
    assert not errors(at)
    args = webrtc_args(at)
    assert args["mode"] == "SENDRECV" and args["media_stream_constraints"] == {"video": True, "audio": False}
    assert args["rtc_configuration"] == {"iceServers": []}  # loopback needs no STUN or TURN
    assert any("Press START" in info.value for info in at.info)
    assert "live_processor" in at.session_state
    assert at.selectbox[0].value == LIVE_DETECTOR  # frame rate first on a live camera


TURN = {"urls": ["turn:turn.example.org:3478"], "username": "maskapp", "credential": "secret"}


def test_ice_servers_from_streamlit_secrets_reach_the_browser(app):
    app.secrets["ice_servers"] = [TURN]
    at = open_page(app, "app_pages/live.py")
    assert webrtc_args(at)["rtc_configuration"] == {"iceServers": [TURN]}


def test_ice_servers_from_the_environment_win_over_secrets(app, monkeypatch):
    monkeypatch.setenv(ui.ICE_SERVERS_ENV, json.dumps({"iceServers": [{"urls": "stun:stun.example.org"}]}))
    app.secrets["ice_servers"] = [TURN]
    at = open_page(app, "app_pages/live.py")
    assert webrtc_args(at)["rtc_configuration"] == {"iceServers": [{"urls": "stun:stun.example.org"}]}


def test_live_page_with_malformed_ice_servers_shows_an_error(app, monkeypatch):
    monkeypatch.setenv(ui.ICE_SERVERS_ENV, "{not json")
    at = open_page(app, "app_pages/live.py")
    assert "ICE server configuration is not valid JSON" in errors(at)[0]


# --- Video & IP camera -------------------------------------------------------------------------------
def test_uploaded_video_is_annotated_with_chart_and_a_download_that_does_not_rerun(app, tmp_path):
    video = webcam_video(tmp_path / "clip.avi", frames=8)
    at = open_page(app, "app_pages/video.py")
    at.file_uploader[0].set_value(("clip.avi", video.read_bytes(), "video/x-msvideo")).run()
    assert_no_exception(at)
    assert not errors(at)
    shown = metrics(at)
    assert shown["Frames"] == "8"
    assert int(shown["Faces seen"]) >= 8
    # A click only fetches the video (its bytes made before): it ran the page again, for nothing new.
    assert [(b.label, b.proto.ignore_rerun) for b in at.download_button] == [
        ("Download annotated video", True)
    ]
    assert len(at.get("plotly_chart")) == 2  # people over time, then face-frames over time
    labels = [m.label for m in at.metric]
    assert labels.index("People") < labels.index("Faces seen")  # people first, each counted once
    assert "Face-frames" in [h.value for h in at.subheader]
    # A "People" heading sat right above the "People" metric: each name once.
    assert not {h.value for h in at.subheader} & set(labels)
    at.run()  # a rerun (e.g. after a download click) reuses the result
    assert metrics(at)["Frames"] == "8"


def test_an_analysed_video_is_still_there_after_another_page_and_goes_when_removed(app, tmp_path):
    """Streamlit empties an uploader a page run does not draw: the analysed video, its download and its
    figures were gone after a look at another page. Removing the file takes them away."""
    video = webcam_video(tmp_path / "clip.avi", frames=6)
    at = open_page(app, "app_pages/video.py")
    at.file_uploader[0].set_value(("clip.avi", video.read_bytes(), "video/x-msvideo")).run()
    at.switch_page("app_pages/images.py").run()
    at.switch_page("app_pages/video.py").run()
    assert_no_exception(at)
    assert metrics(at)["Frames"] == "6" and any("clip.avi, analysed before" in c.value for c in at.caption)
    assert [b.label for b in at.download_button] == ["Download annotated video"]
    at.file_uploader[0].set_value(("clip.avi", video.read_bytes(), "video/x-msvideo")).run()
    at.file_uploader[0].set_value(None).run()  # its x pressed
    assert_no_exception(at)
    assert "Frames" not in metrics(at) and "Upload a video file" in at.info[0].value


def test_corrupt_video_upload_shows_an_error(app):
    at = open_page(app, "app_pages/video.py")
    noise = np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    at.file_uploader[0].set_value(("clip.mp4", noise, "video/mp4")).run()
    assert_no_exception(at)
    assert "not a readable video" in errors(at)[0]


def test_an_empty_video_upload_says_it_is_empty_and_the_next_one_plays(app, tmp_path):
    at = open_page(app, "app_pages/video.py")
    at.file_uploader[0].set_value(("door.mp4", b"", "video/mp4")).run()
    assert_no_exception(at)
    allowed = "allowed: a video file OpenCV can decode (mp4, avi...)"
    assert errors(at) == [f"door.mp4 is empty (0 bytes); {allowed}"]
    video = webcam_video(tmp_path / "clip.avi", frames=3)
    at.file_uploader[0].set_value(("clip.avi", video.read_bytes(), "video/x-msvideo")).run()
    assert_no_exception(at)
    assert not errors(at) and metrics(at)["Frames"] == "3"


def test_a_file_with_no_video_stream_shows_an_error(app):
    at = open_page(app, "app_pages/video.py")
    at.file_uploader[0].set_value(("sound.mp4", alert_wav(), "video/mp4")).run()
    assert_no_exception(at)
    assert "not a readable video" in errors(at)[0]


def test_a_photo_uploaded_as_a_video_names_the_upload_and_the_images_page(app):
    at = open_page(app, "app_pages/video.py")
    photo = STREET_PHOTO.read_bytes()
    at.file_uploader[0].set_value(("entrance.mp4", photo, "video/mp4")).run()
    assert_no_exception(at)
    message = errors(at)[0]
    assert message.startswith("entrance.mp4 is a still PNG picture, not a video") and "Images page" in message


@pytest.fixture
def http_stream(tmp_path):
    """A local HTTP server serving an MJPG .avi, as a network camera or a stream URL would; also
    dropped.avi, the same stream cut off midway."""
    camera = webcam_video(tmp_path / "camera.avi", frames=6)
    data = camera.read_bytes()
    (tmp_path / "dropped.avi").write_bytes(data[: len(data) // 2])
    with http_folder(tmp_path) as url:
        yield url + "camera.avi"


def test_stream_url_is_played_through_the_pipeline(app, http_stream):
    at = open_page(app, "app_pages/video.py")
    at.text_input[0].set_value(http_stream).run()
    at.button[0].click().run()
    assert_no_exception(at)
    assert not errors(at)
    assert metrics(at)["Frames"] == "6"
    assert any("stream ended after 6 frames" in info.value for info in at.info)
    assert len(at.get("plotly_chart")) == 2  # people over time, then face-frames over time
    (live_numbers,) = [c.value for c in at.caption if c.value.startswith("People so far")]
    assert f"People so far {metrics(at)['People']} · in view" in live_numbers  # as the summary counts


def test_the_stream_url_stays_after_another_page(app):
    at = open_page(app, "app_pages/video.py")
    at.text_input[0].set_value("rtsp://camera.local:554/stream").run()
    at.switch_page("app_pages/home.py").run()
    at.switch_page("app_pages/video.py").run()
    assert_no_exception(at)
    assert at.text_input[0].value == "rtsp://camera.local:554/stream" and not at.button[0].disabled


def test_the_streams_stop_after_setting_stays_after_another_page(app):
    """'Stop after' came back as 60 s after a look at another page."""
    at = open_page(app, "app_pages/video.py")
    (seconds,) = [box for box in at.number_input if box.label == "Stop after (seconds)"]
    seconds.set_value(300).run()
    at.switch_page("app_pages/home.py").run()
    at.switch_page("app_pages/video.py").run()
    assert_no_exception(at)
    (seconds,) = [box for box in at.number_input if box.label == "Stop after (seconds)"]
    assert seconds.value == 300


def test_the_stream_tab_says_stop_gives_no_summary_and_stop_after_does(app):
    """It said "Press Stop (top right) to end early"; pressed, Stop ends the page run for good (seen in a
    real browser: the last frame stayed, no summary, no people counts), so the page now says so and points
    to *Stop after*, which ends the watch with its summary."""
    at = open_page(app, "app_pages/video.py")
    (caption,) = [c.value for c in at.caption if "Stop (top right)" in c.value]
    assert "without a summary" in caption and "Stop after" in caption


def test_a_stream_that_drops_midway_keeps_what_was_processed(app, http_stream):
    at = open_page(app, "app_pages/video.py")
    at.text_input[0].set_value(http_stream.replace("camera.avi", "dropped.avi")).run()
    at.button[0].click().run()
    assert_no_exception(at)
    frames = int(metrics(at)["Frames"])
    assert 1 <= frames < 6
    assert any(f"stream ended after {frames} frames" in info.value for info in at.info)


def test_a_stream_that_sends_no_frame_is_an_error_not_an_empty_summary(app, tmp_path):
    """A stream that opens and ends at once (here an AVI without frames) showed "The stream ended after 0
    frames." above a summary of zeros and two empty charts, where the command line says no frame came."""
    cv2.VideoWriter(str(tmp_path / "none.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 8, (64, 48)).release()
    with http_folder(tmp_path) as url:
        at = open_page(app, "app_pages/video.py")
        at.text_input[0].set_value(url + "none.avi").run()
        at.button[0].click().run()
    assert_no_exception(at)
    assert errors(at) == [
        f"no frame could be read from {url}none.avi (it ended, dropped or stayed silent at once); allowed: a "
        "rtsp://, rtsps://, rtmp://, http://, https:// stream that sends video frames"
    ]
    assert "Frames" not in metrics(at) and not at.get("plotly_chart")


def test_a_silent_stream_times_out_with_a_message(app):
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        at = open_page(app, "app_pages/video.py")
        at.text_input[0].set_value(f"http://127.0.0.1:{silent.getsockname()[1]}/live.mjpg").run()
        at.button[0].click().run()
    assert_no_exception(at)
    assert "could not be opened within" in errors(at)[0]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"http://127.0.0.1:{free_port()}/camera.mjpg", "could not be opened"),
        ("/etc/passwd", "is not a stream URL"),
        ("0", "is not a stream URL"),
        ("http://[::1/live.mjpg", "is malformed (Invalid IPv6 URL)"),
    ],
)
def test_unusable_stream_urls_show_an_error(app, url, message):
    at = open_page(app, "app_pages/video.py")
    at.text_input[0].set_value(url).run()
    at.button[0].click().run()
    assert_no_exception(at)
    assert message in errors(at)[0]


# --- Metrics -----------------------------------------------------------------------------------------
SHIPPED_RUNS = PROJECT_ROOT / "weights" / "runs"


def runs_of_every_group(at: AppTest) -> list[str]:
    """The runs each choice of *Compare runs with* lists, one group after another."""
    shown = []
    for option in at.radio[0].options:
        at.radio[0].set_value(option).run()
        assert_no_exception(at)
        shown += at.multiselect[0].value
    return shown


def test_metrics_page_shows_the_shipped_runs(app):
    shipped = [path.name for path in find_runs(SHIPPED_RUNS)]
    assert len(shipped) >= 2, f"expected the MobileNetV2 and CNN runs under {SHIPPED_RUNS}"
    at = open_page(app, "app_pages/metrics.py")
    assert not errors(at)
    shown = len(at.multiselect[0].value)
    # comparison + curves + the picked run's confusion matrix + a system chart per run of the group
    assert len(at.get("plotly_chart")) >= 3 + shown
    assert len(at.table) >= 3  # the comparison, the picked run's per-class and compliance figures
    served = plain(ui.load_model_card().run_name)  # as shown: markdown characters escaped
    assert any(served in caption.value for caption in at.caption)  # which run the app serves
    assert any(f"**{served}** ({plain('mobilenet_v2')}) · served" == m.value for m in at.markdown)
    assert sorted(runs_of_every_group(at)) == sorted(shipped)


def test_metrics_page_compares_only_runs_of_one_class_set_on_one_test_split(app):
    """The comparison table listed 2-class and 3-class runs together, each run's test accuracy on its
    own test faces: the 2-class MobileNetV2 read above the served 3-class model, and nothing said the
    figures were on other faces. Each group of runs now has the same classes and test split, and says
    which faces its figures are on; the served run's group opens first."""
    runs = {run.name: run for run in load_runs().runs}
    served = ui.load_model_card().run_name
    at = open_page(app, "app_pages/metrics.py")
    assert not errors(at)
    assert len(at.radio[0].options) >= 2  # the 2-class and 3-class runs apart
    assert served in at.multiselect[0].value
    for option in at.radio[0].options:
        at.radio[0].set_value(option).run()
        compared = [runs[name] for name in at.multiselect[0].value]
        (table,) = [table.value for table in at.table if "ROC AUC" in table.value.columns]
        names = [name.replace("\u200b", "").removesuffix(" (served)") for name in table["run"]]
        assert names == [run.name for run in compared]
        assert len({tuple(run.config["class_names"]) for run in compared}) == 1
        faces = {sum(m.support for m in run.metrics.per_class.values()) for run in compared}
        assert len(faces) == 1  # one test split: the same number of faces for each run
        (split,) = [c.value for c in at.caption if "this group's test split" in c.value]
        assert f"{faces.pop()} faces" in split
        assert all(plain(name) in split for name in compared[0].config["class_names"])


def test_the_metrics_page_names_runs_whose_metrics_json_does_not_say_what_it_measured(
    app, monkeypatch, tmp_path
):
    """Runs were grouped by config.json alone; a metrics.json without `source` (which faces its figures
    are on) was compared with no word. The page names such runs and what it takes them for (here a copy
    of a shipped run whose metrics.json has lost its `source`, as older runs' did)."""
    shipped = SHIPPED_RUNS / "cnn_3class"
    unsaid = tmp_path / "older-cnn"
    unsaid.mkdir()
    for name in (CONFIG_FILE, HISTORY_FILE):
        shutil.copy(shipped / name, unsaid / name)
    metrics = json.loads((shipped / METRICS_FILE).read_text())
    del metrics["source"]
    write_json(unsaid / METRICS_FILE, metrics)
    monkeypatch.setenv(RUN_DIRS_ENV, str(tmp_path))
    assert [run.name for run in load_runs().runs if run.metrics and run.metrics_source is None] == [
        "older-cnn"
    ]
    at = open_page(app, "app_pages/metrics.py")
    notes = []
    for option in at.radio[0].options:
        at.radio[0].set_value(option).run()
        shown = [i.value for i in at.info if "do not say which faces" in i.value or "does not" in i.value]
        assert bool(shown) == ("older-cnn" in at.multiselect[0].value)
        notes += shown
    assert notes and all("older-cnn" in note for note in notes)


def test_metrics_page_speaks_of_badly_worn_masks_only_for_runs_that_know_them(app):
    """The 2-class group's captions said a face is flagged for "no mask, or a mask worn badly", a class
    its runs do not have; the page's title read "Training runs" under a navigation entry "Metrics"."""
    at = open_page(app, "app_pages/metrics.py")
    assert not errors(at) and at.title[0].value == "Metrics"
    for option in at.radio[0].options:
        at.radio[0].set_value(option).run()
        (classes,) = {
            tuple(run.config["class_names"])
            for run in load_runs().runs
            if run.name in at.multiselect[0].value
        }
        flagged = [
            c.value
            for c in at.caption
            if "non-compliant faces (" in c.value or "flagged non-compliant (" in c.value
        ]
        assert flagged
        assert all(("worn badly" in text) == (WORN_INCORRECTLY in classes) for text in flagged)


def test_metrics_system_usage_opens_the_served_run(app):
    """The first run's section opened (cnn_3class), not the served model's; the served run's, else the
    first run with samples, opens now."""
    served = ui.load_model_card().run_name
    at = open_page(app, "app_pages/metrics.py")
    opened = [expander.label for expander in at.expander if expander.proto.expanded]
    runs = {run.name: run for run in load_runs().runs}
    expected = (
        served if runs[served].system else next(name for name in at.multiselect[0].value if runs[name].system)
    )
    assert opened == [plain(plots.shown_name(expected, served))]


def test_an_averaged_runs_system_usage_says_it_is_not_training(app):
    """The served run (averaged weights) showed 1.3 minutes at full CPU under "System usage during
    training", read as a model trained in 1.3 minutes: the samples are of `average-weights`."""
    runs = {run.name: run for run in load_runs().runs}
    served = ui.load_model_card().run_name
    assert runs[served].config.get("averaged_from") and runs[served].system
    at = open_page(app, "app_pages/metrics.py")
    (opened,) = [expander for expander in at.expander if expander.label == plain(f"{served} (served)")]
    assert any("samples are of `average-weights`" in caption.value for caption in opened.caption)
    trained = [e for e in at.expander if runs[e.label.replace("\\", "").removesuffix(" (served)")].history]
    assert trained and not any("average-weights" in c.value for e in trained for c in e.caption)


def test_metrics_threshold_starts_at_the_served_runs_threshold(app):
    """The slider and its 'Serve with it' command started at the first run's threshold (cnn: 0.50)
    while the app serves another run with its own (0.32): the page told people to serve at 0.50."""
    card = ui.load_model_card()
    runs = {run.name: run for run in load_runs().runs}
    served = runs[card.run_name]
    shipped = plots.decision_threshold(served.metrics)
    assert shipped is not None and runs[next(iter(runs))].name != served.name
    at = open_page(app, "app_pages/metrics.py")
    assert not errors(at)
    expected = plots.point_at(served.metrics.noncompliant_pr, shipped).threshold
    assert at.select_slider[0].value == pytest.approx(expected)
    assert any(f"--noncompliant-threshold {expected:.2f}" in caption.value for caption in at.caption)


def test_a_malformed_run_shows_an_error_for_that_run_only(app, monkeypatch, tmp_path):
    broken = tmp_path / "broken-run"
    broken.mkdir()
    (broken / CONFIG_FILE).write_text("{this is not json")
    odd = tmp_path / "odd-run"
    odd.mkdir()
    write_json(odd / CONFIG_FILE, {"model": "cnn"})
    (odd / HISTORY_FILE).write_text(
        '{"epoch": 1, "train_loss": NaN, "train_accuracy": 0.5, "val_loss": NaN, "val_accuracy": 0.5, '
        '"lr": 0.001, "seconds": 3}\nnot json at all\n{"epoch": 2}\n'
    )
    monkeypatch.setenv(RUN_DIRS_ENV, str(tmp_path))
    at = open_page(app, "app_pages/metrics.py")
    shown = errors(at)
    assert len(shown) == 1 and "broken-run" in shown[0] and "not valid JSON" in shown[0]
    at.radio[0].set_value(next(o for o in at.radio[0].options if o.startswith("0 classes"))).run()
    assert at.multiselect[0].value == ["odd-run"]  # no classes recorded: compared with no other run
    warnings = " ".join(w.value for w in at.warning)
    assert "history.jsonl line 2 skipped" in warnings and "metrics.json is missing" in warnings


def test_metrics_test_set_shows_one_run_at_full_width_picked_from_pills_and_tables_whole(app):
    """Three runs side by side gave each a third of the page: their tables hid columns (support, the
    per-data-set recalls) behind a scroll bar, seen in a browser at 1400 px. A tab per run then made a
    tab row wider than the page. One run is shown at a time, picked from pills (the served one first),
    and every table is a static one that wraps its headers and shows each row and column."""
    at = open_page(app, "app_pages/metrics.py")
    assert not errors(at)
    served = ui.load_model_card().run_name
    runs = [run for run in load_runs().runs if run.name in at.multiselect[0].value]
    picker = at.pills[0]
    assert picker.value == served  # shown as 'NAME (served)'
    assert picker.options == [plain(plots.shown_name(run.name, served)) for run in runs]  # shown as written
    assert len(at.dataframe) == 0  # no scrolling grid on this page
    (comparison,) = [table.value for table in at.table if "ROC AUC" in table.value.columns]
    names = [name.replace("\u200b", "").removesuffix(" (served)") for name in comparison["run"]]
    assert names == [run.name for run in runs] and len(comparison.columns) == 8
    for run in runs:  # its name, its confusion matrix and its per-class table
        at.pills[0].set_value(run.name).run()
        assert_no_exception(at)
        assert any(m.value.startswith(f"**{plain(run.name)}**") for m in at.markdown)
        heatmaps = [t for spec in chart_specs(at) for t in spec["data"] if t["type"] == "heatmap"]
        assert len(heatmaps) == 1 and heatmaps[0]["x"] == run.metrics.labels
        assert len([table for table in at.table if "support" in table.value.columns]) == 1
    at.pills[0].set_value(None).run()  # the picked pill clicked again: none picked
    assert any("Pick a run" in info.value for info in at.info)


def test_the_served_run_is_named_so_in_every_chart_and_table_of_the_metrics_page(app):
    """Only the comparison table marked the served run: the precision-recall chart's legend, the
    threshold table, the system charts and the *Runs* picker named it like any other run, and the
    2-class group's caption named the served 3-class run as if it were among them."""
    served = ui.load_model_card().run_name
    marked = f"{served} (served)"
    at = open_page(app, "app_pages/metrics.py")
    assert not errors(at)
    pr_lines = [t["name"] for spec in chart_specs(at) for t in spec["data"] if t.get("mode") == "lines"]
    assert marked in pr_lines and served not in pr_lines
    (thresholds,) = [table.value for table in at.table if "its own threshold" in table.value.columns]
    assert marked in list(thresholds["run"]) and served not in list(thresholds["run"])
    assert plain(marked) in [expander.label for expander in at.expander]
    assert plain(marked) in at.pills[0].options
    assert marked in at.multiselect[0].options and served in at.multiselect[0].value  # picked as named
    other = next(option for option in at.radio[0].options if served not in runs_of_group(at, option))
    at.radio[0].set_value(other).run()
    assert any("which is not in this group" in caption.value for caption in at.caption)
    assert not any(marked in str(value) for table in at.table for value in table.value.to_numpy().ravel())


def test_the_serve_command_of_a_group_without_the_served_run_names_its_weights(app):
    """The 2-class group's 'Serve with it' command named no weights: it ran the served 3-class model at
    the 2-class cnn's threshold (0.50). It now names the weights of the run whose threshold it gives."""
    served = ui.load_model_card().run_name
    runs = {run.name: run for run in load_runs().runs}
    at = open_page(app, "app_pages/metrics.py")
    (command,) = [c.value for c in at.caption if "--noncompliant-threshold" in c.value]
    assert "--weights" not in command and plain(served) in command  # the app's own weights
    other = next(option for option in at.radio[0].options if served not in runs_of_group(at, option))
    at.radio[0].set_value(other).run()
    (command,) = [c.value for c in at.caption if "--noncompliant-threshold" in c.value]
    first = runs[at.multiselect[0].value[0]]  # the run the slider starts from
    weights = first.path.relative_to(PROJECT_ROOT) / "model.pt"
    assert f"--weights {weights} --noncompliant-threshold {at.select_slider[0].value:.2f}`" in command


def test_the_threshold_and_serve_command_follow_the_run_picked_under_test_set(app):
    """The 2-class group's slider and 'Serve ... with it' command were always its first run's, cnn, the
    weaker model, whichever run the reader looked at: read as the page proposing cnn. They follow the
    run picked under Test set."""
    runs = {run.name: run for run in load_runs().runs}
    at = open_page(app, "app_pages/metrics.py")
    served = ui.load_model_card().run_name
    for option in at.radio[0].options:
        at.radio[0].set_value(option).run()
        for name in [n for n in at.multiselect[0].value if n != served]:
            at.pills[0].set_value(name).run()
            run = runs[name]
            expected = plots.point_at(
                run.metrics.noncompliant_pr, plots.decision_threshold(run.metrics) or 0.5
            )
            assert at.select_slider[0].value == pytest.approx(expected.threshold)
            (command,) = [c.value for c in at.caption if "--noncompliant-threshold" in c.value]
            weights = run.path.relative_to(PROJECT_ROOT) / "model.pt"
            assert command.startswith(f"Serve {plain(name)} (picked under *Test set*)")
            assert f"--weights {weights} --noncompliant-threshold {expected.threshold:.2f}`" in command


def test_the_group_of_runs_picked_stays_after_another_page(app):
    """Streamlit drops the state of a widget a page run does not draw: the 2-class group picked, a look
    at the Images page, and the Metrics page came back on the 3-class group."""
    at = open_page(app, "app_pages/metrics.py")
    picked = at.radio[0].options[1]
    at.radio[0].set_value(picked).run()
    shown = at.multiselect[0].value
    at.switch_page("app_pages/images.py").run()
    at.switch_page("app_pages/metrics.py").run()
    assert_no_exception(at)
    assert at.radio[0].value == picked and at.multiselect[0].value == shown


def test_the_runs_and_the_test_set_run_picked_stay_after_another_page(app):
    """Streamlit drops the state of a widget a page run does not draw: runs taken out of the comparison
    and the run picked for the test set came back all picked and the served run after a look at the
    Images page. Both stay now, each group keeping its own picks."""
    at = open_page(app, "app_pages/metrics.py")
    served = ui.load_model_card().run_name
    first_group, second_group = at.radio[0].options[:2]
    runs = at.multiselect[0].value
    kept = [name for name in runs if name != runs[0]][:2]
    at.multiselect[0].set_value(kept).run()
    inspected = next(name for name in kept if name != served)
    at.pills[0].set_value(inspected).run()
    at.radio[0].set_value(second_group).run()
    other_runs = at.multiselect[0].value
    at.multiselect[0].set_value(other_runs[:1]).run()
    at.radio[0].set_value(first_group).run()
    at.switch_page("app_pages/images.py").run()
    at.switch_page("app_pages/metrics.py").run()
    assert_no_exception(at)
    assert at.multiselect[0].value == kept and at.pills[0].value == inspected
    assert any(m.value.startswith(f"**{plain(inspected)}**") for m in at.markdown)
    at.radio[0].set_value(second_group).run()
    assert at.multiselect[0].value == other_runs[:1]
    assert at.pills[0].value == other_runs[0]  # the run picked is not in this group: its first


def test_the_metrics_pages_pickers_show_run_names_as_written(app, monkeypatch, tmp_path):
    """st.radio and st.pills draw their options as markdown: a run named `*bold*_run_` read as two words
    in italics among the *Test set* pills, one named with backticks as code, and a group measured on a
    folder named with _ around a word had that word in italics. They are escaped there now (st.multiselect
    draws text as it is: no escaping, or the backslashes would show)."""
    for name in ("*bold*_run_", "`tick`_x"):
        nearly_perfect_run(tmp_path, name)
    odd_folder = nearly_perfect_run(tmp_path, "odd-folder")
    metrics = json.loads((odd_folder / METRICS_FILE).read_text())
    metrics["source"]["data"] = "my_own_faces_"
    write_json(odd_folder / METRICS_FILE, metrics)
    monkeypatch.setenv(RUN_DIRS_ENV, str(tmp_path))
    at = open_page(app, "app_pages/metrics.py")
    # their group picked: the first whose runs include them
    assert any("*bold*_run_" in runs_of_group(at, option) for option in at.radio[0].options)
    assert {"*bold*_run_", "`tick`_x"} <= set(at.multiselect[0].options)  # as written, unescaped
    assert {plain("*bold*_run_"), plain("`tick`_x")} <= set(at.pills[0].options)
    assert any(plain("of my_own_faces_ only") in option for option in at.radio[0].options)
    assert all(option == plain(as_written(option)) for option in at.radio[0].options)


def test_the_precision_recall_chart_zooms_to_the_runs_in_contention_and_names_the_one_off_it(app):
    """In the 3-class group cnn_3class (down to 0.59) began both axes at 0.5, and the good runs, all
    above 0.94 where they ship, crowded one corner. The axes now start below the curves of the served
    run and those near the best, cnn_3class's curve runs off below them, named in a caption and its
    legend entry; *Every curve whole* shows it whole."""
    runs = {run.name: run for run in load_runs().runs}
    served = ui.load_model_card().run_name
    at = open_page(app, "app_pages/metrics.py")
    assert "cnn_3class" in at.multiselect[0].value and served in at.multiselect[0].value
    weak = plots.point_at(runs["cnn_3class"].metrics.noncompliant_pr, 0.5)

    def pr_axis() -> tuple[float, list[str]]:
        (spec,) = [s for s in chart_specs(at) if "non-compliant precision" in json.dumps(s["layout"])]
        return spec["layout"]["yaxis"]["range"][0], [t["name"] for t in spec["data"] if t["mode"] == "lines"]

    floor, names = pr_axis()
    assert weak.recall > floor or (weak.precision or 0) > floor  # its figures still named in the table
    assert min(runs["cnn_3class"].metrics.noncompliant_pr.precision) < floor  # its curve runs off
    curve = runs[served].metrics.noncompliant_pr
    assert min(*curve.recall, *curve.precision) >= floor  # the served run's whole curve in view
    assert f"cnn_3class (runs off below {floor:g})" in names
    assert any("cnn" in c.value and f"runs off below {floor:g}" in c.value for c in at.caption)
    at.toggle(key="metrics_pr_whole_" + as_written(at.radio[0].value)).set_value(True).run()
    whole_floor, names = pr_axis()
    assert whole_floor < floor and "cnn_3class" in names
    assert not any("runs off below" in c.value for c in at.caption)


def runs_of_group(at: AppTest, option: str) -> list[str]:
    at.radio[0].set_value(as_written(option)).run()
    return at.multiselect[0].value


def as_written(shown: str) -> str:
    """A radio's or pill's option as the page gave it: AppTest lists the text drawn, escaped (`plain`)."""
    return re.sub(r"\\(.)", r"\1", shown)


def shown_cells(table) -> pd.DataFrame:
    """A st.table's cells as the browser shows them (its styler's display values), all text."""
    return pa.ipc.open_stream(table.proto.arrow_data.styler.display_values).read_pandas()


def test_every_figure_of_the_metrics_page_reads_to_three_decimals(app):
    """The comparison read 0.976 and 0.96, the per-class and threshold tables 0.9759 and 0.9629: the
    same score at two precisions, and 0.97 beside 0.9759; the threshold slider read 0.5 above a table of
    0.50. Scores now read to three decimals everywhere, thresholds to two, counts whole."""
    at = open_page(app, "app_pages/metrics.py")
    decimals = {}
    for table in at.table:
        for column, cells in shown_cells(table).items():
            for cell in cells:
                if re.fullmatch(r"-?\d+\.\d+", cell):
                    decimals.setdefault(len(cell.split(".")[1]), set()).add(column)
    assert set(decimals) == {2, 3} and decimals[2] == {"threshold", "its own threshold"}
    for option in at.radio[0].options:  # the slider above the thresholds' table too: 0.50, not 0.5
        at.radio[0].set_value(option).run()
        assert all(re.fullmatch(r"0\.\d\d", text) for text in at.select_slider[0].options)
    assert {"test acc.", "precision", "value", "accuracy", "non-compliant recall"} <= decimals[3]
    faces = [cell for table in at.table for cell in shown_cells(table).get("faces", [])]
    assert faces and all(re.fullmatch(r"\d*", cell) for cell in faces)  # 871, not 871.000


def hover_texts(trace: dict) -> list[str]:
    """What plotly.js writes on hovering each point of a trace: its hovertemplate with each %{field} or
    %{field:format} filled in (d3's '.3f' and '.1%' write as Python's do)."""
    template = trace.get("hovertemplate")
    if not template:
        return []
    x, y, z = trace.get("x"), trace.get("y"), trace.get("z")
    points = (
        [(i, j) for i in range(len(z)) for j in range(len(z[i]))]
        if z is not None
        else [(i,) for i in range(len(x))]
    )

    def field(point, name: str):
        if len(point) == 2:  # a heatmap's cell: row i (y), column j (x)
            i, j = point
            values = {"x": x[j], "y": y[i], "z": z[i][j]}
            per_point = {k: trace[k][i][j] for k in ("customdata", "text") if trace.get(k) is not None}
        else:
            (i,) = point
            values = {"x": x[i], "y": y[i]}
            per_point = {k: trace[k][i] for k in ("customdata", "text") if trace.get(k) is not None}
        values.update(per_point)
        base, _, index = name.partition("[")
        value = values[base]
        return value[int(index.rstrip("]"))] if index else value

    def fill(point) -> str:
        return re.sub(
            r"%\{([^}:]+)(?::([^}]*))?\}",
            lambda m: format(field(point, m[1]), m[2]) if m[2] else str(field(point, m[1])),
            template,
        )

    return [fill(point) for point in points]


def test_every_chart_of_the_metrics_page_hovers_its_figures_as_the_tables_write_them(
    app, monkeypatch, tmp_path
):
    """The tables and the bars read >0.999 for a score just below 1, but hovering the charts read 1.000
    (plotly's own '.3f'), and the confusion matrix 100.0% and 0.0% for one face of 2500: a model that
    misses faces hovered as perfect. Every chart's hover now writes figures by the tables' rule."""
    nearly_perfect_run(tmp_path)
    monkeypatch.setenv(RUN_DIRS_ENV, str(tmp_path))
    at = open_page(app, "app_pages/metrics.py")
    group = next(option for option in at.radio[0].options if "nearly-perfect" in runs_of_group(at, option))
    at.radio[0].set_value(as_written(group)).run()
    at.multiselect[0].set_value(["nearly-perfect"]).run()
    assert_no_exception(at)
    specs = chart_specs(at)
    assert len(specs) == 5  # comparison, training curves, confusion matrix, precision-recall, system usage
    hovers = [text for spec in specs for trace in spec["data"] for text in hover_texts(trace)]
    assert any(">0.999" in text for text in hovers) and any(">99.9%" in text for text in hovers)
    assert any("<0.1%" in text for text in hovers) and any("<0.001" in text for text in hovers)
    rounded = [text for text in hovers if re.search(r"\b1\.000\b|\b100(\.0)?%|\b0\.0%|\b0\.000\b", text)]
    assert rounded == []


def test_the_metrics_page_spells_precision_recall_and_f1_one_way(app):
    """The per-class table was headed "f1" beside the comparison's "macro F1". Every header and chart
    title now writes F1 in capitals and precision and recall in small letters, for every run shown."""
    at = open_page(app, "app_pages/metrics.py")
    texts = []
    for option in at.radio[0].options:
        at.radio[0].set_value(option).run()
        for name in at.multiselect[0].value:  # each run of the Test set's pills
            at.pills[0].set_value(name).run()
            assert_no_exception(at)
            texts += [str(column) for table in at.table for column in table.value.columns]
            texts += [str(value) for table in at.table for value in table.value.to_numpy().ravel()]
            texts += re.findall(
                r'"text": "([^"]*)"', " ".join(chart.proto.spec for chart in at.get("plotly_chart"))
            )
    assert "F1" in texts and "macro F1" in texts
    assert set(re.findall(r"\bf1\b", " | ".join(texts), flags=re.IGNORECASE)) == {"F1"}
    words = set(re.findall(r"\b(?:precision|recall)\b", " | ".join(texts), flags=re.IGNORECASE))
    assert words == {"precision", "recall"}


def chart_specs(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def test_metrics_page_shows_3x3_confusion_per_class_and_the_precision_recall_curve(
    app, monkeypatch, tiny_three_class_weights
):
    run_dir = tiny_three_class_weights.parent  # trained by this code: its metrics.json has the curve
    monkeypatch.setenv(RUN_DIRS_ENV, str(run_dir.parent))
    at = open_page(app, "app_pages/metrics.py")
    assert not errors(at)
    assert {run_dir.name, "mobilenet_v2", "cnn"} <= set(runs_of_every_group(at))
    # its own group: the same classes as the shipped 3-class runs, tested on other faces
    at.radio[0].set_value(next(o for o in at.radio[0].options if "face-mask-ilc (" in o)).run()
    assert at.multiselect[0].value == [run_dir.name]
    class_columns = [list(frame.value["class"]) for frame in at.table if "class" in frame.value.columns]
    assert [*CLASS_NAMES, "macro average"] in class_columns  # the three class rows
    heatmaps = [trace for spec in chart_specs(at) for trace in spec["data"] if trace["type"] == "heatmap"]
    assert [len(trace["x"]) for trace in heatmaps] == [3]
    curves = [
        trace
        for spec in chart_specs(at)
        for trace in spec["data"]
        if trace.get("name", "").endswith("its threshold") or trace.get("customdata") is not None
    ]
    assert any(trace.get("name") == run_dir.name for trace in curves)  # its precision-recall curve
    assert any(trace.get("name") == f"{run_dir.name}: its threshold" for trace in curves)  # its threshold
    compliance = [frame.value for frame in at.table if "figure" in frame.value.columns]
    assert compliance and "non-compliant recall" in list(compliance[0]["figure"])
    at.select_slider[0].set_value(0.1).run()  # a site that must not miss anyone considers 0.1
    assert_no_exception(at)
    (table,) = [frame.value for frame in at.table if "its own threshold" in frame.value.columns]
    assert run_dir.name in list(table["run"]) and set(table["threshold"]) == {0.1}


# --- three classes: counts, colours, the non-compliant threshold, 2-class checkpoints ---------------
CLASS_METRICS = ("Mask", "Mask worn incorrectly", "No mask", "Compliance")
# A street photo with one face of each class at 41 px or more (2 masked, 1 badly worn, 1 unmasked).
THREE_CLASS_PHOTO = DEV / "images" / "maksssksksss387.png"


def class_counts(shown: dict[str, str]) -> dict[str, int]:
    return {name: int(shown[LABEL_STYLES[name].caption]) for name in CLASS_NAMES}


def assert_legend(at: AppTest) -> None:
    """The colour legend: each class's caption on its box colour."""
    (legend,) = [m.value for m in at.markdown if m.value.startswith("Box colours")]
    for name in CLASS_NAMES:
        style = LABEL_STYLES[name]
        assert f"background:{style.hex}" in legend and style.caption in legend
    assert legend.index("#00c800") < legend.index("#ffbf00") < legend.index("#ff0000")  # green amber red


def blank_pictures() -> list[np.ndarray]:
    """Pictures with no face: black, grey, white and random noise, at a webcam's size and a square one."""
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    flat = [
        np.full((height, width, 3), level, np.uint8)
        for level in (0, 128, 255)
        for width, height in ((640, 480), (300, 300))
    ]
    return [*flat, noise, np.ascontiguousarray(noise[:300, :300])]


def test_the_face_threshold_slider_stops_where_a_blank_picture_has_no_face(app):
    """res10 at the slider's old floor, 0.05, found about a hundred faces on a plain grey picture."""
    at = open_page(app, "app_pages/images.py")
    for name in DETECTOR_NAMES:
        (detector_box,) = [box for box in at.sidebar.selectbox if box.label == "Face detector"]
        detector_box.set_value(name).run()
        face_threshold_slider(at).set_value(face_threshold_slider(at).min).run()
        assert_no_exception(at)
        lowest = face_threshold_slider(at).value
        detector = create_detector(name, lowest)
        found = {
            i: len(faces) for i, picture in enumerate(blank_pictures()) if (faces := detector.detect(picture))
        }
        assert found == {}, f"{name} at {lowest}: faces in blank pictures {found}"
        assert detector.detect(dev_photo()) and lowest <= DETECTOR_THRESHOLDS[name]  # faces still found


def face_threshold_slider(at: AppTest):
    (slider,) = [s for s in at.sidebar.slider if s.label == "Face confidence threshold"]
    return slider


def threshold_slider(at: AppTest):
    (slider,) = [s for s in at.sidebar.slider if s.label == "Non-compliant threshold"]
    return slider


@pytest.fixture
def three_class_app(app, monkeypatch, three_class_weights) -> AppTest:
    monkeypatch.setenv(ui.WEIGHTS_ENV, str(three_class_weights))
    return app


def test_images_page_shows_three_counts_the_legend_and_the_checkpoints_threshold(
    three_class_app, three_class_weights
):
    at = open_page(three_class_app, "app_pages/images.py")
    at.file_uploader[0].set_value(("street.png", THREE_CLASS_PHOTO.read_bytes(), "image/png")).run()
    assert_no_exception(at)
    assert not errors(at)
    shown = metrics(at)
    assert set(CLASS_METRICS) <= set(shown)
    counts = class_counts(shown)
    assert sum(counts.values()) == int(shown["Faces"]) >= 3
    assert shown["Compliance"] == f"{counts['with_mask'] / int(shown['Faces']):.0%}"
    assert set(at.dataframe[0].value[VERDICT_COLUMN]) <= {style.caption for style in LABEL_STYLES.values()}
    assert_legend(at)
    default = ui.model_card(
        str(three_class_weights), three_class_weights.stat().st_mtime
    ).noncompliant_threshold
    assert default is not None and threshold_slider(at).value == pytest.approx(round(default, 2))
    assert any(f"Checkpoint default: {default:.2f}" in c.value for c in at.sidebar.caption)


def test_a_lower_non_compliant_threshold_flags_more_faces_on_the_images_page(three_class_app):
    at = open_page(three_class_app, "app_pages/images.py")
    at.file_uploader[0].set_value(("street.png", THREE_CLASS_PHOTO.read_bytes(), "image/png")).run()
    at_default = class_counts(metrics(at))
    threshold_slider(at).set_value(0.01).run()
    assert_no_exception(at)
    strict = class_counts(metrics(at))
    assert sum(strict.values()) == sum(at_default.values())  # the same faces, judged more strictly
    assert strict["with_mask"] <= at_default["with_mask"]
    threshold_slider(at).set_value(0.99).run()
    lenient = class_counts(metrics(at))
    assert lenient["with_mask"] >= at_default["with_mask"] >= strict["with_mask"]


def test_the_non_compliant_threshold_set_on_one_page_stays_on_every_page(app):
    at = open_page(app, "app_pages/images.py")
    threshold_slider(at).set_value(0.2).run()
    for page in ("app_pages/video.py", "app_pages/live.py", "app_pages/home.py", "app_pages/images.py"):
        at.switch_page(page).run()
        assert_no_exception(at)
        if page != "app_pages/home.py":  # (it came back at 0.01, the slider's minimum, before)
            assert threshold_slider(at).value == pytest.approx(0.2), page
    threshold_slider(at).set_value(0.6).run()  # an edit on a page after the switches is kept too
    at.switch_page("app_pages/video.py").run()
    assert threshold_slider(at).value == pytest.approx(0.6)


@pytest.mark.parametrize("page", ["app_pages/video.py", "app_pages/live.py"])
def test_follow_people_switched_off_stays_off_after_another_page(app, page):
    at = open_page(app, page)
    (follow,) = [t for t in at.sidebar.toggle if t.label == "Follow people"]
    follow.set_value(False).run()
    at.switch_page("app_pages/images.py").run()
    at.switch_page(page).run()
    assert_no_exception(at)
    (follow,) = [t for t in at.sidebar.toggle if t.label == "Follow people"]
    assert follow.value is False  # it came back on: people tracked and logged again without a word


def sidebar_config_script():
    """A page drawing only the pipeline settings, and the config they give."""
    import streamlit as st

    from maskapp.app import ui

    config = ui.pipeline_sidebar()
    st.text(f"noncompliant_threshold={config.noncompliant_threshold}")


def test_the_threshold_slider_flows_into_the_inference_config(monkeypatch, three_class_weights):
    monkeypatch.setenv(ui.WEIGHTS_ENV, str(three_class_weights))
    at = AppTest.from_function(sidebar_config_script, default_timeout=APP_TIMEOUT).run()
    assert_no_exception(at)
    assert at.text[0].value == "noncompliant_threshold=None"  # the checkpoint's own rule
    threshold_slider(at).set_value(0.2).run()
    assert at.text[0].value == "noncompliant_threshold=0.2"


def test_live_page_has_the_legend_threshold_and_non_compliant_alert_delay(three_class_app):
    at = open_page(three_class_app, "app_pages/live.py")
    assert not errors(at)
    assert_legend(at)
    assert threshold_slider(at).value > 0
    assert any(s.label == "Alert after this many frames with a non-compliant face" for s in at.sidebar.slider)


def test_uploaded_video_shows_the_three_counts_over_all_frames(three_class_app, tmp_path):
    video = webcam_video(tmp_path / "clip.avi", frames=4)
    at = open_page(three_class_app, "app_pages/video.py")
    at.file_uploader[0].set_value(("clip.avi", video.read_bytes(), "video/x-msvideo")).run()
    assert_no_exception(at)
    assert not errors(at)
    shown = metrics(at)
    assert shown["Frames"] == "4" and set(CLASS_METRICS) <= set(shown)
    assert sum(class_counts(shown).values()) == int(shown["Faces seen"]) >= 4
    assert_legend(at)
    face_frames = at.get("plotly_chart")[-1]  # below the people's chart
    names = [trace["name"] for trace in json.loads(face_frames.proto.spec)["data"]]
    assert names == ["Mask", "Mask worn incorrectly", "No mask", "compliance"]


def test_home_shows_the_three_classes_and_the_threshold(three_class_app, three_class_weights):
    at = three_class_app.run()
    assert_no_exception(at)
    assert_legend(at)
    default = ui.model_card(
        str(three_class_weights), three_class_weights.stat().st_mtime
    ).noncompliant_threshold
    assert metrics(at)["Non-compliant threshold"] == f"{default:.2f}"
    assert any("`mask_worn_incorrectly`" in m.value for m in at.markdown if m.value.startswith("Classes"))


def test_a_two_class_checkpoint_still_runs_every_page(app, monkeypatch, tmp_path):
    monkeypatch.setenv(ui.WEIGHTS_ENV, str(TWO_CLASS_WEIGHTS))
    at = app.run()
    assert_no_exception(at)
    assert metrics(at)["Non-compliant threshold"] == "none"  # the likeliest class wins
    at.switch_page("app_pages/images.py").run()
    at.file_uploader[0].set_value(("street.png", STREET_PHOTO.read_bytes(), "image/png")).run()
    assert_no_exception(at)
    assert not errors(at)
    assert threshold_slider(at).value == 0.5
    assert any("has no threshold" in c.value for c in at.sidebar.caption)
    shown = metrics(at)
    assert shown["Mask worn incorrectly"] == "0"  # a class the model does not have
    assert int(shown["Mask"]) + int(shown["No mask"]) == int(shown["Faces"]) >= 2
    at.switch_page("app_pages/video.py").run()
    video = webcam_video(tmp_path / "clip.avi", frames=3)
    at.file_uploader[0].set_value(("clip.avi", video.read_bytes(), "video/x-msvideo")).run()
    assert_no_exception(at)
    assert not errors(at) and metrics(at)["Frames"] == "3"
    at.switch_page("app_pages/live.py").run()
    assert_no_exception(at)
    assert not errors(at)


def test_the_live_pages_mute_and_alert_delay_stay_after_another_page(app):
    """Muted, the alert delay moved: a visit to another page brought them back unmuted (the next person
    chimed) and at 10 frames."""
    at = open_page(app, "app_pages/live.py")
    (follow,) = [t for t in at.sidebar.toggle if t.label == "Follow people"]
    follow.set_value(False).run()  # the alert delay is the frame alert's
    (mute,) = [t for t in at.sidebar.toggle if t.label == "Mute the sound"]
    mute.set_value(True).run()
    (delay,) = [s for s in at.sidebar.slider if s.label.startswith("Alert after")]
    delay.set_value(25).run()
    at.switch_page("app_pages/images.py").run()
    at.switch_page("app_pages/live.py").run()
    assert_no_exception(at)
    (mute,) = [t for t in at.sidebar.toggle if t.label == "Mute the sound"]
    (delay,) = [s for s in at.sidebar.slider if s.label.startswith("Alert after")]
    assert (mute.value, delay.value) == (True, 25)


def test_the_live_pages_greyed_alert_delay_says_why(app):
    """*Follow people* on (the default) greys the alert delay out: the reason sat behind the slider's "?",
    and a demo moving the delay found a slider that did nothing and no word why."""
    at = open_page(app, "app_pages/live.py")
    (delay,) = [s for s in at.sidebar.slider if s.label.startswith("Alert after")]
    assert delay.disabled
    assert [c for c in at.sidebar.caption if c.value.startswith("Off while *Follow people* is on")]
    (follow,) = [t for t in at.sidebar.toggle if t.label == "Follow people"]
    follow.set_value(False).run()
    (delay,) = [s for s in at.sidebar.slider if s.label.startswith("Alert after")]
    assert not delay.disabled
    assert not [c for c in at.sidebar.caption if c.value.startswith("Off while *Follow people* is on")]


def test_every_move_of_the_face_threshold_and_detector_counts(app):
    """The face threshold slider and the detector box were drawn with the last remembered value as their
    default, so each move gave them a new identity and Streamlit dropped the next move: a slider moved
    from 0.40 to 0.35 and back stayed at 0.35, and a second detector picked was ignored."""
    at = open_page(app, "app_pages/images.py")
    for value in (0.35, 0.45, 0.5):
        face_threshold_slider(at).set_value(value).run()
        assert_no_exception(at)
        assert face_threshold_slider(at).value == pytest.approx(value)
    for name in ("res10", "centerface-fast", "centerface"):
        (detector_box,) = [box for box in at.sidebar.selectbox if box.label == "Face detector"]
        detector_box.set_value(name).run()
        assert_no_exception(at)
        (detector_box,) = [box for box in at.sidebar.selectbox if box.label == "Face detector"]
        assert detector_box.value == name
    at.switch_page("app_pages/home.py").run()
    at.switch_page("app_pages/images.py").run()
    assert face_threshold_slider(at).value == pytest.approx(0.5)


def analysed_photos(caplog) -> list[str]:
    """The photos analyze_image ran on since the log was last cleared."""
    return [r.getMessage().split(":")[0] for r in caplog.records if r.name == "maskapp.app.analysis"]


def test_photos_are_not_analysed_again_by_a_click_that_changes_nothing_for_them(app, caplog):
    """Every click ran the page and analysed every photo again: with four phone photos and faces
    blurred, a visit to another page and back took seconds, for the same pictures. A photo is analysed
    again only when a setting it depends on changes."""
    caplog.set_level("INFO", logger="maskapp.app.analysis")
    at = open_page(app, "app_pages/images.py")
    photos = [
        ("street.png", STREET_PHOTO.read_bytes(), "image/png"),
        ("broken.png", b"not a photo", "image/png"),
    ]
    at.file_uploader[0].set_value(photos).run()
    assert analysed_photos(caplog) == ["analysed street.png"]
    faces, errors = metrics(at)["Faces"], [e.value for e in at.error]
    caplog.clear()
    at.switch_page("app_pages/home.py").run()
    at.switch_page("app_pages/images.py").run()
    assert_no_exception(at)
    assert analysed_photos(caplog) == []
    assert metrics(at)["Faces"] == faces and [e.value for e in at.error] == errors  # the same results shown
    (hide,) = [box for box in at.sidebar.selectbox if box.label == "Hide faces"]
    hide.set_value("blur").run()
    assert analysed_photos(caplog) == ["analysed street.png"]  # a setting that changes the picture
    face_threshold_slider(at).set_value(0.6).run()
    assert analysed_photos(caplog) == ["analysed street.png"] * 2


def test_home_says_the_non_compliant_threshold_set_on_the_pages(app):
    """Home showed the checkpoint's threshold, 0.32, while every page flagged faces at the reader's 0.60."""
    at = open_page(app, "app_pages/images.py")
    default = threshold_slider(at).value
    threshold_slider(at).set_value(0.6).run()
    at.switch_page("app_pages/home.py").run()
    assert_no_exception(at)
    (threshold,) = [m for m in at.metric if m.label == "Non-compliant threshold"]
    assert threshold.value == f"{default:.2f}" and threshold.delta == "0.60 set on the pages"
    at.switch_page("app_pages/images.py").run()
    threshold_slider(at).set_value(default).run()  # back at the checkpoint's: nothing to say
    at.switch_page("app_pages/home.py").run()
    (threshold,) = [m for m in at.metric if m.label == "Non-compliant threshold"]
    assert not threshold.delta


def test_several_photos_get_the_figures_of_all_of_them_as_detect_prints_them(app, tmp_path):
    """`detect` on three crowd photos printed 'all 3 images: 36 faces, ... compliance 31%'; the page showed
    each photo's figures and none of all of them together, nor a JSON of them all."""
    photos = [DEV / "images" / f"maksssksksss{n}.png" for n in (156, 223, 250)]  # with badly worn masks
    at = open_page(app, "app_pages/images.py")
    at.file_uploader[0].set_value([(p.name, p.read_bytes(), "image/png") for p in photos]).run()
    assert_no_exception(at)
    assert at.subheader[0].value == "All 3 photos"
    done = run_cli("detect", *map(str, photos), "--json", str(tmp_path / "cli.json"))
    assert done.returncode == 0, done.stderr
    total = json.loads((tmp_path / "cli.json").read_text())["total"]
    assert total["mask_worn_incorrectly"] > 0
    overall = {m.label: m.value for m in at.metric[:5]}  # the first row: all photos
    assert overall == {
        "Faces": str(total["faces"]),
        "Mask": str(total["with_mask"]),
        "Mask worn incorrectly": str(total["mask_worn_incorrectly"]),
        "No mask": str(total["without_mask"]),
        "Compliance": f"{total['compliance']:.0%}",
    }
    assert ("Download JSON of all photos", True) in [
        (b.label, b.proto.ignore_rerun) for b in at.download_button
    ]


def test_the_json_of_several_photos_is_the_json_detect_writes(pipeline, tmp_path):
    photos = [DEV / "images" / f"maksssksksss{n}.png" for n in (156, 250)]
    analyses = [analyze_image(pipeline, p.read_bytes(), p.name) for p in photos]
    done = run_cli("detect", *map(str, photos), "--json", str(tmp_path / "cli.json"))
    assert done.returncode == 0, done.stderr
    cli = json.loads((tmp_path / "cli.json").read_text())
    page = json.loads(json.dumps(detection_json(analyses)))
    assert page["total"] == cli["total"] and page["summary"] == cli["summary"]
    assert page.keys() == cli.keys() and page["images"].keys() == cli["images"].keys()


def test_the_json_of_two_uploads_of_one_name_keeps_both(pipeline):
    """Two phones' IMG_0001.png uploaded together: the JSON kept one photo under that name while its
    total counted the faces of both."""
    photos = [DEV / "images" / f"maksssksksss{n}.png" for n in (156, 250)]
    analyses = [analyze_image(pipeline, p.read_bytes(), "IMG_0001.png") for p in photos]
    page = detection_json(analyses)
    assert list(page["images"]) == ["IMG_0001.png", "IMG_0001.png (2)"] == list(page["summary"])
    faces = [len(entry) for entry in page["images"].values()]
    assert faces == [len(a.result.faces) for a in analyses] and sum(faces) == page["total"]["faces"]


def test_moving_the_non_compliant_threshold_loads_no_model_again(app, caplog):
    """Each step of the Non-compliant threshold slider loaded the detector and the classifier again
    (seconds of 'Loading the face detector and the mask classifier…'): only the decision rule changes."""
    caplog.set_level("INFO", logger="maskapp.app.ui")
    at = open_page(app, "app_pages/images.py")
    crowd = DEV / "images" / "maksssksksss156.png"
    at.file_uploader[0].set_value((crowd.name, crowd.read_bytes(), "image/png")).run()
    caplog.clear()
    counts = {}
    for value in (0.97, 0.03):  # values no other test sets: their pipelines are not cached yet
        threshold_slider(at).set_value(value).run()
        assert_no_exception(at)
        counts[value] = metrics(at)
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("loading ")] == []
    assert counts[0.97]["Faces"] == counts[0.03]["Faces"]
    assert int(counts[0.97]["Mask"]) > int(counts[0.03]["Mask"])  # the rule each one set


def test_home_says_what_hide_faces_does(app):
    """Home said *Hide faces* blanks every face, while one of its two choices blurs them (recognition
    models can partly undo a blur): a promise the sidebar did not keep."""
    at = app.run()
    assert_no_exception(at)
    (hide_faces,) = [m.value for m in at.markdown if "*Hide faces*" in m.value]
    assert "blurs or fills every face" in hide_faces and "blanks" not in hide_faces
    at.switch_page("app_pages/images.py").run()
    (hide,) = [box for box in at.sidebar.selectbox if box.label == "Hide faces"]
    assert {ui.ANONYMIZE_LABELS["blur"], ui.ANONYMIZE_LABELS["fill"]} <= set(hide.options)


def test_home_names_the_pages_whose_sidebar_has_hide_faces(app):
    """Home put *Hide faces* in each page's sidebar, while the Compliance log and Metrics pages have none."""
    at = app.run()
    assert_no_exception(at)
    (intro,) = [m.value for m in at.markdown if "*Hide faces*" in m.value]
    where = re.search(r"\*Hide faces\* \(([^)]*)\)", intro).group(1)
    pages = {"Images": "images", "Live": "live", "Video": "video", "Compliance log": "compliance_log"}
    pages |= {"Metrics": "metrics"}
    for name, page in pages.items():
        at.switch_page(f"app_pages/{page}.py").run()
        has_it = any(box.label == "Hide faces" for box in at.sidebar.selectbox)
        assert has_it == (name in where), (name, where)


def test_moving_the_face_threshold_loads_no_model_again(app, caplog):
    """Each step of the Face confidence threshold slider loaded the detector and the classifier again
    (about 1 s of 'Loading the face detector and the mask classifier…'): only the cut-off changes, and the
    page finds the faces a detector built at that threshold finds."""
    caplog.set_level("INFO", logger="maskapp.app.ui")
    at = open_page(app, "app_pages/images.py")
    crowd = DEV / "images" / "maksssksksss156.png"
    at.file_uploader[0].set_value((crowd.name, crowd.read_bytes(), "image/png")).run()
    caplog.clear()
    faces = {}
    for value in (0.85, 0.15):  # values no other test sets: their pipelines are not cached yet
        face_threshold_slider(at).set_value(value).run()
        assert_no_exception(at)
        faces[value] = int(metrics(at)["Faces"])
    threshold_slider(at).set_value(0.8).run()  # with a non-compliant threshold of its own too
    face_threshold_slider(at).set_value(0.25).run()
    assert_no_exception(at)
    faces[0.25] = int(metrics(at)["Faces"])
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("loading ")] == []
    photo = dev_photo(crowd.stem)
    assert faces == {value: len(create_detector("centerface", value).detect(photo)) for value in faces}
    assert faces[0.15] > faces[0.85]  # the threshold each one set


def count_model_loads(monkeypatch) -> dict[str, list[str]]:
    """Every detector and classifier built from here on, by name and by weights (the real ones load)."""
    from maskapp.vision import detect
    from maskapp.vision.classify import MaskClassifier

    loads: dict[str, list[str]] = {"detectors": [], "classifiers": []}
    for name, build in list(detect.DETECTORS.items()):

        def counted(*args, name=name, build=build, **options):
            loads["detectors"].append(name)
            return build(*args, **options)

        monkeypatch.setitem(detect.DETECTORS, name, counted)
    from_checkpoint = MaskClassifier.from_checkpoint.__func__

    def counted_checkpoint(cls, path=ui.DEFAULT_WEIGHTS, *args, **options):
        loads["classifiers"].append(str(path))
        return from_checkpoint(cls, path, *args, **options)

    monkeypatch.setattr(MaskClassifier, "from_checkpoint", classmethod(counted_checkpoint))
    return loads


def test_another_face_detector_loads_the_detector_alone_and_other_weights_the_classifier(app, monkeypatch):
    """The detector and the classifier were cached as one pipeline: a change of *Face detector* in the
    sidebar exported and loaded the classifier again too (seconds each time), and other weights the
    detector. Each is now loaded on its own, and the page finds the faces the new detector finds."""
    at = open_page(app, "app_pages/images.py")
    crowd = DEV / "images" / "maksssksksss156.png"
    at.file_uploader[0].set_value((crowd.name, crowd.read_bytes(), "image/png")).run()
    assert_no_exception(at)
    loads = count_model_loads(monkeypatch)
    for name in DETECTOR_NAMES[::-1]:  # the default last: back to the first one
        (box,) = [b for b in at.sidebar.selectbox if b.label == "Face detector"]
        box.set_value(name).run()
        assert_no_exception(at)
        assert int(metrics(at)["Faces"]) == len(create_detector(name).detect(dev_photo(crowd.stem)))
    assert loads["classifiers"] == []
    loads["detectors"].clear()
    monkeypatch.setenv(ui.WEIGHTS_ENV, str(TWO_CLASS_WEIGHTS))
    at.run()
    assert_no_exception(at)
    assert loads["detectors"] == []
    assert metrics(at)["Mask worn incorrectly"] == "0"  # the 2-class classifier served
