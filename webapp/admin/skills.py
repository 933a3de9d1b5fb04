"""Admin for skill settings (with per-conversation kill switches), admin settings, their versions (one-click
rollback) and remote skills: forms validate, saves and rollbacks go through audited actions."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from skills import registry
from webapp.actions.skills import (
    SettingError,
    do_delete_remote_skill,
    do_rollback_setting,
    do_save_remote_skill,
    do_update_admin_setting,
    do_update_skill_setting,
    masked_config,
    redacted_state,
    validate_remote_skill,
    validate_skill_config,
)
from webapp.admin.base import ReadOnlyAdminMixin, actor
from webapp.knobs import KNOBS, KnobError, knob
from webapp.models.skills import AdminSetting, RemoteSkill, SettingVersion, SkillSetting


def _skill_choices() -> list[tuple[str, str]]:
    names = list(registry.skill_names()) + list(RemoteSkill.objects.values_list("name", flat=True))
    return [(n, n) for n in names]


def _config_help() -> str:
    parts = []
    for name in registry.skill_names():
        schema = registry.skill_class(name).Config.schema()
        if schema:
            keys = ", ".join(f"{k} ({v['type']}, default {json.dumps(v['default'], ensure_ascii=False)[:40]})"
                             for k, v in schema.items())
            parts.append(f"{name}: {keys}")
    return "Overrides of the skill's Config. " + " | ".join(parts)


class SkillSettingForm(forms.ModelForm):
    skill = forms.ChoiceField(choices=())

    class Meta:
        model = SkillSetting
        fields = ("tenant_id", "skill", "conversation_id", "enabled", "config")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["skill"].choices = _skill_choices()  # type: ignore[attr-defined]
        self.fields["config"].help_text = _config_help() + " Secrets show as ***: leave *** to keep the stored one."
        if self.instance.pk is not None:  # the stored (encrypted) secrets never reach the page
            self.initial["config"] = masked_config(self.instance.skill, self.instance.config)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("skill"):
            try:
                data["config"] = validate_skill_config(data["skill"], data.get("config") or {})
            except SettingError as exc:
                self.add_error("config", str(exc))
            if (data.get("conversation_id") or "").strip() and data.get("config"):
                self.add_error("config", "a conversation's row only turns the skill on or off there: "
                                         "leave config empty and configure the tenant's row")
        return data


def versions_table(versions: QuerySet[SettingVersion], current: int) -> str:
    """The versions of one setting, newest first, each (but the current) with a one-click rollback.

    The buttons submit the change form they sit in (its CSRF token) to the rollback URL instead."""
    rows = format_html_join(
        "", "<tr><td>v{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
        ((v.version, v.created_at.strftime("%Y-%m-%d %H:%M:%S"), v.actor or "-",
          json.dumps(redacted_state(v), ensure_ascii=False)[:300],
          format_html('<button type="submit" class="button rollback" formmethod="post" formaction="{}" '
                      'formnovalidate>Roll back to v{}</button>',
                      reverse("admin:webapp_settingversion_rollback", args=[v.pk]), v.version)
          if v.version != current else format_html("<b>current</b>{}", f" (= v{v.restored_from})"
                                                    if v.restored_from else ""))
         for v in versions),
    )
    return format_html('<table class="setting-versions"><tr><th>version</th><th>saved</th><th>by</th>'
                       "<th>state</th><th></th></tr>{}</table>", rows)


class VersionsMixin:
    """The change page of a versioned setting lists its versions with their rollback buttons."""

    @admin.display(description="versions")
    def versions(self, obj: SkillSetting | AdminSetting) -> str:
        if obj.pk is None:
            return "-"
        return versions_table(obj.versions.all(), obj.version)


@admin.register(SkillSetting)
class SkillSettingAdmin(VersionsMixin, admin.ModelAdmin):
    form = SkillSettingForm
    list_display = ("skill", "tenant_id", "conversation_id", "enabled", "version", "updated_by", "updated_at")
    list_filter = ("enabled", "skill", "tenant_id")
    search_fields = ("skill", "tenant_id", "conversation_id")
    readonly_fields = ("version", "updated_by", "updated_at", "versions")

    def save_model(self, request: HttpRequest, obj: SkillSetting, form: Any, change: bool) -> None:
        saved = do_update_skill_setting(actor(request), obj.tenant_id, obj.skill, obj.enabled, obj.config,
                                        conversation_id=obj.conversation_id)
        obj.pk, obj.version = saved.pk, saved.version

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # disable instead: every state change stays in the audit log


class AdminSettingForm(forms.ModelForm):
    key = forms.ChoiceField(choices=[(k, k) for k in KNOBS])

    class Meta:
        model = AdminSetting
        fields = ("key", "value")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["key"].help_text = " | ".join(f"{k.key}: {k.help}" for k in KNOBS.values())
        self.fields["value"].help_text = "JSON: a string in quotes, a number, or null for the default"

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("key"):
            try:
                data["value"] = knob(data["key"]).clean(data.get("value"))
            except KnobError as exc:
                self.add_error("value", str(exc))
        return data


@admin.register(AdminSetting)
class AdminSettingAdmin(VersionsMixin, admin.ModelAdmin):
    form = AdminSettingForm
    list_display = ("key", "short_value", "version", "updated_by", "updated_at")
    readonly_fields = ("version", "updated_by", "updated_at", "versions")

    @admin.display(description="value")
    def short_value(self, obj: AdminSetting) -> str:
        return json.dumps(obj.value, ensure_ascii=False)[:80]

    def save_model(self, request: HttpRequest, obj: AdminSetting, form: Any, change: bool) -> None:
        saved = do_update_admin_setting(actor(request), obj.key, obj.value)
        obj.pk, obj.version = saved.pk, saved.version

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # set the value to null to go back to the default (audited)


@admin.register(SettingVersion)
class SettingVersionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every saved state of every setting; a version is rolled back to from here or from its setting."""

    list_display = ("target", "version", "short_state", "actor", "restored_from", "created_at", "rollback")
    list_filter = ("skill_setting__skill", "admin_setting__key")
    search_fields = ("skill_setting__skill", "skill_setting__tenant_id", "skill_setting__conversation_id",
                     "admin_setting__key", "actor")
    list_select_related = ("skill_setting", "admin_setting")

    @admin.display(description="state")
    def short_state(self, v: SettingVersion) -> str:
        return json.dumps(redacted_state(v), ensure_ascii=False)[:120]

    @admin.display(description="")
    def rollback(self, v: SettingVersion) -> str:
        return format_html('<a class="button" href="{}">this version…</a>', _setting_url(v))

    def get_urls(self) -> list[URLPattern]:
        view = admin.site.admin_view(self.rollback_view)
        return [path("<int:pk>/rollback/", view, name="webapp_settingversion_rollback"), *super().get_urls()]

    def rollback_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """POST only (the button's form carries the CSRF token): re-apply the version, back to its setting."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        version = get_object_or_404(SettingVersion.objects.select_related("skill_setting", "admin_setting"), pk=pk)
        model = SkillSetting if version.skill_setting_id else AdminSetting
        if not admin.site._registry[model].has_change_permission(request):
            return HttpResponseRedirect(_setting_url(version))
        try:
            new = do_rollback_setting(actor(request), version)
        except SettingError as exc:
            self.message_user(request, f"Not rolled back: {exc}", messages.ERROR)
        else:
            self.message_user(request, f"{version.target}: v{version.version} is current again (as v{new.version}).",
                              messages.SUCCESS)
        return HttpResponseRedirect(_setting_url(version))


def _setting_url(v: SettingVersion) -> str:
    if v.skill_setting_id:
        return reverse("admin:webapp_skillsetting_change", args=[v.skill_setting_id])
    return reverse("admin:webapp_adminsetting_change", args=[v.admin_setting_id])


class RemoteSkillForm(forms.ModelForm):
    token = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False),
                            help_text="Bearer token sent to the skill; stored encrypted. Empty = keep the current one.")
    clear_token = forms.BooleanField(required=False, help_text="Remove the stored token")

    class Meta:
        model = RemoteSkill
        fields = ("name", "url", "intents", "description", "timeout_seconds", "enabled")

    def clean_intents(self) -> list[str]:
        intents = self.cleaned_data.get("intents")
        if not isinstance(intents, list) or not all(isinstance(i, str) for i in intents):
            raise forms.ValidationError('a JSON list of intent names, e.g. ["it.ticket"]')
        return intents

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if all(data.get(k) is not None for k in ("name", "url", "intents", "timeout_seconds")):
            try:
                data["intents"] = validate_remote_skill(data["name"], data["url"], data["intents"],
                                                        data["timeout_seconds"])
            except SettingError as exc:
                self.add_error(None, str(exc))
        return data


@admin.register(RemoteSkill)
class RemoteSkillAdmin(admin.ModelAdmin):
    form = RemoteSkillForm
    list_display = ("name", "url", "intents", "timeout_seconds", "enabled", "has_token", "version", "updated_at")
    list_filter = ("enabled",)
    readonly_fields = ("version", "updated_by", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # A rename would orphan its settings and examples: add a new remote skill instead.
        return self.readonly_fields + (("name",) if obj is not None else ())

    def save_model(self, request: HttpRequest, obj: RemoteSkill, form: Any, change: bool) -> None:
        token: str | None = form.cleaned_data.get("token") or None
        if form.cleaned_data.get("clear_token"):
            token = ""
        saved = do_save_remote_skill(
            actor(request), obj.name, url=obj.url, intents=obj.intents, timeout_seconds=obj.timeout_seconds,
            enabled=obj.enabled, description=obj.description, token=token,
        )
        obj.pk, obj.version = saved.pk, saved.version

    def delete_model(self, request: HttpRequest, obj: RemoteSkill) -> None:
        do_delete_remote_skill(actor(request), obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[RemoteSkill]) -> None:
        for row in queryset:
            do_delete_remote_skill(actor(request), row)
