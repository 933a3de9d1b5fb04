"""Every skill- and admin-setting change keeps its version; one click rolls back to any earlier one
(audited, validated); a conversation's kill switch carries no config; old settings got a first version."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.webapp.test_migrations import scratch_database, sql  # noqa: F401 - the fixture, and its helper
from webapp.actions.audit import verify_chain
from webapp.actions.settings_snapshot import read_snapshot
from webapp.actions.skills import (
    SettingError,
    do_rollback_setting,
    do_update_admin_setting,
    do_update_skill_setting,
)
from webapp.models import AdminSetting, AuditLog, SettingVersion, SkillSetting

pytestmark = pytest.mark.django_db
GROUP = "cidGroupSales=="


def test_every_change_keeps_its_state_as_a_version():
    do_update_skill_setting("bob", "corp1", "schedule", True, {"list_days": 14})
    do_update_skill_setting("alice", "corp1", "schedule", False, {"list_days": 3})
    row = SkillSetting.objects.get()
    assert [(v.version, v.actor, v.state["enabled"], v.state["config"]) for v in row.versions.order_by("version")] == [
        (1, "bob", True, {"list_days": 14}), (2, "alice", False, {"list_days": 3})]


def test_rolling_back_makes_an_earlier_state_current_as_the_next_version_and_is_audited():
    do_update_skill_setting("bob", "corp1", "llm_chat", True, {"api_key": "sk-old", "temperature": 0.3})
    do_update_skill_setting("alice", "corp1", "llm_chat", False, {"api_key": "sk-new", "temperature": 1.5})
    first = SettingVersion.objects.get(version=1)

    new = do_rollback_setting("ops", first)

    row = SkillSetting.objects.get()
    assert (row.version, row.enabled, row.config["temperature"]) == (3, True, 0.3)
    assert row.config["api_key"].startswith("fernet:")  # stored sealed (webapp.crypto), like its versions
    assert (new.version, new.restored_from, new.actor) == (3, 1, "ops")
    audit = AuditLog.objects.get(action="skill_setting.rollback")
    assert audit.actor == "ops" and audit.detail == {"version": 3, "restored_from": 1}
    assert audit.before == {"enabled": False, "config": {"api_key": "***", "temperature": 1.5}}
    assert "sk-old" not in str(audit.after) and verify_chain().ok
    assert read_snapshot().setting("corp1", "llm_chat") == (True, {"api_key": "sk-old", "temperature": 0.3})


def test_an_admin_setting_rolls_back_too_even_to_its_default():
    do_update_admin_setting("bob", "router.high_confidence", 0.8)
    do_update_admin_setting("bob", "router.high_confidence", None)
    do_update_admin_setting("bob", "router.high_confidence", 0.5)
    do_rollback_setting("ops", SettingVersion.objects.get(version=2))
    assert AdminSetting.objects.get().value is None
    assert read_snapshot().knob("router.high_confidence") == 0.6  # the knob's default
    do_rollback_setting("ops", SettingVersion.objects.get(version=1))
    assert (AdminSetting.objects.get().value, AdminSetting.objects.get().version) == (0.8, 5)


def test_a_version_the_skill_no_longer_accepts_is_refused_and_nothing_changes():
    do_update_skill_setting("bob", "corp1", "schedule", True, {"list_days": 14})
    old = SettingVersion.objects.get()
    SettingVersion.objects.filter(pk=old.pk).update(state={**old.state, "config": {"retired_key": 1}})
    old.refresh_from_db()
    audits = AuditLog.objects.count()
    with pytest.raises(SettingError, match="unknown key"):
        do_rollback_setting("ops", old)
    assert SkillSetting.objects.get().version == 1 and SettingVersion.objects.count() == 1
    assert AuditLog.objects.count() == audits


def test_a_conversation_kill_switch_only_switches_and_wins_over_the_tenant_row():
    do_update_skill_setting("bob", "corp1", "llm_chat", True, {"temperature": 0.2})
    with pytest.raises(SettingError, match="only turns the skill on or off"):
        do_update_skill_setting("bob", "corp1", "llm_chat", False, {"temperature": 1}, conversation_id=GROUP)
    switch = do_update_skill_setting("bob", "corp1", "llm_chat", False, conversation_id=GROUP)
    assert switch.scope == f"corp1/llm_chat@{GROUP}"
    assert AuditLog.objects.filter(action="skill_setting.update").last().target_id == switch.scope
    snap = read_snapshot()
    assert not snap.enabled_in("corp1", "llm_chat", GROUP)
    assert snap.enabled_in("corp1", "llm_chat", "cidOtherGroup==") and snap.enabled_in("corp1", "llm_chat")
    assert snap.setting("corp1", "llm_chat") == (True, {"temperature": 0.2})  # the tenant's config is untouched
    # A * switch for the conversation applies to any tenant without its own.
    do_update_skill_setting("bob", "*", "echo", False, conversation_id=GROUP)
    assert not read_snapshot().enabled_in("corp9", "echo", GROUP)


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("ops", "o@example.com", None))
    return client


def test_the_setting_page_lists_its_versions_and_one_click_rolls_back(staff_client):
    do_update_skill_setting("bob", "corp1", "schedule", True, {"list_days": 14})
    row = do_update_skill_setting("alice", "corp1", "schedule", False, {"list_days": 3})
    page = staff_client.get(reverse("admin:webapp_skillsetting_change", args=[row.pk])).content.decode()
    first = SettingVersion.objects.get(version=1)
    url = reverse("admin:webapp_settingversion_rollback", args=[first.pk])
    assert f'formaction="{url}"' in page and "Roll back to v1" in page and "Roll back to v2" not in page

    response = staff_client.post(url, follow=True)

    assert response.redirect_chain[-1][0] == reverse("admin:webapp_skillsetting_change", args=[row.pk])
    assert "v1 is current again (as v3)" in response.content.decode()
    row.refresh_from_db()
    assert (row.enabled, row.config, row.updated_by) == (True, {"list_days": 14}, "ops")
    assert AuditLog.objects.filter(action="skill_setting.rollback", actor="ops").count() == 1


def test_the_rollback_url_refuses_a_get_and_an_anonymous_user(client, staff_client):
    do_update_admin_setting("bob", "llm.temperature", 0.2)
    url = reverse("admin:webapp_settingversion_rollback", args=[SettingVersion.objects.get().pk])
    assert staff_client.get(url).status_code == 405
    client.logout()
    assert client.post(url).status_code == 302  # to the login page
    assert AdminSetting.objects.get().version == 1


def test_the_versions_list_shows_states_with_secrets_redacted(staff_client):
    do_update_skill_setting("bob", "*", "llm_chat", True, {"api_key": "sk-live-123"})
    page = staff_client.get(reverse("admin:webapp_settingversion_changelist")).content.decode()
    assert "*/llm_chat" in page and "***" in page and "sk-live-123" not in page


def test_a_failed_rollback_is_reported_on_the_page(staff_client):
    do_update_skill_setting("bob", "corp1", "schedule", True, {"list_days": 14})
    version = SettingVersion.objects.get()
    SettingVersion.objects.filter(pk=version.pk).update(state={**version.state, "config": {"nope": 1}})
    response = staff_client.post(reverse("admin:webapp_settingversion_rollback", args=[version.pk]), follow=True)
    assert "Not rolled back" in response.content.decode() and SkillSetting.objects.get().version == 1


@pytest.mark.slow
def test_settings_saved_before_versions_existed_get_their_state_as_a_first_version(scratch_database):  # noqa: F811
    import subprocess
    import sys

    from testkit.processes import ROOT, worker_env

    def migrate(*target: str) -> None:
        done = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", *target], cwd=ROOT, text=True,
                              env=worker_env(DATABASE_URL=scratch_database), capture_output=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr

    migrate("webapp", "0001_initial_squashed")
    sql(scratch_database, "INSERT INTO webapp_skillsetting (tenant_id, skill, enabled, config, version, updated_at,"
        " updated_by) VALUES ('corp1', 'schedule', false, '{\"list_days\": 3}', 4, now(), 'bob')")
    sql(scratch_database, "INSERT INTO webapp_adminsetting (key, value, version, updated_at, updated_by)"
        " VALUES ('llm.temperature', '0.4', 2, now(), 'alice')")
    migrate()
    rows = sql(scratch_database, "SELECT version, actor, state::text FROM webapp_settingversion ORDER BY id")
    assert [(v, a) for v, a, _ in rows] == [(4, "bob"), (2, "alice")]
    assert '"conversation_id": ""' in rows[0][2] and '"list_days": 3' in rows[0][2] and '"value": 0.4' in rows[1][2]
