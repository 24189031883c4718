"""The daily look at the CDIs' loans: a loan due in two days, a late one, a reservation waiting — each found through the
reader's own PMB session and told once as the library's events."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from nats.js.errors import NotFoundError

from maille_contracts import LOAN_DUE, LOAN_LATE, RESERVATION_READY
from maille_kit.events import decode

from .conftest import API, SCHOOLS, Library, person

A, B, _ = SCHOOLS


def loan(kind: str, notice: int, title: str, due: str) -> dict:
    return {
        "kind": kind,
        "notice_id": notice,
        "expl_cb": f"cdi-{notice:05d}-0",
        "expl_libelle": title,
        "expl_location_caption": "CDI",
        "loan_startdate": "2026-11-02",
        "loan_returndate": due,
    }


async def test_the_daily_look_tells_each_loan_fact_once(library: Library) -> None:
    operator = library.operator()
    for uai, salt in ((A, "sel-opac"), (B, "")):  # B's PMB has no reader accounts: not looked at
        answer = await library.client.put(
            f"{API}/operator/schools/{uai}/pmb", headers=operator, json=library.connection(uai, loginSalt=salt)
        )
        assert answer.status_code == 201
    today = datetime.now(ZoneInfo("Europe/Paris")).date()
    cdi = library.pmb.databases[f"cdi{A}"]
    cdi.readers["eleve-7"] = {"id": 7, "cb": "E0007", "login": "eleve-7", "mail": "", "nom": "Martin", "prenom": "Léa"}
    cdi.loans["eleve-7"] = [
        loan("late", 3, "L'Étranger", (today - timedelta(days=3)).isoformat()),
        loan("current", 1, "Le Petit Prince", (today + timedelta(days=2)).isoformat()),
        loan("current", 2, "Bel-Ami", (today + timedelta(days=9)).isoformat()),
    ]
    cdi.resas["eleve-7"] = [
        {
            "resa_id": 4,
            "notice_id": 5,
            "resa_rank": 1,
            "resa_dateend": (today + timedelta(days=5)).isoformat(),
            "resa_location": "CDI",
        },
        {"resa_id": 5, "notice_id": 6, "resa_rank": 2, "resa_dateend": "", "resa_location": "CDI"},
    ]
    await library.persons(
        person("eleve-7", (A, "National_ELV"), (B, "National_ELV")), person("eleve-8", (A, "National_ELV"))
    )

    first = await library.client.post(f"{API}/operator/loans/look", headers=operator)
    assert first.status_code == 200, first.text
    assert {k: first.json()[k] for k in ("due", "late", "ready")} == {"due": 1, "late": 1, "ready": 1}
    assert first.json()["failed"] == 0  # eleve-8 has no PMB account: not a failure
    again = await library.client.post(f"{API}/operator/loans/look", headers=operator)
    assert {k: again.json()[k] for k in ("due", "late", "ready")} == {"due": 0, "late": 0, "ready": 0}

    async def last(subject: str):
        return decode((await library.bus.js.get_last_msg("LIBRARY", subject)).data)

    for _ in range(50):
        try:
            due = (await last(LOAN_DUE)).unpack(LOAN_DUE.message)
            break
        except NotFoundError:
            await asyncio.sleep(0.1)
    assert due.loan.person_id == "eleve-7" and due.loan.title == "Le Petit Prince" and due.loan.uai == A
    late = (await last(LOAN_LATE)).unpack(LOAN_LATE.message)
    assert late.loan.title == "L'Étranger" and late.loan.due == (today - timedelta(days=3)).isoformat()
    ready = (await last(RESERVATION_READY)).unpack(RESERVATION_READY.message)
    assert ready.reservation_id == 4 and ready.until == (today + timedelta(days=5)).isoformat()
    assert (
        await library.client.post(f"{API}/operator/loans/look", headers=library.as_person("eleve-7"))
    ).status_code == 403
