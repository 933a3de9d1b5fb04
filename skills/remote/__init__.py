"""Remote skills: an adapter that answers a turn by calling a skill served over HTTP (JSON in, JSON out)."""

from skills.remote.skill import RemoteSkill, RemoteSkillConfig

__all__ = ["RemoteSkill", "RemoteSkillConfig"]
