"""API keys, scope guards, the body limit, the `custseg keys` commands, and a bounded fuzz run.

`fuzz_app` is the schemathesis set-up for the service: the full app's tests can
import it (`from test_service_auth import fuzz_app`) and run it with a key of
each scope.
"""

from __future__ import annotations

import hashlib
import time

import hypothesis
import pytest
import schemathesis
import typer
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from pydantic import BaseModel, Field
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from typer.testing import CliRunner

from custseg import Store
from custseg.cli.keys_cmd import register
from custseg.service import auth
from custseg.service.auth import (
    AdminKey,
    BodyLimitMiddleware,
    KeyInfo,
    ReadKey,
    WriteKey,
    create_key,
    limit_body,
    list_keys,
    require,
    revoke_key,
    scope_allows,
    verify,
)

# -- helpers reusable by the service's own tests --------------------------------------------


def fuzz_app(app, headers: dict[str, str] | None = None, *, max_examples: int = 20,
             modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)) -> int:
    """Fuzz every operation of ``app``'s OpenAPI schema with schemathesis; return the cases sent.

    Each case must get a non-5xx answer whose body has no Python traceback.
    Bounded and deterministic: ``max_examples`` cases per operation and mode,
    derandomized, no example database, no shrinking past the first failure.
    """
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    sent = 0
    settings = hypothesis.settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                                   phases=[Phase.explicit, Phase.generate],
                                   suppress_health_check=list(HealthCheck))
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in modes:
            @settings
            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                nonlocal sent
                response = case.call_and_validate(headers=headers, checks=[not_a_server_error])
                sent += 1
                assert "Traceback" not in response.text, f"{case.method} {case.path}: {response.text[:300]}"

            run()
    return sent


class Thing(BaseModel):
    name: str = Field(max_length=50)
    quantity: int = Field(ge=0, le=1000)


def make_app(store: Store, max_bytes: int = 1024) -> FastAPI:
    """A tiny app guarded like the service: read, write and admin routes over ``store``."""
    app = FastAPI(middleware=[limit_body(max_bytes)])
    app.state.store = store
    things: dict[int, Thing] = {}

    @app.get("/v1/things")
    def list_things(key: ReadKey) -> dict:
        return {"things": len(things), "key_id": key.key_id}

    @app.post("/v1/things", status_code=201)
    def add_thing(thing: Thing, key: WriteKey) -> dict:
        things[len(things) + 1] = thing
        return {"id": len(things)}

    @app.delete("/v1/things/{thing_id}")
    def delete_thing(thing_id: int, key: AdminKey) -> dict:
        return {"deleted": things.pop(thing_id, None) is not None}

    @app.post("/v1/raw")
    async def raw(request: Request, key: WriteKey) -> dict:
        return {"bytes": len(await request.body())}

    return app


@pytest.fixture
def keys(store) -> dict[str, str]:
    """A token of each scope in ``store``."""
    return {scope: create_key(store, scope, name=f"{scope} key")[1] for scope in auth.SCOPES}


@pytest.fixture
def client(store) -> TestClient:
    return TestClient(make_app(store), raise_server_exceptions=False)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- keys ------------------------------------------------------------------------------------


def test_token_format_and_verify(store):
    key_id, token = create_key(store, "write", name="crm sync")
    prefix, kid, secret = token.split("_", 2)
    assert (prefix, kid) == ("csk", key_id)
    assert len(key_id) == 16 and len(secret) >= 43  # token_urlsafe(32): 256 bits
    assert verify(store, token) == KeyInfo(key_id=key_id, name="crm sync", scope="write")


def test_secret_is_not_stored(store):
    _, token = create_key(store, "admin")
    secret = token.split("_", 2)[2]
    rows = store.con.execute("SELECT * FROM api_keys").fetchall()
    dumped = repr(rows)
    assert secret not in dumped and token not in dumped
    assert secret not in repr(list_keys(store).to_dict("records"))
    (key_hash,) = store.con.execute("SELECT key_hash FROM api_keys").fetchall()[0]
    scheme, salt, digest = key_hash.split("$")
    assert scheme == "hmac-sha256" and len(salt) == 32 and len(digest) == 64
    assert digest != hashlib.sha256(secret.encode()).hexdigest()  # salted, not a bare hash


def test_same_secret_hashes_differently():
    assert auth._hash_secret("s") != auth._hash_secret("s")
    assert auth._secret_matches(auth._hash_secret("s"), "s")
    assert not auth._secret_matches(auth._hash_secret("s"), "t")


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret
    lambda t: t.replace("csk_", "csx_"),  # wrong prefix
    lambda t: t.split("_", 2)[0] + "_" + t.split("_", 2)[1],  # no secret
    lambda t: "csk_" + "0" * 16 + "_" + t.split("_", 2)[2],  # unknown key id
    lambda t: t + "x" * 300,  # too long
    lambda t: "",
    lambda t: "csk__",
    lambda t: "csk_zz" + t[6:],  # key id not hex
    lambda t: t.replace("_", "é"),
    lambda t: None,
])
def test_wrong_and_garbled_tokens_fail(store, mangle):
    _, token = create_key(store, "read")
    assert verify(store, token) is not None
    assert verify(store, mangle(token)) is None


