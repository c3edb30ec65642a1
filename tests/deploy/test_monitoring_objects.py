"""The chart's custom resources (ServiceMonitor, PrometheusRule, KEDA ScaledObject): valid for
their CRDs' schemas, off by default, and wired to the release they watch or scale.

No package on a reachable registry ships these CRDs' openAPIV3Schemas as data, so the fields
the chart can render are transcribed from the upstream CRDs into monitoring/crd-schemas/ (each
file names its source and version) and checked with jsonschema, every object closed as the API
server's strict field validation closes it.
"""

import copy
import json
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.support.prometheus import (
    exported_metrics,
    exposed_series_names,
    promql_metric_names,
    promtool,
)

from .conftest import CHART, CUSTOM_RESOURCE_KINDS, SCENARIOS, custom_resources

CRD_SCHEMAS = Path(__file__).parent / "monitoring" / "crd-schemas"
# (apiVersion, kind) -> the schema file of its CRD.
CRD_SCHEMA_FILES = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject.json",
}
EVERYTHING_ON = [
    "--set",
    "monitoring.serviceMonitor.enabled=true,monitoring.prometheusRule.enabled=true,"
    "monitoring.dashboards.enabled=true,worker.keda.enabled=true",
]


def _schema(document: dict) -> dict:
    name = CRD_SCHEMA_FILES[document["apiVersion"], document["kind"]]
    return json.loads((CRD_SCHEMAS / name).read_text())["openAPIV3Schema"]


def _errors(document: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(_schema(document))
    return [
        f"{document['kind']}: {error.message} at {list(error.absolute_path)}"
        for error in validator.iter_errors(document)
    ]


@pytest.fixture(scope="module")
def monitoring(rendered) -> list[dict]:
    return rendered["helm4", "monitoring"]


def _kinds(documents: list[dict]) -> set[str]:
    return {document["kind"] for document in documents}


def test_off_by_default_and_on_in_the_monitoring_scenario(rendered, monitoring):
    for scenario in SCENARIOS:
        if scenario != "monitoring":
            assert not custom_resources(rendered["helm4", scenario]), scenario
    assert set(CRD_SCHEMA_FILES) == CUSTOM_RESOURCE_KINDS
    assert {kind for _, kind in CUSTOM_RESOURCE_KINDS} <= _kinds(monitoring)
    assert "die-hard-dashboards" in {d["metadata"]["name"] for d in monitoring}


def test_custom_resources_are_valid_for_their_crds(rendered, helm):
    documents = [d for scenario in SCENARIOS for d in custom_resources(rendered["helm4", scenario])]
    result = helm.template(*EVERYTHING_ON)
    assert result.returncode == 0, result.stderr
    documents += custom_resources(result.documents)
    assert {(d["apiVersion"], d["kind"]) for d in documents} == CUSTOM_RESOURCE_KINDS
    errors = [error for document in documents for error in _errors(document)]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    ("kind", "path", "field"),
    [
        ("ServiceMonitor", ["spec", "endpoints", 0], "scrapeInterval"),
        ("PrometheusRule", ["spec", "groups", 0, "rules", 0], "summary"),
        ("ScaledObject", ["spec"], "minReplicas"),
        ("ScaledObject", ["spec", "triggers", 0], "threshold"),
    ],
)
def test_crd_validation_catches_a_misplaced_field(monitoring, kind, path, field):
    document = copy.deepcopy(next(d for d in monitoring if d["kind"] == kind))
    assert not _errors(document)
    target = document
    for key in path:
        target = target[key]
    target[field] = "1"
    assert _errors(document)


def test_service_monitor_scrapes_this_releases_metrics_services(monitoring):
    [monitor] = [d for d in monitoring if d["kind"] == "ServiceMonitor"]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "die-hard",
        "app.kubernetes.io/instance": "die-hard",
        "die-hard.io/metrics": "true",
    }
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "15s"
    assert endpoint["metricRelabelings"][0]["action"] == "drop"


