"""Samples CPU, RAM, process RSS (and GPU when present) in a background thread, as trackers do."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil
import torch

from maskapp.training.runs import SystemSample, append_jsonl


def _gpu_figures() -> tuple[float | None, float | None]:
    if not torch.cuda.is_available():
        return None, None
    try:
        utilisation = float(torch.cuda.utilization())
    except (RuntimeError, ModuleNotFoundError):  # needs pynvml; memory still reads without it
        utilisation = None
    return utilisation, torch.cuda.memory_allocated() / 2**20


class SystemMonitor:
    """Context manager appending a SystemSample to `path` every `interval` seconds."""

    def __init__(self, path: Path, interval: float = 2.0):
        self.path, self.interval = path, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="system-monitor", daemon=True)
        self._process = psutil.Process()
        self._start = time.monotonic()

    def sample(self) -> SystemSample:
        gpu_util, gpu_memory = _gpu_figures()
        return SystemSample(
            seconds=round(time.monotonic() - self._start, 2),
            cpu_percent=psutil.cpu_percent(interval=None),
            ram_percent=psutil.virtual_memory().percent,
            rss_mb=round(self._process.memory_info().rss / 2**20, 1),
            gpu_util_percent=gpu_util,
            gpu_memory_mb=gpu_memory,
        )

    def _loop(self) -> None:
        psutil.cpu_percent(interval=None)  # the first reading is meaningless; prime it
        while not self._stop.wait(self.interval):
            append_jsonl(self.path, self.sample())

    def __enter__(self) -> SystemMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        append_jsonl(self.path, self.sample())
