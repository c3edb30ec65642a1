"""Abuse of the registration endpoint: rate limits per client and overall (429 with
Retry-After, failing open when Redis is away), a taken address costs no password hash, and
hashing is bounded per process (503 with Retry-After instead of every thread hashing)."""

import json
from http import HTTPStatus

import pytest
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache

from app.users.models import User
from tests.support.hashing import hashing_slots_taken

URL = "/api/v1/users/"


def _register(client, email: str, **headers: str):
    body = json.dumps({"email": email, "password": "Juniper-Comet-7316"})
    return client.post(URL, body, content_type="application/json", **headers)


@pytest.fixture
def counters():
    """Rate-limit counters start from zero (they live in the test Redis database)."""
    cache.clear()
    yield
    cache.clear()


@pytest.mark.django_db
def test_a_client_over_its_rate_gets_429_with_retry_after(client, settings, counters):
    settings.REGISTRATION_RATE_PER_CLIENT = "3/m"

    statuses = [_register(client, f"r{number}@example.com").status_code for number in range(3)]
    refused = _register(client, "r3@example.com")

    assert statuses == [201] * 3
    assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert refused["Content-Type"] == "application/problem+json"
    assert "client limit" in refused.json()["detail"]
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert not User.objects.filter(email="r3@example.com").exists()


@pytest.mark.django_db
def test_clients_are_told_apart_by_the_configured_header(client, settings, counters):
    settings.REGISTRATION_RATE_PER_CLIENT = "1/m"
    settings.API_CLIENT_IP_HEADER = "X-Forwarded-For"

    first = _register(client, "a@example.com", HTTP_X_FORWARDED_FOR="spoofed, 203.0.113.7")
    second = _register(client, "b@example.com", HTTP_X_FORWARDED_FOR="203.0.113.8")
    again = _register(client, "c@example.com", HTTP_X_FORWARDED_FOR="other, 203.0.113.7")

    assert (first.status_code, second.status_code, again.status_code) == (201, 201, 429)


@pytest.mark.django_db
def test_all_clients_together_are_limited_too(client, settings, counters):
    settings.REGISTRATION_RATE_PER_CLIENT = "off"
    settings.REGISTRATION_RATE_GLOBAL = "2/m"
    settings.API_CLIENT_IP_HEADER = "X-Forwarded-For"

    statuses = [
        _register(client, f"g{n}@example.com", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
        for n in range(3)
    ]

    assert statuses == [201, 201, 429]


@pytest.mark.django_db
def test_the_limits_fail_open_when_redis_is_away(client, settings, caplog):
    settings.REGISTRATION_RATE_PER_CLIENT = "1/m"
    # Nothing listens there: Redis is down for this process's cache.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }

    statuses = [_register(client, f"f{number}@example.com").status_code for number in range(3)]

    assert statuses == [201] * 3
    assert "rate_limit_unavailable" in caplog.text


@pytest.fixture
def hash_counter(monkeypatch):
    hashed: list[str] = []
    real_set_password = AbstractBaseUser.set_password

    def counting_set_password(self, raw_password):
        hashed.append(self.email)
        return real_set_password(self, raw_password)

    monkeypatch.setattr(AbstractBaseUser, "set_password", counting_set_password)
    return hashed


@pytest.mark.django_db
def test_a_taken_address_is_refused_before_any_password_is_hashed(client, hash_counter):
    assert _register(client, "taken@example.com").status_code == 201
    assert hash_counter == ["taken@example.com"]

    assert _register(client, "Taken@Example.com").status_code == 409

    assert hash_counter == ["taken@example.com"]


@pytest.mark.django_db
def test_hashing_beyond_the_bound_is_503_with_retry_after(client, settings):
    with hashing_slots_taken(settings):
        busy = _register(client, "busy@example.com")

    assert busy.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert busy["Retry-After"] == "1"
    assert not User.objects.filter(email="busy@example.com").exists()
