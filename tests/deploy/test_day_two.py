"""Day two, offline: revision N and N+1 of the chart, and what a real API server and the
controllers would do with them (issue 9).

`APIServer` below models the rules an upgrade meets (Helm 4 applies server-side, Helm 3 with a
three-way merge; both delete what the new revision no longer renders):

- immutable fields: a Job's `spec.template`, `spec.selector`, `spec.completions` and
  `spec.completionMode`; a Deployment's `spec.selector`; a Service's `spec.clusterIP(s)` and
  the transitions of `spec.type` that need it cleared (to or from ExternalName, headless);
- field ownership of a Deployment's `replicas`: once `kubectl scale` or an HPA set it, Helm 4's
  apply of a `replicas` field is a conflict (unless `--force-conflicts`) and Helm 3's silently
  resets the count; a field Helm owned and no longer renders is deleted (the API server then
  defaults it to 1);
- Secrets: `stringData` is write-only and merged into `data`, so a key Helm stops rendering
  under `stringData` is never removed; keys under `data` are.

Every change that must roll pods must change their pod template (and give the migrate Job a new
name when it changes the Job), and every other change must leave the templates alone.
"""

import base64
import copy
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands, load_command_class
from django.test import Client

from .conftest import CHART, RELEASE, SCENARIOS, Helm, component, pod_spec

BASE = ["--values", str(SCENARIOS["minimal"])]
SCALED_WORKERS = 5  # what `kubectl scale` sets between two revisions
HPA_WORKERS = 3  # what the worker HPA sets between two revisions
DEFAULT_REPLICAS = 1  # what the API server defaults a Deployment's absent replicas to


class RenderError(Exception):
    pass


def render(helm: Helm, args: list[str], chart: Path = CHART) -> list[dict]:
    result = helm.run("template", RELEASE, str(chart), *BASE, *args)
    if result.returncode:
        raise RenderError(result.stderr.strip().replace("\n", " "))
    return [d for d in result.documents if d["kind"] != "Pod"]  # `helm test` pods are hooks


def key(document: dict) -> tuple[str, str]:
    return document["kind"], document["metadata"]["name"]


def secret_values(document: dict) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in (document.get("data") or {}).items()}
    return {**data, **(document.get("stringData") or {})}


# --- the API server


@dataclass
class Live:
    """An object as stored: the last applied manifest, plus what other managers set."""

    manifest: dict
    replicas: int | None = None
    replicas_owner: str | None = None  # "helm", "kubectl", "hpa"
    secret: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    changed: list[str]
    rejected: list[str]
    notes: list[str]


