"""How Maille reads XML that others wrote (AAF feeds, GAR abonnements, an IdP's metadata): lxml's parser options
that expand no entity, load no DTD, fetch nothing from the network, refuse trees beyond lxml's safe limits and drop
comments and processing instructions. Every parser of outside XML takes them (`etree.XMLParser(**UNTRUSTED)`,
`etree.iterparse(…, **UNTRUSTED)`); docs/security.md says why."""

from __future__ import annotations

from typing import Final

UNTRUSTED: Final = {
    "resolve_entities": False,
    "load_dtd": False,
    "no_network": True,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}
