"""What the rendered objects mean: wiring, probes against the real app, security, shutdown."""

import os
import re

import pytest
from django.core.management import get_commands, load_command_class
from django.test import Client
from django.urls import Resolver404, resolve

from app.config import probe
from app.core import health
from app.core.heartbeat_files import heartbeat_path, readiness_path
from tests.support.processes import probe_exit_code

from .conftest import (
    PRODUCTION_SCENARIOS,
    PROJECT_ROOT,
    component,
    entrypoint_roles,
    pod_spec,
    workloads,
)

# The runtime contract (issue 4): what the chart must configure.
WEB_PORT = 8000
# The metrics contract (issue 10, docs/metrics.md): port, port name and Service label.
METRICS_PORT = 9100
METRICS_LABEL = "die-hard.io/metrics"
WEB_HTTP_PROBES = {
    "startupProbe": ("/healthz/startup", {"periodSeconds": 2, "failureThreshold": 60}),
    "livenessProbe": ("/healthz/live", {"periodSeconds": 10, "timeoutSeconds": 2}),
    "readinessProbe": ("/healthz/ready", {"periodSeconds": 5, "timeoutSeconds": 3}),
}
EXEC_PROBES = {
    "worker": {
        "startupProbe": "worker-live",
        "livenessProbe": "worker-live",
        "readinessProbe": "worker-ready",
    },
    "beat": {
        "startupProbe": "beat-live",
        "livenessProbe": "beat-live",
        "readinessProbe": "beat-live",
    },
}
# Every container's writable emptyDir (the root filesystem is read-only).
WRITABLE_TMP = "/tmp"  # noqa: S108
MIN_GRACE_SECONDS = {"web": 30, "worker": 60, "beat": 30, "relay": 60}
# Long-running containers without probes, and why.
NO_PROBES: dict[str, str] = {}


def _scenario_ids():
    return PRODUCTION_SCENARIOS


@pytest.fixture(params=_scenario_ids())
def documents(request, rendered):
    return rendered["helm4", request.param]


def _containers(spec: dict) -> list[dict]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def _env(container: dict) -> dict[str, str]:
    return {item["name"]: item.get("value") for item in container.get("env", [])}


def _by_kind(documents, kind):
    return [document for document in documents if document["kind"] == kind]


def _is_metrics_service(service: dict) -> bool:
    return service["metadata"]["labels"].get(METRICS_LABEL) == "true"


def test_selectors_match_pod_labels(documents):
    deployments = _by_kind(documents, "Deployment")
    assert {component(d) for d in deployments} >= {"web", "worker"}
    for deployment in deployments:
        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), deployment["metadata"]["name"]
        assert set(selector) == {
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
        }, "selectors are immutable: never the version or the chart"
    pods = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in deployments}
    for kind in ("Service", "PodDisruptionBudget"):
        for document in _by_kind(documents, kind):
            selector = document["spec"].get("selector", {})
            selector = selector.get("matchLabels", selector)
            matched = [name for name, labels in pods.items() if selector.items() <= labels.items()]
            assert len(matched) == 1, f"{kind} {document['metadata']['name']} selects {matched}"
    for hpa in _by_kind(documents, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] in pods
    for policy in _by_kind(documents, "NetworkPolicy"):
        selector = policy["spec"]["podSelector"]["matchLabels"]
        assert any(selector.items() <= labels.items() for labels in pods.values())


def test_service_reaches_the_web_port_that_gunicorn_binds(documents):
    (web,) = [d for d in _by_kind(documents, "Deployment") if component(d) == "web"]
    (container,) = pod_spec(web)["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": WEB_PORT, "metrics": METRICS_PORT}
    assert _env(container)["WEB_BIND"] == f"0.0.0.0:{WEB_PORT}"
    (service,) = [s for s in _by_kind(documents, "Service") if not _is_metrics_service(s)]
    for port in service["spec"]["ports"]:
        target = port["targetPort"]
        assert ports.get(target, target) == WEB_PORT
    for ingress in _by_kind(documents, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["name"] == service["metadata"]["name"]
                assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}


