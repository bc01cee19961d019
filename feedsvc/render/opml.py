"""``feeds.opml``: every feed in one OPML 2.0 subscription list (http://opml.org/spec2.opml).

Pure and deterministic like the other renderers: the dates come from the data (the newest
article), never from the clock, so an unchanged site gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from xml.etree.ElementTree import Element, SubElement, indent, tostring

from pydantic import BaseModel, ConfigDict

from ..models import Format

# One outline per feed, pointing at one document: the spec's subscription lists know RSS
# (type="rss", version="RSS2"); readers take an Atom or JSON Feed URL there just as well, so
# a feed without RSS is listed by its Atom, then its JSON Feed document.
PREFERRED: tuple[Format, ...] = ("rss", "atom", "json")
VERSIONS: dict[Format, str] = {"rss": "RSS2", "atom": "ATOM", "json": "JSONFEED"}


class OpmlFeed(BaseModel):
    """One feed as the OPML lists it: ``links`` maps each of its formats to its URL."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str
    description: str
    language: str
    links: dict[Format, str]


def _rfc822(value: datetime) -> str:
    """OPML's dates are RFC 822 (as RSS's): ``Wed, 25 Nov 2026 16:00:00 GMT``."""
    return format_datetime(value.astimezone(UTC), usegmt=True)


def render_opml(
    title: str, feeds: Sequence[OpmlFeed], *, html_url: str, modified: datetime
) -> bytes:
    """OPML 2.0: ``head`` (title, dates of ``modified``), one ``outline`` per feed in ``body``."""
    opml = Element("opml", version="2.0")
    head = SubElement(opml, "head")
    SubElement(head, "title").text = title
    SubElement(head, "dateCreated").text = _rfc822(modified)
    SubElement(head, "dateModified").text = _rfc822(modified)
    body = SubElement(opml, "body")
    for feed in feeds:
        fmt = next((f for f in PREFERRED if f in feed.links), None)
        if fmt is None:
            continue
        attrs = {
            "text": feed.title,
            "title": feed.title,
            "type": "rss",
            "version": VERSIONS[fmt],
            "xmlUrl": feed.links[fmt],
            "htmlUrl": html_url,
            "language": feed.language,
        }
        if feed.description:
            attrs["description"] = feed.description
        SubElement(body, "outline", attrs)
    indent(opml)
    data: bytes = tostring(opml, encoding="utf-8", xml_declaration=True)
    return data + b"\n"
