"""Prometheus helpers for the monitoring tests: promtool, the metric names a PromQL query uses,
and the metric names the application exports."""

import ast
import re
import subprocess
from functools import cache
from pathlib import Path

from app.config.env import PROJECT_ROOT

# The metrics contract between the application and the monitoring objects (name -> type), as
# agreed before the application exported any metric. Used only while no module of app/ names a
# `die_hard_*` metric; once one does, the application's own names are the truth and this list
# must be a subset of them (tests/deploy/test_dashboard.py checks both).
CONTRACT_METRICS = {
    "die_hard_http_requests_total": "counter",
    "die_hard_http_request_duration_seconds": "histogram",
    "die_hard_outbox_pending_events": "gauge",
    "die_hard_outbox_due_events": "gauge",
    "die_hard_outbox_oldest_pending_age_seconds": "gauge",
    "die_hard_outbox_dead_lettered_events": "gauge",
    "die_hard_outbox_relayed_events_total": "counter",
    "die_hard_outbox_relayed_batches_total": "counter",
    "die_hard_outbox_relay_failures_total": "counter",
    "die_hard_outbox_dead_letters_total": "counter",
    "die_hard_outbox_batch_duration_seconds": "histogram",
    "die_hard_outbox_relay_lag_seconds": "histogram",
    "die_hard_outbox_breaker_state": "gauge",
    "die_hard_heartbeat_age_seconds": "gauge",
}
_METRIC_NAME = re.compile(r"die_hard_[a-z0-9_]*[a-z0-9]")
# The series a histogram is exposed as, beside the counters' `_total` and `_created`.
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count", "_created")


def promtool() -> Path:
    """promtool, installed from Debian's prometheus package when missing (scripts/promtool.sh)."""
    result = subprocess.run(
        [str(PROJECT_ROOT / "scripts" / "promtool.sh")],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, f"scripts/promtool.sh failed:\n{result.stderr}"
    return Path(result.stdout.strip().splitlines()[-1])


@cache
def application_metric_names() -> frozenset[str]:
    """Every metric name a module of app/ spells out as a string (`die_hard_..._total` for a
    counter): the metric objects and the custom collectors alike."""
    names = set()
    for path in (PROJECT_ROOT / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            is_string = isinstance(node, ast.Constant) and isinstance(node.value, str)
            if is_string and _METRIC_NAME.fullmatch(node.value):
                names.add(node.value)
    return frozenset(names)


def exported_metrics() -> tuple[dict[str, str], str]:
    """Name -> type of the metrics the application exports, and where that came from: the
    application's own modules when they name any metric, else the contract list."""
    names = application_metric_names()
    if not names:
        return dict(CONTRACT_METRICS), "the contract list in tests/support/prometheus.py"
    # A name outside the contract is a counter when it says so, else a gauge or a histogram.
    metrics = {name: CONTRACT_METRICS.get(name, "untyped") for name in names}
    for name in metrics:
        if metrics[name] == "untyped" and name.endswith("_total"):
            metrics[name] = "counter"
    return metrics, "the metric names in app/"


def exposed_series_names(metrics: dict[str, str]) -> set[str]:
    """The names of the series Prometheus scrapes for these metrics."""
    series = set()
    for name, kind in metrics.items():
        if kind == "counter":
            series |= {name, name.removesuffix("_total") + "_created"}
        elif kind == "gauge":
            series.add(name)
        else:  # a histogram, or a metric whose type the contract does not know
            series |= {name, *(name + suffix for suffix in _HISTOGRAM_SUFFIXES)}
    return series


# PromQL words that look like metric names but are not.
_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "atan2", "inf", "nan",
}  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()")


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are no function (not
    followed by `(`), keyword, label (inside `{}` or a grouping clause), duration or Grafana
    variable (`$namespace`, `$__rate_interval`)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\$\{[^}]*\}|\$\w+", "", text)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = _GROUPING.sub("", text)
    text = re.sub(r"\b\d+(?:\.\d+)?(?:e[+-]?\d+)?[smhdwy]?\b", "", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in _KEYWORDS}
