"""Every page through streamlit.testing's AppTest: the shipped model, real photo and video bytes, the
shipped training runs, and the error paths (broken uploads, missing weights, malformed runs, bad
streams). A page may show st.error; it must never raise."""

from __future__ import annotations

import functools
import http.server
import io
import json
import socket
import struct
import threading
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import streamlit_webrtc.component
from PIL import Image
from streamlit.testing.v1 import AppTest

from maskapp import PROJECT_ROOT
from maskapp.app import samples, ui
from maskapp.app.analysis import analyze_image, detection_json
from maskapp.app.live import alert_wav
from maskapp.config import LIVE_DETECTOR, InferenceConfig
from maskapp.media.images import DEFAULT_MAX_BYTES
from maskapp.training.runs import CONFIG_FILE, HISTORY_FILE, RUN_DIRS_ENV, find_runs, write_json
from tests.conftest import DEV, TWELVE_K, TWO_CLASS, free_port, letterbox

APP = PROJECT_ROOT / "streamlit_app.py"
TIMEOUT = 300  # first runs load the models on a busy 2-core machine
STREET_PHOTO = DEV / "images" / "maksssksksss0.png"
ONE_FACE_PHOTO = DEV / "images" / "maksssksksss609.png"
FACE_CROPS = TWELVE_K / "test" / "without_mask"
MASKED_PHOTOS = TWO_CLASS / "with_mask"


@pytest.fixture
def app(monkeypatch) -> AppTest:
    for name in (ui.ICE_SERVERS_ENV, RUN_DIRS_ENV):
        monkeypatch.delenv(name, raising=False)
    # AppTest runs pages against a stand-in Runtime without the session manager that streamlit-webrtc
    # looks up; answer as outside a live server (its own fallback). The browser test runs the real one.
    monkeypatch.setattr(streamlit_webrtc.component, "get_this_session_info", lambda: None)
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def open_page(at: AppTest, page: str) -> AppTest:
    at.run()
    at.switch_page(page).run()
    assert_no_exception(at)
    return at


def assert_no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


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
    at = app.run()
    assert_no_exception(at)
    shown = metrics(at)
    assert shown["Architecture"] in {"mobilenet_v2", "cnn"}
    assert shown["Test accuracy"].endswith("%"), "the shipped weights should match a shipped run"
    assert len(at.get("page_link")) == 4


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
    assert set(table["label"]) <= {"with_mask", "without_mask"}
    assert all(str(url).startswith("data:image/png;base64,") for url in table["crop"])
    labels = [button.label for button in at.download_button]
    assert labels == ["Download annotated PNG", "Download JSON"]


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
    faces = [m.value for m in at.metric if m.label == "Faces"]
    assert len(faces) == len(uploads)
    assert all(int(count) >= 1 for count in faces), dict(zip([u[0] for u in uploads], faces, strict=True))


