"""The echo skill: repeats what the user said (the spine's default answer)."""
