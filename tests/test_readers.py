"""What readers see (#11): pages in the article's language, feed names, poll hints, OPML."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from lxml import etree

from feedsvc import seeds
from feedsvc.build import fingerprints
from feedsvc.build.outputs import served_type
from feedsvc.build.publisher import Publisher
from feedsvc.config import DEFAULT_LANGUAGES, load_settings
from feedsvc.models import Article
from feedsvc.render import pages
from feedsvc.render.pages import render_article, render_index
from feedsvc.seeds import parse_seed

from .conftest import Project, parse_feed, seed_text
from .test_pages import FEEDS, SITE, strict, text_of

NOW = datetime(2025, 1, 1, tzinfo=UTC)

ENGLISH = (
    " date 2024-10 The city council approved a new budget for public transport on Monday. "
    "The plan adds three tram lines and more frequent buses in the evening.\n\n"
    "The mayor said the money would come from higher parking fees and a regional grant. "
    "Work on the first line is expected to start next spring, and the whole network should "
    "be finished within five years, according to the transport department.\n"
)
FRENCH = (
    " date 2024-10 Le conseil municipal a approuvé lundi un nouveau budget pour les transports "
    "publics. Le plan prévoit trois nouvelles lignes de tramway et davantage de bus le soir.\n\n"
    "Selon le maire, l'argent proviendra de la hausse des tarifs de stationnement et d'une "
    "subvention régionale. Les travaux de la première ligne devraient commencer au printemps "
    "prochain, et tout le réseau sera achevé d'ici cinq ans.\n"
)


def parsed(text: str, source: str) -> Article:
    return parse_seed(text.encode(), source=source, now=NOW, languages=DEFAULT_LANGUAGES)


def test_catalogue_covers_every_candidate_language() -> None:
    keys = set(pages._LABELS["en"])
    for code in DEFAULT_LANGUAGES:
        assert set(pages._LABELS[code]) == keys, code


@pytest.mark.parametrize(
    ("text", "lang", "published", "subscribe", "back"),
    [
        (ENGLISH, "en", "Published", "Subscribe", "All articles"),
        (FRENCH, "fr", "Publié le", "S’abonner", "Tous les articles"),
    ],
)
def test_article_page_speaks_the_article_language(
    text: str, lang: str, published: str, subscribe: str, back: str
) -> None:
    article = parsed(text, f"{lang}/001_0123456789abcdef.txt")
    assert article.language == lang
    root = strict(render_article(SITE, article, FEEDS))  # the site is German (de-AT)
    assert root.get("lang") == lang
    words = text_of(root)
    assert published in words
    assert subscribe in words
    assert back in words
    assert "Veröffentlicht" not in words
    assert "Abonnieren" not in words
    # the index stays in the site's language, whatever its articles' languages
    index = text_of(strict(render_index(SITE, FEEDS, [article])))
    assert "Abonnieren" in index
    assert "Subscribe" not in index


# --- feed names, descriptions, poll hint, OPML: a real build through the CLI ----------------


def _build(project: Project, config: str = "", *, replace: str = "") -> None:
    text = project.config.read_text(encoding="utf-8")
    if replace:
        text = text.replace(replace, "")
    project.config.write_text(text + config, encoding="utf-8")
    result = project.build()
    assert result.exit_code == 0, result.output


def _seeds(project: Project) -> None:
    project.write_seed(
        "Etat/001_0000000000000001.txt", seed_text("Das Budget für 2025 steht fest.")
    )
    project.write_seed("Sport/002_0000000000000002.txt", seed_text("Rapid gewinnt das Derby klar."))
    project.write_seed("003_0000000000000003.txt", seed_text("Ohne Ordner erscheint dieser Text."))


CATEGORIES = (
    'category_feeds = true\nsubtitle = "Alles aus Wien"\n'
    '\n[[feeds]]\nname = "all"\n'
    '\n[[feeds]]\nname = "kurz"\ndescription = "Nur das Wichtigste"\n'
    '\n[[categories]]\nfolder = "Sport"\nname = "Sport & Spiel"\n'
    'description = "Fußball, Tennis und mehr"\n'
)


def test_feed_titles_and_descriptions_are_their_own(project: Project) -> None:
    _seeds(project)
    _build(project, CATEGORIES)
    feeds = project.feeds
    # the README's `[[feeds]] name = "all"` keeps the main feed's title
    assert project.atom().feed.title == "Testfeed"
    assert parse_feed(feeds / "kurz/atom.xml").feed.title == "Testfeed: kurz"
    # the folder as written, not its slug; or the configured display name
    etat = parse_feed(feeds / "category/etat/rss.xml").feed
    assert etat.title == "Testfeed: Etat"
    sport = parse_feed(feeds / "category/sport/atom.xml").feed
    assert (sport.title, sport.subtitle) == ("Testfeed: Sport & Spiel", "Fußball, Tennis und mehr")
    # the index: each feed once, with its own description, the site's only in the header
    root = strict((feeds / "index.html").read_bytes())
    shown = {
        text_of(li.find("h3")): [text_of(p) for p in li.findall("p") if p.get("class") is None]
        for li in root.iterfind(".//section[@aria-labelledby='feeds']/ul/li")
    }
    assert shown == {
        "Testfeed": [],
        "Testfeed: kurz": ["Nur das Wichtigste"],
        "Testfeed: Etat": [],
        "Testfeed: Sport & Spiel": ["Fußball, Tennis und mehr"],
    }
    assert text_of(root).count("Alles aus Wien") == 1


def test_rss_ttl_is_the_poll_hint_not_the_http_max_age(project: Project) -> None:
    project.write_seed("001_0000000000000001.txt", seed_text("Das Budget für 2025 steht fest."))
    _build(project, "cache_max_age = 30\n")
    channel = etree.parse(project.feeds / "rss.xml").getroot().find("channel")
    assert channel is not None
    assert channel.findtext("ttl") == "15"
    _build(project, "feed_ttl_minutes = 90\n")
    channel = etree.parse(project.feeds / "rss.xml").getroot().find("channel")
    assert channel is not None
    assert channel.findtext("ttl") == "90"
    assert project.rss().feed.ttl == "90"
    # JSON Feed 1.1 has no poll hint (https://www.jsonfeed.org/version/1.1/): none invented
    assert "ttl" not in json.loads((project.feeds / "feed.json").read_text())
    _build(
        project, "feed_ttl_minutes = 0\n", replace="feed_ttl_minutes = 90\n"
    )  # 0: no hint at all
    channel = etree.parse(project.feeds / "rss.xml").getroot().find("channel")
    assert channel is not None
    assert channel.find("ttl") is None


def test_opml_lists_every_feed_and_the_index_links_it(project: Project) -> None:
    _seeds(project)
    _build(project, CATEGORIES)
    feeds = project.feeds
    opml = etree.parse(feeds / "feeds.opml").getroot()
    assert opml.tag == "opml"
    assert opml.get("version") == "2.0"
    head = opml.find("head")
    assert head is not None
    assert head.findtext("title") == "Testfeed"
    # dated by the data (the newest article, 2024-11 in Vienna), never by the clock
    modified = parsedate_to_datetime(head.findtext("dateModified") or "")
    assert datetime(2024, 10, 31, 23, tzinfo=UTC) <= modified < datetime(2024, 11, 1, tzinfo=UTC)
    assert head.findtext("dateCreated") == head.findtext("dateModified")
    outlines = opml.findall("body/outline")
    assert [o.get("text") for o in outlines] == [
        "Testfeed",
        "Testfeed: kurz",
        "Testfeed: Etat",
        "Testfeed: Sport & Spiel",
    ]
    base = "https://news.example.org/"
    for o in outlines:
        assert o.get("type") == "rss"
        assert o.get("version") == "RSS2"
        assert o.get("htmlUrl") == base + "index.html"
        xml_url = o.get("xmlUrl") or ""
        assert xml_url.startswith(base)
        parsed_feed = parse_feed(feeds / xml_url.removeprefix(base))
        assert parsed_feed.feed.title == o.get("text")
    # the index links it in its head and for people
    root = strict((feeds / "index.html").read_bytes())
    outline = [e for e in root.iterfind(".//head/link") if e.get("rel") == "outline"]
    assert [(e.get("type"), e.get("href")) for e in outline] == [
        ("text/x-opml", base + "feeds.opml")
    ]
    assert base + "feeds.opml" in [a.get("href") for a in root.iterfind(".//main//a")]
    # the manifest covers it: removed, the next build puts it back
    before = (feeds / "feeds.opml").read_bytes()
    (feeds / "feeds.opml").unlink()
    _build(project)
    assert (feeds / "feeds.opml").read_bytes() == before


def test_opml_is_served_as_opml(project: Project) -> None:
    project.write_seed("001_0000000000000001.txt", seed_text("Das Budget für 2025 steht fest."))
    _build(project)
    assert served_type("feeds.opml", {}) == "text/x-opml; charset=utf-8"


# --- titles: a new parser version re-titles the feeds without moving `updated` --------------


def test_a_new_parser_version_retitles_without_touching_updated_or_ids(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store of the parser before #11 (titles from the lead only, version 2), rebuilt."""
    project.write_seed("001_0000000000000001.txt", seed_text("Rund zehn Prozent.", date="2024-10"))
    project.write_seed("002_0000000000000002.txt", seed_text("Ein Satz als Aufmacher."))
    settings = load_settings(config=project.config)
    with monkeypatch.context() as old:
        old.setattr(fingerprints, "PARSER_VERSION", "2")
        old.setattr(seeds, "_first_paragraph", lambda blocks: "")
        assert Publisher(settings).build().ok
    before = {e.id: e for e in project.atom().entries}
    feed_updated = project.atom().feed.updated
    assert sorted(e.title for e in before.values()) == [
        "Ein Satz als Aufmacher",
        "Rund zehn Prozent",
    ]
    report = Publisher(settings).build()  # the parser of today: version 3
    assert report.ok
    after = {e.id: e for e in project.atom().entries}
    assert after.keys() == before.keys()  # the same ids
    assert sorted(e.title for e in after.values()) == [
        "Ein Satz als Aufmacher",
        "Rund zehn Prozent. Erster Absatz mit Inhalt",
    ]
    assert {i: e.updated for i, e in after.items()} == {i: e.updated for i, e in before.items()}
    assert project.atom().feed.updated == feed_updated
    # every output follows, the RSS and the article pages too
    assert "Rund zehn Prozent. Erster Absatz mit Inhalt" in {e.title for e in project.rss().entries}
    page = (project.feeds / "articles/0000000000000001.html").read_text(encoding="utf-8")
    assert "<h1>Rund zehn Prozent. Erster Absatz mit Inhalt</h1>" in page


