"""What each upstream IdP releases about a signed-in person (facts: docs/specs/educonnect.md).

EduConnect: the attributes `urn:oid:1.3.6.1.4.1.20326.10.999.1.<n>` of the spec, with `FrEduCtRefId`
carrying one `{AAF}<académie>|<UAI>|<join key>` value per ENT account the person has (a parent whose
children are in two schools has two), and a persistent NameID equal to `FrEduCtId`.

The académie's agent IdP (inferred, not read from a primary source: académies' IdPs differ): `uid` the
agent's AAF join key, `mail` their academic address, `sn`, `givenName`, and `FrEduRne` the UAIs of their
schools; the NameID is the join key.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from samlpeer.idp import Directory, Person, Profile

EC = "urn:oid:1.3.6.1.4.1.20326.10.999.1."
EDUCONNECT_ATTRIBUTES = {
    f"{EC}5": "FrEduUrlRetour",
    f"{EC}6": "FrEduCtDateConnexion",
    f"{EC}7": "FrEduCtPersonAffiliation",
    f"{EC}57": "FrEduCtId",
    f"{EC}64": "FrEduCtEleveINEHash",
    f"{EC}67": "FrEduCtDateNaissance",
    f"{EC}72": "FrEduCtEleveUAI",
    f"{EC}73": "FrEduCtEleveNiveau",
    f"{EC}76": "civility",
    f"{EC}77": "FrEduCtRefId",
    "urn:oid:2.5.4.4": "sn",
    "urn:oid:2.5.4.42": "givenName",
}
AGENT_ATTRIBUTES = {
    "urn:oid:0.9.2342.19200300.100.1.1": "uid",
    "urn:oid:0.9.2342.19200300.100.1.3": "mail",
    "urn:oid:2.5.4.4": "sn",
    "urn:oid:2.5.4.42": "givenName",
    "urn:oid:1.3.6.1.4.1.7135.1.2.1.14": "FrEduRne",
}


def _uais(person: Person) -> list[str]:
    return sorted({p["structure"] for p in person.get("profiles", [])})


def educonnect_id(person: Person) -> str:
    """A stable EduConnect id of the person (EduConnect's own, not the ENT's; two test directories' namesakes are two
    people)."""
    return "ec" + hashlib.sha256(f"educonnect:{person.get('tenant', '')}:{person['keys'][0]}".encode()).hexdigest()[:30]


def _ref_ids(accounts: list[Person]) -> list[str]:
    return [
        f"{{AAF}}{p.get('tenant', '')}|{(_uais(p) or [''])[0]}|{key}" for p in accounts for key in p.get("keys", [])[:1]
    ]


def _accounts(person: Person, directory: Directory) -> list[Person]:
    """The person's ENT accounts: a pupil's one, a parent's one per school feed that has them."""
    return [person] if person.get("kind") == "pupil" else directory.same_adult(person)


def educonnect_release(person: Person, directory: Directory) -> dict[str, list[str]]:
    pupil = person.get("kind") == "pupil"
    accounts = _accounts(person, directory)
    released = {
        "FrEduCtId": [educonnect_id(accounts[0])],
        "FrEduCtRefId": _ref_ids(accounts),
        "FrEduCtPersonAffiliation": ["eleve2d" if pupil else "resp2d"],
        "FrEduCtDateConnexion": [datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]],
        "sn": [person.get("last_name", "")],
        "givenName": [person.get("first_name", "")],
    }
    if person.get("civility"):
        released["civility"] = [person["civility"]]
    if pupil:
        released["FrEduCtDateNaissance"] = [person.get("birth_date", "")]
        released["FrEduCtEleveUAI"] = _uais(person)[:1]
        if person.get("mef"):
            released["FrEduCtEleveNiveau"] = [person["mef"][:4]]
    return {k: v for k, v in released.items() if v and all(v)}


EDUCONNECT = Profile(
    name="educonnect",
    title="ÉduConnect (bac à sable Maille)",
    attributes=EDUCONNECT_ATTRIBUTES,
    accepts=lambda person: person.get("kind") in ("pupil", "parent"),
    release=educonnect_release,
    # FrEduCtId: one per person, whichever of their entries they sign in as (a parent of two schools is one person).
    subject=lambda person, directory: educonnect_id(_accounts(person, directory)[0]),
    signs_response=False,  # EduConnect signs its assertions, not the response around them
)


def agent_release(person: Person, directory: Directory) -> dict[str, list[str]]:
    released = {
        "uid": person["keys"][:1],
        "mail": (person.get("emails") or [])[:1],
        "sn": [person.get("last_name", "")],
        "givenName": [person.get("first_name", "")],
        "FrEduRne": _uais(person),
    }
    return {k: v for k, v in released.items() if v and all(v)}


ACADEMIE = Profile(
    name="academie",
    title="Portail des agents de l'académie (bac à sable Maille)",
    attributes=AGENT_ATTRIBUTES,
    accepts=lambda person: person.get("kind") == "staff",
    release=agent_release,
    # The agent's persistent NameID: the académie's own, per directory (two test directories' namesakes are two people).
    subject=lambda person, directory: (
        "ag" + hashlib.sha256(f"academie:{person.get('tenant', '')}:{person['keys'][0]}".encode()).hexdigest()[:30]
    ),
)
