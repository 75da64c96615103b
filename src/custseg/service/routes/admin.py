"""Admin endpoints: API keys (list, create, revoke) and deleting a customer (right to be forgotten).

Every write runs on the service's writer thread, inside its transaction (see
``custseg.service.queries_more.run_on_writer``).
"""

from __future__ import annotations

from fastapi import APIRouter

from custseg.service import queries_more as q
from custseg.service.auth import AdminKey
from custseg.service.context import ServiceDep
from custseg.service.schemas_more import ApiKey, CreatedKey, Deletion, KeyRequest, RevokedKey

router = APIRouter(tags=["admin"])


@router.get("/keys", response_model=list[ApiKey], summary="API keys (no secrets)")
def list_keys(service: ServiceDep, key: AdminKey) -> list[dict]:
    """Every key, newest first: id, name, scope, creation and revocation times, status. Never a
    secret or a hash."""
    with service.readers.cursor() as cur:
        return q.keys(cur, service)


@router.post("/keys", response_model=CreatedKey, status_code=201, summary="Create an API key")
def create_key(body: KeyRequest, service: ServiceDep, key: AdminKey) -> dict:
    """A new key of `scope`. The answer holds the token, `csk_<key_id>_<secret>`, **once**: the store
    keeps only a salted hash of the secret, so a lost token can only be revoked and replaced."""
    with q.http_errors():
        return q.create_key(service, body.scope, body.name)


@router.delete("/keys/{key_id}", response_model=RevokedKey, summary="Revoke an API key",
               responses={404: {"description": "Unknown key id."}})
def revoke_key(key_id: str, service: ServiceDep, key: AdminKey) -> dict:
    """The key's token is refused from now on (401). Its row is kept with `revoked_at`; revoking a
    revoked key changes nothing (`revoked_now` false)."""
    with q.http_errors():
        return q.revoke_key(service, key_id)


@router.delete("/customers/{customer_id}", response_model=Deletion, summary="Delete a customer (right to be forgotten)",
               responses={404: {"description": "No table has a row with this customer id; nothing was deleted."}})
def delete_customer(customer_id: str, service: ServiceDep, key: AdminKey) -> dict:
    """Every row about the customer, in every table (`custseg privacy delete`, see docs/security.md),
    in one transaction on the writer, and a `deletion_log` entry with a salted hash of the id (never the
    id), the time, the rows removed per table and the id of the key that asked."""
    with q.http_errors():
        return q.delete_customer(service, customer_id, requested_by=key.key_id)
