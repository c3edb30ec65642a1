"""One rendered pod run as podman containers, the way the kubelet and the container runtime run
it (see cluster.py's docstring for the whole list of what is and is not reproduced).

- The pod: a podman pod (its pause container holds the network namespace: one IP on the
  bridge, shared by all its containers, hostname = the pod's name, /etc/hosts with the
  Services' names); every `emptyDir` is a tmpfs of its `sizeLimit` mounted on the host
  (group fsGroup, mode 2777, as the kubelet prepares it) and bound into the containers that
  mount it, so that the pod's containers share it and it outlives container restarts.
- A container: `podman create` from the rendered image, command/args, env (envFrom, env),
  securityContext (user, group, fsGroup as a supplementary group, runAsNonRoot checked against
  the image's user, readOnlyRootFilesystem without podman's extra tmpfs mounts, capabilities,
  allowPrivilegeEscalation, seccomp), volume mounts, resources (cpu and memory limits as cgroup
  limits, the cpu request as cpu shares); never pulled.
- Init containers run in order to completion first; restartPolicy Always/OnFailure restarts a
  failed one with the kubelet's back-off.
- Probes: one thread per probe on its own periodSeconds (initialDelaySeconds from the
  container's start), timeoutSeconds, successThreshold and failureThreshold; the startup probe
  gates liveness and readiness; readiness is probed at once when the startup probe passes;
  liveness failures (and a startup probe out of tries) kill the container (preStop, SIGTERM,
  SIGKILL after the grace period), which is then restarted.
- restartPolicy Always: an exited container is started again, the first time at once, then
  after 10 s, 20 s, … up to 300 s (the kubelet's CrashLoopBackOff), reset after 10 minutes up.
- Termination: the pod leaves the endpoints at once; each container's preStop (exec in the
  container, or sleep), then SIGTERM, then SIGKILL when terminationGracePeriodSeconds (counted
  from the start of preStop) has passed.
- Logs: every container's `podman logs`, saved under the workdir when the pod goes.
"""

import json
import shlex
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from tests.deploy.pod_template import (
    PROBE_KINDS,
    NotEmulated,
    PodTemplate,
    ProbeOutcome,
    http_probe,
    probe_spec,
)

from .podman import LABEL, podman

BACKOFF_FIRST_SECONDS = 10
BACKOFF_MAX_SECONDS = 300
BACKOFF_RESET_SECONDS = 600
LOG_TAIL_LINES = 40

# What the runner does with each field of a rendered pod spec and container. A field in no list
# raises NotEmulated. IGNORED fields concern a multi-node cluster or its API server, with no
# effect on one machine without them (documented in docs/deployment.md, "Containers here").
POD_FIELDS = {
    "containers", "initContainers", "volumes", "securityContext", "restartPolicy",
    "terminationGracePeriodSeconds", "enableServiceLinks", "automountServiceAccountToken",
}  # fmt: skip
POD_FIELDS_IGNORED = {
    "serviceAccountName", "topologySpreadConstraints", "nodeSelector", "tolerations",
    "affinity", "priorityClassName", "imagePullSecrets",
}  # fmt: skip
CONTAINER_FIELDS = {
    "name", "image", "imagePullPolicy", "command", "args", "env", "envFrom", "ports",
    "startupProbe", "livenessProbe", "readinessProbe", "lifecycle", "securityContext",
    "volumeMounts", "workingDir", "resources",
}  # fmt: skip
CONTAINER_FIELDS_IGNORED: set[str] = set()
# resources: limits of cpu and memory become the container's cgroup limits, a cpu request its
# cpu shares (as the kubelet sets them); a memory request only matters to a scheduler.
RESOURCES = {"cpu", "memory"}
POD_SECURITY_FIELDS = {"runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "seccompProfile",
                       "supplementalGroups"}  # fmt: skip
CONTAINER_SECURITY_FIELDS = {
    "runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile", "readOnlyRootFilesystem",
    "capabilities", "allowPrivilegeEscalation", "privileged",
}  # fmt: skip


@dataclass(frozen=True)
class ProbeEvent:
    time: float  # time.time()
    pod: str
    container: str
    kind: str  # startup, liveness, readiness
    passed: bool
    detail: str


