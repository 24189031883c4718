"""The *visibles* of one tenant: the directory held in memory in the shape the rules need, so that
`can_write` is a few set look-ups (microseconds) and `visibles` a walk over the sender's groups.

Built once from the directory, then kept current from identity's own person events; what a sender may
write to is computed on first use and kept until that sender's groups (or the rules) change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from maille_identity.rules.model import DEFAULT_RULES, Member, Rules, memberships, writable
from maille_kit.text import folded


class UnknownPerson(LookupError):
    """The person is not in the tenant's directory."""


KIND_NAMES = {
    "ELV": "élèves",
    "ENS": "enseignants",
    "TUT": "parents",
    "PERS": "personnels",
    "DIR": "direction",
    "HT": "professeurs principaux",
}
STRUCTURE_KINDS: tuple[str, ...] = ("ELV", "ENS", "TUT", "PERS", "DIR")
CLASS_KINDS: tuple[str, ...] = ("ELV", "ENS", "TUT", "HT")


@dataclass
class Resolved:
    """Recipients checked before a send: who may be written to, groups expanded, and who may not."""

    persons: list[Member] = field(default_factory=list)
    groups: list[tuple[str, str, list[str]]] = field(default_factory=list)  # id, name, member ids
    refused: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    refused_groups: list[str] = field(default_factory=list)
    unknown_groups: list[str] = field(default_factory=list)


def member_from_doc(doc: dict[str, Any]) -> Member:
    """A directory document as the rules see it (classes and groups alike scope class edges)."""
    return Member(
        id=doc["_id"],
        last_name=doc.get("last_name", ""),
        first_name=doc.get("first_name", ""),
        kind=doc.get("kind", ""),
        profiles={p["structure"]: p["code"] for p in doc.get("profiles", [])},
        classes=tuple(doc.get("classes", [])) + tuple(doc.get("groups", [])),
        head_of=tuple(doc.get("head_teacher_of", [])),
        children=tuple(doc.get("children", [])),
    )


