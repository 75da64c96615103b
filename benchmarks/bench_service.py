"""Load benchmark of the live service: ``POST /v1/events`` with segment re-evaluation.

A demo store (``--customers``, default 10,000) gets a batch run: features, RFM, k-means, four
rule templates, BG/NBD + Gamma-Gamma and value x risk. ``custseg serve`` is started on it as a
separate process on 127.0.0.1; this process sends, over keep-alive HTTP connections:

1. **batches**: ``--clients`` threads post batches of ``--batch`` events (orders with lines, product
   views, cart adds, email opens and clicks of random existing customers) in a closed loop for
   ``--seconds``: events per second acknowledged, and each request's latency;
2. **single events** at a fixed rate (``--rate`` per second, open loop: each send is scheduled
   at its time whatever the previous answers) for ``--single-seconds``: latency p50/p99 of each
   request from its scheduled time.

Then the server is stopped and the store opened: every acknowledged event id must be in
``service_events`` (events lost = acknowledged ids missing). Peers measured in the same run on
a copy of the same store: **bare DuckDB** (the same event rows appended to the same canonical
tables and ``service_events``, one transaction per batch, no re-evaluation) and **batch re-run**
(``custseg features`` + RFM: what re-evaluating the customers costs without live evaluation).

    python benchmarks/bench_service.py                   # 10,000 customers, 60 s + 60 s
    python benchmarks/bench_service.py --seconds 10 --single-seconds 10   # a quick look
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-m", "custseg.cli.main"]


def _run(args: list[str], cwd: Path) -> None:
    out = subprocess.run(CLI + args, cwd=cwd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"custseg {' '.join(args)} failed:\n{out.stderr[-3000:]}")


def build_store(path: Path, customers: int) -> None:
    """The demo store with a batch run of every live kind (cached next to ``path``)."""
    if path.exists():
        return
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    cwd = path.parent
    _run(["demo", "--db", str(tmp), "--customers", str(customers)], cwd)
    _run(["segment", "cluster", "--db", str(tmp)], cwd)
    for template in ("lapsed", "high_value", "email_engagement", "window_shoppers"):
        _run(["segment", "template", template, "--db", str(tmp)], cwd)
    _run(["segment", "value", "--db", str(tmp)], cwd)
    tmp.rename(path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Events:
    """Random events of existing customers, times after the store's last day, unique ids."""

    def __init__(self, db: Path, seed: int):
        import duckdb

        con = duckdb.connect(str(db), read_only=True)
        self.customers = [r[0] for r in con.execute("SELECT customer_id FROM customers ORDER BY 1").fetchall()]
        self.products = con.execute("SELECT product_id, category, price FROM products ORDER BY 1").fetchall()
        self.campaigns = [r[0] for r in con.execute(
            "SELECT DISTINCT campaign_id FROM email_events WHERE campaign_id IS NOT NULL ORDER BY 1").fetchall()]
        last = con.execute("SELECT max(order_time) FROM orders").fetchall()[0][0]
        con.close()
        self.start = dt.datetime.combine(last.date() + dt.timedelta(days=1), dt.time(8))
        self.rng = random.Random(seed)
        self.n = 0
        self.lock = threading.Lock()

    def make(self, k: int) -> list[dict]:
        with self.lock:
            first, self.n = self.n, self.n + k
            rng = random.Random(self.rng.random())
        out = []
        for i in range(first, first + k):
            cid = rng.choice(self.customers)
            when = (self.start + dt.timedelta(seconds=i % 36_000)).isoformat()
            kind = rng.random()
            eid = f"bench-{i}"
            if kind < 0.15:
                lines = []
                for _ in range(rng.randint(1, 3)):
                    pid, cat, price = rng.choice(self.products)
                    lines.append({"product_id": pid, "category": cat, "quantity": rng.randint(1, 2),
                                  "unit_price": float(price or 20.0)})
                out.append({"type": "order", "event_id": eid, "order_id": f"bench-o{i}", "customer_id": cid,
                            "time": when, "items": lines})
            elif kind < 0.65:
                pid, cat, _ = rng.choice(self.products)
                out.append({"type": "product_view", "event_id": eid, "customer_id": cid, "time": when,
                            "session_id": f"bench-s{cid}", "product_id": pid, "category": cat})
            elif kind < 0.75:
                pid, cat, _ = rng.choice(self.products)
                out.append({"type": "add_to_cart", "event_id": eid, "customer_id": cid, "time": when,
                            "session_id": f"bench-s{cid}", "product_id": pid, "category": cat})
            else:
                out.append({"type": "email_open" if kind < 0.92 else "email_click", "event_id": eid,
                            "customer_id": cid, "time": when, "campaign_id": rng.choice(self.campaigns)})
        return out


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def batches(url: str, headers: dict, events: Events, clients: int, size: int, seconds: float) -> dict:
    import httpx

    acked: list[str] = []
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=60.0) as c:
            while time.monotonic() < stop:
                body = events.make(size)
                t = time.perf_counter()
                r = c.post("/v1/events", json={"events": body})
                ms = (time.perf_counter() - t) * 1e3
                with lock:
                    lat.append(ms)
                    if r.status_code == 200:
                        acked.extend(e["event_id"] for e in body)
                    else:
                        errors.append(f"{r.status_code} {r.text[:200]}")

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"acked": acked, "events_per_s": len(acked) / wall, "p50": _pct(lat, 0.5), "p99": _pct(lat, 0.99),
            "requests": len(lat), "errors": errors, "wall": wall}