def test_every_long_running_role_serves_metrics_on_a_named_port_behind_its_own_service(
    documents,
):
    services = {s["metadata"]["name"]: s for s in _by_kind(documents, "Service")}
    deployments = _by_kind(documents, "Deployment")
    assert deployments
    for deployment in deployments:
        role = component(deployment)
        (container,) = pod_spec(deployment)["containers"]
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert ports["metrics"] == METRICS_PORT, role
        # The process binds the port the Service targets (never the web port).
        assert _env(container)["METRICS_BIND"] == f"0.0.0.0:{METRICS_PORT}", role
        service = services[f"{deployment['metadata']['name']}-metrics"]
        labels = service["metadata"]["labels"]
        assert labels[METRICS_LABEL] == "true"
        assert labels["app.kubernetes.io/component"] == role
        assert service["spec"]["clusterIP"] == "None"  # headless: every pod is a target
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        assert service["spec"]["ports"] == [
            {"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"}
        ]
    assert len([s for s in services.values() if _is_metrics_service(s)]) == len(deployments)


def test_metrics_disabled_turns_the_port_and_the_services_off(helm):
    result = helm.template("--set", "metrics.enabled=false")
    assert result.returncode == 0, result.stderr

    assert not [s for s in _by_kind(result.documents, "Service") if _is_metrics_service(s)]
    for deployment in _by_kind(result.documents, "Deployment"):
        (container,) = pod_spec(deployment)["containers"]
        assert "metrics" not in {port["name"] for port in container.get("ports", [])}
        assert _env(container)["METRICS_BIND"] == "off"


def test_web_probes_are_the_contract_and_exist_in_the_app(documents):
    (web,) = [d for d in _by_kind(documents, "Deployment") if component(d) == "web"]
    (container,) = pod_spec(web)["containers"]
    for kind, (path, timing) in WEB_HTTP_PROBES.items():
        probe_spec = container[kind]
        assert probe_spec["httpGet"] == {"path": path, "port": "http"}
        assert timing.items() <= probe_spec.items(), kind
        assert path in health.PROBES, f"{path} is not a probe of app.core.health"
        try:
            resolve(path)
        except Resolver404:
            pytest.fail(f"{path} does not resolve in app.config.urls")


