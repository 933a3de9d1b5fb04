"""Skill, admin and remote-skill settings change only through actions: validated, audited, announced."""

from __future__ import annotations

import pytest
from django.db import connection

from testkit.personas import bob
from webapp.actions import versions
from webapp.actions.audit import verify_chain
from webapp.actions.skills import (
    SettingError,
    do_delete_remote_skill,
    do_save_remote_skill,
    do_update_admin_setting,
    do_update_skill_setting,
)
from webapp.crypto import DecryptionError, decrypt_text, derive_dev_key, encrypt_text
from webapp.models import AdminSetting, AuditLog, RemoteSkill, SkillSetting

pytestmark = pytest.mark.django_db


def test_a_skill_setting_change_is_audited_with_who_before_and_after():
    first = do_update_skill_setting(bob.key, "corp1", "schedule", True, {"list_days": 14})
    second = do_update_skill_setting("ops", "corp1", "schedule", False, {"list_days": 3})
    assert (first.pk, second.version) == (second.pk, 2)
    row = SkillSetting.objects.get(tenant_id="corp1", skill="schedule")
    assert (row.enabled, row.config, row.updated_by) == (False, {"list_days": 3}, "ops")
    audits = list(AuditLog.objects.filter(action="skill_setting.update").order_by("id"))
    assert [a.actor for a in audits] == [bob.key, "ops"]
    assert audits[0].before is None and audits[0].after == {"enabled": True, "config": {"list_days": 14}}
    assert audits[1].before == {"enabled": True, "config": {"list_days": 14}}
    assert audits[1].after == {"enabled": False, "config": {"list_days": 3}}
    assert audits[1].target_id == "corp1/schedule" and audits[1].tenant_id == "corp1"
    assert verify_chain().ok


@pytest.mark.parametrize("skill, config, message", [
    ("schedule", {"list_dayz": 3}, "unknown key"),
    ("llm_chat", {"temperature": "warm"}, "expected float"),
    ("llm_chat", {"temperature": 9}, "between 0 and 2"),
    ("weather", {}, "unknown skill 'weather'"),
])
def test_a_config_that_does_not_fit_the_skill_is_refused_and_nothing_is_written(skill, config, message):
    with pytest.raises(SettingError, match=message):
        do_update_skill_setting(bob.key, "corp1", skill, True, config)
    assert not SkillSetting.objects.exists() and not AuditLog.objects.exists()


def test_the_change_and_its_audit_row_commit_together(monkeypatch):
    def broken_audit(**_):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1/0")

    monkeypatch.setattr("webapp.actions.skills.record_audit", broken_audit)
    with pytest.raises(Exception, match="division by zero"):
        do_update_skill_setting(bob.key, "*", "echo", False, {})
    assert not SkillSetting.objects.exists()


def test_secret_config_fields_are_audited_redacted():
    do_update_skill_setting(bob.key, "*", "llm_chat", True, {"api_key": "sk-live-123", "temperature": 0.3})
    audit = AuditLog.objects.get(action="skill_setting.update")
    assert audit.after["config"] == {"api_key": "***", "temperature": 0.3}
    assert "sk-live-123" not in str(audit.after)


