"""Durability: every event answered 2xx survives a kill -9 of `custseg serve`."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from custseg import Store, pipeline
from custseg.datasets import load_demo, make_store

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(db, port: int, log) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "custseg.cli.main", "serve", "--db", str(db), "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"custseg serve exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("custseg serve did not answer within 120 s")


def test_acknowledged_events_survive_kill_9(tmp_path):
    db = tmp_path / "live.duckdb"
    with Store(db) as store:
        load_demo(store, make_store(200, seed=9))
        pipeline.build_and_store_features(store, dt.date(2025, 1, 1))
        pipeline.segment_rfm(store)
        try:
            from custseg.service.auth import create_key
        except ImportError:  # pragma: no cover
            headers = {}
        else:
            headers = {"Authorization": f"Bearer {create_key(store, 'write')[1]}"}
        customers = [r[0] for r in store.con.execute("SELECT customer_id FROM customers ORDER BY 1").fetchall()]

    port = _free_port()
    with open(tmp_path / "serve.log", "w") as log:
        _kill_and_restart(db, port, log, headers, customers)


def _kill_and_restart(db, port: int, log, headers: dict, customers: list[str]) -> None:
    proc = _serve(db, port, log)
    acked: list[str] = []
    sent = threading.Event()
    stop = threading.Event()

    def send() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as client:
            for n in range(100_000):
                if stop.is_set():
                    return
                batch = [{"type": "order", "event_id": f"k-{n}-{i}", "customer_id": customers[(n * 3 + i) % 200],
                          "time": f"2025-01-{1 + n % 28:02d}T12:00:00", "total": 10.0 + i} for i in range(3)]
                try:
                    r = client.post("/v1/events", json={"events": batch})
                except httpx.HTTPError:
                    return  # the server is gone
                if 200 <= r.status_code < 300:
                    acked.extend(e["event_id"] for e in batch)
                    if len(acked) >= 60:
                        sent.set()

    thread = threading.Thread(target=send)
    thread.start()
    try:
        assert sent.wait(120), "no events were acknowledged"
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: the sender is still sending
        proc.wait(30)
    finally:
        stop.set()
        thread.join(60)
        if proc.poll() is None:
            proc.kill()
    assert len(acked) >= 60

    proc = _serve(db, port, log)  # the same file: DuckDB replays its write-ahead log
    try:
        r = httpx.post(f"http://127.0.0.1:{port}/v1/events", headers=headers, timeout=30,
                       json={"type": "order", "event_id": acked[0], "customer_id": customers[0],
                             "time": "2025-01-02T12:00:00", "total": 10.0})
        assert r.status_code == 200 and r.json()["events"][0]["status"] == "duplicate"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    with Store(db, read_only=True) as store:
        stored = {r[0] for r in store.con.execute("SELECT event_id FROM service_events").fetchall()}
        orders = {r[0] for r in store.con.execute("SELECT order_id FROM orders WHERE order_id LIKE 'k-%'").fetchall()}
        # The live features (written after the answers, by the flush) cover every customer with a
        # stored event: those the kill caught between answer and flush were recomputed at restart.
        stale = store.con.execute(
            "SELECT count(DISTINCT e.customer_id) FROM service_events e LEFT JOIN service_features f "
            "USING (customer_id) WHERE e.applied_at IS NOT NULL AND (f.computed_at IS NULL "
            "OR f.computed_at < e.applied_at)").fetchall()[0][0]
    missing = [e for e in acked if e not in stored]
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {missing[:5]}"
    assert set(acked) <= orders
    assert stale == 0
