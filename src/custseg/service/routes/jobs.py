"""``POST /v1/jobs``: run a custseg batch command inside the service (see :mod:`custseg.service.jobs`)."""

from __future__ import annotations

import asyncio
import threading
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from custseg.service.jobs import JobError, JobRunner

router = APIRouter(tags=["jobs"])

_bearer = HTTPBearer(auto_error=False, scheme_name="jobToken",
                     description="The job token of the store's service file (`<db>.service.json`), "
                                 "or an admin API key.")
_runner_lock = threading.Lock()


class JobRequest(BaseModel):
    """A custseg command line, as the CLI sends it when the store is held by this service."""

    model_config = ConfigDict(extra="forbid")

    argv: list[Annotated[str, Field(max_length=10_000)]] = Field(
        min_length=1, max_length=1_000, description="The arguments after `custseg`, e.g. `[\"segment\", \"rfm\"]`.")
    cwd: str = Field(max_length=4_096, description="The client's working directory (absolute): relative paths "
                                                   "in `argv` are resolved against it.")
    db_env: str | None = Field(None, max_length=4_096,
                               description="The client's `CUSTSEG_DB` (the default `--db`), if set.")
    width: int | None = Field(None, ge=20, le=1_000, description="Width of the output (the client's terminal).")


class JobResult(BaseModel):
    """What the command did: its exit code and outputs, as the client prints them."""

    exit_code: int
    stdout: str
    stderr: str
    duration_ms: float
    writer_paused_ms: float | None = Field(
        description="How long events waited: the writer was paused from the command's opening the store for "
                    "writing to its end (null: the command only read).")
    reloaded: bool = Field(description="Whether the live state was rebuilt after the command (it wrote).")
    live_runs: list[str] = Field(description="The live segmentation runs after the job.")


def runner_for(request: Request) -> JobRunner:
    """The app's job runner (``app.state.jobs``, set by ``custseg serve`` with the job token); made on first use
    without a token otherwise (admin keys only)."""
    state = request.app.state
    with _runner_lock:
        runner = getattr(state, "jobs", None)
        if runner is None:
            service = state.service
            runner = state.jobs = JobRunner(service, service.store.path)
    return runner


def _authorize(request: Request, runner: JobRunner, credentials: HTTPAuthorizationCredentials | None) -> None:
    if credentials is None:
        raise HTTPException(401, detail="missing token: send `Authorization: Bearer <job token or admin API key>`",
                            headers={"WWW-Authenticate": "Bearer"})
    token = credentials.credentials
    if runner.token_matches(token):
        return
    try:
        from custseg.service.auth import verify
    except ImportError:  # pragma: no cover - only before auth.py exists
        verify = None
    info = verify(request.app.state.store, token) if verify is not None else None
    if info is None:
        raise HTTPException(401, detail="invalid job token or API key", headers={"WWW-Authenticate": "Bearer"})
    if not info.allows("admin"):
        raise HTTPException(403, detail=f"API key {info.key_id} has scope {info.scope!r}; jobs need the job token "
                                        "or an 'admin' key",
                            headers={"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="admin"'})


@router.post("/jobs", response_model=JobResult, summary="Run a batch command inside the service")
async def post_job(body: JobRequest, request: Request,
                   credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> dict:
    """Run a custseg CLI command (`argv`, from the working directory `cwd`) in the service's process, where it
    can open the store the service holds. Jobs run one at a time; a command that writes pauses the event
    writer until it ends (events queue), and the live state is rebuilt after it. Authorised by the job token of
    the service file (`<db>.service.json`) or an admin API key. The CLI uses it by itself when the store is held
    by `custseg serve`."""
    runner = runner_for(request)
    _authorize(request, runner, credentials)
    try:
        future = runner.submit(body.argv, body.cwd, db_env=body.db_env, width=body.width)
    except JobError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    return await asyncio.wrap_future(future)
