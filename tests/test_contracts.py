"""maille_contracts names every contract of proto/ once: each event type with the message its name says, each
message the protos say is published, each request/reply subject with its request and reply."""

import re
from pathlib import Path

import maille_contracts as contracts
from maille_kit.events import EVENT_TYPE

PROTO = Path(__file__).resolve().parents[1] / "proto" / "maille"


def camel(*words: str) -> str:
    return "".join(part.capitalize() for word in words for part in word.split("_"))


def test_each_event_type_carries_the_message_its_name_says() -> None:
    assert contracts.EVENT_TYPES
    for event_type in contracts.EVENT_TYPES:
        assert EVENT_TYPE.match(event_type), event_type
        service, entity, fact, version = event_type.split(".")
        expected = f"maille.{service}.{version}.{camel(entity, fact)}"
        assert event_type.message.DESCRIPTOR.full_name == expected, event_type


def test_every_message_the_protos_publish_is_named() -> None:
    named = {event_type.message.DESCRIPTOR.name for event_type in contracts.EVENT_TYPES}
    published = set()
    for proto in PROTO.rglob("*.proto"):
        published |= set(re.findall(r"^// (\w+) is published\b", proto.read_text(), re.M))
    assert published, "the protos lost their 'is published' comments"
    assert published == named


def test_each_rpc_subject_is_the_one_its_proto_declares() -> None:
    assert contracts.RPCS
    for rpc in contracts.RPCS:
        _, service, *_ = rpc.split(".")
        package = rpc.request.DESCRIPTOR.file.package  # maille.identity.v1
        assert package == f"maille.{service}.v1"
        assert rpc.reply.DESCRIPTOR.file.package == package
        declared = (PROTO.parent / rpc.request.DESCRIPTOR.file.name).read_text()
        assert f"`{rpc}`" in declared, rpc
