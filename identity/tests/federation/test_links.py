"""The links between Keycloak accounts and directory persons, found by person through `person_accounts` (an
import's events ask for thousands of persons; a query by `person` would read every link for each)."""

from datetime import UTC, datetime

from maille_identity.federation.repository import LINKS, PERSON_ACCOUNTS, FederationRepository, picture
from maille_kit.docstore import Docstore
from maille_kit.secretbox import SecretBox

NOW = datetime(2026, 9, 1, tzinfo=UTC)


async def test_links_are_found_by_person_and_follow_relinks_and_unlinks(docstore: Docstore) -> None:
    links = FederationRepository(docstore, SecretBox("a-test-key-of-32-characters-long"))
    await links.record_link("p1", idp="educonnect", subject="s1", user="u1", at=NOW)
    await links.record_link("p1", idp="academie", subject="s2", user="u2", at=NOW)
    await links.record_link("p2", idp="educonnect", subject="s3", user="u3", at=NOW)
    assert sorted(link["_id"] for link in await links.links_of("p1")) == ["u1", "u2"]

    await links.record_link("p2", idp="educonnect", subject="s1", user="u1", at=NOW)  # the account now is p2's
    await links.unlink("u3")
    found = await links.links_of_many(["p1", "p2", "nobody"])
    assert {person: sorted(link["_id"] for link in found[person]) for person in found} == {"p1": ["u2"], "p2": ["u1"]}
    # The account no longer counts among p1's (whose departure must not take p2's account with it).
    assert (await docstore.db[PERSON_ACCOUNTS].find_one({"_id": "p1"}))["users"] == ["u2"]


async def test_links_made_before_the_index_existed_are_indexed_once(docstore: Docstore) -> None:
    await docstore.db[LINKS].insert_many(
        [
            {"_id": "u1", "person": "p1", "idp": "educonnect", "subject": "s1", "linked_at": NOW},
            {"_id": "u2", "person": "p1", "idp": "academie", "subject": "s2", "linked_at": NOW},
        ]
    )
    links = FederationRepository(docstore, SecretBox("a-test-key-of-32-characters-long"))
    assert await links.links_of("p1") == []  # what an older version left: not found by person yet

    assert await links.index_links() == 2
    assert sorted(link["_id"] for link in await links.links_of("p1")) == ["u1", "u2"]
    assert await links.index_links() == 0  # done once


async def test_a_link_keeps_what_a_sign_in_needs_of_its_person_in_step(docstore: Docstore) -> None:
    """A sign-in reads the link alone: what it needs of the person (profiles, classes, children, detached) is kept on
    it, written with the link and again when the person changes — on their links only, not on an account that has
    since become another person's."""
    links = FederationRepository(docstore, SecretBox("a-test-key-of-32-characters-long"))
    pupil = {
        "_id": "p1",
        "first_name": "Léa",
        "profiles": [{"structure": "0350001A", "code": "National_ELV"}],
        "classes": ["0350001A$6A"],
        "groups": ["0350001A$LATIN"],
    }
    await links.record_link("p1", idp="educonnect", subject="s1", user="u1", at=NOW, seen=picture(pupil))
    await links.record_link("p1", idp="educonnect", subject="s2", user="u2", at=NOW, seen=picture(pupil))
    kept = (await links.link("u1"))["picture"]
    assert kept == {
        "_id": "p1",
        "profiles": [{"structure": "0350001A", "code": "National_ELV"}],
        "classes": ["0350001A$6A", "0350001A$LATIN"],
        "children": [],
    }
    await links.record_link("p2", idp="educonnect", subject="s2", user="u2", at=NOW, seen=picture({"_id": "p2"}))

    await links.set_picture(["u1", "u2"], picture({**pupil, "profiles": [], "detached_at": NOW}))
    assert (await links.link("u1"))["picture"]["detached_at"] is True
    assert (await links.link("u2"))["picture"] == {"_id": "p2", "profiles": [], "classes": [], "children": []}
