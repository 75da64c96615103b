"""API keys, scopes and request guards of the live service.

A key is a token ``csk_<key_id>_<secret>``: ``key_id`` is public (16 hex
digits, shown by ``custseg keys list`` and written to logs), ``secret`` is
``secrets.token_urlsafe(32)`` (256 random bits) and is shown once, when the key
is created. The store keeps only ``hmac-sha256$<salt>$<digest>``, an HMAC of the
secret keyed with a random per-key salt (see docs/security.md for why a fast
keyed hash, and not a slow password hash, is the right tool for random tokens).

Scopes are ordered: ``read`` < ``write`` < ``admin``; a key may do everything
its scope and the scopes below it allow.

The FastAPI pieces are :func:`require` (a dependency per scope, reading
``Authorization: Bearer <token>``) and :class:`BodyLimitMiddleware` /
:func:`limit_body` (413 for request bodies above a size).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import pandas as pd
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SCOPES: tuple[str, ...] = ("read", "write", "admin")
TOKEN_PREFIX = "csk_"
HASH_SCHEME = "hmac-sha256"

_KEY_ID = re.compile(r"[0-9a-f]{16}")
_MAX_TOKEN_CHARS = 200  # a real token is 64 characters; longer input is refused before hashing
_MAX_NAME_CHARS = 200
_DUMMY_SALT = bytes(16)  # hashed against when the key id is unknown, so both paths cost the same

# Verified tokens, per Store object: sha256(token) -> (KeyInfo, monotonic expiry). A DuckDB lookup
# costs ~0.4 ms; a cache hit costs a few microseconds. Only successes are cached; revoke_key drops
# the key's entries at once, a revocation made by another process counts after at most the TTL.
CACHE_TTL_SECONDS = 30.0
_CACHE_MAX_ENTRIES = 10_000
_caches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class KeyInfo:
    """The public facts of a verified key; what a guarded route receives.

    Parameters
    ----------
    key_id : str
        Public id of the key (16 hex digits).
    name : str or None
        The label given at creation.
    scope : str
        ``read``, ``write`` or ``admin``.
    """

    key_id: str
    name: str | None
    scope: str

    def allows(self, needed: str) -> bool:
        """Whether this key's scope includes scope ``needed``."""
        return scope_allows(self.scope, needed)


def _check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise ValueError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
    return scope


def scope_allows(granted: str, needed: str) -> bool:
    """Whether a key of scope ``granted`` may do what needs scope ``needed``.

    Parameters
    ----------
    granted, needed : str
        Scopes among ``read``, ``write``, ``admin``.

    Returns
    -------
    bool
        True when ``granted`` ranks at or above ``needed``.

    Examples
    --------
    >>> scope_allows("write", "read"), scope_allows("read", "write")
    (True, False)
    """
    return SCOPES.index(_check_scope(granted)) >= SCOPES.index(_check_scope(needed))