def test_revoked_key_is_refused(store):
    key_id, token = create_key(store, "admin")
    other_id, other = create_key(store, "read")
    assert verify(store, token) is not None  # now cached
    assert revoke_key(store, key_id) is True
    assert verify(store, token) is None
    assert revoke_key(store, key_id) is False
    assert verify(store, other).key_id == other_id
    status = dict(list_keys(store)[["key_id", "status"]].itertuples(index=False))
    assert status == {key_id: "revoked", other_id: "active"}
    with pytest.raises(ValueError, match="no API key 'nope'"):
        revoke_key(store, "nope")


def test_cache_is_per_store(tmp_path):
    with Store(tmp_path / "a.duckdb") as a, Store(tmp_path / "b.duckdb") as b:
        _, token = create_key(a, "read")
        assert verify(a, token) is not None
        assert verify(b, token) is None


def test_cached_verification_is_fast(store):
    _, token = create_key(store, "read")
    verify(store, token)
    t0 = time.perf_counter()
    for _ in range(1000):
        assert verify(store, token) is not None
    assert (time.perf_counter() - t0) / 1000 < 2e-4  # a cache hit is microseconds, a lookup ~0.4 ms


@pytest.mark.parametrize(("granted", "needed", "ok"), [
    ("read", "read", True), ("read", "write", False), ("read", "admin", False),
    ("write", "read", True), ("write", "write", True), ("write", "admin", False),
    ("admin", "read", True), ("admin", "write", True), ("admin", "admin", True),
])
def test_scope_hierarchy(granted, needed, ok):
    assert scope_allows(granted, needed) is ok
    assert KeyInfo("0" * 16, None, granted).allows(needed) is ok


def test_bad_scope_and_name(store):
    with pytest.raises(ValueError, match="scope 'owner' is not one of read, write, admin"):
        create_key(store, "owner")
    with pytest.raises(ValueError, match="scope 'root'"):
        require("root")
    with pytest.raises(ValueError, match="at most 200"):
        create_key(store, "read", name="x" * 201)
    assert store.count("api_keys") == 0


def test_require_returns_one_dependency_per_scope():
    assert require("read") is require("read")
    assert require("read") is not require("write")


# -- the guards over HTTP --------------------------------------------------------------------

ROUTES = [("get", "/v1/things", None, "read"),
          ("post", "/v1/things", {"name": "a", "quantity": 1}, "write"),
          ("delete", "/v1/things/1", None, "admin")]


def _call(client, method, path, body, headers=None):
    return client.request(method.upper(), path, json=body, headers=headers or {})


def _no_trace(response):
    assert "Traceback" not in response.text and 'File "' not in response.text


