"""The GAR directory export: the tenant's directory as the GAR's five kinds of XML file.

`{idENT}_GAR-ENT_Complet_{yyyyMMdd_HHmmss}_{Etab|Eleve|Enseignant|Groupe|RespAff}_{NNNN}.xml`, at most
10,000 records a file, each validated against `GAR-ENT.xsd` before it is kept (primary schools: their
own `GAR-ENT-1D` files, checked against `GAR-ENT-1D.xsd`), then packed as one `.tar.gz` with an `.md5`
beside it (docs/specs/gar.md §2). Every night is a complete picture.

The persons are read once, as a stream; each file is written as it goes (lxml's incremental writer),
so memory holds only the small records that must come after all persons in a file (MEF, subjects,
group memberships). What would break one of the XSD's keys — the same record twice, two groups
sharing a code in a school — is written once and reported, never left for the GAR to refuse.
"""

from __future__ import annotations

import hashlib
import logging
import tarfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree

from maille_identity.directory.identifiers import DIRECTION, gar_profile
from maille_identity.directory.repository import DirectoryRepository

log = logging.getLogger("maille.identity.gar")

RECORDS_PER_FILE = 10_000
KINDS = ("Etab", "Eleve", "Enseignant", "Groupe", "RespAff")
Doc = dict[str, Any]


# The GAR's published schemas, shipped with the package (a test checks their digests against the published files).
SCHEMA = Path(__file__).parent / "xsd" / "GAR-ENT.xsd"


@dataclass
class ExportReport:
    """What an export wrote, and what it left out and why."""

    files: list[Path] = field(default_factory=list)
    records: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    left_out: list[str] = field(default_factory=list)
    archive: Path | None = None
    md5: str = ""


class InvalidExport(RuntimeError):
    """A file did not pass the XSD: it is not kept, and the export stops."""


class _KindWriter:
    """Writes one kind's records over numbered files, validating each file when it is closed."""

    def __init__(
        self, outdir: Path, prefix: str, kind: str, schema: etree.XMLSchema, report: ExportReport, flavour: Flavour
    ) -> None:
        self.outdir, self.prefix, self.kind, self.schema, self.report, self.flavour = (
            outdir,
            prefix,
            kind,
            schema,
            report,
            flavour,
        )
        self.number = 0
        self.count = 0
        self._file: Any = None  # the open part file, lxml's incremental writer and its root element, while open
        self._ctx: Any = None
        self._xf: Any = None
        self._root: Any = None
        self._path: Path | None = None

    def write(self, element: etree._Element) -> None:
        if self._root is not None and self.count >= RECORDS_PER_FILE:
            self._finish()
        if self._root is None:
            self._open()
        self._xf.write(element)
        self.count += 1
        self.report.records[self.kind] += 1

    def _open(self) -> None:
        self.number += 1
        self.count = 0
        self._path = self.outdir / f"{self.prefix}_{self.kind}_{self.number:04d}.xml.part"
        self._file = self._path.open("wb")
        self._ctx = etree.xmlfile(self._file, encoding="UTF-8")
        self._xf = self._ctx.__enter__()
        self._xf.write_declaration()
        ns = self.flavour.namespace
        self._root = self._xf.element(
            f"{{{ns}}}GAR-ENT-{self.kind}", {"Version": self.flavour.version}, nsmap={"men": ns}
        )
        self._root.__enter__()

    def close(self) -> None:
        """Finish the last file (a kind with no record still gets one, empty and valid)."""
        if self._root is None and self.number == 0:
            self._open()
        if self._root is not None:
            self._finish()

    def _finish(self) -> None:
        """Close the current file, validate it, and keep it under its final name."""
        self._root.__exit__(None, None, None)
        self._ctx.__exit__(None, None, None)
        self._file.close()
        self._root = self._xf = self._ctx = self._file = None
        assert self._path is not None
        final = self._path.with_suffix("")  # drop .part
        document = etree.parse(
            str(self._path), etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
        )
        if not self.schema.validate(document):
            errors = "; ".join(f"line {e.line}: {e.message}" for e in list(self.schema.error_log)[:5])
            self._path.unlink()
            raise InvalidExport(f"{final.name} does not pass {self.flavour.schema_file}: {errors}")
        self._path.rename(final)
        self.report.files.append(final)


