"""docker/: what can be checked without a container engine, checked for real.

The Dockerfile's instructions are parsed and held to the image contract; its collectstatic step
runs here with the Dockerfile's own build-time environment; its dependency step is resolved by
uv from the lock; the compose file starts entrypoint roles with real settings names.
"""

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from urllib.parse import urlparse

import pytest
import yaml

from app.config import probe

from .conftest import PROJECT_ROOT, entrypoint_roles, settings_names

DOCKER = PROJECT_ROOT / "docker"
RUNTIME_PYTHON = "cp313"
# Where the containers get a writable tmpfs / emptyDir (the root filesystem is read-only).
WRITABLE_TMP = "/tmp"  # noqa: S108


@dataclass(frozen=True)
class Instruction:
    stage: str
    keyword: str
    arguments: str


def dockerfile_instructions() -> list[Instruction]:
    text = (DOCKER / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)  # line continuations
    instructions, stage = [], "(global)"
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.search(r"\bAS\s+(\S+)", arguments, re.IGNORECASE)
            stage = match[1] if match else arguments
        instructions.append(Instruction(stage, keyword, arguments.strip()))
    return instructions


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return dockerfile_instructions()


def _stage(instructions, name) -> list[Instruction]:
    return [i for i in instructions if i.stage == name]


def test_dockerfile_is_multi_stage_on_python_313_slim(instructions):
    global_args = {i.arguments for i in instructions if i.stage == "(global)"}
    assert "PYTHON_IMAGE=python:3.13-slim" in global_args
    stages = [i.arguments for i in instructions if i.keyword == "FROM"]
    assert "${PYTHON_IMAGE} AS build" in stages
    assert stages[-1] == "${PYTHON_IMAGE} AS runtime", "the runtime stage is the default target"


def test_runtime_stage_is_lean_non_root_and_labelled(instructions):
    runtime = _stage(instructions, "runtime")
    keywords = [i.keyword for i in runtime]
    for run in (i.arguments for i in runtime if i.keyword == "RUN"):
        assert not re.search(r"apt-get|apk|gcc|build-essential|\buv\b|pip install", run), run
    copies = [i.arguments for i in runtime if i.keyword == "COPY"]
    assert copies
    assert all(copy.startswith("--from=build") for copy in copies)
    (user,) = [i.arguments for i in runtime if i.keyword == "USER"]
    assert user.split(":")[0] not in ("0", "root")
    assert keywords.index("USER") > max(k for k, w in enumerate(keywords) if w in ("RUN", "COPY"))
    environment = " ".join(i.arguments for i in runtime if i.keyword == "ENV")
    assert "PYTHONUNBUFFERED=1" in environment
    assert "STATIC_ROOT=/app/staticfiles" in environment
    assert "APP_VERSION=${APP_VERSION}" in environment
    assert "ARG APP_VERSION=dev" in [f"ARG {i.arguments}" for i in runtime if i.keyword == "ARG"]
    labels = " ".join(i.arguments for i in runtime if i.keyword == "LABEL")
    assert 'org.opencontainers.image.version="${APP_VERSION}"' in labels
    assert "EXPOSE 8000" in [f"EXPOSE {i.arguments}" for i in runtime if i.keyword == "EXPOSE"]


def test_image_starts_entrypoint_roles(instructions):
    runtime = _stage(instructions, "runtime")
    (entrypoint,) = [i.arguments for i in runtime if i.keyword == "ENTRYPOINT"]
    (command,) = [i.arguments for i in runtime if i.keyword == "CMD"]
    assert yaml.safe_load(entrypoint) == ["/app/docker/entrypoint.sh"]
    (role,) = yaml.safe_load(command)
    assert role in entrypoint_roles()
    assert os.access(DOCKER / "entrypoint.sh", os.X_OK)


