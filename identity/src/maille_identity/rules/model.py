"""Communication rules: who may write to whom (docs/specs/communication-rules.md).

Every structure and every class has one group per kind of member — pupils (`ELV`), teachers (`ENS`),
parents (`TUT`), staff (`PERS`), direction (`DIR`), and per class its head teachers (`HT`). A group
id is `<scope>/<kind>`, the scope a UAI or a class id (`<UAI>$<code>`). An edge "kind A → kind B"
lets the members of A write to the members of B of the same scope (or, for a class edge to a
structure kind, of the class's structure). A parent may always write to their child; a child to their
parent only where the rules allow it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from maille_identity.directory.identifiers import (
    DIRECTION,
    DOCUMENTALIST,
    OTHER_STAFF,
    PARENT,
    PUPIL,
    SCHOOL_LIFE,
    TEACHER,
)

STAFF_PROFILES = {DOCUMENTALIST, SCHOOL_LIFE, OTHER_STAFF, DIRECTION}


@dataclass(frozen=True)
class Rules:
    """The edges of one structure: the defaults until administrators change them."""

    structure: frozenset[tuple[str, str]]
    class_: frozenset[tuple[str, str]]
    class_to_structure: frozenset[tuple[str, str]]
    children_write_to_parents: bool = False


ALL = ("ELV", "ENS", "TUT", "PERS", "DIR")
DEFAULT_RULES = Rules(
    # Teachers and staff see each other and may write to every group of the structure; parents, to the direction.
    structure=frozenset({*(("ENS", k) for k in ALL), *(("PERS", k) for k in ALL), ("TUT", "DIR")}),
    # Class pupils see each other and write to the class's teachers and head teachers; class parents to
    # the class's teachers, head teachers and pupils.
    class_=frozenset({("ELV", "ELV"), ("ELV", "ENS"), ("ELV", "HT"), ("TUT", "ENS"), ("TUT", "HT"), ("TUT", "ELV")}),
    # … and both to the structure's staff.
    class_to_structure=frozenset({("ELV", "PERS"), ("TUT", "PERS")}),
)


@dataclass
class Member:
    """What the rules need to know of one person of the directory."""

    id: str
    last_name: str
    first_name: str
    kind: str  # pupil, parent, staff
    profiles: dict[str, str]  # UAI -> national profile code
    classes: tuple[str, ...] = ()  # a pupil's classes, a teacher's taught classes
    head_of: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    groups: frozenset[str] = field(default_factory=frozenset)  # the rule groups the person is in

    @property
    def structures(self) -> set[str]:
        return set(self.profiles)


def memberships(member: Member, children: list[Member]) -> frozenset[str]:
    """The rule groups a person is in (a parent's come from their children's classes)."""
    groups: set[str] = set()
    for uai, code in member.profiles.items():
        if code == PUPIL:
            groups.add(f"{uai}/ELV")
        elif code == PARENT:
            groups.add(f"{uai}/TUT")
        elif code == TEACHER:
            groups.add(f"{uai}/ENS")
        elif code in STAFF_PROFILES:
            groups.add(f"{uai}/PERS")
            if code == DIRECTION:
                groups.add(f"{uai}/DIR")
    if member.kind == "pupil":
        groups.update(f"{c}/ELV" for c in member.classes)
    elif member.kind == "staff":
        groups.update(f"{c}/ENS" for c in member.classes)
        groups.update(f"{c}/HT" for c in member.head_of)
    elif member.kind == "parent":
        groups.update(f"{c}/TUT" for child in children for c in child.classes)
    return frozenset(groups)


def writable(groups: frozenset[str], rules_of: Callable[[str], Rules]) -> frozenset[str]:
    """The rule groups whose members someone in `groups` may write to; `rules_of(uai)` gives a structure's rules."""
    targets: set[str] = set()
    for group in groups:
        scope, _, kind = group.rpartition("/")
        if "$" in scope:  # a class
            uai = scope.split("$", 1)[0]
            rules = rules_of(uai)
            targets.update(f"{scope}/{to}" for frm, to in rules.class_ if frm == kind)
            targets.update(f"{uai}/{to}" for frm, to in rules.class_to_structure if frm == kind)
        else:
            rules = rules_of(scope)
            targets.update(f"{scope}/{to}" for frm, to in rules.structure if frm == kind)
    return frozenset(targets)
