"""What a request can be about, in the words people use, and where each goes when the school cannot settle it: the
académie's support (accounts, resources, using the ENT), the collectivité's desk (computers, network, the school's
equipment). A fault of Maille itself goes to the platform's operators, whatever its category."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DeskKind = Literal["academie", "collectivite", "platform"]
DESK_KINDS: dict[DeskKind, str] = {
    "academie": "Support de l'académie",
    "collectivite": "Assistance de la collectivité",
    "platform": "Exploitants de la plateforme",
}


@dataclass(frozen=True)
class Category:
    code: str
    label: str
    escalates_to: DeskKind


CATEGORIES: dict[str, Category] = {
    c.code: c
    for c in (
        Category("account", "Compte et mot de passe", "academie"),
        Category("resource", "Une ressource ou le médiacentre", "academie"),
        Category("mail", "La messagerie", "academie"),
        Category("library", "Le CDI", "academie"),
        Category("equipment", "Matériel et réseau", "collectivite"),
        Category("classroom", "Utiliser l'ENT en classe", "academie"),
        Category("other", "Autre chose", "academie"),
    )
}

STATUSES: dict[str, str] = {
    "new": "Nouvelle",
    "open": "En cours",
    "waiting": "En attente de votre réponse",
    "resolved": "Résolue",
    "closed": "Fermée",
}
ACTIVE = ("new", "open", "waiting")
