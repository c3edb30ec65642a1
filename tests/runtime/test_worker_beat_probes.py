import time

import pytest

from tests.support.processes import probe_exit_code, wait_until


@pytest.fixture
def worker_and_beat(start_role, role_env):
    worker = start_role("worker", role_env)
    beat = start_role("beat", role_env)
    assert wait_until(lambda: probe_exit_code("worker-ready", role_env) == 0, timeout=60), (
        worker.log()
    )
    assert wait_until(lambda: probe_exit_code("beat-live", role_env) == 0, timeout=60), beat.log()
    return worker, beat


def _probes(env) -> dict[str, int]:
    return {
        check: probe_exit_code(check, env) for check in ("worker-live", "worker-ready", "beat-live")
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("dependency", ["postgres", "redis", "clickhouse"])
def test_an_unreachable_dependency_fails_worker_readiness_only(
    worker_and_beat, proxies, role_env, dependency
):
    assert _probes(role_env) == {"worker-live": 0, "worker-ready": 0, "beat-live": 0}

    proxies[dependency].cut()
    assert wait_until(lambda: probe_exit_code("worker-ready", role_env) != 0, timeout=15)
    # Liveness never depends on a dependency: both stay up through an outage longer than the
    # heartbeat's staleness limit (3 intervals of 1 s here).
    outage_ends = time.monotonic() + 4.5
    while time.monotonic() < outage_ends:
        probes = _probes(role_env)
        assert probes["worker-live"] == 0
        assert probes["beat-live"] == 0
        time.sleep(0.5)

    proxies[dependency].restore()
    assert wait_until(lambda: probe_exit_code("worker-ready", role_env) == 0, timeout=30)


def test_a_probe_without_a_running_process_fails(role_env):
    for check in ("worker-live", "worker-ready", "beat-live"):
        assert probe_exit_code(check, role_env) == 1
    assert probe_exit_code("no-such-check", role_env) == 64
