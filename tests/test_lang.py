"""Per-article language detection: the pure detector, its config, and a real build."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feedsvc import ConfigError, load_settings
from feedsvc._lang import detect_language
from feedsvc.build.publisher import Publisher
from feedsvc.config import DEFAULT_LANGUAGE_MIN_CONFIDENCE, DEFAULT_LANGUAGES
from feedsvc.seeds import parse_seed

from .conftest import SAMPLE, Project, parse_feed, seed_text

GERMAN = (
    "US-Außenminister Antony Blinken hat eine harte Antwort auf die Stationierung "
    "nordkoreanischer Soldaten in Russland angekündigt. Die Regierung in Wien prüft das."
)
ENGLISH = (
    "The foreign minister announced a tough response on Wednesday after soldiers were "
    "deployed near the border, and the government said it would review the situation."
)
FRENCH = (
    "Le ministre des Affaires étrangères a annoncé mercredi une réponse ferme après le "
    "déploiement de soldats près de la frontière, a indiqué le gouvernement."
)


def detect(text: str, *, candidates: tuple[str, ...] = DEFAULT_LANGUAGES) -> str:
    return detect_language(
        text,
        default="de-AT",
        candidates=candidates,
        min_confidence=DEFAULT_LANGUAGE_MIN_CONFIDENCE,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [(GERMAN, "de-AT"), (ENGLISH, "en"), (FRENCH, "fr")],
)
def test_detects_language_and_keeps_the_default_tag_for_its_own_language(
    text: str, expected: str
) -> None:
    assert detect(text) == expected


@pytest.mark.parametrize("text", ["OK.", "", "Taxi!", "Hotel Restaurant", "12 34 56 78"])
def test_short_or_ambiguous_text_keeps_the_default(text: str) -> None:
    assert detect(text) == "de-AT"


def test_fewer_than_two_candidates_means_no_detection() -> None:
    assert detect(ENGLISH, candidates=()) == "de-AT"
    assert detect(ENGLISH, candidates=("en",)) == "de-AT"


def test_an_unreachable_min_confidence_keeps_the_default() -> None:
    got = detect_language(
        "Ciao a tutti", default="de", candidates=DEFAULT_LANGUAGES, min_confidence=1.0
    )
    assert got == "de"


def test_detection_is_deterministic() -> None:
    texts = [GERMAN, ENGLISH, FRENCH, "OK.", "Ciao, come stai oggi?", "Hola amigo mío"]
    first = [detect(t) for t in texts]
    for _ in range(5):
        assert [detect(t) for t in reversed(texts)] == first[::-1]


def test_parse_seed_detects_on_lead_and_paragraphs_only_when_asked() -> None:
    data = seed_text(ENGLISH, body="The talks will continue next week in Geneva.").encode()
    now = datetime(2025, 1, 1, tzinfo=UTC)
    plain = parse_seed(data, source="001_0123456789abcdef.txt", now=now, language="de-AT")
    assert plain.language == "de-AT"  # existing callers: no candidates, no detection
    detected = parse_seed(
        data, source="001_0123456789abcdef.txt", now=now, language="de-AT", languages=("de", "en")
    )
    assert detected.language == "en"
    german = parse_seed(
        SAMPLE.read_bytes(), source=SAMPLE.name, now=now, language="de-AT", languages=("de", "en")
    )
    assert german.language == "de-AT"


@pytest.mark.parametrize(
    ("toml", "reason"),
    [
        ('languages = ["de", "xx"]', "unknown language code(s) 'xx'; allowed ISO 639-1 codes: af,"),
        ('languages = ["de", "EN", "klingon"]', "'klingon'"),
        ("language_min_confidence = 1.5", "less than or equal to 1"),
    ],
)
def test_bad_language_config_names_the_key(tmp_path: Path, toml: str, reason: str) -> None:
    path = tmp_path / "feedsvc.toml"
    path.write_text(toml + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(config=path, env={})
    assert info.value.key == toml.split(" ", 1)[0]
    assert reason in str(info.value)


def test_languages_from_the_environment_are_split_and_normalized(tmp_path: Path) -> None:
    path = tmp_path / "feedsvc.toml"
    path.write_text("", encoding="utf-8")
    settings = load_settings(config=path, env={"FEEDSVC_LANGUAGES": "de, EN fr,de"})
    assert settings.languages == ("de", "en", "fr")
    assert settings.detect_language is True


def _languages(project: Project) -> dict[str, str]:
    with Publisher(load_settings(config=project.config, env={})).open_store() as store:
        return {a.source: a.language for a in store.live_articles()}


@pytest.mark.slow
def test_build_stores_each_articles_language_and_a_switch_reparses(project: Project) -> None:
    project.write_seed("000_aaaaaaaaaaaaaaaa.txt", seed_text(GERMAN))
    project.write_seed("001_bbbbbbbbbbbbbbbb.txt", SAMPLE.read_text(encoding="utf-8"))
    project.write_seed(
        "002_cccccccccccccccc.txt",
        seed_text(ENGLISH, body="The talks will continue next week.\n\nNo date was set."),
    )
    result = project.build()
    assert result.exit_code == 0, result.output
    assert _languages(project) == {
        "000_aaaaaaaaaaaaaaaa.txt": "de-AT",
        "001_bbbbbbbbbbbbbbbb.txt": "de-AT",
        "002_cccccccccccccccc.txt": "en",
    }
    # the feed keeps the configured language; an entry in another one says so with xml:lang
    atom = project.atom()
    assert atom.feed.language == "de-AT"
    langs = {e.id.rsplit(":", 1)[1]: e.title_detail.language for e in atom.entries}
    assert langs == {
        "aaaaaaaaaaaaaaaa": "de-AT",
        "bbbbbbbbbbbbbbbb": "de-AT",
        "cccccccccccccccc": "en",
    }
    items = json.loads((project.feeds / "feed.json").read_bytes())["items"]
    assert {i["id"].rsplit(":", 1)[1]: i["language"] for i in items}["cccccccccccccccc"] == "en"

    with project.config.open("a", encoding="utf-8") as f:
        f.write("detect_language = false\n")
    result = project.build()
    assert result.exit_code == 0, result.output
    assert set(_languages(project).values()) == {"de-AT"}  # the fingerprint forced a re-parse


def test_a_language_feed_holds_its_language_and_says_so(project: Project) -> None:
    project.write_seed("000_aaaaaaaaaaaaaaaa.txt", seed_text(GERMAN))
    project.write_seed(
        "002_cccccccccccccccc.txt",
        seed_text(ENGLISH, body="The talks will continue next week.\n\nNo date was set."),
    )
    with project.config.open("a", encoding="utf-8") as f:
        f.write('\n[[feeds]]\nname = "all"\n\n[[feeds]]\nname = "english"\nlanguages = ["en"]\n')
    assert project.build().exit_code == 0
    english = parse_feed(project.feeds / "english" / "atom.xml")
    assert english.feed.language == "en"
    assert [e.id.rsplit(":", 1)[1] for e in english.entries] == ["cccccccccccccccc"]
    rss = parse_feed(project.feeds / "english" / "rss.xml")
    assert rss.feed.language == "en"
