"""Secrets at rest: skill-config secrets sealed in SkillSetting.config and its versions, shown as ***,
decrypted only into the workers' snapshot; MultiFernet key lists and rotate_keys without downtime."""

from __future__ import annotations

import io
import json

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from testkit.personas import bob
from webapp.actions.keys import do_rotate_keys
from webapp.actions.settings_snapshot import read_snapshot
from webapp.actions.skills import do_rollback_setting, do_save_remote_skill, do_update_skill_setting
from webapp.crypto import MASK, DecryptionError, decrypt_text, encrypt_text
from webapp.models import AuditLog, RemoteSkill, SettingVersion, SkillSetting

pytestmark = pytest.mark.django_db

KEY = "sk-live-4f9a8c2e"
DB_URL = "postgres://reader:pw-77ab19@db.internal:5432/vectors"


def _everything_stored() -> str:
    rows = [SkillSetting.objects.values(), SettingVersion.objects.values(), AuditLog.objects.values(),
            RemoteSkill.objects.values()]
    return json.dumps([list(r) for r in rows], default=str)


def test_a_secret_config_field_is_encrypted_at_rest_masked_in_audit_and_clear_for_the_workers():
    do_update_skill_setting(bob.key, "corp1", "docsearch", True,
                            {"llm_api_key": KEY, "vector_database_url": DB_URL, "top_k": 5})
    stored = _everything_stored()
    assert KEY not in stored and "pw-77ab19" not in stored
    row = SkillSetting.objects.get()
    assert row.config["llm_api_key"].startswith("fernet:") and row.config["top_k"] == 5
    audit = AuditLog.objects.get(action="skill_setting.update")
    assert audit.after["config"] == {"llm_api_key": MASK, "vector_database_url": MASK, "top_k": 5}
    assert read_snapshot().setting("corp1", "docsearch") == (
        True, {"llm_api_key": KEY, "vector_database_url": DB_URL, "top_k": 5})


def test_saving_the_mask_back_keeps_the_stored_secret_and_a_new_value_replaces_it():
    do_update_skill_setting(bob.key, "corp1", "llm_chat", True, {"api_key": KEY, "temperature": 0.3})
    do_update_skill_setting(bob.key, "corp1", "llm_chat", True, {"api_key": MASK, "temperature": 0.5})
    assert read_snapshot().setting("corp1", "llm_chat")[1] == {"api_key": KEY, "temperature": 0.5}
    do_update_skill_setting(bob.key, "corp1", "llm_chat", True, {"api_key": "sk-new", "temperature": 0.5})
    assert read_snapshot().setting("corp1", "llm_chat")[1]["api_key"] == "sk-new"
    # a rollback to v1 brings the first key back (its version holds it sealed)
    first = SettingVersion.objects.get(version=1)
    do_rollback_setting(bob.key, first)
    assert read_snapshot().setting("corp1", "llm_chat")[1] == {"api_key": KEY, "temperature": 0.3}
    assert KEY not in _everything_stored()


def test_the_admin_change_page_shows_secrets_masked_and_saving_it_keeps_them(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.com", None))
    row = do_update_skill_setting(bob.key, "corp1", "llm_chat", True, {"api_key": KEY})
    page = client.get(f"/admin/webapp/skillsetting/{row.pk}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    assert KEY not in body and "fernet:" not in body and MASK in body
    saved = client.post(f"/admin/webapp/skillsetting/{row.pk}/change/", {
        "tenant_id": "corp1", "skill": "llm_chat", "enabled": "on", "config": '{"api_key": "***"}'})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    assert read_snapshot().setting("corp1", "llm_chat")[1] == {"api_key": KEY}


def test_a_key_list_decrypts_with_every_key_and_encrypts_with_the_first(resources):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    resources.set(FIELD_ENCRYPTION_KEYS="", FIELD_ENCRYPTION_KEY=old)  # the one-key alias
    token = encrypt_text("abc")
    resources.set(FIELD_ENCRYPTION_KEYS=f"{new}, {old}")
    assert decrypt_text(token) == "abc"  # the old key still opens it
    assert Fernet(new.encode()).decrypt(encrypt_text("xyz").encode()) == b"xyz"
    resources.set(FIELD_ENCRYPTION_KEYS=new)
    with pytest.raises(DecryptionError):
        decrypt_text(token)


def test_rotate_keys_moves_every_secret_to_the_newest_key_audited(resources):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    resources.set(FIELD_ENCRYPTION_KEYS=old)
    do_save_remote_skill(bob.key, "crm", url="https://crm.example/", intents=["crm.ask"], token="tok-9")
    do_update_skill_setting(bob.key, "*", "llm_chat", True, {"api_key": KEY})
    # a plaintext secret from before sealing: rotate_keys seals it too
    SkillSetting.objects.create(tenant_id="corp2", skill="docsearch", config={"llm_api_key": "legacy-key"})
    resources.set(FIELD_ENCRYPTION_KEYS=f"{new},{old}")
    assert read_snapshot().remotes["crm"].token == "tok-9"  # no downtime: the old key still decrypts
    err = io.StringIO()
    call_command("rotate_keys", stdout=io.StringIO(), stderr=err)
    assert "re-encrypting secrets" in err.getvalue()  # the progress bar
    resources.set(FIELD_ENCRYPTION_KEYS=new)  # the old key dropped
    snap = read_snapshot()
    assert snap.remotes["crm"].token == "tok-9"
    assert snap.setting("*", "llm_chat")[1]["api_key"] == KEY
    assert snap.setting("corp2", "docsearch")[1]["llm_api_key"] == "legacy-key"
    assert "legacy-key" not in json.dumps(list(SkillSetting.objects.values("config")))
    do_rollback_setting(bob.key, SettingVersion.objects.get(skill_setting__skill="llm_chat", version=1))
    audit = AuditLog.objects.get(action="keys.rotate")
    assert audit.detail == {"rotated": 3, "sealed": 1, "failed": []}  # token, setting, its version


def test_rotate_keys_fails_loudly_for_a_value_no_key_opens(resources):
    resources.set(FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode())
    do_save_remote_skill(bob.key, "crm", url="https://crm.example/", intents=["crm.ask"], token="tok-9")
    resources.set(FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode())
    with pytest.raises(CommandError, match="RemoteSkill#"):
        call_command("rotate_keys", stdout=io.StringIO(), stderr=io.StringIO())
    assert do_rotate_keys("t").failed and AuditLog.objects.filter(action="keys.rotate").count() == 2
