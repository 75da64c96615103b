"""Deleting a customer on request (right to be forgotten), with a log that keeps no personal data.

:func:`delete_customer` removes, in one transaction, every row about one
customer from every table of the store, canonical or derived:

- rows whose ``customer_id`` is the customer (any table with that column:
  customers, orders, events, surveys, campaign assignments, features,
  ``clean_*``, memberships, RFM scores, CLV predictions, recommendations,
  service events, segment changes, ...);
- rows of the customer's orders in any table with an ``order_id`` column
  (``order_items``, ``clean_order_items``), guest orders included;
- rows without a customer id that carry the customer's email (guest orders,
  email events, survey answers), as the cleaning step would link them;
- anonymous browsing events of devices (``anonymous_id``) on which only this
  customer ever logged in, which the cleaning step attributes to them;
- rejected source rows (``rejects.raw_row``) that hold the customer's id,
  email or one of their order ids as a field value.

An email or device that another customer also used is left alone. The
``deletion_log`` entry records a salted SHA-256 of the id (never the id),
the time, who asked and the rows removed per table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import uuid

import pandas as pd

from custseg.store.schema import TABLES

HASH_SCHEME = "sha256"
_MAX_REQUESTED_BY = 200


def _columns(con) -> dict[str, dict[str, str]]:
    """Base tables of the store: name -> {column: type}."""
    rows = con.execute(
        "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
        "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
        "WHERE c.table_schema = 'main' AND t.table_type = 'BASE TABLE' ORDER BY c.table_name, c.ordinal_position"
    ).fetchall()
    out: dict[str, dict[str, str]] = {}
    for table, column, dtype in rows:
        out.setdefault(table, {})[column] = dtype
    return out


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text(column: str, dtype: str) -> str:
    """The column as text, cast only when it is not text already."""
    return _q(column) if dtype.upper() == "VARCHAR" else f"CAST({_q(column)} AS VARCHAR)"


_IN_LIST = " IN (SELECT unnest(?::VARCHAR[]))"


def _owned(con, tables: dict[str, dict[str, str]], customer_id: str, column: str, normalise: str = "{}") -> list[str]:
    """Values of ``column`` seen with this customer and with no other customer, across all tables."""
    pairs = [(table, normalise.format(_text(column, cols[column])), _text("customer_id", cols["customer_id"]))
             for table, cols in tables.items() if "customer_id" in cols and column in cols]
    mine: set[str] = set()
    for table, value, cid in pairs:
        mine.update(r[0] for r in con.execute(
            f"SELECT DISTINCT {value} FROM {_q(table)} WHERE {cid} = ? AND {value} IS NOT NULL AND {value} <> ''",
            [customer_id]).fetchall())
    if not mine:
        return []
    candidates = sorted(mine)
    shared: set[str] = set()
    for table, value, cid in pairs:
        shared.update(r[0] for r in con.execute(
            f"SELECT DISTINCT {value} FROM {_q(table)} WHERE {cid} IS NOT NULL AND {cid} <> ? "
            f"AND {value}{_IN_LIST}", [customer_id, candidates]).fetchall())
    return sorted(mine - shared)


def _plan(con, customer_id: str) -> list[tuple[str, str, list]]:
    """``(table, where, params)`` for every table holding rows of the customer."""
    tables = _columns(con)
    missing = [t for t, decl in TABLES.items() if "customer_id" in decl.column_names and t not in tables]
    if missing:
        raise RuntimeError(f"store lacks tables {', '.join(missing)}; open it with custseg to migrate it first")
    email_norm = "lower(trim({}))"
    emails = _owned(con, tables, customer_id, "email", email_norm)
    devices = _owned(con, tables, customer_id, "anonymous_id")

    order_ids: set[str] = set()
    for table, cols in tables.items():
        if "order_id" not in cols:
            continue
        conds, params = [], []
        if "customer_id" in cols:
            conds.append(f"{_text('customer_id', cols['customer_id'])} = ?")
            params.append(customer_id)
        if "email" in cols and emails:
            guest = f" AND {_q('customer_id')} IS NULL" if "customer_id" in cols else ""
            conds.append(f"({email_norm.format(_text('email', cols['email']))}{_IN_LIST}{guest})")
            params.append(emails)
        if conds:
            order_ids.update(r[0] for r in con.execute(
                f"SELECT DISTINCT {_text('order_id', cols['order_id'])} FROM {_q(table)} "
                f"WHERE {' OR '.join(conds)}", params).fetchall() if r[0] is not None)
    orders = sorted(order_ids)

    steps: list[tuple[str, str, list]] = []
    for table, cols in sorted(tables.items()):
        conds, params = [], []
        guest = " AND customer_id IS NULL" if "customer_id" in cols else ""
        if "customer_id" in cols:
            conds.append(f"{_text('customer_id', cols['customer_id'])} = ?")
            params.append(customer_id)
        if "order_id" in cols and orders:
            conds.append(f"{_text('order_id', cols['order_id'])}{_IN_LIST}")
            params.append(orders)
        if "email" in cols and emails:
            conds.append(f"({email_norm.format(_text('email', cols['email']))}{_IN_LIST}{guest})")
            params.append(emails)
        if "anonymous_id" in cols and devices:
            conds.append(f"({_text('anonymous_id', cols['anonymous_id'])}{_IN_LIST}{guest})")
            params.append(devices)
        if table == "rejects" and "raw_row" in cols:
            values = [customer_id, *emails, *orders]
            conds.append("(json_valid(raw_row) AND EXISTS (SELECT 1 FROM json_each(raw_row) j "
                         f"WHERE trim(j.value ->> '$'){_IN_LIST} OR lower(trim(j.value ->> '$')){_IN_LIST}))")
            params.extend([values, emails])
        if conds:
            steps.append((table, " OR ".join(conds), params))
    return steps


def _count(con, steps: list[tuple[str, str, list]]) -> dict[str, int]:
    counts = {}
    for table, where, params in steps:
        counts[table] = int(con.execute(f"SELECT count(*) FROM {_q(table)} WHERE {where}", params).fetchall()[0][0])
    return counts


def _unknown(store, customer_id: str) -> ValueError:
    return ValueError(f"no customer {customer_id!r} in store {store.path}: no table has a row with this "
                      "customer_id; nothing was deleted")


def _is_known(con, customer_id: str) -> bool:
    """Whether some table has a row with this ``customer_id`` (rows reached by email or device only do not count)."""
    for table, cols in _columns(con).items():
        if "customer_id" in cols and con.execute(
                f"SELECT 1 FROM {_q(table)} WHERE {_text('customer_id', cols['customer_id'])} = ? LIMIT 1",
                [customer_id]).fetchall():
            return True
    return False


def _check_id(customer_id: object) -> None:
    if not isinstance(customer_id, str) or not customer_id:
        raise ValueError(f"customer_id must be a non-empty string, got {customer_id!r}")


def customer_rows(store, customer_id: str) -> dict[str, int]:
    """Rows that :func:`delete_customer` would remove, per table (tables with none left out).

    Reads through a cursor, so it can run beside the service's writer.

    Parameters
    ----------
    store : custseg.Store
        The store.
    customer_id : str
        The customer's id, exactly as stored.

    Returns
    -------
    dict of str to int

    Raises
    ------
    ValueError
        When no table has a row with this ``customer_id``.
    """
    _check_id(customer_id)
    cur = store.con.cursor()
    try:
        if not _is_known(cur, customer_id):
            raise _unknown(store, customer_id)
        counts = _count(cur, _plan(cur, customer_id))
    finally:
        cur.close()
    return {t: n for t, n in counts.items() if n}


def hash_customer_id(customer_id: str, salt: bytes | None = None) -> str:
    """``sha256$<salt>$<digest>`` of a customer id, with a fresh random salt unless one is given.

    Examples
    --------
    >>> hash_customer_id("C000042", salt=bytes(16)).split("$")[0]
    'sha256'
    """
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.sha256(salt + customer_id.encode("utf-8")).hexdigest()
    return f"{HASH_SCHEME}${salt.hex()}${digest}"


def delete_customer(store, customer_id: str, requested_by: str = "cli") -> dict:
    """Delete every row about one customer, in one transaction, and log the deletion.

    Parameters
    ----------
    store : custseg.Store
        The store, opened for writing. In the service, call this from the
        writer thread: a concurrent write to the same rows would abort the
        transaction (nothing is deleted then, and the call can be retried).
    customer_id : str
        The customer's id, exactly as stored.
    requested_by : str, default="cli"
        Who asked: ``cli`` or the id of the API key.

    Returns
    -------
    dict
        ``deletion_id`` (the ``deletion_log`` key), ``rows_deleted`` (table ->
        rows removed, tables with none left out) and ``total``.

    Raises
    ------
    ValueError
        When no table has a row with this ``customer_id`` (nothing is deleted
        or logged).

    Examples
    --------
    >>> from custseg import Store
    >>> with Store(":memory:") as store:
    ...     _ = store.con.execute("INSERT INTO customers (customer_id, email) VALUES ('C1', 'a@b.org')")
    ...     delete_customer(store, "C1")["rows_deleted"]
    {'customers': 1}
    """
    _check_id(customer_id)
    if not isinstance(requested_by, str) or not requested_by or len(requested_by) > _MAX_REQUESTED_BY:
        raise ValueError(f"requested_by must be a non-empty string of at most {_MAX_REQUESTED_BY} characters")
    deletion_id = f"del-{dt.datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    with store.transaction() as con:
        if not _is_known(con, customer_id):
            raise _unknown(store, customer_id)
        steps = _plan(con, customer_id)
        counts: dict[str, int] = {}
        for table, where, params in steps:
            n = int(con.execute(f"DELETE FROM {_q(table)} WHERE {where}", params).fetchall()[0][0])
            if n:
                counts[table] = n
        con.execute(
            "INSERT INTO deletion_log (deletion_id, customer_hash, deleted_at, requested_by, rows_deleted) "
            "VALUES (?, ?, now()::TIMESTAMP, ?, ?)",
            [deletion_id, hash_customer_id(customer_id), requested_by, json.dumps(counts, sort_keys=True)])
    return {"deletion_id": deletion_id, "rows_deleted": counts, "total": sum(counts.values())}


def deletion_log(store) -> pd.DataFrame:
    """The deletions made so far, newest first (no customer ids: only their salted hashes).

    Returns
    -------
    pandas.DataFrame
        Columns ``deletion_id``, ``deleted_at``, ``requested_by``, ``total``
        (rows removed) and ``rows_deleted`` (JSON, per table).
    """
    cur = store.con.cursor()
    try:
        df = cur.execute("SELECT deletion_id, deleted_at, requested_by, rows_deleted FROM deletion_log "
                         "ORDER BY deleted_at DESC, deletion_id").df()
    finally:
        cur.close()
    df.insert(3, "total", [sum(json.loads(r or "{}").values()) for r in df["rows_deleted"]])
    return df


def was_deleted(store, customer_id: str) -> list[str]:
    """Ids of the deletions of ``customer_id`` (empty if it was never deleted).

    Each log entry has its own salt, so every entry is hashed again; the log
    is small. Use it to warn before loading a deleted customer back from an
    old export.
    """
    cur = store.con.cursor()
    try:
        rows = cur.execute("SELECT deletion_id, customer_hash FROM deletion_log ORDER BY deleted_at").fetchall()
    finally:
        cur.close()
    found = []
    for deletion_id, stored in rows:
        try:
            scheme, salt_hex, _ = stored.split("$")
            if scheme == HASH_SCHEME and hmac.compare_digest(
                    hash_customer_id(customer_id, bytes.fromhex(salt_hex)), stored):
                found.append(deletion_id)
        except (AttributeError, ValueError):
            continue
    return found