def test_keda_scales_the_workers_on_the_due_backlog(monitoring):
    [scaled] = [d for d in monitoring if d["kind"] == "ScaledObject"]
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "die-hard-worker",
    }
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 20)
    assert (spec["pollingInterval"], spec["cooldownPeriod"]) == (30, 300)
    assert spec["fallback"] == {"failureThreshold": 3, "replicas": 2}
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior == {"scaleDown": {"stabilizationWindowSeconds": 600}}
    [trigger] = spec["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metricType"] == "AverageValue"
    metadata = trigger["metadata"]
    assert (
        metadata["serverAddress"] == "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
    )
    assert metadata["threshold"] == "10000"
    selector = (
        'namespace="default", job=~"die-hard-web-metrics|die-hard-worker-metrics|'
        'die-hard-beat-metrics|die-hard-relay-metrics"'
    )
    assert metadata["query"] == (
        f"max(die_hard_outbox_due_events{{{selector}}}) "
        f"unless on () max(die_hard_outbox_breaker_state{{{selector}}}) == 2"
    )
    # KEDA owns the worker count: no HPA of the chart's, no replicas in the Deployment.
    assert "HorizontalPodAutoscaler" not in _kinds(monitoring)
    [worker] = [
        d
        for d in monitoring
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "die-hard-worker"
    ]
    assert "replicas" not in worker["spec"]


def test_keda_trigger_options(helm):
    result = helm.template(
        "--set",
        "worker.keda.enabled=true,worker.keda.prometheus.authenticationRef=prometheus-auth,"
        "worker.keda.prometheus.query=sum(my_backlog),worker.keda.targetDueEventsPerReplica=500",
        "--show-only",
        "templates/worker/scaledobject.yaml",
    )
    assert result.returncode == 0, result.stderr
    [trigger] = result.documents[0]["spec"]["triggers"]
    assert trigger["authenticationRef"] == {"name": "prometheus-auth"}
    assert trigger["metadata"]["query"] == "sum(my_backlog)"
    assert trigger["metadata"]["threshold"] == "500"
    assert not _errors(result.documents[0])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            "worker.keda.enabled=true,worker.autoscaling.enabled=true",
            "worker.keda.enabled and worker.autoscaling.enabled are mutually exclusive",
        ),
        (
            "worker.keda.enabled=true,worker.keda.minReplicaCount=5,worker.keda.maxReplicaCount=2",
            "worker.keda.maxReplicaCount must be at least worker.keda.minReplicaCount",
        ),
        ("monitoring.prometheusRule.relayFailingFor=ten", "relayFailingFor"),
        ("monitoring.serviceMonitor.interval=30", "interval"),
        ("worker.keda.minReplicaCount=0", "minReplicaCount"),
        (
            "monitoring.prometheusRule.enabled=true,"
            + ",".join(
                f"monitoring.prometheusRule.disabled.DieHard{name}=true"
                for name in (
                    "OutboxOldestPendingTooOld",
                    "OutboxDeadLettersPresent",
                    "OutboxDeadLettersIncreasing",
                    "OutboxRelayFailing",
                    "ClickHouseUnreachable",
                    "BeatMissing",
                    "WorkerHeartbeatStale",
                    "WebErrorRatioHigh",
                )
            ),
            "monitoring.prometheusRule.disabled leaves no alert",
        ),
    ],
)
def test_bad_monitoring_values_are_rejected(helms, values, message):
    for version, helm in helms.items():
        result = helm.template("--set", values)
        assert result.returncode != 0, f"{version}: {values} was accepted"
        assert message in result.stderr, result.stderr


