"""do_* actions: the only writers of the webapp's models (workers, admin, commands call these), and the
only way into the database for the workers (the reads they need return plain data)."""
