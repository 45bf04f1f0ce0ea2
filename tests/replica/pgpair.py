"""A throwaway PostgreSQL primary and streaming replica on loopback, for the replica tests.

:func:`running_pair` builds the pair from the server binaries on this machine and tears it down
afterwards, also on failure:

- a temporary directory ``/tmp/sealed-pgpair-*`` (mode 0700) holds both data directories, their
  logs and their Unix sockets;
- the primary comes from ``initdb``: trust authentication for local and 127.0.0.1 connections
  (replication included), ``listen_addresses='127.0.0.1'``, a free port, ``wal_level=replica``,
  small ``shared_buffers``, ``fsync=off``;
- the replica comes from ``pg_basebackup -R`` with a replication slot (so WAL waits for a stopped
  replica), runs as a hot standby on another free port and retries a lost primary every 100 ms;
- the pair is ready once both servers accept connections and the primary's ``pg_stat_replication``
  shows the replica streaming;
- at the end both servers stop (``pg_ctl stop -m immediate``) and the directory is removed.

Nothing listens on or connects to anything but 127.0.0.1. PostgreSQL refuses to run as root, so
when the tests run as root (here and in CI) every server program runs as the ``postgres`` system
user; otherwise it runs as the current user. Where the binaries or that user are missing,
:func:`unavailable_reason` says so and the fixtures skip.

The helpers on :class:`PgPair` are plain functions, callable from sync and async tests alike: they
drive other processes and never need the event loop. Every wait is bounded and raises
:class:`PgPairError` with the server's log tail when its time runs out, so no test can hang.

Fixtures (``tests/replica/conftest.py`` registers them; another folder's conftest may import them):

- ``pg_pair_session``: one pair for the whole session (starting one takes seconds);
- ``pg_pair``: that pair, first brought back to a healthy state (both running, replay resumed,
  streaming, caught up), so a test that stopped a server or paused replay does not leak into the
  next one.
"""

from __future__ import annotations

import contextlib
import math
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_USER = "postgres"
"""The system user the servers run as when the tests run as root."""
SUPERUSER = "postgres"
"""The database superuser ``initdb`` creates, whoever runs it."""
LOOPBACK = "127.0.0.1"
SLOT = "pgpair_replica"
"""The primary's replication slot for the replica."""

START_TIMEOUT = 60.0
"""Seconds for a server to start (and the replica to begin streaming), and for initdb or pg_basebackup."""
STOP_TIMEOUT = 15.0
QUERY_TIMEOUT = 5.0
"""Seconds for one psql query, connection included."""
POLL_INTERVAL = 0.01

_PG_BINDIR_GLOB = "/usr/lib/postgresql/*/bin"
_PROGRAMS = ("initdb", "pg_ctl", "pg_basebackup", "postgres", "psql")


class PgPairError(RuntimeError):
    """The pair could not be built, queried or brought to the state asked for in time; the message says which."""


