"""How a batch of identity's directory events reads: each person's last state, and what their updates name as changed
(a names-only change needs no look at a service's copy)."""

from __future__ import annotations

from maille.identity.v1 import directory_pb2 as pb
from maille_contracts import PERSON_CREATED, PERSON_DELETED, PERSON_UPDATED
from maille_kit.directory import NAMES, changes
from maille_kit.events import decode, make_envelope


def event(kind, payload, tenant: str = "ac-test"):
    envelope = make_envelope(type=kind, tenant=tenant, source="identity", payload=payload)
    return decode(envelope.SerializeToString())


def person(pid: str, first: str = "Léa") -> pb.Person:
    return pb.Person(id=pid, first_name=first, last_name="Durand")


def test_what_a_batch_names_of_each_person() -> None:
    found = changes(
        [
            event(PERSON_UPDATED, pb.PersonUpdated(person=person("renamed", "Lou"), changed=["first_name"])),
            event(PERSON_UPDATED, pb.PersonUpdated(person=person("renamed", "Luc"), changed=["last_name"])),
            event(PERSON_UPDATED, pb.PersonUpdated(person=person("moved"), changed=["first_name"])),
            event(PERSON_UPDATED, pb.PersonUpdated(person=person("moved"), changed=["group_ids", "profiles"])),
            event(PERSON_UPDATED, pb.PersonUpdated(person=person("unknown"))),  # names nothing: anything may have
            event(PERSON_CREATED, pb.PersonCreated(person=person("new"))),
            event(PERSON_UPDATED, pb.PersonUpdated(person=person("new", "Zoé"), changed=["first_name"])),
            event(PERSON_UPDATED, pb.PersonUpdated(person=person("erased"), changed=["first_name"])),
            event(PERSON_DELETED, pb.PersonDeleted(id="erased", erased=True), tenant="ac-other"),
        ]
    )
    assert found.persons["renamed"].first_name == "Luc" and found.persons["erased"] is None
    assert found.named == {"renamed": {"first_name", "last_name"}, "moved": {"first_name", "group_ids", "profiles"}}
    # created in the batch, or an update naming nothing: never taken for a names-only change
    assert found.changed_only(NAMES) == {"renamed"}
    assert found.changed_only(NAMES | {"group_ids", "profiles"}) == {"renamed", "moved"}
    assert found.erased == {"erased"} and found.tenants["erased"] == "ac-other" and found.tenants["new"] == "ac-test"
