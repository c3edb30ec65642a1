"""What a kubelet reads from a rendered pod template, shared by the two runners of rendered
workloads: tests/deploy/local_pod.py (containers as local processes) and tests/e2e/cluster.py
(containers as podman containers).

- the template of a Deployment, Job or bare Pod, its labels and pod spec, each container;
- the environment Kubernetes gives a container: `envFrom` in order (the rendered ConfigMaps
  and Secrets), then `env` (later sources win; a name given twice in `env` takes the last);
- a probe with Kubernetes' defaults filled in, and an `httpGet` probe sent as the kubelet sends
  it: plain HTTP to the pod IP's port, the pod IP as `Host`, `User-Agent: kube-probe/…`.

Anything else (pod or node fields in `valueFrom`, `$(VAR)` references) raises NotEmulated.
"""

import base64
import http.client
from dataclasses import dataclass

KUBE_PROBE_USER_AGENT = "kube-probe/1.33"
# Kubernetes' defaults for fields a probe leaves out.
PROBE_DEFAULTS = {
    "initialDelaySeconds": 0,
    "periodSeconds": 10,
    "timeoutSeconds": 1,
    "failureThreshold": 3,
    "successThreshold": 1,
}
PROBE_KINDS = ("startupProbe", "livenessProbe", "readinessProbe")


class NotEmulated(NotImplementedError):
    """The rendered object uses a feature this harness does not reproduce: extend it, do not
    let a test pass on a different configuration than the one rendered."""


@dataclass
class ProbeOutcome:
    passed: bool
    detail: str


class PodTemplate:
    """The pod of a rendered workload (a Deployment's or Job's template, or a Pod), read from
    the rendered `documents` it refers to."""

    def __init__(self, workload: dict, documents: list[dict]):
        self.workload, self.documents = workload, documents
        template = workload["spec"].get("template", workload)
        self.labels: dict[str, str] = template["metadata"].get("labels", {})
        self.spec: dict = template["spec"]

    @property
    def name(self) -> str:
        return self.workload["metadata"]["name"]

    @property
    def grace_seconds(self) -> float:
        return self.spec.get("terminationGracePeriodSeconds", 30)

    def container(self, name: str) -> dict:
        for container in (*self.spec.get("initContainers", []), *self.spec["containers"]):
            if container["name"] == name:
                return container
        raise KeyError(f"{self.name} has no container {name}")

    def container_port(self, container: dict, port: int | str) -> int:
        if isinstance(port, int):
            return port
        for declared in container.get("ports", []):
            if declared.get("name") == port:
                return declared["containerPort"]
        raise LookupError(f"{container['name']} declares no port named {port}")

    def spec_env(self, container: dict) -> dict[str, str]:
        """The variables the pod spec gives the container: envFrom in order, then env (later
        sources win). The image's own ENV lies beneath them."""
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            prefix = source.get("prefix", "")
            env.update({prefix + key: value for key, value in self._env_source(source).items()})
        for variable in container.get("env", []):
            env[variable["name"]] = self._env_value(variable)
        for name, value in env.items():
            if "$(" in value:
                raise NotEmulated(f"{name}={value}: $(VAR) references are not expanded here")
        return env

    def _find(self, kind: str, name: str) -> dict:
        for document in self.documents:
            if document["kind"] == kind and document["metadata"]["name"] == name:
                return document
        raise LookupError(f"{self.name} needs the {kind} {name}, which was not rendered")

    def _data(self, kind: str, name: str) -> dict[str, str]:
        document = self._find(kind, name)
        if kind == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in document.get("data", {}).items()}
            return {**data, **(document.get("stringData") or {})}
        return dict(document.get("data") or {})

    def _env_source(self, source: dict) -> dict[str, str]:
        for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            if key in source:
                try:
                    return self._data(kind, source[key]["name"])
                except LookupError:
                    if source[key].get("optional"):
                        return {}
                    raise
        raise NotEmulated(f"envFrom {source}")

    def _env_value(self, variable: dict) -> str:
        if "value" in variable:
            return str(variable["value"])
        source = variable.get("valueFrom", {})
        for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
            if key in source:
                return self._data(kind, source[key]["name"])[source[key]["key"]]
        raise NotEmulated(f"env {variable['name']}: {source} (no pod or node fields here)")


def probe_spec(container: dict, kind: str) -> dict:
    """The container's probe of `kind` with Kubernetes' defaults for what it leaves out."""
    return {**PROBE_DEFAULTS, **container[kind]}


def http_probe(
    get: dict, *, pod_ip: str, port: int, connect: tuple[str, int], timeout: float
) -> ProbeOutcome:
    """An `httpGet` probe as the kubelet sends it to `pod_ip:port`, over the connection to
    `connect` (the pod IP itself, or where a local process stands in for it)."""
    if get.get("scheme", "HTTP") != "HTTP" or get.get("host"):
        raise NotEmulated(f"httpGet {get}: only plain HTTP to the pod IP")
    path = get.get("path", "/")
    headers = {"Host": f"{pod_ip}:{port}", "User-Agent": KUBE_PROBE_USER_AGENT, "Accept": "*/*"}
    headers.update({header["name"]: header["value"] for header in get.get("httpHeaders", [])})
    target = f"GET http://{pod_ip}:{port}{path}"
    connection = http.client.HTTPConnection(*connect, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read(500).decode(errors="replace").strip()
    except OSError as error:
        return ProbeOutcome(False, f"{target}: {error!r}")
    finally:
        connection.close()
    # The kubelet counts 2xx and 3xx as success, following a redirect to the same host. Here
    # a redirect can only be the HTTPS one (SECURE_SSL_REDIRECT), which the kubelet would
    # follow to a TLS handshake on a plain-HTTP port: a failure. So only 2xx passes.
    return ProbeOutcome(200 <= response.status < 300, f"{target}: {response.status} {body}")