# --- the real corpus, split into categories as the reader saw it ----------------------

FOLDERS = ("Etat", "Inland", "Sport & Spiel")


@pytest.mark.slow
def test_corpus_in_categories_reads_right(project: Project, corpus_dir: Path) -> None:
    """1,014 real articles in three folders: feed names, OPML, each page in its language."""
    for i, f in enumerate(sorted(corpus_dir.iterdir())):
        project.write_seed(f"{FOLDERS[i % 3]}/{f.name}", f.read_bytes())
    # the corpus is German; two foreign articles beside it (the texts above)
    project.write_seed("Inland/2000_00000000000000e1.txt", ENGLISH)
    project.write_seed("Inland/2001_00000000000000f1.txt", FRENCH)
    _build(project, "category_feeds = true\nmax_feed_bytes = 0\n")
    feeds = project.feeds
    titles = {
        "Testfeed": "atom.xml",
        "Testfeed: Etat": "category/etat/atom.xml",
        "Testfeed: Inland": "category/inland/atom.xml",
        "Testfeed: Sport & Spiel": "category/sport-spiel/atom.xml",
    }
    for title, path in titles.items():
        assert parse_feed(feeds / path).feed.title == title
    # the OPML lists every feed once, and every URL is a file the build wrote
    base = "https://news.example.org/"
    outlines = etree.parse(feeds / "feeds.opml").getroot().findall("body/outline")
    assert [o.get("text") for o in outlines] == list(titles)
    for o in outlines:
        assert (feeds / (o.get("xmlUrl") or "").removeprefix(base)).is_file()
    # every article page, through the strict HTML5 parser: its lang and its words agree
    languages: dict[str, int] = {}
    for page in sorted((feeds / "articles").iterdir()):
        root = strict(page.read_bytes())
        lang = str(root.get("lang"))
        languages[lang] = languages.get(lang, 0) + 1
        labels = pages._LABELS.get(lang.split("-")[0], pages._LABELS["en"])
        meta = root.find(".//p[@class='meta']")
        assert meta is not None
        assert text_of(meta).startswith(labels["published"] + " "), (page.name, lang)
        assert labels["subscribe"] in text_of(root)
    assert languages == {"de-AT": 1014, "en": 1, "fr": 1}
