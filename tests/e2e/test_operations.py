"""The runner's operations on one installed release: a crashed container restarted in place,
a rollout restart of web under requests (maxSurge 25%, maxUnavailable 0: never fewer ready
pods than replicas, no request failed), scaling the workers, a deleted pod replaced, an
upgrade (a new migrate Job, every changed template rolled; beat by Recreate: never two beat
pods at once) and a second beat started by hand."""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from tests.support.processes import wait_until

from .podman import podman
from .test_smoke import register

# Registrations come to the pods from the balancer's address: one client as the rate limit
# sees it, so its per-client limit is raised for the load below.
LOAD_VALUES = {"config.REGISTRATION_RATE_PER_CLIENT": "100000/m",
               "config.REGISTRATION_RATE_GLOBAL": "100000/m"}  # fmt: skip
UPGRADE_IMAGE_TAG = "e2e-upgrade"


@contextmanager
def repeated(step: Callable[[], None]) -> Iterator[None]:
    """Calls `step` again and again, in a thread, while the block runs."""
    done = threading.Event()

    def run() -> None:
        while not done.is_set():
            step()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


@contextmanager
def sampled(sample: Callable[[], object], interval: float = 0.1) -> Iterator[list]:
    """`sample()` every `interval` seconds while the block runs: the results."""
    samples: list = []

    def step() -> None:
        samples.append(sample())
        time.sleep(interval)

    with repeated(step):
        yield samples


@contextmanager
def registrations(address: tuple[str, int]) -> Iterator[dict[str, list]]:
    """Registrations sent one after another while the block runs: statuses and errors."""
    outcome: dict[str, list] = {"statuses": [], "errors": []}

    def step() -> None:
        try:
            status, _ = register(address, f"ops-{time.time_ns()}@example.com")
            outcome["statuses"].append(status)
        except OSError as error:
            outcome["errors"].append(repr(error))

    with repeated(step):
        yield outcome


@pytest.fixture
def upgrade_image(image) -> Iterator[str]:
    """The same image under another tag: what an upgrade to a new version changes."""
    name = f"{image.rpartition(':')[0]}:{UPGRADE_IMAGE_TAG}"
    podman("tag", image, name)
    yield name
    podman("untag", name, name, check=False)  # that name only (no name: all of them)


def test_operations_of_an_installed_release(make_cluster, upgrade_image):
    cluster = make_cluster()
    cluster.install(set_values=LOAD_VALUES)

    # restartPolicy Always: the container's main process ends, the same pod starts it again.
    web = cluster.pods("web")[0]
    cluster.kill_container(web.name)
    assert wait_until(
        lambda: next(p for p in cluster.pods("web") if p.name == web.name).restarts == 1,
        timeout=60,
    )
    assert wait_until(lambda: all(p.ready for p in cluster.pods("web")), timeout=60)
    assert [p.ip for p in cluster.pods("web") if p.name == web.name] == [web.ip]

    # A rollout restart of web under requests: none fails, ready pods never below replicas.
    started = time.monotonic()
    with (
        registrations(cluster.service_address()) as load,
        sampled(lambda: cluster.pods("web")) as web_samples,
    ):
        cluster.rollout_restart("web")
        time.sleep(8)  # the old pods' preStop and drain, still under requests
    restarted = time.monotonic() - started
    assert load["errors"] == []
    assert set(load["statuses"]) == {201}, load["statuses"]
    assert len(load["statuses"]) > 20
    ready_counts = [sum(p.ready for p in sample) for sample in web_samples]
    running_counts = [sum(not p.terminating for p in sample) for sample in web_samples]
    assert min(ready_counts) >= 2, ready_counts  # maxUnavailable 0
    assert max(running_counts) <= 3, running_counts  # maxSurge 25% of 2, rounded up: 1
    assert {p.revision for p in cluster.pods("web") if not p.terminating} == {2}

    # Scale the workers 1 -> 3 -> 1; a deleted pod is replaced.
    cluster.scale("worker", 3)
    assert sum(p.ready for p in cluster.pods("worker")) == 3
    cluster.scale("worker", 1)
    (worker,) = [p for p in cluster.pods("worker") if not p.terminating]
    cluster.delete_pod(worker.name)
    assert wait_until(
        lambda: [p.ready for p in cluster.pods("worker") if not p.terminating] == [True],
        timeout=90,
    )
    assert worker.name not in {p.name for p in cluster.pods("worker") if not p.terminating}

    # An upgrade to another image with a configuration change.
    (old_beat,) = cluster.pods("beat")
    started = time.monotonic()
    with sampled(lambda: cluster.pods("beat")) as beat_samples:
        changed = cluster.upgrade(
            set_values={**LOAD_VALUES, "config.LOG_LEVEL": "DEBUG"}, image=upgrade_image
        )
    upgraded = time.monotonic() - started
    assert {"die-hard-web", "die-hard-worker", "die-hard-beat"} <= set(changed)
    assert [name for name in changed if name.startswith("die-hard-migrate-")], changed
    assert [p.phase for p in cluster.pods("migrate")] == ["Succeeded", "Succeeded"]
    assert max(len(sample) for sample in beat_samples) == 1, "Recreate: one beat pod at a time"
    (new_beat,) = cluster.pods("beat")
    assert new_beat.name != old_beat.name
    assert new_beat.revision == old_beat.revision + 1
    running_image = podman("inspect", f"{new_beat.name}-beat", "--format", "{{.ImageName}}")
    assert running_image.stdout.strip() == upgrade_image
    assert cluster.exec(new_beat.name, ["printenv", "LOG_LEVEL"]).stdout.strip() == "DEBUG"

    # A second beat started by hand runs beside the Deployment's own, until deleted.
    extra = cluster.run_extra_pod("beat")
    assert wait_until(lambda: len(cluster.pods("beat")) == 2, timeout=10)
    cluster.delete_pod(extra, grace=False)
    assert wait_until(lambda: [p.name for p in cluster.pods("beat")] == [new_beat.name], timeout=30)

    cluster.helm_test()
    print(f"rollout restart of web: {restarted:.1f}s; upgrade: {upgraded:.1f}s")  # noqa: T201