class APIServer:
    def __init__(self, manager: str):
        assert manager in ("helm3", "helm4")
        self.manager = manager
        self.objects: dict[tuple[str, str], Live] = {}

    def install(self, documents: list[dict]) -> None:
        outcome = self.apply(documents)
        assert not outcome.rejected, outcome.rejected

    def scale(self, name: str, replicas: int, owner: str) -> None:
        live = self.objects["Deployment", name]
        live.replicas, live.replicas_owner = replicas, owner

    def apply(self, documents: list[dict], *, force_conflicts: bool = False) -> Outcome:
        changed, rejected, notes = [], [], []
        new = {key(d): d for d in documents}
        for name in sorted(set(self.objects) - set(new)):
            changed.append(f"-{name[0]}/{name[1]}")
            del self.objects[name]
        for name, document in new.items():
            label = f"{name[0]}/{name[1]}"
            live = self.objects.get(name)
            if live is None:
                changed.append(f"+{label}")
                self.objects[name] = self._created(document)
                continue
            if live.manifest != document:
                without_labels = [copy.deepcopy(d) for d in (live.manifest, document)]
                for copied in without_labels:
                    copied["metadata"].pop("labels", None)
                relabelled = without_labels[0] == without_labels[1]
                changed.append(f"{'labels' if relabelled else '~'}{label}")
            problems = self._immutable(live.manifest, document)
            problems += self._replicas(live, document, force_conflicts, notes)
            if document["kind"] == "Secret":
                live.secret = self._secret(live, document)
                rendered = {k: v for k, v in secret_values(document).items() if v}
                stored = {k: v for k, v in live.secret.items() if v}
                if stored != rendered:
                    problems.append(
                        f"{label}: stored {sorted(stored)} != rendered {sorted(rendered)}"
                    )
            rejected += [f"{label}: {problem}" for problem in problems]
            live.manifest = document
        return Outcome(changed, rejected, notes)

    def _created(self, document: dict) -> Live:
        live = Live(manifest=document)
        if document["kind"] == "Deployment":
            replicas = document["spec"].get("replicas")
            live.replicas = DEFAULT_REPLICAS if replicas is None else replicas
            live.replicas_owner = "helm" if replicas is not None else None
        if document["kind"] == "Secret":
            live.secret = secret_values(document)
        return live

    @staticmethod
    def _immutable(old: dict, new: dict) -> list[str]:
        kind, problems = new["kind"], []

        def differs(*path: str) -> bool:
            a, b = old, new
            for part in path:
                a, b = (a or {}).get(part), (b or {}).get(part)
            return a != b

        if kind == "Job":
            for path in ("template", "selector", "completions", "completionMode"):
                if differs("spec", path):
                    problems.append(f"Job spec.{path} is immutable")
        if kind in ("Deployment", "StatefulSet", "DaemonSet") and differs("spec", "selector"):
            problems.append(f"{kind} spec.selector is immutable")
        if kind == "Service":
            for path in ("clusterIP", "clusterIPs"):
                if differs("spec", path):
                    problems.append(f"Service spec.{path} is immutable")
            types = {old["spec"].get("type", "ClusterIP"), new["spec"].get("type", "ClusterIP")}
            if "ExternalName" in types and len(types) == 2 and new["spec"].get("clusterIP"):
                problems.append("Service type change to or from ExternalName keeps a clusterIP")
            if (old["spec"].get("clusterIP") == "None") != (new["spec"].get("clusterIP") == "None"):
                problems.append("a Service cannot become or stop being headless")
        return problems

    def _replicas(self, live: Live, new: dict, force: bool, notes: list[str]) -> list[str]:
        if new["kind"] != "Deployment":
            return []
        name, rendered = new["metadata"]["name"], new["spec"].get("replicas")
        if rendered is None:
            if live.replicas_owner == "helm":
                # Helm owned it and no longer applies it: deleted, then defaulted.
                live.replicas, live.replicas_owner = DEFAULT_REPLICAS, None
                notes.append(f"{name}: replicas released (defaulted to 1 until scaled)")
            return []
        if live.replicas_owner in (None, "helm") or live.replicas == rendered:
            live.replicas, live.replicas_owner = rendered, "helm"
            return []
        if self.manager == "helm4" and not force:
            return [f"replicas: conflict with {live.replicas_owner!r} (server-side apply)"]
        if self.manager == "helm3" and not force:
            return [
                f"replicas: {live.replicas_owner} set {live.replicas}, "
                f"Helm 3 silently resets it to {rendered}"
            ]
        notes.append(f"{name}: replicas taken back by the chart ({rendered})")
        live.replicas, live.replicas_owner = rendered, "helm"
        return []

    @staticmethod
    def _secret(live: Live, new: dict) -> dict[str, str]:
        stored = dict(live.secret)
        old_data = live.manifest.get("data") or {}
        # Keys Helm applied under `data` and no longer renders are removed; `stringData` is
        # write-only: nobody owns what it wrote into `data`, so nothing of it is ever removed.
        for name in set(old_data) - set(new.get("data") or {}):
            stored.pop(name, None)
        stored.update(secret_values(new))
        return stored


# --- the changes


