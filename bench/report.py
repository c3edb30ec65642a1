"""The machine description, the targets, and the results as JSON, Markdown and a PNG chart."""

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from .harness import PROJECT_ROOT

CHART_NAME = "results.png"


def _first_match(path: str, prefix: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[-1].split("=", 1)[-1].strip().strip('"')
    except OSError:
        pass
    return "unknown"


def _git_revision() -> str:
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{revision}{' + uncommitted changes' if dirty else ''}"


def machine_info() -> dict:
    """The machine and the versions the results were measured with (Django must be set up)."""
    from django.db import connection

    from app.clickhouse.client import clickhouse_client

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    memory_kib = int(_first_match("/proc/meminfo", "MemTotal").split()[0] or 0)
    return {
        "cpu": _first_match("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "os": _first_match("/etc/os-release", "PRETTY_NAME"),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": postgres,
        "clickhouse": clickhouse_client().server_version,
        "clickhouse_server": "embedded engine (chdb) behind devtools.clickhouse_http, over HTTP",
        "chdb": metadata.version("chdb"),
        "clickhouse_connect": metadata.version("clickhouse-connect"),
        "django": metadata.version("django"),
        "psycopg": metadata.version("psycopg"),
        "gunicorn": metadata.version("gunicorn"),
        "celery": metadata.version("celery"),
        "git": _git_revision(),
    }


def machine_line(machine: dict) -> str:
    return (
        f"{machine['cores']} cores ({machine['cpu']}), {machine['memory_gib']} GiB, "
        f"{machine['os']}; Python {machine['python']}, PostgreSQL {machine['postgresql']}, "
        f"ClickHouse {machine['clickhouse']} (chdb {machine['chdb']}, "
        f"{machine['clickhouse_server']}), clickhouse-connect {machine['clickhouse_connect']}, "
        f"Django {machine['django']}, psycopg {machine['psycopg']}, "
        f"gunicorn {machine['gunicorn']}, celery {machine['celery']}"
    )


# --- targets ------------------------------------------------------------------------------------

# The relay against the tightest path in one process (no HTTP front), at the default batch size.
IN_PROCESS_GOAL = 0.8
# Outbox ÷ no event logging, for the registration request, at p50 and at p99 alike.
PUBLISH_GOAL = 1.2
# Worst backlog level ÷ the smallest, for one claim, at p50 and at p99 alike.
GROWTH_GOAL = 1.5


def targets(results: dict) -> list[dict]:
    """The issue's targets beside what was measured. A group that failed shows as not met."""
    rows = []
    throughput = results.get("throughput")
    in_process = (throughput or {}).get("in_process")
    if in_process:
        engine = in_process["engine"]
        rows.append(
            {
                "target": "relay ÷ in-process tight limit at the default batch size "
                f"({in_process['batch_size']:,}, 1 process, embedded engine, no HTTP front)",
                "goal": f"≥ {IN_PROCESS_GOAL}",
                "measured": f"{engine['relay_over_limit']:.2f} "
                f"({engine['relay_over_limit_min']:.2f} to {engine['relay_over_limit_max']:.2f} "
                f"over {in_process['rounds']} rounds; "
                f"{engine['relay_events_per_s']:,.0f} vs {engine['limit_events_per_s']:,.0f} ev/s)",
                "met": engine["relay_over_limit"] >= IN_PROCESS_GOAL,
            }
        )
    if throughput and "headline" in throughput:
        head = throughput["headline"]
        where = f"batch {head['batch_size']:,}, 1 process"
        rows.append(
            {
                "target": f"relay ÷ limit through the HTTP front ({where})",
                "goal": "≥ 0.7",
                "measured": f"{head['relay_over_limit']:.2f} "
                f"({head['relay_events_per_s']:,.0f} vs {head['limit_events_per_s']:,.0f} ev/s)",
                "met": head["relay_over_limit"] >= 0.7,
            }
        )
        naive = throughput["naive"]
        rows.append(
            {
                "target": f"relay ÷ naive ({where})",
                "goal": "≥ 50",
                "measured": f"{head['relay_over_naive']:,.0f} "
                f"({naive['events_per_s']:,.0f} ev/s naive"
                + (
                    f", median of {naive['repeats']} runs; p50 {_ms(naive['insert_ms']['p50_ms'])}"
                    f" / p99 {_ms(naive['insert_ms']['p99_ms'])} ms per insert)"
                    if "insert_ms" in naive
                    else ")"
                ),
                "met": head["relay_over_naive"] >= 50,
            }
        )
    publish = results.get("publish")
    if publish and "variants" in publish:
        variants = publish["variants"]
        for quantile in ("p50", "p99"):
            ratio = publish[f"outbox_over_none_{quantile}"]
            outbox, none = variants["outbox"][f"{quantile}_ms"], variants["none"][f"{quantile}_ms"]
            rows.append(
                {
                    "target": f"publish cost at {quantile} (registration, outbox ÷ no event "
                    "logging)",
                    "goal": f"≤ {PUBLISH_GOAL}x",
                    "measured": f"{ratio:.2f}x ({outbox:.2f} vs {none:.2f} ms)",
                    "met": ratio <= PUBLISH_GOAL,
                }
            )
    for fresh in results.get("freshness", {}).get("runs", []):
        rows.append(
            {
                "target": f"freshness p99, {fresh['label']}, {fresh['rate_per_s']:g} events/s",
                "goal": "≤ 2 s",
                "measured": f"{fresh['delay']['p99_ms'] / 1000:.3f} s "
                f"(p50 {fresh['delay']['p50_ms'] / 1000:.3f} s)",
                "met": fresh["delay"]["p99_ms"] <= 2000,
            }
        )
    growth = results.get("growth")
    if growth and "levels" in growth:
        levels = growth["levels"]
        largest = next(r for r in levels if r["level"] == growth["largest_backlog"])
        dead = next(r for r in levels if r["dead_lettered"])
        where = (
            f"from {levels[0]['pending']:,} to {largest['pending']:,} pending and beside "
            f"{dead['dead_lettered']:,} dead-lettered rows"
        )
        for quantile in ("p50", "p99"):
            worst = growth.get(f"worst_backlog_{quantile}_over_smallest")
            if worst is None:
                continue
            rows.append(
                {
                    "target": f"claim time flat {where} ({quantile}, worst ÷ smallest)",
                    "goal": f"flat (≤ {GROWTH_GOAL}x)",
                    "measured": f"{worst:.2f}x ({_ms(levels[0][f'{quantile}_ms'])} ms at "
                    f"{levels[0]['pending']:,})",
                    "met": worst <= GROWTH_GOAL,
                }
            )
    memory = results.get("footprint", {}).get("relay_memory")
    if memory:
        rows.append(
            {
                "target": f"relay memory over a {memory['events']:,}-event drain",
                "goal": "no growth (≤ 10 MiB)",
                "measured": f"peak {memory['peak_rss_mib']:.0f} MiB, "
                f"{memory['growth_mib']:+.1f} MiB first → last fifth",
                "met": abs(memory["growth_mib"]) <= 10,
            }
        )
    for name, group in results.items():
        if isinstance(group, dict) and "error" in group:
            rows.append(
                {
                    "target": f"{name} benchmark",
                    "goal": "runs",
                    "measured": "failed: " + group["error"].splitlines()[0][:200],
                    "met": False,
                }
            )
    return rows


# --- Markdown -----------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _ms(value: float) -> str:
    return f"{value:,.1f}" if value >= 100 else f"{value:.2f}"


def targets_markdown(results: dict) -> str:
    return _table(
        ["target", "goal", "measured", "met"],
        [
            [t["target"], t["goal"], t["measured"], "yes" if t["met"] else "**no**"]
            for t in results["targets"]
        ],
    )


def render_markdown(results: dict) -> str:
    parts = [
        "# die-hard benchmark results",
        "",
        f"`make bench` on {results['started_at']}, {results['duration_s'] / 60:.1f} minutes, "
        f"at {results['machine']['git']}.",
        "",
        f"Machine: {machine_line(results['machine'])}.",
        "",
        "## Targets",
        "",
        targets_markdown(results),
    ]
    parts += _throughput_md(results.get("throughput", {}))
    parts += _publish_md(results.get("publish", {}))
    parts += _freshness_md(results.get("freshness", {}))
    parts += _growth_md(results.get("growth", {}))
    parts += _footprint_md(
        results.get("footprint", {}), results.get("freshness", {}).get("runs", [])
    )
    parts += ["", f"![benchmark chart]({CHART_NAME})", ""]
    return "\n".join(parts)


def _failed(title: str, group: dict) -> list[str]:
    return ["", title, "", f"Failed: `{group['error'].splitlines()[0]}`"]


def _throughput_md(group: dict) -> list[str]:
    title = "## 1. Relay throughput"
    if not group:
        return []
    if "error" in group:
        return _failed(title, group)
    parts = ["", title]
    if "in_process" in group:
        parts += _in_process_md(group["in_process"])
    rows = [
        [
            f"{r['batch_size']:,}",
            r["processes"],
            f"{r['relay_events_per_s']:,.0f}",
            f"{r['limit_events_per_s']:,.0f}",
            f"{r['relay_over_limit']:.2f}",
            f"{r['relay_over_naive']:,.0f}",
        ]
        for r in group["ratios"]
    ]
    naive = group["naive"]
    naive_text = f"**{naive['events_per_s']:,.0f} events/s**"
    if "insert_ms" in naive:
        runs = ", ".join(f"{rate:,.0f}" for rate in naive["events_per_s_runs"])
        naive_text += (
            f" (median of {naive['repeats']} runs: {runs}; per insert p50 "
            f"{_ms(naive['insert_ms']['p50_ms'])} ms, p99 {_ms(naive['insert_ms']['p99_ms'])} ms)"
        )
    parts += [
        "",
        "### Through the HTTP front",
        "",
        f"{group['events']:,} pre-filled `user_created` events drained to ClickHouse behind the "
        "development HTTP front, wall time from the start signal to an empty outbox (median of "
        f"{group.get('repeats', 1)} run(s)). *limit*: one `DELETE … WHERE id IN (SELECT … FOR "
        "UPDATE SKIP LOCKED LIMIT n) RETURNING …` plus one insert per batch through the same "
        f"client. *naive*: one insert per event ({naive['events']:,} events), {naive_text}.",
        "",
        _table(
            ["batch", "processes", "relay ev/s", "limit ev/s", "relay ÷ limit", "relay ÷ naive"],
            rows,
        ),
    ]
    return parts


_IN_PROCESS_NAMES = {
    "relay-inprocess": "relay → embedded engine",
    "limit-inprocess": "tight limit → embedded engine",
    "relay-sink": "relay → sink (discards)",
    "limit-sink": "tight limit → sink (discards)",
}


def _in_process_md(group: dict) -> list[str]:
    rows = [
        [
            _IN_PROCESS_NAMES.get(mode, mode),
            ", ".join(f"{rate:,.0f}" for rate in m["events_per_s"]),
            f"{m['median_events_per_s']:,.0f}",
            _ms(m["batch_ms"]["p50_ms"]),
            _ms(m["batch_ms"]["p99_ms"]),
            f"{m['cpu_ms_per_1k_events']:.1f}" if "cpu_ms_per_1k_events" in m else "-",
        ]
        for mode, m in group["modes"].items()
    ]
    ratios = [
        [
            name,
            f"**{r['relay_over_limit']:.2f}**",
            ", ".join(f"{value:.2f}" for value in r["relay_over_limit_per_round"]),
            f"{r['ratio_of_medians']:.2f}",
            f"{r['cpu_relay_over_limit']:.2f}" if "cpu_relay_over_limit" in r else "-",
        ]
        for name, r in (("embedded engine", group["engine"]), ("sink", group["sink"]))
    ]
    return [
        "",
        "### In one process (the relay's own efficiency)",
        "",
        f"{group['events']:,} events, batch {group['batch_size']:,}, one process with its own "
        f"embedded engine (chdb, no HTTP front), {group['rounds']} rounds, the order alternating "
        "within each pair. *tight limit*: per batch one `DELETE … WHERE id IN (SELECT … FOR "
        "UPDATE SKIP LOCKED LIMIT n) RETURNING …` and one `event_log_insert` of the returned "
        "rows, in one transaction. *sink*: `event_log_insert` replaced by a function that "
        "discards the rows (the PostgreSQL and Python ceiling of each path).",
        "",
        _table(
            [
                "path",
                "events/s per run",
                "median ev/s",
                "batch p50 ms",
                "batch p99 ms",
                "CPU ms per 1,000 events",
            ],
            rows,
        ),
        "",
        "*CPU*: the process's CPU time (the embedded engine's threads included) plus its "
        "PostgreSQL backend's, per 1,000 events (median of the runs); *by CPU* is the limit's "
        "÷ the relay's, per round, median: what the relay's own work costs, whatever else the "
        "machine was doing.",
        "",
        _table(
            ["relay ÷ limit", "median of rounds", "per round", "ratio of medians", "by CPU"],
            ratios,
        ),
    ]


def _publish_md(group: dict) -> list[str]:
    title = "## 2. Publish cost"
    if not group:
        return []
    if "error" in group:
        return _failed(title, group)
    names = {
        "outbox": "outbox (the product)",
        "none": "no event logging",
        "clickhouse": "synchronous ClickHouse insert",
    }
    floor = group["variants"]["none"]
    rows = [
        [
            names[variant],
            f"`{v['path']}`",
            _ms(v["p50_ms"]),
            _ms(v["p90_ms"]),
            _ms(v["p99_ms"]),
            _ms(v["max_ms"]),
            f"{v['p50_ms'] / floor['p50_ms']:.2f}x",
            f"{v['p99_ms'] / floor['p99_ms']:.2f}x",
        ]
        for variant, v in group["variants"].items()
    ]
    return [
        "",
        title,
        "",
        f"`POST /api/v1/users/` (no password) through gunicorn over loopback, one client, "
        f"{group['requests_per_variant']:,} requests per variant, variants interleaved.",
        "",
        _table(
            [
                "variant",
                "path",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms",
                "p50 ÷ none",
                "p99 ÷ none",
            ],
            rows,
        ),
    ]


def _freshness_md(group: dict) -> list[str]:
    title = "## 3. Freshness"
    if not group:
        return []
    if "error" in group:
        return _failed(title, group)
    rows = []
    for r in group["runs"]:
        d, q = r["delay"], r["request"]
        rows.append(
            [
                r["label"],
                f"{r['achieved_rate_per_s']:g}/s",
                f"{r['events']:,}",
                _ms(d["p50_ms"]),
                _ms(d["p90_ms"]),
                _ms(d["p99_ms"]),
                _ms(d["max_ms"]),
                f"{_ms(q['p50_ms'])} / {_ms(q['p99_ms'])}",
                f"{r['startup_s']:.1f} / {r['stall_after_s']:.0f}" if "startup_s" in r else "-",
                len(r["stalls"]),
            ]
        )
    return [
        "",
        title,
        "",
        "Commit → row in ClickHouse (`relayed_at - event_date_time`), registrations at a steady "
        "rate through gunicorn, default settings. *start-up / stall after*: seconds the relay "
        "took to become ready, and how long the outbox may stay the same size before a drain "
        "counts as stalled (scaled from the start-up).",
        "",
        _table(
            [
                "relay",
                "rate",
                "events",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms",
                "request p50 / p99 ms",
                "start-up / stall after s",
                "stalled starts",
            ],
            rows,
        ),
    ]


def _growth_md(group: dict) -> list[str]:
    title = "## 4. Growth"
    if not group:
        return []
    if "error" in group:
        return _failed(title, group)
    rows = [
        [
            r["level"],
            _ms(r["first_ms"]),
            _ms(r["p50_ms"]),
            _ms(r["p99_ms"]),
            f"{r['p50_over_smallest']:.2f}x",
            f"{r['p99_over_smallest']:.2f}x" if "p99_over_smallest" in r else "-",
            _ms(r["plan_execution_ms"]) if r["plan_execution_ms"] is not None else "-",
            f"{r['plan_shared_buffers']:,}" if r["plan_shared_buffers"] is not None else "-",
            "yes" if r["uses_due_index"] else "no",
            f"{r['dead_tuples']:,}",
        ]
        for r in group["levels"]
    ]
    largest = next(r for r in group["levels"] if r["level"] == group["largest_backlog"])
    return [
        "",
        title,
        "",
        f"One claim of {group['batch_size']:,} rows (`batch_claim`: lock, set `batch_id`, "
        f"register the batch, build the rows), {group['repeats']} times per level, each rolled "
        "back.",
        "",
        _table(
            [
                "outbox",
                "first ms",
                "p50 ms",
                "p99 ms",
                "p50 ÷ smallest",
                "p99 ÷ smallest",
                "SQL ms (EXPLAIN)",
                "buffers",
                "due index",
                "dead tuples",
            ],
            rows,
        ),
        "",
        f"Plan at {largest['level']}:",
        "",
        "```",
        largest["plan"],
        "```",
    ]


def _footprint_md(group: dict, fresh_runs: list[dict]) -> list[str]:
    title = "## 5. Footprint"
    if not group:
        return []
    if "error" in group:
        return _failed(title, group)
    parts = ["", title]
    memory = group.get("relay_memory")
    if memory:
        parts += [
            "",
            f"Relay memory ({memory['process']}): {memory['events']:,} events drained in "
            f"{memory['batches']:,} batches over {memory['seconds']:.0f} s "
            f"({memory['events_per_s']:,.0f} events/s); peak RSS "
            f"**{memory['peak_rss_mib']:.0f} MiB**; median RSS {memory['first_fifth_mib']:.0f} "
            f"MiB over the first fifth of the drain, {memory['last_fifth_mib']:.0f} MiB over the "
            f"last ({memory['slope_mib_per_min']:+.2f} MiB/min).",
        ]
    for run in fresh_runs:
        peaks = ", ".join(
            f"{name} {mib:.0f} MiB" for name, mib in run["relay_peak_rss_mib"].items()
        )
        parts += ["", f"Peak RSS during the freshness run, {run['label']}: {peaks}."]
    probe = group.get("probe")
    if probe:
        stand_in = " (stand-in: no liveness probe)" if probe["probe_is_stand_in"] else ""
        rows = [
            [
                state,
                _ms(probe[state]["p50_ms"]),
                _ms(probe[state]["p90_ms"]),
                _ms(probe[state]["p99_ms"]),
                _ms(probe[state]["max_ms"]),
                probe[state]["count"],
            ]
            for state in ("idle", "loaded")
        ]
        reg = probe["registrations"]
        parts += [
            "",
            f"Web probe `GET {probe['probe_path']}`{stand_in}, a new connection each time, "
            f"{probe['probe_rate_per_s']:g}/s; *loaded*: {probe['concurrency']} clients "
            f"registering back to back ({reg['per_s']:,.0f} registrations/s, p50 "
            f"{_ms(reg['p50_ms'])} ms, p99 {_ms(reg['p99_ms'])} ms).",
            "",
            _table(["web role", "p50 ms", "p90 ms", "p99 ms", "max ms", "probes"], rows),
        ]
    return parts


# --- chart --------------------------------------------------------------------------------------


def render_chart(results: dict, samples: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 3, figsize=(16, 9.5))
    figure.suptitle(
        f"die-hard benchmarks — {results['machine']['cores']} cores, "
        f"{results['started_at'][:10]}, {results['machine']['git']}",
        fontsize=13,
    )
    _chart_throughput(axes[0][0], results.get("throughput", {}))
    _chart_publish(axes[0][1], results.get("publish", {}))
    _chart_freshness(axes[0][2], results.get("freshness", {}), samples.get("freshness", {}))
    _chart_growth(axes[1][0], results.get("growth", {}))
    _chart_memory(axes[1][1], results.get("footprint", {}).get("relay_memory"))
    _chart_probe(axes[1][2], results.get("footprint", {}).get("probe"))
    figure.tight_layout(rect=(0, 0, 1, 0.96))
    figure.savefig(path, dpi=80)
    plt.close(figure)


def _no_data(axis, title: str) -> None:
    axis.set_title(title)
    axis.text(0.5, 0.5, "no data", ha="center", va="center", transform=axis.transAxes)
    axis.set_axis_off()


def _chart_throughput(axis, group: dict) -> None:
    title = "1. Relay throughput (events/s)"
    if "ratios" not in group:
        return _no_data(axis, title)
    pairs = []
    in_process = group.get("in_process")
    if in_process:
        for label, relay, limit in (
            ("engine\n1 proc", "relay-inprocess", "limit-inprocess"),
            ("sink\n1 proc", "relay-sink", "limit-sink"),
        ):
            modes = in_process["modes"]
            pairs.append(
                (
                    f"{label}\n{in_process['batch_size'] // 1000}k",
                    modes[relay]["median_events_per_s"],
                    modes[limit]["median_events_per_s"],
                )
            )
    pairs += [
        (
            f"HTTP\n{r['processes']}p\n{r['batch_size'] // 1000}k",
            r["relay_events_per_s"],
            r["limit_events_per_s"],
        )
        for r in group["ratios"]
    ]
    positions = range(len(pairs))
    width = 0.4
    axis.bar([p - width / 2 for p in positions], [p[1] for p in pairs], width, label="relay")
    axis.bar([p + width / 2 for p in positions], [p[2] for p in pairs], width, label="limit")
    axis.axhline(
        group["naive"]["events_per_s"],
        color="red",
        linestyle="--",
        label=f"naive ({group['naive']['events_per_s']:,.0f}/s)",
    )
    axis.set_yscale("log")
    axis.set_xticks(list(positions), [p[0] for p in pairs], fontsize=7)
    axis.set_xlabel("where / relay processes / batch size", fontsize=8)
    axis.set_ylim(top=axis.get_ylim()[1] * 20)
    axis.set_title(title)
    axis.legend(fontsize=8, loc="upper left", ncol=3)
    return None


def _chart_publish(axis, group: dict) -> None:
    title = "2. Registration latency by publish variant (ms)"
    if "variants" not in group:
        return _no_data(axis, title)
    names = {"outbox": "outbox", "none": "no logging", "clickhouse": "sync ClickHouse"}
    variants = list(group["variants"])
    positions = range(len(variants))
    width = 0.4
    for offset, key in ((-width / 2, "p50_ms"), (width / 2, "p99_ms")):
        values = [group["variants"][v][key] for v in variants]
        bars = axis.bar([p + offset for p in positions], values, width, label=key[:3])
        axis.bar_label(bars, fmt="%.1f", fontsize=8)
    axis.set_xticks(list(positions), [names[v] for v in variants])
    axis.set_title(title)
    axis.legend(fontsize=8)
    return None


def _chart_freshness(axis, group: dict, samples: dict) -> None:
    title = "3. Freshness: commit → ClickHouse (CDF)"
    if not samples:
        return _no_data(axis, title)
    for run in group.get("runs", []):
        delays = sorted(value * 1000 for value in samples.get(run["relay"], []))
        if delays:
            fractions = [(index + 1) / len(delays) for index in range(len(delays))]
            axis.plot(delays, fractions, label=run["label"])
    axis.axvline(2000, color="red", linestyle="--", label="target p99 ≤ 2 s")
    axis.set_xscale("log")
    _plain_log_ticks(axis.xaxis)
    axis.set_xlabel("ms")
    axis.set_ylabel("fraction of events")
    axis.set_title(title)
    axis.legend(fontsize=8, loc="upper left")
    return None


def _chart_growth(axis, group: dict) -> None:
    title = "4. Claim of 1,000 rows, p50 (ms)"
    if "levels" not in group:
        return _no_data(axis, title)
    levels = group["levels"]
    labels = [
        level["level"]
        .replace(" (before VACUUM)", ", no vacuum yet")
        .replace(" (after VACUUM)", ", vacuumed")
        .replace(", another transaction open", ", txn open")
        .replace(", that transaction ended", ", txn ended")
        .replace(" just relayed", " relayed")
        .replace(" dead-lettered", " dead")
        for level in levels
    ]
    positions = range(len(levels))
    bars = axis.barh(positions, [level["p50_ms"] for level in levels])
    axis.bar_label(bars, fmt="%.1f", fontsize=8, padding=2)
    axis.set_xscale("log")
    _plain_log_ticks(axis.xaxis)
    axis.set_yticks(list(positions), labels, fontsize=8)
    axis.invert_yaxis()
    axis.set_title(title)
    return None


def _plain_log_ticks(axis) -> None:
    """Ticks at 1, 2 and 5 of each decade of a log axis, labelled as plain numbers."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def _chart_memory(axis, memory: dict | None) -> None:
    title = "5. Relay RSS during a long drain (MiB)"
    if not memory:
        return _no_data(axis, title)
    times = [t for t, _rss in memory["samples"]]
    values = [rss / 1024 for _t, rss in memory["samples"]]
    axis.plot(times, values)
    first, last = memory["drain_window_s"]
    axis.axvspan(first, last, color="grey", alpha=0.15, label="drain (first to last batch)")
    axis.set_ylim(0, max(values) * 1.2)
    axis.set_xlabel("s")
    axis.set_title(title)
    axis.legend(fontsize=8, loc="lower right")
    return None


def _chart_probe(axis, probe: dict | None) -> None:
    title = "5. Web probe latency (ms)"
    if not probe:
        return _no_data(axis, title)
    keys = ["p50_ms", "p90_ms", "p99_ms", "max_ms"]
    positions = range(len(keys))
    width = 0.4
    for offset, state in ((-width / 2, "idle"), (width / 2, "loaded")):
        bars = axis.bar(
            [p + offset for p in positions], [probe[state][k] for k in keys], width, label=state
        )
        axis.bar_label(bars, fmt="%.1f", fontsize=7)
    axis.set_yscale("log")
    _plain_log_ticks(axis.yaxis)
    axis.set_xticks(list(positions), [k[:-3] for k in keys])
    axis.set_title(f"{title}: GET {probe['probe_path']}")
    axis.legend(fontsize=8)
    return None


# --- files --------------------------------------------------------------------------------------


def _public(value):
    """The results without the raw samples (keys starting with `_`)."""
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list):
        return [_public(v) for v in value]
    return value


def write_results(results: dict, samples: dict, directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": directory / "results.json",
        "markdown": directory / "results.md",
        "chart": directory / CHART_NAME,
    }
    paths["json"].write_text(json.dumps(_public(results), indent=2) + "\n")
    paths["markdown"].write_text(render_markdown(results))
    render_chart(results, samples, paths["chart"])
    return paths
