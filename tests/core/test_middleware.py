import pytest
from prometheus_client import REGISTRY

REQUESTS = "die_hard_http_requests_total"
DURATION_COUNT = "die_hard_http_request_duration_seconds_count"


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.django_db
def test_requests_are_counted_and_timed_by_url_pattern_method_and_status(client):
    created = {"route": "api/v1/users/", "method": "POST", "status": "201"}
    refused = {**created, "status": "400"}
    before = (_value(REQUESTS, **created), _value(REQUESTS, **refused))
    timed_before = _value(DURATION_COUNT, route="api/v1/users/", method="POST")

    for number in range(3):
        response = client.post(
            "/api/v1/users/", {"email": f"m{number}@example.com"}, content_type="application/json"
        )
        assert response.status_code == 201
    assert client.post("/api/v1/users/", "{", content_type="application/json").status_code == 400

    assert _value(REQUESTS, **created) - before[0] == 3
    assert _value(REQUESTS, **refused) - before[1] == 1
    assert _value(DURATION_COUNT, route="api/v1/users/", method="POST") - timed_before == 4


@pytest.mark.django_db
def test_unrouted_paths_share_one_series_so_clients_cannot_add_series(client):
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    before = _value(REQUESTS, **unmatched)

    for number in range(5):
        assert client.get(f"/scan/{number}/wp-login.php").status_code == 404

    assert _value(REQUESTS, **unmatched) - before == 5
    routes = {
        sample.labels["route"]
        for family in REGISTRY.collect()
        if family.name == "die_hard_http_requests"
        for sample in family.samples
    }
    assert not any("wp-login" in route for route in routes)


def test_a_probe_answered_before_routing_is_labelled_with_the_pattern_its_path_matches(client):
    labels = {"route": "healthz/live", "method": "GET", "status": "200"}
    before = _value(REQUESTS, **labels)

    assert client.get("/healthz/live").status_code == 200

    assert _value(REQUESTS, **labels) - before == 1


@pytest.mark.django_db
def test_unknown_methods_count_as_other(client):
    def other() -> float:
        return sum(
            sample.value
            for family in REGISTRY.collect()
            if family.name == "die_hard_http_requests"
            for sample in family.samples
            if sample.name == REQUESTS and sample.labels["method"] == "other"
        )

    before = other()

    client.generic("BREW", "/api/v1/users/")

    assert other() - before == 1
