"""`python -m bench` (what `make bench` runs): every benchmark group in one run, side by side.

    python -m bench [--groups throughput,publish,freshness,growth,footprint] [--quick]
                    [--results bench/results] [--keep-data]

Starts its own PostgreSQL database (die_hard_bench) and ClickHouse (the embedded engine behind
the development HTTP front), runs the groups with a progress display, and writes results.json,
results.md and results.png into the results folder. See bench/README.md.
"""

import argparse
import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .harness import PROJECT_ROOT, start_stack

RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
GROUPS = ("throughput", "publish", "freshness", "growth", "footprint")


@dataclass(frozen=True)
class Plan:
    """How much each benchmark does; `--quick` is a smoke test of the whole run."""

    events: int = 200_000
    batch_sizes: tuple[int, ...] = (1000, 5000, 20000)
    processes: tuple[int, ...] = (1, 2, 4)
    # Runs per (mode, batch size, processes) through the HTTP front, relay and limit in turn.
    repeats: int = 2
    # Rounds of the four in-process modes (the headline ratio): even, so each of a pair goes
    # first as often as the other.
    in_process_rounds: int = 4
    naive_sample: int = 1000
    naive_repeats: int = 3
    publish_requests: int = 1000
    publish_rounds: int = 10
    publish_warmup: int = 50
    fresh_rate: float = 100
    fresh_seconds: float = 30
    fresh_warmup: float = 5
    fresh_relays: tuple[str, ...] = ("celery", "loop")
    growth_levels: tuple[int, ...] = (1000, 100_000, 1_000_000)
    growth_dead: int = 100_000
    growth_batch: int = 1000
    growth_repeats: int = 30
    drain_events: int = 2_000_000
    probe_seconds: float = 20
    probe_rate: float = 20
    probe_concurrency: int = 8


QUICK = replace(
    Plan(),
    events=20_000,
    batch_sizes=(5000,),
    processes=(1, 2),
    in_process_rounds=2,
    naive_sample=200,
    repeats=1,
    publish_requests=100,
    publish_rounds=2,
    publish_warmup=5,
    fresh_rate=50,
    fresh_seconds=5,
    fresh_warmup=2,
    growth_levels=(1000, 10_000),
    growth_dead=10_000,
    growth_repeats=5,
    drain_events=50_000,
    probe_seconds=4,
    probe_rate=10,
)


def steps_in(plan: Plan, groups: list[str]) -> int:
    """How many progress steps the plan has (each `step()` call is one)."""
    counts = {
        "throughput": (len(plan.batch_sizes) + len(set(plan.processes) - {1})) * 2 * plan.repeats
        + 1
        + 4 * plan.in_process_rounds
        + plan.naive_repeats,
        "publish": 1 + plan.publish_rounds,
        "freshness": len(plan.fresh_relays),
        "growth": len(plan.growth_levels) + 3,
        "footprint": 2 + 2,
    }
    return 2 + sum(counts[group] for group in groups)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Every benchmark group in one run, side by side."
    )
    parser.add_argument("--groups", default=",".join(GROUPS), help="comma-separated subset")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument(
        "--results",
        type=Path,
        help="where to write the results (bench/results; with --quick, .data/bench/quick)",
    )
    parser.add_argument("--keep-data", action="store_true", help="keep the database and logs")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (no database): die_hard_bench is created there",
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379"),
        help="Redis server (no database number): the bench uses database 14",
    )
    args = parser.parse_args(argv)
    groups = [group for group in args.groups.split(",") if group]
    if unknown := set(groups) - set(GROUPS):
        parser.error(f"unknown groups: {', '.join(sorted(unknown))}")
    plan = QUICK if args.quick else Plan()
    work_dir = PROJECT_ROOT / ".data" / "bench"
    results_dir = args.results or (work_dir / "quick" if args.quick else RESULTS_DIR)
    console = Console()
    started = time.monotonic()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("starting", total=steps_in(plan, groups))

        def step(description: str) -> None:
            progress.update(task, description=description, advance=1)
            if not console.is_terminal:
                console.log(description)

        step("starting PostgreSQL database die_hard_bench and ClickHouse")
        stack = start_stack(postgres=args.postgres, redis=args.redis, work_dir=work_dir)
        try:
            results, samples = _run(stack, plan, groups, step, console)
        finally:
            stack.close(keep_data=args.keep_data)
        progress.update(task, description="done", completed=progress.tasks[0].total)

    from .report import targets, targets_markdown, write_results

    results = {
        "started_at": started_at,
        "duration_s": round(time.monotonic() - started, 1),
        "plan": asdict(plan),
        **results,
    }
    results["targets"] = targets(results)
    paths = write_results(results, samples, results_dir)
    console.print()
    console.print(targets_markdown(results), soft_wrap=True, markup=False)
    console.print()
    for kind, path in paths.items():
        console.print(f"{kind}: {path.relative_to(PROJECT_ROOT)}")
    console.print(f"[bold]make bench took {results['duration_s'] / 60:.1f} minutes[/bold]")
    failed = [name for name in groups if "error" in results.get(name, {})]
    return 1 if failed else 0


