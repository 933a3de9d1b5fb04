"""Registry-level checks of docsearch (its behaviour is tested in tests/skills/docsearch/)."""

from __future__ import annotations

from skills import registry
from skills.docsearch.skill import DocSearchConfig, DocSearchSkill


def test_it_builds_lazily_without_touching_its_store():
    skill = registry.build("docsearch", {"top_k": 5})
    assert isinstance(skill, DocSearchSkill) and isinstance(skill.config, DocSearchConfig)
    assert skill.config.top_k == 5
    assert skill._store is None  # the pgvector store opens on the first question, not at build
