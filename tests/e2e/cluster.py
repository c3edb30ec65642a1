"""One Helm release of charts/die-hard, rendered with `helm template` and run as podman
containers: the parts of a Kubernetes cluster a release's life meets, on one machine.

    with BackingServices(workdir / "services") as services:
        cluster = Cluster(workdir / "cluster", ensure_image("localhost/die-hard:0.1.0"), services)
        try:
            cluster.install()                        # as `helm install --wait`
            host, port = cluster.service_address()   # the web Service, from the host
            cluster.helm_test()
            cluster.upgrade(image="localhost/die-hard:0.1.1", set_values={"config.X": "y"})
        finally:
            cluster.close()

Reproduced (see kubelet.py for a pod's details):
- Rendering: `helm template` (Helm 4 from its wheel) of the chart with tests/e2e/values.yaml,
  the caller's values, the Secret pointing at the BackingServices and the image asked for.
- Deployments: a ReplicaSet per pod template (its hash names the pods, its number is the
  pods' `revision`), kept at its target count (a deleted or failed pod is replaced); the
  RollingUpdate strategy with maxSurge/maxUnavailable (numbers or percentages, rounded as
  Kubernetes rounds them: surge up, unavailable down), scaling old ReplicaSets down only as far
  as ready pods allow; Recreate (all old pods gone before a new one starts). Excess pods go
  unready first, then the newest.
- Jobs: a pod at a time until one succeeds, a failed pod retried after 10 s, 20 s, … up to
  `backoffLimit` failures, stopped after `activeDeadlineSeconds`. The chart's migrate Job is a
  plain Job (not a hook): like the API server, the runner creates it together with the
  Deployments; pods that need its migrations wait for them (web's readiness, the
  wait-for-migrations init container). A Job carrying `helm.sh/hook: pre-install/pre-upgrade`
  would run to completion first.
- Waiting as `helm install/upgrade --wait --wait-for-jobs` would, but stricter: every
  Deployment's desired pods of the newest revision ready and no old-revision pod left running
  (Helm accepts replicas - maxUnavailable), every Job complete. A failure raises RolloutFailed
  naming the pod, container, probe or exit code with the tail of the container's log: on
  timeout, on a Job out of retries, and at once when a container of the rollout has exited or
  been killed `crash_limit` times (a crash loop needs no waiting for the timeout to be named).
- Services: a TCP balancer per Service port over the ready, not terminating endpoints (the
  pods matching the selector): on 127.0.0.1:<port> for the host (`service_address`) and, for
  the pods, on a cluster IP (an address 10.88.255.N added to the podman bridge for the
  Service's life) at the Service port; every pod's /etc/hosts names the Service
  (`<name>`, `<name>.<namespace>`, `….svc`, `….svc.cluster.local`) with that cluster IP, as
  the cluster DNS would. New connections only: a connection keeps its pod, as with kube-proxy;
  with no endpoint the connection is closed at once (kube-proxy rejects it).
- `helm test`: the rendered `helm.sh/hook: test` pods, run to completion; deleted when they
  pass (hook-delete-policy hook-succeeded), kept (logs saved) when they fail.

Not reproduced (each raises NotEmulated when rendered, unless listed as ignored in kubelet.py):
other volume kinds, hostPort, Service links, ServiceAccount tokens, memory requests (ignored:
no scheduler), scheduling constraints (ignored: one node),
HPAs, PodDisruptionBudgets, NetworkPolicies and Ingresses (not applied: nothing here enforces
them), minReadySeconds/progressDeadlineSeconds, Services of a type other than ClusterIP seen
from outside (the balancer serves them all the same way).
"""

import hashlib
import json
import math
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from app.config.env import PROJECT_ROOT
from scripts.helm import tool_path
from tests.deploy.pod_template import NotEmulated, PodTemplate
from tests.support.proxy import CuttableProxy

from .backing import BackingServices
from .kubelet import ProbeEvent, RunningPod
from .podman import LABEL, PodmanError, podman

__all__ = ["Cluster", "NotEmulated", "Pod", "ProbeEvent", "RolloutFailed"]