# -- hashing -------------------------------------------------------------------------
def _digest(salt: bytes, secret: str) -> bytes:
    return hmac.new(salt, secret.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()


def _hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    return f"{HASH_SCHEME}${salt.hex()}${_digest(salt, secret).hex()}"


def _secret_matches(stored: str, secret: str) -> bool:
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
        salt, expected = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
    except ValueError:
        return False
    if scheme != HASH_SCHEME:
        return False
    return hmac.compare_digest(_digest(salt, secret), expected)


def _parse_token(token: object) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed token, else None."""
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_CHARS or not token.startswith(TOKEN_PREFIX):
        return None
    key_id, sep, secret = token[len(TOKEN_PREFIX):].partition("_")
    if not sep or not secret or not _KEY_ID.fullmatch(key_id):
        return None
    return key_id, secret


# -- the key store -------------------------------------------------------------------
def create_key(store, scope: str, name: str | None = None) -> tuple[str, str]:
    """Create an API key and return ``(key_id, token)``.

    The token is the only copy of the secret: the store keeps a salted HMAC of
    it, so a lost token cannot be recovered, only revoked and replaced.

    Parameters
    ----------
    store : custseg.Store
        The store (opened for writing).
    scope : str
        ``read``, ``write`` or ``admin``.
    name : str, optional
        A label for people (who or what uses the key); at most 200 characters.

    Returns
    -------
    key_id : str
        Public id of the key.
    token : str
        ``csk_<key_id>_<secret>``, to send as ``Authorization: Bearer <token>``.

    Examples
    --------
    >>> from custseg import Store
    >>> with Store(":memory:") as store:
    ...     key_id, token = create_key(store, "read", name="dashboard")
    ...     verify(store, token).scope
    'read'
    """
    _check_scope(scope)
    if name is not None and len(name) > _MAX_NAME_CHARS:
        raise ValueError(f"key name is {len(name)} characters long; at most {_MAX_NAME_CHARS} are allowed")
    while True:
        key_id = secrets.token_hex(8)
        if not store.con.execute("SELECT 1 FROM api_keys WHERE key_id = ?", [key_id]).fetchall():
            break
    secret = secrets.token_urlsafe(32)
    store.con.execute(
        "INSERT INTO api_keys (key_id, name, scope, key_hash, created_at, revoked_at) "
        "VALUES (?, ?, ?, ?, now()::TIMESTAMP, NULL)",
        [key_id, name, scope, _hash_secret(secret)])
    return key_id, f"{TOKEN_PREFIX}{key_id}_{secret}"


def verify(store, token: str) -> KeyInfo | None:
    """The key behind ``token``, or None if the token is malformed, unknown, wrong or revoked.

    The secret is compared in constant time. Reads go through a cursor of
    ``store.con`` so that a guarded request does not wait for the service's
    writer. Cost: one lookup by key id in the small ``api_keys`` table plus
    one HMAC-SHA256, about 0.4 ms (no slow password hash is needed for
    256-bit random secrets; see docs/security.md). Successful verifications
    are then cached per store for ``CACHE_TTL_SECONDS`` (30 s), so later
    requests with the same token cost microseconds; :func:`revoke_key`
    drops the revoked key from the cache at once.

    Parameters
    ----------
    store : custseg.Store
        The store holding ``api_keys``.
    token : str
        The bearer token, ``csk_<key_id>_<secret>``.

    Returns
    -------
    KeyInfo or None
    """
    parsed = _parse_token(token)
    if parsed is None:
        return None
    token_hash = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
    cached = _cache_get(store, token_hash)
    if cached is not None:
        return cached
    key_id, secret = parsed
    cur = store.con.cursor()
    try:
        rows = cur.execute("SELECT name, scope, key_hash, revoked_at FROM api_keys WHERE key_id = ?",
                           [key_id]).fetchall()
    finally:
        cur.close()
    if not rows:
        _digest(_DUMMY_SALT, secret)  # same work as a known key, so timing does not tell ids apart
        return None
    name, scope, key_hash, revoked_at = rows[0]
    if not _secret_matches(key_hash or "", secret) or revoked_at is not None or scope not in SCOPES:
        return None
    info = KeyInfo(key_id=key_id, name=name, scope=scope)
    _cache_put(store, token_hash, info)
    return info


def _cache_get(store, token_hash: bytes) -> KeyInfo | None:
    try:
        entry = _caches.get(store, {}).get(token_hash)
    except TypeError:  # a store object that cannot be weakly referenced: no cache
        return None
    if entry is None or entry[1] < time.monotonic():
        return None
    return entry[0]


def _cache_put(store, token_hash: bytes, info: KeyInfo) -> None:
    with _cache_lock:
        try:
            cache = _caches.setdefault(store, {})
        except TypeError:
            return
        if len(cache) >= _CACHE_MAX_ENTRIES:
            cache.clear()
        cache[token_hash] = (info, time.monotonic() + CACHE_TTL_SECONDS)


def clear_cache(key_id: str | None = None) -> None:
    """Forget cached verifications: of key ``key_id`` only, or all of them.

    :func:`revoke_key` calls this for the key it revokes; call it after
    changing ``api_keys`` by other means.
    """
    with _cache_lock:
        for cache in list(_caches.values()):
            if key_id is None:
                cache.clear()
            else:
                for h in [h for h, (info, _) in cache.items() if info.key_id == key_id]:
                    del cache[h]


def revoke_key(store, key_id: str) -> bool:
    """Revoke key ``key_id``: its token is refused from now on.

    Parameters
    ----------
    store : custseg.Store
        The store (opened for writing).
    key_id : str
        Public id of the key.

    Returns
    -------
    bool
        True if the key was revoked now, False if it was already revoked
        (its first revocation time is kept).

    Raises
    ------
    ValueError
        When no key has this id.
    """
    rows = store.con.execute("SELECT revoked_at FROM api_keys WHERE key_id = ?", [key_id]).fetchall()
    if not rows:
        raise ValueError(f"no API key {key_id!r}; `custseg keys list` shows the key ids")
    if rows[0][0] is not None:
        clear_cache(key_id)
        return False
    store.con.execute("UPDATE api_keys SET revoked_at = now()::TIMESTAMP WHERE key_id = ?", [key_id])
    clear_cache(key_id)
    return True


def list_keys(store) -> pd.DataFrame:
    """Every key, newest first, without secrets or hashes.

    Returns
    -------
    pandas.DataFrame
        Columns ``key_id``, ``name``, ``scope``, ``created_at``, ``revoked_at``
        and ``status`` (``active`` or ``revoked``).
    """
    cur = store.con.cursor()
    try:
        return cur.execute(
            "SELECT key_id, name, scope, created_at, revoked_at, "
            "CASE WHEN revoked_at IS NULL THEN 'active' ELSE 'revoked' END AS status "
            "FROM api_keys ORDER BY created_at DESC, key_id").df()
    finally:
        cur.close()


# -- FastAPI guards ------------------------------------------------------------------
_bearer = HTTPBearer(auto_error=False, scheme_name="apiKey",
                     description="An API key from `custseg keys create`: `Authorization: Bearer csk_...`.")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def _make_guard(needed: str) -> Callable[..., KeyInfo]:
    def guard(request: Request,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> KeyInfo:
        if credentials is None:
            raise _unauthorized("missing API key: send the header `Authorization: Bearer <token>`")
        store = getattr(request.app.state, "store", None)
        if store is None:
            raise RuntimeError("the app has no store: set app.state.store to a custseg.Store")
        info = verify(store, credentials.credentials)
        if info is None:
            raise _unauthorized("invalid or revoked API key")
        if not info.allows(needed):
            raise HTTPException(
                status_code=403,
                detail=f"API key {info.key_id} has scope {info.scope!r}; this needs {needed!r} or higher",
                headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'})
        request.state.api_key = info
        return info

    guard.__name__ = f"require_{needed}"
    guard.__qualname__ = guard.__name__
    return guard


_GUARDS: dict[str, Callable[..., KeyInfo]] = {s: _make_guard(s) for s in SCOPES}


def require(scope: str) -> Callable[..., KeyInfo]:
    """FastAPI dependency that admits requests carrying a key of ``scope`` or higher.

    It reads ``Authorization: Bearer <token>`` and verifies the token against
    ``request.app.state.store``. A missing, malformed, unknown or revoked token
    gives 401 with ``WWW-Authenticate: Bearer``; a valid key of a lower scope
    gives 403. Both have a JSON body ``{"detail": "..."}``. On success the
    route gets the :class:`KeyInfo`, also kept as ``request.state.api_key``.

    The same function object is returned for the same scope, so tests can
    replace it with ``app.dependency_overrides[require("write")] = ...``.

    Parameters
    ----------
    scope : str
        ``read``, ``write`` or ``admin``.

    Returns
    -------
    callable
        The dependency, for ``Depends(...)`` or the aliases ``ReadKey``,
        ``WriteKey``, ``AdminKey``.

    Examples
    --------
    >>> from fastapi import FastAPI
    >>> app = FastAPI()
    >>> @app.get("/v1/segments")
    ... def segments(key: ReadKey) -> dict:
    ...     return {"key": key.key_id}
    """
    return _GUARDS[_check_scope(scope)]


ReadKey = Annotated[KeyInfo, Depends(require("read"))]
WriteKey = Annotated[KeyInfo, Depends(require("write"))]
AdminKey = Annotated[KeyInfo, Depends(require("admin"))]


# -- request size --------------------------------------------------------------------
class BodyLimitMiddleware:
    """ASGI middleware answering 413 to request bodies above ``max_bytes``.

    A ``Content-Length`` above the limit is refused before the app runs; a
    body without one (chunked) is counted as it streams, and once the count
    passes the limit the client gets 413 and the app sees a disconnect. The
    413 body is JSON like every other error: ``{"detail": "..."}``.

    Parameters
    ----------
    app : ASGI app
        The app to wrap.
    max_bytes : int
        Largest accepted body, in bytes.
    """

    def __init__(self, app: ASGIApp, max_bytes: int):
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError(f"max_bytes must be a non-negative integer, got {max_bytes!r}")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length == -1:
            await _send_json(send, 400, "the Content-Length header is not a non-negative integer")
            return
        if length is not None and length > self.max_bytes:
            await _send_json(send, 413, f"request body is {length:,} bytes; at most {self.max_bytes:,} are accepted")
            return

        state = {"received": 0, "started": False, "refused": False}

        async def limited_receive() -> Message:
            if state["refused"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_bytes:
                    state["refused"] = True
                    if not state["started"]:
                        state["started"] = True
                        await _send_json(send, 413, f"request body is larger than {self.max_bytes:,} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if state["refused"]:
                return  # the 413 is already out; whatever the app answers to the disconnect is dropped
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)


def limit_body(max_bytes: int) -> Middleware:
    """:class:`BodyLimitMiddleware` ready for ``FastAPI(middleware=[limit_body(1 << 20)])``.

    ``app.add_middleware(BodyLimitMiddleware, max_bytes=...)`` does the same on
    an existing app.

    Parameters
    ----------
    max_bytes : int
        Largest accepted body, in bytes.

    Returns
    -------
    starlette.middleware.Middleware
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise ValueError(f"max_bytes must be a non-negative integer, got {max_bytes!r}")
    return Middleware(BodyLimitMiddleware, max_bytes=max_bytes)


def _content_length(scope: Scope) -> int | None:
    """The declared body length; None if absent, -1 if not a number."""
    values = [v for k, v in scope.get("headers", []) if k.lower() == b"content-length"]
    if not values:
        return None
    if len(set(values)) > 1 or not values[0].isdigit():
        return -1
    return int(values[0])


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json"),
                                          (b"content-length", str(len(body)).encode())]
    if status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = [
    "CACHE_TTL_SECONDS",
    "HASH_SCHEME",
    "SCOPES",
    "TOKEN_PREFIX",
    "AdminKey",
    "BodyLimitMiddleware",
    "KeyInfo",
    "ReadKey",
    "WriteKey",
    "clear_cache",
    "create_key",
    "limit_body",
    "list_keys",
    "require",
    "revoke_key",
    "scope_allows",
    "verify",
]
