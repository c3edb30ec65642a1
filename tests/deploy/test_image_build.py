"""docker/engine.sh and docker/build-image.sh (`make image`), run against fake engines.

The real build (podman here, about 40 s with the base images) is not part of the test suite;
docs/deployment.md has its commands and figures. These tests pin which engine is chosen and
what it is asked to do, with a PATH holding only fakes and the few tools the scripts use.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import PROJECT_ROOT

BASH = shutil.which("bash")
DOCKERFILE = PROJECT_ROOT / "docker" / "Dockerfile"
TOOLS = ("bash", "cat", "chmod", "dirname", "head", "mkdir", "sed")


def _fake(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!{BASH}\n{script}\n")
    path.chmod(0o755)


@pytest.fixture
def fake_bin(tmp_path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        (bin_dir / tool).symlink_to(shutil.which(tool))
    return bin_dir


def _engine_command(name: str, *, info_ok: bool = True) -> str:
    """A fake engine: `info` answers or not, every call is logged, `image inspect` succeeds."""
    return f'echo "{name} $*" >> "$CALLS"\n[ "$1" = info ] && exit {0 if info_ok else 1}\nexit 0'


def _run(script: str, fake_bin: Path, tmp_path: Path, uid: int = 0, **env: str):
    _fake(fake_bin, "id", f'[ "$1" = -u ] && echo {uid}')
    calls = tmp_path / "calls"
    calls.touch()
    result = subprocess.run(
        [BASH, str(PROJECT_ROOT / script)],
        env={
            "PATH": str(fake_bin),
            "CALLS": str(calls),
            "CONTAINERS_CONF_DIR": str(tmp_path / "containers.conf.d"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result, calls.read_text().splitlines()


def test_docker_when_its_engine_answers(fake_bin, tmp_path):
    _fake(fake_bin, "docker", _engine_command("docker"))
    _fake(fake_bin, "podman", _engine_command("podman"))
    result, calls = _run("docker/engine.sh", fake_bin, tmp_path)
    assert (result.returncode, result.stdout) == (0, "docker\n"), result.stderr
    assert calls == ["docker info"]


def test_podman_when_docker_is_only_a_client(fake_bin, tmp_path):
    _fake(fake_bin, "docker", _engine_command("docker", info_ok=False))
    _fake(fake_bin, "podman", _engine_command("podman"))
    result, _ = _run("docker/engine.sh", fake_bin, tmp_path)
    assert (result.returncode, result.stdout) == (0, "podman\n"), result.stderr
    conf = (tmp_path / "containers.conf.d" / "die-hard.conf").read_text()
    assert 'runtime = "runc"' in conf
    assert 'default_ulimits = ["nofile=20000:20000", "nproc=1000:1000"]' in conf


def test_podman_and_runc_installed_with_apt_get_as_root(fake_bin, tmp_path):
    podman = _engine_command("podman").replace("\n", "\\n").replace('"', '\\"')
    _fake(
        fake_bin,
        "apt-get",
        f'echo "apt-get $*" >> "$CALLS"\nprintf "#!{BASH}\\n{podman}\\n" > "{fake_bin}/podman"\n'
        f'chmod +x "{fake_bin}/podman"',
    )
    result, calls = _run("docker/engine.sh", fake_bin, tmp_path)
    assert (result.returncode, result.stdout) == (0, "podman\n"), result.stderr
    assert calls == ["apt-get install --yes --quiet podman runc"]


def test_no_engine_and_not_root_says_what_to_install(fake_bin, tmp_path):
    _fake(fake_bin, "apt-get", 'echo "apt-get $*" >> "$CALLS"')
    result, calls = _run("docker/engine.sh", fake_bin, tmp_path, uid=1000)
    assert result.returncode == 1
    assert "apt-get install podman runc" in result.stderr
    assert calls == []


def _build_calls(calls: list[str], engine: str) -> list[str]:
    return [c.split(" ", 2)[2] for c in calls if c.startswith(f"{engine} build ")]


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_make_image_builds_on_the_host_network(fake_bin, tmp_path, engine):
    _fake(fake_bin, "docker", _engine_command("docker", info_ok=engine == "docker"))
    _fake(fake_bin, "podman", _engine_command("podman"))
    ca_bundle = tmp_path / "ca.crt"
    ca_bundle.touch()
    env = {"IMAGE": "die-hard", "VERSION": "1.2.3", "CA_BUNDLE": str(ca_bundle)}
    result, calls = _run("docker/build-image.sh", fake_bin, tmp_path, **env)
    assert result.returncode == 0, result.stderr
    (build,) = _build_calls(calls, engine)
    assert build.startswith("--file docker/Dockerfile --network host ")
    assert "--build-arg APP_VERSION=1.2.3 --tag die-hard:1.2.3" in build
    assert "PYTHON_IMAGE" not in build, "the Dockerfile's own bases by default"
    # docker build cannot mount a file into RUN steps; podman can: the host's CA bundle.
    mount = f"--volume {ca_bundle}:/etc/ssl/certs/ca-certificates.crt:ro"
    assert (mount in build) == (engine == "podman")


def test_make_image_with_local_bases_names_the_stand_ins(fake_bin, tmp_path):
    _fake(fake_bin, "podman", _engine_command("podman"))
    env = {"IMAGE": "die-hard", "VERSION": "1.2.3", "BASES": "local"}
    result, calls = _run("docker/build-image.sh", fake_bin, tmp_path, **env)
    assert result.returncode == 0, result.stderr
    uv_tag = re.search(r"^ARG UV_IMAGE=\S+:(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)[1]
    (build,) = _build_calls(calls, "podman")
    assert "--build-arg PYTHON_IMAGE=localhost/die-hard-base/python:3.13-trixie" in build
    assert f"--build-arg UV_IMAGE=localhost/die-hard-base/uv:{uv_tag}" in build
