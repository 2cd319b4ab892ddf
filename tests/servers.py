"""Throwaway PostgreSQL, Redis and app servers for the tests (standard library only).

Each server is a child process on a free loopback port with its files in a
temporary directory. Children get SIGTERM if the test run dies (PDEATHSIG),
so a killed pytest leaves no server behind.

PostgreSQL refuses to run as root. When the tests run as root, initdb and
postgres run as an unprivileged system user: `postgres` if the Debian package
made one, else `takt-test`, created here with useradd.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import http.client
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PG_BINDIR_GLOB = "/usr/lib/postgresql/*/bin"
UNPRIVILEGED_USERS = ("postgres", "takt-test")
_PR_SET_PDEATHSIG = 1


class ServerUnavailable(Exception):
    """The binaries a server needs are missing (tests skip, or fail under CI)."""


# --- plumbing --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """Runs in the child after fork (and after the uid change, which clears it)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, proc: Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}\n{_tail(proc)}")
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready after {timeout:.0f} s\n{_tail(proc)}")


@dataclass
class Popen:
    """A child process whose output goes to a log file we can show on failure."""

    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(
        cls,
        args: list[str],
        *,
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: pwd.struct_passwd | None = None,
    ) -> Popen:
        with log.open("wb") as out:
            process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                user=user.pw_uid if user else None,
                group=user.pw_gid if user else None,
                extra_groups=[] if user else None,
                preexec_fn=_die_with_parent,
            )
        return cls(process, log)

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def poll(self) -> int | None:
        return self.process.poll()

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 15) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _tail(proc: Popen, lines: int = 40) -> str:
    try:
        text = proc.log.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# --- PostgreSQL ------------------------------------------------------------------------------


def postgres_bindir() -> Path:
    """The newest local PostgreSQL's bin directory (TAKT_PG_BINDIR overrides)."""
    override = os.environ.get("TAKT_PG_BINDIR")
    candidates = [override] if override else glob.glob(PG_BINDIR_GLOB)
    found = [Path(c) for c in candidates if (Path(c) / "initdb").is_file()]
    if not found:
        raise ServerUnavailable(
            f"PostgreSQL server binaries not found in {override or PG_BINDIR_GLOB} "
            "(apt-get install postgresql-15)"
        )
    return max(found, key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)] or [0])


def unprivileged_user() -> pwd.struct_passwd | None:
    """None when we are not root; else a user PostgreSQL accepts, created if need be."""
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    name = UNPRIVILEGED_USERS[-1]
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(name)


