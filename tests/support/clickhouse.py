"""The ClickHouse the tests talk to: a real server when CLICKHOUSE_URL points at one, otherwise
the embedded engine served over ClickHouse's HTTP interface (devtools.clickhouse_http), so that
every process of a test uses the production HTTP code path."""

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.clickhouse.client import clickhouse_client
from app.clickhouse.event_log import event_log_table
from app.config.env import PROJECT_ROOT


@contextmanager
def running_devserver(data_dir: Path, *options: str, port: int = 0) -> Iterator[str]:
    """Start the embedded-engine HTTP front on `port` (0: any free one), with extra
    command-line `options`; yields its URL.

    On leaving, the front gets SIGTERM and must exit cleanly.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.clickhouse_http", "--path", str(data_dir),
         "--host", "127.0.0.1", "--port", str(port), *options],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None
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


def event_log_count(**filters: str) -> int:
    """Events in ClickHouse, each counted once however often it was delivered (FINAL)."""
    where = " AND ".join(f"{column} = %({column})s" for column in filters) or "1"
    return int(
        clickhouse_client()
        .query(f"SELECT count() FROM {event_log_table()} FINAL WHERE {where}", parameters=filters)
        .first_row[0]
    )


def event_log_plain_count() -> int:
    """Rows physically in ClickHouse, duplicates included (no FINAL): what `count()`, materialized
    views and projections see."""
    return int(clickhouse_client().query(f"SELECT count() FROM {event_log_table()}").first_row[0])