@dataclass(frozen=True)
class Change:
    name: str
    before: list[str]
    after: list[str]
    # Workloads whose pods must roll; "migrate" means a new migrate Job.
    rolls: frozenset[str]
    chart_version: str | None = None
    # Between the revisions: (deployment component, replicas, owner) an operator or HPA sets.
    operator: tuple[str, int, str] | None = None
    # The documented procedure passes --force-conflicts (Helm 4) to hand replicas back.
    force_conflicts: bool = False


ALL = frozenset({"web", "worker", "beat", "migrate"})
EXISTING = ["--set", "existingSecret=die-hard-credentials"]
HPA = ["--set", "worker.autoscaling.enabled=true"]
NO_REPLICAS = ["--set", "worker.replicas=null"]

CHANGES = [
    Change("image tag", [], ["--set", "image.tag=0.1.1"], ALL),
    Change("config value", [], ["--set", "config.LOG_LEVEL=DEBUG"], ALL),
    Change(
        "existingSecret rotation",
        [*EXISTING, "--set", "existingSecretChecksum=rev-1"],
        [*EXISTING, "--set", "existingSecretChecksum=rev-2"],
        ALL,
    ),
    Change(
        "secret key cleared",
        ["--set", "secret.SENTRY_CONFIG_DSN=https://key@sentry.example.com/1"],
        [],
        ALL,
    ),
    Change(
        "pod annotations",
        ["--set", "podAnnotations.rolled=one"],
        ["--set", "podAnnotations.rolled=two"],
        ALL,
    ),
    Change("worker resources", [], ["--set", "worker.resources.limits.cpu=3"], {"worker"}),
    Change(
        "migrate Job resources",
        [],
        ["--set", "migrations.resources.limits.cpu=2"],
        # The wait-for-migrations init container shares them.
        {"worker", "migrate"},
    ),
    Change("node selector", [], ["--set", "nodeSelector.pool=general"], ALL),
    Change("image pull policy", [], ["--set", "image.pullPolicy=Always"], ALL),
    Change("chart version", [], [], {"migrate"}, chart_version="0.1.1"),
    Change("re-run a failed migration", [], ["--set", "migrations.rerun=1712345678"], {"migrate"}),
    Change("worker HPA on", [], HPA, frozenset()),
    Change(
        "worker HPA off",
        HPA,
        [],
        frozenset(),
        operator=("worker", HPA_WORKERS, "hpa"),
        force_conflicts=True,
    ),
    Change(
        "kubectl scale workers, then upgrade",
        NO_REPLICAS,
        [*NO_REPLICAS, "--set", "config.LOG_LEVEL=DEBUG"],
        ALL,
        operator=("worker", SCALED_WORKERS, "kubectl"),
    ),
    Change(
        "HPA scales workers, then upgrade",
        HPA,
        [*HPA, "--set", "image.tag=0.1.1"],
        ALL,
        operator=("worker", HPA_WORKERS, "hpa"),
    ),
    Change("relay on", [], ["--set", "relay.enabled=true"], frozenset()),
    Change("relay off", ["--set", "relay.enabled=true"], [], frozenset()),
    Change("web Service NodePort", [], ["--set", "web.service.type=NodePort"], frozenset()),
]


def _chart_with_version(tmp_path: Path, version: str) -> Path:
    chart = tmp_path / "die-hard"
    shutil.copytree(CHART, chart)
    metadata = chart / "Chart.yaml"
    text = metadata.read_text()
    current = yaml.safe_load(text)["version"]
    metadata.write_text(text.replace(f"version: {current}", f"version: {version}", 1))
    return chart


def _roll_problems(change: Change, before: list[dict], after: list[dict]) -> list[str]:
    problems = []
    old = {key(d): d for d in before}
    for document in after:
        previous = old.get(key(document))
        role = component(document)
        if document["kind"] == "Deployment" and previous:
            rolled = previous["spec"]["template"] != document["spec"]["template"]
            if rolled != (role in change.rolls):
                problems.append(f"{role} pods {'rolled' if rolled else 'did not roll'}")
        if document["kind"] == "Job":
            new_job = previous is None
            if new_job != ("migrate" in change.rolls):
                problems.append("a new migrate Job" if new_job else "no new migrate Job")
    return problems


