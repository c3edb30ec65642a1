"""The exec probe command: cheap (neither Django's settings nor Celery loaded), configured by
the same settings declarations as the processes it watches, clear when it fails."""

import json
import subprocess
import sys

from app.config.env import PROJECT_ROOT
from app.core.heartbeat_files import heartbeat_path, readiness_path


def _probe(check: str, env: dict[str, str], *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *options, "-m", "app.config.probe", check],
        cwd=PROJECT_ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_probe_imports_neither_django_settings_nor_celery(tmp_path):
    heartbeat_path(tmp_path, "worker").touch()

    result = _probe("worker-live", {"PROBE_DIR": str(tmp_path)}, "-X", "importtime")

    assert result.returncode == 0, result.stderr
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "app.config.blocks.probes" in imported
    heavy = {"celery", "kombu", "django.conf", "django.apps", "django.db", "app.config.settings"}
    assert not imported & heavy
    assert not any(
        module.startswith(("celery.", "django.db.", "django.conf.")) for module in imported
    )


def test_the_probe_reads_its_variables_through_the_settings_parser(tmp_path):
    path = readiness_path(tmp_path, "relay")
    path.write_text(json.dumps({"database": "ok", "clickhouse": "unavailable"}))
    env = {"PROBE_DIR": str(tmp_path), "PROBE_INTERVAL": "60"}

    failing = _probe("relay-ready", env)

    assert failing.returncode == 1
    assert failing.stderr == "relay-ready: unavailable: {'clickhouse': 'unavailable'}\n"

    misconfigured = _probe("relay-ready", {**env, "PROBE_INTERVAL": "ten"})

    assert misconfigured.returncode == 78
    assert "configuration error: PROBE_INTERVAL has an invalid value" in misconfigured.stderr
