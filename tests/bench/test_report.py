"""The benchmark's arithmetic and reporting (bench/): fast, no services needed."""

import json

import pytest

from bench.footprint import _growth_mib
from bench.harness import percentile, summarize_ms
from bench.report import render_markdown, targets, write_results


def test_percentile_interpolates_between_ranks():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 99) == 5
    assert percentile(range(101), 99) == 99


def test_summarize_reports_milliseconds():
    summary = summarize_ms([0.001, 0.002, 0.003])
    assert summary["count"] == 3
    assert summary["p50_ms"] == 2.0
    assert summary["max_ms"] == 3.0


def test_memory_growth_is_zero_for_a_flat_line_and_positive_for_a_leak():
    flat = [(float(t), 100_000) for t in range(50)]
    leak = [(float(t), 100_000 + 1024 * t) for t in range(50)]
    assert _growth_mib(flat)["growth_mib"] == 0
    assert _growth_mib(leak)["slope_mib_per_min"] == pytest.approx(60, rel=0.01)
    assert _growth_mib(leak)["growth_mib"] > 30


def _level(name: str, p50: float, *, pending: int = 1000, dead: int = 0) -> dict:
    return {
        "level": name,
        "pending": pending,
        "dead_lettered": dead,
        "dead_tuples": 0,
        "oldest_other_transaction_s": 0.0,
        "claimed": 1000,
        "first_ms": p50,
        **summarize_ms([p50 / 1000] * 3),
        "plan_execution_ms": 0.8,
        "plan_shared_buffers": 2000,
        "uses_due_index": True,
        "plan": "Index Scan using outbox_event_due_idx on outbox_event",
        "p50_over_smallest": round(p50 / 5.0, 2),
    }


@pytest.fixture
def results() -> dict:
    ratio = {
        "batch_size": 5000,
        "processes": 1,
        "relay_events_per_s": 60_000.0,
        "limit_events_per_s": 70_000.0,
        "relay_over_limit": 0.857,
        "relay_over_naive": 600.0,
    }
    variant = {"path": "/api/v1/users/", **summarize_ms([0.002] * 10), "failures": 0}
    fresh = {
        "relay": "celery",
        "label": "worker + beat + wake-up",
        "rate_per_s": 100,
        "seconds": 30,
        "stalls": [],
        "achieved_rate_per_s": 100.0,
        "events": 3000,
        "delay": summarize_ms([0.02] * 90 + [2.5] * 10),
        "request": summarize_ms([0.005] * 10),
        "relay_peak_rss_mib": {"main": 90.0},
    }
    return {
        "started_at": "2026-01-01T00:00:00+00:00",
        "duration_s": 480.0,
        "machine": {
            key: "x"
            for key in [
                "cpu",
                "os",
                "kernel",
                "python",
                "postgresql",
                "clickhouse",
                "clickhouse_server",
                "chdb",
                "clickhouse_connect",
                "django",
                "psycopg",
                "gunicorn",
                "celery",
                "git",
            ]
        }
        | {"cores": 2, "memory_gib": 8.0},
        "throughput": {
            "events": 200_000,
            "repeats": 3,
            "ratios": [ratio],
            "headline": ratio,
            "naive": {"events": 1000, "events_per_s": 100.0},
        },
        "publish": {
            "requests_per_variant": 10,
            "variants": {
                "outbox": {**variant, "p50_ms": 2.6},
                "none": {**variant, "p50_ms": 2.0},
                "clickhouse": {**variant, "p50_ms": 12.0},
            },
            "outbox_over_none_p50": 1.3,
        },
        "freshness": {"runs": [fresh]},
        "growth": {
            "batch_size": 1000,
            "repeats": 3,
            "levels": [
                _level("1,000 pending", 5.0),
                _level("1,000,000 pending", 5.5, pending=1_000_000),
                _level("1,000 pending + 100,000 dead-lettered", 5.2, dead=100_000),
            ],
            "largest_backlog": "1,000,000 pending",
            "worst_backlog_p50_over_smallest": 1.1,
        },
        "footprint": {"error": "RuntimeError: the relay exited"},
    }


def test_targets_say_which_goal_is_met_and_which_is_not(results):
    met = {row["target"].split(" (")[0]: row["met"] for row in targets(results)}

    assert met["relay ÷ limit at the default batch size"] is True
    assert met["publish cost at p50"] is False
    assert met["freshness p99, worker + beat + wake-up, 100 events/s"] is False
    assert met["footprint benchmark"] is False


def test_the_report_files_hold_the_table_and_no_raw_samples(results, tmp_path):
    results["targets"] = targets(results)
    results["publish"]["_samples"] = {"outbox": [0.002]}

    paths = write_results(results, {"freshness": {"celery": [0.02, 0.03]}}, tmp_path)

    markdown = render_markdown(results)
    assert "| relay ÷ limit at the default batch size" in markdown
    assert "Failed: `RuntimeError: the relay exited`" in markdown
    assert "_samples" not in json.loads(paths["json"].read_text())["publish"]
    assert paths["chart"].read_bytes().startswith(b"\x89PNG")
