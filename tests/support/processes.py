"""Helpers for tests that start real processes and wait for them."""

import socket
import subprocess
import sys
import time
from collections.abc import Callable

from app.config.env import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition: Callable[[], bool], *, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def probe_exit_code(check: str, env: dict[str, str]) -> int:
    """Run an exec probe as the kubelet would (`python -m app.config.probe CHECK`)."""
    return subprocess.run(
        [sys.executable, "-m", "app.config.probe", check],
        cwd=PROJECT_ROOT,
        env=env,
        check=False,
        capture_output=True,
    ).returncode
