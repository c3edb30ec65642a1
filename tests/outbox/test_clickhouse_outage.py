import time

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from app.clickhouse.schema import clickhouse_migrate
from app.outbox.models import OutboxEvent
from app.outbox.services import outbox_relay_drain
from tests.support.clickhouse import event_log_count, running_devserver
from tests.support.fixtures import use_clickhouse


@pytest.fixture
def own_clickhouse(tmp_path, clickhouse_url):
    """A ClickHouse of this test's own, which the test stops and starts again."""
    yield tmp_path / "clickhouse"
    use_clickhouse(clickhouse_url)


def _register(client, number: int):
    return client.post(
        "/api/v1/users/", {"email": f"outage-{number}@example.com"}, content_type="application/json"
    )


@pytest.mark.django_db(transaction=True)
def test_requests_succeed_while_clickhouse_is_down_and_the_backlog_drains_after(
    client, settings, own_clickhouse
):
    settings.OUTBOX_BACKOFF_BASE = 0.5
    settings.OUTBOX_BACKOFF_MAX = 1.0
    with running_devserver(own_clickhouse) as url:
        use_clickhouse(url)
        clickhouse_migrate()
    port = int(url.rsplit(":", 1)[1].strip("/"))
    # ClickHouse is stopped now.

    assert [_register(client, number).status_code for number in range(5)] == [201] * 5

    down = outbox_relay_drain()
    assert (down.relayed, down.failed) == (0, 5)
    rows = list(OutboxEvent.objects.all())
    assert {row.attempts for row in rows} == {1}
    assert all(row.next_attempt_at > timezone.now() for row in rows)
    assert all("OperationalError" in row.last_error for row in rows)
    assert outbox_relay_drain().batches == 0  # backing off: nothing is due yet

    assert [_register(client, number).status_code for number in range(5, 8)] == [201] * 3
    time.sleep(django_settings.OUTBOX_BACKOFF_MAX)
    assert outbox_relay_drain().failed == 8
    assert sorted(OutboxEvent.objects.values_list("attempts", flat=True)) == [1] * 3 + [2] * 5

    with running_devserver(own_clickhouse, port=port):
        time.sleep(django_settings.OUTBOX_BACKOFF_MAX)
        back = outbox_relay_drain()

        assert back.relayed == 8
        assert not OutboxEvent.objects.exists()
        assert event_log_count(event_type="user_created") == 8