def singles(url: str, headers: dict, events: Events, rate: float, seconds: float, workers: int = 32) -> dict:
    """Open loop: request i is due at ``i / rate``; latency from its due time (and from its send)."""
    import http.client
    from urllib.parse import urlsplit

    host = urlsplit(url)
    acked: list[str] = []
    lat: list[float] = []
    sent_lat: list[float] = []
    late: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    n = int(rate * seconds)
    bodies = [events.make(1)[0] for _ in range(n)]  # made before the clock starts
    payloads = [json.dumps(b).encode() for b in bodies]
    t0 = time.perf_counter() + 0.2
    slots = iter(range(n))
    slot_lock = threading.Lock()
    hdrs = {**headers, "Content-Type": "application/json"}

    def worker() -> None:
        # http.client: a light client, so that the load generator keeps its schedule on 2 cores.
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
        try:
            while True:
                with slot_lock:
                    i = next(slots, None)
                if i is None:
                    return
                due = t0 + i / rate
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                start = time.perf_counter()
                conn.request("POST", "/v1/events", body=payloads[i], headers=hdrs)
                r = conn.getresponse()
                text = r.read()
                done = time.perf_counter()
                with lock:
                    lat.append((done - due) * 1e3)  # from the scheduled time: queueing in the client counts
                    sent_lat.append((done - start) * 1e3)
                    late.append(max(0.0, start - due) * 1e3)
                    if r.status == 200:
                        acked.append(bodies[i]["event_id"])
                    else:
                        errors.append(f"{r.status} {text[:200]!r}")
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"acked": acked, "events_per_s": len(acked) / wall, "p50": _pct(lat, 0.5), "p99": _pct(lat, 0.99),
            "sent_p50": _pct(sent_lat, 0.5), "sent_p99": _pct(sent_lat, 0.99),
            "requests": len(lat), "errors": errors, "wall": wall, "max_late": max(late, default=0.0)}


def start_server(db: Path, port: int, log: Path) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen(CLI + ["serve", "--db", str(db), "--port", str(port), "--log-level", "warning"],
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1.0).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start within 300 s")


def server_stats(url: str, headers: dict) -> dict:
    return httpx_get(f"{url}/v1/health", headers)


def httpx_get(url: str, headers: dict) -> dict:
    import httpx

    return httpx.get(url, headers=headers, timeout=10).json()


def _times(events: list[dict]):
    import pyarrow as pa

    return pa.array([dt.datetime.fromisoformat(e["time"]) for e in events], pa.timestamp("us"))