def test_the_version_key_is_bumped_only_after_commit(worker_settings, redis_conn,
                                                     django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as pending:
        do_update_skill_setting(bob.key, "*", "echo", True, {})
    assert redis_conn.get(versions.version_key(versions.SETTINGS)) is None
    for callback in pending:
        callback()
    assert redis_conn.get(versions.version_key(versions.SETTINGS)) == "1"


def test_admin_settings_are_validated_against_their_skill_and_audited():
    do_update_admin_setting(bob.key, "llm.temperature", 0.2)
    do_update_admin_setting("ops", "llm.temperature", 1)
    row = AdminSetting.objects.get(key="llm.temperature")
    assert (row.value, row.version) == (1.0, 2)
    audit = AuditLog.objects.filter(action="admin_setting.update").last()
    assert (audit.actor, audit.before, audit.after) == ("ops", 0.2, 1.0)
    for key, value, message in [("llm.temperature", 3, "between 0 and 2"), ("llm.temprature", 1, "unknown admin"),
                                ("router.high_confidence", 1.5, r"\(0, 1\]"), ("llm.system_prompt", 5, "expected str")]:
        with pytest.raises(SettingError, match=message):
            do_update_admin_setting(bob.key, key, value)


def test_a_remote_skill_token_is_stored_encrypted_and_never_audited():
    row = do_save_remote_skill(bob.key, "ithelp", url="http://127.0.0.1:9100/", intents=["it.ticket"],
                               token="s3cret-token")
    assert "s3cret" not in row.token_encrypted and decrypt_text(row.token_encrypted) == "s3cret-token"
    do_save_remote_skill(bob.key, "ithelp", url="http://127.0.0.1:9101/", intents=["it.ticket"], timeout_seconds=5)
    row.refresh_from_db()
    assert decrypt_text(row.token_encrypted) == "s3cret-token"  # None kept the token
    do_save_remote_skill(bob.key, "ithelp", url="http://127.0.0.1:9101/", intents=["it.ticket"], token="")
    row.refresh_from_db()
    assert row.token_encrypted == "" and row.version == 3
    audits = AuditLog.objects.filter(target_type="remote_skill")
    assert "s3cret" not in str([(a.before, a.after, a.detail) for a in audits])
    assert audits.last().after["has_token"] is False
    do_delete_remote_skill(bob.key, row)
    assert not RemoteSkill.objects.exists()
    assert AuditLog.objects.filter(action="remote_skill.delete").count() == 1


@pytest.mark.parametrize("name, intents, url, message", [
    ("echo", ["x.y"], "http://h/", "built-in"),
    ("crm", ["schedule.create"], "http://h/", "already belong"),
    ("crm", [], "http://h/", "at least one intent"),
    ("crm", ["crm.ask"], "ftp://h/", "http"),
])
def test_remote_skills_may_not_clash_with_other_skills(name, intents, url, message):
    with pytest.raises(SettingError, match=message):
        do_save_remote_skill(bob.key, name, url=url, intents=intents)


def test_a_remote_skill_config_belongs_on_its_own_row():
    do_save_remote_skill(bob.key, "crm", url="http://h/", intents=["crm.ask"])
    do_update_skill_setting(bob.key, "corp1", "crm", False, {})
    with pytest.raises(SettingError, match="remote skill"):
        do_update_skill_setting(bob.key, "corp1", "crm", True, {"url": "http://evil/"})


def test_the_field_key_defaults_to_one_derived_from_the_secret_key(resources):
    from cryptography.fernet import Fernet

    resources.set(FIELD_ENCRYPTION_KEY="")
    token = encrypt_text("abc")
    assert Fernet(derive_dev_key(resources.settings.django_secret_key)).decrypt(token.encode()) == b"abc"
    resources.set(FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode())
    with pytest.raises(DecryptionError, match="FIELD_ENCRYPTION_KEY"):
        decrypt_text(token)


@pytest.mark.parametrize(("url", "why"), [
    ("http://169.254.169.254/latest/", "loopback, link-local, private or reserved"),
    ("http://10.0.0.5/skill", "loopback, link-local, private or reserved"),
    ("https://u:p@crm.example/", "credentials"),
])
def test_a_remote_skill_url_into_the_bots_own_network_is_refused_on_save(url, why):
    with pytest.raises(SettingError, match=why):
        do_save_remote_skill(bob.key, "crm", url=url, intents=["crm.ask"])
    assert not RemoteSkill.objects.exists()


def test_in_production_a_remote_skill_token_needs_https(resources):
    resources.set(DJANGO_SECURE="1", OUTBOUND_URL_ALLOWLIST="127.0.0.1")
    with pytest.raises(SettingError, match="https"):
        do_save_remote_skill(bob.key, "crm", url="http://127.0.0.1:9/", intents=["crm.ask"], token="t")
    do_save_remote_skill(bob.key, "crm", url="http://127.0.0.1:9/", intents=["crm.ask"])  # no token: allowed
    with pytest.raises(SettingError, match="https"):  # a token added later, or kept while the URL changes
        do_save_remote_skill(bob.key, "crm", url="http://127.0.0.1:9/", intents=["crm.ask"], token="t")
