from django.contrib import admin, messages

from .models import OutboxEvent
from .services import outbox_requeue


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("pending", "Pending"), ("retrying", "Retrying"), ("dead", "Dead-lettered")]

    def queryset(self, request, queryset):
        match self.value():
            case "pending":
                return queryset.filter(dead_lettered_at__isnull=True)
            case "retrying":
                return queryset.filter(dead_lettered_at__isnull=True, attempts__gt=0)
            case "dead":
                return queryset.filter(dead_lettered_at__isnull=False)
        return queryset


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
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
    def requeue(self, request, queryset):
        requeued = outbox_requeue(outbox_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"{requeued} event(s) re-queued.", messages.SUCCESS)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
