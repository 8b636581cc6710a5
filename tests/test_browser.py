"""End to end in a real headless browser: `streamlit run` on a free port, Debian's chromium driven by
Playwright, a fake webcam made from real photos. Saves a screenshot of each page to
test-artifacts/screenshots/ (the README shows copies of them from docs/screenshots/).

Needs `chromium` on PATH (`make browser-deps`); never a browser downloaded by Playwright.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskapp import PROJECT_ROOT
from maskapp.app import samples
from maskapp.app.analysis import MAX_PICTURE_HEIGHT
from tests.conftest import (
    DAY,
    DEV,
    FOUR_CAMERAS,
    arriving_person_frames,
    free_port,
    letterbox,
    nearly_perfect_run,
    record_counts_only,
    record_day,
    record_four_cameras,
)

pytestmark = pytest.mark.browser

SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
STREET_PHOTO = DEV / "images" / "maksssksksss0.png"
WEBCAM_SIZE = (640, 480)
WEBCAM_FPS = 15
SERVER_START_S = 90
PAGE_WAIT_MS = 180_000  # the first analysis loads the models on a busy 2-core machine


def sample_frame(name: str) -> np.ndarray:
    """One of the app's bundled sample pictures as a webcam frame."""
    return letterbox(samples.compose(next(s for s in samples.SAMPLES if s.name == name)), *WEBCAM_SIZE)


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = WEBCAM_FPS) -> Path:
    """A YUV4MPEG2 file chromium plays as its webcam (and loops)."""
    height, width = frames[0].shape[:2]
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


@pytest.fixture(scope="module")
def webcam_frame() -> np.ndarray:
    """Two real people without masks: the alert should fire."""
    return letterbox(
        samples.compose(next(s for s in samples.SAMPLES if s.name == "Nobody masked")), *WEBCAM_SIZE
    )


@pytest.fixture(scope="module")
def fake_webcam(tmp_path_factory, webcam_frame) -> Path:
    return write_y4m(tmp_path_factory.mktemp("webcam") / "webcam.y4m", [webcam_frame] * WEBCAM_FPS)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """`streamlit run streamlit_app.py` on a free port; killed (its whole process group) at the end."""
    with running_app(tmp_path_factory.mktemp("streamlit") / "streamlit.log") as url:
        yield url


@contextlib.contextmanager
def running_app(log_path: Path, **environment: str):
    """The app served on a free port (with `environment` added to this process's), its URL; its server's
    log checked for errors of the app's own code at the end."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(PROJECT_ROOT / "streamlit_app.py"),
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    env = {k: v for k, v in os.environ.items() if k != "MASKAPP_ICE_SERVERS"} | environment
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=15)
        # Streamlit's own server may log a websocket teardown; the app's code must log no error.
        ours = re.compile(r'Uncaught app exec|File ".*/(maskapp|app_pages)/|ERROR maskapp')
        problems = [line for line in log_path.read_text(errors="replace").splitlines() if ours.search(line)]
        assert not problems, "\n".join(problems[:40])


@pytest.fixture(scope="module")
def arriving_webcam(tmp_path_factory) -> Path:
    """One unmasked person always in view; a second one away for 10 s (the first one's alert is on by
    then, and the tracker ends the second one, even on a slow machine), fading in, staying 5 s and fading
    out. Chromium loops it."""
    alphas = [0.0] * 150 + [i / 8 for i in range(1, 9)] + [1.0] * 75 + [1 - i / 8 for i in range(1, 9)]
    distinct = sorted(set(alphas))
    frames = dict(zip(distinct, arriving_person_frames(distinct), strict=True))
    return write_y4m(tmp_path_factory.mktemp("arriving") / "webcam.y4m", [frames[a] for a in alphas])


@pytest.fixture(scope="module")
def playwright_api():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright_api, fake_webcam):
    browser = launch_chromium(playwright_api, fake_webcam)
    yield browser
    browser.close()


def launch_chromium(playwright_api, webcam: Path):
    """Debian's chromium with `webcam` (a .y4m file) as its camera, allowed without asking."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian chromium is not installed; run `make browser-deps` (apt-get install chromium)")
    args = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={webcam}",
        "--autoplay-policy=no-user-gesture-required",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    return playwright_api.chromium.launch(executable_path=chromium, headless=True, args=args)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(PAGE_WAIT_MS)
    yield page
    context.close()


def wait_for_app(page) -> None:
    """The app has rendered (not just the page shell) and is not running any more."""
    page.locator('[data-testid="stApp"]').wait_for()
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden")


def screenshot(page, name: str, height: int = 1500) -> None:
    """Streamlit scrolls inside its own container, so a taller window shows more of the page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": height})
    page.wait_for_timeout(1000)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def no_exception_on(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0


def test_home_page(app_url, page):
    page.goto(app_url)
    page.get_by_text("Face-mask compliance").first.wait_for()
    page.get_by_text("Where to go next").wait_for()
    wait_for_app(page)
    no_exception_on(page)
    screenshot(page, "home")


def test_images_page_annotates_an_uploaded_photo(app_url, page):
    page.goto(f"{app_url}/images")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(STREET_PHOTO))
    page.get_by_text("Download annotated PNG").wait_for()
    wait_for_app(page)
    no_exception_on(page)
    annotated = page.locator('[data-testid="stImage"] img').first
    annotated.wait_for()
    assert annotated.evaluate("img => img.naturalWidth") > 100
    page.locator('[data-testid="stDataFrame"]').first.wait_for()  # the face table
    faces = page.locator('[data-testid="stMetric"]').filter(has_text="Faces").first
    assert int(faces.locator('[data-testid="stMetricValue"]').inner_text()) >= 2
    screenshot(page, "images")


def back_message_kinds(page) -> list[str]:
    """The kind of every message the page sends the server from now on ('rerun_script' runs the page)."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    kinds = []

    def record(payload) -> None:
        if isinstance(payload, bytes):
            kinds.append(BackMsg.FromString(payload).WhichOneof("type"))

    page.on("websocket", lambda socket: socket.on("framesent", record))
    return kinds