def test_the_dependency_layer_is_rebuilt_when_the_lock_changes(instructions):
    """podman's builder (buildah) keys a RUN step's cache on its text, not on the content of the
    files it bind-mounts: with `--mount=type=bind,source=uv.lock` a changed lock reused the old
    layer and the image lacked the new dependency. COPY puts the files' content in the key."""
    build = _stage(instructions, "build")
    (sync,) = [k for k, i in enumerate(build) if i.keyword == "RUN" and "uv sync" in i.arguments]
    assert "type=bind" not in build[sync].arguments
    copied = [
        source
        for i in build[:sync]
        if i.keyword == "COPY" and not i.arguments.startswith("--from")
        for source in shlex.split(i.arguments)[:-1]
    ]
    assert {"pyproject.toml", "uv.lock"} <= set(copied)


def test_dependencies_come_from_the_lock_without_dev_tools(instructions):
    build = " ".join(i.arguments for i in _stage(instructions, "build") if i.keyword == "RUN")
    assert "uv sync --frozen --no-dev" in build
    uv = [shutil.which("uv")] if shutil.which("uv") else [sys.executable, "-m", "uv"]
    result = subprocess.run(
        [*uv, "sync", "--frozen", "--no-dev", "--no-install-project", "--dry-run"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": "/nonexistent/venv"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    installed = dict(re.findall(r"^ \+ ([A-Za-z0-9_.-]+)==(\S+)$", result.stderr, re.MULTILINE))
    assert {"django", "gunicorn", "celery", "psycopg", "clickhouse-connect", "whitenoise"} <= set(
        installed
    )
    assert not {"chdb", "pytest", "ruff", "kubernetes-validate"} & set(installed)
    # Every runtime package installs from a wheel for CPython 3.13 on linux: no compiler needed.
    lock = tomllib.loads((PROJECT_ROOT / "uv.lock").read_text())
    wheels = {
        p["name"]: [w["url"].rsplit("/", 1)[1] for w in p.get("wheels", [])]
        for p in lock["package"]
    }
    needs_compiler = [name for name in installed if not any(map(_runs_on_313_linux, wheels[name]))]
    assert not needs_compiler, f"no CPython 3.13 linux wheel for {needs_compiler}"


def _runs_on_313_linux(wheel: str) -> bool:
    *_, python, abi, platform = wheel.removesuffix(".whl").split("-")
    # python:3.13-slim is Debian (glibc) on x86_64: manylinux wheels, not musllinux ones.
    if platform != "any" and not ("manylinux" in platform and "x86_64" in platform):
        return False
    if abi == "none":
        return any(tag in ("py3", RUNTIME_PYTHON) for tag in python.split("."))
    if abi == "abi3":
        return any(tag.startswith("cp3") and int(tag[3:]) <= 13 for tag in python.split("."))
    return RUNTIME_PYTHON in python.split(".") and abi == RUNTIME_PYTHON


def test_collectstatic_runs_with_the_dockerfiles_build_environment(
    instructions, isolated_project_factory, tmp_path
):
    (step,) = [i.arguments for i in _stage(instructions, "build") if "collectstatic" in i.arguments]
    words = shlex.split(step.split("&&")[0])
    environment = dict(word.split("=", 1) for word in words if re.match(r"^[A-Z_]+=", word))
    command = [word for word in words if not re.match(r"^[A-Z_]+=", word)]
    assert command[1:] == ["manage.py", "collectstatic", "--noinput"]
    assert environment["DEBUG"] == "false", "production storage: hashed names and a manifest"
    assert environment["STATIC_ROOT"] == "/app/staticfiles"
    project = isolated_project_factory(tmp_path / "project")
    static_root = tmp_path / "static"
    result = project.manage(
        "collectstatic",
        "--noinput",
        env={**environment, "STATIC_ROOT": str(static_root)},
    )
    assert result.returncode == 0, result.stderr
    assert (static_root / "staticfiles.json").is_file()
    assert list(static_root.glob("admin/css/base.*.css")), "hashed admin stylesheet"


def _dockerignore_includes(path: str) -> bool:
    included = True
    for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        exception = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes):
            included = exception
    return included


def test_build_context_holds_what_the_dockerfile_copies_and_nothing_secret(instructions):
    sources = ["pyproject.toml", "uv.lock"]
    for copy in (i.arguments for i in instructions if i.keyword == "COPY"):
        if copy.startswith("--from"):
            continue
        *copied, _destination = copy.split()
        sources += copied
    for source in sources:
        assert (PROJECT_ROOT / source).exists(), source
        assert _dockerignore_includes(source.rstrip("/")), f"{source} is excluded"
    assert _dockerignore_includes("app/config/probe.py")
    for private in (
        ".env",
        ".venv/bin/python",
        ".data/clickhouse",
        ".git/HEAD",
        "tests/conftest.py",
    ):
        assert not _dockerignore_includes(private), f"{private} would enter the build context"
    assert not _dockerignore_includes("app/core/__pycache__/probe.cpython-313.pyc")


def _image_files(instructions) -> list[str]:
    """The project files the Dockerfile's COPY lines put into the image (after .dockerignore)."""
    copied_sources = []
    for copy in (i.arguments for i in instructions if i.keyword == "COPY"):
        if not copy.startswith("--from"):
            *sources, _destination = copy.split()
            copied_sources += [source.rstrip("/") for source in sources]
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [
        path
        for path in tracked
        if _dockerignore_includes(path)
        and any(path == source or path.startswith(f"{source}/") for source in copied_sources)
    ]


def test_the_image_holds_the_product_and_no_development_tool(instructions):
    files = _image_files(instructions)

    assert "app/config/probe.py" in files
    assert "docker/entrypoint.sh" in files
    outside_the_product = [
        path
        for path in files
        if not path.startswith("app/")
        # pyproject.toml and uv.lock: the record of what /app/.venv holds (the dependency step).
        and path not in ("manage.py", "docker/entrypoint.sh", "pyproject.toml", "uv.lock")
    ]
    assert outside_the_product == []
    # The embedded ClickHouse and its HTTP front are development tools (devtools/, chdb).
    assert not [path for path in files if "devtools" in path or "clickhouse_http" in path]
    for source in files:
        if source.endswith(".py"):
            text = (PROJECT_ROOT / source).read_text()
            assert "import chdb" not in text, source
            assert "from chdb" not in text, source


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def _app_services(compose) -> dict[str, dict]:
    return {name: s for name, s in compose["services"].items() if "build" in s}


def test_compose_runs_the_roles_from_one_image(compose):
    apps = _app_services(compose)
    assert {"web", "worker", "beat", "migrate"} <= set(apps)
    assert {"postgres", "redis", "clickhouse"} <= set(compose["services"])
    assert compose["services"]["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert len({s["image"] for s in apps.values()}) == 1
    for name, service in apps.items():
        build = service["build"]
        assert (DOCKER / build["context"]).resolve() == PROJECT_ROOT
        assert build["dockerfile"] == "docker/Dockerfile"
        role = service["command"][0]
        assert role in entrypoint_roles(), f"{name}: {role}"
        assert service["read_only"] is True, name
        assert WRITABLE_TMP in service["tmpfs"], name
        for dependency in service.get("depends_on", {}):
            assert dependency in compose["services"]


def test_compose_environment_uses_the_settings_names_and_its_own_services(compose):
    settings = settings_names()
    for name, service in _app_services(compose).items():
        environment = service["environment"]
        unknown = set(environment) - settings
        assert not unknown, f"{name}: {unknown} are not settings of the application"
        for variable in ("DATABASE_URL", "REDIS_URL", "CLICKHOUSE_URL"):
            host = urlparse(environment[variable]).hostname
            assert host in compose["services"], f"{name}: {variable} points at {host}"
        check = service.get("healthcheck", {}).get("test", [])
        if "app.config.probe" in check:
            assert check[-1] in probe.CHECKS
