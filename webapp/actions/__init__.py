"""do_* actions: the only writers of the webapp's models (workers, admin, commands call these)."""
