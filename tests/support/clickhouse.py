"""The ClickHouse the tests talk to: a real server when CLICKHOUSE_URL points at one, otherwise
the embedded engine served over ClickHouse's HTTP interface (app.clickhouse.devserver), so that
every process of a test uses the production HTTP code path."""

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def running_devserver(data_dir: Path, *, port: int = 0) -> Iterator[str]:
    """Start the embedded-engine HTTP front on `port` (0: any free one); yields its URL.

    On leaving, the front gets SIGTERM and must exit cleanly.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "app.clickhouse.devserver", "--path", str(data_dir),
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        first_line = process.stdout.readline().split()
        if first_line[:1] != ["listening"]:
            raise RuntimeError(f"devserver did not start: {first_line!r}")
        yield f"http://{first_line[1]}/"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()
    if process.returncode != 0:
        raise RuntimeError(f"devserver exited with {process.returncode} on SIGTERM")