def test_the_annotated_png_downloads_without_running_the_images_page_again(app_url, page, tmp_path):
    """A click on a download ran the page again: every photo decoded and analysed again, seconds for a
    big one. The click now only fetches the file, encoded then, of the annotated photo."""
    sent = back_message_kinds(page)
    page.goto(f"{app_url}/images")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(STREET_PHOTO))
    page.get_by_text("Download annotated PNG").wait_for()
    wait_for_app(page)
    sent.clear()
    with page.expect_download() as download:
        page.get_by_text("Download annotated PNG").click()
    assert download.value.suggested_filename == f"{STREET_PHOTO.stem}_annotated.png"
    saved = tmp_path / "annotated.png"
    download.value.save_as(saved)
    assert saved.read_bytes().startswith(b"\x89PNG")
    annotated, photo = cv2.imread(str(saved)), cv2.imread(str(STREET_PHOTO))
    assert annotated.shape == photo.shape and (annotated != photo).any(2).sum() > 0  # the boxes drawn
    wait_for_app(page)
    assert "backend_operation_request" in sent and "rerun_script" not in sent, sent


def cut_metrics(page) -> list[str]:
    """The st.metrics whose label or value ends in an ellipsis: text wider, even by a pixel, than its box."""
    return page.evaluate(
        """() => [...document.querySelectorAll('[data-testid="stMetric"]')]
            .filter(metric => [...metric.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth))
            .map(metric => metric.innerText.replace(/\\s+/g, ' '))"""
    )


def test_no_metric_is_cut_in_a_1000_px_window(app_url, page):
    """In st.columns, Home's model figures read 'Mobile…  12…  98.…' and the Images page's 'Mask worn
    incorrec…' at 1000 px."""
    page.set_viewport_size({"width": 1000, "height": 1000})
    page.goto(app_url)
    page.get_by_text("Where to go next").wait_for()
    wait_for_app(page)
    # Drawn a moment after the text below them on a busy machine (the full browser run): wait for them.
    page.locator('[data-testid="stMetric"]').nth(4).wait_for()
    assert page.locator('[data-testid="stMetric"]').count() == 5
    assert cut_metrics(page) == []
    page.goto(f"{app_url}/images")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(STREET_PHOTO))
    page.get_by_text("Download annotated PNG").wait_for()
    wait_for_app(page)
    page.locator('[data-testid="stMetric"]').nth(4).wait_for()
    assert page.locator('[data-testid="stMetric"]').count() == 5
    assert cut_metrics(page) == []


def scrolls_sideways(element) -> bool:
    """Whether a table's grid is wider than its box (part of it behind a horizontal scroll bar)."""
    return element.evaluate(
        """table => [...table.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1
            && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX))"""
    )


@pytest.mark.parametrize("width", [1000, 1400])
def test_the_face_table_shows_every_column_without_scrolling(app_url, page, width):
    """At 1000 px the face score and the box were behind the table's scroll bar. Every column now fits,
    and the No mask bars of the photo's two unmasked faces are drawn (in their red)."""
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(f"{app_url}/images")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(STREET_PHOTO))
    page.get_by_text("Download annotated PNG").wait_for()
    wait_for_app(page)
    table = page.locator('[data-testid="stDataFrame"]').first
    table.wait_for()
    page.wait_for_timeout(1000)  # the grid is drawn on a canvas a moment after its box
    assert not scrolls_sideways(table)
    shot = cv2.imdecode(np.frombuffer(table.screenshot(), np.uint8), cv2.IMREAD_COLOR)
    crops_end = int(table.evaluate("t => t.getBoundingClientRect().width")) // 4  # past the thumbnails
    assert red_pixels(shot[:, crops_end:]) > 0
    # A bar of a face the model is sure of is long enough to read: at 1000 px "99.99%" took its column and
    # left each bar a dot of a few pixels.
    assert longest_run(red_mask(shot[:, crops_end:])) >= PROBABILITY_COLUMN_WIDTH // 4


CROWD_PHOTO = DEV / "images" / "maksssksksss104.png"


@pytest.mark.parametrize("width", [1000, 1400])
def test_each_photos_figures_read_in_one_row_over_a_picture_as_wide_as_the_page(app_url, page, width):
    """Each photo's five figures were stacked in a column beside a small picture, taller than it (a
    400 px street photo shown 400 px wide, its captions too small to read, at 1400 px). The figures now
    read in one row, as the photos' total does, over the picture as wide as the page and at most
    MAX_PICTURE_HEIGHT tall."""
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(f"{app_url}/images")
    photos = [STREET_PHOTO, CROWD_PHOTO]
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
        [str(p) for p in photos]
    )
    page.get_by_text("Download annotated PNG").nth(len(photos) - 1).wait_for()
    wait_for_app(page)
    no_exception_on(page)
    metrics = page.locator('[data-testid="stMetric"]')
    metrics.nth(5 * (len(photos) + 1) - 1).wait_for()  # the total's five, then each photo's
    tops = [round(metrics.nth(i).bounding_box()["y"]) for i in range(metrics.count())]
    assert len(tops) == 5 * (len(photos) + 1)
    for first in range(0, len(tops), 5):  # each five in one row
        assert max(tops[first : first + 5]) - min(tops[first : first + 5]) <= 2, tops
    table_width = page.locator('[data-testid="stDataFrame"]').first.bounding_box()["width"]
    pictures = page.locator('[data-testid="stImage"] img')
    assert pictures.count() == len(photos)
    for index in range(len(photos)):
        shown = pictures.nth(index).bounding_box()
        assert shown["width"] >= table_width - 4 and shown["height"] <= MAX_PICTURE_HEIGHT + 1, shown


@pytest.mark.parametrize("width", [1000, 1400])
def test_the_violations_table_shows_every_column_without_scrolling(app_url, page, tmp_path, width):
    """At 1000 px the violations' run and frame were behind the table's scroll bar (a camera's URL for a
    source, a reader in Paris). Every column now fits."""
    database = record_day(tmp_path / "log.sqlite", door="rtsp://camera.local:554/entrance_north_door/stream")
    record_counts_only(database)
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(f"{app_url}/compliance-log")
    wait_for_app(page)
    enter_events_file(page, database)
    page.get_by_text("Download violations (CSV)").wait_for()
    wait_for_app(page)
    table = page.locator('[data-testid="stDataFrame"]').first
    table.wait_for()
    page.wait_for_timeout(1000)  # the grid is drawn on a canvas a moment after its box
    assert not scrolls_sideways(table)
    no_exception_on(page)


