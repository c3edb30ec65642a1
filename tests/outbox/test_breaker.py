import time

from prometheus_client import REGISTRY

from app.outbox.breaker import CircuitBreaker


def _breaker_gauge() -> float | None:
    return REGISTRY.get_sample_value("die_hard_outbox_breaker_state")


def test_the_breaker_gauge_follows_closed_open_half_open_closed(settings):
    settings.OUTBOX_BACKOFF_BASE = 0.2
    settings.OUTBOX_BACKOFF_MAX = 0.2
    breaker = CircuitBreaker()
    assert _breaker_gauge() == 0

    breaker.record_failure("ClickHouse unreachable")
    assert _breaker_gauge() == 2
    assert not breaker.allows_call()
    assert _breaker_gauge() == 2

    time.sleep(0.25)
    assert breaker.allows_call()  # the trial batch
    assert _breaker_gauge() == 1

    breaker.record_success()
    assert _breaker_gauge() == 0
