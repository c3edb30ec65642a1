import http.client
import json
import time

import pytest

from app.outbox.views import STATUS_CACHE_SECONDS
from tests.support.processes import wait_until

POD_IP_HOST = "10.1.2.3:8000"
PROBES = ("/healthz/live", "/healthz/startup", "/healthz/ready")


def request(port: int, path: str, *, host: str = POD_IP_HOST, **headers) -> tuple[int, str, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": host, **headers})
        response = connection.getresponse()
        return response.status, response.read().decode(), dict(response.getheaders())
    finally:
        connection.close()


def probe_statuses(port: int) -> dict[str, int]:
    return {path: request(port, path)[0] for path in PROBES}


@pytest.fixture
def web(start_role, role_env) -> int:
    start_role("web", role_env)
    port = int(role_env["WEB_BIND"].rsplit(":", 1)[1])

    def answering() -> bool:
        try:
            return request(port, "/healthz/live")[0] == 200
        except OSError:
            return False

    assert wait_until(answering, timeout=30)
    return port


@pytest.mark.django_db(transaction=True)
def test_probes_answer_a_pod_ip_over_plain_http_despite_strict_hosts_and_https(web):
    assert probe_statuses(web) == dict.fromkeys(PROBES, 200)
    status, body, _ = request(web, "/healthz/ready")
    assert body == "database: ok\nmigrations: ok\n"

    # The same server really is strict for everything else:
    assert request(web, "/api/v1/openapi.json")[0] == 400  # pod IP is not an allowed host
    status, _, headers = request(web, "/api/v1/openapi.json", host="api.example.com")
    assert status == 301
    assert headers["Location"] == "https://api.example.com/api/v1/openapi.json"


@pytest.mark.django_db(transaction=True)
def test_postgresql_down_fails_readiness_only(web, proxies):
    proxies["postgres"].cut()

    assert probe_statuses(web) == {
        "/healthz/live": 200,
        "/healthz/startup": 200,
        "/healthz/ready": 503,
    }
    _status, body, _headers = request(web, "/healthz/ready")
    assert body.startswith("database: unavailable\n")  # no host or port in production

    proxies["postgres"].restore()
    assert wait_until(lambda: request(web, "/healthz/ready")[0] == 200, timeout=10)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("dependency", ["redis", "clickhouse"])
def test_redis_or_clickhouse_down_fails_no_web_probe(web, proxies, dependency):
    proxies[dependency].cut()

    assert probe_statuses(web) == dict.fromkeys(PROBES, 200)


@pytest.mark.django_db(transaction=True)
def test_the_status_page_tells_anonymous_callers_the_overall_state_only(web, proxies):
    secure = {"host": "api.example.com", "X-Forwarded-Proto": "https"}

    status, body, _ = request(web, "/healthz/status?format=json", **secure)
    assert status == 200
    assert json.loads(body) == {"status": "ok"}

    proxies["clickhouse"].cut()
    # Each gunicorn worker caches its checks for a few seconds: once that long has passed,
    # every worker reports the outage.
    time.sleep(STATUS_CACHE_SECONDS)
    for _ in range(4):
        status, body, _ = request(web, "/healthz/status?format=json", **secure)
        assert (status, json.loads(body)) == (503, {"status": "unavailable"})
