"""Synthetic AAF feeds: a whole académie's full delivery, made up but shaped like the real thing.

Used by `make run` (a small demo directory), the tests and the benchmarks:
`.venv/bin/maille-identity generate-aaf OUTDIR --schools 60 --persons 100000`. The same seed gives the
same feed, byte for byte.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from xml.sax.saxutils import escape

from maille_identity.directory.identifiers import UAI_LETTERS

LAST_NAMES = (
    "MARTIN BERNARD THOMAS PETIT ROBERT RICHARD DURAND DUBOIS MOREAU LAURENT SIMON MICHEL LEFEBVRE LEROY ROUX "
    "DAVID BERTRAND MOREL FOURNIER GIRARD BONNET DUPONT LAMBERT FONTAINE ROUSSEAU VINCENT MULLER LEFEVRE FAURE "
    "ANDRE MERCIER BLANC GUERIN BOYER GARNIER CHEVALIER FRANCOIS LEGRAND GAUTHIER GARCIA PERRIN ROBIN CLEMENT "
    "MORIN NICOLAS HENRY ROUSSEL MATHIEU GAUTIER MASSON LE GALL KERVELLA TANGUY LE BIHAN"
).split()
FIRST_NAMES = (
    "Emma Louise Jade Alice Chloé Lina Léa Rose Anna Mila Inès Ambre Julia Mia Léna Gabriel Léo Raphaël Louis "
    "Arthur Jules Adam Maël Lucas Hugo Noah Liam Sacha Nathan Ethan Paul Tom Théo Nolan Maxime Camille Manon Zoé "
    "Élise Anaïs Yann Erwan Gwenaëlle Soizic Loïc Corentin Maëlys Océane"
).split()
LEVELS = (
    ("6", "10010012110", "6EME"),
    ("5", "10110001110", "5EME"),
    ("4", "10210001110", "4EME"),
    ("3", "10310019110", "3EME"),
)
SUBJECTS = (
    ("030201", "FRANCAIS"),
    ("061300", "MATHEMATIQUES"),
    ("040300", "ANGLAIS LV1"),
    ("043100", "HISTOIRE-GEOGRAPHIE"),
    ("063000", "SVT"),
    ("070100", "TECHNOLOGIE"),
    ("100100", "EDUCATION PHYSIQUE ET SPORTIVE"),
    ("080100", "ARTS PLASTIQUES"),
)
RECORDS_PER_FILE = 10_000


def uai_for(number: int) -> str:
    """A valid UAI (check letter right) for a département-35-like number."""
    digits = f"035{number:04d}"
    return digits + UAI_LETTERS[int(digits) % 23]


@dataclass
class Sizes:
    schools: int
    pupils_per_school: int


def sizes_for(persons: int, schools: int) -> Sizes:
    """About `persons` persons in all: pupils, ~1.5 parents each (siblings share), ~1 staff per 12 pupils."""
    pupils = max(1, round(persons / 2.6))
    return Sizes(schools=max(1, schools), pupils_per_school=max(1, pupils // max(1, schools)))


def _attr(name: str, *values: str) -> str:
    inner = "".join(f"<value>{escape(v)}</value>" for v in values) if values else "<value/>"
    return f'<attr name="{name}">{inner}</attr>'


def _request(category_attr: str, category: str, ident: str, attrs: list[str], op: str = "addRequest") -> str:
    return (
        f"  <{op}>\n"
        "    <operationalAttributes><attr "
        f'name="{category_attr}"><value>{category}</value></attr></operationalAttributes>\n'
        f"    <identifier><id>{escape(ident)}</id></identifier>\n"
        f"    <attributes>\n      " + "\n      ".join(attrs) + "\n    </attributes>\n"
        f"  </{op}>\n"
    )


class _Writer:
    """Writes one kind's records over numbered files of at most RECORDS_PER_FILE records."""

    def __init__(self, outdir: Path, feed: str, kind: str, mode: str = "Complet", change: int = 0) -> None:
        self.outdir, self.feed, self.kind, self.mode, self.change = outdir, feed, kind, mode, change
        self.number, self.count = 0, 0
        self.out: TextIO | None = None

    def write(self, record: str) -> None:
        if self.out is None or self.count >= RECORDS_PER_FILE:
            self.close()
            self.number += 1
            self.count = 0
            path = self.outdir / f"ENT_{self.feed}_{self.mode}_{self.kind}_{self.number:04d}.xml"
            self.out = path.open("w", encoding="utf-8")
            self.out.write(
                '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE ficAlimMENESR SYSTEM '
                '"ficAlimMENESR.dtd">\n<ficAlimMENESR>\n'
            )
        if (
            self.mode == "Delta"
        ):  # every record a change of what is there (a delta's modifyRequest): a first name changed
            record = record.replace("<addRequest>", "<modifyRequest>").replace("</addRequest>", "</modifyRequest>")
            record = record.replace('<attr name="givenName"><value>', f'<attr name="givenName"><value>{self.change}-')
        self.out.write(record)
        self.count += 1

    def close(self) -> None:
        if self.out is not None:
            self.out.write("</ficAlimMENESR>\n")
            self.out.close()
            self.out = None