CHART = PROJECT_ROOT / "charts" / "die-hard"
VALUES = Path(__file__).with_name("values.yaml")
NAMESPACE = "default"
COMPONENT = "app.kubernetes.io/component"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
JOB_BACKOFF_FIRST_SECONDS = 10
JOB_BACKOFF_MAX_SECONDS = 360
CLUSTER_IPS = [f"10.88.255.{n}" for n in range(2, 255)]
# Kinds the runner applies; the others are listed as not applied (see the docstring).
APPLIED = {"Deployment", "Job", "Service", "ConfigMap", "Secret"}
NOT_APPLIED = {
    "ServiceAccount", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy",
    "Ingress",
}  # fmt: skip


class RolloutFailed(AssertionError):
    """A rollout, Job or helm test did not finish: the message names what failed."""


@dataclass(frozen=True)
class Pod:
    name: str
    ip: str
    ready: bool
    phase: str  # Pending, Running, Succeeded, Failed
    component: str
    revision: int | None  # the Deployment revision (ReplicaSet) it belongs to
    terminating: bool = False
    restarts: int = 0


@dataclass
class ReplicaSet:
    template: dict
    template_hash: str
    revision: int
    target: int = 0
    pods: list[RunningPod] = field(default_factory=list)

    def live(self) -> list[RunningPod]:
        return [pod for pod in self.pods if not pod.terminating]


def template_hash(template: dict) -> str:
    canonical = json.dumps(template, sort_keys=True).encode()
    return hashlib.sha256(canonical).hexdigest()[:10]


def scaled(value: int | str, replicas: int, *, round_up: bool) -> int:
    """maxSurge (rounded up) or maxUnavailable (rounded down) of `replicas`."""
    if isinstance(value, int):
        return value
    percent = int(value.rstrip("%"))
    exact = replicas * percent / 100
    return math.ceil(exact) if round_up else math.floor(exact)


