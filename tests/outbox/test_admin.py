import pytest
from django.urls import reverse

from app.outbox.models import OutboxEvent
from app.outbox.services import outbox_relay_drain

from .factories import outbox_rows_create


@pytest.fixture
def dead_row(event_log, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 1
    (row,) = outbox_rows_create(1, event_type="Bad Type")
    outbox_relay_drain()
    return row


@pytest.mark.django_db
def test_the_admin_lists_outbox_rows_by_state(admin_client, dead_row):
    (pending,) = outbox_rows_create(1)
    url = reverse("admin:outbox_outboxevent_changelist")

    dead_page = admin_client.get(url, {"state": "dead"})
    pending_page = admin_client.get(url, {"state": "pending"})

    assert dead_page.status_code == pending_page.status_code == 200
    assert str(dead_row.event_id) in dead_page.text
    assert str(pending.event_id) not in dead_page.text
    assert str(pending.event_id) in pending_page.text
    assert (
        admin_client.get(reverse("admin:outbox_outboxevent_change", args=[dead_row.pk])).status_code
        == 200
    )


@pytest.mark.django_db
def test_the_admin_requeue_action_brings_dead_rows_back(admin_client, dead_row):
    response = admin_client.post(
        reverse("admin:outbox_outboxevent_changelist"),
        {"action": "requeue", "_selected_action": [dead_row.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "1 event(s) re-queued." in response.text
    dead_row.refresh_from_db()
    assert dead_row.dead_lettered_at is None
    assert OutboxEvent.objects.filter(dead_lettered_at__isnull=True).count() == 1


def _delete_selected(admin_client, action: str, rows, *, confirm: bool):
    data = {"action": action, "_selected_action": [row.pk for row in rows]}
    if confirm:
        data["post"] = "yes"
    return admin_client.post(reverse("admin:outbox_outboxevent_changelist"), data, follow=True)


@pytest.mark.django_db
def test_the_admin_cannot_delete_pending_events(admin_client, dead_row):
    pending = outbox_rows_create(2)

    for action in ("delete_selected", "delete_dead_lettered"):
        _delete_selected(admin_client, action, pending, confirm=True)

    assert OutboxEvent.objects.filter(pk__in=[row.pk for row in pending]).count() == 2
    change_page = admin_client.get(reverse("admin:outbox_outboxevent_change", args=[pending[0].pk]))
    assert "Delete" not in change_page.text.split("submit-row", 1)[-1][:2000]
    assert (
        admin_client.post(
            reverse("admin:outbox_outboxevent_delete", args=[pending[0].pk]), {"post": "yes"}
        ).status_code
        == 403
    )


@pytest.mark.django_db
def test_the_admin_deletes_dead_lettered_events_after_a_confirmation(admin_client, dead_row):
    (pending,) = outbox_rows_create(1)

    asked = _delete_selected(
        admin_client, "delete_dead_lettered", [dead_row, pending], confirm=False
    )

    assert "Are you sure" in asked.text
    assert OutboxEvent.objects.filter(pk=dead_row.pk).exists()

    _delete_selected(admin_client, "delete_dead_lettered", [dead_row, pending], confirm=True)

    assert not OutboxEvent.objects.filter(pk=dead_row.pk).exists()
    assert OutboxEvent.objects.filter(pk=pending.pk).exists()
