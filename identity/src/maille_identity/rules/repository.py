"""Per-structure communication rules set by administrators, kept in `communication_rules`; a structure
without a document follows the defaults."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from maille.identity.v1 import rules_pb2 as pb
from maille_contracts import RULES_CHANGED
from maille_identity.rules.model import ALL, DEFAULT_RULES, Rules
from maille_kit.docstore import Docstore
from maille_kit.versions import check
from maille_kit.work import Work, Works

RULES = "communication_rules"
CLASS_KINDS = ("ELV", "ENS", "TUT", "HT")
Edge = tuple[str, str]


def _check(edges: list[Edge], sources: tuple[str, ...], targets: tuple[str, ...], name: str) -> list[Edge]:
    for source, target in edges:
        if source not in sources or target not in targets:
            raise ValueError(
                f"{name}: edge {source}->{target} is not one of {'/'.join(sources)} -> {'/'.join(targets)}"
            )
    return sorted(set(edges))


class RulesBody(BaseModel):
    """A structure's rules: edges between kinds of group (see rules/model.py)."""

    structure: list[Edge] = Field(description="structure group -> structure group, kinds ELV ENS TUT PERS DIR")
    class_: list[Edge] = Field(alias="class", description="class group -> same class's group, kinds ELV ENS TUT HT")
    class_to_structure: list[Edge] = Field(description="class group -> its structure's group")
    children_write_to_parents: bool = False

    model_config = {"populate_by_name": True}

    @field_validator("structure")
    @classmethod
    def _structure(cls, edges: list[Edge]) -> list[Edge]:
        return _check(edges, ALL, ALL, "structure")

    @field_validator("class_")
    @classmethod
    def _class(cls, edges: list[Edge]) -> list[Edge]:
        return _check(edges, CLASS_KINDS, CLASS_KINDS, "class")

    @field_validator("class_to_structure")
    @classmethod
    def _class_to_structure(cls, edges: list[Edge]) -> list[Edge]:
        return _check(edges, CLASS_KINDS, ALL, "class_to_structure")

    def rules(self) -> Rules:
        return Rules(
            frozenset(self.structure),
            frozenset(self.class_),
            frozenset(self.class_to_structure),
            self.children_write_to_parents,
        )

    @classmethod
    def of(cls, rules: Rules) -> RulesBody:
        return cls(
            structure=sorted(rules.structure),
            class_=sorted(rules.class_),
            class_to_structure=sorted(rules.class_to_structure),
            children_write_to_parents=rules.children_write_to_parents,
        )


DEFAULT_BODY = RulesBody.of(DEFAULT_RULES)


class RulesStore:
    """The overrides of a tenant's structures."""

    def __init__(self, docstore: Docstore, works: Works | None = None) -> None:
        self.works = works  # to change rules (reading needs none)
        self.docstore = docstore
        self.collection = docstore.db[RULES]

    async def overrides(self, tenant: str) -> dict[str, Rules]:
        """UAI -> rules, for the structures that do not follow the defaults."""
        return {doc["uai"]: _from_doc(doc["rules"]).rules() async for doc in self.collection.find({"tenant": tenant})}

    async def get(self, tenant: str, uai: str) -> RulesBody | None:
        return (await self.read(tenant, uai))[0]

    async def read(self, tenant: str, uai: str) -> tuple[RulesBody | None, int]:
        """A structure's own rules (None: the defaults) and their version (0 while they are the defaults)."""
        doc = await self.collection.find_one({"_id": f"{tenant}:{uai}"})
        return (None, 0) if doc is None else (_from_doc(doc["rules"]), int(doc.get("version", 1)))

    async def put(self, tenant: str, uai: str, body: RulesBody, *, by: str, expected_version: int | None = None) -> int:
        """Change a structure's rules, and tell every replica and service (one unit of work); their new version.
        With `expected_version`, only if they are still at that version (PreconditionFailed otherwise)."""
        _, current = await self.read(tenant, uai)
        check(expected_version, current, f"the communication rules of {uai}")
        doc: dict[str, Any] = {
            "_id": f"{tenant}:{uai}",
            "tenant": tenant,
            "uai": uai,
            "rules": _to_doc(body),
            "updated_at": datetime.now(UTC),
            "by": by,
            "version": current + 1,
        }
        await self._commit(self._announced(tenant, uai, reset=False).put(RULES, doc))
        return current + 1

    async def reset(self, tenant: str, uai: str, *, expected_version: int | None = None) -> bool:
        """Back to the defaults (and tell it); whether the structure had rules of its own."""
        _, current = await self.read(tenant, uai)
        check(expected_version, current, f"the communication rules of {uai}")
        if current == 0:
            return False
        await self._commit(self._announced(tenant, uai, reset=True).delete(RULES, {"_id": f"{tenant}:{uai}"}))
        return True

    def _announced(self, tenant: str, uai: str, *, reset: bool) -> Work:
        if self.works is None:
            raise RuntimeError("the rules store was made to read only")
        work = self.works.new()
        work.event(type=RULES_CHANGED, tenant=tenant, payload=pb.RulesChanged(uai=uai, reset=reset))
        return work

    async def _commit(self, work: Work) -> None:
        assert self.works is not None
        await self.works.commit(work)


# Edges are stored as "A>B" strings: a MongoDB-wire store need not support arrays of arrays (FerretDB does not).
EDGE_LISTS = ("structure", "class", "class_to_structure")


def _to_doc(body: RulesBody) -> dict[str, Any]:
    dumped = body.model_dump(by_alias=True)
    return {**dumped, **{name: [f"{a}>{b}" for a, b in dumped[name]] for name in EDGE_LISTS}}


def _from_doc(doc: dict[str, Any]) -> RulesBody:
    return RulesBody.model_validate(
        {**doc, **{name: [tuple(edge.split(">", 1)) for edge in doc[name]] for name in EDGE_LISTS}}
    )
