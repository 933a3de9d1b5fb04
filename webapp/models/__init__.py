"""Models of the webapp; each concern in its own module, re-exported here."""
