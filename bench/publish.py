"""2. Publish cost: the registration request through gunicorn with the outbox, beside the same
request with no event logging and with a synchronous ClickHouse insert (bench/web)."""

import random
from collections.abc import Callable

from .harness import Stack, summarize_ms
from .http_load import Client, unique_emails
from .web.publishers import PUBLISH_VARIANTS, VARIANT_PATHS


def bench_publish(
    stack: Stack, *, requests: int, rounds: int, warmup: int, step: Callable[[str], None]
) -> dict:
    """One sequential client on a keep-alive connection; the variants take turns in blocks, in a
    new random order every round, so that drift (autovacuum, caches) hits all of them alike."""
    step("publish cost: starting gunicorn with the bench variants")
    web, url = stack.start_web(name="web-publish", settings_module="bench.web.settings")
    client = Client(url)
    emails = unique_emails("publish")
    latencies: dict[str, list[float]] = {variant: [] for variant in PUBLISH_VARIANTS}
    failures: dict[str, dict[int, int]] = {variant: {} for variant in PUBLISH_VARIANTS}
    per_block = max(1, requests // rounds)
    try:
        for variant in PUBLISH_VARIANTS:
            for _ in range(warmup):
                client.register(VARIANT_PATHS[variant], next(emails))
        order = list(PUBLISH_VARIANTS)
        shuffle = random.Random(6)
        for round_number in range(rounds):
            step(f"publish cost: round {round_number + 1}/{rounds}")
            shuffle.shuffle(order)
            for variant in order:
                for _ in range(per_block):
                    seconds, status = client.register(VARIANT_PATHS[variant], next(emails))
                    if status == 201:
                        latencies[variant].append(seconds)
                    else:
                        failures[variant][status] = failures[variant].get(status, 0) + 1
    finally:
        client.close()
        stack.stop(web)
    if failed := {variant: statuses for variant, statuses in failures.items() if statuses}:
        # A variant that answers anything but 201 measures something else than publishing.
        raise RuntimeError(
            f"publish cost: answers other than 201 (variant: status: count): {failed}"
        )
    variants = {
        variant: {
            "path": VARIANT_PATHS[variant],
            **summarize_ms(latencies[variant]),
            "failures": sum(failures[variant].values()),
        }
        for variant in PUBLISH_VARIANTS
    }
    floor = variants["none"]
    return {
        "requests_per_variant": per_block * rounds,
        "variants": variants,
        "outbox_over_none_p50": round(variants["outbox"]["p50_ms"] / floor["p50_ms"], 3),
        "outbox_over_none_p99": round(variants["outbox"]["p99_ms"] / floor["p99_ms"], 3),
        "clickhouse_over_none_p50": round(variants["clickhouse"]["p50_ms"] / floor["p50_ms"], 3),
        "clickhouse_over_none_p99": round(variants["clickhouse"]["p99_ms"] / floor["p99_ms"], 3),
        "outbox_added_p50_ms": round(variants["outbox"]["p50_ms"] - floor["p50_ms"], 3),
        "_samples": latencies,
    }
