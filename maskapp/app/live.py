"""The live webcam's worker side: frame callback, latest-result holder, debounced alert (no Streamlit).

Thread boundary: streamlit-webrtc calls the frame callback in its own worker thread, one per browser
session. The callback never touches `st.*`; what the page shows leaves that thread through a
`LatestResult` (a lock and the newest `LiveStats`), and settings reach it through `LiveProcessor.configure`,
which takes the same lock.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import wave
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import av
import numpy as np

from maskapp.errors import LiveConfigError, MaskappError
from maskapp.vision.draw import annotate

logger = logging.getLogger(__name__)

# ~0.7 s at 15 fps: long enough to ignore a one-frame misclassification, short enough to feel live.
DEFAULT_TRIGGER_FRAMES = 10
# An episode ends after this many frames in a row with no unmasked face (a person who turns away for a
# frame or two does not start a new episode and a new sound).
DEFAULT_CLEAR_FRAMES = 15
FPS_WINDOW = 30  # frames the FPS figure averages over
ALERT_TEXT = "Please wear a face mask"


@dataclass(frozen=True)
class AlertState:
    active: bool  # an alert episode is going on
    started: bool  # this very frame started it
    episode: int  # episodes started so far; a new value means "play the sound once"


class AlertDebouncer:
    """Unmasked face for `trigger_frames` consecutive frames -> one alert episode, until
    `clear_frames` consecutive frames without an unmasked face end it. Not thread-safe by itself:
    `LiveProcessor` calls it under its lock."""

    def __init__(
        self, trigger_frames: int = DEFAULT_TRIGGER_FRAMES, clear_frames: int = DEFAULT_CLEAR_FRAMES
    ):
        self.trigger_frames = check_frames("trigger_frames", trigger_frames)
        self.clear_frames = check_frames("clear_frames", clear_frames)
        self.active = False
        self.episode = 0
        self._unmasked_run = 0
        self._clear_run = 0

    def update(self, unmasked_present: bool) -> AlertState:
        if unmasked_present:
            self._unmasked_run += 1
            self._clear_run = 0
        else:
            self._clear_run += 1
            self._unmasked_run = 0
        started = False
        if not self.active and self._unmasked_run >= self.trigger_frames:
            self.active, started = True, True
            self.episode += 1
            logger.info("alert episode %d started", self.episode)
        elif self.active and self._clear_run >= self.clear_frames:
            self.active = False
            logger.info("alert episode %d ended", self.episode)
        return AlertState(self.active, started, self.episode)


def check_frames(name: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise LiveConfigError(f"{name} must be a whole number of frames >= 1, got {value!r}")
    return value


class FpsMeter:
    """Frames per second over the last `window` frames."""

    def __init__(self, window: int = FPS_WINDOW, clock: Callable[[], float] = time.perf_counter):
        self._times: deque[float] = deque(maxlen=window)
        self._clock = clock

    def tick(self) -> float:
        self._times.append(self._clock())
        if len(self._times) < 2 or self._times[-1] <= self._times[0]:
            return 0.0
        return (len(self._times) - 1) / (self._times[-1] - self._times[0])


@dataclass(frozen=True)
class LiveStats:
    """What the page shows beside the video; written by the callback thread, read by the page."""

    frame_index: int
    faces: int
    masked: int
    unmasked: int
    fps: float
    latency_ms: float  # pipeline + drawing for this frame
    alert: bool
    episode: int
    updated_at: float  # time.monotonic() when written
    error: str | None = None

    @property
    def compliance(self) -> float | None:
        return self.masked / self.faces if self.faces else None

    def age(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.updated_at


class LatestResult:
    """A lock-protected slot holding the newest value: the writer never blocks on a slow reader and
    the reader never sees a half-written value. Old values are dropped, not queued."""

    def __init__(self):
        self._lock = threading.Lock()
        self._value: LiveStats | None = None

    def put(self, value: LiveStats) -> None:
        with self._lock:
            self._value = value

    def get(self) -> LiveStats | None:
        with self._lock:
            return self._value


def overlay_text(fps: float, latency_ms: float) -> str:
    return f"{fps:4.1f} FPS  {latency_ms:4.0f} ms"


class LiveProcessor:
    """One browser session's live state: pipeline, alert debouncer, FPS meter and the latest stats.

    `process` runs in the webrtc worker thread; `configure` and `latest` run in the page's thread.
    """

    def __init__(
        self,
        pipeline,
        *,
        trigger_frames: int = DEFAULT_TRIGGER_FRAMES,
        clear_frames: int = DEFAULT_CLEAR_FRAMES,
    ):
        self._lock = threading.Lock()
        self._pipeline = pipeline
        self._alert = AlertDebouncer(trigger_frames, clear_frames)
        self._fps = FpsMeter()
        self._frames = 0
        self.results = LatestResult()

    def configure(self, *, pipeline=None, trigger_frames: int | None = None) -> None:
        """Change the pipeline or the alert delay between frames (from the page's thread)."""
        with self._lock:
            if pipeline is not None:
                self._pipeline = pipeline
            if trigger_frames is not None:
                self._alert.trigger_frames = check_frames("trigger_frames", trigger_frames)

    @property
    def pipeline(self):
        with self._lock:
            return self._pipeline

    def latest(self) -> LiveStats | None:
        return self.results.get()

    def process(self, frame_bgr: np.ndarray) -> np.ndarray:
        """One frame in, its annotated copy out; the stats go to `results`. Never raises: a frame the
        pipeline refuses comes back unchanged with the reason in `LiveStats.error`."""
        start = time.perf_counter()
        pipeline = self.pipeline
        try:
            result = pipeline.process(frame_bgr)
        except MaskappError as error:
            self._publish(0, 0, (time.perf_counter() - start) * 1000, str(error))
            return frame_bgr
        except Exception:  # a bug: keep its traceback in the log, keep the stream alive
            logger.exception("live frame processing failed")
            self._publish(0, 0, (time.perf_counter() - start) * 1000, "internal error; see the server log")
            return frame_bgr
        with self._lock:
            fps = self._fps.tick()
        latency_ms = (time.perf_counter() - start) * 1000
        annotated = annotate(frame_bgr, result, overlay=overlay_text(fps, latency_ms))
        latency_ms = (time.perf_counter() - start) * 1000
        self._publish(result.masked_count, result.unmasked_count, latency_ms, None, fps)
        return annotated

    def _publish(self, masked: int, unmasked: int, latency_ms: float, error: str | None, fps: float = 0.0):
        with self._lock:
            self._frames += 1
            alert = self._alert.update(unmasked > 0)
            stats = LiveStats(
                frame_index=self._frames,
                faces=masked + unmasked,
                masked=masked,
                unmasked=unmasked,
                fps=fps,
                latency_ms=latency_ms,
                alert=alert.active,
                episode=alert.episode,
                updated_at=time.monotonic(),
                error=error,
            )
        self.results.put(stats)

    def callback(self, frame):
        """The `video_frame_callback` for streamlit-webrtc: av.VideoFrame in, av.VideoFrame out."""
        annotated = self.process(frame.to_ndarray(format="bgr24"))
        out = av.VideoFrame.from_ndarray(annotated, format="bgr24")
        out.pts = frame.pts
        if frame.time_base is not None:
            out.time_base = frame.time_base
        return out


# --- alert sound -----------------------------------------------------------------------------------
@cache
def alert_wav(sample_rate: int = 16_000, volume: float = 0.5) -> bytes:
    """A short two-tone chime (high, low, high) as a 16-bit mono WAV, generated here (no asset file)."""
    notes = ((880.0, 0.18), (660.0, 0.18), (880.0, 0.30))
    parts = []
    for frequency, seconds in notes:
        t = np.arange(int(sample_rate * seconds)) / sample_rate
        envelope = np.minimum(1.0, np.minimum(t, seconds - t) / 0.015)  # 15 ms fades: no clicks
        parts.append(np.sin(2 * np.pi * frequency * t) * envelope)
        parts.append(np.zeros(int(sample_rate * 0.04)))
    samples = (np.concatenate(parts) * volume * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


# --- WebRTC configuration --------------------------------------------------------------------------
def parse_ice_servers(text: str) -> dict:
    """JSON of a list of ICE servers, or of {"iceServers": [...]} -> an RTCConfiguration dict.

    Each server needs "urls" (a string or a list of strings); TURN servers add "username" and
    "credential". Example: [{"urls": "turn:turn.example.org:3478", "username": "u", "credential": "p"}]
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise LiveConfigError(f"ICE server configuration is not valid JSON ({error})") from None
    servers = data.get("iceServers") if isinstance(data, dict) else data
    if not isinstance(servers, list):
        raise LiveConfigError('ICE server configuration must be a JSON list or {"iceServers": [...]}')
    for index, server in enumerate(servers):
        urls = server.get("urls") if isinstance(server, dict) else None
        if isinstance(urls, str):
            urls = [urls]
        if not urls or not isinstance(urls, list) or not all(isinstance(u, str) and u for u in urls):
            raise LiveConfigError(f'ICE server {index} needs "urls": a string or a list of strings')
        allowed = ("stun:", "stuns:", "turn:", "turns:")
        for url in urls:
            if not url.startswith(allowed):
                raise LiveConfigError(f"ICE server URL {url!r} must start with one of {', '.join(allowed)}")
    return {"iceServers": servers}