@dataclass
class PostgresServer:
    bindir: Path
    directory: Path
    port: int
    process: Popen | None = None
    superuser: str = "postgres"
    host: str = "127.0.0.1"
    # How it was started, so that `restart()` can bring the same server back.
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    user: pwd.struct_passwd | None = None
    _counter: int = field(default=0, init=False)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://{self.superuser}@{self.host}:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [
                str(self.bindir / "psql"),
                *("-h", self.host, "-p", str(self.port), "-U", self.superuser, "-d", database),
                *("-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", statement),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql: {statement}: {result.stderr.strip()}")
        return result.stdout.strip()

    def create_database(self, *, template: str = "template0", prefix: str = "test") -> str:
        """A new database copied from `template`; returns its name."""
        self._counter += 1
        name = f"{prefix}_{os.getpid()}_{self._counter}"
        self.sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name

    def drop_database(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(signal.SIGINT)  # "fast" shutdown
        shutil.rmtree(self.directory, ignore_errors=True)

    def shut_down(self, mode: str) -> None:
        """`pg_ctl stop -m MODE`: "immediate" is a crash (no checkpoint, recovery on start);
        "fast" rolls back open transactions and disconnects everyone."""
        assert self.process is not None
        done = subprocess.run(
            [
                str(self.bindir / "pg_ctl"),
                *("stop", "-D", str(self.directory / "data")),
                *("-m", mode, "-w", "-t", "60"),
            ],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.directory,
            user=self.user.pw_uid if self.user else None,
            group=self.user.pw_gid if self.user else None,
            extra_groups=[] if self.user else None,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl stop -m {mode}: {done.stdout}{done.stderr}")
        self.process.process.wait(60)

    def start_again(self) -> None:
        """Start the server shut down by `shut_down()`, on the same port and data.

        From the main thread: a child gets SIGTERM when the thread that started it ends.
        """
        self.process = Popen.start(
            self.args,
            log=self.directory / "postgres.log",
            env=self.env,
            cwd=self.directory,
            user=self.user,
        )
        wait_until(lambda: _pg_ready(self), timeout=120, what="PostgreSQL", proc=self.process)

    def restart(self, mode: str) -> None:
        """`pg_ctl restart -m MODE`, in two steps so that the server stays our child
        (and dies with the test run like every other server here)."""
        self.shut_down(mode)
        self.start_again()


# Fast and throwaway: a crash may lose what was committed (the tests never crash it).
THROWAWAY = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
# What production runs: a commit is on disk before it is acknowledged.
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


def start_postgres(*, durable: bool = False) -> PostgresServer:
    """A throwaway server; `durable=True` for one that keeps commits through a crash."""
    bindir = postgres_bindir()
    user = unprivileged_user()
    directory = Path(tempfile.mkdtemp(prefix="takt-pg-", dir=_world_traversable_tmp()))
    data = directory / "data"
    if user is not None:
        os.chown(directory, user.pw_uid, user.pw_gid)
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    if user is not None:
        env["HOME"] = str(directory)
    server = PostgresServer(
        bindir=bindir, directory=directory, port=free_port(), env=env, user=user
    )
    settings = DURABLE if durable else THROWAWAY
    try:
        initdb = Popen.start(
            [
                str(bindir / "initdb"),
                *("-D", str(data), "-U", server.superuser, "--auth=trust"),
                *("--encoding=UTF8", "--no-locale", "--no-sync"),
            ],
            log=directory / "initdb.log",
            env=env,
            cwd=directory,
            user=user,
        )
        if initdb.process.wait(120) != 0:
            raise RuntimeError(f"initdb failed\n{_tail(initdb)}")
        server.args = [
            str(bindir / "postgres"),
            *("-D", str(data), "-p", str(server.port)),
            *("-c", "listen_addresses=127.0.0.1"),
            *("-c", f"unix_socket_directories={directory}"),
            *(option for name, value in settings.items() for option in ("-c", f"{name}={value}")),
            *("-c", "max_connections=200"),
            *("-c", "shared_buffers=64MB", "-c", "log_min_messages=warning"),
        ]
        server.process = Popen.start(
            server.args,
            log=directory / "postgres.log",
            env=env,
            cwd=directory,
            user=user,
        )
        wait_until(
            lambda: _pg_ready(server),
            timeout=60,
            what="PostgreSQL",
            proc=server.process,
        )
    except BaseException:
        server.stop()
        raise
    return server


def _world_traversable_tmp() -> str:
    """TMPDIR if the unprivileged user can reach into it, else /tmp."""
    base = Path(tempfile.gettempdir()).resolve()
    if all(part.stat().st_mode & 0o001 for part in (base, *base.parents)):
        return str(base)
    return "/tmp"


def _pg_ready(server: PostgresServer) -> bool:
    result = subprocess.run(
        [
            str(server.bindir / "pg_isready"),
            *("-q", "-h", server.host, "-p", str(server.port), "-U", server.superuser),
        ],
        capture_output=True,
    )
    return result.returncode == 0


# --- Redis -----------------------------------------------------------------------------------


@dataclass
class RedisServer:
    port: int
    directory: Path
    process: Popen
    # The command line, so that `restart()` can bring the same server back.
    args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        """SIGKILL: Redis gone at once, as in a crash (clients see the socket close)."""
        self.process.stop(signal.SIGKILL)

    def restart(self) -> None:
        """Start Redis again on the same port (after `kill()`); returns once it answers."""
        self.process.stop(signal.SIGKILL)
        self.process = Popen.start(
            self.args, log=self.directory / "redis.log", cwd=self.directory, env=without_faketime()
        )
        wait_until(lambda: _redis_ready(self.port), timeout=30, what="Redis", proc=self.process)

    def stop(self) -> None:
        self.process.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_redis() -> RedisServer:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).is_file():
        raise ServerUnavailable("redis-server not found (apt-get install redis-server)")
    directory = Path(tempfile.mkdtemp(prefix="takt-redis-"))
    port = free_port()
    args = [
        binary,
        *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)),
        *("--save", "", "--appendonly", "no", "--daemonize", "no"),
        *("--loglevel", "warning", "--protected-mode", "no"),
    ]
    process = Popen.start(args, log=directory / "redis.log", cwd=directory, env=without_faketime())
    server = RedisServer(port=port, directory=directory, process=process, args=args)
    try:
        wait_until(lambda: _redis_ready(port), timeout=30, what="Redis", proc=process)
    except BaseException:
        server.stop()
        raise
    return server


def without_faketime() -> dict[str, str]:
    """This environment without libfaketime (`make test-clock`), for Redis: its jemalloc
    reads the clock while libfaketime initialises and the server never starts. Redis
    only keeps relative times (TTLs); every absolute time Takt puts in it comes from
    the app's own clock, which is the faked one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKETIME")}
    preload = [p for p in env.pop("LD_PRELOAD", "").split(":") if p and "faketime" not in p]
    if preload:
        env["LD_PRELOAD"] = ":".join(preload)
    return env


def _redis_ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


# --- the app ---------------------------------------------------------------------------------


def http_ok(base_url: str, path: str, timeout: float = 2) -> bool:
    host_port = base_url.removeprefix("http://")
    host, _, port = host_port.partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


@contextlib.contextmanager
def app_server(
    *,
    database_url: str,
    redis_url: str | None,
    var_dir: Path,
    env: Mapping[str, str] | None = None,
    factory: str = "app.main:create_app",
    timeout: float = 60,
    port: int | None = None,
) -> Iterator[str]:
    """`uvicorn app.main:create_app --factory` on `port` (else a free one); yields its base URL."""
    port = port or free_port()
    child_env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL") and not key.startswith("TAKT_")
    }
    child_env |= {"DATABASE_URL": database_url, "TAKT_VAR_DIR": str(var_dir)}
    if redis_url:
        child_env["REDIS_URL"] = redis_url
    child_env |= dict(env or {})
    var_dir.mkdir(parents=True, exist_ok=True)
    process = Popen.start(
        [
            sys.executable,
            *("-m", "uvicorn", factory, "--factory"),
            *("--host", "127.0.0.1", "--port", str(port), "--no-access-log"),
            # As `takt serve` runs it (app/cli): uncompressed frames, which the live
            # path writes to the sockets directly (realtime/eager.py).
            *("--ws-per-message-deflate", "false"),
        ],
        log=var_dir / f"uvicorn-{port}.log",
        env=child_env,
        cwd=REPO_ROOT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(base_url, "/health"), timeout=timeout, what="app", proc=process)
        yield base_url
    finally:
        process.stop()


def load_demo(database_url: str, var_dir: Path, size: str = "small") -> str:
    """`takt demo --size SIZE` into a migrated (or empty) database, as a new user runs it;
    returns what it printed."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TAKT_")}
    env |= {"DATABASE_URL": database_url, "TAKT_VAR_DIR": str(var_dir)}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("takt")), "demo", "--size", size],
        env=env,
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout
