"""The benchmark's arithmetic and reporting (bench/): fast, no services needed."""

import json

import pytest

from bench.footprint import _growth_mib
from bench.freshness import STALL_FLOOR_S, stall_after
from bench.harness import percentile, summarize_ms
from bench.report import render_markdown, targets, write_results
from bench.throughput import DrainMismatch, drain_check, http_configs


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


def test_a_drain_must_move_each_event_exactly_once():
    drain_check("relay", events=100, moved=100, rows=100, distinct=100, left=0)
    for wrong in (
        {"moved": 99, "rows": 99, "distinct": 99, "left": 1},  # one left behind
        {"moved": 100, "rows": 101, "distinct": 100, "left": 0},  # one stored twice
        {"moved": 100, "rows": 100, "distinct": 99, "left": 0},  # one lost, one doubled
    ):
        with pytest.raises(DrainMismatch):
            drain_check("relay", events=100, **wrong)


def test_the_http_front_varies_one_factor_at_a_time_around_the_default():
    assert http_configs((1000, 5000, 20000), (1, 2, 4), 5000) == [
        (1000, 1),
        (5000, 1),
        (20000, 1),
        (5000, 2),
        (5000, 4),
    ]


def test_stall_patience_scales_with_the_measured_start_up():
    assert stall_after(0.1) == STALL_FLOOR_S
    assert stall_after(6.0) == 3 * stall_after(2.0)


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
        "p99_over_smallest": round(p50 / 5.0, 2),
    }


def _in_process() -> dict:
    def mode(rates: list[float]) -> dict:
        return {
            "events_per_s": rates,
            "median_events_per_s": sorted(rates)[1],
            "batch_ms": summarize_ms([0.1, 0.12, 0.2]),
        }

    def ratio(relay: float, limit: float, per_round: list[float]) -> dict:
        return {
            "relay_events_per_s": relay,
            "limit_events_per_s": limit,
            "relay_over_limit": sorted(per_round)[1],
            "relay_over_limit_per_round": per_round,
            "relay_over_limit_min": min(per_round),
            "relay_over_limit_max": max(per_round),
            "ratio_of_medians": round(relay / limit, 3),
        }

    return {
        "events": 200_000,
        "batch_size": 5000,
        "rounds": 3,
        "runs": [],
        "modes": {
            "relay-inprocess": mode([40_000.0, 42_000.0, 41_000.0]),
            "limit-inprocess": mode([50_000.0, 52_000.0, 51_000.0]),
            "relay-sink": mode([60_000.0, 61_000.0, 62_000.0]),
            "limit-sink": mode([90_000.0, 95_000.0, 92_000.0]),
        },
        "engine": ratio(41_000.0, 51_000.0, [0.78, 0.79, 0.77]),
        "sink": ratio(61_000.0, 92_000.0, [0.66, 0.67, 0.65]),
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
        "startup_s": 2.0,
        "stall_after_s": 10.0,
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
            "in_process": _in_process(),
            "naive": {
                "events": 1000,
                "repeats": 3,
                "events_per_s": 100.0,
                "events_per_s_runs": [98.0, 100.0, 103.0],
                "insert_ms": summarize_ms([0.009, 0.01, 0.02]),
            },
        },
        "publish": {
            "requests_per_variant": 10,
            "variants": {
                "outbox": {**variant, "p50_ms": 2.6},
                "none": {**variant, "p50_ms": 2.0},
                "clickhouse": {**variant, "p50_ms": 12.0},
            },
            "outbox_over_none_p50": 1.3,
            "outbox_over_none_p99": 1.1,
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
            "worst_backlog_p99_over_smallest": 1.6,
        },
        "footprint": {"error": "RuntimeError: the relay exited"},
    }


def test_targets_say_which_goal_is_met_and_which_is_not(results):
    met = {row["target"].split(" (")[0]: row["met"] for row in targets(results)}

    assert met["relay ÷ in-process tight limit at the default batch size"] is False
    assert met["relay ÷ limit through the HTTP front"] is True
    assert met["publish cost at p50"] is False
    assert met["publish cost at p99"] is True
    assert met["freshness p99, worker + beat + wake-up, 100 events/s"] is False
    assert met["footprint benchmark"] is False
    claims = [row for row in targets(results) if row["target"].startswith("claim time")]
    assert [row["met"] for row in claims] == [True, False]  # p50 flat, p99 not


def test_the_report_files_hold_the_table_and_no_raw_samples(results, tmp_path):
    results["targets"] = targets(results)
    results["publish"]["_samples"] = {"outbox": [0.002]}

    paths = write_results(results, {"freshness": {"celery": [0.02, 0.03]}}, tmp_path)

    markdown = render_markdown(results)
    assert "| relay ÷ in-process tight limit at the default batch size" in markdown
    assert "| relay ÷ limit through the HTTP front" in markdown
    assert "| relay → sink (discards) | 60,000, 61,000, 62,000 |" in markdown
    assert "Failed: `RuntimeError: the relay exited`" in markdown
    assert "_samples" not in json.loads(paths["json"].read_text())["publish"]
    assert paths["chart"].read_bytes().startswith(b"\x89PNG")