def test_web_probe_paths_answer_a_kubelet(settings):
    """The kubelet sends the pod IP as Host and speaks plain HTTP, with production hardening on."""
    settings.ALLOWED_HOSTS = ["die-hard.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    client = Client(HTTP_HOST="10.244.1.17:8000")
    for path in ("/healthz/startup", "/healthz/live"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)


def test_exec_probes_run_the_probe_module_with_valid_checks(documents):
    assert (PROJECT_ROOT / "app" / "config" / "probe.py").is_file()
    for deployment in _by_kind(documents, "Deployment"):
        expected = EXEC_PROBES.get(component(deployment))
        if not expected:
            continue
        (container,) = pod_spec(deployment)["containers"]
        for kind, check in expected.items():
            command = container[kind]["exec"]["command"]
            assert command == ["python", "-m", "app.config.probe", check]
            assert check in probe.CHECKS


def test_exec_probe_commands_tell_healthy_from_stale(tmp_path):
    """The probe commands the chart runs: unhealthy without the files, healthy when fresh."""
    environment = {**os.environ, "PROBE_DIR": str(tmp_path)}
    for check in ("worker-live", "worker-ready", "beat-live"):
        assert probe_exit_code(check, environment) == 1, check
    # The files the running processes write, named by the module itself.
    for role in ("worker", "beat"):
        heartbeat_path(tmp_path, role).touch()
    readiness_path(tmp_path, "worker").write_text(
        '{"database": "ok", "broker": "ok", "clickhouse": "ok"}'
    )
    for check in ("worker-live", "worker-ready", "beat-live"):
        assert probe_exit_code(check, environment) == 0, check


def test_every_container_starts_an_entrypoint_role_with_valid_arguments(documents):
    roles = entrypoint_roles()
    commands = get_commands()
    for workload in workloads(documents):
        spec = pod_spec(workload)
        for container in spec["containers"]:
            assert "command" not in container, "the image's entrypoint starts every role"
            role, *args = container["args"]
            assert role in roles, f"{container['name']}: {role} is not an entrypoint role"
            assert role == component(workload)
            if role == "migrate":
                parser = load_command_class(commands["migrate_databases"], "migrate_databases")
                parser.create_parser("manage.py", "migrate_databases").parse_args(args)
        for container in spec.get("initContainers", []):
            script = container["command"][-1]
            assert "/app/docker/entrypoint.sh manage migrate --check --verbosity 0" in script
            assert "/app/docker/entrypoint.sh manage clickhouse_migrate --check" in script
    migrate = load_command_class(commands["migrate"], "migrate")
    migrate.create_parser("manage.py", "migrate").parse_args(["--check", "--verbosity", "0"])


def test_beat_is_one_replica_replaced_not_rolled(documents):
    (beat,) = [d for d in _by_kind(documents, "Deployment") if component(d) == "beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert not [
        d
        for d in documents
        if d["kind"] in ("HorizontalPodAutoscaler", "PodDisruptionBudget")
        and component(d) == "beat"
    ]


def test_no_image_is_latest_or_untagged(documents):
    for workload in [*workloads(documents), *_by_kind(documents, "Pod")]:
        spec = workload["spec"].get("template", {}).get("spec", workload["spec"])
        for container in _containers(spec):
            image = container["image"]
            name, _, tag = image.split("@")[0].rpartition(":")
            assert name, image
            assert tag, image
            assert tag != "latest", image


def test_every_container_has_resources_probes_and_a_locked_down_security_context(documents):
    for workload in [*workloads(documents), *_by_kind(documents, "Pod")]:
        spec = workload["spec"].get("template", {}).get("spec", workload["spec"])
        name = workload["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False, name
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
        mounted_tmp = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in _containers(spec):
            where = f"{name}/{container['name']}"
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), where
            assert "memory" in resources["limits"], where
            security = container["securityContext"]
            assert security["runAsNonRoot"] is True, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"] == {"drop": ["ALL"]}, where
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}, where
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert mounts.get(WRITABLE_TMP) in mounted_tmp, f"{where}: no writable /tmp"
        if workload["kind"] == "Deployment" and component(workload) not in NO_PROBES:
            for container in spec["containers"]:
                assert {"startupProbe", "livenessProbe", "readinessProbe"} <= set(container), name


def test_every_workload_gets_the_shared_configuration(documents):
    # The shared configuration (not the Grafana dashboard's ConfigMap).
    (config_map,) = [d for d in _by_kind(documents, "ConfigMap") if component(d) != "monitoring"]
    secrets = {d["metadata"]["name"] for d in _by_kind(documents, "Secret")}
    checksums = set()
    for workload in workloads(documents):
        spec = pod_spec(workload)
        for container in _containers(spec):
            sources = container["envFrom"]
            assert {"configMapRef": {"name": config_map["metadata"]["name"]}} in sources
            (secret_ref,) = [s["secretRef"]["name"] for s in sources if "secretRef" in s]
            assert secret_ref in secrets or not secrets, (
                f"{secret_ref} is neither rendered nor given"
            )
            assert (
                _env(container).get("APP_VERSION")
                == container["image"].split("@")[0].rsplit(":", 1)[1]
            )
        checksums.add(workload["spec"]["template"]["metadata"]["annotations"]["checksum/config"])
    assert len(checksums) == 1, "every pod rolls on the same configuration change"
    data = config_map["data"]
    assert data["DEBUG"] == "false"
    assert "die-hard-web" in data["ALLOWED_HOSTS"].split(",")
    assert all(isinstance(value, str) for value in data.values())


