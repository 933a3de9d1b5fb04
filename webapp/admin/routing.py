"""Admin for routing: training examples (audited edits), router versions (activate), routed turns (relabel)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from webapp.actions.routing import (
    RoutingError,
    do_activate_router,
    do_delete_intent_example,
    do_relabel_routed_turn,
    do_save_intent_example,
    known_intents,
)
from webapp.admin.base import ReadOnlyAdminMixin, actor
from webapp.models.routing import IntentExample, RoutedTurn, RouterModel


class IntentExampleForm(forms.ModelForm):
    intent = forms.ChoiceField(choices=())

    class Meta:
        model = IntentExample
        fields = ("intent", "text", "enabled")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["intent"].choices = [(i, i) for i in sorted(known_intents())]  # type: ignore[attr-defined]


@admin.register(IntentExample)
class IntentExampleAdmin(admin.ModelAdmin):
    form = IntentExampleForm
    list_display = ("text", "intent", "language", "source", "enabled", "created_by", "created_at")
    list_filter = ("intent", "language", "source", "enabled")
    search_fields = ("text", "intent")
    readonly_fields = ("language", "source", "created_by", "created_at")

    def save_model(self, request: HttpRequest, obj: IntentExample, form: Any, change: bool) -> None:
        existing = IntentExample.objects.get(pk=obj.pk) if change else None
        saved = do_save_intent_example(actor(request), existing, intent=obj.intent, text=obj.text,
                                       enabled=obj.enabled)
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: IntentExample) -> None:
        do_delete_intent_example(actor(request), obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[IntentExample]) -> None:
        for row in queryset:
            do_delete_intent_example(actor(request), row)


@admin.register(RouterModel)
class RouterModelAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("version", "created_at", "activated_at", "n_examples", "train_seconds", "size_bytes",
                    "val_accuracy")
    readonly_fields = ("version", "created_at", "activated_at", "created_by", "n_examples", "intents",
                       "embedders", "metrics", "train_seconds", "size_bytes")
    actions = ("activate",)

    @admin.display(description="val in-scope accuracy")
    def val_accuracy(self, obj: RouterModel) -> Any:
        return (obj.metrics.get("val") or {}).get("in_scope_accuracy")

    # New versions come from `python manage.py train_router`.

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff and obj is None)

    @admin.action(description="Activate the selected version (workers switch within seconds)")
    def activate(self, request: HttpRequest, queryset: QuerySet[RouterModel]) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to activate.", messages.ERROR)
            return
        model = do_activate_router(actor(request), queryset.get())
        self.message_user(request, f"Router {model.version} is active.", messages.SUCCESS)


def _relabel_action(intent: str) -> Callable[..., None]:
    def relabel(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[RoutedTurn]) -> None:
        done = 0
        for turn in queryset:
            try:
                do_relabel_routed_turn(actor(request), turn, intent)
                done += 1
            except RoutingError as exc:
                modeladmin.message_user(request, str(exc), messages.ERROR)
        modeladmin.message_user(request, f"{done} turn(s) relabelled as {intent} and added to its examples; "
                                         "run train_router to learn them.", messages.SUCCESS)

    relabel.__name__ = f"relabel_as_{intent}"
    return relabel


@admin.register(RoutedTurn)
class RoutedTurnAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "short_text", "predicted_intent", "confidence", "skill", "decision",
                    "corrected_intent", "router_version")
    list_filter = ("decision", "predicted_intent", "skill", "corrected_intent", "router_version")
    search_fields = ("text", "msg_id", "user_id")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in RoutedTurn._meta.fields]

    @admin.display(description="text")
    def short_text(self, obj: RoutedTurn) -> str:
        return obj.text[:60]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Actions need change permission on the list; single rows stay read-only.
        return bool(request.user.is_active and request.user.is_staff and obj is None)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions: dict[str, Any] = super().get_actions(request)
        for intent in sorted(known_intents()):
            fn = _relabel_action(intent)
            actions[fn.__name__] = (fn, fn.__name__, f"Relabel as “{intent}” (adds a training example)")
        return actions