@pytest.mark.parametrize("width", [1000, 1400])
def test_the_compliance_log_of_a_mixed_log_reads_whole_and_downloads_a_named_csv(
    app_url, page, tmp_path, width
):
    """A log of sources logged person by person beside an aggregate-only one, walked at 1000 and 1400 px:
    the table of sources whole, no error, and the violations CSV saved under a name saying it holds 2
    of the 3 sources (it read as every source's)."""
    database = record_day(record_counts_only(tmp_path / "log.sqlite"), door="door", hall="hall")
    page.set_viewport_size({"width": width, "height": 2400})
    page.goto(f"{app_url}/compliance-log")
    wait_for_app(page)
    enter_events_file(page, database)
    page.get_by_text("Download violations (CSV)").wait_for()
    wait_for_app(page)
    page.locator('[data-testid="stPlotlyChart"]').nth(1).wait_for()
    page.wait_for_timeout(1000)  # the charts are drawn a moment after their boxes
    table = page.locator('[data-testid="stTable"]').first
    assert not scrolls_sideways(table)
    no_exception_on(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"compliance_log_mixed_{width}.png"))
    with page.expect_download() as download:
        page.get_by_text("Download violations (CSV)").click()
    assert download.value.suggested_filename == "violations_2026-11-24_2026-11-25_2_of_3_sources.csv"


def css_hex(css_color: str) -> str:
    """'rgb(31, 111, 235)' -> '#1f6feb'."""
    red, green, blue = (int(part) for part in re.findall(r"\d+", css_color)[:3])
    return f"#{red:02x}{green:02x}{blue:02x}"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_focus_ring_is_the_themes_blue_not_a_verdicts_red(app_url, browser, scheme):
    """Streamlit's default primary colour drew a red ring round the focused events-file input (and red
    sliders, toggles, buttons, pills), in an app where red means "No mask". The ring is now the theme's
    primary colour, far from every verdict's colour and readable on the page, light or dark."""
    from tests.test_theme import MIN_CONTRAST, contrast, primary_colors, verdict_too_near

    context = browser.new_context(viewport={"width": 1000, "height": 1000}, color_scheme=scheme)
    try:
        page = context.new_page()
        page.set_default_timeout(PAGE_WAIT_MS)
        page.goto(f"{app_url}/compliance-log")
        wait_for_app(page)
        page.get_by_role("textbox", name="Events file", exact=True).focus()
        page.wait_for_timeout(500)  # the ring's transition
        ring = css_hex(
            page.evaluate("() => getComputedStyle(document.activeElement.parentElement).borderTopColor")
        )
        background = css_hex(
            page.evaluate(
                "() => getComputedStyle(document.querySelector('[data-testid=stApp]')).backgroundColor"
            )
        )
    finally:
        context.close()
    assert ring == primary_colors()[scheme].lower()
    assert verdict_too_near(ring) == []
    assert contrast(ring, background) >= MIN_CONTRAST


def start_live(page, app_url):
    page.goto(f"{app_url}/live")
    component = page.frame_locator("iframe").first
    component.get_by_role("button", name="START").click()
    return component


def wait_for_live_faces(page, min_faces: int = 1) -> None:
    faces = page.locator('[data-testid="stMetric"]').filter(has_text="Faces").first
    faces.wait_for()
    deadline = time.monotonic() + PAGE_WAIT_MS / 1000
    while int(faces.locator('[data-testid="stMetricValue"]').inner_text() or 0) < min_faces:
        assert time.monotonic() < deadline, "live counts never showed a face"
        time.sleep(0.5)


def metric_value(page, label: str) -> int:
    """The value of the st.metric whose label is exactly `label` (0 while it is not shown yet)."""
    exact = page.locator('[data-testid="stMetricLabel"]', has_text=re.compile(f"^{re.escape(label)}$"))
    metric = page.locator('[data-testid="stMetric"]').filter(has=exact).first
    if not metric.count():
        return 0
    return int(metric.locator('[data-testid="stMetricValue"]').inner_text() or 0)


def wait_for_metric(page, label: str, at_least: int) -> int:
    deadline = time.monotonic() + PAGE_WAIT_MS / 1000
    while (value := metric_value(page, label)) < at_least:
        assert time.monotonic() < deadline, f"the page never showed {label} >= {at_least}"
        time.sleep(0.5)
    return value


def alert_episodes(page) -> int:
    """'... N alerts' under the live counts: alerts raised since START (one per non-compliant person)."""
    caption = page.get_by_text(re.compile(r"\d+ alerts?$")).first.inner_text()
    return int(re.search(r"(\d+) alerts?$", caption).group(1))


PROBABILITY_COLUMN_WIDTH = 72  # ui.probability_columns: the narrowest bar's column, in pixels


def red_mask(bgr: np.ndarray) -> np.ndarray:
    blue, green, red = (bgr[..., i].astype(int) for i in range(3))
    return (red > 170) & (green < 70) & (blue < 70)


def longest_run(mask: np.ndarray) -> int:
    """The longest horizontal run of True pixels in any row."""
    best = 0
    for row in mask:
        run = 0
        for value in row:
            run = run + 1 if value else 0
            best = max(best, run)
    return best


def red_pixels(bgr: np.ndarray) -> int:
    """Pixels of the red 'No mask' box colour (after video compression)."""
    blue, green, red = (bgr[..., i].astype(int) for i in range(3))
    return int(np.count_nonzero((red > 170) & (green < 70) & (blue < 70)))


def video_frame(component) -> np.ndarray:
    """What the returned video shows right now, as BGR."""
    video = component.locator("video").first
    png = video.screenshot()
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)


def wait_for_annotated_video(component, baseline_red: int) -> None:
    video = component.locator("video").first
    video.wait_for()
    deadline = time.monotonic() + PAGE_WAIT_MS / 1000
    while True:
        playing = video.evaluate("v => v.videoWidth > 0 && v.currentTime > 0 && !v.paused")
        if playing and red_pixels(video_frame(component)) > baseline_red + 300:
            return
        assert time.monotonic() < deadline, "the annotated video never came back"
        time.sleep(1.0)


# Every chime the page starts (autoplay included), in the order played: its source.
CHIME_LOG = """
window.chimes = [];
document.addEventListener("play", (event) => {
  if (event.target.tagName !== "AUDIO") return;
  window.chimes.push(event.target.currentSrc);
  window.chimeSeconds = event.target.duration;
}, true);
"""