@dataclass
class ContainerState:
    spec: dict
    podman_name: str
    init: bool
    running: bool = False
    started: bool = False  # the startup probe passed (or there is none)
    ready: bool = False
    restarts: int = 0
    recent_restarts: int = 0  # since the back-off was last reset
    exits: list[int] = field(default_factory=list)
    generation: int = 0
    started_at: float = 0.0
    last_probe: dict[str, ProbeOutcome] = field(default_factory=dict)
    killed_for: str = ""  # why the kubelet killed it last (a probe), for the failure message
    exited: threading.Event = field(default_factory=threading.Event)

    @property
    def name(self) -> str:
        return self.spec["name"]


def quantity_bytes(quantity: str | int) -> int:
    """A Kubernetes quantity (`256Mi`, `1G`, `500000`) in bytes."""
    text = str(quantity)
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6,
             "G": 10**9, "T": 10**12}  # fmt: skip
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return int(float(text.removesuffix(suffix)) * factor)
    return int(text)


def cpu_cores(quantity: str | int | float) -> float:
    """A Kubernetes CPU quantity (`500m`, `2`, `0.5`) in cores."""
    text = str(quantity)
    return int(text.removesuffix("m")) / 1000 if text.endswith("m") else float(text)


def resource_args(container: dict) -> list[str]:
    """podman's cgroup settings for the container's `resources`."""
    resources = container.get("resources", {})
    args: list[str] = []
    for kind in ("limits", "requests"):
        unknown = set(resources.get(kind, {})) - RESOURCES
        if unknown:
            raise NotEmulated(f"container {container['name']}: {kind} of {sorted(unknown)}")
    if set(resources) - {"limits", "requests"}:
        raise NotEmulated(f"container {container['name']}: resources {sorted(resources)}")
    limits, requests = resources.get("limits", {}), resources.get("requests", {})
    if "memory" in limits:
        args += ["--memory", str(quantity_bytes(limits["memory"]))]
    if "cpu" in limits:
        args += ["--cpus", f"{cpu_cores(limits['cpu']):g}"]
    cpu_request = requests.get("cpu", limits.get("cpu"))
    if cpu_request is not None:  # the kubelet's shares: 1024 per core requested, at least 2
        args += ["--cpu-shares", str(max(2, int(cpu_cores(cpu_request) * 1024)))]
    return args


def check_fields(where: str, given: dict, handled: set[str], ignored: set[str]) -> None:
    unknown = set(given) - handled - ignored
    if unknown:
        raise NotEmulated(f"{where}: {sorted(unknown)} not reproduced by the container runner")


