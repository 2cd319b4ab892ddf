"""Worlds the tests run in: databases on SQLite and PostgreSQL, Redis, a live app.

Fixtures
- `postgres_server` (session): a throwaway PostgreSQL (`servers.PostgresServer`).
- `postgres_url` (session): asyncpg URL of that server's `postgres` database.
- `postgres_database_url`: a fresh, migrated PostgreSQL database for one test.
- `sqlite_database_url`: a fresh, migrated SQLite file for one test.
- `database_url`: either of the two; tests using it run once per backend.
- `empty_database_url`: an empty database (no tables), once per backend.
- `redis_url` (session): a throwaway Redis server, no persistence.
- `live_server`: a factory starting the app under uvicorn; returns its base URL.
- `plant_time`: now (real, faked or fixed: `app.clock`) and the plant-time days and
  hours around it (`tests/clocks.py`); tests build their worlds relative to it.

A missing server binary fails the test, so that nothing is skipped by accident
(`make test` names what is missing before it starts: scripts/test-needs). Only
with TAKT_TEST_ALLOW_SKIP=1, and never under CI=true, such tests skip instead.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path

import pytest
from clocks import PlantTime
from hypothesis import settings as hypothesis_settings
from needs import unavailable
from servers import (
    PostgresServer,
    ServerUnavailable,
    app_server,
    start_postgres,
    start_redis,
)

from app.db.migrate import upgrade

# No deadline per example: a time limit is a timing assertion, and on a loaded
# machine (CI, two workers beside browsers and solvers) an example of a few
# milliseconds now and then takes more than hypothesis's default 200 ms.
hypothesis_settings.register_profile("takt", deadline=None)
hypothesis_settings.load_profile("takt")

BACKENDS = [
    pytest.param("sqlite"),
    pytest.param("postgres", marks=pytest.mark.postgres),
]


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = start_postgres()
    except ServerUnavailable as exc:
        unavailable(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    return postgres_server.url()


@pytest.fixture(scope="session")
def _postgres_template(postgres_server: PostgresServer) -> str:
    """A migrated database that each test's database is copied from (fast)."""
    name = postgres_server.create_database(prefix="takt_template")
    upgrade(postgres_server.url(name))
    return name


@pytest.fixture
def postgres_database_url(
    postgres_server: PostgresServer, _postgres_template: str
) -> Iterator[str]:
    name = postgres_server.create_database(template=_postgres_template)
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


# --- SQLite ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "takt.db"
    upgrade(sqlite_url(path))
    return path


@pytest.fixture
def sqlite_database_url(_sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "takt.db"
    shutil.copyfile(_sqlite_template, path)
    return sqlite_url(path)


# --- either backend --------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh migrated database; the test runs once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_database_url"))
    return str(request.getfixturevalue("postgres_database_url"))


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all, for migration tests."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "empty.db")
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database(prefix="empty")
    yield server.url(name)
    server.drop_database(name)


# --- Redis -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    try:
        server = start_redis()
    except ServerUnavailable as exc:
        unavailable(str(exc))
    try:
        yield server.url
    finally:
        server.stop()


# --- the app as a real process ---------------------------------------------------------------

LiveServer = Callable[..., str]


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """Start `uvicorn app.main:create_app --factory`; call it once per instance.

        base_url = live_server(database_url=database_url, redis_url=redis_url)

    Each instance gets its own TAKT_VAR_DIR unless `var_dir` is given (two
    instances of one plant should share it: it holds the signing keys).
    All instances stop when the test ends.
    """
    with ExitStack() as stack:
        count = 0

        def start(
            *,
            database_url: str,
            redis_url: str | None = None,
            var_dir: Path | None = None,
            env: Mapping[str, str] | None = None,
        ) -> str:
            nonlocal count
            count += 1
            return stack.enter_context(
                app_server(
                    database_url=database_url,
                    redis_url=redis_url,
                    var_dir=var_dir or tmp_path / f"var-{count}",
                    env=env,
                )
            )

        yield start


# --- time ------------------------------------------------------------------------------------


@pytest.fixture
def plant_time() -> PlantTime:
    """The "now" this test builds its world around, in plant time (UTC)."""
    return PlantTime.current()


# --- the classic job-shop data -----------------------------------------------------------------

# The shared data lives beside the repository: <repo>/../shared/data/jssp.
JSSP_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "jssp"
FJSP_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "fjsp"

FT06 = """\
# instance ft06 (Fisher & Thompson 1963), optimum 55
6 6
2  1  0  3  1  6  3  7  5  3  4  6
1  8  2  5  4 10  5 10  0 10  3  4
2  5  3  4  5  8  0  9  1  1  4  7
1  5  0  5  2  5  3  3  4  8  5  9
2  9  1  3  4  5  5  4  0  3  3  1
1  3  3  3  5  9  0 10  4  4  2  1
"""


@pytest.fixture
def ft06_text() -> str:
    """ft06 in the standard job-shop format, inline so it needs no shared data."""
    return FT06


@pytest.fixture
def jssp_dir() -> Path:
    """The shared JSSP instances; required under CI=true."""
    if not (JSSP_DIR / "instances").is_dir():
        unavailable(f"shared JSSP data not found at {JSSP_DIR.resolve()}")
    return JSSP_DIR


@pytest.fixture
def fjsp_dir() -> Path:
    """The shared flexible job-shop (Brandimarte) instances; required under CI=true."""
    if not (FJSP_DIR / "instances").is_dir():
        unavailable(f"shared FJSP data not found at {FJSP_DIR.resolve()}")
    return FJSP_DIR
