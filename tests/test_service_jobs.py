"""Batch commands beside a running `custseg serve`: they go through the service (POST /v1/jobs).

The slow tests start one real server subprocess on a small demo store and run the batch commands as
subprocesses from the store's folder (relative paths) while a thread keeps sending events; the first
test runs a job in-process with FastAPI's TestClient.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from custseg import Store, pipeline
from custseg.datasets import load_demo, make_store
from custseg.service import jobs
from custseg.service.auth import create_key

AS_OF = dt.date(2025, 1, 1)


def test_a_job_runs_in_process_pauses_the_writer_and_reloads_the_live_state(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from custseg.cli import common
    from custseg.service.app import create_app

    db = tmp_path / "shop.duckdb"
    with Store(db) as store:
        load_demo(store, make_store(150, seed=2))
        pipeline.build_and_store_features(store, AS_OF)
        pipeline.segment_rfm(store)
        admin = {"Authorization": f"Bearer {create_key(store, 'admin')[1]}"}
        read = {"Authorization": f"Bearer {create_key(store, 'read')[1]}"}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the service's own working directory; jobs run in the client's
    consoles = (common.console.file, common.err_console.file)
    with TestClient(create_app(db)) as client:
        service = client.app.state.service
        paused = []
        real_paused = service.writer.paused

        def spy():
            paused.append(True)
            return real_paused()

        monkeypatch.setattr(service.writer, "paused", spy)
        r = client.post("/v1/jobs", headers=admin, json={
            "argv": ["segment", "template", "lapsed", "--db", "shop.duckdb"], "cwd": str(tmp_path)})
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["exit_code"] == 0, out["stderr"]
        assert "template lapsed (run" in out["stdout"] and out["reloaded"] and paused
        assert out["writer_paused_ms"] is not None
        assert os.getcwd() == str(elsewhere)  # restored
        assert (common.console.file, common.err_console.file) == consoles
        run_id = out["stdout"].split("(run ")[1].split(")")[0].strip()
        live = {s["run_id"] for s in client.get("/v1/segments", headers=read).json()["segmentations"]}
        assert run_id in live and run_id in out["live_runs"]
        # A read-only command: opened read-write in the process (DuckDB refuses a second configuration),
        # without pausing the writer, and no reload.
        paused.clear()
        kpi = client.post("/v1/jobs", headers=admin, json={"argv": ["kpi", "--db", str(db)], "cwd": str(tmp_path)})
        assert kpi.json()["exit_code"] == 0, kpi.json()["stderr"]
        assert not paused and not kpi.json()["reloaded"] and kpi.json()["writer_paused_ms"] is None
        assert client.post("/v1/jobs", json={"argv": ["kpi"], "cwd": str(tmp_path)}).status_code == 401
        assert client.post("/v1/jobs", headers=read, json={"argv": ["kpi"], "cwd": str(tmp_path)}).status_code == 403


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "custseg.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def _start(db: str, port: int, cwd: Path, log) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "custseg.cli.main", "serve", "--db", db, "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "info"], cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"custseg serve exited with {proc.returncode}: {Path(log.name).read_text()}")
        if jobs.live_service(cwd / db) is not None:  # the service file is written once the server listens
            return proc
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("custseg serve did not start within 120 s")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``(folder, port, keys)`` of `custseg serve --db shop.duckdb` running in ``folder``."""
    folder = tmp_path_factory.mktemp("jobs")
    db = folder / "shop.duckdb"
    with Store(db) as store:
        load_demo(store, make_store(300, seed=5))
        pipeline.build_and_store_features(store, AS_OF)
        pipeline.segment_rfm(store)
        keys = {s: {"Authorization": f"Bearer {create_key(store, s, name=f'test {s}')[1]}"}
                for s in ("read", "write", "admin")}
    port = _free_port()
    log = open(folder / "serve.log", "w")  # noqa: SIM115 - closed at teardown
    proc = _start("shop.duckdb", port, folder, log)
    try:
        yield folder, port, keys
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    assert not jobs.service_file(db).exists(), "a clean shutdown removes the service file"