class RunningPod:
    """One pod of `template`, named `name`, run by podman. `hosts` are extra /etc/hosts lines
    (name -> IP, the Services); `on_probe` receives every probe outcome."""

    def __init__(
        self,
        template: PodTemplate,
        name: str,
        *,
        image_user: Callable[[str], str],
        workdir: Path,
        cluster_id: str,
        network: str,
        hosts: dict[str, str],
        on_probe: Callable[[ProbeEvent], None],
        component: str,
        revision: int | None,
    ):
        self.template, self.name, self.image_user = template, name, image_user
        self.workdir, self.cluster_id = workdir, cluster_id
        self.network, self.hosts = network, hosts
        self.on_probe, self.component, self.revision = on_probe, component, revision
        self.spec = template.spec
        self.restart_policy = self.spec.get("restartPolicy", "Always")
        self.phase = "Pending"
        self.ip = ""
        self.terminating = False
        self.gone = False  # containers and pod removed
        self.failure = ""  # why the pod cannot run (not a container exit: podman, NotEmulated)
        self.created_at = time.monotonic()
        self._lock = threading.Lock()
        self._mounted: list[Path] = []
        self.init_containers = [
            ContainerState(c, f"{name}-{c['name']}", init=True)
            for c in self.spec.get("initContainers", [])
        ]
        self.containers = [
            ContainerState(c, f"{name}-{c['name']}", init=False) for c in self.spec["containers"]
        ]
        self._validate()
        self._thread = threading.Thread(target=self._run, name=f"pod {name}", daemon=True)

    # --- state -----------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return (
            self.phase == "Running"
            and not self.terminating
            and all(c.ready for c in self.containers)
        )

    @property
    def restarts(self) -> int:
        return sum(c.restarts for c in (*self.init_containers, *self.containers))

    def container_state(self, name: str | None) -> ContainerState:
        if name is None:
            return self.containers[0]
        for state in (*self.init_containers, *self.containers):
            if state.name == name:
                return state
        raise KeyError(f"pod {self.name} has no container {name}")

    def log_tail(self, state: ContainerState, lines: int = LOG_TAIL_LINES) -> str:
        saved = self.workdir / "logs" / f"{state.podman_name}.log"
        if saved.exists():
            return "\n".join(saved.read_text(errors="replace").splitlines()[-lines:])
        result = podman("logs", "--tail", str(lines), state.podman_name, check=False)
        return (result.stdout + result.stderr).rstrip()

    def describe(self) -> str:
        """What `kubectl describe pod` and `kubectl logs` would tell: each container's state,
        exits, last probe outcomes and the tail of its log."""
        lines = [
            f"pod {self.name} ({self.component}, revision {self.revision}, ip {self.ip or '-'}): "
            f"phase {self.phase}{', terminating' if self.terminating else ''}"
        ]
        if self.failure:
            lines.append(f"  {self.failure}")
        for state in (*self.init_containers, *self.containers):
            kind = "init container" if state.init else "container"
            status = "running" if state.running else "not running"
            if not state.init:
                status += f", started {state.started}, ready {state.ready}"
            lines.append(
                f"  {kind} {state.name}: {status}, restarts {state.restarts}"
                + (f", exit codes {state.exits}" if state.exits else "")
            )
            if state.killed_for:
                lines.append(f"    killed by the kubelet: {state.killed_for}")
            for probe, outcome in state.last_probe.items():
                verdict = "passed" if outcome.passed else "FAILED"
                lines.append(f"    last {probe} probe {verdict}: {outcome.detail}")
            if state.exits or state.running or state.killed_for:
                tail = self.log_tail(state)
                if tail:
                    lines.append(f"    --- log tail of {state.name} ---")
                    lines.extend(f"    {line}" for line in tail.splitlines())
        return "\n".join(lines)

    # --- validation and podman arguments ----------------------------------------------------

    def _validate(self) -> None:
        check_fields(f"pod {self.name}", self.spec, POD_FIELDS, POD_FIELDS_IGNORED)
        check_fields(
            f"pod {self.name} securityContext",
            self.spec.get("securityContext", {}),
            POD_SECURITY_FIELDS,
            set(),
        )
        if self.spec.get("enableServiceLinks", True):
            raise NotEmulated(f"pod {self.name}: Service link variables (enableServiceLinks)")
        if self.spec.get("automountServiceAccountToken", True):
            raise NotEmulated(f"pod {self.name}: no ServiceAccount token to mount here")
        for volume in self.spec.get("volumes", []):
            if set(volume) != {"name", "emptyDir"}:
                raise NotEmulated(f"volume {volume}: only emptyDir volumes are emulated")
        for state in (*self.init_containers, *self.containers):
            where = f"pod {self.name} container {state.name}"
            check_fields(where, state.spec, CONTAINER_FIELDS, CONTAINER_FIELDS_IGNORED)
            security = state.spec.get("securityContext", {})
            check_fields(f"{where} securityContext", security, CONTAINER_SECURITY_FIELDS, set())
            if security.get("privileged"):
                raise NotEmulated(f"{where}: privileged containers")
            for mount in state.spec.get("volumeMounts", []):
                if set(mount) - {"name", "mountPath", "readOnly"}:
                    raise NotEmulated(f"{where}: volume mount {mount}")
            for port in state.spec.get("ports", []):
                if port.get("protocol", "TCP") != "TCP" or "hostPort" in port:
                    raise NotEmulated(f"{where}: port {port}")
            lifecycle = state.spec.get("lifecycle", {})
            if set(lifecycle) - {"preStop"}:
                raise NotEmulated(f"{where}: lifecycle {sorted(lifecycle)}")
            if set(lifecycle.get("preStop", {})) - {"exec", "sleep"}:
                raise NotEmulated(f"{where}: preStop {lifecycle['preStop']}")
            for kind in PROBE_KINDS:
                if kind in state.spec and not {"httpGet", "exec"} & set(state.spec[kind]):
                    raise NotEmulated(f"{where}: {kind} {state.spec[kind]}")

    def _security(self, container: dict) -> list[str]:
        pod_context = self.spec.get("securityContext", {})
        context = {**pod_context, **container.get("securityContext", {})}
        args: list[str] = []
        image = container["image"]
        user = context.get("runAsUser")
        group = context.get("runAsGroup")
        image_user = self.image_user(image)
        if context.get("runAsNonRoot"):
            effective = user if user is not None else image_user.split(":")[0] or "0"
            if not str(effective).isdigit():
                raise RuntimeError(
                    f"container {container['name']}: runAsNonRoot and image {image} has "
                    f"non-numeric user ({effective}), cannot verify user is non-root"
                )
            if int(effective) == 0:
                raise RuntimeError(
                    f"container {container['name']}: runAsNonRoot and image {image} will run "
                    "as root"
                )
        if user is not None or group is not None:
            default_user, _, default_group = image_user.partition(":")
            args += ["--user", f"{user if user is not None else default_user or 0}"
                     f":{group if group is not None else default_group or 0}"]  # fmt: skip
        for extra in [pod_context.get("fsGroup"), *pod_context.get("supplementalGroups", [])]:
            if extra is not None:
                args += ["--group-add", str(extra)]
        if context.get("readOnlyRootFilesystem"):
            # podman would mount tmpfs on /tmp, /var/tmp, /run: the kubelet does not.
            args += ["--read-only", "--read-only-tmpfs=false"]
        capabilities = context.get("capabilities", {})
        args += [f"--cap-drop={cap}" for cap in capabilities.get("drop", [])]
        args += [f"--cap-add={cap}" for cap in capabilities.get("add", [])]
        if context.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        seccomp = context.get("seccompProfile", {}).get("type", "RuntimeDefault")
        if seccomp == "Unconfined":
            args += ["--security-opt", "seccomp=unconfined"]
        elif seccomp != "RuntimeDefault":  # podman's default profile is the runtime's default
            raise NotEmulated(f"container {container['name']}: seccompProfile {seccomp}")
        return args

    def _create(self, state: ContainerState) -> None:
        container = state.spec
        args = ["create", "--name", state.podman_name, "--pod", self.name, "--pull", "never",
                "--label", f"{LABEL}={self.cluster_id}", *self._security(container),
                *resource_args(container)]  # fmt: skip
        for mount in container.get("volumeMounts", []):
            options = ":ro" if mount.get("readOnly") else ""
            args += ["--volume", f"{self._volume_dir(mount['name'])}:{mount['mountPath']}{options}"]
        for name, value in self.template.spec_env(container).items():
            args += ["--env", f"{name}={value}"]
        if "workingDir" in container:
            args += ["--workdir", container["workingDir"]]
        if "command" in container:
            args += ["--entrypoint", json.dumps(container["command"])]
        args += [container["image"], *container.get("args", [])]
        argv = [*container.get("command", []), *container.get("args", [])]
        if any("$(" in part for part in argv):
            raise NotEmulated(f"{container['name']}: $(VAR) references are not expanded here")
        podman(*args)

    def _volume_dir(self, name: str) -> Path:
        return self.workdir / "pods" / self.name / "volumes" / name

    def _mount_volumes(self) -> None:
        fs_group = self.spec.get("securityContext", {}).get("fsGroup")
        for volume in self.spec.get("volumes", []):
            directory = self._volume_dir(volume["name"])
            directory.mkdir(parents=True)
            options = ["mode=2777" if fs_group is not None else "mode=0777"]
            if fs_group is not None:
                options.append(f"gid={fs_group}")
            if "sizeLimit" in volume["emptyDir"]:
                options.append(f"size={quantity_bytes(volume['emptyDir']['sizeLimit'])}")
            subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs",
                            str(directory)], check=True, capture_output=True)  # fmt: skip
            self._mounted.append(directory)

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            self._sandbox()
            for state in self.init_containers:
                self._create(state)
                if not self._run_init(state):
                    return
            if self.terminating:
                return
            for state in self.containers:
                self._create(state)
            for state in self.containers:
                self._start_container(state)
            self.phase = "Running"
        except Exception as error:  # the pod cannot run: say why, in its status
            if not self.terminating:
                self.failure = f"the runner could not run it: {error}"
                self.phase = "Failed"

    def _sandbox(self) -> None:
        args = ["pod", "create", "--name", self.name, "--hostname", self.name,
                "--network", self.network, "--label", f"{LABEL}={self.cluster_id}"]  # fmt: skip
        for host, address in self.hosts.items():
            args += ["--add-host", f"{host}:{address}"]
        podman(*args)
        self._mount_volumes()
        podman("pod", "start", self.name)
        infra = podman("pod", "inspect", self.name, "--format", "{{.InfraContainerID}}").stdout
        self.ip = podman(
            "inspect", infra.strip(), "--format", "{{.NetworkSettings.IPAddress}}"
        ).stdout.strip()

    def _run_init(self, state: ContainerState) -> bool:
        """Runs an init container until it succeeds (restarting it on failure unless the
        pod's restartPolicy is Never): whether the pod may go on."""
        while not self.terminating:
            state.running, state.started_at = True, time.monotonic()
            podman("start", state.podman_name)
            code = self._wait_exit(state)
            if code == 0 or self.terminating:
                return code == 0
            if self.restart_policy == "Never":
                self.phase = "Failed"
                return False
            self._back_off(state)
        return False

    def _wait_exit(self, state: ContainerState) -> int:
        result = podman("wait", state.podman_name, timeout=None, check=False)
        state.running = False
        state.ready = state.started = False
        code = int(result.stdout.strip()) if result.stdout.strip().lstrip("-").isdigit() else -1
        state.exits.append(code)
        state.exited.set()
        return code

    def _back_off(self, state: ContainerState) -> None:
        """The kubelet's back-off before the next start: none for the first restart, then 10 s
        doubling up to 300 s; the count starts over once a container ran for 10 minutes."""
        if time.monotonic() - state.started_at > BACKOFF_RESET_SECONDS:
            state.recent_restarts = 0
        recent = state.recent_restarts
        delay = 0 if recent == 0 else min(BACKOFF_FIRST_SECONDS * 2 ** (recent - 1),
                                          BACKOFF_MAX_SECONDS)  # fmt: skip
        state.recent_restarts = recent + 1
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and not self.terminating:
            time.sleep(0.1)
        state.restarts += 1

    def _start_container(self, state: ContainerState) -> None:
        state.generation += 1
        state.exited.clear()
        state.running, state.started, state.ready = True, False, False
        state.started_at = time.monotonic()
        podman("start", state.podman_name)
        generation = state.generation
        threading.Thread(
            target=self._watch, args=(state, generation), name=f"{state.podman_name} watch",
            daemon=True,
        ).start()  # fmt: skip
        self._start_probes(state, generation)

    def _watch(self, state: ContainerState, generation: int) -> None:
        code = self._wait_exit(state)
        if self.terminating or self.gone:
            return
        if self.restart_policy == "Never" or (self.restart_policy == "OnFailure" and code == 0):
            others_done = all(not c.running for c in self.containers)
            if others_done:
                failed = any(c.exits and c.exits[-1] != 0 for c in self.containers)
                self.phase = "Failed" if failed else "Succeeded"
            return
        self._back_off(state)
        if not (self.terminating or self.gone):
            with suppress(Exception):
                self._start_container(state)

    # --- probes ----------------------------------------------------------------------------

    def _start_probes(self, state: ContainerState, generation: int) -> None:
        container = state.spec
        if "startupProbe" not in container:
            state.started = True
        if "readinessProbe" not in container:
            state.ready = state.started  # no readiness probe: ready once started
        for kind in PROBE_KINDS:
            if kind in container:
                threading.Thread(
                    target=self._probe_loop, args=(state, generation, kind),
                    name=f"{state.podman_name} {kind}", daemon=True,
                ).start()  # fmt: skip

    def _current(self, state: ContainerState, generation: int) -> bool:
        return state.generation == generation and state.running and not self.terminating

    def _probe_loop(self, state: ContainerState, generation: int, kind: str) -> None:
        spec = probe_spec(state.spec, kind)
        short = kind.removesuffix("Probe")
        period = spec["periodSeconds"]
        next_at = state.started_at + spec["initialDelaySeconds"]
        failures = successes = 0
        while self._current(state, generation):
            if kind != "startupProbe" and not state.started:
                time.sleep(0.05)  # gated by the startup probe; probed as soon as it passes
                next_at = max(next_at, time.monotonic())
                continue
            if time.monotonic() < next_at:
                time.sleep(min(0.1, next_at - time.monotonic()))
                continue
            outcome = self._probe(state, spec)
            next_at += period
            next_at = max(next_at, time.monotonic())
            if not self._current(state, generation):
                return
            state.last_probe[short] = outcome
            self.on_probe(ProbeEvent(time.time(), self.name, state.name, short, outcome.passed,
                                     outcome.detail))  # fmt: skip
            if outcome.passed:
                failures, successes = 0, successes + 1
                if kind == "startupProbe":
                    state.started = True
                    if "readinessProbe" not in state.spec:
                        state.ready = True
                    return  # done for this start of the container
                if kind == "readinessProbe" and successes >= spec["successThreshold"]:
                    state.ready = True
            else:
                failures, successes = failures + 1, 0
                if failures < spec["failureThreshold"]:
                    continue
                if kind == "readinessProbe":
                    state.ready = False
                else:
                    why = f"{short} probe failed {failures} times: {outcome.detail}"
                    self._kill_container(state, why)
                    return

    def _probe(self, state: ContainerState, spec: dict) -> ProbeOutcome:
        timeout = spec["timeoutSeconds"]
        if "httpGet" in spec:
            get = spec["httpGet"]
            port = self.template.container_port(state.spec, get["port"])
            return http_probe(get, pod_ip=self.ip, port=port, connect=(self.ip, port),
                              timeout=timeout)  # fmt: skip
        command = spec["exec"]["command"]
        try:
            result = podman("exec", state.podman_name, *command, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return ProbeOutcome(False, f"{shlex.join(command)}: timed out after {timeout}s")
        output = (result.stdout + result.stderr).strip()
        return ProbeOutcome(
            result.returncode == 0, f"{shlex.join(command)}: exit {result.returncode} {output}"
        )

    def _kill_container(self, state: ContainerState, why: str) -> None:
        """The kubelet kills a container that failed its liveness (or startup) probe: preStop,
        SIGTERM, SIGKILL after the grace period; it is then restarted (see _watch)."""
        state.killed_for = why
        state.ready = False
        self._stop_container(state, time.monotonic() + self.template.grace_seconds)

    # --- termination -----------------------------------------------------------------------

    def terminate(self, grace: bool = True) -> threading.Thread:
        """Deletes the pod as the kubelet does: out of the endpoints now; preStop, SIGTERM,
        SIGKILL after the grace period (at once without `grace`); then its containers and
        sandbox are removed. Returns the thread doing it."""
        with self._lock:
            already = self.terminating
            self.terminating = True
        thread = threading.Thread(
            target=self._shutdown if not already else lambda: None,
            args=(grace,) if not already else (), name=f"stop {self.name}", daemon=True,
        )  # fmt: skip
        thread.start()
        return thread

    def _shutdown(self, grace: bool) -> None:
        if self._thread.is_alive():
            # Still creating: no preStop for containers that are not running yet.
            for state in (*self.init_containers, *self.containers):
                podman("kill", "--signal", "KILL", state.podman_name, check=False)
            self._thread.join(timeout=60)
        deadline = time.monotonic() + (self.template.grace_seconds if grace else 0)
        stops = [
            threading.Thread(target=self._stop_container, args=(state, deadline), daemon=True)
            for state in (*self.init_containers, *self.containers)
            if state.running
        ]
        for stop in stops:
            stop.start()
        for stop in stops:
            stop.join()
        self.remove()

    def _stop_container(self, state: ContainerState, deadline: float) -> None:
        pre_stop = state.spec.get("lifecycle", {}).get("preStop")
        if pre_stop and deadline > time.monotonic() and not state.init:
            remaining = deadline - time.monotonic()
            if "exec" in pre_stop:
                with suppress(subprocess.TimeoutExpired):
                    podman("exec", state.podman_name, *pre_stop["exec"]["command"],
                           timeout=remaining, check=False)  # fmt: skip
            else:
                time.sleep(min(pre_stop["sleep"]["seconds"], remaining))
        podman("kill", "--signal", "TERM", state.podman_name, check=False)
        if not state.exited.wait(timeout=max(0.0, deadline - time.monotonic())):
            podman("kill", "--signal", "KILL", state.podman_name, check=False)
            state.exited.wait(timeout=30)

    def remove(self) -> None:
        """Saves every container's log, removes the containers, the sandbox and the volumes."""
        with self._lock:
            if self.gone:
                return
            self.gone = True
        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for state in (*self.init_containers, *self.containers):
            result = podman("logs", state.podman_name, check=False)
            if result.returncode == 0:
                (logs / f"{state.podman_name}.log").write_text(result.stdout + result.stderr)
        podman("pod", "rm", "--force", "--time", "0", self.name, check=False)
        for directory in self._mounted:
            subprocess.run(["umount", str(directory)], check=False, capture_output=True)
        if self.phase in ("Pending", "Running"):
            self.phase = "Failed" if self.terminating else self.phase


def pod_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:5]}"
