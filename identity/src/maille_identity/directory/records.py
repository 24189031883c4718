"""AAF records turned into the directory's own form, each checked before anything of it is written.

A record that breaks a rule raises `Rejected` with the reason; the importer reports it with its file
and line and goes on with the next. Dates are stored as ISO `yyyy-mm-dd`, profiles in their canonical
national form (`National_ELV`), structures by UAI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from maille_identity.directory.aaf import Kind, Record
from maille_identity.directory.identifiers import (
    DIRECTION,
    DOCUMENTALIST,
    OTHER_STAFF,
    PUPIL,
    SCHOOL_LIFE,
    TEACHER,
    InvalidUAI,
    normalise_uai,
)

Doc = dict[str, Any]

KNOWN_ATTRIBUTES: dict[Kind, frozenset[str]] = {
    Kind.STRUCTURES: frozenset(
        "ENTStructureJointure ENTStructureUAI ENTStructureNomCourant ENTStructureTypeStruct ENTEtablissementContrat "
        "ENTServAcAcademie ENTEtablissementStructRattachFctl ENTStructureClasses ENTStructureGroupes street postalCode "
        "l "
        "telephoneNumber ENTStructureMailSI ENTStructureSIREN ENTEtablissementUAI ENTEtablissementMinistereTutelle "
        "ENTStructureCategorie facsimileTelephoneNumber".split()
    ),
    Kind.PUPILS: frozenset(
        "ENTPersonJointure sn givenName ENTPersonAutresPrenoms ENTPersonNomPatro personalTitle ENTPersonDateNaissance "
        "ENTEleveStructRattachId ENTPersonStructRattach ENTEleveClasses ENTEleveGroupes ENTEleveMEF ENTEleveLibelleMEF "
        "ENTEleveCodeEnseignements ENTEleveEnseignements ENTElevePersRelEleve ENTEleveStatutEleve ENTEleveRegime "
        "ENTPersonLogin ENTPersonNomAffichage ENTEleveMajeur ENTEleveNivFormation ENTEleveFiliere ENTPersonAdresse "
        "ENTPersonCodePostal ENTPersonVille ENTPersonPays ENTEleveTransport ENTEleveBoursier ENTPersonSexe".split()
    ),
    Kind.PARENTS: frozenset(
        "ENTPersonJointure sn givenName ENTPersonAutresPrenoms ENTPersonNomPatro personalTitle mail mobile "
        "ENTPersonMobileSMS ENTPersonAdresse ENTPersonCodePostal ENTPersonVille ENTPersonPays ENTAuxPersRelEleveEleve "
        "ENTPersonLogin ENTPersonNomAffichage telephoneNumber homePhone ENTPersonDateNaissance".split()
    ),
    Kind.STAFF: frozenset(
        "ENTPersonJointure sn givenName ENTPersonAutresPrenoms ENTPersonNomPatro personalTitle mail "
        "ENTPersonDateNaissance "
        "ENTPersonStructRattach ENTPersonFonctions ENTAuxEnsClassesMatieres ENTAuxEnsGroupesMatieres "
        "ENTAuxEnsClassesPrincipal ENTAuxEnsMEF PersEducNatPresenceDevantEleves ENTPersonCategorieEnseignant "
        "ENTPersonLogin ENTPersonNomAffichage ENTAuxEnsMatiereEnseignEtab ENTAuxEnsCategoDiscipline ENTPersonSexe "
        "ENTPersonProfils".split()
    ),
    Kind.SUBJECTS: frozenset("ENTMatJointure ENTLibelleMatiere ENTMatCode".split()),
    Kind.MEFS: frozenset("ENTMefJointure ENTLibelleMef ENTMEFRattach ENTMEFSTAT11 ENTMefCode".split()),
}

# Function codes of PersEducNat (`<structure>$<code>$…`) and the profile each gives.
FUNCTION_PROFILES = {
    "ENS": TEACHER,
    "DOC": DOCUMENTALIST,
    "DIR": DIRECTION,
    "EDU": SCHOOL_LIFE,
    "SUR": SCHOOL_LIFE,
    "AED": SCHOOL_LIFE,
}


class Rejected(ValueError):
    """The record breaks a rule; the message says which."""


@dataclass
class Context:
    """What checking a record needs to know: the structures by join key, and how strict to be with UAIs."""

    structures: dict[str, str]  # structure join key -> UAI
    check_uai_letter: bool


def one(record: Record, name: str, *, required: bool = False) -> str:
    """The attribute's single value ('' when absent); `Rejected` when required and absent."""
    values = record.attributes.get(name) or []
    if not values:
        if required:
            raise Rejected(f"mandatory attribute {name} is missing or empty")
        return ""
    return values[0]


def many(record: Record, name: str) -> list[str]:
    return list(dict.fromkeys(record.attributes.get(name) or []))


