"""The GAR's abonnement XML (namespace `http://www.atosworldline.com/wsabonnement/v1.0/`), read safely and
written back, so that a vendor's existing GAR tooling can point at Maille (gar.md §3).

Reading never resolves an entity and never fetches anything: a body with a DOCTYPE is refused outright.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lxml import etree

from maille_catalog.schemas import PARIS
from maille_kit.xml import UNTRUSTED

NS = "http://www.atosworldline.com/wsabonnement/v1.0/"
REPEATED = ("uaiEtab", "publicCible")
COUNTS = ("nbLicenceGlobale", "nbLicenceEnseignant", "nbLicenceEleve", "nbLicenceProfDoc", "nbLicenceAutrePersonnel")
ORDER = (
    "idAbonnement",
    "commentaireAbonnement",
    "idDistributeurCom",
    "idRessource",
    "typeIdRessource",
    "libelleRessource",
    "debutValidite",
    "finValidite",
    "anneeFinValidite",
    "uaiEtab",
    "categorieAffectation",
    "typeAffectation",
    *COUNTS,
    "publicCible",
    "codeProjetRessource",
)
FILTERS = ("uaiEtab", "idRessource", "idAbonnement", "typeAffectation", "idDistributeurCom", "codeProjetRessource")


class BadXml(ValueError):
    """The body is not an abonnement the catalog can read; says why."""


def _parse(body: bytes, root_name: str) -> etree._Element:
    parser = etree.XMLParser(dtd_validation=False, **UNTRUSTED)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise BadXml(f"the body is not well-formed XML: {exc}") from None
    if root.getroottree().docinfo.doctype or "<!ENTITY" in body.decode("utf-8", "replace").upper():
        raise BadXml("XML with a DOCTYPE or entity declarations is refused")
    if etree.QName(root).localname != root_name or etree.QName(root).namespace not in (NS, None):
        raise BadXml(f"the root element must be <{root_name}> in namespace {NS}")
    return root


def read_abonnement(body: bytes) -> dict[str, Any]:
    """An `<abonnement>` as a dict of the GAR's field names (checked afterwards by the schemas)."""
    data: dict[str, Any] = {}
    for child in _parse(body, "abonnement"):
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child).localname
        if len(child):
            raise BadXml(f"<{name}> must hold text, not elements")
        text = (child.text or "").strip()
        if name in REPEATED:
            data.setdefault(name, []).append(text)
        elif name in data:
            raise BadXml(f"<{name}> is given twice")
        elif name in COUNTS:
            data[name] = text if text == "ILLIMITE" else _number(name, text)
        else:
            data[name] = text
    return data


def _number(name: str, text: str) -> int:
    if not text.isdigit():
        raise BadXml(f"<{name}> must be a number or ILLIMITE, not {text!r}")
    return int(text)


def read_filters(body: bytes) -> dict[str, str]:
    """A listing's `<filtres>`: filter name -> value (an empty body: no filter)."""
    if not body.strip():
        return {}
    filters: dict[str, str] = {}
    for element in _parse(body, "filtres"):
        if not isinstance(element.tag, str):
            continue
        name = element.findtext(f"{{{NS}}}filtreNom") or element.findtext("filtreNom")
        value = element.findtext(f"{{{NS}}}filtreValeur") or element.findtext("filtreValeur")
        if name not in FILTERS or not value:
            raise BadXml(f"a <filtre> needs <filtreNom> (one of {', '.join(FILTERS)}) and <filtreValeur>")
        filters[name] = value.strip()
    return filters


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M:%S")
    return str(value)


def abonnement_element(doc: dict[str, Any]) -> etree._Element:
    element = etree.Element(f"{{{NS}}}abonnement", nsmap={None: NS})
    for name in ORDER:
        value = doc.get(name)
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                etree.SubElement(element, f"{{{NS}}}{name}").text = _text(item)
    return element


def write_abonnement(doc: dict[str, Any]) -> bytes:
    return etree.tostring(abonnement_element(doc), xml_declaration=True, encoding="UTF-8")


def write_abonnements(docs: list[dict[str, Any]]) -> bytes:
    root = etree.Element(f"{{{NS}}}abonnements", nsmap={None: NS})
    root.extend(abonnement_element(doc) for doc in docs)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