def bare_duckdb(db: Path, events: Events, size: int, seconds: float) -> dict:
    """Peer: the same rows appended with DuckDB, one transaction per batch, no re-evaluation."""
    import duckdb
    import pyarrow as pa

    con = duckdb.connect(str(db))
    n, t0 = 0, time.perf_counter()
    stop = t0 + seconds
    while time.perf_counter() < stop:
        body = events.make(size)
        orders = [e for e in body if e["type"] == "order"]
        views = [e for e in body if e["type"] in ("product_view", "add_to_cart")]
        mails = [e for e in body if e["type"].startswith("email_")]
        con.execute("BEGIN TRANSACTION")
        log = pa.table({"event_id": [e["event_id"] for e in body], "customer_id": [e["customer_id"] for e in body],
                        "event_type": [e["type"] for e in body],
                        "event_time": _times(body),
                        "payload": [json.dumps(e) for e in body]})
        con.register("_log", log)
        con.execute("INSERT INTO service_events (event_id, customer_id, event_type, event_time, payload, "
                    "received_at, applied_at) SELECT *, now(), now() FROM _log")
        if orders:
            o = pa.table({"order_id": [e["order_id"] for e in orders],
                          "customer_id": [e["customer_id"] for e in orders],
                          "order_time": _times(orders),
                          "status": ["completed"] * len(orders),
                          "total": [sum(i["quantity"] * i["unit_price"] for i in e["items"]) for e in orders]})
            con.register("_o", o)
            con.execute("INSERT INTO orders (order_id, customer_id, order_time, status, total) SELECT * FROM _o")
            lines = [(e["order_id"], n_, i) for e in orders for n_, i in enumerate(e["items"], 1)]
            li = pa.table({"order_id": [x[0] for x in lines], "line_number": [x[1] for x in lines],
                           "product_id": [x[2]["product_id"] for x in lines],
                           "quantity": [float(x[2]["quantity"]) for x in lines],
                           "unit_price": [x[2]["unit_price"] for x in lines],
                           "line_amount": [x[2]["quantity"] * x[2]["unit_price"] for x in lines]})
            con.register("_li", li)
            con.execute("INSERT INTO order_items (order_id, line_number, product_id, quantity, unit_price, "
                        "line_amount) SELECT * FROM _li")
        if views:
            b = pa.table({"event_id": [e["event_id"] for e in views], "session_id": [e["session_id"] for e in views],
                          "customer_id": [e["customer_id"] for e in views],
                          "event_time": _times(views),
                          "event_type": [e["type"] for e in views], "product_id": [e["product_id"] for e in views]})
            con.register("_b", b)
            con.execute("INSERT INTO browsing_events (event_id, session_id, customer_id, event_time, event_type, "
                        "product_id) SELECT * FROM _b")
        if mails:
            m = pa.table({"event_id": [e["event_id"] for e in mails], "customer_id": [e["customer_id"] for e in mails],
                          "campaign_id": [e["campaign_id"] for e in mails],
                          "event_time": _times(mails),
                          "event_type": [e["type"][len("email_"):] for e in mails]})
            con.register("_m", m)
            con.execute("INSERT INTO email_events (event_id, customer_id, campaign_id, event_time, event_type) "
                        "SELECT * FROM _m")
        con.execute("COMMIT")
        n += len(body)
    wall = time.perf_counter() - t0
    con.close()
    return {"events_per_s": n / wall, "events": n}