def parse_date(value: str, name: str) -> str:
    """`dd/mm/yyyy` as ISO; `Rejected` for an impossible date."""
    try:
        day, month, year = (int(part) for part in value.split("/"))
        parsed = date(year, month, day)
    except ValueError:
        raise Rejected(f"{name} {value!r} is not a real date (dd/mm/yyyy)") from None
    if parsed.year < 1900 or parsed > date.today():
        raise Rejected(f"{name} {value!r} is out of range")
    return parsed.isoformat()


def flag(value: str) -> bool:
    return value.strip() in ("1", "O", "o")


def record_key(record: Record, kind: Kind) -> str:
    """The record's join key: its identifier, or the join attribute when the identifier is empty."""
    attribute = {
        Kind.STRUCTURES: "ENTStructureJointure",
        Kind.SUBJECTS: "ENTMatJointure",
        Kind.MEFS: "ENTMefJointure",
    }.get(kind, "ENTPersonJointure")
    key = record.id or one(record, attribute)
    if not key:
        raise Rejected(f"no identifier: <identifier><id> and {attribute} are both empty")
    if len(key) > 64 or "$" in key:
        raise Rejected(f"identifier {key[:80]!r} is not a usable join key (at most 64 characters, no '$')")
    return key


def structure(record: Record, ctx: Context) -> tuple[Doc, list[Doc], list[str]]:
    """A structure, its classes and groups, and warnings."""
    warnings: list[str] = []
    try:
        uai, warning = normalise_uai(one(record, "ENTStructureUAI", required=True), check_letter=ctx.check_uai_letter)
    except InvalidUAI as exc:
        raise Rejected(str(exc)) from None
    if warning:
        warnings.append(f"{warning} (accepted outside production)")
    contract = one(record, "ENTEtablissementContrat").upper()
    if contract not in ("", "PU", "PR"):
        raise Rejected(f"ENTEtablissementContrat {contract!r} is neither PU nor PR")
    doc = {
        "_id": uai,
        "key": record_key(record, Kind.STRUCTURES),
        "name": one(record, "ENTStructureNomCourant", required=True),
        "type": one(record, "ENTStructureTypeStruct").upper(),
        "contract": contract,
        "academy": one(record, "ENTServAcAcademie"),
        "seat_key": one(record, "ENTEtablissementStructRattachFctl"),
        "address": {
            "street": one(record, "street"),
            "postal_code": one(record, "postalCode"),
            "city": one(record, "l"),
        },
        "phone": one(record, "telephoneNumber"),
        "email": one(record, "ENTStructureMailSI"),
    }
    groups: list[Doc] = []
    for attribute, kind in (("ENTStructureClasses", "class"), ("ENTStructureGroupes", "group")):
        for value in many(record, attribute):
            code, _, label = value.partition("$")
            code = code.strip()
            if not code:
                raise Rejected(f"{attribute} value {value!r} has no code (code$label)")
            groups.append(
                {"_id": f"{uai}${code}", "structure": uai, "code": code, "label": label.strip() or code, "kind": kind}
            )
    seen: set[str] = set()
    for group in groups:
        if group["_id"] in seen:
            raise Rejected(f"class or group code {group['code']!r} appears twice in structure {uai}")
        seen.add(group["_id"])
    return doc, groups, warnings


def _structure_uai(ctx: Context, key: str, what: str) -> str:
    uai = ctx.structures.get(key)
    if uai is None:
        raise Rejected(f"{what} names unknown structure {key!r}")
    return uai


def _memberships(record: Record, ctx: Context, attribute: str) -> list[tuple[str, str, str]]:
    """`<structure>$<code>[$<subject>]` values as (UAI, group id, subject)."""
    out: list[tuple[str, str, str]] = []
    for value in many(record, attribute):
        parts = value.split("$")
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise Rejected(f"{attribute} value {value!r} is not <structure>$<code>")
        uai = _structure_uai(ctx, parts[0], f"{attribute} value {value!r}")
        out.append((uai, f"{uai}${parts[1]}", parts[2] if len(parts) > 2 else ""))
    return out


def _names(record: Record) -> Doc:
    return {
        "last_name": one(record, "sn", required=True),
        "first_name": one(record, "givenName", required=True),
        "other_first_names": many(record, "ENTPersonAutresPrenoms"),
        "birth_name": one(record, "ENTPersonNomPatro"),
        "civility": one(record, "personalTitle"),
    }


