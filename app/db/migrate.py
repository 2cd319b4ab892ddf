"""Bring a database to the newest schema with Alembic (`takt migrate`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

# The source tree (editable install, or the Docker image's work dir) holds
# `migrations/` beside `app/`; an installed copy of `app` finds it from the cwd.
_CANDIDATES = (Path(__file__).resolve().parents[2] / "migrations", Path.cwd() / "migrations")


def alembic_config(database_url: str) -> Config:
    """An Alembic config for `database_url` that needs no alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database at `database_url` up to `revision` (default: newest)."""
    _ensure_sqlite_directory(database_url)
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def migrations_dir() -> Path:
    for candidate in _CANDIDATES:
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError(
        "migrations/ not found beside the app package nor in the current directory"
    )


def _ensure_sqlite_directory(database_url: str) -> None:
    url = make_url(database_url)
    path = url.database
    if url.get_backend_name() == "sqlite" and path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
