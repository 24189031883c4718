"""Text as a French search compares it."""

from __future__ import annotations

import unicodedata


def folded(text: str) -> str:
    """Lower case without accents (`Éloïse` → `eloise`)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
