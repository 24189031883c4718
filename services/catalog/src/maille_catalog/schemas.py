"""What the catalog takes in and gives out: resources as vendors publish them, in the GAR's own field names
(`idRessource`, `nomRessource`, …), so that a vendor's GAR data can be sent as it is (gar.md §4)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# An ARK (Archival Resource Key), as the GAR names resources: `ark:/<NAAN>/<name>`, NAAN five digits.
ARK_PATTERN = r"^ark:/\d{5}/[0-9A-Za-z=~*+@_$.\-/]{1,200}$"
SCOLOMFR = "http://data.education.fr/voc/scolomfr/"

Ark = Annotated[str, Field(pattern=ARK_PATTERN, description="ARK identifier, e.g. ark:/12345/manuel-maths-6e")]


def _https(url: str) -> str:
    if not url.startswith("https://") or len(url) <= len("https://") or any(c.isspace() for c in url):
        raise ValueError("must be an https:// URL")
    return url


def _scolomfr(uri: str) -> str:
    if not uri.startswith(SCOLOMFR):
        raise ValueError(f"must be a ScoLOMfr concept URI ({SCOLOMFR}…)")
    return uri


HttpsUrl = Annotated[str, Field(max_length=2000), AfterValidator(_https)]


class Concept(BaseModel):
    """An entry of a ScoLOMfr vocabulary."""

    model_config = ConfigDict(extra="forbid")
    uri: Annotated[str, Field(max_length=500), AfterValidator(_scolomfr)]
    nom: str = Field(min_length=1, max_length=300)


class Presentation(BaseModel):
    """The GAR's presentation type, e.g. `MAN` (manuel numérique)."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=r"^[A-Z]{2,6}$")
    nom: str = Field(min_length=1, max_length=200)


Concepts = Annotated[list[Concept], Field(default_factory=list, max_length=50)]


class ResourceIn(BaseModel):
    """A resource as its vendor publishes it."""

    model_config = ConfigDict(extra="forbid")
    idRessource: Ark
    nomRessource: str = Field(min_length=1, max_length=300)
    nomEditeur: str = Field(min_length=1, max_length=200, description="the vendor's name as persons see it")
    urlVignette: HttpsUrl | None = None
    urlAccesRessource: HttpsUrl
    typePresentation: Presentation
    typePedagogique: Concepts
    typologieDocument: Concepts
    niveauEducatif: Concepts
    domaineEnseignement: Concepts


class Resource(ResourceIn):
    """A resource of the catalog: what its vendor published, who the vendor is, and where it stands."""

    idType: Literal["ARK"] = "ARK"
    idEditeur: str = Field(description="the vendor: its API client id")
    version: int = Field(description="grows by one at each change")
    statut: Literal["publiee", "retiree"]
    misAJour: datetime


class ResourcePage(BaseModel):
    """A page of a vendor's resources."""

    ressources: list[Resource]
    suivant: int | None = Field(description="offset of the next page, if any")


class BulkLine(BaseModel):
    """What became of one line of a bulk load."""

    ligne: int
    idRessource: str | None
    resultat: Literal["publiee", "mise a jour", "inchangee", "refusee"]
    raison: str | None = None


class BulkReport(BaseModel):
    """A bulk load's report: one entry per line, and the counts."""

    lignes: list[BulkLine]
    publiees: int
    misesAJour: int
    inchangees: int
    refusees: int
