"""Message bodies: HTML sanitised when stored, the plain text and snippet lists show, and the folded words
a mailbox search matches (French: case and accents ignored)."""

from __future__ import annotations

import html
import re

import nh3

from maille_kit.text import folded

TAGS = {
    "a",
    "b",
    "blockquote",
    "br",
    "code",
    "div",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "hr",
    "i",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
}
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "*": {"style"},
}
# Styles that colour and weigh text, nothing that places, sizes or loads anything (no overlay, no CSS beacon).
STYLES = {"color", "background-color", "font-weight", "font-style", "text-decoration", "text-align"}
# Links to the web or mail; never `javascript:` nor `data:`.
SCHEMES = {"https", "http", "mailto"}
# The only images a reader's browser loads: the mail's own attachments, from this site (a remote image would tell
# its sender who read the mail, and when).
OWN_IMAGES = "/api/messaging/v1/"
WORDS_MAX = 5000
_TAG = re.compile(r"<[^>]+>")
_BLOCK = re.compile(r"</?(p|div|br|li|tr|h[1-4]|blockquote|pre)\b[^>]*>", re.I)
_WORD = re.compile(r"\w+")


def _attribute(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src":
        return value if value.startswith(OWN_IMAGES) and ".." not in value else None
    if attribute == "style" and re.search(r"url\(|expression|@import|\\", value, re.I):
        return None
    return value


def sanitise(body: str) -> str:
    """The HTML a message keeps: no scripts, no event handlers, no `javascript:` or `data:` links, no remote images,
    only harmless styles; links opening safely."""
    return nh3.clean(
        body,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
        filter_style_properties=STYLES,
        attribute_filter=_attribute,
        clean_content_tags={"script", "style"},
    )


def text_of(clean_html: str) -> str:
    """The words a person reads, without markup."""
    spaced = _BLOCK.sub("\n", clean_html)
    return " ".join(html.unescape(_TAG.sub(" ", spaced)).split())


def snippet(text: str, size: int = 140) -> str:
    return text if len(text) <= size else text[: size - 1].rstrip() + "…"


def words(*texts: str) -> list[str]:
    """The distinct folded words of texts, for search (at most WORDS_MAX)."""
    found: dict[str, None] = {}
    for text in texts:
        for word in _WORD.findall(folded(text)):
            if word not in found:
                found[word] = None
                if len(found) >= WORDS_MAX:
                    return sorted(found)
    return sorted(found)


def query_words(query: str) -> list[str]:
    return _WORD.findall(folded(query))