def _run(stack, plan: Plan, groups: list[str], step, console) -> tuple[dict, dict]:
    # Django reads its settings from the environment: this process gets the one the processes
    # under test get, so it talks to the same database and ClickHouse.
    os.environ.clear()
    os.environ.update(stack.env)
    import django

    django.setup()
    from django.core.management import call_command

    from app.clickhouse.schema import clickhouse_migrate

    step("migrating PostgreSQL and ClickHouse")
    call_command("migrate", verbosity=0)
    clickhouse_migrate()

    from django.conf import settings

    from . import footprint, freshness, growth, publish, throughput
    from .report import machine_info

    results: dict = {
        "machine": machine_info(),
        "settings": {
            name: getattr(settings, name)
            for name in (
                "OUTBOX_BATCH_SIZE",
                "OUTBOX_RELAY_TIME_BUDGET",
                "OUTBOX_RELAY_INTERVAL",
                "OUTBOX_WAKEUP_MIN_INTERVAL",
                "DEBUG",
            )
        }
        | {name: stack.env[name] for name in ("WEB_CONCURRENCY", "WEB_THREADS")}
        | {"WORKER_CONCURRENCY": stack.env["WORKER_CONCURRENCY"]},
    }
    samples: dict = {}

    def guarded(name: str, run) -> None:
        """A failing group is recorded and the others still run."""
        try:
            results[name] = run()
        except Exception as error:
            console.print(f"[red]{name} failed:[/red] {error}")
            results[name] = {"error": f"{type(error).__name__}: {error}"}
            traceback.print_exc(file=sys.stderr)
            stack.stop_all()

    if "throughput" in groups:
        guarded(
            "throughput",
            lambda: throughput.bench_throughput(
                stack,
                events=plan.events,
                batch_sizes=plan.batch_sizes,
                processes=plan.processes,
                repeats=plan.repeats,
                default_batch_size=settings.OUTBOX_BATCH_SIZE,
                naive_sample=plan.naive_sample,
                naive_repeats=plan.naive_repeats,
                in_process_rounds=plan.in_process_rounds,
                step=step,
            ),
        )
    if "publish" in groups:

        def run_publish() -> dict:
            measured = publish.bench_publish(
                stack,
                requests=plan.publish_requests,
                rounds=plan.publish_rounds,
                warmup=plan.publish_warmup,
                step=step,
            )
            measured.pop("_samples")
            return measured

        guarded("publish", run_publish)
    if "freshness" in groups:

        def run_freshness() -> dict:
            runs = []
            for relay in plan.fresh_relays:
                run = freshness.bench_freshness(
                    stack,
                    rate=plan.fresh_rate,
                    duration=plan.fresh_seconds,
                    warmup=plan.fresh_warmup,
                    relay=relay,
                    step=step,
                )
                samples.setdefault("freshness", {})[relay] = run.pop("_samples")
                runs.append(run)
            return {"runs": runs}

        guarded("freshness", run_freshness)
    footprint_results: dict = {}
    if "growth" in groups:

        def drain(filler) -> int:
            if "footprint" not in groups:
                return 0
            memory = footprint.bench_relay_memory(
                stack, filler, events=plan.drain_events, step=step
            )
            footprint_results["relay_memory"] = memory
            return memory["events"]

        guarded(
            "growth",
            lambda: growth.bench_growth(
                database_dsn=stack.database_dsn,
                levels=list(plan.growth_levels),
                dead=plan.growth_dead,
                batch_size=plan.growth_batch,
                repeats=plan.growth_repeats,
                step=step,
                after_largest=drain if "footprint" in groups else None,
            ),
        )
    if "footprint" in groups:

        def run_footprint() -> dict:
            if "relay_memory" not in footprint_results:
                from .workload import OutboxFiller

                footprint_results["relay_memory"] = footprint.bench_relay_memory(
                    stack, OutboxFiller(), events=plan.drain_events, step=step
                )
            footprint_results["probe"] = footprint.bench_probe_latency(
                stack,
                concurrency=plan.probe_concurrency,
                duration=plan.probe_seconds,
                probe_rate=plan.probe_rate,
                step=step,
            )
            return footprint_results

        guarded("footprint", run_footprint)
    # Wake-ups sent while no worker ran (publish cost, probe latency) are of no use to anyone.
    freshness.broker_queues_clear()
    return results, samples


if __name__ == "__main__":
    sys.exit(main())
