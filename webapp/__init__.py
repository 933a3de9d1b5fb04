"""Django: profiles, message records, audit, settings, admin, health and metrics."""
