import time

import pytest
from django.conf import settings as django_settings

from app.clickhouse.schema import clickhouse_migrate
from app.outbox.models import OutboxBatch, OutboxEvent, OutboxRelayHealth
from app.outbox.services import outbox_relay_drain
from tests.support.clickhouse import event_log_plain_count, running_devserver
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
    assert down.backing_off
    assert (down.relayed, down.failed, down.dead_lettered) == (0, 0, 0)
    # An infrastructure failure costs the rows nothing: no attempt, no new place in line.
    assert set(OutboxEvent.objects.values_list("attempts", flat=True)) == {0}
    (batch,) = OutboxBatch.objects.all()
    assert "OperationalError" in batch.last_error
    assert outbox_relay_drain().backing_off  # the breaker is open: ClickHouse is not called

    assert [_register(client, number).status_code for number in range(5, 8)] == [201] * 3
    time.sleep(django_settings.OUTBOX_BACKOFF_MAX)
    assert outbox_relay_drain().backing_off  # the trial batch failed too
    assert set(OutboxEvent.objects.values_list("attempts", flat=True)) == {0}
    health = OutboxRelayHealth.objects.get()
    assert health.consecutive_failures == 2
    assert health.last_failure_blame == "infrastructure"
    assert "OperationalError" in health.last_failure

    with running_devserver(own_clickhouse, port=port):
        time.sleep(django_settings.OUTBOX_BACKOFF_MAX)
        relayed = outbox_relay_drain().relayed
        relayed += outbox_relay_drain().relayed  # the batch owed first, then the newer rows

        assert relayed == 8
        assert not OutboxEvent.objects.exists()
        assert event_log_plain_count() == 8
        assert OutboxRelayHealth.objects.get().consecutive_failures == 0