def test_tiny_huge_and_truncated_images_fail_safe(app):
    png = STREET_PHOTO.read_bytes()
    uploads = [
        ("dot.png", _encode(Image.new("RGB", (1, 1), "white"), "PNG"), "image/png"),
        ("giant.png", _png_header_only(8000, 8000), "image/png"),
        ("cut.png", png[: len(png) // 2], "image/png"),
    ]
    at = open_page(app, "app_pages/images.py")
    at.file_uploader[0].set_value(uploads).run()
    assert_no_exception(at)
    shown = errors(at)
    assert len(shown) == 2, shown
    assert "giant.png" in shown[0] and "pixel" in shown[0]
    assert "cut.png" in shown[1]
    assert [m.value for m in at.metric if m.label == "Faces"] == ["0"]  # a 1x1 image is valid, faceless


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


def test_mixed_group_sample_finds_two_masked_and_two_unmasked(app):
    at = open_page(app, "app_pages/images.py")
    at.radio[0].set_value("Sample").run()
    assert_no_exception(at)
    shown = metrics(at)
    assert (shown["Faces"], shown["Masked"], shown["Unmasked"]) == ("4", "2", "2")
    assert shown["Compliance"] == "50%"


def test_no_face_sample_says_so(app):
    at = open_page(app, "app_pages/images.py")
    at.radio[0].set_value("Sample").run()
    sample_box = next(box for box in at.selectbox if box.label == "Sample picture")
    sample_box.set_value("No faces").run()
    assert_no_exception(at)
    assert metrics(at)["Faces"] == "0"
    assert any("No face found" in info.value for info in at.info)


def test_one_face_switch_classifies_a_face_crop_without_detection(app):
    crop = sorted(FACE_CROPS.glob("*.jpg"))[0]
    at = open_page(app, "app_pages/images.py")
    at.file_uploader[0].set_value((crop.name, crop.read_bytes(), "image/jpeg"))
    at.toggle[0].set_value(True).run()
    assert_no_exception(at)
    assert metrics(at)["Faces"] == "1"
    assert len(at.dataframe[0].value) == 1


def test_json_download_follows_the_detect_command_schema():
    pipeline = ui.get_pipeline(InferenceConfig(weights=ui.weights_path(), detector="centerface"))
    analysis = analyze_image(pipeline, STREET_PHOTO.read_bytes(), "street.png")
    payload = json.loads(json.dumps(detection_json(analysis)))
    (faces,) = payload["images"].values()
    assert list(payload["images"]) == ["street.png"] and len(faces) == len(analysis.result.faces)
    assert set(faces[0]) == {"box", "label", "score", "face_score", "probs"}


def test_images_page_with_missing_weights_shows_an_error(app, monkeypatch, tmp_path):
    monkeypatch.setenv(ui.WEIGHTS_ENV, str(tmp_path / "missing.pt"))
    at = open_page(app, "app_pages/images.py")
    at.file_uploader[0].set_value(("street.png", STREET_PHOTO.read_bytes(), "image/png")).run()
    assert_no_exception(at)
    assert any("does not exist" in message for message in errors(at))


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
def test_uploaded_video_is_annotated_with_chart_and_download(app, tmp_path):
    video = webcam_video(tmp_path / "clip.avi", frames=8)
    at = open_page(app, "app_pages/video.py")
    at.file_uploader[0].set_value(("clip.avi", video.read_bytes(), "video/x-msvideo")).run()
    assert_no_exception(at)
    assert not errors(at)
    shown = metrics(at)
    assert shown["Frames"] == "8"
    assert int(shown["Faces seen"]) >= 8
    assert [b.label for b in at.download_button] == ["Download annotated video"]
    assert len(at.get("plotly_chart")) == 1
    at.run()  # a rerun (e.g. after a download click) reuses the result
    assert metrics(at)["Frames"] == "8"


def test_corrupt_video_upload_shows_an_error(app):
    at = open_page(app, "app_pages/video.py")
    noise = np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    at.file_uploader[0].set_value(("clip.mp4", noise, "video/mp4")).run()
    assert_no_exception(at)
    assert "not a readable video" in errors(at)[0]


def test_a_file_with_no_video_stream_shows_an_error(app):
    at = open_page(app, "app_pages/video.py")
    at.file_uploader[0].set_value(("sound.mp4", alert_wav(), "video/mp4")).run()
    assert_no_exception(at)
    assert "not a readable video" in errors(at)[0]


@pytest.fixture
def http_stream(tmp_path):
    """A local HTTP server serving an MJPG .avi, as a network camera or a stream URL would; also
    dropped.avi, the same stream cut off midway."""
    camera = webcam_video(tmp_path / "camera.avi", frames=6)
    data = camera.read_bytes()
    (tmp_path / "dropped.avi").write_bytes(data[: len(data) // 2])
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/camera.avi"
    server.shutdown()
    server.server_close()


def test_stream_url_is_played_through_the_pipeline(app, http_stream):
    at = open_page(app, "app_pages/video.py")
    at.text_input[0].set_value(http_stream).run()
    at.button[0].click().run()
    assert_no_exception(at)
    assert not errors(at)
    assert metrics(at)["Frames"] == "6"
    assert any("stream ended after 6 frames" in info.value for info in at.info)
    assert len(at.get("plotly_chart")) == 1


def test_a_stream_that_drops_midway_keeps_what_was_processed(app, http_stream):
    at = open_page(app, "app_pages/video.py")
    at.text_input[0].set_value(http_stream.replace("camera.avi", "dropped.avi")).run()
    at.button[0].click().run()
    assert_no_exception(at)
    frames = int(metrics(at)["Frames"])
    assert 1 <= frames < 6
    assert any(f"stream ended after {frames} frames" in info.value for info in at.info)


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


def test_metrics_page_shows_the_shipped_runs(app):
    shipped = [path.name for path in find_runs(SHIPPED_RUNS)]
    assert len(shipped) >= 2, f"expected the MobileNetV2 and CNN runs under {SHIPPED_RUNS}"
    at = open_page(app, "app_pages/metrics.py")
    assert not errors(at)
    assert set(shipped) <= set(at.multiselect[0].value)
    # comparison + curves + a confusion matrix and a system chart per run
    assert len(at.get("plotly_chart")) >= 2 + 2 * len(shipped) - 1
    assert len(at.dataframe) >= 1 + len(shipped)


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
    runs = at.multiselect[0].value
    assert "odd-run" in runs and "broken-run" not in runs
    assert set(path.name for path in find_runs(SHIPPED_RUNS)) <= set(runs)
    warnings = " ".join(w.value for w in at.warning)
    assert "history.jsonl line 2 skipped" in warnings and "metrics.json is missing" in warnings