class Deployment:
    def __init__(self, cluster: "Cluster", document: dict):
        self.cluster = cluster
        self.name = document["metadata"]["name"]
        self.component = document["metadata"]["labels"].get(COMPONENT, self.name)
        self.replica_sets: list[ReplicaSet] = []
        self.replicas = 1
        self.apply(document)

    def apply(self, document: dict) -> bool:
        """Takes the rendered Deployment; whether its pod template changed (a new revision)."""
        self.document = document
        spec = document["spec"]
        if spec.get("minReadySeconds"):
            raise NotEmulated(f"{self.name}: minReadySeconds")
        if "replicas" in spec:
            self.replicas = spec["replicas"]
        self.strategy = spec.get("strategy", {"type": "RollingUpdate"})
        return self.set_template(spec["template"])

    def set_template(self, template: dict) -> bool:
        digest = template_hash(template)
        current = self.current
        if current is not None and current.template_hash == digest:
            return False
        revision = max((rs.revision for rs in self.replica_sets), default=0) + 1
        existing = [rs for rs in self.replica_sets if rs.template_hash == digest]
        if existing:  # back to an older template: its ReplicaSet becomes the newest again
            existing[0].revision = revision
            self.replica_sets.remove(existing[0])
            self.replica_sets.append(existing[0])
        else:
            self.replica_sets.append(ReplicaSet(template, digest, revision))
        return True

    @property
    def current(self) -> ReplicaSet | None:
        return self.replica_sets[-1] if self.replica_sets else None

    @property
    def old(self) -> list[ReplicaSet]:
        return self.replica_sets[:-1]

    def all_pods(self) -> list[RunningPod]:
        return [pod for rs in self.replica_sets for pod in rs.pods]

    def reconcile(self) -> None:
        """The Deployment controller's step (targets), then each ReplicaSet's (pods)."""
        current = self.current
        assert current is not None
        for rs in self.replica_sets:
            rs.pods = [pod for pod in rs.pods if not pod.gone]
        if self.strategy["type"] == "Recreate":
            for rs in self.old:
                rs.target = 0
            if any(rs.pods for rs in self.old):
                current.target = 0 if not current.pods else current.target
            else:
                current.target = self.replicas
        elif self.strategy["type"] == "RollingUpdate":
            self._roll(current)
        else:
            raise NotEmulated(f"{self.name}: strategy {self.strategy}")
        for rs in self.replica_sets:
            self._keep_count(rs)
        self.replica_sets = [rs for rs in self.replica_sets if rs.pods or rs is current]

    def _roll(self, current: ReplicaSet) -> None:
        replicas = self.replicas
        rolling = self.strategy.get("rollingUpdate", {})
        surge = scaled(rolling.get("maxSurge", "25%"), replicas, round_up=True)
        unavailable = scaled(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1  # as Kubernetes does, so that a rollout can progress
        if not any(rs.target for rs in self.old):
            current.target = replicas
            return
        # Scale up the new ReplicaSet within maxSurge.
        total = sum(rs.target for rs in self.replica_sets)
        room = replicas + surge - total
        if room > 0 and current.target < replicas:
            current.target += min(room, replicas - current.target)
        # Scale the old ones down as far as maxUnavailable allows.
        total = sum(rs.target for rs in self.replica_sets)
        new_unavailable = max(0, current.target - sum(pod.ready for pod in current.live()))
        min_available = replicas - unavailable
        budget = total - min_available - new_unavailable
        # Unready old pods first (Kubernetes' cleanupUnhealthyReplicas): they serve nothing.
        for rs in self.old:
            unready = rs.target - sum(pod.ready for pod in rs.live())
            cut = max(0, min(unready, budget, rs.target))
            rs.target -= cut
            budget -= cut
        for rs in self.old:
            cut = max(0, min(budget, rs.target))
            rs.target -= cut
            budget -= cut

    def _keep_count(self, rs: ReplicaSet) -> None:
        live = rs.live()
        for _ in range(rs.target - len(live)):
            rs.pods.append(self.cluster._start_pod(self, rs))
        if len(live) > rs.target:
            # Unready before ready, then the newest first (as the ReplicaSet controller).
            ranked = sorted(live, key=lambda pod: (pod.ready, -pod.created_at))
            for pod in ranked[: len(live) - rs.target]:
                pod.terminate()

    def complete(self) -> bool:
        current = self.current
        assert current is not None
        live = current.live()
        return (
            current.target == self.replicas
            and len(live) == self.replicas
            and all(pod.ready for pod in live)
            and not any(rs.live() for rs in self.old)
        )

    def failing(self, crash_limit: int) -> list[RunningPod]:
        current = self.current
        assert current is not None
        return [pod for pod in current.live() if _crashed(pod, crash_limit)]


def _crashed(pod: RunningPod, crash_limit: int) -> bool:
    return bool(pod.failure) or any(
        len(state.exits) >= crash_limit for state in (*pod.init_containers, *pod.containers)
    )


class Job:
    def __init__(self, cluster: "Cluster", document: dict):
        self.cluster, self.document = cluster, document
        self.name = document["metadata"]["name"]
        self.component = document["metadata"]["labels"].get(COMPONENT, self.name)
        spec = document["spec"]
        if spec.get("completions", 1) != 1 or spec.get("parallelism", 1) != 1:
            raise NotEmulated(f"Job {self.name}: completions/parallelism other than 1")
        self.backoff_limit = spec.get("backoffLimit", 6)
        self.deadline = spec.get("activeDeadlineSeconds")
        self.started = time.monotonic()
        self.pods: list[RunningPod] = []
        self.succeeded = False
        self.failed = ""
        self._next_start = 0.0

    @property
    def failures(self) -> int:
        return sum(pod.phase == "Failed" for pod in self.pods)

    def reconcile(self) -> None:
        if self.succeeded or self.failed:
            return
        for pod in self.pods:
            if pod.phase == "Succeeded":
                self.succeeded = True
            if pod.phase in ("Succeeded", "Failed") and not pod.gone:
                pod.remove()
        if self.succeeded:
            return
        if self.deadline and time.monotonic() - self.started > self.deadline:
            self.failed = f"Job {self.name} ran past activeDeadlineSeconds {self.deadline}"
        elif self.failures > self.backoff_limit:
            self.failed = f"Job {self.name} failed {self.failures} times (backoffLimit " \
                          f"{self.backoff_limit})"  # fmt: skip
        if self.failed:
            for pod in self.pods:
                pod.terminate(grace=False)
            return
        active = [pod for pod in self.pods if pod.phase in ("Pending", "Running")]
        if active or time.monotonic() < self._next_start:
            return
        if self.failures:
            delay = min(JOB_BACKOFF_FIRST_SECONDS * 2 ** (self.failures - 1),
                        JOB_BACKOFF_MAX_SECONDS)  # fmt: skip
            if not self._next_start:
                self._next_start = time.monotonic() + delay
                return
        self._next_start = 0.0
        self.pods.append(self.cluster._start_pod(self, None))


class ServiceBalancer(CuttableProxy):
    """kube-proxy for one Service port: each new connection goes to one of the ready endpoints
    (round robin); none ready: the connection is closed at once."""

    def __init__(self, endpoints: Callable[[], list[tuple[str, int]]], host: str, port: int = 0):
        self._endpoints = endpoints
        self._turn = 0
        super().__init__("", 0, listen_host=host, listen_port=port)

    def _connect_upstream(self):
        import socket

        endpoints = self._endpoints()
        if not endpoints:
            raise OSError("no ready endpoint")
        self._turn += 1
        upstream = socket.create_connection(endpoints[self._turn % len(endpoints)], timeout=2)
        upstream.settimeout(None)
        return upstream


class Service:
    def __init__(self, cluster: "Cluster", document: dict, cluster_ip: str):
        self.cluster, self.document, self.cluster_ip = cluster, document, cluster_ip
        self.name = document["metadata"]["name"]
        self.selector: dict[str, str] = document["spec"]["selector"]
        self.component = document["metadata"]["labels"].get(COMPONENT, self.name)
        self.ports: dict[str, tuple[ServiceBalancer, ServiceBalancer]] = {}
        for port in document["spec"]["ports"]:
            if port.get("protocol", "TCP") != "TCP":
                raise NotEmulated(f"Service {self.name}: port {port}")
            endpoints = self._endpoints_of(port.get("targetPort", port["port"]))
            host_side = ServiceBalancer(endpoints, "127.0.0.1")
            pod_side = ServiceBalancer(endpoints, cluster_ip, port["port"])
            self.ports[port.get("name", str(port["port"]))] = (host_side, pod_side)
            self.ports.setdefault(str(port["port"]), (host_side, pod_side))

    def _endpoints_of(self, target: int | str) -> Callable[[], list[tuple[str, int]]]:
        def endpoints() -> list[tuple[str, int]]:
            with self.cluster._lock:
                pods = self.cluster._all_pods()
            found = []
            for pod in pods:
                if pod.ready and pod.ip and self.selector.items() <= pod.template.labels.items():
                    ports = [
                        pod.template.container_port(container, target)
                        for container in pod.template.spec["containers"]
                        if isinstance(target, int)
                        or any(p.get("name") == target for p in container.get("ports", []))
                    ]
                    found += [(pod.ip, port) for port in ports[:1]]
            return found

        return endpoints

    def host_names(self) -> list[str]:
        name = self.name
        return [name, f"{name}.{NAMESPACE}", f"{name}.{NAMESPACE}.svc",
                f"{name}.{NAMESPACE}.svc.cluster.local"]  # fmt: skip

    def close(self) -> None:
        for host_side, pod_side in self.ports.values():
            host_side.close()
            pod_side.close()


class Cluster:
    """One Helm release rendered from charts/die-hard, run as podman containers."""

    crash_limit = 2  # a rollout fails at once when a container exited this many times

    def __init__(
        self,
        workdir: Path,
        image: str,
        services: BackingServices,
        release: str = "die-hard",
        network: str = "podman",
        post_render: Callable[[list[dict]], None] | None = None,
    ):
        self.workdir, self.image, self.services, self.release = workdir, image, services, release
        self.network = network
        # Edits the rendered documents in place before they are applied, as `helm
        # --post-renderer` would (the deliberate breaks of test_breaks.py use it).
        self.post_render = post_render
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.id = uuid.uuid4().hex[:8]
        self.probe_events: list[ProbeEvent] = []
        self.deployments: dict[str, Deployment] = {}
        self.jobs: dict[str, Job] = {}
        self.services_: dict[str, Service] = {}
        self.extra_pods: list[RunningPod] = []
        self.test_pods: list[RunningPod] = []
        self.documents: list[dict] = []
        self.values: list[Path] = []
        self.set_values: dict[str, str] = {}
        self.revision = 0
        self._cluster_ips: list[str] = []
        self._image_users: dict[str, str] = {}
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self._controller = threading.Thread(target=self._control, name="controllers", daemon=True)
        self._controller.start()

    # --- rendering -------------------------------------------------------------------------

    def render(
        self,
        values: Sequence[Path] = (),
        set_values: dict[str, str] | None = None,
        image: str | None = None,
    ) -> list[dict]:
        """`helm template` of the release: tests/e2e/values.yaml, then `values`, then the
        backing services and the image, then `set_values` (`--set`, last wins)."""
        repository, _, tag = (image or self.image).rpartition(":")
        services = {
            "secret.DATABASE_URL": self.services.postgres.url_for_pods,
            "secret.REDIS_URL": self.services.redis.url_for_pods,
            "secret.CLICKHOUSE_URL": self.services.clickhouse.url_for_pods,
            "image.repository": repository,
            "image.tag": tag,
        }
        args = [str(tool_path("helm4")), "template", self.release, str(CHART),
                "--namespace", NAMESPACE, "--values", str(VALUES)]  # fmt: skip
        for path in values:
            args += ["--values", str(path)]
        for key, value in {**services, **(set_values or {})}.items():
            args += ["--set-string" if key in services else "--set", f"{key}={value}"]
        result = subprocess.run(args, capture_output=True, text=True, cwd=PROJECT_ROOT,
                                timeout=120, check=False)  # fmt: skip
        if result.returncode:
            raise RolloutFailed(f"helm template failed: {result.stderr.strip()}")
        documents = [document for document in yaml.safe_load_all(result.stdout) if document]
        if self.post_render:
            self.post_render(documents)
        return documents

    # --- the API ---------------------------------------------------------------------------

    def install(
        self,
        values: Sequence[Path] = (),
        set_values: dict[str, str] | None = None,
        timeout: float = 180,
    ) -> None:
        """`helm install --wait --wait-for-jobs`: everything rendered created, then waited for."""
        if self.revision:
            raise RuntimeError(f"release {self.release} is installed: upgrade it")
        self.values, self.set_values = list(values), dict(set_values or {})
        self._apply(self.render(self.values, self.set_values), hooks="pre-install")
        self._wait(list(self.deployments.values()), list(self.jobs.values()), timeout, "install")

    def upgrade(
        self,
        values: Sequence[Path] | None = None,
        set_values: dict[str, str] | None = None,
        image: str | None = None,
        timeout: float = 300,
    ) -> list[str]:
        """`helm upgrade --wait --wait-for-jobs`: the next revision rendered (values and
        set_values replace the previous ones when given, as `helm upgrade` without
        --reuse-values); a new Job (name) runs; every Deployment whose pod template changed
        rolls. Returns the names of the Deployments that rolled and Jobs that ran."""
        if values is not None:
            self.values = list(values)
        if set_values is not None:
            self.set_values = dict(set_values)
        if image is not None:
            self.image = image
        changed = self._apply(self.render(self.values, self.set_values), hooks="pre-upgrade")
        rolled = [self.deployments[name] for name in changed if name in self.deployments]
        jobs = [self.jobs[name] for name in changed if name in self.jobs]
        self._wait(rolled, jobs, timeout, f"upgrade to revision {self.revision}")
        return changed

    def scale(
        self, deployment: str, replicas: int, wait: bool = True, timeout: float = 180
    ) -> None:
        target = self._deployment(deployment)
        with self._lock:
            target.replicas = replicas
        if wait:
            self._wait([target], [], timeout, f"scale {target.name} to {replicas}")

    def rollout_restart(self, deployment: str, wait: bool = True, timeout: float = 300) -> None:
        """`kubectl rollout restart`: a restartedAt annotation in the pod template."""
        target = self._deployment(deployment)
        with self._lock:
            current = target.current
            assert current is not None
            template = json.loads(json.dumps(current.template))
            annotations = template["metadata"].setdefault("annotations", {})
            annotations[RESTARTED_AT] = time.strftime("%Y-%m-%dT%H:%M:%S%z") + f"-{time.time()}"
            target.set_template(template)
        if wait:
            self._wait([target], [], timeout, f"rollout restart of {target.name}")

    def delete_pod(self, pod_name: str, grace: bool = True) -> None:
        """`kubectl delete pod` (`--grace-period=0 --force` without `grace`): the pod
        terminates; its ReplicaSet, if any, starts a replacement at once."""
        with self._lock:
            (pod,) = [pod for pod in self._all_pods() if pod.name == pod_name] or [None]
            if pod is None:
                raise LookupError(f"no pod {pod_name}")
            pod.terminate(grace=grace)

    def pods(self, component: str) -> list[Pod]:
        with self._lock:
            return [
                Pod(
                    pod.name,
                    pod.ip,
                    pod.ready,
                    pod.phase,
                    pod.component,
                    pod.revision,
                    pod.terminating,
                    pod.restarts,
                )
                for pod in self._all_pods(include_finished=True)
                if pod.component == component and not (pod.gone and pod.terminating)
            ]

    def service_address(
        self, service_port: str | int = "http", component: str = "web"
    ) -> tuple[str, int]:
        # A role can have several Services (web: the public one and its metrics Service).
        for service in self.services_.values():
            if service.component == component and str(service_port) in service.ports:
                host_side, _pod_side = service.ports[str(service_port)]
                return "127.0.0.1", host_side.port
        raise LookupError(f"no Service for {component} with a port {service_port}")

    def service(self, component: str = "web", port: str = "http") -> Service:
        (service,) = [
            s for s in self.services_.values() if s.component == component and port in s.ports
        ]
        return service

    def exec(
        self, pod_name: str, argv: list[str], container: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess:
        pod = self._pod(pod_name)
        state = pod.container_state(container)
        return podman("exec", state.podman_name, *argv, timeout=timeout, check=False)

    def kill_container(
        self, pod_name: str, container: str | None = None, signal: str = "KILL"
    ) -> None:
        """The container's main process gets `signal` from outside (a crash, the OOM killer):
        not a deletion; restartPolicy decides what follows."""
        state = self._pod(pod_name).container_state(container)
        podman("kill", "--signal", signal, state.podman_name)

    def logs(self, pod_name: str, container: str | None = None, lines: int = 200) -> str:
        pod = self._pod(pod_name)
        return pod.log_tail(pod.container_state(container), lines)

    def describe(self, pod_name: str) -> str:
        return self._pod(pod_name).describe()

    def run_extra_pod(self, component: str) -> str:
        """One more pod of the Deployment's current template, outside its replica count (as
        when someone starts a second beat by hand); `delete_pod` stops it."""
        deployment = self._deployment(component)
        with self._lock:
            current = deployment.current
            assert current is not None
            pod = self._start_pod(deployment, current)
            self.extra_pods.append(pod)
        return pod.name

    def helm_test(self, timeout: float = 120) -> None:
        """`helm test`: each rendered `helm.sh/hook: test` pod, run to completion."""
        tests = [d for d in self.documents if _hooks(d) == {"test"}]
        if not tests:
            raise RolloutFailed("the chart renders no helm test pod")
        for document in tests:
            pod = self._new_pod(PodTemplate(document, self.documents),
                                document["metadata"]["name"], "test", None)  # fmt: skip
            self.test_pods.append(pod)
            pod.start()
            deadline = time.monotonic() + timeout
            while pod.phase in ("Pending", "Running") and time.monotonic() < deadline:
                time.sleep(0.2)
            pod.remove()
            if pod.phase != "Succeeded":
                raise RolloutFailed(f"helm test: pod {pod.name} {pod.phase}:\n{pod.describe()}")
            self.test_pods.remove(pod)

    def close(self) -> None:
        """Stops everything at once (no grace), removes the containers, pods and addresses."""
        self._closed.set()
        self._controller.join(timeout=10)
        with self._lock:
            pods = self._all_pods(include_finished=True)
        stops = [threading.Thread(target=pod.remove, daemon=True) for pod in pods]
        for pod in pods:
            pod.terminating = True
        for stop in stops:
            stop.start()
        for stop in stops:
            stop.join(timeout=120)
        for service in self.services_.values():
            service.close()
        for address in self._cluster_ips:
            subprocess.run(["ip", "address", "del", f"{address}/32", "dev",
                            self.services.bridge], check=False, capture_output=True)  # fmt: skip
        leftovers = podman("pod", "ls", "--filter", f"label={LABEL}={self.id}",
                           "--format", "{{.Name}}", check=False).stdout.split()  # fmt: skip
        if leftovers:  # pods whose creation was cut short
            podman("pod", "rm", "--force", "--time", "0", *leftovers, check=False)

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- applying a revision ---------------------------------------------------------------

    def _apply(self, documents: list[dict], hooks: str) -> list[str]:
        """Applies a rendered revision; the names of the Deployments whose template changed
        and of the Jobs created."""
        for document in documents:
            kind = document["kind"]
            hook = _hooks(document)
            if hook and hook != {"test"} and not hook <= {"pre-install", "pre-upgrade"}:
                raise NotEmulated(f"{kind} {document['metadata']['name']}: hooks {hook}")
            if not hook and kind not in APPLIED | NOT_APPLIED:
                raise NotEmulated(f"{kind} {document['metadata']['name']}")
        self.documents = documents
        self.revision += 1
        changed: list[str] = []
        for document in documents:
            if hooks in _hooks(document) and document["kind"] == "Job":
                job = self._create_job(document)
                changed.append(job.name)
                self._wait([], [job], float(document["spec"].get("activeDeadlineSeconds", 600)),
                           f"{hooks} hook {job.name}")  # fmt: skip
        rendered = {d["metadata"]["name"] for d in documents if d["kind"] == "Deployment"}
        with self._lock:
            for document in documents:
                if _hooks(document):
                    continue
                name = document["metadata"]["name"]
                if document["kind"] == "Service" and name not in self.services_:
                    self.services_[name] = Service(self, document, self._cluster_ip())
                elif document["kind"] == "Job" and name not in self.jobs:
                    changed.append(self._create_job(document).name)
                elif document["kind"] == "Deployment":
                    if name in self.deployments:
                        if self.deployments[name].apply(document):
                            changed.append(name)
                    else:
                        self.deployments[name] = Deployment(self, document)
                        changed.append(name)
            for name in set(self.deployments) - rendered:
                self.deployments[name].replicas = 0  # deleted: its pods go
        return changed

    def _create_job(self, document: dict) -> Job:
        with self._lock:
            job = Job(self, document)
            self.jobs[job.name] = job
            return job

    def _cluster_ip(self) -> str:
        for address in CLUSTER_IPS:
            added = subprocess.run(
                ["ip", "address", "add", f"{address}/32", "dev", self.services.bridge],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if added.returncode == 0:
                self._cluster_ips.append(address)
                return address
        raise RuntimeError(f"no free cluster IP on {self.services.bridge}")

    # --- pods ------------------------------------------------------------------------------

    def _hosts(self) -> dict[str, str]:
        return {
            host: service.cluster_ip
            for service in self.services_.values()
            for host in service.host_names()
        }

    def _image_user(self, image: str) -> str:
        if image not in self._image_users:
            inspected = podman("image", "inspect", image, "--format", "{{.Config.User}}",
                               check=False)  # fmt: skip
            if inspected.returncode:
                raise PodmanError(f"image {image} is not here (ensure_image builds it)")
            self._image_users[image] = inspected.stdout.strip()
        return self._image_users[image]

    def _new_pod(
        self, template: PodTemplate, name: str, component: str, revision: int | None
    ) -> RunningPod:
        return RunningPod(
            template, name, image_user=self._image_user, workdir=self.workdir,
            cluster_id=self.id, network=self.network, hosts=self._hosts(),
            on_probe=self.probe_events.append, component=component, revision=revision,
        )  # fmt: skip

    def _start_pod(self, owner: Deployment | Job, rs: ReplicaSet | None) -> RunningPod:
        document = owner.document
        if rs is not None:
            document = {**document, "spec": {**document["spec"], "template": rs.template}}
            prefix = f"{owner.name}-{rs.template_hash}"
        else:
            prefix = owner.name
        template = PodTemplate(document, self.documents)
        name = f"{prefix}-{uuid.uuid4().hex[:5]}"
        pod = self._new_pod(template, name, owner.component, rs.revision if rs else None)
        pod.start()
        return pod

    def _all_pods(self, include_finished: bool = False) -> list[RunningPod]:
        pods = [pod for d in self.deployments.values() for pod in d.all_pods()]
        pods += [pod for job in self.jobs.values() for pod in job.pods]
        pods += self.extra_pods + self.test_pods
        return [pod for pod in pods if include_finished or not pod.gone]

    def _pod(self, name: str) -> RunningPod:
        with self._lock:
            for pod in self._all_pods(include_finished=True):
                if pod.name == name:
                    return pod
        raise LookupError(f"no pod {name}")

    def _deployment(self, name: str) -> Deployment:
        for deployment in self.deployments.values():
            if name in (deployment.component, deployment.name):
                return deployment
        raise LookupError(f"no Deployment {name}")

    # --- controllers -----------------------------------------------------------------------

    def _control(self) -> None:
        while not self._closed.wait(0.2):
            with self._lock:
                for deployment in list(self.deployments.values()):
                    deployment.reconcile()
                for job in list(self.jobs.values()):
                    job.reconcile()
                self.extra_pods = [pod for pod in self.extra_pods if not pod.gone]

    def _wait(
        self, deployments: list[Deployment], jobs: list[Job], timeout: float, what: str
    ) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                failed_jobs = [job for job in jobs if job.failed]
                crashing = [pod for d in deployments for pod in d.failing(self.crash_limit)] + [
                    pod for job in jobs for pod in job.pods if pod.failure
                ]
                done = all(d.complete() for d in deployments) and all(job.succeeded for job in jobs)
            if done:
                return
            if failed_jobs or crashing:
                problems = [job.failed for job in failed_jobs]
                problems += [f"crash loop (exited or killed {self.crash_limit} times)"] * bool(
                    crashing
                )
                raise RolloutFailed(self._report(what, problems, deployments, jobs, crashing))
            if time.monotonic() > deadline:
                raise RolloutFailed(
                    self._report(what, [f"not done after {timeout:.0f}s"], deployments, jobs, [])
                )
            time.sleep(0.2)

    def _report(
        self,
        what: str,
        problems: list[str],
        deployments: list[Deployment],
        jobs: list[Job],
        pods: list[RunningPod],
    ) -> str:
        with self._lock:
            if not pods:  # every pod of the rollout that is not ready yet
                pods = [
                    pod
                    for d in deployments
                    for pod in (d.current.live() if d.current else [])
                    if not pod.ready
                ]
                pods += [pod for job in jobs if not job.succeeded for pod in job.pods[-2:]]
            lines = [f"{what} failed: {'; '.join(problems)}"]
            lines += [f"backing service: {problem}" for problem in self.services.health()]
            for d in deployments:
                current = d.current
                assert current is not None
                ready = sum(pod.ready for pod in current.live())
                lines.append(
                    f"Deployment {d.name}: revision {current.revision}, {ready}/{d.replicas} "
                    f"ready, {sum(len(rs.live()) for rs in d.old)} old pods left"
                )
            for job in jobs:
                state = "complete" if job.succeeded else job.failed or "running"
                lines.append(f"Job {job.name}: {state}, {job.failures} failed pods")
            lines += [pod.describe() for pod in pods]
        return "\n".join(lines)


def _hooks(document: dict) -> set[str]:
    annotations = document["metadata"].get("annotations") or {}
    hooks = annotations.get("helm.sh/hook", "")
    return {hook.strip() for hook in hooks.split(",") if hook.strip()}