def run_change(helm: Helm, change: Change, manager: str, tmp_path: Path) -> dict:
    chart = _chart_with_version(tmp_path, change.chart_version) if change.chart_version else CHART
    try:
        before, after = render(helm, change.before), render(helm, change.after, chart)
    except RenderError as error:
        return {"outcome": Outcome([], [], []), "problems": [f"does not render: {error}"]}
    server = APIServer(manager)
    server.install(before)
    if change.operator:
        role, replicas, owner = change.operator
        server.scale(f"{RELEASE}-{role}", replicas, owner)
    outcome = server.apply(after, force_conflicts=change.force_conflicts)
    problems = outcome.rejected + _roll_problems(change, before, after)
    if change.operator and not change.force_conflicts:
        role, replicas, owner = change.operator
        live = server.objects["Deployment", f"{RELEASE}-{role}"]
        if (live.replicas, live.replicas_owner) != (replicas, owner):
            problems.append(f"{role}: the count {owner} set is lost ({live.replicas})")
        else:
            outcome.notes.append(f"{role}: the {replicas} {owner} set is kept")
    return {"outcome": outcome, "problems": problems}


def _table(rows: list[tuple[str, str, str, str]]) -> str:
    header = ("change", "objects changed (+ created, - deleted, ~ changed)", "replicas", "verdict")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    lines = [
        " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def _short(changed: list[str]) -> str:
    """`+Job/x, -Job/y, ~Deployment/web` (the release prefix dropped); objects whose labels
    alone changed (the version and chart labels) are counted, not listed."""
    listed = [item.replace(f"{RELEASE}-", "") for item in changed if not item.startswith("labels")]
    relabelled = len(changed) - len(listed)
    if relabelled:
        listed.append(f"{relabelled} relabelled")
    return ", ".join(listed) or "(nothing)"


@pytest.mark.parametrize("manager", ["helm4", "helm3"])
def test_upgrade_sequences_are_accepted_and_roll_what_they_must(helm, manager, tmp_path, capsys):
    rows, failures = [], []
    for change in CHANGES:
        result = run_change(helm, change, manager, tmp_path / change.name.replace(" ", "-"))
        outcome, problems = result["outcome"], result["problems"]
        verdict = "accepted" if not problems else "REJECTED: " + "; ".join(problems)
        if change.force_conflicts and manager == "helm4":
            verdict += " (with --force-conflicts, as documented)"
        rows.append(
            (change.name, _short(outcome.changed), "; ".join(outcome.notes) or "-", verdict)
        )
        if problems:
            failures.append(f"{change.name}: {problems}")
    with capsys.disabled():
        print(f"\n\nRevision N -> N+1 as the API server takes them ({manager}):\n{_table(rows)}\n")  # noqa: T201
    assert not failures, "\n".join(failures)


def test_the_api_server_model_rejects_what_a_cluster_rejects(helm, tmp_path):
    """The checker can fail: a changed Job template under the same name, a selector change, a
    count `kubectl scale` set that the chart still renders, a key left behind by stringData."""
    documents = render(helm, [])
    job = next(d for d in documents if d["kind"] == "Job")
    changed_job = copy.deepcopy(job)
    changed_job["spec"]["template"]["metadata"]["annotations"]["x"] = "y"
    deployment = next(d for d in documents if d["kind"] == "Deployment" and component(d) == "web")
    moved = copy.deepcopy(deployment)
    moved["spec"]["selector"]["matchLabels"]["extra"] = "label"
    server = APIServer("helm4")
    server.install(documents)
    outcome = server.apply(
        [changed_job if d is job else moved if d is deployment else d for d in documents]
    )
    assert any("Job spec.template is immutable" in r for r in outcome.rejected)
    assert any("spec.selector is immutable" in r for r in outcome.rejected)
    for manager, message in (("helm4", "conflict"), ("helm3", "silently resets")):
        server = APIServer(manager)
        server.install(documents)
        server.scale(f"{RELEASE}-worker", SCALED_WORKERS, "kubectl")
        outcome = server.apply(documents)
        assert any(message in r for r in outcome.rejected), (manager, outcome)
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
    server = APIServer("helm4")
    server.install([{**secret, "stringData": {"A": "1", "B": "2"}}])
    assert server.apply([{**secret, "stringData": {"A": "1"}}]).rejected
    server = APIServer("helm4")
    server.install([{**secret, "data": {"A": "MQ==", "B": "Mg=="}}])
    assert not server.apply([{**secret, "data": {"A": "MQ=="}}]).rejected


# --- 1. the migrate Job


def _job(documents: list[dict]) -> dict:
    (job,) = [d for d in documents if d["kind"] == "Job"]
    return job


def test_migrate_job_name_covers_everything_that_shapes_the_job(helm):
    """A Job's template is immutable: whatever changes it must change the name."""
    base = _job(render(helm, []))
    for args in (
        ["--set", "podAnnotations.rolled=yes"],
        ["--set", "migrations.resources.limits.cpu=2"],
        ["--set", "nodeSelector.pool=general"],
        ["--set", "image.pullPolicy=Always"],
        ["--set", "migrations.rerun=1"],
    ):
        job = _job(render(helm, args))
        if job["spec"] != base["spec"] or "rerun" in args[1]:
            assert job["metadata"]["name"] != base["metadata"]["name"], args
    assert len(base["metadata"]["name"]) <= 63


def test_existing_secret_rotation_rolls_pods_and_runs_a_new_job(helm):
    documents = {
        value: render(helm, [*EXISTING, "--set", f"existingSecretChecksum={value}"])
        for value in ("a", "b")
    }
    assert _job(documents["a"])["metadata"]["name"] != _job(documents["b"])["metadata"]["name"]
    for before, after in zip(documents["a"], documents["b"], strict=True):
        if before["kind"] == "Deployment":
            assert before["spec"]["template"] != after["spec"]["template"], key(before)


# --- 2. replicas an operator owns


@pytest.mark.parametrize("role", ["web", "worker", "relay"])
def test_replicas_are_left_out_when_the_operator_owns_them(helm, role):
    documents = render(helm, ["--set", f"{role}.replicas=null", "--set", "relay.enabled=true"])
    (deployment,) = [d for d in documents if d["kind"] == "Deployment" and component(d) == role]
    assert "replicas" not in deployment["spec"]


# --- 4. drains and rollouts during an outage


def _evictable(pdb: dict, replicas: int, healthy: int, pod_healthy: bool) -> bool:
    """The eviction API's decision for one pod (policy/v1, maxUnavailable budgets)."""
    policy = pdb["spec"].get("unhealthyPodEvictionPolicy", "IfHealthyBudget")
    if not pod_healthy and policy == "AlwaysAllow":
        return True
    desired_healthy = replicas - pdb["spec"]["maxUnavailable"]
    if not pod_healthy:
        return healthy >= desired_healthy  # IfHealthyBudget
    return healthy - 1 >= desired_healthy


@pytest.mark.parametrize("role", ["web", "worker"])
def test_a_drain_evicts_pods_left_unready_by_an_outage(helm, role):
    """PostgreSQL down: web unready; ClickHouse down: workers unready. The drain must go on."""
    documents = render(helm, [])
    (pdb,) = [d for d in documents if d["kind"] == "PodDisruptionBudget" and component(d) == role]
    replicas = 2
    assert _evictable(pdb, replicas, healthy=0, pod_healthy=False)
    assert not _evictable(pdb, replicas, healthy=1, pod_healthy=True), "the budget still holds"


def _resolve(value: int | str, replicas: int, *, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    fraction = int(value.rstrip("%")) * replicas / 100
    return math.ceil(fraction) if round_up else math.floor(fraction)


def simulate_rollout(strategy: dict, replicas: int, ready: Callable[[int], bool]) -> list[int]:
    """The Deployment controller's rolling update (pkg/controller/deployment/rolling.go), step by
    step: old pods left after each sync; `ready(step)` says whether pods can be ready."""
    rolling = strategy.get("rollingUpdate", {})
    surge = _resolve(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = _resolve(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    old, new, history = replicas, 0, []
    for step in range(40):
        available_new = new if ready(step) else 0
        available_old = old if ready(step) else 0
        # reconcileNewReplicaSet
        new = min(new + max(0, replicas + surge - (old + new)), replicas)
        # reconcileOldReplicaSets: unhealthy old pods first, then healthy ones within budget
        min_available = replicas - unavailable
        new_unavailable = new - available_new
        max_scaled_down = old + new - min_available - new_unavailable
        if max_scaled_down > 0:
            cleanup = min(old - available_old, max_scaled_down)
            old -= cleanup
            available = min(available_old, old) + available_new
            if available > min_available:
                old -= min(available - min_available, min(available_old, old))
        history.append(old)
    return history


@pytest.mark.parametrize("role", ["worker", "relay"])
def test_a_rollout_progresses_while_clickhouse_is_down_and_completes_after(helm, role):
    documents = render(helm, ["--set", "relay.enabled=true", "--set", "relay.replicas=2"])
    (deployment,) = [d for d in documents if d["kind"] == "Deployment" and component(d) == role]
    strategy, replicas = deployment["spec"]["strategy"], 2
    outage = simulate_rollout(strategy, replicas, ready=lambda step: False)
    assert outage[-1] < replicas, f"no old {role} pod is ever replaced: {outage}"
    recovered = simulate_rollout(strategy, replicas, ready=lambda step: step >= 5)
    assert recovered[-1] == 0, recovered
    # And the simulation can tell a stall: no old pod goes while new ones cannot get ready.
    stalled = {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}}
    assert simulate_rollout(stalled, replicas, ready=lambda step: False)[-1] == replicas


# --- 6. service links, the Secret, wildcard hosts, the ClickHouse wait, beat readiness


def test_no_service_links_reach_the_pods(helm):
    """A Service named `clickhouse` would set CLICKHOUSE_PORT=tcp://... in every pod."""
    for document in render(helm, ["--set", "relay.enabled=true"]):
        if document["kind"] in ("Deployment", "Job"):
            assert pod_spec(document).get("enableServiceLinks") is False, key(document)


def test_secret_is_data_with_every_key_so_a_cleared_key_is_cleared(helm):
    args = ["--set", "secret.SENTRY_CONFIG_DSN="]
    (secret,) = [d for d in render(helm, args) if d["kind"] == "Secret"]
    assert "stringData" not in secret
    values = yaml.safe_load((CHART / "values.yaml").read_text())["secret"]
    assert set(secret["data"]) == set(values), "every key, empty ones as empty values"
    assert base64.b64decode(secret["data"]["SENTRY_CONFIG_DSN"]) == b""
    minimal = yaml.safe_load(SCENARIOS["minimal"].read_text())["secret"]
    for name, value in minimal.items():
        assert base64.b64decode(secret["data"][name]).decode() == value


def test_a_wildcard_ingress_host_is_an_allowed_host_django_matches(helm, settings):
    args = [
        "--set",
        "ingress.enabled=true",
        "--set",
        "ingress.hosts[0].host=*.example.com",
        "--set",
        "ingress.hosts[0].paths[0].path=/",
        "--set",
        "ingress.hosts[0].paths[0].pathType=Prefix",
    ]
    (config_map,) = [d for d in render(helm, args) if d["kind"] == "ConfigMap"]
    settings.ALLOWED_HOSTS = config_map["data"]["ALLOWED_HOSTS"].split(",")
    client = Client(HTTP_X_FORWARDED_PROTO="https")
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    response = client.get("/api/v1/openapi.json", HTTP_HOST="tenant.example.com")
    assert response.status_code == 200, config_map["data"]["ALLOWED_HOSTS"]


def test_workers_and_relays_wait_for_the_clickhouse_schema_too(helm):
    commands = get_commands()
    command = load_command_class(commands["clickhouse_migrate"], "clickhouse_migrate")
    command.create_parser("manage.py", "clickhouse_migrate").parse_args(["--check"])
    for document in render(helm, ["--set", "relay.enabled=true"]):
        if document["kind"] == "Deployment" and component(document) in ("worker", "relay"):
            (init,) = pod_spec(document)["initContainers"]
            script = init["command"][-1]
            assert "manage migrate --check" in script
            assert "manage clickhouse_migrate --check" in script


def test_beat_has_a_readiness_probe(helm):
    (beat,) = [d for d in render(helm, []) if d["kind"] == "Deployment" and component(d) == "beat"]
    (container,) = pod_spec(beat)["containers"]
    assert container["readinessProbe"]["exec"]["command"][-1] == "beat-live"


# --- 7. escape hatches


ESCAPE_HATCHES = {
    "extraEnv": [{"name": "SSL_CERT_FILE", "value": "/etc/ssl/custom/ca.crt"}],
    "extraEnvFrom": [{"secretRef": {"name": "more-settings"}}],
    "extraVolumes": [{"name": "ca", "configMap": {"name": "ca-bundle"}}],
    "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ssl/custom", "readOnly": True}],
    "sidecars": [{"name": "proxy", "image": "proxy:1.0"}],
    "worker": {
        "extraEnv": [{"name": "WORKER_ONLY", "value": "1"}],
        "nodeSelector": {"pool": "workers"},
        "tolerations": [{"key": "workers", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {}},
        "podAnnotations": {"worker-only": "yes"},
        "podLabels": {"tier": "background"},
        "autoscaling": {
            "enabled": True,
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 600}},
        },
    },
}