def batch_rerun(db: Path) -> float:
    """Peer: rebuilding every customer's features and the RFM run (the batch way to re-evaluate)."""
    t = time.perf_counter()
    _run(["features", "--db", str(db)], db.parent)
    _run(["segment", "rfm", "--db", str(db)], db.parent)
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--customers", type=int, default=10_000)
    p.add_argument("--seconds", type=float, default=60.0, help="Duration of the batch phase.")
    p.add_argument("--clients", type=int, default=4, help="Concurrent clients of the batch phase.")
    p.add_argument("--batch", type=int, default=500, help="Events per request in the batch phase.")
    p.add_argument("--rate", type=float, default=200.0, help="Single events per second.")
    p.add_argument("--single-seconds", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "custseg-bench-service")
    p.add_argument("--keep", action="store_true", help="Keep the benchmark's copy of the store.")
    a = p.parse_args()

    from custseg import Store
    from custseg.service.auth import create_key

    a.workdir.mkdir(parents=True, exist_ok=True)
    base = a.workdir / f"base-{a.customers}.duckdb"
    t = time.perf_counter()
    build_store(base, a.customers)
    sys.stderr.write(f"store ready ({time.perf_counter() - t:.0f} s)\n")
    db = a.workdir / "live.duckdb"
    shutil.copy(base, db)
    with Store(db) as store:
        _, token = create_key(store, "admin", name="bench")
    headers = {"Authorization": f"Bearer {token}"}
    events = Events(db, a.seed)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(db, port, a.workdir / "server.log")
    try:
        sys.stderr.write("batch phase\n")
        b = batches(url, headers, events, a.clients, a.batch, a.seconds)
        sys.stderr.write("single-event phase\n")
        before = httpx_get(f"{url}/v1/stats?last=1", headers)["groups_total"]
        s = singles(url, headers, events, a.rate, a.single_seconds)
        stats = server_stats(url, headers)
        n = httpx_get(f"{url}/v1/stats?last=1", headers)["groups_total"] - before
        writer = httpx_get(f"{url}/v1/stats?last={max(1, min(n, 1_000))}", headers)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    acked = b["acked"] + s["acked"]
    con.execute("CREATE TEMP TABLE acked AS SELECT unnest(?) AS event_id", [acked])
    found = con.execute("SELECT count(*) FROM acked JOIN service_events USING (event_id) "
                        "WHERE applied_at IS NOT NULL").fetchall()[0][0]
    changes = con.execute("SELECT count(*) FROM segment_changes").fetchall()[0][0]
    con.close()
    lost = len(acked) - found

    peer_db = a.workdir / "peer.duckdb"
    shutil.copy(base, peer_db)
    peer_events = Events(peer_db, a.seed)
    bare = bare_duckdb(peer_db, peer_events, a.batch, min(a.seconds, 20.0))
    rerun = batch_rerun(peer_db)
    if not a.keep:
        for f in (db, peer_db):
            f.unlink(missing_ok=True)

    rows = [
        ("custseg serve", f"batches of {a.batch}, {a.clients} clients, {a.seconds:.0f} s",
         f"{b['events_per_s']:,.0f}", f"{b['p50']:.1f}", f"{b['p99']:.1f}", f"{len(b['acked']):,}"),
        ("custseg serve", f"single events at {a.rate:.0f}/s, {a.single_seconds:.0f} s",
         f"{s['events_per_s']:,.0f}", f"{s['p50']:.1f}", f"{s['p99']:.1f}", f"{len(s['acked']):,}"),
        ("bare DuckDB", f"same rows appended, batches of {a.batch}, no re-evaluation",
         f"{bare['events_per_s']:,.0f}", "", "", f"{bare['events']:,}"),
        ("batch re-run", "custseg features + segment rfm (every customer)", "", f"{rerun * 1e3:,.0f}", "", ""),
    ]
    head = ("tool", "what", "events/s", "p50 ms", "p99 ms", "acked")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [head, *rows]]
    out = "\n".join(lines)
    w = writer
    out += (f"\n\nserver, the single-event phase's last {w.get('groups', 0)} groups: events per group p50 "
            f"{w.get('events_per_group', {}).get('p50', 0):.0f}; ms per group p50 / p99 / max "
            + " / ".join(f"{w.get('total_ms', {}).get(k, 0):.1f}" for k in ("p50", "p99", "max"))
            + "; by step p50: " + ", ".join(f"{k[:-3]} {w.get(k, {}).get('p50', 0):.1f}" for k in
                                           ("write_ms", "features_ms", "segments_ms", "commit_ms", "flush_ms"))
            + "; by step p99: " + ", ".join(f"{k[:-3]} {w.get(k, {}).get('p99', 0):.1f}" for k in
                                            ("write_ms", "features_ms", "segments_ms", "commit_ms", "flush_ms")))
    out += (f"\nstore: {a.customers:,} customers; {stats.get('live_segmentations', 0)} live segmentations; "
            f"segment changes recorded: {changes:,}\n"
            f"events acknowledged: {len(acked):,}; found in service_events after the stop: {found:,}; "
            f"lost: {lost}\n"
            f"errors: batch phase {len(b['errors'])}, single phase {len(s['errors'])}"
            f"{' (first: ' + (b['errors'] + s['errors'])[0] + ')' if b['errors'] or s['errors'] else ''}\n"
            f"single phase: sends started up to {s['max_late']:.1f} ms after their scheduled time; from the "
            f"send itself p50 {s['sent_p50']:.1f} ms, p99 {s['sent_p99']:.1f} ms\n"
            f"targets: >= 2,000 events/s in batches ({'met' if b['events_per_s'] >= 2000 else 'NOT met'}), "
            f"p99 < 50 ms at {a.rate:.0f} single events/s ({'met' if s['p99'] < 50 else 'NOT met'}), "
            f"0 lost ({'met' if lost == 0 else 'NOT met'})")
    sys.stdout.write(out + "\n")
    sys.stdout.write(json.dumps({"batch_events_per_s": b["events_per_s"], "single_p50": s["p50"],
                                 "single_p99": s["p99"], "lost": lost, "pid": os.getpid()}) + "\n")


if __name__ == "__main__":
    main()
