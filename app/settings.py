"""One typed settings object, read from the environment.

Secrets never come from plain environment variables: `TAKT_SECRET_KEY_FILE`
and `TAKT_DATA_KEYS_FILE` name files. In the embedded default they live under
`var/` and are created on first start.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

DEFAULT_VAR_DIR = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    # Unset: the embedded default, a SQLite file in the var directory (see below).
    database_url: str = Field(default="", alias="DATABASE_URL")
    # The database password, from a file (a container secret), put into DATABASE_URL.
    database_password_file: Path | None = Field(default=None, alias="TAKT_DATABASE_PASSWORD_FILE")
    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    var_dir: Path = Field(default=DEFAULT_VAR_DIR, alias="TAKT_VAR_DIR")
    secret_key_file: Path | None = Field(default=None, alias="TAKT_SECRET_KEY_FILE")
    data_keys_file: Path | None = Field(default=None, alias="TAKT_DATA_KEYS_FILE")
    plant_timezone: str = Field(default="Europe/Berlin", alias="TAKT_PLANT_TIMEZONE")
    access_token_minutes: int = Field(default=30, alias="TAKT_ACCESS_TOKEN_MINUTES")
    refresh_token_days: int = Field(default=14, alias="TAKT_REFRESH_TOKEN_DAYS")
    rate_limit_user: str = Field(default="100/minute", alias="TAKT_RATE_LIMIT_USER")
    # The board page carries every bar of a view of at most this many; beyond, the bars
    # of its first rows and the rest as the board scrolls (app/services/board_rows.py).
    board_whole_up_to: int = Field(default=300, ge=0, alias="TAKT_BOARD_WHOLE_UP_TO")
    # The board's conflicts panel lists this many of the window's conflicts, and as
    # many more at each "Show more" (app/services/conflict_list.py window_conflicts).
    board_conflicts_page: int = Field(default=50, ge=1, alias="TAKT_BOARD_CONFLICTS_PAGE")
    rate_limit_service: str = Field(default="1000/minute", alias="TAKT_RATE_LIMIT_SERVICE")
    # Wrong passwords from one address before it must wait (app/auth/login_guard.py).
    login_failures_per_address: str = Field(
        default="20/10minutes", alias="TAKT_LOGIN_FAILURES_PER_ADDRESS"
    )
    db_pool_size: int = Field(default=20, alias="TAKT_DB_POOL_SIZE")
    log_json: bool = Field(default=True, alias="TAKT_LOG_JSON")
    # Traces (app/tracing.py): "otlp", "console" or "off"; unset: otlp when the endpoint is set.
    tracing: Literal["", "otlp", "console", "off"] = Field(default="", alias="TAKT_TRACING")
    otlp_endpoint: str = Field(default="", alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    service_name: str = Field(default="takt", alias="OTEL_SERVICE_NAME")
    # Retention (app/services/retention.py): the audit trail stays in the database this
    # long (a year at least), then moves to files in the archive folder; the change log
    # and finished background runs are deleted after their ages; the sweep runs it so often.
    audit_keep_days: int = Field(default=400, ge=365, alias="TAKT_AUDIT_KEEP_DAYS")
    change_log_keep_days: int = Field(default=90, ge=1, alias="TAKT_CHANGE_LOG_KEEP_DAYS")
    finished_runs_keep_days: int = Field(default=30, ge=1, alias="TAKT_FINISHED_RUNS_KEEP_DAYS")
    ended_sessions_keep_days: int = Field(default=30, ge=1, alias="TAKT_ENDED_SESSIONS_KEEP_DAYS")
    finished_jobs_keep_days: int = Field(default=180, ge=1, alias="TAKT_FINISHED_JOBS_KEEP_DAYS")
    retention_every_hours: float = Field(default=24.0, gt=0, alias="TAKT_RETENTION_EVERY_HOURS")
    # Unset: archive/ in the var directory.
    archive_dir: Path | None = Field(default=None, alias="TAKT_ARCHIVE_DIR")
    # Where `takt backup` / `takt restore` find pg_dump, pg_restore and psql (unset: PATH).
    pg_bindir: Path | None = Field(default=None, alias="TAKT_PG_BINDIR")
    # The run queue: run a worker in this process? (unset: yes without Redis, no with it)
    queue_worker: bool | None = Field(default=None, alias="TAKT_QUEUE_WORKER")
    queue_concurrency: int = Field(default=2, ge=1, alias="TAKT_QUEUE_CONCURRENCY")
    # The Redis keys the queue's messages wait under (several plants can share one Redis).
    queue_name: str = Field(default="takt:jobs", min_length=1, alias="TAKT_QUEUE_NAME")
    # The sweep (see app.background.sweep): how often, when a waiting job's message counts as
    # lost, and how long a running job may go without a heartbeat before its worker is dead.
    # Short enough that a run whose worker was killed is tried again within half a minute.
    queue_sweep_interval_s: float = Field(default=10.0, gt=0, alias="TAKT_QUEUE_SWEEP_INTERVAL_S")
    queue_lost_after_s: float = Field(default=60.0, ge=0, alias="TAKT_QUEUE_LOST_AFTER_S")
    queue_heartbeat_grace_s: float = Field(default=20.0, gt=0, alias="TAKT_QUEUE_HEARTBEAT_GRACE_S")
    # How often open boards look for tasks that have just run past their booked end
    # (nothing in the change log says so: time does), to list them under "Running late".
    running_late_check_s: float = Field(default=30.0, gt=0, alias="TAKT_RUNNING_LATE_CHECK_S")
    # An optimizer draft older than this cannot be applied, and the sweep deletes it.
    draft_expiry_hours: float = Field(default=24.0, gt=0, alias="TAKT_DRAFT_EXPIRY_HOURS")
    # Open tasks from which the optimizer makes a first plan and improves it
    # neighbourhood by neighbourhood instead of solving one model of them all.
    optimizer_at_scale_tasks: int = Field(default=500, ge=1, alias="TAKT_OPTIMIZER_AT_SCALE_TASKS")
    # Changes older than this many revisions are not replayed; clients reload.
    change_feed_window: int = Field(default=5000, alias="TAKT_CHANGE_FEED_WINDOW")

    # Single sign-on (OIDC, app/auth/oidc.py): on when an issuer and a client id are set.
    oidc_issuer: str = Field(default="", alias="TAKT_OIDC_ISSUER")
    oidc_client_id: str = Field(default="", alias="TAKT_OIDC_CLIENT_ID")
    oidc_client_secret_file: Path | None = Field(default=None, alias="TAKT_OIDC_CLIENT_SECRET_FILE")
    # Shown on the login page: "Sign in with <name>".
    oidc_provider_name: str = Field(default="single sign-on", alias="TAKT_OIDC_PROVIDER_NAME")
    oidc_scopes: str = Field(default="openid profile email", alias="TAKT_OIDC_SCOPES")
    # The id token claim that says what someone may do (a string or a list of strings),
    # and which of its values mean which Takt role: "planners=scheduler,it-admins=admin".
    # Several values: the most powerful role wins; none: the sign-in is refused.
    oidc_role_claim: str = Field(default="groups", alias="TAKT_OIDC_ROLE_CLAIM")
    oidc_role_map: str = Field(default="", alias="TAKT_OIDC_ROLE_MAP")
    # The claim a first sign-in's username comes from (linked to a user of that name).
    oidc_username_claim: str = Field(default="preferred_username", alias="TAKT_OIDC_USERNAME_CLAIM")
    # Where the provider sends the browser back; unset: this request's host + /login/oidc/callback.
    oidc_redirect_url: str = Field(default="", alias="TAKT_OIDC_REDIRECT_URL")

    @model_validator(mode="after")
    def _embedded_database(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.var_dir / 'takt.db'}"
        if self.database_password_file is not None:
            password = self.database_password_file.read_text().strip()
            url = make_url(self.database_url).set(password=password)
            self.database_url = url.render_as_string(hide_password=False)
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @cached_property
    def secret_key(self) -> bytes:
        """The key that signs tokens and session cookies."""
        path = self.secret_key_file or self.var_dir / "secret_key"
        return _read_or_create(path, lambda: secrets.token_hex(32).encode())

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    @cached_property
    def oidc_client_secret(self) -> str:
        """The client secret from `TAKT_OIDC_CLIENT_SECRET_FILE` (empty: a public client)."""
        path = self.oidc_client_secret_file
        return path.read_text().strip() if path is not None else ""

    @property
    def data_keys_path(self) -> Path:
        return self.data_keys_file or self.var_dir / "data_keys"

    @cached_property
    def data_keys(self) -> list[bytes]:
        """AES-256-GCM keys for personal data, newest first (rotation: prepend)."""
        path = self.data_keys_path
        raw = _read_or_create(path, lambda: secrets.token_hex(32).encode() + b"\n")
        keys = [bytes.fromhex(line.strip()) for line in raw.decode().splitlines() if line.strip()]
        if not keys or any(len(key) != 32 for key in keys):
            raise ValueError(f"{path}: expected one 64-hex-digit key per line")
        return keys


def _read_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_bytes(value)
    return value.strip()
