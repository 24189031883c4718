"""The GAR directory export: the tenant's directory as the GAR's five kinds of XML file.

`{idENT}_GAR-ENT_Complet_{yyyyMMdd_HHmmss}_{Etab|Eleve|Enseignant|Groupe|RespAff}_{NNNN}.xml`, at most
10,000 records a file, each validated against `GAR-ENT.xsd` before it is kept, then packed as one
`.tar.gz` with an `.md5` beside it (../shared/specs/gar.md §2). Every night is a complete picture.

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

NS = "http://data.education.fr/ns/gar"
VERSION = "1.7"
RECORDS_PER_FILE = 10_000
KINDS = ("Etab", "Eleve", "Enseignant", "Groupe", "RespAff")
Doc = dict[str, Any]


# The GAR's published schemas, shipped with the package (a test keeps them equal to ../shared/specs/gar/).
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

    def __init__(self, outdir: Path, prefix: str, kind: str, schema: etree.XMLSchema, report: ExportReport) -> None:
        self.outdir, self.prefix, self.kind, self.schema, self.report = outdir, prefix, kind, schema, report
        self.number = 0
        self.count = 0
        self._file = None
        self._ctx = None
        self._xf = None
        self._root = None
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
        self._root = self._xf.element(f"{{{NS}}}GAR-ENT-{self.kind}", {"Version": VERSION}, nsmap={"men": NS})
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
        document = etree.parse(str(self._path), etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
        if not self.schema.validate(document):
            errors = "; ".join(f"line {e.line}: {e.message}" for e in list(self.schema.error_log)[:5])
            self._path.unlink()
            raise InvalidExport(f"{final.name} does not pass GAR-ENT.xsd: {errors}")
        self._path.rename(final)
        self.report.files.append(final)


def _el(tag: str, *children: etree._Element) -> etree._Element:
    element = etree.Element(f"{{{NS}}}{tag}", nsmap={"men": NS})
    element.extend(children)
    return element


def _text(tag: str, value: str) -> etree._Element:
    element = etree.Element(f"{{{NS}}}{tag}", nsmap={"men": NS})
    element.text = value
    return element


def _identity(person: Doc, profiles: list[tuple[str, str]]) -> list[etree._Element]:
    """The GARIdentite part of a pupil or a teacher."""
    parts = [_text("GARPersonIdentifiant", person["_id"])]
    parts += [_el("GARPersonProfils", _text("GARStructureUAI", uai), _text("GARPersonProfil", gar_profile(code))) for uai, code in profiles]
    if person.get("birth_name"):
        parts.append(_text("GARPersonNomPatro", person["birth_name"]))
    parts.append(_text("GARPersonNom", person["last_name"]))
    parts.append(_text("GARPersonPrenom", person["first_name"]))
    # At least one: the GAR takes the first name when there is no other.
    for other in person.get("other_first_names") or [person["first_name"]]:
        parts.append(_text("GARPersonAutresPrenoms", other))
    if person.get("civility"):
        parts.append(_text("GARPersonCivilite", person["civility"]))
    return parts


class GarExport:
    """One export of a tenant's directory."""

    def __init__(self, repository: DirectoryRepository, *, tenant: str, id_ent: str, outdir: Path, now: datetime | None = None) -> None:
        self.repo = repository
        self.tenant = tenant
        self.id_ent = id_ent
        self.outdir = outdir
        self.now = now or datetime.now(UTC)
        self.report = ExportReport()
        self.schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
        self.prefix = f"{id_ent}_GAR-ENT_Complet_{self.now:%Y%m%d_%H%M%S}"

    def _writer(self, kind: str) -> _KindWriter:
        return _KindWriter(self.outdir, self.prefix, kind, self.schema, self.report)

    def _leave_out(self, what: str) -> None:
        self.report.left_out.append(what)

    async def run(self) -> ExportReport:
        """Write, validate and pack the five kinds of file; on any failure, leave none of this export's files."""
        self.outdir.mkdir(parents=True, exist_ok=True)
        try:
            return await self._run()
        except BaseException:
            for path in self.outdir.glob(f"{self.prefix}*"):
                path.unlink(missing_ok=True)
            raise

    async def _run(self) -> ExportReport:
        structures = {doc["_id"]: doc for doc in await self.repo.structures(self.tenant)}
        groups = {doc["_id"]: doc for doc in await self.repo.groups(self.tenant)}
        labels = {doc["_id"]: doc["label"] for doc in await self.repo.referentials()}
        pupils, teachers, resp_aff = self._writer("Eleve"), self._writer("Enseignant"), self._writer("RespAff")
        person_mefs: list[tuple[str, str, str]] = []  # (uai, person, mef) of pupils
        pupil_subjects: list[tuple[str, str, str]] = []
        teacher_mefs: list[tuple[str, str, str]] = []
        memberships: list[tuple[str, str, str]] = []  # (uai, person, group code)
        taught: dict[tuple[str, str, str], list[str]] = defaultdict(list)  # (uai, person, group code) -> subjects
        mefs_used: dict[tuple[str, str], str] = {}
        subjects_used: set[tuple[str, str]] = set()
        classes_of_group: dict[str, set[str]] = defaultdict(set)  # group id -> class codes of its pupils
        async for person in self.repo.stream_persons(self.tenant, kinds=("pupil", "staff")):
            profiles = [(p["structure"], p["code"]) for p in person.get("profiles", []) if p["structure"] in structures]
            if not profiles:
                continue  # detached: not exported
            schools = sorted({uai for uai, _ in profiles})
            if person["kind"] == "pupil":
                element = _el("GAREleve", *_identity(person, profiles), *(_text("GARPersonEtab", uai) for uai in schools))
                if person.get("birth_date"):
                    element.append(_text("GARPersonDateNaissance", person["birth_date"]))
                pupils.write(element)
                attached = person.get("attached") or schools[0]
                if person.get("mef"):
                    person_mefs.append((attached, person["_id"], person["mef"]))
                    mefs_used[(attached, person["mef"])] = person.get("mef_label") or person["mef"]
                for subject in person.get("subjects", []):
                    pupil_subjects.append((attached, person["_id"], subject))
                    subjects_used.add((attached, subject))
                classes = [g for g in person.get("classes", []) if g in groups]
                for group_id in classes + [g for g in person.get("groups", []) if g in groups]:
                    memberships.append((groups[group_id]["structure"], person["_id"], groups[group_id]["code"]))
                for group_id in person.get("groups", []):
                    classes_of_group[group_id].update(groups[c]["code"] for c in classes if groups[c]["structure"] == group_id.split("$", 1)[0])
            else:
                element = _el("GAREnseignant", *_identity(person, profiles), *(_text("GARPersonEtab", uai) for uai in schools))
                if person.get("birth_date"):
                    element.append(_text("GARPersonDateNaissance", person["birth_date"]))
                disciplines: dict[str, list[str]] = defaultdict(list)
                for function in person.get("functions", []):
                    code = function.get("discipline") or function["code"]
                    if function["structure"] in structures and code not in disciplines[function["structure"]]:
                        disciplines[function["structure"]].append(code)
                for uai, codes in sorted(disciplines.items()):
                    element.append(_el("GAREnsDisciplinesPostes", _text("GARStructureUAI", uai), *(_text("GAREnsDisciplinePosteCode", c) for c in codes)))
                for mail in person.get("emails", []):
                    element.append(_text("GARPersonMail", mail))
                teachers.write(element)
                for mef in person.get("mefs", []):
                    teacher_mefs.append((schools[0], person["_id"], mef))
                for entry in person.get("teaching", []):
                    group_id, _, subject = entry.rpartition("$")
                    if group_id in groups:
                        group = groups[group_id]
                        subjects = taught[(group["structure"], person["_id"], group["code"])]
                        if subject not in subjects:
                            subjects.append(subject)
                        subjects_used.add((group["structure"], subject))
                if any(code == DIRECTION for _, code in profiles) or "gar_resp_aff" in person.get("roles", []):
                    self._resp_aff(resp_aff, person, [uai for uai, code in profiles if code == DIRECTION] or schools)
        for writer, records, tag in ((pupils, person_mefs, "GARPersonMEF"), (pupils, pupil_subjects, "GAREleveEnseignement"),
                                     (teachers, teacher_mefs, "GARPersonMEF")):
            code_tag = "GARMEFCode" if tag == "GARPersonMEF" else "GARMatiereCode"
            for uai, person_id, code in dict.fromkeys(records):  # once each: the XSD keys them
                writer.write(_el(tag, _text("GARStructureUAI", uai), _text("GARPersonIdentifiant", person_id), _text(code_tag, code)))
        for writer in (pupils, teachers, resp_aff):
            writer.close()
        self._write_structures(structures, mefs_used, subjects_used, labels)
        self._write_groups(structures, groups, memberships, taught, classes_of_group)
        self._pack()
        return self.report

    def _resp_aff(self, writer: _KindWriter, person: Doc, schools: list[str]) -> None:
        if not person.get("emails"):
            self._leave_out(f"GARRespAff {person['_id']}: no email (the GAR requires one)")
            return
        element = _el("GARRespAff", _text("GARPersonIdentifiant", person["_id"]), _text("GARPersonNom", person["last_name"]),
                      _text("GARPersonPrenom", person["first_name"]))
        if person.get("civility"):
            element.append(_text("GARPersonCivilite", person["civility"]))
        element.extend(_text("GARPersonMail", mail) for mail in person["emails"])
        element.extend(_text("GARRespAffEtab", uai) for uai in schools)
        writer.write(element)

    def _write_structures(self, structures: dict[str, Doc], mefs: dict[tuple[str, str], str], subjects: set[tuple[str, str]], labels: dict[str, str]) -> None:
        writer = self._writer("Etab")
        for uai, doc in sorted(structures.items()):
            element = _el("GAREtab", _text("GARStructureUAI", uai), _text("GARStructureNomCourant", doc["name"]))
            if doc.get("seat"):
                element.append(_text("GAREtablissementStructRattachFctl", doc["seat"]))
            if doc.get("contract"):
                element.append(_text("GARStructureContrat", doc["contract"]))
            if doc.get("phone"):
                element.append(_text("GARStructureTelephone", doc["phone"]))
            if doc.get("email"):
                element.append(_text("GARStructureEmail", doc["email"]))
            writer.write(element)
        for (uai, code), label in sorted(mefs.items()):
            writer.write(_el("GARMEF", _text("GARStructureUAI", uai), _text("GARMEFCode", code),
                             _text("GARMEFLibelle", labels.get(f"MefEducNat:{code}", label))))
        for uai, code in sorted(subjects):
            writer.write(_el("GARMatiere", _text("GARStructureUAI", uai), _text("GARMatiereCode", code),
                             _text("GARMatiereLibelle", labels.get(f"MatEducNat:{code}", code))))
        writer.close()

    def _write_groups(self, structures: dict[str, Doc], groups: dict[str, Doc], memberships: list[tuple[str, str, str]],
                      taught: dict[tuple[str, str, str], list[str]], classes_of_group: dict[str, set[str]]) -> None:
        writer = self._writer("Groupe")
        seen: dict[tuple[str, str], str] = {}
        for group_id, group in sorted(groups.items()):
            key = (group["code"], group["structure"])
            if group["structure"] not in structures:
                continue
            if key in seen:  # the XSD keys groups by code and school: a second one would fail the file
                self._leave_out(f"GARGroupe {group_id}: code {group['code']!r} already used by {seen[key]} in {group['structure']}")
                continue
            seen[key] = group_id
            element = _el("GARGroupe", _text("GARGroupeCode", group["code"]), _text("GARStructureUAI", group["structure"]),
                          _text("GARGroupeLibelle", group["label"]),
                          _text("GARGroupeStatut", "DIVISION" if group["kind"] == "class" else "GROUPE"))
            element.extend(_text("GARGroupeDivAppartenance", code) for code in sorted(classes_of_group.get(group_id, ())))
            writer.write(element)
        for uai, person_id, code in dict.fromkeys(memberships):
            writer.write(_el("GARPersonGroupe", _text("GARStructureUAI", uai), _text("GARPersonIdentifiant", person_id), _text("GARGroupeCode", code)))
        statuses = {(g["structure"], g["code"]): g["kind"] for g in groups.values()}
        for tag, kind in (("GAREnsGroupeMatiere", "group"), ("GAREnsClasseMatiere", "class")):
            for (uai, person_id, code), subjects in taught.items():
                if statuses.get((uai, code)) == kind:
                    writer.write(_el(tag, _text("GARStructureUAI", uai), _text("GARPersonIdentifiant", person_id),
                                     _text("GARGroupeCode", code), *(_text("GARMatiereCode", s) for s in subjects)))
        writer.close()

    def _pack(self) -> None:
        archive = self.outdir / f"{self.prefix}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for path in self.report.files:
                tar.add(path, arcname=path.name)
        digest = hashlib.md5(archive.read_bytes()).hexdigest()  # noqa: S324 - the GAR asks for MD5
        (self.outdir / f"{archive.name}.md5").write_text(f"{digest}  {archive.name}\n")
        self.report.archive, self.report.md5 = archive, digest

