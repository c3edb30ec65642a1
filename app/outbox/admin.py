from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

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
        "next_attempt_at",
        "dead_lettered_at",
    )
    list_filter = (StateFilter, "event_type")
    search_fields = ("=event_id", "event_type")
    ordering = ("-id",)
    readonly_fields = [field.name for field in OutboxEvent._meta.fields]
    actions = ("requeue",)
    # Counting millions of rows on every page view would be slow.
    show_full_result_count = False

    @admin.action(description="Re-queue selected dead-lettered events")
    def requeue(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> None:
        requeued = outbox_requeue(outbox_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"{requeued} event(s) re-queued.", messages.SUCCESS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: OutboxEvent | None = None) -> bool:
        return False
