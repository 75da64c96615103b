"""``POST /v1/assign``: a visitor with no history, a few stated answers -> the likely segment.

The model is the store's newest cold-start model (``custseg assign train``), or the newest one
trained on the request's ``run_id``. It is read once through a read cursor and kept on
``service.assign_models`` until a batch command run through the service writes the store. The
service does not train by itself: a store without a model answers 409 with the command to run
(``custseg assign train`` on the same store, which the running service runs for it).
"""

from __future__ import annotations

import threading
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from custseg.assign import AGE_BAND_LABELS, NoModelError, age_band, assign_visitor, load_model
from custseg.service.context import ServiceDep, guard
from custseg.service.schemas import Play

router = APIRouter(tags=["assign"])

AgeBand = Literal[AGE_BAND_LABELS]  # type: ignore[valid-type]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Interest = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]


class AssignRequest(BaseModel):
    """A visitor's stated answers; every one is optional (leave out what was not asked or answered)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"age_band": "25-34", "gender": "female", "country": "FR", "city": "Lyon",
         "interests": ["fashion", "beauty"], "budget": "premium", "acquisition_channel": "social"}]})

    age: int | None = Field(None, ge=18, le=120, description="Age in years (gives the age band).")
    age_band: AgeBand | None = Field(None, description="Age band, as the features band ages.")
    gender: Literal["female", "male", "other", "unknown"] | None = Field(None, description="Stated gender.")
    country: Text | None = Field(None, description="Country: ISO 3166-1 alpha-2 code or name (FR, France, FRA).")
    region: Text | None = Field(None, description="Region, as the store's customer records spell it.")
    city: Text | None = Field(None, description="City; gives the region when `region` is not stated.")
    acquisition_channel: Text | None = Field(
        None, description="How the visitor heard of the shop, in the store's channel names "
                          "(organic, paid_search, social, email, referral, affiliate, marketplace, ...).")
    email_consent: bool | None = Field(None, description="Agrees to receive marketing email.")
    interests: list[Interest] | None = Field(
        None, max_length=10, description="Product categories the visitor is interested in (the catalogue's "
                                         "category names, any case); unknown ones are reported in `notes`.")
    budget: Literal["budget", "mid", "premium"] | None = Field(
        None, description="Price range the visitor shops in (the catalogue's price tiers).")
    run_id: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        None, description="Predict the segments of this run (default: the newest model's run).")
    n_products: int = Field(5, ge=0, le=10, description="Products to recommend.")
    n_alternatives: int = Field(2, ge=0, le=10, description="Next most likely segments to list.")

    @model_validator(mode="after")
    def _age_in_band(self):
        if self.age is not None and self.age_band is not None and age_band(self.age) != self.age_band:
            raise ValueError(f"age {self.age} is not in age band {self.age_band!r}")
        return self


class Alternative(BaseModel):
    segment: str
    probability: float


class Product(BaseModel):
    product_id: str
    product_name: str | None = None
    category: str | None = None
    price_tier: str | None = None
    share: float = Field(description="Share of the segment's customers who bought (or viewed) it.")
    lift: float = Field(description="That share over the share among all customers of the run.")
    basis: Literal["bought", "viewed"] = Field(description="viewed: the segment has no purchases.")


class AssignResult(BaseModel):
    segment: str = Field(description="The most likely segment of customers like this visitor.")
    confidence: float = Field(description="Its probability given the answers.")
    alternatives: list[Alternative] = Field(description="The next most likely segments.")
    products: list[Product] = Field(description="The segment's most bought products.")
    play: Play = Field(description="The playbook's play for the segment.")
    answers_used: dict = Field(description="The answers as the model read them.")
    notes: list[str] = Field(description="Answers left out, and why.")
    model_id: str
    run_id: str
    method: str


_lock = threading.Lock()


def _model(request: Request, service, run_id: str | None):
    # On the service, so that a batch command run through the service (``custseg assign train``)
    # can drop it (custseg.service.jobs).
    cache = getattr(service, "assign_models", None)
    if cache is None:
        with _lock:
            cache = getattr(service, "assign_models", None)
            if cache is None:
                cache = service.assign_models = {}
    if run_id in cache:
        return cache[run_id]
    with _lock:
        if run_id not in cache:
            with service.readers.cursor() as cur:
                cache[run_id] = load_model(cur, run_id=run_id)
        return cache[run_id]


@router.post("/assign", response_model=AssignResult, dependencies=guard("read"),
             summary="Most likely segment of a visitor with no history, from a few stated answers")
def assign(body: AssignRequest, request: Request, service: ServiceDep) -> dict:
    """The segment of customers most like a visitor who stated a few answers (age band, gender,
    location, interests, budget, acquisition channel, email consent), with its probability, the next
    most likely segments, the segment's most bought products and the playbook's play. 409 when the
    store has no cold-start model: run `custseg assign train` on the store (the running service runs it)."""
    try:
        model = _model(request, service, body.run_id)
    except NoModelError as exc:
        raise HTTPException(409, detail=f"{exc} (on the same store: the running service runs the command "
                                        "and uses the new model at once)") from None
    answers = body.model_dump(exclude={"run_id", "n_products", "n_alternatives"}, exclude_none=True)
    try:
        return assign_visitor(model, answers, playbook=service.playbook, n_alternatives=body.n_alternatives,
                              n_products=body.n_products)
    except ValueError as exc:  # the request model already refuses what the model would refuse
        raise HTTPException(422, detail=[{"loc": ["body"], "msg": str(exc), "type": "value_error"}]) from None
