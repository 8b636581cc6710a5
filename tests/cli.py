"""Runs the real command line in a fresh interpreter, so a traceback would show on stderr."""

import subprocess
import sys

from maskapp import PROJECT_ROOT


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "maskapp", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