def test_termination_grace_covers_the_shutdown(documents):
    for deployment in _by_kind(documents, "Deployment"):
        role = component(deployment)
        spec = pod_spec(deployment)
        grace = spec["terminationGracePeriodSeconds"]
        assert grace >= MIN_GRACE_SECONDS[role], role
        if role == "web":
            (container,) = spec["containers"]
            drain = int(_env(container)["WEB_GRACEFUL_TIMEOUT"])
            pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
            assert pre_stop + drain < grace


def test_migrations_run_once_per_version_in_a_plain_job(rendered, documents):
    (job,) = _by_kind(documents, "Job")
    assert "annotations" not in job["metadata"] or not any(
        key.startswith("helm.sh/hook") for key in job["metadata"]["annotations"]
    ), "a plain Job, not a hook: GitOps tools that ignore hooks must still migrate"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    for deployment in _by_kind(documents, "Deployment"):
        if component(deployment) in ("worker", "relay"):
            (init,) = pod_spec(deployment)["initContainers"]
            assert init["name"] == "wait-for-migrations"
        if component(deployment) == "web":
            assert "initContainers" not in pod_spec(deployment), "web readiness gates it"
    names = {
        scenario: next(d for d in rendered["helm4", scenario] if d["kind"] == "Job")["metadata"]
        for scenario in ("default", "production")
    }
    assert names["default"]["name"] != names["production"]["name"], "a new version, a new Job"
    assert all(len(meta["name"]) <= 63 for meta in names.values())


def test_production_network_policies_allow_only_what_is_needed(rendered):
    policies = {
        d["metadata"]["name"]: d["spec"]
        for d in rendered["helm4", "production"]
        if d["kind"] == "NetworkPolicy"
    }
    release = policies["die-hard"]
    assert release["ingress"] == []
    assert set(release["policyTypes"]) == {"Ingress", "Egress"}
    dns = release["egress"][0]["ports"]
    assert {"port": 53, "protocol": "UDP"} in dns
    web = policies["die-hard-web"]
    (rule,) = web["ingress"]
    assert rule["ports"] == [{"port": WEB_PORT, "protocol": "TCP"}]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    } in (rule["from"])
    # Prometheus reaches the metrics port of every pod of the release, and nothing else.
    metrics = policies["die-hard-metrics"]
    assert metrics["podSelector"] == release["podSelector"]
    (rule,) = metrics["ingress"]
    assert rule["ports"] == [{"port": METRICS_PORT, "protocol": "TCP"}]


@pytest.mark.parametrize("scenario", ["minimal", "production"])
def test_rendered_allowed_hosts_admit_the_service_and_ingress_names(rendered, settings, scenario):
    """As `helm test` and the ingress reach web: by Service or ingress host, TLS at the edge."""
    documents = rendered["helm4", scenario]
    (config_map,) = _by_kind(documents, "ConfigMap")
    settings.ALLOWED_HOSTS = config_map["data"]["ALLOWED_HOSTS"].split(",")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    (test_pod,) = _by_kind(documents, "Pod")
    (service_url,) = re.findall(
        r'base = "http://([^"]+)"', test_pod["spec"]["containers"][0]["command"][-1]
    )
    hosts = [service_url.split(":")[0]]
    hosts += [rule["host"] for d in _by_kind(documents, "Ingress") for rule in d["spec"]["rules"]]
    client = Client(HTTP_X_FORWARDED_PROTO="https")
    for host in hosts:
        response = client.get("/api/v1/openapi.json", HTTP_HOST=host)
        assert response.status_code == 200, (host, response.status_code)
    assert client.get("/api/v1/openapi.json", HTTP_HOST="elsewhere.example").status_code == 400


def test_helm_test_pod_runs_valid_python(rendered):
    (test_pod,) = _by_kind(rendered["helm4", "default"], "Pod")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    command = test_pod["spec"]["containers"][0]["command"]
    assert command[:2] == ["python", "-c"]
    compile(command[2], "helm-test", "exec")
