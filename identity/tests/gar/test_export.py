"""The GAR export of an imported directory: the files the GAR expects, each valid against its XSD."""

import hashlib
import tarfile
from pathlib import Path

import pytest
from lxml import etree

from maille_identity.directory.repository import DirectoryRepository
from maille_identity.directory.synthetic import generate
from maille_identity.gar import export as gar
from maille_identity.gar.export import GarExport, InvalidExport
from maille_kit.docstore import Docstore
from maille_kit.outbox import Outbox

from ..directory.test_import import TENANT, run_import

XSD = gar.SCHEMA.parent
# The GAR's published schemas as shipped (docs/specs/gar.md): an edit to them would make every check below moot.
PUBLISHED = {
    "GAR-ENT.xsd": "3326c38a327058ee9d31fbb665c9e9602cfe791c6fe030140b2a8757d29523a7",
    "GAR-ENT-1D.xsd": "787aab9c1f59b95af0cfa2ca814b065d38b4445a56cd73cdecfdab72883a5ca2",
}
NS = {"men": "http://data.education.fr/ns/gar"}


def test_the_shipped_schemas_are_the_gar_s() -> None:
    assert {name: hashlib.sha256((XSD / name).read_bytes()).hexdigest() for name in PUBLISHED} == PUBLISHED


async def export(docstore: Docstore, outdir: Path) -> gar.ExportReport:
    return await GarExport(DirectoryRepository(docstore), tenant=TENANT, id_ent="ENT-TEST", outdir=outdir).run()


async def test_export_of_a_directory(
    tmp_path: Path, docstore: Docstore, outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = generate(tmp_path / "feed", persons=900, schools=2)
    await run_import(docstore, outbox, tmp_path / "feed")
    monkeypatch.setattr(gar, "RECORDS_PER_FILE", 500)  # to see the split without 10,000 pupils
    report = await export(docstore, tmp_path / "out")

    schema = etree.XMLSchema(etree.parse(str(XSD / "GAR-ENT.xsd")))
    names = sorted(p.name for p in report.files)
    for kind in ("Etab", "Eleve", "Enseignant", "Groupe", "RespAff"):
        assert any(n.startswith("ENT-TEST_GAR-ENT_Complet_") and f"_{kind}_0001.xml" in n for n in names), kind
    pupils = 0
    for path in report.files:
        document = etree.parse(str(path))
        assert schema.validate(document), (path.name, schema.error_log)
        assert len(document.getroot()) <= 500
        pupils += len(document.findall("men:GAREleve", NS))
    assert pupils == counts["pupils"]
    assert any(n.endswith("_Eleve_0002.xml") for n in names)  # split over several files
    # A pupil as the GAR sees them: identifier, profile in the GAR's spelling, school.
    first = etree.parse(str(next(p for p in report.files if "_Eleve_0001" in p.name))).find("men:GAREleve", NS)
    assert first.findtext("men:GARPersonProfils/men:GARPersonProfil", namespaces=NS) == "National_elv"
    assert await docstore.db.persons.find_one({"_id": first.findtext("men:GARPersonIdentifiant", namespaces=NS)})
    # The package: every file in the .tar.gz, and its MD5 beside it.
    with tarfile.open(report.archive) as archive:
        assert sorted(archive.getnames()) == names
    md5_line = Path(f"{report.archive}.md5").read_text()
    assert md5_line.split()[0] == hashlib.md5(report.archive.read_bytes()).hexdigest() == report.md5


async def test_what_would_break_a_key_is_left_out_and_reported(
    tmp_path: Path, docstore: Docstore, outbox: Outbox
) -> None:
    generate(tmp_path / "feed", persons=300, schools=1)
    await run_import(docstore, outbox, tmp_path / "feed")
    a_class = await docstore.db.groups.find_one({"kind": "class"})
    await docstore.db.groups.insert_one({**a_class, "_id": a_class["_id"] + "-copy", "label": "another"})
    report = await export(docstore, tmp_path / "out")
    assert any(f"code {a_class['code']!r} already used" in line for line in report.left_out)
    groups = [etree.parse(str(p)) for p in report.files if "_Groupe_" in p.name]
    codes = [
        (g.findtext("men:GARGroupeCode", namespaces=NS), g.findtext("men:GARStructureUAI", namespaces=NS))
        for doc in groups
        for g in doc.findall("men:GARGroupe", NS)
    ]
    assert len(codes) == len(set(codes))


async def test_an_invalid_file_is_never_kept(tmp_path: Path, docstore: Docstore, outbox: Outbox) -> None:
    generate(tmp_path / "feed", persons=300, schools=1)
    await run_import(docstore, outbox, tmp_path / "feed")
    await docstore.db.persons.update_one({"kind": "pupil"}, {"$set": {"last_name": "X" * 600}})  # over the XSD's 500
    with pytest.raises(InvalidExport, match="GARPersonNom"):
        await export(docstore, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []  # no file of this export, valid or not, partial or whole


async def test_primary_schools_have_their_own_files_checked_against_the_1d_schema(
    tmp_path: Path, docstore: Docstore, outbox: Outbox
) -> None:
    counts = generate(tmp_path / "feed", persons=600, schools=2)
    await run_import(docstore, outbox, tmp_path / "feed")
    ecole = await docstore.db.structures.find_one({}, sort=[("_id", 1)])
    await docstore.db.structures.update_one({"_id": ecole["_id"]}, {"$set": {"type": "ECOLE ELEMENTAIRE"}})
    report = await export(docstore, tmp_path / "out")
    one_d = [p for p in report.files if "_GAR-ENT-1D_Complet_" in p.name]
    two_d = [p for p in report.files if "_GAR-ENT_Complet_" in p.name]
    assert len(one_d) == len(two_d) == 5
    schema_1d = etree.XMLSchema(etree.parse(str(XSD / "GAR-ENT-1D.xsd")))
    ns_1d = {"men": "http://data.education.fr/ns/gar/1d"}
    pupils_1d = pupils_2d = 0
    for path in one_d:
        document = etree.parse(str(path))
        assert schema_1d.validate(document), (path.name, schema_1d.error_log)
        pupils_1d += len(document.findall("men:GAREleve", ns_1d))
        schools = {e.text for e in document.iter("{http://data.education.fr/ns/gar/1d}GARStructureUAI")}
        assert schools <= {ecole["_id"]}
    for path in two_d:
        pupils_2d += len(etree.parse(str(path)).findall("men:GAREleve", NS))
    assert pupils_1d > 0 and pupils_1d + pupils_2d == counts["pupils"]
    with tarfile.open(report.archive) as archive:
        assert len(archive.getnames()) == 10


def test_export_command_names_files_with_the_tenant_s_ident(
    tmp_path: Path, docstore_server, database_name: str
) -> None:
    import subprocess
    import sys

    from pymongo import MongoClient

    with MongoClient(docstore_server.url) as client:
        client[database_name]["tenants"].insert_one(
            {"_id": TENANT, "name": "Académie test", "kind": "academie", "gar_id_ent": "ENT-AC-TEST"}
        )
    env = {
        "MAILLE_IDENTITY_MONGODB_URL": docstore_server.url,
        "MAILLE_IDENTITY_DATABASE": database_name,
        "MAILLE_IDENTITY_ENVIRONMENT": "development",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "maille-identity"), "export-gar", str(tmp_path / "out"), "--tenant", TENANT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert all(p.name.startswith("ENT-AC-TEST_GAR-ENT_Complet_") for p in (tmp_path / "out").iterdir())
    with MongoClient(docstore_server.url) as client:
        client.drop_database(database_name)