class EventSender(threading.Thread):
    """Sends one order event every few milliseconds; keeps each answer's status and latency."""

    def __init__(self, port: int, headers: dict, prefix: str):
        super().__init__(daemon=True)
        self.port, self.headers, self.prefix = port, headers, prefix
        self.results: list[tuple[int, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{self.port}", headers=self.headers, timeout=60) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                event = {"type": "order", "event_id": f"{self.prefix}-{n}", "customer_id": f"C{(n % 300) + 1:06d}",
                         "time": "2024-12-31T12:00:00", "total": 10.0 + n}
                t0 = time.perf_counter()
                status = client.post("/v1/events", json=event).status_code
                self.results.append((status, time.perf_counter() - t0))
                time.sleep(0.02)

    def finish(self) -> list[tuple[int, float]]:
        self.stop.set()
        self.join(90)
        return self.results


def _get(port: int, path: str, headers: dict, **params):
    r = httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, params=params, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.slow
def test_the_service_file(served):
    folder, port, _ = served
    path = folder / "shop.duckdb.service.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    info = json.loads(path.read_text())
    assert info["port"] == port and info["host"] == "127.0.0.1"
    assert info["db"] == str((folder / "shop.duckdb").resolve()) and Path(info["db"]).is_absolute()
    assert len(info["token"]) >= 40 and info["pid"] > 0


@pytest.mark.slow
def test_batch_commands_go_through_the_service_while_events_flow(served):
    folder, port, keys = served
    sender = EventSender(port, keys["write"], "during")
    sender.start()
    time.sleep(0.5)
    timings = {}
    try:
        t0 = time.perf_counter()
        template = _cli("segment", "template", "lapsed", "--db", "shop.duckdb", cwd=folder)
        timings["segment template"] = time.perf_counter() - t0
        assert template.returncode == 0, template.stderr
        assert "template lapsed (run" in template.stdout and "Lapsed" in template.stdout
        assert "running the command there" in template.stderr  # it said where the command ran

        t0 = time.perf_counter()
        rfm = _cli("segment", "rfm", cwd=folder, env={"CUSTSEG_DB": "shop.duckdb"})  # the store from the env
        timings["segment rfm"] = time.perf_counter() - t0
        assert rfm.returncode == 0, rfm.stderr

        (folder / "more_orders.csv").write_text(
            "order_id,customer_id,order_time,status,total,currency\n"
            "J-1,C000001,2024-12-30 10:00:00,completed,55.0,EUR\n"
            "J-2,C000002,2024-12-30 11:00:00,completed,80.5,EUR\n")
        t0 = time.perf_counter()
        ingest = _cli("ingest", "orders", "more_orders.csv", "--db", "shop.duckdb", cwd=folder)  # a relative file
        timings["ingest"] = time.perf_counter() - t0
        assert ingest.returncode == 0, ingest.stderr

        t0 = time.perf_counter()
        report = _cli("report", "-o", "report.html", "--db", "shop.duckdb", cwd=folder)  # written in our folder
        timings["report"] = time.perf_counter() - t0
        assert report.returncode == 0, report.stderr
        assert (folder / "report.html").stat().st_size > 10_000
        time.sleep(0.5)
    finally:
        results = sender.finish()
    assert results and all(status == 200 for status, _ in results), {s for s, _ in results}
    latencies = sorted(t for _, t in results)
    jobs_log = [line for line in (folder / "serve.log").read_text().splitlines() if "custseg.service.jobs" in line]
    sys.stderr.write(f"\nbatch commands through the service, seconds: {timings}; {len(results)} events during: "
                     f"p50 {latencies[len(latencies) // 2]:.2f} s, max {latencies[-1]:.2f} s, "
                     f"{sum(t > 1 for t in latencies)} over 1 s\n" + "\n".join(jobs_log) + "\n")

    runs = _get(port, "/v1/runs", keys["read"])
    methods = {r["method"] for r in runs}
    assert {"rfm", "template:lapsed"} <= methods
    template_run = next(r for r in runs if r["method"] == "template:lapsed")
    assert template_run["run_id"] in template.stdout
    newest_rfm = next(r for r in runs if r["method"] == "rfm")  # newest first
    assert newest_rfm["run_id"] in rfm.stdout
    live = {s["run_id"] for s in _get(port, "/v1/segments", keys["read"])["segmentations"]}
    assert {template_run["run_id"], newest_rfm["run_id"]} <= live  # the new runs are live

    after = httpx.post(f"http://127.0.0.1:{port}/v1/events", headers=keys["write"], timeout=30, json={
        "type": "order", "event_id": "after-jobs", "customer_id": "C000003", "time": "2024-12-31T13:00:00",
        "total": 42.0}).json()
    assert after["applied"] == 1
    assert {s["run_id"] for s in after["customers"][0]["segments"]} == live


@pytest.mark.slow
def test_clv_fit_and_predict_through_the_service(served):
    folder, port, keys = served
    fit = _cli("clv", "fit", "--db", "shop.duckdb", cwd=folder)
    assert fit.returncode == 0, fit.stderr
    assert "saved model" in fit.stdout
    predict = _cli("clv", "predict", "--db", "shop.duckdb", "-o", "clv.csv", cwd=folder)
    assert predict.returncode == 0, predict.stderr
    assert (folder / "clv.csv").read_text().count("\n") > 100


@pytest.mark.slow
def test_a_failing_command_returns_its_exit_code_and_error(served):
    folder, _, _ = served
    result = _cli("segments", "show", "no-such-run", "--db", "shop.duckdb", cwd=folder)
    assert result.returncode == 1
    assert "no segmentation run 'no-such-run'" in result.stderr
    usage = _cli("segment", "rfm", "--db", "shop.duckdb", "--no-such-option", cwd=folder)
    assert usage.returncode == 2  # a usage error is found before the store is opened, as without a service


def _job(port: int, body: dict, headers: dict | None = None) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{port}/v1/jobs", json=body, headers=headers or {}, timeout=120)


@pytest.mark.slow
def test_jobs_need_the_job_token_or_an_admin_key(served):
    folder, port, keys = served
    token = json.loads((folder / "shop.duckdb.service.json").read_text())["token"]
    body = {"argv": ["segments", "list", "--db", "shop.duckdb"], "cwd": str(folder)}
    assert _job(port, body).status_code == 401
    assert _job(port, body, {"Authorization": "Bearer not-the-token"}).status_code == 401
    assert _job(port, body, {"Authorization": f"Bearer {token}x"}).status_code == 401
    assert _job(port, body, keys["write"]).status_code == 403
    for headers in ({"Authorization": f"Bearer {token}"}, keys["admin"]):
        r = _job(port, body, headers)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["exit_code"] == 0 and "rfm" in out["stdout"]
        assert out["writer_paused_ms"] is None and not out["reloaded"]  # a listing does not stop the events
    bad = {"Authorization": f"Bearer {token}"}
    assert _job(port, {"argv": ["demo"], "cwd": str(folder)}, bad).status_code == 422
    assert _job(port, {"argv": ["serve"], "cwd": str(folder)}, bad).status_code == 422
    assert _job(port, {"argv": ["segments", "list"], "cwd": "relative/dir"}, bad).status_code == 422
    other = _job(port, {"argv": ["segments", "list", "--db", str(folder / "other.duckdb")], "cwd": str(folder)}, bad)
    assert other.json()["exit_code"] == 1 and "opens only that store" in other.json()["stderr"]
    failing = _job(port, {"argv": ["segment", "template", "nope", "--db", "shop.duckdb"], "cwd": str(folder)}, bad)
    assert failing.json()["exit_code"] == 1 and "unknown template 'nope'" in failing.json()["stderr"]


@pytest.mark.slow
def test_a_second_serve_on_the_same_store_is_refused(served):
    folder, port, _ = served
    result = _cli("serve", "--db", "shop.duckdb", "--port", str(_free_port()), cwd=folder, timeout=120)
    assert result.returncode == 1
    assert "already served by custseg serve" in result.stderr and str(port) in result.stderr


@pytest.mark.slow
def test_a_stale_service_file_is_ignored(tmp_path):
    db = tmp_path / "stale.duckdb"
    with Store(db) as store:
        load_demo(store, make_store(100, seed=1))
        pipeline.build_and_store_features(store, AS_OF)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    jobs.write_service_file(db, host="127.0.0.1", port=_free_port(), token="stale")
    info = json.loads(jobs.service_file(db).read_text())
    info["pid"] = int(dead.stdout)  # a process that has exited
    jobs.service_file(db).write_text(json.dumps(info))
    assert jobs.live_service(db) is None
    # No process holds the store: the command runs here as usual.
    result = _cli("segment", "rfm", "--db", "stale.duckdb", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "running the command there" not in result.stderr
    # Another process (not a service) holds the lock, the service file is stale: the plain lock error.
    holder = subprocess.Popen([sys.executable, "-c", "import sys, duckdb; c = duckdb.connect(sys.argv[1]); "
                               "print('ready', flush=True); sys.stdin.read()", str(db)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        locked = _cli("segment", "rfm", "--db", "stale.duckdb", cwd=tmp_path)
    finally:
        holder.stdin.close()
        holder.wait(30)
    assert locked.returncode == 1 and "Could not set lock" in locked.stderr
    # A new service replaces the stale file.
    port = _free_port()
    with open(tmp_path / "serve.log", "w") as log:
        proc = _start("stale.duckdb", port, tmp_path, log)
        try:
            info = jobs.read_service_file(db)
            assert info.pid == proc.pid and info.port == port and info.token != "stale"
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    assert not jobs.service_file(db).exists()
