"""The house plan holds: `make lint` catches a broken layer, a settings import from the domain,
the product importing a development tool, and a raw environment read outside the settings.

Each check runs the real tool (import-linter, ruff) on a copy of the code with one deliberate
violation added, and on the code as it is.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.config.env import PROJECT_ROOT

BIN = Path(sys.executable).parent


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache"],
        cwd=root,
        env={"PATH": f"{BIN}:/usr/bin:/bin", "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory) -> Path:
    """The packages import-linter reads, and its configuration, in a scratch directory."""
    root = tmp_path_factory.mktemp("house")
    ignore = shutil.ignore_patterns("__pycache__", "results")
    for package in ("app", "devtools", "tests", "bench"):
        shutil.copytree(PROJECT_ROOT / package, root / package, ignore=ignore)
    shutil.copy2(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_code_keeps_every_contract():
    result = _lint_imports(PROJECT_ROOT)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "violation", "contract"),
    [
        (
            "app/clickhouse/violation.py",
            "from app.outbox import models\n",
            "Layers: config > users > outbox > core > clickhouse",
        ),
        (
            "app/core/violation.py",
            "def late():\n    from app.users.models import User\n    return User\n",
            "Layers: config > users > outbox > core > clickhouse",
        ),
        (
            "app/outbox/violation.py",
            "from app.config.blocks.outbox import OUTBOX_BATCH_SIZE\n",
            "Settings only through django.conf outside app.config",
        ),
        (
            "app/users/violation.py",
            "import environ\n",
            "Settings only through django.conf outside app.config",
        ),
        (
            "app/outbox/violation.py",
            "from devtools import clickhouse_http\n",
            "The product never imports development tools, tests or benchmarks",
        ),
        (
            "app/config/violation.py",
            "from tests.support import processes\n",
            "The product never imports development tools, tests or benchmarks",
        ),
    ],
    ids=["clickhouse-imports-outbox", "core-imports-users-late", "outbox-imports-config",
         "users-imports-environ", "outbox-imports-devtools", "config-imports-tests"],
)  # fmt: skip
def test_a_deliberate_violation_breaks_its_contract(project_copy, module, violation, contract):
    path = project_copy / module
    path.write_text(violation)
    try:
        result = _lint_imports(project_copy)
    finally:
        path.unlink()

    assert result.returncode == 1, result.stdout
    assert f"{contract} BROKEN" in result.stdout


def test_a_probe_that_loads_celery_breaks_its_contract(project_copy):
    probe = project_copy / "app" / "config" / "probe.py"
    original = probe.read_text()
    probe.write_text(original + "\nimport celery  # noqa\n")
    try:
        result = _lint_imports(project_copy)
    finally:
        probe.write_text(original)

    assert result.returncode == 1
    assert "Exec probes load neither Django's settings nor Celery BROKEN" in result.stdout


def _ruff(path_in_project: str, source: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ruff"), "check", "--stdin-filename", path_in_project, "-"],
        cwd=PROJECT_ROOT,
        input=source,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "source",
    [
        "import os\n\nTIMEOUT = os.environ.get('TIMEOUT')\n",
        "import os\n\nTIMEOUT = os.getenv('TIMEOUT')\n",
        "from os import environ\n\nTIMEOUT = environ['TIMEOUT']\n",
    ],
)
def test_ruff_refuses_environment_reads_outside_the_settings(source):
    result = _ruff("app/outbox/relay_timeout.py", source)

    assert result.returncode == 1
    assert "TID251" in result.stdout
    assert "app/config/env.py" in result.stdout


def test_the_settings_may_read_the_environment():
    source = (PROJECT_ROOT / "app" / "config" / "env.py").read_text()

    assert _ruff("app/config/env.py", source).returncode == 0