def test_escape_hatches_reach_the_pods(helm, tmp_path):
    values = tmp_path / "escape-hatches.yaml"
    values.write_text(yaml.safe_dump(ESCAPE_HATCHES))
    documents = render(helm, ["--values", str(values)])
    for document in documents:
        if document["kind"] not in ("Deployment", "Job"):
            continue
        role, spec = component(document), pod_spec(document)
        assert {"name": "ca", "configMap": {"name": "ca-bundle"}} in spec["volumes"], role
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            if container["name"] == "proxy":
                continue
            assert ESCAPE_HATCHES["extraEnv"][0] in container["env"], (role, container["name"])
            assert ESCAPE_HATCHES["extraEnvFrom"][0] in container["envFrom"]
            assert ESCAPE_HATCHES["extraVolumeMounts"][0] in container["volumeMounts"]
            worker_env = {"name": "WORKER_ONLY", "value": "1"} in container["env"]
            assert worker_env == (role == "worker"), (role, container["name"])
        names = [c["name"] for c in spec["containers"]]
        assert ("proxy" in names) == (document["kind"] == "Deployment"), (role, names)
        metadata = document["spec"]["template"]["metadata"]
        assert (spec.get("nodeSelector") == {"pool": "workers"}) == (role == "worker")
        assert ("tolerations" in spec) == (role == "worker")
        assert ("affinity" in spec) == (role == "worker")
        assert (metadata["annotations"].get("worker-only") == "yes") == (role == "worker")
        assert (metadata["labels"].get("tier") == "background") == (role == "worker")
    (hpa,) = [d for d in documents if d["kind"] == "HorizontalPodAutoscaler"]
    assert hpa["spec"]["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 600}}


def test_topology_spread_counts_only_the_pods_of_the_current_revision(helm):
    for document in render(helm, ["--set", "relay.enabled=true"]):
        for constraint in (
            pod_spec(document).get("topologySpreadConstraints", [])
            if document["kind"] == "Deployment"
            else []
        ):
            assert constraint["matchLabelKeys"] == ["pod-template-hash"], key(document)