def test_live_page_annotates_the_fake_webcam_and_raises_the_alert(app_url, page, webcam_frame):
    page.add_init_script(CHIME_LOG)
    component = start_live(page, app_url)
    wait_for_annotated_video(component, red_pixels(webcam_frame))
    wait_for_live_faces(page, min_faces=2)
    # People, not frames: the two unmasked people of the webcam are counted once each.
    assert wait_for_metric(page, "People", at_least=2) == 2
    assert wait_for_metric(page, "People: No mask", at_least=2) == 2
    page.get_by_text("Please wear a face mask").wait_for()
    chime = page.locator("audio")
    chime.first.wait_for(state="attached")  # the chime, played once per alert episode
    # Counted from the page's play events, not read from the element: a refresh that finds the frames
    # stale (a busy machine) removes the element, and it comes back silent for an episode already sounded.
    page.wait_for_function("window.chimes.length > 0")
    # The player counts whole seconds: a shorter chime read "0:00 / 0:00", as if it held no sound.
    assert page.evaluate("window.chimeSeconds") >= 1
    # Once, not a flood: half-second page refreshes must not restart the ~1 s chime.
    page.wait_for_timeout(3000)
    chimes = page.evaluate("window.chimes")
    assert 1 <= len(chimes) <= alert_episodes(page), ("the chime restarted while the alert went on", chimes)
    # One alert per non-compliant person, never repeated while they stay in view (the webcam loops).
    assert alert_episodes(page) == 2
    page.wait_for_timeout(3000)
    assert alert_episodes(page) == 2 and metric_value(page, "People") == 2
    no_exception_on(page)
    # While it streams, the caption no longer asks for START, and says what ends the stream.
    assert page.get_by_text("Press START and allow the camera").count() == 0
    page.get_by_text("ends the stream").wait_for()
    screenshot(page, "live")
    # *Follow people* off and on again mid-stream: the same two people, one chime each (a new tracker
    # counted them as four, and alerted on them again).
    follow = page.get_by_text("Follow people", exact=True).first  # the switch; its name is in a caption too
    for _ in range(2):
        follow.click()
        wait_for_app(page)
        page.wait_for_timeout(3000)
    assert wait_for_metric(page, "People", at_least=2) == 2
    page.wait_for_timeout(3000)
    assert alert_episodes(page) == 2 and metric_value(page, "People") == 2
    assert len(page.evaluate("window.chimes")) <= 2
    no_exception_on(page)
    component.get_by_role("button", name="STOP").click()


def test_a_second_unmasked_person_sounds_the_chime_again_while_the_first_ones_alert_is_on(
    app_url, playwright_api, arriving_webcam
):
    """A new person comes while the alert for one already chimed is on (and stays on): a new chime, never
    more chimes than alert episodes (people alerted on)."""
    browser = launch_chromium(playwright_api, arriving_webcam)
    try:
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.set_default_timeout(PAGE_WAIT_MS)
        page.add_init_script(CHIME_LOG)
        component = start_live(page, app_url)
        page.get_by_text("Please wear a face mask").wait_for()
        deadline, chimed = time.monotonic() + PAGE_WAIT_MS / 1000, None
        # On a slow machine both people may first be alerted on in one refresh (one chime): wait for an
        # episode that starts after a chime, as the second person's next visit does at the latest.
        while chimed is None or alert_episodes(page) <= chimed:
            assert time.monotonic() < deadline, f"no new person alerted on after a chime: {chimed}"
            if chimed is None and page.evaluate("window.chimes.length"):
                chimed = alert_episodes(page)
            time.sleep(0.5)
        page.wait_for_timeout(1500)  # the page's next refresh, and the chime's start
        chimes, episodes = page.evaluate("window.chimes"), alert_episodes(page)
        assert 2 <= len(chimes) <= episodes, (chimes, episodes)
        assert all(a != b for a, b in itertools.pairwise(chimes)), chimes  # each one a new source
        assert page.locator("audio").count() <= 1  # one element, its source changed
        no_exception_on(page)
        component.get_by_role("button", name="STOP").click()
    finally:
        browser.close()


def event_rows(database: Path) -> list[tuple[int, str]]:
    if not database.exists():
        return []
    with contextlib.closing(sqlite3.connect(database)) as conn:
        return conn.execute("SELECT person, kind FROM events ORDER BY id").fetchall()


def wait_for_events(database: Path, kind: str, count: int, seconds: float) -> list[tuple[int, str]]:
    deadline = time.monotonic() + seconds
    while True:
        rows = event_rows(database)
        if [k for _, k in rows].count(kind) >= count:
            return rows
        assert time.monotonic() < deadline, f"no {count} {kind} rows after {seconds:.0f} s: {rows}"
        time.sleep(0.5)


def test_a_live_page_closed_without_stop_still_logs_its_people_leaving(app_url, browser, tmp_path):
    """The tab goes away while its people are in view, STOP never pressed (so the page never runs again):
    the session ends them in the event log all the same."""
    database = tmp_path / "live.sqlite"
    context, page = open_in_new_context(browser, f"{app_url}/live")
    enter_events_file(page, database)
    wait_for_app(page)
    page.get_by_text("Log people to an events file", exact=True).click()  # the switch's label
    wait_for_app(page)
    page.frame_locator("iframe").first.get_by_role("button", name="START").click()
    assert wait_for_metric(page, "People", at_least=2) == 2
    wait_for_events(database, "person_seen", 2, seconds=60)
    # A mistyped events file while streaming: the error shows, the stream goes on (the error above the
    # video moved it on the page, and the browser's remount ended the stream).
    enter_events_file(page, tmp_path)
    page.get_by_text("is a folder").wait_for()
    before = frames_processed(page)
    page.wait_for_timeout(3000)
    assert page.get_by_text("The camera is off").count() == 0 and frames_processed(page) > before
    enter_events_file(page, database)
    page.get_by_text("is a folder").wait_for(state="detached")
    context.close()
    rows = wait_for_events(database, "person_left", 2, seconds=120)
    seen = sorted(person for person, kind in rows if kind == "person_seen")
    assert sorted(person for person, kind in rows if kind == "person_left") == seen, rows
    show_compliance_log(browser, app_url, database, people=len(seen))


