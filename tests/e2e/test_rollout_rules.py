"""The Deployment controller of cluster.py on its own (no containers): the pod counts a rollout
goes through for each rendered strategy, with pods that become ready one step after they are
created and terminating pods that are gone one step later."""

import itertools

import pytest

from .cluster import Deployment, scaled


class FakePod:
    counter = itertools.count()

    def __init__(self):
        self.ready = self.terminating = self.gone = False
        self.created_at = next(self.counter)

    def terminate(self, grace: bool = True) -> None:
        self.terminating = True


class FakeCluster:
    def _start_pod(self, owner, rs) -> FakePod:
        return FakePod()


def deployment(replicas: int, strategy: dict) -> Deployment:
    document = {
        "metadata": {"name": "die-hard-x", "labels": {"app.kubernetes.io/component": "x"}},
        "spec": {"replicas": replicas, "strategy": strategy,
                 "template": {"metadata": {"labels": {}}, "spec": {"containers": []}}},
    }  # fmt: skip
    return Deployment(FakeCluster(), document)  # type: ignore[arg-type]


def run_until_complete(target: Deployment, steps: int = 50) -> list[tuple[int, int, int]]:
    """(live new pods, live old pods, ready live pods) after each controller step."""
    history = []
    for _ in range(steps):
        target.reconcile()
        pods = [pod for rs in target.replica_sets for pod in rs.pods]
        current = target.current
        assert current is not None
        new = [pod for pod in current.pods if not pod.terminating]
        old = [pod for rs in target.old for pod in rs.pods if not pod.terminating]
        history.append((len(new), len(old), sum(pod.ready for pod in new + old)))
        if target.complete():
            return history
        for pod in pods:
            pod.gone = pod.gone or pod.terminating
            pod.ready = pod.ready or not pod.terminating
    raise AssertionError(f"no progress: {history}")


def installed(replicas: int, strategy: dict) -> Deployment:
    target = deployment(replicas, strategy)
    run_until_complete(target)
    template = {"metadata": {"labels": {}, "annotations": {"v": "2"}}, "spec": {"containers": []}}
    assert target.set_template(template)
    return target


@pytest.mark.parametrize(
    ("value", "replicas", "round_up", "expected"),
    [("25%", 2, True, 1), ("25%", 2, False, 0), ("50%", 3, False, 1), ("50%", 3, True, 2),
     (1, 5, True, 1)],
)  # fmt: skip
def test_percentages_round_as_kubernetes_rounds_them(value, replicas, round_up, expected):
    assert scaled(value, replicas, round_up=round_up) == expected


def test_web_rolls_one_surge_pod_at_a_time_never_below_its_replicas():
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}}
    history = run_until_complete(installed(2, strategy))
    assert max(new + old for new, old, _ in history) == 3
    assert min(ready for _, _, ready in history) == 2
    assert history[-1] == (2, 0, 2)


def test_workers_surge_one_and_lose_one_at_most():
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}
    history = run_until_complete(installed(2, strategy))
    assert max(new + old for new, old, _ in history) <= 3
    assert min(ready for _, _, ready in history) == 1
    # In the first step one new pod starts (the surge) and one old one goes (unavailable).
    assert history[0] == (1, 1, 1)


def test_recreate_stops_every_old_pod_before_a_new_one_starts():
    history = run_until_complete(installed(1, {"type": "Recreate"}))
    assert all(new == 0 or old == 0 for new, old, _ in history), history
    assert (0, 0, 0) in history


def test_a_scaled_down_deployment_stops_unready_pods_first():
    target = deployment(3, {"type": "RollingUpdate"})
    run_until_complete(target)
    current = target.current
    assert current is not None
    unready = current.pods[1]
    unready.ready = False
    target.replicas = 2
    target.reconcile()
    assert [pod for pod in current.pods if pod.terminating] == [unready]
