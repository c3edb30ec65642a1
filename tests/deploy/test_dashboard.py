"""The Grafana dashboard: it parses, every panel query is valid PromQL naming only metrics the
application exports, and the chart ships it unchanged in a sidecar-discoverable ConfigMap."""

import json
import re
import subprocess

import yaml

from tests.support.prometheus import (
    CONTRACT_METRICS,
    application_metric_names,
    exported_metrics,
    exposed_series_names,
    promql_metric_names,
)
from tests.support.prometheus import promtool as promtool_path

from .conftest import CHART

DASHBOARD = CHART / "dashboards" / "die-hard.json"
# What Grafana substitutes for the dashboard's variables, for promtool to parse the queries.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$namespace": "die-hard", "$job": ".*"}


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def _panels(dashboard: dict) -> list[dict]:
    panels = []
    for panel in dashboard["panels"]:
        panels += [panel, *panel.get("panels", [])]
    return [panel for panel in panels if panel["type"] != "row"]


def _queries(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every panel target."""
    return [
        (panel["title"], target["expr"])
        for panel in _panels(dashboard)
        for target in panel["targets"]
    ]


def test_dashboard_parses_and_every_panel_queries_prometheus():
    dashboard = _dashboard()
    assert dashboard["uid"] == "die-hard-outbox"
    panels = _panels(dashboard)
    assert len(panels) >= 15
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]


def test_every_panel_query_names_only_exported_metrics():
    metrics, source = exported_metrics()
    series = exposed_series_names(metrics)
    for title, expr in _queries(_dashboard()):
        names = promql_metric_names(expr)
        assert names, f"{title}: no metric found in {expr}"
        assert names <= series, f"{title}: {sorted(names - series)} not exported ({source})"
    for variable in _dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            # Grafana's label_values(<series selector>, <label>)
            selector = re.fullmatch(r"label_values\((.+), *\w+\)", variable["definition"])
            assert selector, variable["definition"]
            assert promql_metric_names(selector[1]) <= series, variable["name"]


def test_the_dashboard_shows_every_exported_metric():
    used = set().union(*(promql_metric_names(expr) for _, expr in _queries(_dashboard())))
    for name, kind in exported_metrics()[0].items():
        shown = {name, f"{name}_bucket"} if kind != "counter" else {name}
        assert used & shown, f"no panel shows {name}"


def test_the_metric_name_extraction_sees_what_it_must():
    expr = (
        "histogram_quantile(0.99, sum by (le, route) (rate(die_hard_http_request_duration_seconds"
        '_bucket{namespace="$namespace", status=~"5.."}[$__rate_interval]))) / ignoring(x) '
        "max(die_hard_outbox_due_events) or vector(0) unless on (namespace) up offset 5m"
    )
    assert promql_metric_names(expr) == {
        "die_hard_http_request_duration_seconds_bucket",
        "die_hard_outbox_due_events",
        "up",
    }
    series = exposed_series_names(exported_metrics()[0])
    assert "die_hard_outbox_relayed_events_total" in series
    assert "die_hard_outbox_relayed_events" not in series
    assert "die_hard_outbox_pending_events_bucket" not in series
    assert "die_hard_outbox_batch_duration_seconds_bucket" in series


def test_the_contract_metrics_are_the_applications():
    """Once the application exports metrics, it exports every name the monitoring relies on."""
    names = application_metric_names()
    _, source = exported_metrics()
    if names:
        assert set(CONTRACT_METRICS) <= names, sorted(set(CONTRACT_METRICS) - names)
        assert source == "the metric names in app/"
    else:
        assert source == "the contract list in tests/support/prometheus.py"


def test_every_panel_query_is_valid_promql(tmp_path):
    """promtool parses each query (as the expression of a recording rule)."""
    rules = []
    for index, (_, expr) in enumerate(_queries(_dashboard())):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"dashboard:query_{index}", "expr": expr})
    path = tmp_path / "dashboard.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [str(promtool_path()), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_chart_ships_the_dashboard_in_a_sidecar_configmap(helm):
    result = helm.template(
        "--set",
        "monitoring.dashboards.enabled=true,monitoring.dashboards.annotations.grafana_folder=die-hard",
        "--show-only",
        "templates/monitoring/dashboards.yaml",
    )
    assert result.returncode == 0, result.stderr
    [configmap] = result.documents
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "die-hard"}
    assert "namespace" not in configmap["metadata"]
    assert json.loads(configmap["data"]["die-hard.json"]) == _dashboard()

    other = helm.template(
        "--set",
        "monitoring.dashboards.enabled=true,monitoring.dashboards.label=dashboards,"
        "monitoring.dashboards.labelValue=grafana,monitoring.dashboards.namespace=grafana",
        "--show-only",
        "templates/monitoring/dashboards.yaml",
    )
    assert other.returncode == 0, other.stderr
    [configmap] = other.documents
    assert configmap["metadata"]["labels"]["dashboards"] == "grafana"
    assert "grafana_dashboard" not in configmap["metadata"]["labels"]
    assert configmap["metadata"]["namespace"] == "grafana"


def test_dashboard_json_is_kept_formatted():
    text = DASHBOARD.read_text()
    assert text == json.dumps(json.loads(text), indent=2) + "\n"
    assert not re.search(r"\$\{?DS_", text), "an exported dashboard's input placeholder"
