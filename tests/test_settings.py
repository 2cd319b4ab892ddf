from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("DATABASE_URL", "TAKT_VAR_DIR", "TAKT_SECRET_KEY_FILE", "TAKT_DATA_KEYS_FILE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_embedded_database_lives_in_the_var_directory(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert Settings().database_url == "sqlite+aiosqlite:///var/takt.db"
    environment.setenv("TAKT_VAR_DIR", str(tmp_path / "plant"))
    settings = Settings()
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'plant' / 'takt.db'}"
    assert settings.secret_key  # created beside it
    assert (tmp_path / "plant" / "secret_key").exists()


def test_database_url_wins_over_the_var_directory(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environment.setenv("TAKT_VAR_DIR", str(tmp_path))
    environment.setenv("DATABASE_URL", "postgresql+asyncpg://takt@db/takt")
    assert Settings().database_url == "postgresql+asyncpg://takt@db/takt"
