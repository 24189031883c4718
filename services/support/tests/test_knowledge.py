"""The knowledge base: found as one types, read by who it is for, written by the académie's support and a school's
referents, and "this answered my question" counted once per person."""

from __future__ import annotations

from typing import Any

from .conftest import COLLEGE, LYCEE, Support
from .test_requests import school_with_people


def article(**changes: Any) -> dict[str, Any]:
    return {
        "title": "Imprimer au CDI",
        "body": "Choisissez l'imprimante **CDI-1**, puis badgez.\n\n<script>alert(1)</script>\n\n"
        "[lien](javascript:alert(1))",
        "category": "equipment",
        "scope": COLLEGE,
        **changes,
    }


async def test_search_as_one_types_finds_the_seeded_tutorials(support: Support) -> None:
    await school_with_people(support)
    hits = await support.ok("GET", "/articles/search", "lea-eleve", params={"q": "mot de pas"})
    assert hits and hits[0]["id"] == "tuto-connexion-educonnect" and hits[0]["tutorial"]
    # Accents and case do not matter; the category narrows.
    hits = await support.ok("GET", "/articles/search", "lea-eleve", params={"q": "MEDIACENTRE manuel"})
    assert hits[0]["id"] == "tuto-mediacentre-ressources"
    assert await support.ok("GET", "/articles/search", "lea-eleve", params={"q": "manuel", "category": "library"}) == []
    # A tutorial for pupils and parents is not offered to a teacher.
    teacher = await support.ok("GET", "/articles/search", "rita-referente", params={"q": "educonnect"})
    assert "tuto-connexion-educonnect" not in [h["id"] for h in teacher]
    read = await support.ok("GET", "/articles/tuto-cdi-reserver", "lea-eleve")
    assert "<ol>" in read["html"] and "<strong>réservé</strong>" in read["html"]


async def test_referents_write_for_their_school_and_html_stays_inert(support: Support) -> None:
    await school_with_people(support)
    assert (await support.call("POST", "/articles", "lea-eleve", json=article())).status_code == 403
    assert (
        await support.call("POST", "/articles", "rita-referente", json=article(scope="academie"))
    ).status_code == 403
    made = await support.ok("POST", "/articles", "rita-referente", json=article())
    assert "<script>" not in made["html"] and "&lt;script&gt;" in made["html"]
    assert 'href="javascript' not in made["html"] and "<strong>CDI-1</strong>" in made["html"]
    # Found at once by the school's pupils, not by another school's.
    assert made["id"] in [
        h["id"] for h in await support.ok("GET", "/articles/search", "lea-eleve", params={"q": "imprim"})
    ]
    assert made["id"] not in [
        h["id"] for h in await support.ok("GET", "/articles/search", "yves-autre", params={"q": "imprim"})
    ]
    assert (await support.call("GET", f"/articles/{made['id']}", "yves-autre")).status_code == 404
    changed = await support.ok(
        "PUT", f"/articles/{made['id']}", "rita-referente", json=article(title="Imprimer en couleur au CDI")
    )
    assert changed["title"] == "Imprimer en couleur au CDI"
    assert (
        await support.call("PUT", f"/articles/{made['id']}", "yves-autre", json=article(scope=LYCEE))
    ).status_code == 403
    bad = await support.call("POST", "/articles", "rita-referente", json=article(category="licorne"))
    assert bad.status_code == 422 and "unknown category" in bad.json()["detail"]
    assert (await support.call("DELETE", f"/articles/{made['id']}", "rita-referente")).status_code == 204
    assert made["id"] not in [
        h["id"] for h in await support.ok("GET", "/articles/search", "lea-eleve", params={"q": "imprim"})
    ]


async def test_the_academie_writes_for_everyone_and_votes_count_once(support: Support) -> None:
    await school_with_people(support)
    await support.ok(
        "PUT",
        "/operator/desks/academie",
        "ops",
        "operator",
        json={"name": "Support de l'académie", "kind": "academie", "agents": ["anna-academie"]},
    )
    made = await support.ok("POST", "/articles", "anna-academie", json=article(scope="academie", tutorial=True))
    assert made["tutorial"] and made["scope"] == "academie"
    assert made["id"] in [
        h["id"] for h in await support.ok("GET", "/articles/search", "yves-autre", params={"q": "badgez"})
    ]
    for _ in range(2):
        voted = await support.ok("POST", f"/articles/{made['id']}/vote", "lea-eleve", json={"helped": True})
    assert voted["helped"] == 1
    voted = await support.ok("POST", f"/articles/{made['id']}/vote", "lea-eleve", json={"helped": False})
    assert (voted["helped"], voted["unhelped"]) == (0, 1)
    voted = await support.ok("POST", f"/articles/{made['id']}/vote", "paul-eleve", json={"helped": True})
    assert (voted["helped"], voted["unhelped"]) == (1, 1)
    image = await support.ok("POST", "/images", "anna-academie", content=b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
    assert image["markdown"].startswith("![")
    assert (await support.call("POST", "/images", "lea-eleve", content=b"\x89PNG\r\n\x1a\n")).status_code == 403
    assert (await support.call("POST", "/images", "anna-academie", content=b"%PDF-1.4 hello")).status_code == 415