@pytest.mark.parametrize(("method", "path", "body", "needed"), ROUTES)
@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer csk_0123456789abcdef_nope"}, {"Authorization": "Bearer " + "x" * 5000},
], ids=["none", "empty", "basic", "unknown", "huge"])
def test_unauthenticated_gets_401(client, keys, method, path, body, needed, headers):
    r = _call(client, method, path, body, headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.headers["content-type"] == "application/json"
    assert set(r.json()) == {"detail"} and "API key" in r.json()["detail"]
    _no_trace(r)


@pytest.mark.parametrize(("method", "path", "body", "needed"), ROUTES)
def test_scopes_over_http(client, keys, method, path, body, needed):
    rank = auth.SCOPES.index(needed)
    for scope, token in keys.items():
        r = _call(client, method, path, body, bearer(token))
        _no_trace(r)
        if auth.SCOPES.index(scope) >= rank:
            assert r.status_code in (200, 201), r.text
        else:
            assert r.status_code == 403
            assert r.json() == {"detail": f"API key {token.split('_')[1]} has scope {scope!r}; "
                                          f"this needs {needed!r} or higher"}
            assert 'error="insufficient_scope"' in r.headers["www-authenticate"]


def test_route_gets_the_key(client, keys):
    r = client.get("/v1/things", headers=bearer(keys["read"]))
    assert r.json() == {"things": 0, "key_id": keys["read"].split("_")[1]}


def test_revoked_key_gets_401_over_http(store, client):
    key_id, token = create_key(store, "admin")
    assert client.get("/v1/things", headers=bearer(token)).status_code == 200
    revoke_key(store, key_id)
    r = client.get("/v1/things", headers=bearer(token))
    assert r.status_code == 401 and r.json() == {"detail": "invalid or revoked API key"}


def test_scheme_is_case_insensitive(client, keys):
    assert client.get("/v1/things", headers={"Authorization": f"bearer {keys['read']}"}).status_code == 200


def test_openapi_declares_bearer_security(client):
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["apiKey"] == {
        "type": "http", "scheme": "bearer",
        "description": "An API key from `custseg keys create`: `Authorization: Bearer csk_...`."}
    assert spec["paths"]["/v1/things"]["get"]["security"] == [{"apiKey": []}]


def test_app_without_store_is_a_plain_500(keys):
    app = make_app(None)
    del app.state.store
    r = TestClient(app, raise_server_exceptions=False).get("/v1/things", headers=bearer(keys["read"]))
    assert r.status_code == 500 and r.text == "Internal Server Error"


# -- body limit ------------------------------------------------------------------------------


def test_body_within_limit_passes(client, keys):
    r = client.post("/v1/raw", content=b"x" * 1024, headers=bearer(keys["write"]))
    assert r.status_code == 200 and r.json() == {"bytes": 1024}


def test_large_body_by_content_length_gets_413(client, keys):
    r = client.post("/v1/raw", content=b"x" * 1025, headers=bearer(keys["write"]))
    assert r.status_code == 413
    assert r.json() == {"detail": "request body is 1,025 bytes; at most 1,024 are accepted"}


def test_large_body_refused_before_auth(client):
    r = client.post("/v1/things", content=b"{" + b" " * 5000 + b"}", headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_large_streamed_body_gets_413(client, keys):
    def chunks():
        for _ in range(10):
            yield b"y" * 300

    r = client.post("/v1/raw", content=chunks(), headers=bearer(keys["write"]))
    assert "content-length" not in r.request.headers  # chunked: counted as it streams
    assert r.status_code == 413
    assert r.json() == {"detail": "request body is larger than 1,024 bytes"}


def test_small_streamed_body_passes(client, keys):
    r = client.post("/v1/raw", content=iter([b"a" * 500, b"b" * 500]), headers=bearer(keys["write"]))
    assert r.status_code == 200 and r.json() == {"bytes": 1000}


def test_bad_content_length_gets_400(store):
    async def app(scope, receive, send):  # pragma: no cover - never reached
        raise AssertionError

    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    import asyncio

    mw = BodyLimitMiddleware(app, max_bytes=10)
    asyncio.run(mw({"type": "http", "headers": [(b"content-length", b"-5")]}, receive, send))
    assert sent[0]["status"] == 400


@pytest.mark.parametrize("bad", [-1, 1.5, "10", True])
def test_limit_body_validates(bad):
    with pytest.raises(ValueError, match="max_bytes"):
        limit_body(bad)


def test_add_middleware_form(store, keys):
    app = make_app(store, max_bytes=10_000)
    app.add_middleware(BodyLimitMiddleware, max_bytes=100)
    c = TestClient(app)
    assert c.post("/v1/raw", content=b"x" * 101, headers=bearer(keys["write"])).status_code == 413
    assert c.post("/v1/raw", content=b"x" * 100, headers=bearer(keys["write"])).status_code == 200


# -- fuzzing ---------------------------------------------------------------------------------


def test_fuzz_finds_no_server_error(store, keys):
    app = make_app(store)
    t0 = time.perf_counter()
    sent = 0
    for headers in (None, bearer(keys["read"]), bearer(keys["admin"])):
        sent += fuzz_app(app, headers, max_examples=10)
    assert sent > 50
    assert time.perf_counter() - t0 < 30


@hypothesis.settings(max_examples=100, deadline=None, derandomize=True, database=None)
@hypothesis.given(token=st.text(max_size=120))
def test_verify_never_raises(token):
    with Store(":memory:") as s:
        assert verify(s, token) is None


# -- CLI -------------------------------------------------------------------------------------


@pytest.fixture
def cli():
    app = typer.Typer()
    register(app)
    return app


def test_cli_keys(cli, tmp_path):
    db = str(tmp_path / "k.duckdb")
    runner = CliRunner()
    r = runner.invoke(cli, ["keys", "list", "--db", db])
    assert r.exit_code == 1 and "no store at" in r.output
    r = runner.invoke(cli, ["keys", "create", "--scope", "write", "--name", "crm sync", "--db", db])
    assert r.exit_code == 0, r.output
    token = r.stdout.strip()
    assert token.startswith("csk_") and "\n" not in token
    assert "shown only this once" in r.stderr and "scope write" in r.stderr
    key_id = token.split("_")[1]
    with Store(db) as s:
        assert verify(s, token) == KeyInfo(key_id, "crm sync", "write")

    r = runner.invoke(cli, ["keys", "list", "--db", db])
    assert r.exit_code == 0, r.output
    assert key_id in r.output and "crm sync" in r.output and "active" in r.output
    assert token.split("_", 2)[2] not in r.output

    r = runner.invoke(cli, ["keys", "revoke", key_id, "--db", db])
    assert r.exit_code == 0 and f"revoked API key {key_id}" in r.output
    r = runner.invoke(cli, ["keys", "revoke", key_id, "--db", db])
    assert r.exit_code == 0 and "already revoked" in r.output
    with Store(db) as s:
        assert verify(s, token) is None

    r = runner.invoke(cli, ["keys", "revoke", "nope", "--db", db])
    assert r.exit_code == 1 and "no API key 'nope'" in r.output
    r = runner.invoke(cli, ["keys", "create", "--scope", "root", "--db", db])
    assert r.exit_code == 1 and "scope 'root' is not one of read, write, admin" in r.output
