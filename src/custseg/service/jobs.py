"""Batch commands beside the service: the service file and the in-process job runner.

DuckDB lets one process open a store file for writing, and ``custseg serve``
is that process for as long as it runs. So a batch command (``custseg segment
rfm``, ``custseg ingest``, ``custseg report`` ...) started beside it cannot open
the file; instead it sends its command line to the service, which runs it in
its own process (``POST /v1/jobs``), where opening the same file again reuses
the service's DuckDB database instance and takes no lock.

The pieces:

* **The service file** ``<db>.service.json`` (mode 0600), written by ``custseg
  serve`` once it listens and removed when it stops: pid, host, port, the
  store's absolute path and a random **job token** created at start. The CLI
  finds it when opening the store fails with DuckDB's lock error
  (:func:`live_service`: a file whose process is gone or whose port does not
  answer is stale and ignored). Whoever may read the file (the owner of the
  store) may run jobs; the service keeps only a SHA-256 digest of the token.
* **The job runner** (:class:`JobRunner`): one job at a time, on a thread of
  its own. For the job's duration it changes the process's working directory
  to the client's (the service resolved its own paths when it started), sets
  ``CUSTSEG_DB`` as the client had it, and points the CLI's rich consoles and
  ``sys.stdout``/``sys.stderr`` at buffers; then it runs the custseg CLI with
  the client's arguments and returns the exit code and both outputs.
* **Stores inside a job** (:func:`open_job_store`, called by
  :func:`custseg.cli.common.open_db`): only the service's store may be opened;
  it is always opened read-write (DuckDB refuses a second, read-only
  configuration of a database already open in the process). A command that
  opens it for writing first **pauses the service's writer** (between two
  groups: no event transaction is open) until the job ends, so the batch work
  never races with event transactions (ingestion's idempotency checks, a
  feature rebuild, runs and memberships all see a store that events do not
  change under them). Events keep being accepted and queue meanwhile. Read-only
  commands run beside the writer.
* **Reload**: after a job that wrote (and succeeded), the writer thread rebuilds
  the live state (:func:`reload_live`), so new runs, features and CLV models
  become live as at a restart.

This module imports only the standard library at import time: the CLI uses the
service-file helpers without the service's extras.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import io
import json
import logging
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

SERVICE_FILE_SUFFIX = ".service.json"

#: Commands a job may not run: a second server, and the demo (it deletes and recreates the store file).
REFUSED_COMMANDS = {
    "serve": "`custseg serve` cannot run inside the service that already serves this store",
    "demo": "`custseg demo` replaces the store file; stop the service first, or use another --db",
}
#: Commands that open the store read-write but only read it: they run beside the writer, without pausing it.
READING_COMMANDS = {"report", "export", "segments", "customers"}
#: Commands after which the live state is not rebuilt although they may write: they change nothing it uses
#: (keys, recommendations, audiences and campaigns, playbooks, profiles). Any other command that wrote
#: (features, segment, clv, ingest, ingest-postgres, privacy, init, and commands added later) triggers a reload.
NO_RELOAD_COMMANDS = {"keys", "recommend", "audience", "campaign", "playbook", "assign", "quality", "profile",
                      "compare", "kpi", "cohorts", "mapping", "presets"} | READING_COMMANDS


def _command(argv: Sequence[str]) -> str | None:
    """The top-level command of ``argv`` (the first argument that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


# -- the service file -------------------------------------------------------------------------
@dataclass(frozen=True)
class ServiceInfo:
    """What ``<db>.service.json`` holds about a running ``custseg serve``."""

    pid: int
    host: str
    port: int
    db: str
    token: str
    started_at: str = ""

    @property
    def url(self) -> str:
        """The base URL a client on this machine connects to (a wildcard address means loopback)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


def service_file(db: str | os.PathLike) -> Path:
    """The service file of the store at ``db``: ``<absolute db path>.service.json``."""
    path = Path(db).expanduser().resolve()
    return path.with_name(path.name + SERVICE_FILE_SUFFIX)


def write_service_file(db: str | os.PathLike, *, host: str, port: int, token: str) -> Path:
    """Write the service file of ``db`` for this process (mode 0600, replacing a stale one); return its path."""
    path = service_file(db)
    info = {"pid": os.getpid(), "host": host, "port": int(port), "db": str(Path(db).expanduser().resolve()),
            "token": token, "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return path


def read_service_file(db: str | os.PathLike) -> ServiceInfo | None:
    """The service file of ``db`` as written, or None when there is none or it cannot be read."""
    path = service_file(db)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ServiceInfo(pid=int(data["pid"]), host=str(data["host"]), port=int(data["port"]),
                           db=str(data["db"]), token=str(data["token"]), started_at=str(data.get("started_at", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_service_file(db: str | os.PathLike, token: str) -> None:
    """Remove the service file of ``db`` if it is this service's (same token); another's is left alone."""
    info = read_service_file(db)
    if info is not None and hmac.compare_digest(info.token.encode(), token.encode()):
        with contextlib.suppress(FileNotFoundError):
            service_file(db).unlink()


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return False
    return True


def _port_answers(info: ServiceInfo, timeout: float) -> bool:
    host = info.url.split("//", 1)[1].rsplit(":", 1)[0].strip("[]")
    try:
        with socket.create_connection((host, info.port), timeout=timeout):
            return True
    except OSError:
        return False


def live_service(db: str | os.PathLike, timeout: float = 1.0) -> ServiceInfo | None:
    """The running ``custseg serve`` of the store at ``db``, or None.

    A service file is stale (ignored) when it names another store, when its process is gone, or
    when nothing answers on its port.
    """
    info = read_service_file(db)
    if info is None:
        return None
    if Path(info.db) != Path(db).expanduser().resolve() or not _pid_alive(info.pid):
        return None
    return info if _port_answers(info, timeout) else None


# -- jobs -------------------------------------------------------------------------------------
class JobError(ValueError):
    """A job request that cannot be run (refused command, bad working directory)."""


@dataclass
class _Job:
    """The job running now (see :func:`current_job`)."""

    runner: JobRunner
    thread: int
    command: str | None = None
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    wrote: bool = False
    paused_at: float | None = None


_current: _Job | None = None


def current_job() -> _Job | None:
    """The job running on this thread, if any."""
    job = _current
    return job if job is not None and job.thread == threading.get_ident() else None


def open_job_store(db: str | os.PathLike, read_only: bool = False):
    """Open a store inside a job: only the service's own, always read-write; writing pauses the writer.

    Called by :func:`custseg.cli.common.open_db` when :func:`current_job` is set. Opening the same
    file again in the service's process reuses its DuckDB database instance (no lock is taken);
    that instance is read-write, and DuckDB refuses a read-only connection to it ("different
    configuration"), so the store is opened read-write even for read-only commands (which only read).
    """
    from custseg.store import Store, StoreError

    job = current_job()
    if job is None:
        raise RuntimeError("open_job_store is for code running inside a job")
    runner = job.runner
    if str(db) == ":memory:":
        return Store(":memory:")
    path = Path(db).expanduser().resolve()
    if path != runner.db:
        raise StoreError(f"this command runs inside the service of {runner.db}, which opens only that store, "
                         f"not {path}")
    if not read_only and not job.wrote and job.command not in READING_COMMANDS:
        job.stack.enter_context(runner.service.writer.paused())
        job.wrote = True
        job.paused_at = time.perf_counter()
    return Store(path, read_only=False)


def reload_live(con, service, runs: Sequence[str] | None = None):
    """Rebuild the service's live state from the store (on the writer thread: ``writer.call``).

    Run with ``service.writer.call(reload_live, service, runs, transaction=False)``: LiveState opens
    its own transaction. New segmentation runs, features and CLV models become live as they would at
    a restart (the newest run of each kind, or the pinned ``runs``). ``con`` is the writer's
    connection (the store's), which LiveState uses through ``service.store``.
    """
    from custseg.service.live import LiveState

    live = LiveState(service.store, runs)
    service.live = live
    service.writer.live = live
    return live


@dataclass
class JobStats:
    """Timings of one job (milliseconds)."""

    argv: list[str]
    exit_code: int
    total_ms: float
    writer_paused_ms: float | None
    reload_ms: float | None


class JobRunner:
    """Runs custseg CLI commands inside the service, one at a time (see the module documentation).

    Parameters
    ----------
    service : custseg.service.context.Service
        The running service (its store, writer and live state).
    db : str or Path
        The service's store; resolved to an absolute path now, before any job changes directory.
    token : str, optional
        The job token of the service file; without it only admin API keys may run jobs.
    runs : list of str, optional
        The runs pinned at start (``--run``); a reload keeps them.
    reload_timeout : float, default=600.0
        Seconds to wait for the writer to rebuild the live state after a job.
    """

    def __init__(self, service, db: str | os.PathLike, *, token: str | None = None,
                 runs: Iterable[str] | None = None, reload_timeout: float = 600.0):
        self.service = service
        self.db = Path(db).expanduser().resolve()
        self._digest = hashlib.sha256(token.encode()).digest() if token else None
        self.runs = list(runs) if runs else None
        self.reload_timeout = reload_timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="custseg-job")
        self._lock = threading.Lock()
        self.history: list[JobStats] = []

    def token_matches(self, token: str | None) -> bool:
        """Whether ``token`` is this service's job token (constant-time comparison of digests)."""
        if self._digest is None or not token:
            return False
        return hmac.compare_digest(hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest(), self._digest)

    def submit(self, argv: Sequence[str], cwd: str, *, db_env: str | None = None, width: int | None = None
               ) -> Future:
        """Queue a job; the future resolves to ``{"exit_code", "stdout", "stderr", ...}``.

        Raises :class:`JobError` for a refused command or a working directory that is not one.
        """
        argv = [str(a) for a in argv]
        command = _command(argv)
        if command in REFUSED_COMMANDS:
            raise JobError(REFUSED_COMMANDS[command])
        if not os.path.isabs(cwd) or not os.path.isdir(cwd):
            raise JobError(f"cwd {cwd!r} is not an absolute path of a folder on the service's machine")
        return self._executor.submit(self._run, argv, cwd, db_env, width)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- one job ----------------------------------------------------------------------------
    def _run(self, argv: list[str], cwd: str, db_env: str | None, width: int | None) -> dict:
        global _current
        from custseg.cli import common

        out, err = io.StringIO(), io.StringIO()
        t0 = time.perf_counter()
        job = _Job(self, threading.get_ident(), _command(argv))
        saved_cwd = os.getcwd()
        saved_env = os.environ.get("CUSTSEG_DB")
        consoles = [(c, c._file, c._width) for c in (common.console, common.err_console)]
        paused_ms = None
        with self._lock:
            try:
                os.chdir(cwd)
                if db_env is None:
                    os.environ.pop("CUSTSEG_DB", None)
                else:
                    os.environ["CUSTSEG_DB"] = db_env
                common.console.file, common.err_console.file = out, err
                for c in (common.console, common.err_console):
                    c.width = width or 160
                _current = job
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    code = _invoke(argv)
            finally:
                _current = None
                try:
                    job.stack.close()  # resumes the writer
                finally:
                    if job.paused_at is not None:
                        paused_ms = (time.perf_counter() - job.paused_at) * 1e3
                    for c, file, w in consoles:
                        c._file, c._width = file, w
                    common.set_debug(False)
                    if saved_env is None:
                        os.environ.pop("CUSTSEG_DB", None)
                    else:
                        os.environ["CUSTSEG_DB"] = saved_env
                    os.chdir(saved_cwd)
        reloaded, reload_ms = False, None
        if job.wrote and code == 0:
            # Models the assign endpoint loaded (``custseg assign train`` may have replaced them).
            self.service.assign_models = {}
        if job.wrote and code == 0 and job.command not in NO_RELOAD_COMMANDS:
            t1 = time.perf_counter()
            try:
                self.service.writer.call(reload_live, self.service, self.runs, transaction=False,
                                         timeout=self.reload_timeout)
                reloaded = True
            except Exception as exc:  # noqa: BLE001 - reported to the client; the old live state stays
                log.exception("reloading the live state after a job failed")
                err.write(f"warning: the job succeeded but the service could not reload its live state ({exc}); "
                          "it keeps the previous live segmentations until it restarts\n")
            reload_ms = (time.perf_counter() - t1) * 1e3
        total_ms = (time.perf_counter() - t0) * 1e3
        self.history.append(JobStats(argv, code, total_ms, paused_ms, reload_ms))
        del self.history[:-100]
        log.info("job %s: exit %d in %.0f ms (writer paused %s ms, reload %s ms)", " ".join(argv[:3]), code,
                 total_ms, f"{paused_ms:.0f}" if paused_ms is not None else "-",
                 f"{reload_ms:.0f}" if reload_ms is not None else "-")
        return {"exit_code": code, "stdout": out.getvalue(), "stderr": err.getvalue(),
                "duration_ms": round(total_ms, 1),
                "writer_paused_ms": round(paused_ms, 1) if paused_ms is not None else None,
                "reloaded": reloaded,
                "live_runs": list(self.service.live.runs)}


_cli = None


def _invoke(argv: list[str]) -> int:
    """Run the custseg CLI on ``argv`` as ``custseg`` would (usage errors, exit codes); return the exit code."""
    global _cli
    import typer.main

    if _cli is None:
        from custseg.cli.main import app

        _cli = typer.main.get_command(app)
    try:
        _cli.main(args=argv, prog_name="custseg", standalone_mode=True)
    except SystemExit as exc:
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code
        sys.stderr.write(f"{exc.code}\n")
        return 1
    except Exception:  # noqa: BLE001 - an unexpected error of the command (with --debug: its traceback)
        sys.stderr.write(traceback.format_exc())
        return 1
    return 0


__all__ = ["JobError", "JobRunner", "ServiceInfo", "current_job", "live_service", "open_job_store",
           "read_service_file", "reload_live", "remove_service_file", "service_file", "write_service_file"]