@dataclass(frozen=True)
class Flavour:
    """Secondary (`GAR-ENT.xsd`) or primary schools (`GAR-ENT-1D.xsd`): namespace, schema, what they hold."""

    infix: str
    namespace: str
    schema_file: str
    version: str
    primary: bool


SECONDARY = Flavour("GAR-ENT", "http://data.education.fr/ns/gar", "GAR-ENT.xsd", "1.7", False)
# Inferred, not read from the GAR: 1D files named like the 2D ones with the schema's name (GAR-ENT-1D).
PRIMARY = Flavour("GAR-ENT-1D", "http://data.education.fr/ns/gar/1d", "GAR-ENT-1D.xsd", "1.4", True)


def is_primary(structure: Doc) -> bool:
    """Primary schools (écoles) go to the 1D files; the AAF types them ECOLE… (inferred)."""
    return structure.get("type", "").upper().startswith("ECOLE")


class _Files:
    """One flavour's files: its five writers and what must come after all persons in them."""

    def __init__(self, export: GarExport, flavour: Flavour, structures: dict[str, Doc]) -> None:
        self.flavour = flavour
        self.ns = flavour.namespace
        self.structures = structures
        schema = etree.XMLSchema(etree.parse(str(SCHEMA.parent / flavour.schema_file)))
        prefix = f"{export.id_ent}_{flavour.infix}_Complet_{export.now:%Y%m%d_%H%M%S}"
        self.writers = {
            kind: _KindWriter(export.outdir, prefix, kind, schema, export.report, flavour) for kind in KINDS
        }
        self.export = export
        self.person_mefs: list[tuple[str, str, str]] = []
        self.pupil_subjects: list[tuple[str, str, str]] = []
        self.teacher_mefs: list[tuple[str, str, str]] = []
        self.memberships: list[tuple[str, str, str]] = []  # (uai, person, group code)
        self.taught: dict[tuple[str, str, str], list[str]] = defaultdict(list)  # (uai, person, code) -> subjects
        self.mefs_used: dict[tuple[str, str], str] = {}
        self.subjects_used: set[tuple[str, str]] = set()
        self.classes_of_group: dict[str, set[str]] = defaultdict(set)

    def el(self, tag: str, *children: etree._Element) -> etree._Element:
        element = etree.Element(f"{{{self.ns}}}{tag}", nsmap={"men": self.ns})
        element.extend(children)
        return element

    def text(self, tag: str, value: str) -> etree._Element:
        element = etree.Element(f"{{{self.ns}}}{tag}", nsmap={"men": self.ns})
        element.text = value
        return element

    def identity(self, person: Doc, profiles: list[tuple[str, str]]) -> list[etree._Element]:
        """The GARIdentite part of a pupil or a teacher."""
        parts = [self.text("GARPersonIdentifiant", person["_id"])]
        parts += [
            self.el(
                "GARPersonProfils", self.text("GARStructureUAI", uai), self.text("GARPersonProfil", gar_profile(code))
            )
            for uai, code in profiles
        ]
        if person.get("birth_name"):
            parts.append(self.text("GARPersonNomPatro", person["birth_name"]))
        parts.append(self.text("GARPersonNom", person["last_name"]))
        parts.append(self.text("GARPersonPrenom", person["first_name"]))
        # At least one: the GAR takes the first name when there is no other.
        for other in person.get("other_first_names") or [person["first_name"]]:
            parts.append(self.text("GARPersonAutresPrenoms", other))
        if person.get("civility"):
            parts.append(self.text("GARPersonCivilite", person["civility"]))
        return parts

    def pupil(self, person: Doc, profiles: list[tuple[str, str]], groups: dict[str, Doc]) -> None:
        schools = sorted({uai for uai, _ in profiles})
        element = self.el(
            "GAREleve", *self.identity(person, profiles), *(self.text("GARPersonEtab", uai) for uai in schools)
        )
        if person.get("birth_date"):
            element.append(self.text("GARPersonDateNaissance", person["birth_date"]))
        self.writers["Eleve"].write(element)
        attached: str = person["attached"] if person.get("attached") in schools else schools[0]
        if person.get("mef"):
            self.person_mefs.append((attached, person["_id"], person["mef"]))
            self.mefs_used[(attached, person["mef"])] = person.get("mef_label") or person["mef"]
        for subject in person.get("subjects", []):
            self.pupil_subjects.append((attached, person["_id"], subject))
            self.subjects_used.add((attached, subject))
        classes = [g for g in person.get("classes", []) if g in groups and groups[g]["structure"] in schools]
        own_groups = [g for g in person.get("groups", []) if g in groups and groups[g]["structure"] in schools]
        for group_id in classes + own_groups:
            self.memberships.append((groups[group_id]["structure"], person["_id"], groups[group_id]["code"]))
        for group_id in own_groups:
            self.classes_of_group[group_id].update(
                groups[c]["code"] for c in classes if groups[c]["structure"] == groups[group_id]["structure"]
            )

    def staff(self, person: Doc, profiles: list[tuple[str, str]], groups: dict[str, Doc]) -> None:
        schools = sorted({uai for uai, _ in profiles})
        element = self.el(
            "GAREnseignant", *self.identity(person, profiles), *(self.text("GARPersonEtab", uai) for uai in schools)
        )
        if person.get("birth_date"):
            element.append(self.text("GARPersonDateNaissance", person["birth_date"]))
        postes: dict[str, list[str]] = defaultdict(list)
        for function in person.get("functions", []):
            code = function.get("discipline") or function["code"]
            if function["structure"] in schools and code not in postes[function["structure"]]:
                postes[function["structure"]].append(code)
        block, item = (
            ("GAREnsSpecialitesPostes", "GAREnsSpecialitePosteCode")
            if self.flavour.primary
            else ("GAREnsDisciplinesPostes", "GAREnsDisciplinePosteCode")
        )
        for uai, codes in sorted(postes.items()):
            element.append(self.el(block, self.text("GARStructureUAI", uai), *(self.text(item, c) for c in codes)))
        if not self.flavour.primary:
            for mail in person.get("emails", []):
                element.append(self.text("GARPersonMail", mail))
        self.writers["Enseignant"].write(element)
        if not self.flavour.primary:
            for mef in person.get("mefs", []):
                self.teacher_mefs.append((schools[0], person["_id"], mef))
        for entry in person.get("teaching", []):
            group_id, _, subject = entry.rpartition("$")
            if group_id in groups and groups[group_id]["structure"] in schools:
                group = groups[group_id]
                if self.flavour.primary:  # 1D has no teacher-class-subject record: the teacher is a member
                    self.memberships.append((group["structure"], person["_id"], group["code"]))
                subjects = self.taught[(group["structure"], person["_id"], group["code"])]
                if subject not in subjects:
                    subjects.append(subject)
                self.subjects_used.add((group["structure"], subject))
        if any(code == DIRECTION for _, code in profiles) or "gar_resp_aff" in person.get("roles", []):
            self.resp_aff(person, [uai for uai, code in profiles if code == DIRECTION] or schools)

    def resp_aff(self, person: Doc, schools: list[str]) -> None:
        if not person.get("emails"):
            self.export._leave_out(f"GARRespAff {person['_id']}: no email (the GAR requires one)")
            return
        element = self.el(
            "GARRespAff",
            self.text("GARPersonIdentifiant", person["_id"]),
            self.text("GARPersonNom", person["last_name"]),
            self.text("GARPersonPrenom", person["first_name"]),
        )
        if person.get("civility"):
            element.append(self.text("GARPersonCivilite", person["civility"]))
        element.extend(self.text("GARPersonMail", mail) for mail in person["emails"])
        element.extend(self.text("GARRespAffEtab", uai) for uai in schools)
        self.writers["RespAff"].write(element)

    def finish(self, groups: dict[str, Doc], labels: dict[str, str]) -> None:
        """What comes after all persons, then the structures and groups; every file closed and checked."""
        if self.flavour.primary:
            # 1D knows MEFSTAT4 (4 characters) only: taken from the start of the MEF code (inferred).
            for uai, person_id, mef in dict.fromkeys(self.person_mefs):
                self.writers["Eleve"].write(
                    self.el(
                        "GARPersonMEFSTAT4",
                        self.text("GARStructureUAI", uai),
                        self.text("GARPersonIdentifiant", person_id),
                        self.text("GARMEFSTAT4Code", mef[:4]),
                    )
                )
        else:
            for writer, records, tag in (
                ("Eleve", self.person_mefs, "GARPersonMEF"),
                ("Eleve", self.pupil_subjects, "GAREleveEnseignement"),
                ("Enseignant", self.teacher_mefs, "GARPersonMEF"),
            ):
                code_tag = "GARMEFCode" if tag == "GARPersonMEF" else "GARMatiereCode"
                for uai, person_id, code in dict.fromkeys(records):  # once each: the XSD keys them
                    self.writers[writer].write(
                        self.el(
                            tag,
                            self.text("GARStructureUAI", uai),
                            self.text("GARPersonIdentifiant", person_id),
                            self.text(code_tag, code),
                        )
                    )
        for kind in ("Eleve", "Enseignant", "RespAff"):
            self.writers[kind].close()
        self._structures(labels)
        self._groups(groups)

    def _structures(self, labels: dict[str, str]) -> None:
        writer = self.writers["Etab"]
        for uai, doc in sorted(self.structures.items()):
            element = self.el(
                "GAREtab", self.text("GARStructureUAI", uai), self.text("GARStructureNomCourant", doc["name"])
            )
            if doc.get("seat") and not self.flavour.primary:
                element.append(self.text("GAREtablissementStructRattachFctl", doc["seat"]))
            for field_name, tag in (
                ("contract", "GARStructureContrat"),
                ("phone", "GARStructureTelephone"),
                ("email", "GARStructureEmail"),
            ):
                if doc.get(field_name):
                    element.append(self.text(tag, doc[field_name]))
            writer.write(element)
        if not self.flavour.primary:
            for (uai, code), label in sorted(self.mefs_used.items()):
                writer.write(
                    self.el(
                        "GARMEF",
                        self.text("GARStructureUAI", uai),
                        self.text("GARMEFCode", code),
                        self.text("GARMEFLibelle", labels.get(f"MefEducNat:{code}", label)),
                    )
                )
            for uai, code in sorted(self.subjects_used):
                writer.write(
                    self.el(
                        "GARMatiere",
                        self.text("GARStructureUAI", uai),
                        self.text("GARMatiereCode", code),
                        self.text("GARMatiereLibelle", labels.get(f"MatEducNat:{code}", code)),
                    )
                )
        writer.close()

    def _groups(self, groups: dict[str, Doc]) -> None:
        writer = self.writers["Groupe"]
        seen: dict[tuple[str, str], str] = {}
        for group_id, group in sorted(groups.items()):
            key = (group["code"], group["structure"])
            if group["structure"] not in self.structures:
                continue
            if key in seen:  # the XSD keys groups by code and school: a second one would fail the file
                self.export._leave_out(
                    f"GARGroupe {group_id}: code {group['code']!r} already used by {seen[key]} in {group['structure']}"
                )
                continue
            seen[key] = group_id
            element = self.el(
                "GARGroupe",
                self.text("GARGroupeCode", group["code"]),
                self.text("GARStructureUAI", group["structure"]),
                self.text("GARGroupeLibelle", group["label"]),
                self.text("GARGroupeStatut", "DIVISION" if group["kind"] == "class" else "GROUPE"),
            )
            element.extend(
                self.text("GARGroupeDivAppartenance", code) for code in sorted(self.classes_of_group.get(group_id, ()))
            )
            writer.write(element)
        for uai, person_id, code in dict.fromkeys(self.memberships):
            writer.write(
                self.el(
                    "GARPersonGroupe",
                    self.text("GARStructureUAI", uai),
                    self.text("GARPersonIdentifiant", person_id),
                    self.text("GARGroupeCode", code),
                )
            )
        if not self.flavour.primary:
            statuses = {(g["structure"], g["code"]): g["kind"] for g in groups.values()}
            for tag, kind in (("GAREnsGroupeMatiere", "group"), ("GAREnsClasseMatiere", "class")):
                for (uai, person_id, code), subjects in self.taught.items():
                    if statuses.get((uai, code)) == kind:
                        writer.write(
                            self.el(
                                tag,
                                self.text("GARStructureUAI", uai),
                                self.text("GARPersonIdentifiant", person_id),
                                self.text("GARGroupeCode", code),
                                *(self.text("GARMatiereCode", s) for s in subjects),
                            )
                        )
        writer.close()