def test_keda_query_follows_the_due_backlog_unless_clickhouse_is_down(helm, tmp_path):
    """promtool evaluates the rendered query on synthetic series: the due backlog (the largest
    any pod exports), and nothing while a relay's breaker is open."""
    result = helm.template(
        "--namespace",
        "die-hard",
        "--set",
        "worker.keda.enabled=true",
        "--show-only",
        "templates/worker/scaledobject.yaml",
    )
    assert result.returncode == 0, result.stderr
    query = result.documents[0]["spec"]["triggers"][0]["metadata"]["query"]
    labels = 'namespace="die-hard", job="die-hard-{role}-metrics", pod="die-hard-{role}-1"'
    worker, beat = labels.format(role="worker"), labels.format(role="beat")
    tests = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    # Two pods export the same cached measurement; one a minute older.
                    {
                        "series": f"die_hard_outbox_due_events{{{worker}}}",
                        "values": "0 25000 25000 40000",
                    },
                    {
                        "series": f"die_hard_outbox_due_events{{{beat}}}",
                        "values": "0 0 25000 40000",
                    },
                    {
                        "series": f"die_hard_outbox_breaker_state{{{worker}}}",
                        "values": "0 0 0 2",
                    },
                    # Another namespace's backlog is not this release's.
                    {
                        "series": 'die_hard_outbox_due_events{namespace="other", '
                        'job="die-hard-worker-metrics", pod="die-hard-worker-1"}',
                        "values": "90000 90000 90000 90000",
                    },
                ],
                "promql_expr_test": [
                    {
                        "expr": query,
                        "eval_time": "0m",
                        "exp_samples": [{"labels": "{}", "value": 0}],
                    },
                    {
                        "expr": query,
                        "eval_time": "1m",
                        "exp_samples": [{"labels": "{}", "value": 25000}],
                    },
                    {"expr": query, "eval_time": "3m", "exp_samples": []},
                ],
            }
        ],
    }
    (tmp_path / "keda.test.yaml").write_text(yaml.safe_dump(tests))
    run = subprocess.run(
        [str(promtool()), "test", "rules", "keda.test.yaml"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    names = promql_metric_names(query)
    assert names == {"die_hard_outbox_due_events", "die_hard_outbox_breaker_state"}
    assert names <= exposed_series_names(exported_metrics()[0])


def _has_metrics_switch() -> bool:
    """Whether the chart has the metrics endpoints' values (`metrics.enabled`, `metrics.port`)."""
    return "metrics" in json.loads((CHART / "values.schema.json").read_text())["properties"]


def test_monitoring_selects_exactly_the_metrics_services(monitoring):
    """The rules and the KEDA query select the jobs Prometheus names after the metrics Services
    `<fullname>-<role>-metrics`; the ServiceMonitor selects those Services, port `metrics`."""
    roles = ["web", "worker", "beat", "relay"]  # the monitoring scenario runs a relay
    expected = {f"die-hard-{role}-metrics" for role in roles}
    [rule] = [d for d in monitoring if d["kind"] == "PrometheusRule"]
    expr = rule["spec"]["groups"][0]["rules"][0]["expr"]
    assert set(expr.split('job=~"')[1].split('"')[0].split("|")) == expected
    [monitor] = [d for d in monitoring if d["kind"] == "ServiceMonitor"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    selected = [
        d
        for d in monitoring
        if d["kind"] == "Service" and selector.items() <= d["metadata"]["labels"].items()
    ]
    # Before the chart rendered metrics Services, the selector matched none of its Services.
    assert {d["metadata"]["name"] for d in selected} == (
        expected if _has_metrics_switch() else set()
    )
    for service in selected:
        assert "metrics" in {port["name"] for port in service["spec"]["ports"]}


def test_monitoring_objects_need_the_metrics_endpoints(helm):
    result = helm.template(*EVERYTHING_ON, "--set", "metrics.enabled=false")
    assert result.returncode != 0
    if _has_metrics_switch():
        assert "needs the metrics endpoints: set metrics.enabled=true" in result.stderr
    else:
        assert "additional properties 'metrics' not allowed" in result.stderr
