"""Admin pages of the skills platform: forms validate, saves are audited actions, relabel and activate."""

from __future__ import annotations

import pytest
from django.urls import reverse

from testkit.personas import alice
from webapp.actions.routing import do_log_routed_turn, do_seed_intent_examples
from webapp.crypto import decrypt_text
from webapp.models import AdminSetting, AuditLog, IntentExample, RemoteSkill, RoutedTurn, RouterModel, SkillSetting

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "r@example.com", None)
    client.force_login(user)
    return client


@pytest.mark.parametrize("model", ["skillsetting", "adminsetting", "remoteskill", "intentexample",
                                   "routermodel", "routedturn"])
def test_every_platform_model_has_an_admin_list_and_the_editable_ones_an_add_form(staff_client, model):
    assert staff_client.get(reverse(f"admin:webapp_{model}_changelist")).status_code == 200
    expected = 403 if model in ("routermodel", "routedturn") else 200
    assert staff_client.get(reverse(f"admin:webapp_{model}_add")).status_code == expected


def test_saving_a_skill_setting_in_admin_runs_the_audited_action(staff_client):
    response = staff_client.post(reverse("admin:webapp_skillsetting_add"), {
        "tenant_id": "corp1", "skill": "schedule", "enabled": "", "config": '{"list_days": 3}'})
    assert response.status_code == 302, response.content.decode()[:2000]
    row = SkillSetting.objects.get()
    assert (row.enabled, row.config, row.updated_by, row.version) == (False, {"list_days": 3}, "root", 1)
    assert AuditLog.objects.get(action="skill_setting.update").actor == "root"


def test_a_config_that_does_not_validate_is_shown_on_the_form(staff_client):
    response = staff_client.post(reverse("admin:webapp_skillsetting_add"), {
        "tenant_id": "*", "skill": "llm_chat", "enabled": "on", "config": '{"temperature": "hot"}'})
    assert response.status_code == 200
    assert "expected float" in response.content.decode()
    assert not SkillSetting.objects.exists()


def test_admin_settings_are_chosen_from_known_keys_and_validated(staff_client):
    url = reverse("admin:webapp_adminsetting_add")
    bad = staff_client.post(url, {"key": "llm.temperature", "value": "7"})
    assert "between 0 and 2" in bad.content.decode()
    ok = staff_client.post(url, {"key": "llm.system_prompt", "value": '"你是公司的助手"'})
    assert ok.status_code == 302
    assert AdminSetting.objects.get().value == "你是公司的助手"
    assert AuditLog.objects.get(action="admin_setting.update").after == "你是公司的助手"


def test_a_remote_skill_token_typed_in_admin_is_stored_encrypted(staff_client):
    response = staff_client.post(reverse("admin:webapp_remoteskill_add"), {
        "name": "crm", "url": "http://crm-skill:8080/", "intents": '["crm.lookup"]', "description": "",
        "timeout_seconds": "5", "enabled": "on", "token": "tok-123"})
    assert response.status_code == 302, response.content.decode()[:2000]
    row = RemoteSkill.objects.get()
    assert decrypt_text(row.token_encrypted) == "tok-123"
    page = staff_client.get(reverse("admin:webapp_remoteskill_change", args=[row.pk])).content.decode()
    assert "tok-123" not in page and row.token_encrypted not in page
    clash = staff_client.post(reverse("admin:webapp_remoteskill_add"), {
        "name": "crm2", "url": "http://x:1/", "intents": '["schedule.create"]', "timeout_seconds": "5"})
    assert "already belong" in clash.content.decode()


def test_misrouted_turns_are_relabelled_from_the_list(staff_client):
    do_seed_intent_examples()
    do_log_routed_turn(msg_id="m1", tenant_id="corp1", user_id=alice.user_id, text="年假怎么申请",
                       predicted_intent="chat", confidence=0.5, skill="llm_chat")
    turn = RoutedTurn.objects.get()
    response = staff_client.post(reverse("admin:webapp_routedturn_changelist"), {
        "action": "relabel_as_docsearch.ask", "_selected_action": [turn.pk]}, follow=True)
    assert "relabelled as docsearch.ask" in response.content.decode()
    assert IntentExample.objects.get(text="年假怎么申请").source == "relabel"
    assert AuditLog.objects.get(action="routed_turn.relabel").actor == "root"


def test_an_older_router_version_can_be_activated_again(staff_client, worker_settings, redis_conn,
                                                        django_capture_on_commit_callbacks):
    old = RouterModel.objects.create(version="v1", artefact=b"x")
    RouterModel.objects.create(version="v2", artefact=b"y")
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(reverse("admin:webapp_routermodel_changelist"),
                          {"action": "activate", "_selected_action": [old.pk]})
    assert RouterModel.objects.get(version="v1").activated_at is not None
    assert redis_conn.get(f"{worker_settings.redis_key_prefix}version:router") == "v1"
    assert AuditLog.objects.get(action="router.activate").after == {"version": "v1"}
