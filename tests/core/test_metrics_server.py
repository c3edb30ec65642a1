import json
import os
import socket
import time

import pytest

from app.core.heartbeat_files import heartbeat_path
from app.core.metrics_server import HeartbeatAgeCollector, MetricsBindError, metrics_serve

# Run in a fresh interpreter: the multiprocess directory is chosen once per process, before
# prometheus_client is imported.
PREPARE = """
import json, os, sys
from app.core.metrics_server import metrics_multiprocess_prepare
directory = metrics_multiprocess_prepare("web")
print(json.dumps({"directory": str(directory), "files": os.listdir(directory),
                  "variable": os.environ["PROMETHEUS_MULTIPROC_DIR"], "pid": os.getpid()}))
"""


def _samples(collector) -> dict:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in collector.collect()
        for sample in family.samples
    }


def test_heartbeat_age_is_the_age_of_the_role_heartbeat_file(tmp_path):
    collector = HeartbeatAgeCollector(tmp_path, "beat")
    assert _samples(collector) == {}  # no heartbeat yet: no value rather than a made-up one

    path = heartbeat_path(tmp_path, "beat")
    path.touch()
    os.utime(path, (time.time() - 42, time.time() - 42))

    ((name, labels), age), *_ = _samples(collector).items()
    assert name == "die_hard_heartbeat_age_seconds"
    assert labels == (("role", "beat"),)
    assert 42 <= age < 45


def test_the_parent_gets_a_fresh_directory_and_removes_what_dead_parents_left(
    isolated_project, tmp_path
):
    root = tmp_path / "die-hard-metrics"
    dead = root / "web-999999999"  # no such process
    dead.mkdir(parents=True)
    (dead / "counter_1.db").write_bytes(b"old counts")
    env = {"TMPDIR": str(tmp_path), "DEBUG": "true"}

    result = isolated_project.run("-c", PREPARE, env=env)

    assert result.returncode == 0, result.stderr
    made = json.loads(result.stdout)
    assert made["directory"] == made["variable"] == str(root / f"web-{made['pid']}")
    assert made["files"] == []
    assert not dead.exists()
    # Removed again when the parent exits.
    assert not (root / f"web-{made['pid']}").exists()


def test_the_directory_must_be_chosen_before_prometheus_client_is_imported(isolated_project):
    result = isolated_project.run("-c", "import prometheus_client\n" + PREPARE, env={})

    assert result.returncode != 0
    assert "imported before the metrics directory was chosen" in result.stderr


def test_a_metrics_port_that_cannot_be_served_names_metrics_bind():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(MetricsBindError, match=f"METRICS_BIND 127.0.0.1:{port}"):
            metrics_serve(("127.0.0.1", port), role="relay")