def generate(
    outdir: Path,
    *,
    persons: int = 1000,
    schools: int = 2,
    seed: int = 7,
    feed: str = "0350000A",
    delta: int = 0,
    shared_parents: int = 0,
) -> dict[str, int]:
    """Write a full AAF delivery to `outdir` — or, `delta` > 0, the same persons (same seed) as a delta's changes of
    every one of them: their first names marked with the change's number; the counts of each kind written.

    `shared_parents`: that many parents of the first school also have a child in the next schools (one each, from the
    second school on), as a family with a child at the collège and one at the lycée: a record of each school's feed
    for the same adult (same name, mobile and e-mail), whom ÉduConnect signs in as one person with two entries."""
    mode = "Delta" if delta else "Complet"
    rng = random.Random(seed)
    outdir.mkdir(parents=True, exist_ok=True)
    sizes = sizes_for(persons, schools)
    counts = {"structures": 0, "pupils": 0, "parents": 0, "staff": 0, "subjects": 0}
    structures = _Writer(outdir, feed, "EtabEducNat", mode, delta)
    subjects = _Writer(outdir, feed, "MatEducNat", mode, delta)
    staff = _Writer(outdir, feed, "PersEducNat", mode, delta)
    pupils = _Writer(outdir, feed, "Eleve", mode, delta)
    parents = _Writer(outdir, feed, "PersRelEleve", mode, delta)
    for code, label in SUBJECTS:
        subjects.write(
            _request(
                "categoriePersonne",
                "MatiereEducNat",
                code,
                [_attr("ENTMatJointure", code), _attr("ENTLibelleMatiere", label)],
            )
        )
        counts["subjects"] += 1
    next_person = 1
    shared: list[dict[str, str]] = []  # the first school's parents who have a child in another school too
    for school in range(1, sizes.schools + 1):
        uai = uai_for(school)
        key = f"{800000 + school}"
        classes_per_level = max(1, round(sizes.pupils_per_school / 4 / 26))
        classes = [
            (f"{level}{chr(65 + n)}", mef, label) for level, mef, label in LEVELS for n in range(classes_per_level)
        ]
        groups = [(f"{level}LAT", f"Latin {level}e") for level, _, _ in LEVELS]
        structures.write(
            _request(
                "categorieStructure",
                "Etablissement",
                key,
                [
                    _attr("ENTStructureJointure", key),
                    _attr("ENTStructureUAI", uai),
                    _attr("ENTStructureNomCourant", f"COLLEGE {rng.choice(LAST_NAMES)} {school}"),
                    _attr("ENTStructureTypeStruct", "COLLEGE"),
                    _attr("ENTEtablissementContrat", "PU"),
                    _attr("ENTServAcAcademie", "RENNES"),
                    _attr("ENTStructureClasses", *[f"{code}${code}" for code, _, _ in classes]),
                    _attr("ENTStructureGroupes", *[f"{code}${label}" for code, label in groups]),
                    _attr("street", f"{school} rue de la Paix"),
                    _attr("postalCode", "35000"),
                    _attr("l", "RENNES"),
                ],
            )
        )
        counts["structures"] += 1
        # Staff: about one for twelve pupils; a head teacher for each class.
        n_staff = max(4, sizes.pupils_per_school // 12)
        for n in range(n_staff):
            pid = f"{next_person:07d}"
            next_person += 1
            function = "DIR" if n == 0 else "DOC" if n == 1 else "EDU" if n == 2 else "ENS"
            subject = SUBJECTS[n % len(SUBJECTS)]
            taught = [classes[(n + k) % len(classes)][0] for k in range(3)] if function == "ENS" else []
            attrs = [
                _attr("ENTPersonJointure", pid),
                _attr("sn", rng.choice(LAST_NAMES)),
                _attr("givenName", rng.choice(FIRST_NAMES)),
                _attr("personalTitle", rng.choice(("M.", "Mme"))),
                _attr("mail", f"agent{pid}@ac-rennes.fr"),
                _attr("ENTPersonStructRattach", key),
                _attr("ENTPersonFonctions", f"{key}${function}${function}$L{subject[0]}${subject[1]}"),
                _attr("PersEducNatPresenceDevantEleves", "O" if function == "ENS" else "N"),
            ]
            if taught:
                attrs.append(_attr("ENTAuxEnsClassesMatieres", *[f"{key}${c}${subject[0]}" for c in taught]))
                if n - 3 < len(classes):
                    attrs.append(_attr("ENTAuxEnsClassesPrincipal", f"{key}${classes[(n - 3) % len(classes)][0]}"))
            staff.write(_request("categoriePersonne", "PersEducNat", pid, attrs))
            counts["staff"] += 1
        # Pupils, with one or two parents; about one pupil in five has a sibling (shared parents).
        previous_family: list[str] = []
        for n in range(sizes.pupils_per_school):
            pid = f"{next_person:07d}"
            next_person += 1
            code, mef, mef_label = classes[n % len(classes)]
            last = rng.choice(LAST_NAMES)
            if previous_family and rng.random() < 0.2:
                family = previous_family
            else:
                family = []
                for rank in range(1 if rng.random() < 0.3 else 2):
                    adult = f"{next_person:07d}"
                    next_person += 1
                    family.append(adult)
                    contact = {
                        "sn": last,
                        "givenName": rng.choice(FIRST_NAMES),
                        "personalTitle": rng.choice(("M.", "Mme")),
                        "mail": f"parent{adult}@example.org",
                        "mobile": f"06{rng.randrange(10**8):08d}",
                    }
                    if rank == 0 and school == 1 and len(shared) < shared_parents:
                        shared.append(contact)
                    elif rank == 0 and n == 0 and 2 <= school < 2 + len(shared):
                        contact = shared[school - 2]  # the same adult as in school 1: a record of this school's own
                    parents.write(
                        _request(
                            "categoriePersonne",
                            "PersRelEleve",
                            adult,
                            [
                                _attr("ENTPersonJointure", adult),
                                *(_attr(name, value) for name, value in contact.items()),
                                _attr("ENTPersonAdresse", f"{n} rue des Lilas"),
                                _attr("ENTPersonCodePostal", "35000"),
                                _attr("ENTPersonVille", "RENNES"),
                                _attr("ENTPersonPays", "FRANCE"),
                            ],
                        )
                    )
                    counts["parents"] += 1
            previous_family = family
            birth_year = {"6": 2015, "5": 2014, "4": 2013, "3": 2012}[code[0]]
            attrs = [
                _attr("ENTPersonJointure", pid),
                _attr("sn", last),
                _attr("givenName", rng.choice(FIRST_NAMES)),
                _attr("ENTPersonAutresPrenoms", rng.choice(FIRST_NAMES)),
                _attr("personalTitle", rng.choice(("M.", "Mme"))),
                _attr("ENTPersonDateNaissance", f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{birth_year}"),
                _attr("ENTEleveStructRattachId", key),
                _attr("ENTPersonStructRattach", key),
                _attr("ENTEleveClasses", f"{key}${code}"),
                _attr("ENTEleveMEF", mef),
                _attr("ENTEleveLibelleMEF", mef_label),
                _attr("ENTEleveCodeEnseignements", *[s[0] for s in SUBJECTS[:5]]),
                _attr("ENTElevePersRelEleve", *[f"{adult}$1$1$1$1$0" for adult in family]),
                _attr("ENTEleveStatutEleve", "SCOLAIRE"),
                _attr("ENTEleveRegime", "DP DAN"),
            ]
            if rng.random() < 0.15:
                attrs.append(_attr("ENTEleveGroupes", f"{key}${code[0]}LAT"))
            pupils.write(_request("categoriePersonne", "Eleve", pid, attrs))
            counts["pupils"] += 1
    for writer in (structures, subjects, staff, pupils, parents):
        writer.close()
    return counts
