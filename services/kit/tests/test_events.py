"""The envelope: what goes out is what comes back, and a malformed message is named as such."""

import uuid

import pytest
from google.protobuf.wrappers_pb2 import Int64Value, StringValue

from maille.events.v1.envelope_pb2 import Envelope
from maille_kit.events import MalformedEvent, decode, make_envelope, new_event_id


def test_round_trip() -> None:
    envelope = make_envelope(
        type="catalog.resource.published.v1", tenant="ac-lyon", source="catalog", payload=StringValue(value="ark:/1")
    )
    event = decode(envelope.SerializeToString())
    assert (event.id, event.type, event.tenant, event.source) == (
        envelope.id,
        "catalog.resource.published.v1",
        "ac-lyon",
        "catalog",
    )
    assert event.unpack(StringValue).value == "ark:/1"
    with pytest.raises(MalformedEvent, match="expected google.protobuf.Int64Value"):
        event.unpack(Int64Value)


def test_ids_are_uuid7_and_ordered() -> None:
    ids = [new_event_id() for _ in range(2000)]
    assert len(set(ids)) == 2000
    assert all(uuid.UUID(i).version == 7 for i in ids)
    # Milliseconds lead: ids made in a later millisecond sort after.
    assert ids[0][:13] <= ids[-1][:13]


def test_bad_type_refused() -> None:
    with pytest.raises(ValueError, match="not of the form"):
        make_envelope(type="PersonUpdated", tenant="t", source="identity", payload=StringValue())


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xff\xff not protobuf", "not a maille.events.v1.Envelope"),
        (Envelope(id="x", type="a.b.c.v1").SerializeToString(), "envelope lacks tenant, source, time, payload"),
        (b"", "envelope lacks id, type"),
    ],
)
def test_malformed_named(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedEvent, match=reason):
        decode(data)


def test_wrong_type_in_envelope_named() -> None:
    envelope = make_envelope(type="a.b.c.v1", tenant="t", source="s", payload=StringValue())
    envelope.type = "not a type"
    with pytest.raises(MalformedEvent, match="'not a type' is not of the form"):
        decode(envelope.SerializeToString())
