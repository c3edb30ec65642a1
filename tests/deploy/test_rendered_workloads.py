"""The rendered chart's workloads, run: every container of the rendered Deployments, the
migrate Job and the `helm test` pod starts as a local process (tests/deploy/local_pod.py) from
its rendered command, args and environment (env plus envFrom of the rendered ConfigMap and
Secret) against the local PostgreSQL, Redis and ClickHouse, and is probed as the kubelet would
probe it: the pod IP as `Host`, plain HTTP, startup before liveness and readiness.

The chart is rendered with its production defaults (DEBUG=false, strict ALLOWED_HOSTS,
SECURE_SSL_REDIRECT=true), its secret pointing at the suite's services
(local-services-values.yaml plus a values file generated with the test database's URL). The
local adaptations are the path mapping of LocalPod (the image's /app and the pods' /tmp
emptyDir → local directories; the venv's PATH comes with it) and `local_adaptations` below;
a test holds them to that list.
"""

import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from django.conf import settings
from django.db import connection

from tests.support.fixtures import TEST_CLICKHOUSE_DATABASE

from .conftest import component
from .local_pod import POD_IP, Image, LocalPod, ServiceProxy, service_routes

VALUES = Path(__file__).with_name("local-services-values.yaml")
LONG_RUNNING = ("web", "worker", "beat", "relay")
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")
# Locally every role is up in seconds; a failing probe should not hold the suite for the whole
# budget the chart allows a production start (up to 300 s), so the harness stops waiting here.
WAIT_LIMIT_SECONDS = 60
# app.config.probe's PROBE_DIR when the variable is unset, as the chart leaves it.
DEFAULT_PROBE_DIR = "/tmp/die-hard"  # noqa: S108
ADAPTED_VARIABLES = {"WEB_BIND", "METRICS_BIND", "PROBE_DIR"}


def local_adaptations(pod: LocalPod, container: dict, env: dict[str, str]) -> dict[str, str]:
    """What a local process needs that a pod does not, each for the reason given. Not adapted:
    WEB_WORKER_TMP_DIR stays unset (gunicorn's /dev/shm is a tmpfs here as in a container);
    CLICKHOUSE_DATABASE is rendered through the chart's config; PATH is the image's own, its
    /app/.venv mapped to the project's venv (LocalPod)."""
    overrides = {}
    if "WEB_BIND" in env:
        _host, port = env["WEB_BIND"].rsplit(":", 1)
        assert int(port) in pod.ports, f"WEB_BIND={env['WEB_BIND']}: not a declared port"
        # gunicorn binds the container port that the probes and the Service target. A pod has
        # it to itself on its own IP; here it may be taken (`make run`, another test run), so
        # it maps to a free local port when it must (LocalPod.ports) and the probes go there.
        # Loopback only: 0.0.0.0 in a pod is the pod's own network, here the machine's.
        overrides["WEB_BIND"] = f"127.0.0.1:{pod.ports[int(port)]}"
    if env.get("METRICS_BIND", "off") != "off":
        # As WEB_BIND: the container port named `metrics`, mapped to a free local one.
        _host, port = env["METRICS_BIND"].rsplit(":", 1)
        assert int(port) in pod.ports, f"METRICS_BIND={env['METRICS_BIND']}: not a declared port"
        overrides["METRICS_BIND"] = f"127.0.0.1:{pod.ports[int(port)]}"
    if "PROBE_DIR" not in env:
        # The default, /tmp/die-hard, is in the pod's own /tmp emptyDir. The machine's /tmp is
        # shared (`make run`'s worker writes the same heartbeat files there), so the process
        # and its probes use the same path inside this pod's local /tmp.
        overrides["PROBE_DIR"] = pod.localize(container, DEFAULT_PROBE_DIR)
    return overrides


@pytest.fixture(scope="module")
def local_services_values(tmp_path_factory, django_db_setup, clickhouse_url) -> Path:
    """The generated values: the backing services this test run uses."""
    database = connection.settings_dict  # the test database, once django_db_setup ran
    credentials = quote(database["USER"] or "postgres", safe="")
    if database["PASSWORD"]:
        credentials += ":" + quote(database["PASSWORD"], safe="")
    host, port = database["HOST"] or "127.0.0.1", database["PORT"] or 5432
    values = {
        "secret": {
            "DATABASE_URL": f"postgres://{credentials}@{host}:{port}/{database['NAME']}",
            "REDIS_URL": settings.REDIS_URL,  # database 15 (tests/django_env.py)
            "CLICKHOUSE_URL": clickhouse_url,
        },
        # The suite's ClickHouse test database, through the chart's own setting.
        "config": {"CLICKHOUSE_DATABASE": TEST_CLICKHOUSE_DATABASE},
    }
    path = tmp_path_factory.mktemp("values") / "local-services.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.fixture(scope="module")
