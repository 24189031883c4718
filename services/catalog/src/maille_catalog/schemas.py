"""What the catalog takes in and gives out: resources as vendors publish them, in the GAR's own field names
(`idRessource`, `nomRessource`, …), so that a vendor's GAR data can be sent as it is (gar.md §4)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from maille_kit.uai import UaiField as Uai

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
    suivant: str | None = Field(description="the next page's cursor (pass it as `cursor`), if any")


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


# Subscriptions (abonnements), in the GAR's field names and semantics (gar.md §3).

PUBLICS = ("ELEVE", "ENSEIGNANT", "DOCUMENTALISTE", "AUTRE PERSONNEL")
# Each public's own licence count.
LICENCE_FIELDS = {
    "ELEVE": "nbLicenceEleve",
    "ENSEIGNANT": "nbLicenceEnseignant",
    "DOCUMENTALISTE": "nbLicenceProfDoc",
    "AUTRE PERSONNEL": "nbLicenceAutrePersonnel",
}
PARIS = ZoneInfo("Europe/Paris")

Public = Literal["ELEVE", "ENSEIGNANT", "DOCUMENTALISTE", "AUTRE PERSONNEL"]
Licences = Annotated[
    int | Literal["ILLIMITE"] | None, Field(default=None, description="a number of licences, or ILLIMITE")
]


def _paris(value: datetime) -> datetime:
    # The GAR writes local times without an offset (2021-09-02T16:18:27): French time.
    return value.replace(tzinfo=PARIS) if value.tzinfo is None else value


GarTime = Annotated[datetime, AfterValidator(_paris)]


class SubscriptionChange(BaseModel):
    """What a vendor may change of a subscription (the GAR's update: no `uaiEtab`, the start kept)."""

    model_config = ConfigDict(extra="forbid")
    idAbonnement: str = Field(pattern=r"^[A-Za-z0-9_.:\-]{1,45}$", description="at most 45 characters, unique")
    commentaireAbonnement: str | None = Field(None, max_length=1000)
    idDistributeurCom: str = Field(
        pattern=r"^[0-9]{9}_[0-9]{15}[0-9X]$", description="the distributor: <SIREN>_<ISNI>, 26 characters"
    )
    idRessource: Ark
    typeIdRessource: Literal["ark"] = "ark"
    libelleRessource: str = Field(min_length=1, max_length=300)
    debutValidite: GarTime | None = Field(None, description="ignored on update: the start is kept")
    finValidite: GarTime
    anneeFinValidite: str | None = Field(
        None, pattern=r"^[0-9]{4}-[0-9]{4}$", description="school year of the end, e.g. 2026-2027"
    )
    categorieAffectation: Literal["transferable", "non transferable"]
    typeAffectation: Literal["ETABL", "INDIV"]
    nbLicenceGlobale: Licences
    nbLicenceEnseignant: Licences
    nbLicenceEleve: Licences
    nbLicenceProfDoc: Licences
    nbLicenceAutrePersonnel: Licences
    publicCible: list[Public] = Field(min_length=1, max_length=4)
    codeProjetRessource: str | None = Field(None, max_length=100)

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.debutValidite is not None and self.finValidite <= self.debutValidite:
            raise ValueError("finValidite must be after debutValidite")
        if self.anneeFinValidite is not None:
            first, second = (int(y) for y in self.anneeFinValidite.split("-"))
            if second != first + 1:
                raise ValueError("anneeFinValidite must be two consecutive years, e.g. 2026-2027")
        for name in ("nbLicenceGlobale", *LICENCE_FIELDS.values()):
            value = getattr(self, name)
            if isinstance(value, int) and not 0 <= value <= 10_000_000:
                raise ValueError(f"{name} must be a number from 0 to 10000000, or ILLIMITE")
        if self.typeAffectation == "INDIV" and all(
            getattr(self, n) is None for n in ("nbLicenceGlobale", *LICENCE_FIELDS.values())
        ):
            raise ValueError("a per-person (INDIV) subscription needs nbLicenceGlobale or a licence count per public")
        if len(set(self.publicCible)) != len(self.publicCible):
            raise ValueError("publicCible names a public twice")
        return self


class SubscriptionIn(SubscriptionChange):
    """A new subscription."""

    debutValidite: GarTime
    uaiEtab: list[Uai] = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _schools(self) -> Self:
        if len(set(self.uaiEtab)) != len(self.uaiEtab):
            raise ValueError("uaiEtab names a school twice")
        return self


class Subscription(SubscriptionIn):
    """A subscription of the catalog, with its licences in use."""

    model_config = ConfigDict(extra="ignore")
    idEditeur: str
    version: int
    licencesAffectees: dict[str, int] = Field(
        description="licences in use: in all (`total`) and per public (spent ones included)"
    )
    licencesDepensees: dict[str, int] = Field(
        default_factory=dict, description="of those, licences of a non transferable subscription released: spent"
    )
    etablissementsRetires: list[str] = Field(description="schools that left the directory meanwhile")
    expiree: bool
    misAJour: datetime


class SubscriptionPage(BaseModel):
    abonnements: list[Subscription]
    suivant: str | None = Field(description="the next page's cursor (pass it as `cursor`), if any")