def find_bindir() -> Path | None:
    """Where the PostgreSQL server programs are: the newest ``/usr/lib/postgresql/*/bin``, else ``$PATH``."""
    candidates = sorted(Path("/").glob(_PG_BINDIR_GLOB.lstrip("/")), key=lambda p: _major(p.parent.name), reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for bindir in candidates:
        if all((bindir / program).is_file() for program in _PROGRAMS):
            return bindir
    return None


def _major(version: str) -> int:
    """``"15"`` -> 15, anything else -> -1 (sorted last)."""
    return int(version) if version.isdigit() else -1


REQUIRE_ENV = "SEALED_TEST_REQUIRE_PGPAIR"
"""Set (as .ci/run does) to fail, not skip, when the pair cannot be started."""


def unavailable_reason() -> str | None:
    """Why a pair cannot be built on this machine, or None when it can."""
    if find_bindir() is None:
        return f"the PostgreSQL server programs ({', '.join(_PROGRAMS)}) are not installed ({_PG_BINDIR_GLOB} or PATH)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and there is no {SERVER_USER!r} system user to run PostgreSQL as"
    return None


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now (the kernel's choice)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind((LOOPBACK, 0))
        return [sock.getsockname()[1] for sock in sockets]


@dataclass(frozen=True)
class PgServer:
    """One server of the pair: its role, port, data directory and log file."""

    role: str
    port: int
    data: Path
    log: Path

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of its ``postgres`` database, over asyncpg."""
        return f"postgresql+asyncpg://{SUPERUSER}@{LOOPBACK}:{self.port}/postgres"

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of its log, for error messages."""
        try:
            text = self.log.read_text("utf-8", errors="replace")
        except OSError as exc:
            return f"(no log at {self.log}: {exc.strerror})"
        return "\n".join(text.splitlines()[-lines:])


class PgPair:
    """A running primary and its streaming replica; build one with :func:`running_pair`."""

    def __init__(self, root: Path, bindir: Path, primary: PgServer, replica: PgServer) -> None:
        self.root = root
        self.bindir = bindir
        self.primary = primary
        self.replica = replica
        self.start_seconds = 0.0
        """How long building and starting the pair took."""
        self._as_server_user = os.geteuid() == 0

    @property
    def primary_url(self) -> str:
        """``postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres`` for the primary."""
        return self.primary.url

    @property
    def replica_url(self) -> str:
        """``postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres`` for the replica."""
        return self.replica.url

    # -- queries -------------------------------------------------------------------------------------

    def query(self, server: PgServer, sql: str, *, timeout: float = QUERY_TIMEOUT) -> str:
        """Run ``sql`` on ``server`` through psql and return its unaligned output (``|``-separated, one row a line)."""
        command = [
            *(str(self.bindir / "psql"), "-X", "-w", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"),
            *("-h", LOOPBACK, "-p", str(server.port), "-U", SUPERUSER, "-d", "postgres", "-c", sql),
        ]
        env = {
            **_clean_env(),
            "PGCONNECT_TIMEOUT": str(max(1, int(timeout))),
            "PGOPTIONS": f"-c statement_timeout={int(timeout * 1000)}",
        }
        result = _run(command, timeout=timeout, env=env, what=f"psql on the {server.role}")
        if result.returncode != 0:
            raise PgPairError(f"{sql!r} failed on the {server.role} (port {server.port}): {result.stderr.strip()}")
        return result.stdout.strip()

    def pause_replay(self, *, timeout: float = QUERY_TIMEOUT) -> None:
        """Hold the replica behind: stop replaying WAL, and return once replay has actually paused."""
        self.query(self.replica, "SELECT pg_wal_replay_pause()")
        self._wait_for(lambda: self._replay_state() == "paused", timeout, "the replica's replay to pause", self.replica)

    def resume_replay(self) -> None:
        """Let the replica replay WAL again (it then catches up by itself; see :meth:`wait_caught_up`)."""
        self.query(self.replica, "SELECT pg_wal_replay_resume()")

    def wait_caught_up(self, timeout: float = 10.0) -> float:
        """Wait until the replica has replayed all WAL the primary holds now; return the lag in seconds.

        A transactional ``pg_logical_emit_message`` first commits a tiny record synchronously, which
        flushes every WAL record inserted before it (an asynchronous commit or a commit without
        changes, such as ``SELECT pg_current_xact_id()``, is only flushed later by the WAL writer).
        The target is then the primary's ``pg_current_wal_flush_lsn()``, and the lag is the time
        from reading it to seeing the replica's ``pg_last_wal_replay_lsn()`` reach it, measured to
        one poll (about 10 ms).
        """
        self.query(self.primary, "SELECT pg_logical_emit_message(true, 'pgpair', 'wait_caught_up')")
        target = self.query(self.primary, "SELECT pg_current_wal_flush_lsn()")
        started = time.monotonic()

        def caught_up() -> bool:
            return self.query(self.replica, f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn") == "t"

        try:
            self._wait_for(caught_up, timeout, f"the replica to replay up to the primary's LSN {target}", self.replica)
        except PgPairError as exc:
            try:
                paused = self._replay_state() != "not paused"
            except PgPairError:
                paused = False
            if paused:
                first, _, rest = str(exc).partition("\n")
                raise PgPairError(f"{first}: replay is paused (call resume_replay() first)\n{rest}") from exc
            raise
        return time.monotonic() - started

    def _replay_state(self) -> str:
        """``not paused``, ``pause requested`` or ``paused``."""
        return self.query(self.replica, "SELECT pg_get_wal_replay_pause_state()")

    def _streaming(self) -> bool:
        """Whether the primary shows a streaming replica and the replica's WAL receiver streams."""
        senders = self.query(self.primary, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
        receiver = self.query(self.replica, "SELECT status FROM pg_stat_wal_receiver")
        return senders != "0" and receiver == "streaming"

    def wait_streaming(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until the primary's ``pg_stat_replication`` shows the replica streaming."""
        self._wait_for(self._streaming, timeout, "the replica to stream from the primary", self.replica)

    # -- processes -----------------------------------------------------------------------------------

    def stop_replica(self) -> None:
        """Stop the replica at once (``pg_ctl stop -m immediate``); its port then refuses connections."""
        self._stop(self.replica)

    def start_replica(self, *, timeout: float = START_TIMEOUT) -> None:
        """Start the replica and wait until it accepts connections (streaming resumes by itself)."""
        self._start(self.replica, timeout)

    def stop_primary(self) -> None:
        """Stop the primary at once (``pg_ctl stop -m immediate``); the replica keeps serving reads."""
        self._stop(self.primary)

    def start_primary(self, *, timeout: float = START_TIMEOUT) -> None:
        """Start the primary and wait until it accepts connections (the replica reconnects within 100 ms)."""
        self._start(self.primary, timeout)

    def is_running(self, server: PgServer) -> bool:
        """Whether ``server``'s postmaster runs (``pg_ctl status``)."""
        return self._pg_ctl(server, "status", timeout=STOP_TIMEOUT).returncode == 0

    def ensure_streaming(self, timeout: float = START_TIMEOUT) -> None:
        """Bring the pair back to health: both running, replay resumed, the replica streaming and caught up."""
        for server in (self.primary, self.replica):
            if not self.is_running(server):
                self._start(server, timeout)
        if self._replay_state() != "not paused":
            self.resume_replay()
        self.wait_streaming(timeout)
        self.wait_caught_up(timeout)

    def _start(self, server: PgServer, timeout: float) -> None:
        """``pg_ctl start -w``: returns once the server accepts connections (a hot standby once consistent)."""
        result = self._pg_ctl(server, "start", "-l", str(server.log), timeout=timeout)
        if result.returncode != 0:
            raise PgPairError(
                f"the {server.role} did not start on port {server.port}: {result.stderr.strip()}\n"
                f"{server.log}:\n{server.log_tail()}"
            )

    def _stop(self, server: PgServer) -> None:
        """``pg_ctl stop -m immediate``, and fail loudly if the postmaster is still there afterwards."""
        self._pg_ctl(server, "stop", "-m", "immediate", timeout=STOP_TIMEOUT)
        if self.is_running(server):
            raise PgPairError(f"the {server.role} (port {server.port}) did not stop:\n{server.log_tail()}")

    def _pg_ctl(self, server: PgServer, action: str, *options: str, timeout: float) -> subprocess.CompletedProcess[str]:
        """Run ``pg_ctl ACTION -D data`` as the server user; ``-t`` bounds pg_ctl's own waiting."""
        wait = str(max(1, math.ceil(timeout)))
        command = [str(self.bindir / "pg_ctl"), action, "-D", str(server.data), "-w", "-t", wait, *options]
        return self._run_as_server(command, timeout=timeout + 5, what=f"pg_ctl {action} ({server.role})")

    def _run_as_server(self, command: list[str], *, timeout: float, what: str) -> subprocess.CompletedProcess[str]:
        """Run a server program as the ``postgres`` user when we are root, inside the pair's directory."""
        env = _clean_env()
        if not self._as_server_user:
            return _run(command, timeout=timeout, env=env, what=what, cwd=self.root)
        user = pwd.getpwnam(SERVER_USER)
        env.update(HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)
        return _run(command, timeout=timeout, env=env, what=what, cwd=self.root, user=user.pw_uid, group=user.pw_gid)

    def _wait_for(self, check: Callable[[], bool], timeout: float, what: str, server: PgServer) -> None:
        """Poll ``check`` until it holds; a :class:`PgPairError` inside counts as "not yet"."""
        deadline = time.monotonic() + timeout
        last_error = ""
        while True:
            try:
                if check():
                    return
            except PgPairError as exc:
                last_error = f"\nlast error: {exc}"
            if time.monotonic() >= deadline:
                raise PgPairError(
                    f"timed out after {timeout:g}s waiting for {what}{last_error}\n{server.log}:\n{server.log_tail()}"
                )
            time.sleep(POLL_INTERVAL)


def _clean_env() -> dict[str, str]:
    """This process's environment without ``PG*`` variables, so nothing redirects the programs elsewhere."""
    return {name: value for name, value in os.environ.items() if not name.startswith("PG")}


def _run(
    command: list[str],
    *,
    timeout: float,
    env: dict[str, str],
    what: str,
    cwd: Path | None = None,
    user: int | None = None,
    group: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` for at most ``timeout`` seconds; past that, kill its process group and raise.

    pg_ctl starts the postmaster in a session of its own, so killing the group never kills a server.
    """
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
        user=user,
        group=group,
        extra_groups=[] if user is not None else None,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise PgPairError(f"{what} did not finish within {timeout:g}s: {' '.join(command)}") from None
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


_PRIMARY_CONF = """
# sealed-sessions test pair: loopback only, built for speed, not durability.
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sockets}'
wal_level = replica
max_wal_senders = 4
max_replication_slots = 4
hot_standby = on
shared_buffers = 16MB
max_connections = 40
fsync = off
full_page_writes = off
# wait_caught_up relies on commits that wrote WAL being flushed before they return.
synchronous_commit = on
# Copied to the replica: it retries a lost primary every 100 ms, not every 5 s.
wal_retrieve_retry_interval = 100ms
logging_collector = off
"""
_REPLICA_CONF = """
# The replica: its own port (the rest is copied from the primary by pg_basebackup).
port = {port}
"""
_HBA = """
# sealed-sessions test pair: trust, and only over the Unix socket or from 127.0.0.1.
local all all trust
local replication all trust
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
"""


def _check_required(result: subprocess.CompletedProcess[str], what: str) -> None:
    """Raise with the program's own message when it failed."""
    if result.returncode != 0:
        raise PgPairError(
            f"{what} failed (exit {result.returncode}):\n{result.stderr.strip() or result.stdout.strip()}"
        )


def _append(path: Path, text: str) -> None:
    """Append to a file the server user owns (appending keeps its owner)."""
    with path.open("a", encoding="utf-8") as file:
        file.write(text)


@contextlib.contextmanager
def running_pair(*, timeout: float = START_TIMEOUT) -> Iterator[PgPair]:
    """Build and start a primary + streaming replica; stop both and delete everything on the way out."""
    reason = unavailable_reason()
    if reason:
        raise PgPairError(reason)
    bindir = find_bindir()
    assert bindir is not None
    started = time.monotonic()
    # /tmp, not $TMPDIR: a Unix socket's path must stay under 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="sealed-pgpair-", dir="/tmp"))
    primary_port, replica_port = free_ports(2)
    pair = PgPair(
        root,
        bindir,
        PgServer("primary", primary_port, root / "primary", root / "primary.log"),
        PgServer("replica", replica_port, root / "replica", root / "replica.log"),
    )
    try:
        if os.geteuid() == 0:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(root, user.pw_uid, user.pw_gid)
        os.chmod(root, 0o700)
        _build_primary(pair, timeout)
        pair._start(pair.primary, timeout)
        _build_replica(pair, timeout)
        pair._start(pair.replica, timeout)
        pair.wait_streaming(timeout)
        pair.start_seconds = time.monotonic() - started
        yield pair
    finally:
        _tear_down(pair)


def _build_primary(pair: PgPair, timeout: float) -> None:
    """``initdb`` the primary and write its settings and pg_hba.conf."""
    primary = pair.primary
    initdb = [
        *(str(pair.bindir / "initdb"), "-D", str(primary.data), "-U", SUPERUSER, "--auth=trust"),
        *("--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"),
    ]
    _check_required(pair._run_as_server(initdb, timeout=timeout, what="initdb"), "initdb")
    _append(primary.data / "postgresql.conf", _PRIMARY_CONF.format(port=primary.port, sockets=pair.root))
    with (primary.data / "pg_hba.conf").open("w", encoding="utf-8") as file:
        file.write(_HBA)


def _build_replica(pair: PgPair, timeout: float) -> None:
    """``pg_basebackup -R`` the replica from the running primary, through a replication slot."""
    basebackup = [
        *(str(pair.bindir / "pg_basebackup"), "-D", str(pair.replica.data), "-R", "-X", "stream"),
        *("-C", "-S", SLOT, "-c", "fast", "--no-sync", "-w"),
        *("-h", LOOPBACK, "-p", str(pair.primary.port), "-U", SUPERUSER),
    ]
    _check_required(pair._run_as_server(basebackup, timeout=timeout, what="pg_basebackup"), "pg_basebackup")
    _append(pair.replica.data / "postgresql.conf", _REPLICA_CONF.format(port=pair.replica.port))


def _tear_down(pair: PgPair) -> None:
    """Stop both servers however they are, then remove the directory; never raises for a server already gone."""
    for server in (pair.replica, pair.primary):
        if (server.data / "postmaster.pid").exists():
            with contextlib.suppress(PgPairError):
                pair._pg_ctl(server, "stop", "-m", "immediate", timeout=STOP_TIMEOUT)
            _kill_leftover(server)
    shutil.rmtree(pair.root, ignore_errors=True)


def _kill_leftover(server: PgServer) -> None:
    """If ``server``'s postmaster outlived ``pg_ctl stop``, send it SIGQUIT (immediate shutdown), then SIGKILL.

    Only a process whose command line names this data directory is signalled, so a stale
    ``postmaster.pid`` never hits an unrelated process that reused the PID.
    """
    try:
        pid = int((server.data / "postmaster.pid").read_text("utf-8").split("\n", 1)[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return
    if os.fsencode(server.data) not in cmdline:
        return
    for sig in (signal.SIGQUIT, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_TIMEOUT / 3
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


# -- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_pair_session() -> Iterator[PgPair]:
    """One primary + streaming replica for the whole session; skips where it cannot be built."""
    reason = unavailable_reason()
    if reason:
        if os.environ.get(REQUIRE_ENV):  # CI sets it: a pair that cannot start is a failure there
            pytest.fail(f"no PostgreSQL replica pair, and {REQUIRE_ENV} is set: {reason}")
        pytest.skip(f"no PostgreSQL replica pair: {reason}")
    with running_pair() as pair:
        yield pair


@pytest.fixture
def pg_pair(pg_pair_session: PgPair) -> PgPair:
    """The session's pair, healthy again: both running, replay resumed, the replica streaming and caught up."""
    pg_pair_session.ensure_streaming()
    return pg_pair_session
