"""HelpSkill: a markdown list of the skills the user can reach, each with its help text."""

from __future__ import annotations

from skills import registry
from skills.api import AISkillPlugin, Reply, Turn
from skills.help.examples import EXAMPLES

# Words that ask for help; the keyword router of the spine uses them (issue 4 replaces it).
HELP_WORDS = ("help", "帮助", "?", "？")


class HelpSkill(AISkillPlugin):
    """Help: lists what I can do. 帮助：列出我会的技能。Type `help` or `帮助`."""

    name = "help"
    intents = ("help",)
    examples = EXAMPLES
    label = {"zh": "帮助", "en": "Help"}
    timeout_seconds = 5.0
    kind = "io"  # answers at once: it should not queue behind embeddings
    needs_catalog = True

    def execute(self, turn: Turn) -> Reply:
        # Outside the workers (a bare unit call) there is no catalog: describe every built-in.
        catalog = turn.catalog or {name: registry.skill_class(name).help_text() for name in registry.skill_names()}
        lines = ["**我会这些 / What I can do**", ""]
        for name, help_text in sorted(catalog.items()):
            flat = help_text.replace("\n", " ")
            lines.append(f"- **{name}**: {flat}")
        return Reply(text="\n".join(lines), kind="markdown", title="Help / 帮助")
