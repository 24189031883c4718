"""Subscriptions for vendors (role `vendor`): as JSON under `/api/catalog/v1/vendor/subscriptions`, and as the
GAR's abonnement XML under `/api/catalog/v1/abonnements` (PUT creates, POST updates, DELETE, a filtered
listing) so that tooling written for the GAR works against Maille unchanged."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import ValidationError

from maille_catalog.abonnements import BadXml, read_abonnement, read_filters, write_abonnement, write_abonnements
from maille_catalog.api import Subs
from maille_catalog.api.vendor import read_limited
from maille_catalog.schemas import Subscription, SubscriptionChange, SubscriptionIn, SubscriptionPage
from maille_kit.auth import Principal, Vendor
from maille_kit.idempotency import Idempotent
from maille_kit.pages import After, next_cursor
from maille_kit.problems import Problem
from maille_kit.versions import IfMatch, tag

router = APIRouter(prefix="/api/catalog/v1", tags=["subscriptions"])

SubscriptionId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:\-]{1,45}$", description="idAbonnement")]
XML = "application/xml"
XML_MAX_BYTES = 1024 * 1024


def _editor(vendor: Principal) -> str:
    return vendor.client_id or vendor.subject


def as_subscription(doc: dict[str, Any]) -> Subscription:
    return Subscription.model_validate(doc)


# -- JSON -----------------------------------------------------------------------------------------------------


@router.post("/vendor/subscriptions", status_code=201, response_model=Subscription, summary="Create a subscription")
async def create(subscription: SubscriptionIn, vendor: Vendor, _: Idempotent, subs: Subs) -> Subscription:
    return as_subscription(await subs.create(editor=_editor(vendor), subscription=subscription))


@router.get(
    "/vendor/subscriptions",
    response_model=SubscriptionPage,
    summary="The vendor's subscriptions, filtered, a page at a time",
)
async def list_own(
    vendor: Vendor,
    subs: Subs,
    after: After,
    uaiEtab: Annotated[str | None, Query(max_length=8)] = None,
    idRessource: Annotated[str | None, Query(max_length=220)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> SubscriptionPage:
    filters = {k: v for k, v in (("uaiEtab", uaiEtab), ("idRessource", idRessource)) if v}
    docs = await subs.listing(editor=_editor(vendor), filters=filters, after=after, limit=limit + 1)
    return SubscriptionPage(
        abonnements=[as_subscription(d) for d in docs[:limit]], suivant=next_cursor([d["_id"] for d in docs], limit)
    )


@router.get(
    "/vendor/subscriptions/{subscription_id}", response_model=Subscription, summary="One of the vendor's subscriptions"
)
async def read(subscription_id: SubscriptionId, vendor: Vendor, subs: Subs, response: Response) -> Subscription:
    doc = await subs.owned(_editor(vendor), subscription_id)
    tag(response, doc["version"])
    return as_subscription(doc)


@router.put(
    "/vendor/subscriptions/{subscription_id}",
    response_model=Subscription,
    summary="Change a subscription (its schools and start are kept)",
)
async def update(
    subscription_id: SubscriptionId,
    change: SubscriptionChange,
    vendor: Vendor,
    subs: Subs,
    read_version: IfMatch,
    response: Response,
) -> Subscription:
    doc = await subs.update(
        editor=_editor(vendor), subscription_id=subscription_id, change=change, expected_version=read_version
    )
    tag(response, doc["version"])
    return as_subscription(doc)


@router.delete(
    "/vendor/subscriptions/{subscription_id}", status_code=204, summary="Delete a subscription and its assignments"
)
async def delete(subscription_id: SubscriptionId, vendor: Vendor, subs: Subs, read_version: IfMatch) -> Response:
    await subs.delete(editor=_editor(vendor), subscription_id=subscription_id, expected_version=read_version)
    return Response(status_code=204)


# -- the GAR's XML ------------------------------------------------------------------------------------------------


async def _body(request: Request) -> bytes:
    return await read_limited(request, XML_MAX_BYTES, "an abonnement document")


def _model(model: type[SubscriptionChange], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or "abonnement", "message": e["msg"]} for e in exc.errors()
        ]
        fields = ", ".join(sorted({e["field"] for e in errors}))
        raise Problem(422, f"Invalid value for {fields}: {errors[0]['message']}", errors=errors) from None


async def _abonnement(request: Request) -> dict[str, Any]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("application/xml", "text/xml"):
        raise Problem(415, "send the abonnement as application/xml")
    try:
        return read_abonnement(await _body(request))
    except BadXml as exc:
        raise Problem(400, str(exc)) from None


XML_BODY = {
    "requestBody": {
        "required": True,
        "content": {XML: {"schema": {"type": "string", "description": "an <abonnement> document"}}},
    }
}
XML_ANSWER = {"content": {XML: {"schema": {"type": "string"}}}}


@router.put(
    "/abonnements/{subscription_id}",
    status_code=201,
    response_class=Response,
    openapi_extra=XML_BODY,
    responses={201: XML_ANSWER},
    summary="Create a subscription (GAR XML); 409 'existe deja' if it exists",
)
async def xml_create(request: Request, subscription_id: SubscriptionId, vendor: Vendor, subs: Subs) -> Response:
    subscription: SubscriptionIn = _model(SubscriptionIn, await _abonnement(request))
    if subscription.idAbonnement != subscription_id:
        raise Problem(
            422, f"idAbonnement {subscription.idAbonnement!r} is not the subscription of the path ({subscription_id})"
        )
    doc = await subs.create(editor=_editor(vendor), subscription=subscription)
    return Response(write_abonnement(doc), status_code=201, media_type=XML)


@router.post(
    "/abonnements/{subscription_id}",
    response_class=Response,
    openapi_extra=XML_BODY,
    responses={200: XML_ANSWER},
    summary="Update a subscription (GAR XML: no uaiEtab, the start kept)",
)
async def xml_update(request: Request, subscription_id: SubscriptionId, vendor: Vendor, subs: Subs) -> Response:
    data = await _abonnement(request)
    if "uaiEtab" in data:
        raise Problem(
            422, "an update carries no uaiEtab: a subscription's schools are set at its creation", field="uaiEtab"
        )
    change: SubscriptionChange = _model(SubscriptionChange, data)
    doc = await subs.update(editor=_editor(vendor), subscription_id=subscription_id, change=change)
    return Response(write_abonnement(doc), media_type=XML)


@router.delete("/abonnements/{subscription_id}", status_code=204, summary="Delete a subscription (GAR)")
async def xml_delete(subscription_id: SubscriptionId, vendor: Vendor, subs: Subs) -> Response:
    return await delete(subscription_id, vendor, subs, None)


@router.get(
    "/abonnements",
    response_class=Response,
    responses={200: XML_ANSWER},
    summary="The vendor's subscriptions (GAR XML), from `debut` to `fin`, filtered by a <filtres> body",
)
async def xml_list(
    request: Request,
    vendor: Vendor,
    subs: Subs,
    debut: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    fin: Annotated[int, Query(ge=0, le=1_000_000)] = 5000,
) -> Response:
    if fin < debut or fin - debut > 10_000:
        raise Problem(422, "fin must be at least debut, and at most 10000 after it", field="fin")
    try:
        filters = read_filters(await _body(request))
    except BadXml as exc:
        raise Problem(400, str(exc)) from None
    docs = await subs.listing(editor=_editor(vendor), filters=filters, offset=debut, limit=fin - debut)
    return Response(write_abonnements(docs), media_type=XML)