class GarExport:
    """One export of a tenant's directory."""

    def __init__(
        self, repository: DirectoryRepository, *, tenant: str, id_ent: str, outdir: Path, now: datetime | None = None
    ) -> None:
        self.repo = repository
        self.tenant = tenant
        self.id_ent = id_ent
        self.outdir = outdir
        self.now = now or datetime.now(UTC)
        self.report = ExportReport()
        self.prefix = f"{id_ent}_GAR-ENT"  # this export's files all start so (and the 1D ones too)
        self.stamp = f"Complet_{self.now:%Y%m%d_%H%M%S}"

    def _leave_out(self, what: str) -> None:
        self.report.left_out.append(what)

    async def run(self) -> ExportReport:
        """Write, validate and pack the files; on any failure, leave none of this export's files."""
        self.outdir.mkdir(parents=True, exist_ok=True)
        try:
            return await self._run()
        except BaseException:
            for path in self.outdir.glob(f"{self.prefix}*{self.stamp}*"):
                path.unlink(missing_ok=True)
            raise

    async def _run(self) -> ExportReport:
        structures = {doc["_id"]: doc for doc in await self.repo.structures(self.tenant)}
        groups = {doc["_id"]: doc for doc in await self.repo.groups(self.tenant)}
        labels = {doc["_id"]: doc["label"] for doc in await self.repo.referentials()}
        primary = {uai for uai, doc in structures.items() if is_primary(doc)}
        flavours = [_Files(self, SECONDARY, {u: d for u, d in structures.items() if u not in primary})]
        if primary:
            flavours.append(_Files(self, PRIMARY, {u: d for u, d in structures.items() if u in primary}))
        async for person in self.repo.stream_persons(self.tenant, kinds=("pupil", "staff")):
            for files in flavours:
                profiles = [
                    (p["structure"], p["code"])
                    for p in person.get("profiles", [])
                    if p["structure"] in files.structures
                ]
                if not profiles:
                    continue  # not of this flavour's schools (or detached: not exported at all)
                (files.pupil if person["kind"] == "pupil" else files.staff)(person, profiles, groups)
        for files in flavours:
            files.finish(groups, labels)
        self._pack()
        return self.report

    def _pack(self) -> None:
        archive = self.outdir / f"{self.prefix}_{self.stamp}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for path in self.report.files:
                tar.add(path, arcname=path.name)
        digest = hashlib.md5(archive.read_bytes()).hexdigest()  # noqa: S324 - the GAR asks for MD5
        (self.outdir / f"{archive.name}.md5").write_text(f"{digest}  {archive.name}\n")
        self.report.archive, self.report.md5 = archive, digest
