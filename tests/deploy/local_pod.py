"""A rendered pod, run as local processes: the parts of a node that tests/deploy needs.

There is no container engine or cluster here (DESIGN.md), so a container of a rendered pod
becomes a local process, set up the way the kubelet and the container runtime would set it up:

- the image: what the Dockerfile's build stage copies in (manage.py, app/, the entrypoint),
  with the project's .venv standing in for the one `uv sync` builds, and no `.env` (the image
  has none: a developer's `.env` would fill gaps the chart leaves); the runtime stage's `ENV`,
  `WORKDIR`, `ENTRYPOINT` and `CMD`;
- the filesystem: the image's WORKDIR (`/app`) and every `emptyDir` mount (`/tmp`) map to
  local directories, and every path in the environment, command and args is rewritten to match;
- the environment: the image's `ENV`, then `envFrom` (the rendered ConfigMap and Secret), then
  `env`, as the kubelet merges them; the base image's `$PATH` is the host's;
- the command: `command`, else the image's ENTRYPOINT followed by `args` (else CMD);
- init containers run to completion, in order, before the pod's containers start;
- probes as the kubelet sends them: `httpGet` to the pod IP's port (here 127.0.0.1 and the
  local port the container port maps to) with the pod IP as `Host`, over plain HTTP; `exec`
  as a subprocess with the container's environment in its WORKDIR; each within
  `timeoutSeconds`; startup first, then liveness and readiness;
- Services: `ServiceProxy` resolves `http://<service>:<port>` to the pod behind it, for
  clients inside the "cluster" (the `helm test` pod).

Not reproduced: the security context (the processes run as the invoking user, on a writable
tree), resources, lifecycle hooks, the Service links and HOSTNAME the kubelet adds to the
environment. Environment sources, volumes, ports and probes of a kind not handled here, and
$(VAR) references, raise NotEmulated instead of being skipped.
"""

import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import string
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.processes import free_port

from .conftest import PROJECT_ROOT
from .pod_template import (
    NotEmulated,
    PodTemplate,
    ProbeOutcome,
    http_probe,
    probe_spec,
)
from .test_docker import dockerfile_instructions

# Any pod IP: what the kubelet puts in the `Host` header of an httpGet probe (with the port).
POD_IP = "10.1.2.3"
# `helm template` renders for the namespace `default`.
NAMESPACE = "default"
# How often the harness probes: faster than any periodSeconds, so a test takes as long as the
# process needs, not as long as the probe timings allow. Failures count in seconds, not tries.
POLL_SECONDS = 0.25
# How long an init container may take here: the chart's wait for migrations passes at its first
# check (about a second) when they are applied, and loops for ever when they are not.
INIT_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Image:
    """The die-hard image, laid out in a local directory (its WORKDIR)."""

    root: Path
    workdir: str
    env: dict[str, str]
    entrypoint: list[str]
    cmd: list[str]

    @classmethod
    def build(cls, root: Path) -> "Image":
        instructions = dockerfile_instructions()
        runtime = [i for i in instructions if i.stage == "runtime"]
        build_workdir = next(
            i.arguments for i in instructions if i.stage == "build" and i.keyword == "WORKDIR"
        )
        for copy in (i for i in instructions if i.stage == "build" and i.keyword == "COPY"):
            *sources, destination = shlex.split(copy.arguments)
            if sources[0].startswith("--"):
                continue  # from another stage: tools, not the image's content
            for source in sources:
                _copy_into(PROJECT_ROOT / source, root, destination)
        # What the build stage's `uv sync` produces: the project's locked virtualenv.
        (root / ".venv").symlink_to(PROJECT_ROOT / ".venv")

        arguments = dict(
            a.arguments.split("=", 1) for a in runtime if a.keyword == "ARG" and "=" in a.arguments
        )
        env: dict[str, str] = {}
        for instruction in (i for i in runtime if i.keyword == "ENV"):
            for assignment in shlex.split(instruction.arguments):
                name, value = assignment.split("=", 1)
                # The base image's variables (python:3.13-slim's PATH) are the host's here.
                base = {"PATH": os.environ["PATH"], **arguments, **env}
                env[name] = string.Template(value).safe_substitute(base)
        (workdir,) = [i.arguments for i in runtime if i.keyword == "WORKDIR"]
        assert workdir == build_workdir, "the runtime stage copies the build stage's WORKDIR"
        (entrypoint,) = [json.loads(i.arguments) for i in runtime if i.keyword == "ENTRYPOINT"]
        (cmd,) = [json.loads(i.arguments) for i in runtime if i.keyword == "CMD"]
        image = cls(root=root, workdir=workdir, env=env, entrypoint=entrypoint, cmd=cmd)
        # What the build stage's collectstatic produces. No page under test serves a static file,
        # so an empty directory stands in (WhiteNoise only warns about a missing one).
        if "STATIC_ROOT" in env:
            Path(localize(env["STATIC_ROOT"], {workdir: root})).mkdir(parents=True)
        return image


