"""``GET /v1/customers/{customer_id}``: one customer's features, segments, value and next actions."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from custseg.service import queries
from custseg.service.context import ServiceDep, guard
from custseg.service.schemas import Customer

router = APIRouter(tags=["customers"])


@router.get("/customers/{customer_id}", response_model=Customer, dependencies=guard("read"),
            summary="A customer: features, segments, CLV, recommendations, plays")
def get_customer(customer_id: str, service: ServiceDep) -> dict:
    """The customer's record and current features (live once an event re-evaluated them), their
    segments in every live segmentation with the playbook's play for each, CLV and P(alive)
    (live from the value run's saved models, else the newest `clv_predictions`), and the newest
    recommendation run's products for them."""
    with service.readers.cursor() as cur:
        found = queries.customer(cur, service, customer_id)
    if found is None:
        raise HTTPException(404, detail=f"no customer {customer_id!r} in the store")
    return found