class Visibles:
    """One tenant's directory, shaped for the communication rules."""

    def __init__(self, rules_of: Callable[[str], Rules] = lambda uai: DEFAULT_RULES) -> None:
        self.rules_of = rules_of
        self.members: dict[str, Member] = {}
        self.group_members: dict[str, set[str]] = defaultdict(set)
        self.parents_of: dict[str, set[str]] = defaultdict(set)
        self._names: dict[str, str] = {}
        self._writable: dict[str, frozenset[str]] = {}
        self.structure_names: dict[str, str] = {}  # UAI -> name
        self.group_labels: dict[str, str] = {}  # "<UAI>$<code>" -> label
        self._classes_of: dict[str, set[str]] = defaultdict(set)  # UAI -> its classes and groups

    def name_structure(self, uai: str, name: str | None) -> None:
        """A structure's name (None: it left the directory)."""
        if name is None:
            self.structure_names.pop(uai, None)
        else:
            self.structure_names[uai] = name

    def name_group(self, group_id: str, label: str | None) -> None:
        """A class's or group's label (None: it left the directory)."""
        uai = group_id.split("$", 1)[0]
        if label is None:
            self.group_labels.pop(group_id, None)
            self._classes_of[uai].discard(group_id)
        else:
            self.group_labels[group_id] = label
            self._classes_of[uai].add(group_id)

    def group_name(self, group_id: str) -> str | None:
        """A rules' group as people name it ("3A — élèves"), or None when the id names no group."""
        scope, _, kind = group_id.rpartition("/")
        if "$" in scope:
            label, kinds = self.group_labels.get(scope), CLASS_KINDS
        else:
            label, kinds = self.structure_names.get(scope), STRUCTURE_KINDS
        if label is None or kind not in kinds:
            return None
        return f"{label} — {KIND_NAMES[kind]}"

    def load(self, members: Iterable[Member]) -> None:
        """Fill from the whole directory (pupils first: a parent's groups come from their children)."""
        ordered = sorted(members, key=lambda m: m.kind != "pupil")
        for member in ordered:
            self.put(member)

    def put(self, member: Member) -> None:
        """Add or replace a person; their parents' groups follow when a pupil's classes change."""
        old = self.members.get(member.id)
        if old is not None:
            self._unlink(old)
        children = [self.members[c] for c in member.children if c in self.members]
        member.groups = memberships(member, children)
        self.members[member.id] = member
        for group in member.groups:
            self.group_members[group].add(member.id)
        for child in member.children:
            self.parents_of[child].add(member.id)
        self._names[member.id] = folded(f"{member.last_name} {member.first_name}")
        self._writable.pop(member.id, None)
        if member.kind == "pupil" and (old is None or old.classes != member.classes):
            for parent_id in list(self.parents_of.get(member.id, ())):
                parent = self.members.get(parent_id)
                if parent is not None:
                    self.put(parent)

    def remove(self, person_id: str) -> None:
        old = self.members.pop(person_id, None)
        if old is not None:
            self._unlink(old)
            self._names.pop(person_id, None)
            self._writable.pop(person_id, None)

    def _unlink(self, old: Member) -> None:
        for group in old.groups:
            self.group_members[group].discard(old.id)
        for child in old.children:
            self.parents_of[child].discard(old.id)

    def rules_changed(self) -> None:
        """Forget what senders may write to (recomputed on next use)."""
        self._writable.clear()

    def _sender(self, sender_id: str) -> tuple[Member, frozenset[str]]:
        sender = self.members.get(sender_id)
        if sender is None:
            raise UnknownPerson(sender_id)
        targets = self._writable.get(sender_id)
        if targets is None:
            targets = self._writable[sender_id] = writable(sender.groups, self.rules_of)
        return sender, targets

    def _direct(self, sender: Member, recipient: Member) -> bool:
        if recipient.id in sender.children:
            return True  # a parent writes to their child
        if sender.id in recipient.children:  # a child to their parent, where the rules allow it
            return any(self.rules_of(uai).children_write_to_parents for uai in sender.profiles)
        return False

    def can_write(self, sender_id: str, recipient_ids: Iterable[str]) -> list[str]:
        """The recipients `sender_id` may not write to (unknown ones included); `UnknownPerson` for the sender."""
        sender, targets = self._sender(sender_id)
        refused = []
        for recipient_id in recipient_ids:
            recipient = self.members.get(recipient_id)
            if recipient is None or not (recipient.groups & targets or self._direct(sender, recipient)):
                refused.append(recipient_id)
        return refused

    def visibles(self, sender_id: str, text: str = "", limit: int = 50) -> list[Member]:
        """Persons the sender may write to whose names hold every word of `text`, sorted by name."""
        sender, targets = self._sender(sender_id)
        candidates: set[str] = set(sender.children)
        for group in targets:
            candidates |= self.group_members.get(group, set())
        for parent_id in self.parents_of.get(sender.id, ()):
            if self._direct(sender, self.members[parent_id]):
                candidates.add(parent_id)
        candidates.discard(sender.id)
        words = folded(text).split()
        found = [pid for pid in candidates if pid in self._names and all(w in self._names[pid] for w in words)]
        found.sort(key=lambda pid: self._names[pid])
        return [self.members[pid] for pid in found[:limit]]

    @staticmethod
    def may_write_to_group(group_id: str, targets: frozenset[str]) -> bool:
        """Whether a sender whose rules reach `targets` may write to a whole group: the group is one of them, or it is
        a class's group whose every member is in a structure group they reach (a teacher writes to their school's
        pupils, so to any class's pupils of that school)."""
        if group_id in targets:
            return True
        scope, _, kind = group_id.rpartition("/")
        if "$" not in scope:
            return False
        uai = scope.split("$", 1)[0]
        return f"{uai}/{'ENS' if kind == 'HT' else kind}" in targets

    def groups(self, sender_id: str, text: str = "", limit: int = 50) -> list[tuple[str, str, int]]:
        """The groups the sender may write to (id, name, size), not empty, whose names hold every word of `text`."""
        sender, targets = self._sender(sender_id)
        words = folded(text).split()
        candidates = set(targets)
        for uai in sender.profiles:  # the classes of the sender's own structures, not the tenant's
            for scope in self._classes_of.get(uai, ()):
                candidates.update(
                    f"{scope}/{kind}" for kind in CLASS_KINDS if self.may_write_to_group(f"{scope}/{kind}", targets)
                )
        found = []
        for group_id in candidates:
            size = len(self.group_members.get(group_id, ()))
            name = self.group_name(group_id)
            if size and name is not None and all(w in folded(name) for w in words):
                found.append((group_id, name, size))
        found.sort(key=lambda g: folded(g[1]))
        return found[:limit]

    def resolve(self, sender_id: str, person_ids: Iterable[str], group_ids: Iterable[str]) -> Resolved:
        """Check a send's recipients: persons one by one, groups as a whole (then expanded to their members now)."""
        sender, targets = self._sender(sender_id)
        resolved = Resolved()
        for person_id in dict.fromkeys(person_ids):
            recipient = self.members.get(person_id)
            if recipient is None:
                resolved.unknown.append(person_id)
            elif recipient.groups & targets or self._direct(sender, recipient):
                resolved.persons.append(recipient)
            else:
                resolved.refused.append(person_id)
        for group_id in dict.fromkeys(group_ids):
            name = self.group_name(group_id)
            if name is None:
                resolved.unknown_groups.append(group_id)
            elif not self.may_write_to_group(group_id, targets):
                resolved.refused_groups.append(group_id)
            else:
                resolved.groups.append((group_id, name, sorted(self.group_members.get(group_id, ()))))
        return resolved

    def members_of(self, group_id: str) -> list[Member]:
        """A class's or group's pupils and teachers, by name."""
        ids = set().union(*(self.group_members.get(f"{group_id}/{kind}", set()) for kind in ("ELV", "ENS", "HT")))
        return sorted((self.members[i] for i in ids if i in self.members), key=lambda m: self._names[m.id])

    def search(self, schools: set[str], text: str, limit: int) -> list[Member]:
        """Persons of `schools` whose names hold every word of `text` (case and accents ignored), by name."""
        words = folded(text).split()
        found = [
            m
            for m in self.members.values()
            if schools & m.profiles.keys() and all(w in self._names[m.id] for w in words)
        ]
        found.sort(key=lambda m: self._names[m.id])
        return found[:limit]