def documents(helm, local_services_values) -> list[dict]:
    result = helm.template("--values", str(local_services_values), values=VALUES)
    assert result.returncode == 0, result.stderr
    return result.documents


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Image:
    return Image.build(tmp_path_factory.mktemp("image") / "app")


@pytest.fixture
def pod(documents, image, tmp_path) -> Callable[..., LocalPod]:
    """pod(kind, component): the rendered pod of that workload, ready to run locally."""

    def make(kind: str, name: str, adapt=local_adaptations) -> LocalPod:
        (workload,) = [d for d in documents if d["kind"] == kind and component(d) == name]
        return LocalPod(workload, documents, image, tmp_path / name, adapt)

    return make


def test_the_harness_runs_every_rendered_workload(documents):
    deployments = [d for d in documents if d["kind"] == "Deployment"]
    assert sorted(component(d) for d in deployments) == sorted(LONG_RUNNING)
    assert [component(d) for d in documents if d["kind"] == "Job"] == ["migrate"]
    assert [component(d) for d in documents if d["kind"] == "Pod"] == ["test"]
    for deployment in deployments:
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["name"] == component(deployment)
        # Without these the probing below would prove nothing.
        assert {"startupProbe", "livenessProbe"} <= container.keys(), container["name"]


@pytest.mark.parametrize(
    ("kind", "name"), [*(("Deployment", n) for n in LONG_RUNNING), ("Job", "migrate")]
)
def test_local_adaptations_keep_the_rendered_production_settings(pod, kind, name):
    local = pod(kind, name)
    for container in (*local.spec.get("initContainers", []), *local.spec["containers"]):
        rendered, env = local.rendered_env(container), local.env(container)
        changed = {key for key in env if env[key] != rendered.get(key)}
        assert changed <= ADAPTED_VARIABLES, changed
        assert env["DEBUG"] == "false"
        assert env["SECURE_SSL_REDIRECT"] == "true"
        hosts = set(env["ALLOWED_HOSTS"].split(","))
        service = "die-hard-web"  # only the web Service's in-cluster names
        assert hosts == {service, f"{service}.default.svc", f"{service}.default.svc.cluster.local"}
        assert POD_IP not in hosts
        assert len(env["SECRET_KEY"]) >= 50


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", LONG_RUNNING)
def test_rendered_workload_starts_and_passes_its_probes_as_the_kubelet_runs_them(pod, name):
    local = pod("Deployment", name)
    with local.running(name) as process:
        took = local.await_probes(process, wait_limit=WAIT_LIMIT_SECONDS)
        assert set(took) == {kind for kind in PROBES if kind in local.container(name)}, took
        assert process.process.poll() is None, process.log_tail()
        # Prometheus scrapes the port named `metrics` (metrics/service.yaml targets it).
        (metrics,) = [p for p in local.container(name)["ports"] if p["name"] == "metrics"]
        scrape = f"http://127.0.0.1:{local.ports[metrics['containerPort']]}/metrics"
        with urllib.request.urlopen(scrape, timeout=5) as response:
            assert "die_hard_" in response.read().decode()
        # Stopped as the kubelet stops it, within the pod's grace period (preStop hooks are not
        # run: web's `sleep` only delays the SIGTERM; tests/runtime covers the drain).
        stopped_after = process.terminate(grace_seconds=local.grace_seconds)
    assert stopped_after is not None, f"{name} ignored SIGTERM for {local.grace_seconds}s"


@pytest.mark.django_db(transaction=True)
def test_the_migrate_job_runs_to_completion(pod):
    local = pod("Job", "migrate")
    local.run_init_containers()
    code, output = local.run_to_completion("migrate", timeout=120)
    assert code == 0, output
    # The test database is migrated already: the Job finds nothing to do, and says so.
    assert "No migrations to apply." in output
    assert "ClickHouse: applied 0 migration(s)" in output


@pytest.mark.django_db(transaction=True)
def test_the_helm_test_pod_passes_against_the_running_web(pod, documents):
    web = pod("Deployment", "web")
    with web.running("web") as process:
        web.await_probes(process, wait_limit=WAIT_LIMIT_SECONDS)
        services = ServiceProxy(service_routes(documents, [web]))
        try:
            # The script asks for http://<web Service>:<port>, a name that resolves only in a
            # cluster: its requests go through ServiceProxy (cluster DNS and kube-proxy) to the
            # web process, Host still the Service's name. The script itself runs unchanged.
            test_pod = pod("Pod", "test", adapt=lambda *_: {"http_proxy": services.url})
            code, output = test_pod.run_to_completion("test", timeout=60)
        finally:
            services.close()
    assert code == 0, output
    assert "GET /healthz/ready: 200" in output