def frames_processed(page) -> int:
    caption = page.get_by_text(re.compile(r"\d+ frames? processed")).first.inner_text(timeout=10_000)
    return int(re.search(r"(\d+) frames? processed", caption).group(1))


def open_in_new_context(browser, url: str, **context_options):
    """A page of its own browser context (its own Streamlit session), opened at `url` and rendered."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, **context_options)
    page = context.new_page()
    page.set_default_timeout(PAGE_WAIT_MS)
    page.goto(url)
    wait_for_app(page)
    return context, page


def enter_events_file(page, database: Path) -> None:
    events_file = page.get_by_role("textbox", name="Events file", exact=True)
    events_file.fill(str(database))
    events_file.press("Enter")


def show_compliance_log(browser, app_url: str, database: Path, people: int) -> None:
    """The Compliance log page reads back the log the Live page wrote, in the browser's time zone."""
    context, page = open_in_new_context(browser, f"{app_url}/compliance-log", timezone_id="Europe/Paris")
    try:
        enter_events_file(page, database)
        page.get_by_text("People by verdict per hour").wait_for()
        page.get_by_text("Dates (Europe/Paris)").wait_for()  # the days and hours of the reader's clock
        wait_for_app(page)
        assert wait_for_metric(page, "People", at_least=people) == people
        no_exception_on(page)
        screenshot(page, "compliance_log", height=1800)
    finally:
        context.close()


def test_two_live_sessions_both_receive_annotated_frames(app_url, browser, webcam_frame):
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(2)]
    try:
        pages = [context.new_page() for context in contexts]
        components = []
        for page in pages:
            page.set_default_timeout(PAGE_WAIT_MS)
            components.append(start_live(page, app_url))
        baseline = red_pixels(webcam_frame)
        for page, component in zip(pages, components, strict=True):
            wait_for_annotated_video(component, baseline)
            wait_for_live_faces(page, min_faces=1)
            no_exception_on(page)
        for component in components:
            component.get_by_role("button", name="STOP").click()
    finally:
        for context in contexts:
            context.close()


def test_video_page_annotates_an_uploaded_video(app_url, page, tmp_path, webcam_frame):
    video = tmp_path / "clip.avi"
    group = letterbox(
        samples.compose(next(s for s in samples.SAMPLES if s.name == "Mixed group")), *WEBCAM_SIZE
    )
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 8, WEBCAM_SIZE)
    for index in range(16):
        writer.write(group if index < 8 else webcam_frame)
    writer.release()
    sent = back_message_kinds(page)
    page.goto(f"{app_url}/video")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(video))
    page.get_by_text("Download annotated video").wait_for()
    wait_for_app(page)
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for()
    no_exception_on(page)
    screenshot(page, "video", height=2400)
    # The download gives the annotated video, and only fetches it: the click ran the page again.
    sent.clear()
    with page.expect_download() as download:
        page.get_by_text("Download annotated video").click()
    assert download.value.suggested_filename == "clip_annotated.mp4"
    saved = tmp_path / "annotated.mp4"
    download.value.save_as(saved)
    assert saved.read_bytes()[4:8] == b"ftyp"
    annotated = cv2.VideoCapture(str(saved))
    assert annotated.get(cv2.CAP_PROP_FRAME_COUNT) == 16
    wait_for_app(page)
    assert "rerun_script" not in sent, sent


@pytest.mark.parametrize("width", [1000, 1400])
def test_every_table_of_the_metrics_page_shows_whole(app_url, page, width):
    """At 1000 px the run comparison (ten columns, long run names, four decimals) ran 270 px past the
    page, behind a horizontal scroll bar."""
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(f"{app_url}/metrics")
    page.get_by_text("Training curves").wait_for()
    wait_for_app(page)
    tables = page.locator('[data-testid="stTable"]')
    tables.nth(1).wait_for()  # on a loaded host the tables come in after the page's first heading
    wide = [tables.nth(i).inner_text()[:60] for i in range(tables.count()) if scrolls_sideways(tables.nth(i))]
    assert wide == []


def test_the_metrics_pages_tables_show_their_cells_as_written(app_url, page):
    """st.table reads its cells as markdown: mobilenet_v2's ROC AUC, >0.999, was drawn as a quote (a grey
    bar and 0.999) in the 2-class comparison. Every cell now shows its text as written."""
    from maskapp.training.runs import load_runs

    near = [
        r.name
        for r in load_runs().runs
        if r.metrics and r.metrics.roc_auc and 0.9995 <= r.metrics.roc_auc < 1
    ]
    assert "mobilenet_v2" in near, "expected the 2-class MobileNetV2's ROC AUC to round to 1.000"
    page.set_viewport_size({"width": 1000, "height": 1000})
    page.goto(f"{app_url}/metrics")
    page.get_by_text("Training curves").wait_for()
    wait_for_app(page)
    page.get_by_text("2 classes (").click()
    page.get_by_text("which is not in this group").wait_for()
    wait_for_app(page)
    tables = page.locator('[data-testid="stTable"]')
    comparison = tables.filter(has_text="ROC AUC").first
    row = comparison.locator("tr").filter(has_text="mobilenet").first
    assert ">0.999" in row.inner_text()
    formatted = page.locator('[data-testid="stTable"] td :is(blockquote, em, strong, code, del, a)')
    assert formatted.count() == 0


