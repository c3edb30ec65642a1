"""The chart's alert rules, as it renders them, checked and unit-tested with the real promtool.

The PrometheusRule template is the rules' one source of truth: each test renders it with helm,
writes its groups to a Prometheus rule file and runs promtool on that file.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.prometheus import exported_metrics, exposed_series_names, promql_metric_names
from tests.support.prometheus import promtool as promtool_path

from .conftest import PROJECT_ROOT

UNIT_TESTS = Path(__file__).parent / "monitoring" / "alerts.test.yaml"
RUNBOOK = PROJECT_ROOT / "docs" / "runbook.md"
# The release and namespace the unit tests' series belong to.
NAMESPACE = "die-hard"
RULE_TEMPLATE = "templates/monitoring/prometheusrule.yaml"


@pytest.fixture(scope="module")
def promtool() -> Path:
    return promtool_path()


def _rule(helm, *values: str) -> dict:
    result = helm.template(
        "--namespace",
        NAMESPACE,
        "--set",
        "monitoring.prometheusRule.enabled=true",
        *values,
        "--show-only",
        RULE_TEMPLATE,
    )
    assert result.returncode == 0, result.stderr
    [rule] = result.documents
    return rule


def _alerts(rule: dict) -> dict[str, dict]:
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def _run_unit_tests(promtool: Path, rule: dict, directory: Path) -> subprocess.CompletedProcess:
    (directory / "die-hard.rules.yaml").write_text(
        yaml.safe_dump({"groups": rule["spec"]["groups"]})
    )
    shutil.copy(UNIT_TESTS, directory / UNIT_TESTS.name)
    return subprocess.run(
        [str(promtool), "test", "rules", UNIT_TESTS.name],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=directory,
    )


@pytest.fixture(scope="module")
def default_rule(helm) -> dict:
    return _rule(helm)


def test_rendered_rules_pass_promtool_check(promtool, default_rule, tmp_path):
    rules = tmp_path / "die-hard.rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": default_rule["spec"]["groups"]}))
    result = subprocess.run(
        [str(promtool), "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts(default_rule))} rules found" in result.stdout


def test_every_alert_passes_its_promtool_unit_tests(promtool, default_rule, tmp_path):
    result = _run_unit_tests(promtool, default_rule, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_unit_tests_cover_every_alert_firing_and_silent(default_rule):
    tests = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    firing = {case["alertname"] for case in cases if case["exp_alerts"]}
    silent = {case["alertname"] for case in cases if not case["exp_alerts"]}
    alerts = set(_alerts(default_rule))
    assert len(alerts) == 8
    assert firing == alerts
    assert silent == alerts


def test_unit_tests_pin_the_clickhouse_threshold(promtool, helm, tmp_path):
    """The ClickHouse-down case fails when the threshold is shorter: the tests can fail."""
    rule = _rule(helm, "--set", "monitoring.prometheusRule.clickhouseUnreachableFor=5m")
    result = _run_unit_tests(promtool, rule, tmp_path)
    assert result.returncode != 0
    assert "clickhouse down longer than the threshold" in result.stdout + result.stderr


def test_every_alert_explains_itself_and_links_its_runbook_section(default_rule):
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")
        for heading in re.findall(r"^#{2,3} (.+)$", RUNBOOK.read_text(), flags=re.MULTILINE)
    }
    for name, alert in _alerts(default_rule).items():
        annotations = alert["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        assert alert["labels"]["severity"] in {"critical", "warning", "info"}, name
        url, anchor = annotations["runbook_url"].split("#")
        assert url.endswith("docs/runbook.md"), name
        assert anchor in anchors, f"docs/runbook.md has no section for {name}"


def test_rules_select_this_release_and_name_exported_metrics(default_rule):
    series = exposed_series_names(exported_metrics()[0])
    for name, alert in _alerts(default_rule).items():
        names = promql_metric_names(alert["expr"])
        assert names, name
        assert names <= series, f"{name} names unknown metrics: {names - series}"
        selectors = re.findall(r"\{([^}]*)\}", alert["expr"])
        assert selectors, name
        for selector in selectors:
            assert f'namespace="{NAMESPACE}"' in selector, name
            assert 'job=~"die-hard-web-metrics|die-hard-worker-metrics|die-hard-beat-metrics"' in (
                selector
            ), name


def test_thresholds_labels_and_disabled_alerts_come_from_values(helm):
    rule = _rule(
        helm,
        "--set",
        "monitoring.prometheusRule.oldestPendingAgeSeconds=60,"
        "monitoring.prometheusRule.clickhouseUnreachableFor=30m,"
        "monitoring.prometheusRule.alertLabels.team=platform,"
        "monitoring.prometheusRule.labels.release=kube-prometheus-stack,"
        "monitoring.prometheusRule.disabled.DieHardOutboxDeadLettersPresent=true,"
        "monitoring.prometheusRule.runbookUrl=https://git.example.com/die-hard/docs/runbook.md,"
        "beat.enabled=false,relay.enabled=true",
        # `--set` passes a decimal as a string; the schema wants a number.
        "--set-json",
        "monitoring.prometheusRule.webErrorRatio=0.2",
    )
    alerts = _alerts(rule)
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert alerts["DieHardOutboxOldestPendingTooOld"]["expr"].endswith("> 60")
    assert alerts["DieHardWebErrorRatioHigh"]["expr"].endswith("> 0.2")
    assert alerts["DieHardClickHouseUnreachable"]["for"] == "30m"
    assert "DieHardOutboxDeadLettersPresent" not in alerts
    # Without beat there is no beat to miss; the relay's metrics Service joins the selector.
    assert "DieHardBeatMissing" not in alerts
    assert "die-hard-relay-metrics" in alerts["DieHardWorkerHeartbeatStale"]["expr"]
    assert "die-hard-beat-metrics" not in alerts["DieHardWorkerHeartbeatStale"]["expr"]
    for alert in alerts.values():
        assert alert["labels"]["team"] == "platform"
        assert alert["annotations"]["runbook_url"].startswith("https://git.example.com/")