def _copy_into(source: Path, root: Path, destination: str) -> None:
    """Docker's `COPY source destination`, relative to the WORKDIR `root`."""
    target = root / destination
    if destination.endswith("/"):
        target = target / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        # .dockerignore leaves bytecode out of the build context.
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    else:
        shutil.copy2(source, target)


def localize(text: str, mounts: dict[str, Path]) -> str:
    """`text` with every absolute path under a mount point (`/app/...`, `/tmp`) rewritten to the
    local directory standing in for it."""
    points = "|".join(re.escape(point) for point in sorted(mounts, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w.~/-])({points})(?=/|$|[\s:;,'\"])")
    return pattern.sub(lambda match: str(mounts[match[1]]), text)


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class ContainerProcess:
    """A running container: its main process leads its own process group."""

    name: str
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def terminate(self, grace_seconds: float) -> float | None:
        """SIGTERM to the main process, as the kubelet sends it; SIGKILL to every process of
        the container once `grace_seconds` have passed. The seconds it took to exit, or None
        when it had to be killed."""
        started = time.monotonic()
        took: float | None = None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace_seconds)
                took = time.monotonic() - started
            except subprocess.TimeoutExpired:
                pass
        else:
            took = 0.0
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # what is left of its process group
        self.process.wait()
        return took


# Adapts one container's environment to a local process: (pod, container, env) -> overrides.
Adaptation = Callable[["LocalPod", dict, dict[str, str]], dict[str, str]]


class LocalPod(PodTemplate):
    """One pod of the rendered `documents` (a Deployment's or Job's template, or a Pod), its
    files under `directory`. `adapt` gives each container's local overrides of its env."""

    def __init__(
        self,
        workload: dict,
        documents: list[dict],
        image: Image,
        directory: Path,
        adapt: Adaptation | None = None,
    ):
        super().__init__(workload, documents)
        self.image, self.adapt = image, adapt
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        # container name -> the variables `adapt` changed (for the test to hold them to a list).
        self.adapted: dict[str, dict[str, str]] = {}
        # containerPort -> the local port standing in for it: the same one when it is free.
        self.ports: dict[int, int] = {}
        for container in self.spec["containers"]:
            for port in container.get("ports", []):
                number = port["containerPort"]
                if port.get("protocol", "TCP") != "TCP":
                    raise NotEmulated(f"{port}: only TCP ports are mapped")
                self.ports[number] = number if port_is_free(number) else free_port()
        self._volume_dirs: dict[str, Path] = {}
        for volume in self.spec.get("volumes", []):
            if "emptyDir" not in volume:
                raise NotEmulated(f"volume {volume['name']}: only emptyDir volumes are emulated")
            self._volume_dirs[volume["name"]] = self.directory / "volumes" / volume["name"]
            self._volume_dirs[volume["name"]].mkdir(parents=True)

    # --- filesystem, environment, command ------------------------------------------------

    def mounts(self, container: dict) -> dict[str, Path]:
        mounts = {self.image.workdir: self.image.root}
        for mount in container.get("volumeMounts", []):
            if mount.get("subPath"):
                raise NotEmulated(f"{mount}: subPath mounts are not emulated")
            mounts[mount["mountPath"]] = self._volume_dirs[mount["name"]]
        return mounts

    def localize(self, container: dict, text: str) -> str:
        return localize(text, self.mounts(container))

    def rendered_env(self, container: dict) -> dict[str, str]:
        """The environment Kubernetes gives the container: the image's ENV, then envFrom in
        order, then env (later sources win), with paths mapped to the local directories."""
        env = {**self.image.env, **self.spec_env(container)}
        return {name: self.localize(container, value) for name, value in env.items()}

    def env(self, container: dict) -> dict[str, str]:
        """`rendered_env`, with the local adaptations of `adapt` on top."""
        env = self.rendered_env(container)
        overrides = self.adapt(self, container, env) if self.adapt else {}
        self.adapted[container["name"]] = overrides
        return {**env, **overrides}

    def argv(self, container: dict) -> list[str]:
        if "command" in container:
            argv = [*container["command"], *container.get("args", [])]
        else:
            argv = [*self.image.entrypoint, *container.get("args", self.image.cmd)]
        if any("$(" in part for part in argv):
            raise NotEmulated(f"{argv}: $(VAR) references are not expanded here")
        return [self.localize(container, part) for part in argv]

    def workdir(self, container: dict) -> str:
        return self.localize(container, container.get("workingDir", self.image.workdir))

    # --- running ---------------------------------------------------------------------------

    def start(self, name: str) -> ContainerProcess:
        container = self.container(name)
        log_path = self.directory / f"{name}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                self.argv(container),
                cwd=self.workdir(container),
                env=self.env(container),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return ContainerProcess(name, process, log_path)

    def run_to_completion(self, name: str, *, timeout: float) -> tuple[int | None, str]:
        """Run a container that is meant to finish (an init container, a Job's, a test pod's):
        its exit code (None when it was still running after `timeout` seconds) and output."""
        running = self.start(name)
        try:
            code = running.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            running.terminate(grace_seconds=0)
        return code, running.log_path.read_text(errors="replace")

    def run_init_containers(self, *, timeout: float = INIT_TIMEOUT_SECONDS) -> None:
        for container in self.spec.get("initContainers", []):
            code, output = self.run_to_completion(container["name"], timeout=timeout)
            outcome = f"exited {code}" if code is not None else f"still ran after {timeout}s"
            assert code == 0, (
                f"{self.name}: init container {container['name']} {outcome}:\n{output}"
            )

    @contextmanager
    def running(self, name: str) -> Iterator[ContainerProcess]:
        """The container started after the pod's init containers; stopped on leaving as the
        kubelet stops it (SIGTERM, SIGKILL after the pod's grace period)."""
        self.run_init_containers()
        process = self.start(name)
        try:
            yield process
        finally:
            process.terminate(grace_seconds=self.grace_seconds)

    # --- probes ----------------------------------------------------------------------------

    def probe(self, name: str, kind: str) -> ProbeOutcome:
        """One probe of the container `name`, as the kubelet runs it."""
        container = self.container(name)
        spec = probe_spec(container, kind)
        if "httpGet" in spec:
            return self._http_probe(container, spec["httpGet"], timeout=spec["timeoutSeconds"])
        if "exec" in spec:
            return self._exec_probe(container, spec["exec"], timeout=spec["timeoutSeconds"])
        raise NotEmulated(f"{name} {kind}: {container[kind]}")

    def _http_probe(self, container: dict, get: dict, *, timeout: float) -> ProbeOutcome:
        port = self.container_port(container, get["port"])
        local = ("127.0.0.1", self.ports[port])
        return http_probe(get, pod_ip=POD_IP, port=port, connect=local, timeout=timeout)

    def _exec_probe(self, container: dict, exec_: dict, *, timeout: float) -> ProbeOutcome:
        command = [self.localize(container, part) for part in exec_["command"]]
        try:
            result = subprocess.run(
                command,
                cwd=self.workdir(container),
                env=self.env(container),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return ProbeOutcome(False, f"{shlex.join(command)}: timed out after {timeout}s")
        output = (result.stdout + result.stderr).strip()
        return ProbeOutcome(
            result.returncode == 0, f"{shlex.join(command)}: exit {result.returncode} {output}"
        )

    def await_probes(self, process: ContainerProcess, *, wait_limit: float) -> dict[str, float]:
        """Probe the running container as the kubelet does: the startup probe until it passes,
        then liveness and readiness. Each must pass within what its timings allow
        (initialDelaySeconds + periodSeconds * failureThreshold: after that many failures the
        kubelet restarts the container, or would have reported the pod unready for as long as
        its readiness probe tolerates), and this harness waits at most `wait_limit` seconds for
        any of them. Returns the seconds each took from the container's start."""
        container = self.container(process.name)
        started = time.monotonic()
        took: dict[str, float] = {}
        phases = [["startupProbe"], ["livenessProbe", "readinessProbe"]]
        for phase in phases:
            phase_started = time.monotonic()
            waiting = {kind: probe_spec(container, kind) for kind in phase if kind in container}
            last: dict[str, ProbeOutcome] = {}
            while waiting:
                elapsed = time.monotonic() - phase_started
                if process.process.poll() is not None:
                    raise AssertionError(
                        f"{self.name}/{process.name} exited with {process.process.returncode} "
                        f"before its {', '.join(waiting)} passed ({last})\n{process.log_tail()}"
                    )
                for kind, spec in list(waiting.items()):
                    budget = spec["initialDelaySeconds"] + (
                        spec["periodSeconds"] * spec["failureThreshold"]
                    )
                    if elapsed < spec["initialDelaySeconds"]:
                        continue
                    last[kind] = self.probe(process.name, kind)
                    if last[kind].passed:
                        took[kind] = round(time.monotonic() - started, 2)
                        del waiting[kind]
                    elif elapsed > min(budget, wait_limit):
                        raise AssertionError(
                            f"{self.name}/{process.name}: {kind} did not pass within "
                            f"{min(budget, wait_limit):.0f}s (its timings allow {budget}s); "
                            f"last: {last[kind].detail}\n{process.log_tail()}"
                        )
                if waiting:
                    time.sleep(POLL_SECONDS)
        return took


def service_routes(documents: list[dict], pods: list[LocalPod]) -> dict[tuple[str, int], int]:
    """(service host name, service port) -> the local port of the pod container behind it."""
    routes = {}
    for service in (d for d in documents if d["kind"] == "Service"):
        selector = service["spec"]["selector"]
        selected = [pod for pod in pods if selector.items() <= pod.labels.items()]
        if not selected:  # its pods are not running here: a Service without endpoints
            continue
        (pod,) = selected
        name = service["metadata"]["name"]
        hosts = [
            name,
            f"{name}.{NAMESPACE}",
            f"{name}.{NAMESPACE}.svc",
            f"{name}.{NAMESPACE}.svc.cluster.local",
        ]
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            if isinstance(target, str):
                (target,) = [
                    declared["containerPort"]
                    for container in pod.spec["containers"]
                    for declared in container.get("ports", [])
                    if declared.get("name") == target
                ]
            for host in hosts:
                routes[host, port["port"]] = pod.ports[target]
    return routes


_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "te",
    "trailer",
}


class ServiceProxy:
    """Cluster DNS and kube-proxy for plain-HTTP clients that honour `http_proxy`: a request
    for http://<service>[:<port>]/... goes, unchanged (its Host still the Service's name), to
    the local port of the container behind that Service port; an unknown name gets 502."""

    def __init__(self, routes: dict[tuple[str, int], int]):
        self.routes = routes
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                proxy._forward(self)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        # GET only: all the `helm test` pod sends.
        target = urlsplit(handler.path)
        local_port = self.routes.get((target.hostname, target.port or 80))
        if local_port is None:
            handler.send_error(502, f"no Service answers at {target.hostname}:{target.port or 80}")
            return
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        path = target.path + (f"?{target.query}" if target.query else "")
        connection = http.client.HTTPConnection("127.0.0.1", local_port, timeout=30)
        try:
            connection.request(handler.command, path, headers=headers)
            response = connection.getresponse()
            body = response.read()
        except OSError as error:
            handler.send_error(502, f"{target.hostname}: {error}")
            return
        finally:
            connection.close()
        handler.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP | {"content-length"}:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(body)