def test_the_metrics_pages_pickers_show_run_names_as_written(browser, tmp_path):
    """st.radio and st.pills draw their options as markdown: among the Test set's pills a run named
    `*bold*_run_` read as two words in italics, `tick`_x as code, and a group measured on a folder named
    my_own_faces_ lost its underscores to italics. Each picker now shows the names as written."""
    for name in ("*bold*_run_", "`tick`_x"):
        nearly_perfect_run(tmp_path / "runs", name)
    odd_folder = nearly_perfect_run(tmp_path / "runs", "odd-folder")
    metrics = json.loads((odd_folder / "metrics.json").read_text())
    metrics["source"]["data"] = "my_own_faces_"
    (odd_folder / "metrics.json").write_text(json.dumps(metrics))
    with running_app(tmp_path / "streamlit.log", MASKAPP_RUN_DIRS=str(tmp_path / "runs")) as url:
        context = browser.new_context(viewport={"width": 1000, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(PAGE_WAIT_MS)
        page.goto(f"{url}/metrics")
        page.get_by_text("Training curves").wait_for()
        wait_for_app(page)
        radio = page.locator('[data-testid="stRadio"]').first
        assert "of my_own_faces_ only" in radio.inner_text()
        radio.locator("label").filter(has_text="the split of", has_not_text="my_own").first.click()
        page.get_by_text("*bold*_run_").first.wait_for()
        wait_for_app(page)
        pills = page.locator('[data-testid="stButtonGroup"]').first
        pills.locator("button").first.wait_for()
        chips = page.locator('[data-testid="stMultiSelect"]').first
        shown = [text.strip() for text in pills.locator("button").all_inner_texts()]
        for name in ("*bold*_run_", "`tick`_x"):
            assert name in shown
            assert chips.get_by_text(name, exact=True).count() == 1  # st.multiselect: text as it is
        formatted = page.locator(
            ':is([data-testid="stRadio"], [data-testid="stButtonGroup"]) :is(em, strong, code, del)'
        )
        assert formatted.count() == 0
        context.close()


def sideways_scrollers(page) -> list[str]:
    """The start of the text of each element of the page's main column wider than its box, behind a
    horizontal scroll bar (a table's grid, a tab row, ...)."""
    return page.locator('[data-testid="stMain"]').evaluate(
        """main => [...main.querySelectorAll('*')]
            .filter(e => e.scrollWidth > e.clientWidth + 1
                && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX))
            .map(e => (e.getAttribute('data-testid') || e.getAttribute('role') || e.tagName)
                + ': ' + e.innerText.slice(0, 60))"""
    )


@pytest.mark.parametrize("width", [1000, 1400])
def test_the_metrics_pages_run_picker_fits_the_window(app_url, page, width):
    """The Test set's tab row (a tab per run, named in full) was 1117 px wide in a column of 540 at
    1000 px (940 at 1400), its last runs behind a sideways scroll. The runs are now pills that wrap."""
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(f"{app_url}/metrics")
    page.get_by_text("Training curves").wait_for()
    wait_for_app(page)
    page.locator('[data-testid="stTable"]').nth(1).wait_for()  # the Test set's tables have come in
    page.wait_for_timeout(1000)
    assert sideways_scrollers(page) == []
    pills = page.locator('[data-testid="stButtonGroup"]').first
    main = page.locator('[data-testid="stMainBlockContainer"]').bounding_box()
    for index in range(pills.locator("button").count()):
        box = pills.locator("button").nth(index).bounding_box()
        assert main["x"] <= box["x"] and box["x"] + box["width"] <= main["x"] + main["width"]


def overlapping_texts(chart) -> list[str]:
    """Pairs of a plotly chart's printed bar values whose boxes on the screen overlap."""
    return chart.evaluate(
        """chart => {
            const texts = [...chart.querySelectorAll('.bartext')].filter(t => t.textContent.trim());
            const boxes = texts.map(t => t.getBoundingClientRect());
            const pairs = [];
            boxes.forEach((a, i) => boxes.slice(i + 1).forEach((b, k) => {
                if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom)
                    pairs.push(texts[i].textContent + ' / ' + texts[i + 1 + k].textContent);
            }));
            return pairs;
        }"""
    )


@pytest.mark.parametrize("width", [1000, 1400])
def test_the_comparison_charts_values_do_not_overlap(app_url, page, width):
    """Grouped upright bars printed the values of runs near 1.0 side by side, and at 1.0 they ran into
    each other (ROC AUC: 0.999, 0.999, 1.000 over one another)."""
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(f"{app_url}/metrics")
    page.get_by_text("Training curves").wait_for()
    wait_for_app(page)
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.locator(".bartext").first.wait_for()
    page.wait_for_timeout(1000)
    assert chart.locator(".bartext").count() >= 10
    assert overlapping_texts(chart) == []


def test_metrics_page_shows_training_curves(app_url, page):
    page.goto(f"{app_url}/metrics")
    page.get_by_text("Training curves").wait_for()
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for()
    wait_for_app(page)
    no_exception_on(page)
    screenshot(page, "metrics", height=2600)


def test_the_stacked_over_time_charts_list_their_legend_as_the_bands_stack(browser, tmp_path):
    """Drawn by plotly.js: the legend of the stacked bands read No mask, Mask worn incorrectly, Mask (the
    top band first), the reverse of the stack from the bottom and of the Compliance log's per-hour chart."""
    from maskapp.app import plots
    from maskapp.app.live import PeoplePoint

    faces = plots.counts_over_time_figure([plots.CountSample(0.0, 2, 1, 1), plots.CountSample(1.0, 1, 2, 1)])
    people = plots.people_over_time_figure([PeoplePoint(0.0, 2, 1), PeoplePoint(1.0, 1, 2)])
    for figure in (faces, people):
        html = tmp_path / "chart.html"
        figure.write_html(html, include_plotlyjs=True, full_html=True)
        page = browser.new_page()
        try:
            page.goto(html.as_uri())
            page.wait_for_selector(".legend .legendtext")
            shown = page.locator(".legend .legendtext").all_text_contents()
        finally:
            page.close()
        assert shown == [trace.name for trace in figure.data]  # the bands from the bottom, then compliance
        assert shown[0] in ("Mask", "compliant people")


def colour_ink(shot: np.ndarray, hex_colour: str, tolerance: int = 40) -> int:
    """How many pixels of a screenshot (BGR) are within `tolerance` of a colour on every channel."""
    rgb = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
    return int((np.abs(shot.astype(int) - np.array(rgb[::-1])).max(axis=2) <= tolerance).sum())


def covers(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and (b["y"] < a["y"] + a["height"])
    )


@pytest.mark.parametrize("width", [1000, 1400])
def test_four_cameras_each_read_in_the_compliance_per_source_chart(app_url, page, tmp_path, width):
    """Four cameras (two long RTSP names, one aggregate-only), each at its own compliance every hour: the
    first source was drawn with 27 px dots and an 8 px line (sizes that stack sources at one point as
    rings), so it took most of the chart's ink and buried the others; and the legend of four names, two
    lines long, covered the hour axis's title. Now no source takes more than three times the ink of
    another with as many points, and the legend stays clear of the axis."""
    from maskapp.app.plots import PALETTE, legend_names

    database = record_four_cameras(tmp_path / "four.sqlite")
    page.set_viewport_size({"width": width, "height": 2400})
    page.goto(f"{app_url}/compliance-log")
    wait_for_app(page)
    enter_events_file(page, database)
    page.get_by_text("Download violations (CSV)").wait_for()
    wait_for_app(page)
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.locator(".legend .legendtext").first.wait_for()
    page.wait_for_timeout(1000)  # the chart is drawn a moment after its box
    shown = [legend_names(sorted(FOUR_CAMERAS))[source] for source in sorted(FOUR_CAMERAS)]
    assert chart.locator(".legend .legendtext").all_text_contents() == shown
    plot_area = chart.locator(".nsewdrag").first.bounding_box()
    shot = cv2.imdecode(np.frombuffer(page.screenshot(clip=plot_area), np.uint8), cv2.IMREAD_COLOR)
    ink = [colour_ink(shot, colour) for colour in PALETTE[: len(FOUR_CAMERAS)]]
    assert min(ink) > 0 and max(ink) <= 3 * min(ink), ink
    legend, axis_title = chart.locator(".legend").bounding_box(), chart.locator(".xtitle").bounding_box()
    assert not covers(legend, axis_title) and not covers(legend, plot_area)
    no_exception_on(page)


def grid_rows_in_view(table) -> tuple[float, float]:
    """(rows visible in a table's box, rows in all) for rows of FACE_ROW_HEIGHT: the grid's scroller's
    visible and whole heights, its header left out."""
    from maskapp.app.compliance_log import TABLE_HEADER_PX
    from maskapp.app.ui import FACE_ROW_HEIGHT

    visible, whole = table.evaluate(
        """t => {
            const s = [...t.querySelectorAll('*')].find(e => e.scrollHeight > 0
                && ['auto', 'scroll'].includes(getComputedStyle(e).overflowY));
            return [s.clientHeight, s.scrollHeight];
        }"""
    )
    return (visible - TABLE_HEADER_PX) / FACE_ROW_HEIGHT, (whole - TABLE_HEADER_PX) / FACE_ROW_HEIGHT


@pytest.mark.parametrize("width", [1000, 1400])
def test_the_violations_table_shows_a_dozen_rows_before_it_scrolls(app_url, page, tmp_path, width):
    """A day's 48 violations (rows 72 px tall, so that a camera's URL wraps) were read five at a time in
    Streamlit's 400 px box. The box now holds twelve whole rows and scrolls the rest; three violations
    fill a box of their own size, no empty rows below."""
    for database, violations in (
        (record_four_cameras(tmp_path / "four.sqlite"), 48),
        (record_day(tmp_path / "day.sqlite"), 3),
    ):
        page.set_viewport_size({"width": width, "height": 1400})
        page.goto(f"{app_url}/compliance-log")
        wait_for_app(page)
        enter_events_file(page, database)
        page.get_by_text("Download violations (CSV)").wait_for()
        wait_for_app(page)
        table = page.locator('[data-testid="stDataFrame"]').first
        table.wait_for()
        page.wait_for_timeout(1000)  # the grid is drawn a moment after its box
        visible, whole = grid_rows_in_view(table)
        assert round(whole) == violations
        assert abs(visible - min(violations, 12)) < 0.5, (visible, whole)
        no_exception_on(page)


def tick_labels(chart) -> list[dict]:
    """The hour axis's tick labels: text, box on the page and the angle plotly turned them by."""
    return chart.locator(".xtick text").evaluate_all(
        """texts => texts.map(t => {
            const box = t.getBoundingClientRect();
            const turn = /rotate\\(([-\\d.]+)/.exec(t.getAttribute('transform') || '');
            return {text: t.textContent, angle: turn ? Number(turn[1]) : 0,
                    x: box.x, y: box.y, width: box.width, height: box.height};
        })"""
    )


@pytest.mark.parametrize("width", [1000, 1400])
def test_the_hour_ticks_of_both_log_charts_stay_horizontal_and_apart(app_url, page, tmp_path, width):
    """At 1000 px plotly turned the hour ticks of both hourly charts 90 degrees (a dozen ticks, one of them
    'Nov 27, 2026' a line long), hard to read. Over a day and over two days the ticks now stay level and
    apart: eight at most, '08:00', the day under a day's first tick alone and in the axis's title."""
    one_day = record_four_cameras(tmp_path / "day.sqlite")
    # The walk's log: the day before at two doors, then yesterday at four cameras (08:00 to 14:00).
    two_days = record_four_cameras(record_day(tmp_path / "days.sqlite"), day=DAY + timedelta(days=1))
    page.set_viewport_size({"width": width, "height": 2400})
    for database, days in ((two_days, "2026-11-24 to 2026-11-25"), (one_day, "2026-11-24")):
        page.goto(f"{app_url}/compliance-log")
        wait_for_app(page)
        enter_events_file(page, database)
        page.get_by_text("Download violations (CSV)").wait_for()
        wait_for_app(page)
        charts = page.locator('[data-testid="stPlotlyChart"]')
        charts.nth(1).locator(".xtick text").first.wait_for()
        page.wait_for_timeout(1000)  # the charts are drawn a moment after their boxes
        for chart in (charts.nth(0), charts.nth(1)):
            ticks = tick_labels(chart)
            assert len(ticks) >= 2 and all(tick["angle"] == 0 for tick in ticks), ticks
            for left, right in itertools.pairwise(sorted(ticks, key=lambda tick: tick["x"])):
                assert left["x"] + left["width"] < right["x"], (left, right)
            assert chart.locator(".xtitle").text_content().endswith(days)
        no_exception_on(page)


@pytest.mark.parametrize("width", [1000, 1400])
def test_four_cameras_legend_leaves_the_compliance_chart_most_of_its_height(app_url, page, tmp_path, width):
    """At 1000 px the legend of four cameras (two long RTSP names) took four lines, leaving the chart of
    420 px a short strip to plot in. Long names are cut in the legend (the host's name and the stream's
    last part, the full name on hover), so four cameras take two lines at most and the plot area at
    least half the chart."""
    database = record_four_cameras(tmp_path / "four.sqlite")
    page.set_viewport_size({"width": width, "height": 2400})
    page.goto(f"{app_url}/compliance-log")
    wait_for_app(page)
    enter_events_file(page, database)
    page.get_by_text("Download violations (CSV)").wait_for()
    wait_for_app(page)
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.locator(".legend .legendtext").first.wait_for()
    page.wait_for_timeout(1000)  # the chart is drawn a moment after its box
    entries = chart.locator(".legend .traces").evaluate_all(
        "ts => ts.map(t => Math.round(t.getBoundingClientRect().y))"
    )
    assert len(entries) == len(FOUR_CAMERAS) and len(set(entries)) <= 2, entries
    plot_area, whole = (
        chart.locator(".nsewdrag").first.bounding_box(),
        chart.locator(".main-svg").first.bounding_box(),
    )
    assert plot_area["height"] >= whole["height"] / 2, (plot_area, whole)
    no_exception_on(page)


def lines_of_each_date(table) -> list[int]:
    """For every date (2026-11-24) in a table's cells: on how many lines the browser drew it."""
    return table.evaluate(
        """t => {
            const counts = [];
            for (const cell of t.querySelectorAll('td, th')) {
                const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
                for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                    for (const match of node.data.matchAll(/\\d{4}-\\d{2}-\\d{2}/g)) {
                        const range = document.createRange();
                        range.setStart(node, match.index);
                        range.setEnd(node, match.index + match[0].length);
                        counts.push(new Set([...range.getClientRects()].map(r => Math.round(r.top))).size);
                    }
                }
            }
            return counts;
        }"""
    )


@pytest.mark.parametrize("width", [1000, 1400])
def test_the_table_of_sources_keeps_each_date_on_one_line(app_url, page, tmp_path, width):
    """A short source name (lobby) got a column so narrow at 1000 px that its From and To times wrapped
    over three lines ('2026-11-' / '24' / '08:00:00'). Every source's column is now wide enough for a
    date on one line, and the table still fits the page."""
    north = next(source for source in FOUR_CAMERAS if "north" in source)
    database = record_day(record_four_cameras(tmp_path / "four.sqlite"), door="lobby", hall=north)
    page.set_viewport_size({"width": width, "height": 2400})
    page.goto(f"{app_url}/compliance-log")
    wait_for_app(page)
    enter_events_file(page, database)
    page.get_by_text("Download violations (CSV)").wait_for()
    wait_for_app(page)
    table = page.locator('[data-testid="stTable"]').first
    table.wait_for()
    dates = lines_of_each_date(table)
    assert len(dates) >= 2 * len(FOUR_CAMERAS) and set(dates) == {1}, dates  # each source's From and To
    assert not scrolls_sideways(table)
    no_exception_on(page)


@pytest.mark.parametrize("width", [1000, 1400])
def test_the_first_and_last_hours_rings_are_drawn_whole_at_the_charts_frame(app_url, page, tmp_path, width):
    """Over two days at 1000 px half an hour is a few pixels: the rings of the first and last hours (the
    gate's 21 px ring at 13:30, the day before's doors at 08:30) were cut in half by the plot's frame.
    They are now drawn whole, into the margin."""
    from maskapp.app.plots import PALETTE

    database = record_four_cameras(record_day(tmp_path / "days.sqlite"), day=DAY + timedelta(days=1))
    page.set_viewport_size({"width": width, "height": 2400})
    page.goto(f"{app_url}/compliance-log")
    wait_for_app(page)
    enter_events_file(page, database)
    page.get_by_text("Download violations (CSV)").wait_for()
    wait_for_app(page)
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.locator(".legend .legendtext").first.wait_for()
    page.wait_for_timeout(1000)  # the chart is drawn a moment after its box
    plot = chart.locator(".nsewdrag").first.bounding_box()
    rings = [
        chart.locator(".scatterlayer .trace .point").nth(i)
        for i in range(chart.locator(".scatterlayer .trace .point").count())
    ]
    edges = (plot["x"], plot["x"] + plot["width"])
    at_edge = [
        box
        for box in (ring.bounding_box() for ring in rings)
        if box["x"] < edges[0] or box["x"] + box["width"] > edges[1]
    ]
    strips = [
        {"x": plot["x"] - 12, "y": plot["y"] - 12, "width": 12, "height": plot["height"] + 24},
        {"x": plot["x"] + plot["width"], "y": plot["y"] - 12, "width": 12, "height": plot["height"] + 24},
    ]
    outside = 0
    for strip in strips:
        shot = cv2.imdecode(np.frombuffer(page.screenshot(clip=strip), np.uint8), cv2.IMREAD_COLOR)
        # The blue, purple and cyan cameras: the grey one is the axis text's colour.
        outside += sum(colour_ink(shot, colour) for colour in PALETTE[:3])
    if width == 1000:  # half an hour is 8 px: the rings of the first and last hours reach past the frame
        assert at_edge and outside > 0, (at_edge, outside)
    else:
        assert not at_edge or outside > 0, (at_edge, outside)
    no_exception_on(page)


@pytest.mark.parametrize("width", [1000, 1400])
def test_the_hour_that_ends_the_log_charts_is_labelled(app_url, page, tmp_path, width):
    """Yesterday's four cameras, 08:00 to 14:00: both hourly charts ended at 14:00 with no label there
    (plotly hid a label past the chart's right edge, and Streamlit leaves no margin), so the last hour's
    bar had a start, 13:00, and no end. The closing hour is now labelled, inside the chart."""
    database = record_four_cameras(tmp_path / "day.sqlite")
    page.set_viewport_size({"width": width, "height": 2400})
    page.goto(f"{app_url}/compliance-log")
    wait_for_app(page)
    enter_events_file(page, database)
    page.get_by_text("Download violations (CSV)").wait_for()
    wait_for_app(page)
    charts = page.locator('[data-testid="stPlotlyChart"]')
    charts.nth(1).locator(".xtick text").first.wait_for()
    page.wait_for_timeout(1000)  # the charts are drawn a moment after their boxes
    for chart in (charts.nth(0), charts.nth(1)):
        ticks = tick_labels(chart)
        shown = [tick for tick in ticks if tick["width"] > 0]  # plotly hides a label past the edge
        assert shown[-1]["text"] == "14:00", ticks
        right = chart.bounding_box()["x"] + chart.bounding_box()["width"]
        assert shown[-1]["x"] + shown[-1]["width"] <= right
    no_exception_on(page)
