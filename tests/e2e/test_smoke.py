"""The runner alone: the chart installed as containers, ready as `helm install --wait` would
have it, the helm test passing, and one registration through the web Service relayed to
ClickHouse by the worker pods."""

import http.client
import json
import time

from tests.support.processes import wait_until

WEB_HOST = "die-hard-web"  # one of the web Service's names: in ALLOWED_HOSTS as rendered


def register(address: tuple[str, int], email: str) -> tuple[int, dict]:
    """POST /api/v1/users/ as the ingress would pass it on (TLS ended there)."""
    connection = http.client.HTTPConnection(*address, timeout=30)
    try:
        body = json.dumps({"email": email, "password": "correct horse battery staple 42"})
        connection.request("POST", "/api/v1/users/", body=body, headers={
            "Host": WEB_HOST, "X-Forwarded-Proto": "https", "Content-Type": "application/json",
        })  # fmt: skip
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def test_install_serves_and_relays_a_registration(make_cluster, services):
    cluster = make_cluster()
    started = time.monotonic()
    cluster.install()
    installed = time.monotonic() - started

    for component, replicas in (("web", 2), ("worker", 2), ("beat", 1)):
        pods = cluster.pods(component)
        assert len(pods) == replicas, pods
        assert all(pod.ready for pod in pods), pods
        assert len({pod.ip for pod in pods}) == replicas, "one network namespace (IP) per pod"
    (migrate,) = cluster.pods("migrate")
    assert migrate.phase == "Succeeded"
    # Every pod runs as the chart says: uid 10001, read-only root, no capabilities, limits.
    web = cluster.pods("web")[0].name
    assert cluster.exec(web, ["id", "-u"]).stdout.strip() == "10001"
    denied = cluster.exec(web, ["touch", "/app/x"])
    assert "Read-only file system" in denied.stderr
    assert cluster.exec(web, ["grep", "CapEff", "/proc/self/status"]).stdout.split()[-1] == (
        "0000000000000000"
    )
    # Its resources.limits.memory (768Mi) as the cgroup's limit (v2 or v1 layout).
    limit = (
        "cat /sys/fs/cgroup/memory.max 2>/dev/null"
        " || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
    )
    assert cluster.exec(web, ["sh", "-c", limit]).stdout.strip() == str(768 * 2**20)
    probes = {(event.kind, event.passed) for event in cluster.probe_events}
    assert {("startup", True), ("readiness", True)} <= probes

    cluster.helm_test()

    email = f"smoke-{time.time_ns()}@example.com"
    status, user = register(cluster.service_address(), email)
    assert status == 201, user
    relayed = f"SELECT count() FROM default.event_log FINAL WHERE event_type = 'user_created' " \
              f"AND JSONExtractString(event_context, 'email') = '{email}'"  # fmt: skip
    assert wait_until(lambda: services.clickhouse_query(relayed) == "1", timeout=60), (
        services.clickhouse_query("SELECT event_type, event_context FROM default.event_log LIMIT 5")
    )
    print(f"install to ready: {installed:.1f}s")  # noqa: T201 - the figure docs/ quotes
