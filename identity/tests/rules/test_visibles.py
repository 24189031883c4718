"""The default communication rules, as a pupil, a parent and a teacher would meet them."""

import pytest

from maille_identity.rules.model import DEFAULT_RULES, Rules
from maille_identity.rules.visibles import UnknownPerson, Visibles, member_from_doc

A, B = "0350001A", "0350002L"  # two schools


def person(pid: str, kind: str, profiles: dict[str, str], **fields) -> dict:
    return {
        "_id": pid,
        "kind": kind,
        "last_name": fields.pop("last", pid.upper()),
        "first_name": fields.pop("first", "X"),
        "profiles": [{"structure": s, "code": c} for s, c in profiles.items()],
        **fields,
    }


@pytest.fixture
def directory() -> Visibles:
    docs = [
        person("ana", "pupil", {A: "National_ELV"}, classes=[f"{A}$6A"], last="Dupont", first="Anaïs"),
        person("bob", "pupil", {A: "National_ELV"}, classes=[f"{A}$6A"]),
        person("cid", "pupil", {A: "National_ELV"}, classes=[f"{A}$5B"]),
        person("dan", "pupil", {B: "National_ELV"}, classes=[f"{B}$6A"]),
        person("mum", "parent", {A: "National_TUT"}, children=["ana"]),
        person("ted", "staff", {A: "National_ENS"}, classes=[f"{A}$6A"], last="Éluard", first="Paul"),
        person("tom", "staff", {A: "National_ENS"}, classes=[f"{A}$5B"]),
        person("hea", "staff", {A: "National_DIR"}),
        person("cpe", "staff", {A: "National_EVS"}),
    ]
    visibles = Visibles()
    visibles.load(member_from_doc(d) for d in docs)
    return visibles


def test_a_pupil_writes_to_their_class_its_teachers_and_the_staff_not_to_other_classes_or_schools(
    directory: Visibles,
) -> None:
    assert directory.can_write("ana", ["bob", "ted", "cpe", "hea"]) == []  # the direction is staff too
    assert directory.can_write("ana", ["cid", "dan", "tom", "mum"]) == ["cid", "dan", "tom", "mum"]


def test_a_parent_writes_to_their_child_the_class_teachers_and_the_direction(directory: Visibles) -> None:
    assert directory.can_write("mum", ["ana", "ted", "hea", "cpe", "bob"]) == []
    assert directory.can_write("mum", ["tom", "cid", "dan"]) == ["tom", "cid", "dan"]


def test_teachers_write_to_the_whole_school_only(directory: Visibles) -> None:
    assert directory.can_write("tom", ["ana", "cid", "mum", "ted", "hea"]) == []
    assert directory.can_write("tom", ["dan"]) == ["dan"]


def test_a_child_writes_to_a_parent_only_where_the_rules_allow_it(directory: Visibles) -> None:
    assert directory.can_write("ana", ["mum"]) == ["mum"]
    allowing = Visibles(
        rules_of=lambda uai: Rules(
            DEFAULT_RULES.structure, DEFAULT_RULES.class_, DEFAULT_RULES.class_to_structure, True
        )
    )
    allowing.load(directory.members.values())
    assert allowing.can_write("ana", ["mum"]) == []


def test_unknown_people(directory: Visibles) -> None:
    assert directory.can_write("ana", ["nobody"]) == ["nobody"]
    with pytest.raises(UnknownPerson):
        directory.can_write("nobody", ["ana"])


def test_a_class_change_moves_the_pupil_and_their_parent(directory: Visibles) -> None:
    moved = member_from_doc(person("ana", "pupil", {A: "National_ELV"}, classes=[f"{A}$5B"]))
    directory.put(moved)
    assert directory.can_write("ana", ["tom", "cid"]) == []
    assert directory.can_write("ana", ["ted", "bob"]) == ["ted", "bob"]
    assert directory.can_write("mum", ["tom"]) == []  # the parent follows the child to 5B
    assert directory.can_write("mum", ["ted"]) == ["ted"]


def test_visibles_search_ignores_case_and_accents(directory: Visibles) -> None:
    assert [m.id for m in directory.visibles("mum", "eluard")] == ["ted"]
    assert [m.id for m in directory.visibles("bob", "ANAIS dup")] == ["ana"]
    everyone = [m.id for m in directory.visibles("ana")]
    assert "ana" not in everyone and set(everyone) == {"bob", "ted", "cpe", "hea"}
