"""What a person can be told, kind by kind: its words in French, where it leads in the portal, and how each profile is
told by default (a parent by a daily e-mail digest: a family that rarely signs in still learns what happened)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

Channel = Literal["portal", "immediate", "digest", "off"]
CHANNELS: tuple[Channel, ...] = ("portal", "immediate", "digest", "off")
CHANNEL_WORDS: dict[Channel, str] = {
    "portal": "Dans l'ENT seulement",
    "immediate": "Dans l'ENT et par e-mail, tout de suite",
    "digest": "Dans l'ENT et par e-mail, un résumé par jour",
    "off": "Ne pas me prévenir",
}
PUPIL, PARENT = "National_ELV", "National_TUT"


@dataclass(frozen=True)
class Told:
    """One notification as a person reads it: a title, a line, and a path of the portal."""

    title: str
    text: str
    link: str


@dataclass(frozen=True)
class Kind:
    """A kind of notification."""

    name: str
    label: str  # in the preferences: what it is about
    render: Callable[[dict[str, Any]], Told]
    parent: Channel = "digest"  # how a parent is told by default
    others: Channel = "portal"  # how everyone else is

    def default_for(self, profiles: Iterable[str]) -> Channel:
        """A person's default: a parent's when they are a parent and nothing else (a teacher who is a parent too
        reads the ENT every day)."""
        codes = set(profiles)
        return self.parent if codes and codes <= {PARENT} else self.others


def _short(text: str, size: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 1].rstrip() + "…"


def _mail(data: dict[str, Any]) -> Told:
    subject = _short(data.get("subject") or "(sans objet)")
    clip = " (avec pièce jointe)" if data.get("attachments") else ""
    return Told(
        f"Nouveau message de {data.get('sender') or 'un inconnu'}",
        f"« {subject} »{clip}",
        f"/messagerie/message/{data['message']}",
    )


def _resource(data: dict[str, Any]) -> Told:
    return Told(
        "Nouvelle ressource dans votre médiacentre",
        _short(data.get("label") or "Une ressource numérique"),
        "/mediacentre",
    )


def _loan(data: dict[str, Any]) -> Told:
    title = _short(data.get("title") or "un document", 100)
    what = data.get("what")
    if what == "late":
        return Told("Un prêt du CDI est en retard", f"« {title} » devait être rendu le {data.get('due', '?')}.", "/cdi")
    if what == "ready":
        return Told(
            "Une réservation vous attend au CDI",
            f"Le document réservé est mis de côté jusqu'au {data.get('until', '?')} : passez le chercher.",
            "/cdi",
        )
    return Told("Un prêt du CDI est à rendre bientôt", f"« {title} » est à rendre le {data.get('due', '?')}.", "/cdi")


def _news(data: dict[str, Any]) -> Told:
    return Told(
        f"Actualité : {_short(data.get('title') or '', 100)}",
        _short(data.get("summary") or ""),
        f"/actualites/{data.get('id', '')}",
    )


def _admin(data: dict[str, Any]) -> Told:
    what = data.get("what")
    if what == "gar-failed":
        return Told(
            f"L'export vers le GAR de la nuit du {data.get('night', '?')} a échoué",
            _short(data.get("reason") or "Voir les journaux d'identity."),
            "/administration",
        )
    if what == "import-failed":
        return Told("L'import de l'annuaire a échoué", _short(data.get("reason") or ""), "/administration")
    return Told("Le rapport d'import de l'annuaire est prêt", _short(data.get("summary") or ""), "/administration")


STATUS_WORDS = {
    "open": "est en cours de traitement",
    "waiting": "attend votre réponse",
    "resolved": "est résolue",
    "closed": "est fermée",
}


def _support(data: dict[str, Any]) -> Told:
    subject = _short(data.get("subject") or "", 100)
    link = f"/aide/demandes/{data.get('id', '')}"
    if data.get("what") == "status":
        return Told(
            f"Votre demande d'aide {STATUS_WORDS.get(data.get('status', ''), 'a changé')}", f"« {subject} »", link
        )
    return Told(f"{data.get('by') or 'Le support'} a répondu à votre demande d'aide", f"« {subject} »", link)


def _support_queue(data: dict[str, Any]) -> Told:
    subject = _short(data.get("subject") or "", 100)
    link = f"/aide/demandes/{data.get('id', '')}"
    what = data.get("what")
    if what == "overdue":
        late = "n'a pas reçu de première réponse" if data.get("clock") == "first_answer" else "n'est pas résolue"
        return Told(f"Une demande d'aide {late} dans les délais", f"« {subject} »", link)
    if what == "escalated":
        return Told("Une demande d'aide a été transmise à votre support", f"« {subject} »", link)
    return Told("Nouvelle demande d'aide dans votre établissement", f"« {subject} »", link)


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("mail", "Un message reçu dans la messagerie", _mail),
        Kind("mediacentre", "Une ressource ajoutée à votre médiacentre", _resource),
        Kind("library", "Un prêt du CDI à rendre, en retard, ou une réservation qui attend", _loan),
        Kind("news", "Une actualité de l'établissement, de la classe ou de la circonscription", _news),
        Kind("admin", "Administration : rapport d'import, export GAR en échec", _admin, "immediate", "immediate"),
        Kind("support", "Une réponse à votre demande d'aide, ou son changement d'état", _support, "immediate"),
        Kind(
            "support_queue",
            "Référents et supports : une demande d'aide à traiter, transmise ou en retard",
            _support_queue,
            "portal",
            "portal",
        ),
    )
}


def render(kind: str, data: dict[str, Any]) -> Told:
    return KINDS[kind].render(data)