def pupil(record: Record, ctx: Context) -> Doc:
    """A pupil: names, birth date, structure, classes, groups, MEF, subjects, related adults."""
    attached = _structure_uai(ctx, one(record, "ENTEleveStructRattachId", required=True), "ENTEleveStructRattachId")
    classes = _memberships(record, ctx, "ENTEleveClasses")
    groups = _memberships(record, ctx, "ENTEleveGroupes")
    relatives = []
    for value in many(record, "ENTElevePersRelEleve"):
        parts = value.split("$")
        if len(parts) < 6 or not parts[0]:
            raise Rejected(
                f"ENTElevePersRelEleve value {value!r} is not <adult>$<link>$<financial>$<legal>$<contact>$<payment>"
            )
        relatives.append(
            {
                "key": parts[0],
                "link": parts[1],
                "financial": flag(parts[2]),
                "legal": flag(parts[3]),
                "contact": flag(parts[4]),
                "payment": flag(parts[5]),
            }
        )
    mef = one(record, "ENTEleveMEF")
    if mef and len(mef) != 11:
        raise Rejected(f"ENTEleveMEF {mef!r} is not an 11-character MEF code")
    structures = sorted({attached, *(uai for uai, _, _ in classes + groups)})
    return {
        **_names(record),
        "kind": "pupil",
        "birth_date": parse_date(one(record, "ENTPersonDateNaissance", required=True), "ENTPersonDateNaissance"),
        "profiles": [{"structure": uai, "code": PUPIL} for uai in structures],
        "attached": attached,
        "classes": sorted({group for _, group, _ in classes}),
        "groups": sorted({group for _, group, _ in groups}),
        "mef": mef,
        "mef_label": one(record, "ENTEleveLibelleMEF"),
        "subjects": many(record, "ENTEleveCodeEnseignements"),
        "relatives": relatives,
        "status": one(record, "ENTEleveStatutEleve"),
        "regime": one(record, "ENTEleveRegime"),
        "emails": [],
    }


def parent(record: Record, ctx: Context) -> Doc:
    """A parent or legal guardian: names, contacts, children's join keys as the feed gives them."""
    return {
        **_names(record),
        "kind": "parent",
        "emails": many(record, "mail"),
        "mobile": one(record, "mobile") or one(record, "ENTPersonMobileSMS"),
        "address": {
            "street": one(record, "ENTPersonAdresse"),
            "postal_code": one(record, "ENTPersonCodePostal"),
            "city": one(record, "ENTPersonVille"),
            "country": one(record, "ENTPersonPays"),
        },
        "children_keys": sorted(many(record, "ENTAuxPersRelEleveEleve")),
        "profiles": [],  # a parent's structures are their children's: set by the importer
    }


def staff(record: Record, ctx: Context) -> Doc:
    """A teacher or staff member: structures, functions, classes and groups taught, head-teacher roles."""
    attached = [_structure_uai(ctx, key, "ENTPersonStructRattach") for key in many(record, "ENTPersonStructRattach")]
    functions = []
    profiles: dict[str, str] = {}
    for value in many(record, "ENTPersonFonctions"):
        parts = value.split("$")
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise Rejected(f"ENTPersonFonctions value {value!r} is not <structure>$<code>$…")
        uai = _structure_uai(ctx, parts[0], f"ENTPersonFonctions value {value!r}")
        code = parts[1].upper()
        functions.append(
            {
                "structure": uai,
                "code": code,
                "label": parts[2] if len(parts) > 2 else "",
                "discipline": parts[3] if len(parts) > 3 else "",
            }
        )
        profile = FUNCTION_PROFILES.get(code, OTHER_STAFF)
        # One profile per structure: direction over documentation over teaching over the rest.
        rank = [DIRECTION, DOCUMENTALIST, TEACHER, SCHOOL_LIFE, OTHER_STAFF]
        if uai not in profiles or rank.index(profile) < rank.index(profiles[uai]):
            profiles[uai] = profile
    teaches = flag(one(record, "PersEducNatPresenceDevantEleves"))
    classes = _memberships(record, ctx, "ENTAuxEnsClassesMatieres")
    groups = _memberships(record, ctx, "ENTAuxEnsGroupesMatieres")
    head = _memberships(record, ctx, "ENTAuxEnsClassesPrincipal")
    for uai in [*attached, *(u for u, _, _ in classes + groups)]:
        profiles.setdefault(uai, TEACHER if teaches or classes or groups else OTHER_STAFF)
    if not profiles:
        raise Rejected("attached to no structure (ENTPersonStructRattach and ENTPersonFonctions are empty)")
    return {
        **_names(record),
        "kind": "staff",
        "emails": many(record, "mail"),
        "birth_date": parse_date(v, "ENTPersonDateNaissance") if (v := one(record, "ENTPersonDateNaissance")) else "",
        "profiles": [{"structure": uai, "code": code} for uai, code in sorted(profiles.items())],
        "functions": functions,
        "classes": sorted({group for _, group, _ in classes}),
        "groups": sorted({group for _, group, _ in groups}),
        "teaching": sorted({f"{group}${subject}" for _, group, subject in classes + groups if subject}),
        "head_teacher_of": sorted({group for _, group, _ in head}),
        "mefs": many(record, "ENTAuxEnsMEF"),
        "teaches": teaches,
    }


def referential(record: Record, kind: Kind) -> Doc:
    """A subject (MatEducNat) or MEF (MefEducNat) code with its label."""
    label_attribute = "ENTLibelleMatiere" if kind is Kind.SUBJECTS else "ENTLibelleMef"
    code = record_key(record, kind)
    return {
        "_id": f"{kind.value}:{code}",
        "kind": kind.value,
        "code": code,
        "label": one(record, label_attribute, required=True),
    }
