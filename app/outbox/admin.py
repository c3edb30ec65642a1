from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from .models import OutboxEvent
from .services import outbox_requeue

# ModelAdmin is generic only for the type checker (django-stubs): it cannot be subscripted at run
# time.
if TYPE_CHECKING:
    _OutboxEventAdminBase = admin.ModelAdmin[OutboxEvent]
else:
    _OutboxEventAdminBase = admin.ModelAdmin


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(
        self, request: HttpRequest, model_admin: "admin.ModelAdmin[Any]"
    ) -> list[tuple[str, str]]:
        return [("pending", "Pending"), ("retrying", "Retrying"), ("dead", "Dead-lettered")]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[OutboxEvent]
    ) -> QuerySet[OutboxEvent]:
        match self.value():
            case "pending":
                return queryset.filter(dead_lettered_at__isnull=True)
            case "retrying":
                return queryset.filter(dead_lettered_at__isnull=True, attempts__gt=0)
            case "dead":
                return queryset.filter(dead_lettered_at__isnull=False)
        return queryset


@admin.register(OutboxEvent)
class OutboxEventAdmin(_OutboxEventAdminBase):
    list_display = (
        "id",
        "event_type",
        "event_id",
        "occurred_at",
        "attempts",
        "batch_id",
        "dead_lettered_at",
    )
    list_filter = (StateFilter, "event_type")
    search_fields = ("=event_id", "event_type")
    ordering = ("-id",)
    readonly_fields = [field.name for field in OutboxEvent._meta.fields]
    actions = ("requeue", "delete_dead_lettered")
    # Counting millions of rows on every page view would be slow.
    show_full_result_count = False

    @admin.action(description="Re-queue selected dead-lettered events")
    def requeue(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> None:
        requeued = outbox_requeue(outbox_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"{requeued} event(s) re-queued.", messages.SUCCESS)

    @admin.action(description="Delete selected dead-lettered events", permissions=["delete"])
    def delete_dead_lettered(
        self, request: HttpRequest, queryset: QuerySet[OutboxEvent]
    ) -> HttpResponse | None:
        """Django's delete-with-confirmation, restricted to dead letters: a pending event is
        owed to ClickHouse, and deleting it would lose it silently."""
        return delete_selected(self, request, queryset.filter(dead_lettered_at__isnull=False))

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # it would delete pending events too
        return actions

    def has_delete_permission(self, request: HttpRequest, obj: OutboxEvent | None = None) -> bool:
        if obj is not None and obj.dead_lettered_at is None:
            return False
        return super().has_delete_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: OutboxEvent | None = None) -> bool:
        return False
