import http.client
import json

import pytest

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
def test_the_status_page_reports_each_dependency_and_the_backlog_without_details(web, proxies):
    secure = {"host": "api.example.com", "X-Forwarded-Proto": "https"}

    status, body, _ = request(web, "/healthz/status?format=json", **secure)
    assert status == 200
    report = json.loads(body)
    assert report["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "redis": "ok",
        "clickhouse": "ok",
    }
    assert report["outbox"]["pending"] == 0

    proxies["clickhouse"].cut()
    status, body, _ = request(web, "/healthz/status?format=json", **secure)
    assert status == 503
    assert json.loads(body)["checks"]["clickhouse"] == "unavailable"
    assert "127.0.0.1" not in body
    assert str(proxies["clickhouse"].port) not in body
