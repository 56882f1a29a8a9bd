"""The English-German dictionary: Ding's line format, the cached table, and the real Debian file where installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.lang.dictionary import Dictionary, english_terms, english_words, load_dictionary, parse, translations_used
from rag.settings import Settings

# Lines in Ding's format (``German :: English``, ``|`` between aligned sub-entries, ``;`` between alternatives).
LINES = [
    "# Version :: devel 2023-01-30\n",
    "Erlös {m}; (monetärer) Ertrag {m} [fin.] | Erlöse {pl}; Erträge {pl} | periodfremde Erträge {pl} :: "
    "revenue | revenues | unearned revenue\n",
    "etw. erwarten {vt} | erwartend | erwartet :: to expect sth. | expecting | expected\n",
    "Finanzvorstand {m}; Finanzchefin {f}; Leiter {m} Finanzwesen [econ.] :: chief financial officer /CFO/\n",
    "das A und O [ugs.] :: the nuts and bolts [coll.]\n",
    "aufwenden; ausgeben {vt} | aufwendend; ausgebend :: to spend {spent; spent} | spending\n",
    "no separator here\n",
]


def test_one_word_translations_are_kept_with_placeholders_and_annotations_dropped():
    table = parse(LINES)
    assert table["revenue"] == ["Erlös", "Ertrag"]
    assert table["revenues"] == ["Erlöse", "Erträge"]
    assert "unearned" not in table  # a phrase translates no single word of it
    assert table["expect"] == ["erwarten"] and table["expected"] == ["erwartet"]
    assert table["cfo"] == ["Finanzchefin", "Finanzvorstand"]  # the abbreviation; "Leiter Finanzwesen" is a phrase
    assert "nuts" not in table and "version" not in table
    assert table["spend"] == ["aufwenden", "ausgeben"]  # the semicolon inside "{spent; spent}" ends no alternative


def test_phrases_of_up_to_three_words_are_kept_whole_with_their_translations():
    table = parse(LINES)
    assert table["unearned revenue"] == ["periodfremde Erträge"]
    assert table["chief financial officer"] == ["Finanzchefin", "Finanzvorstand", "Leiter Finanzwesen"]
    assert "nuts and bolts" not in table  # "das A und O" has four words


def test_a_question_is_looked_up_by_its_words_and_the_phrases_in_it():
    terms = english_terms("Who is the chief financial officer of Nordlicht?")
    assert {"chief", "financial", "officer", "chief financial officer", "financial officer"} <= set(terms)
    assert "who the" not in terms and "officer nordlicht" not in terms
    dictionary = Dictionary(parse(LINES))
    used = {"finanzvorstand", "leit", "finanzwes"}  # the stems of the passages at hand
    assert translations_used("Who is the chief financial officer of Nordlicht?", used, dictionary) == [
        "Finanzvorstand", "Leiter Finanzwesen"]


def test_english_words_leave_out_function_words_and_short_ones():
    assert english_words("What was the revenue of Nordlicht's yard in 2021?") == ["what", "revenue", "nordlicht's",
                                                                                  "yard"]
    assert Dictionary({"revenue": ["Erlös"]}).translations("Revenue") == ["Erlös"]
    assert Dictionary({}).translations("revenue") == []


def test_the_table_is_parsed_once_then_read_from_the_cache(tmp_path):
    source = tmp_path / "de-en"
    source.write_text("".join(LINES), encoding="utf-8")
    cache = tmp_path / "cache"
    first = load_dictionary(source, cache)
    assert first is not None and first.translations("revenue") == ["Erlös", "Ertrag"]
    (stored,) = cache.glob("en-de-*.json")
    stored.write_text(json.dumps({"revenue": ["Umsatz"]}), encoding="utf-8")  # what a second start reads
    assert load_dictionary(source, cache).translations("revenue") == ["Umsatz"]
    stored.write_text("{broken", encoding="utf-8")  # a damaged cache is parsed again
    assert load_dictionary(source, cache).translations("revenue") == ["Erlös", "Ertrag"]
    assert json.loads(stored.read_text(encoding="utf-8"))["revenue"] == ["Erlös", "Ertrag"]
    source.write_text("".join(LINES[:2]), encoding="utf-8")  # another dictionary file: its cache replaces the old
    assert load_dictionary(source, cache).translations("expect") == []
    assert [p.name for p in cache.glob("en-de-*.json")] != [stored.name] and len(list(cache.glob("*.json"))) == 1


def test_a_missing_dictionary_is_none_and_an_unwritable_cache_only_costs_time(tmp_path):
    assert load_dictionary(tmp_path / "missing", tmp_path / "cache") is None
    source = tmp_path / "de-en"
    source.write_text("".join(LINES), encoding="utf-8")
    blocked = tmp_path / "file"
    blocked.write_text("", encoding="utf-8")  # the cache folder cannot be made inside a file
    assert load_dictionary(source, blocked / "cache").translations("expect") == ["erwarten"]
    assert not list(tmp_path.glob("**/*.tmp"))


DEBIAN = Path(Settings().english_dictionary)  # where Debian's trans-de-en puts it


@pytest.mark.skipif(not DEBIAN.exists(), reason="Debian's trans-de-en is not installed (CI installs it)")
def test_the_debian_dictionary_translates_common_business_words(tmp_path):
    dictionary = load_dictionary(DEBIAN, tmp_path)
    assert len(dictionary.words) > 50_000
    assert {"Erlös", "Ertrag"} <= set(dictionary.translations("revenue"))
    assert "Gewinn" in dictionary.translations("profit") and "Verlust" in dictionary.translations("loss")
    assert "Finanzchef" in dictionary.translations("CFO")
    assert "ausgeben" in dictionary.translations("spend") and "verkaufen" in dictionary.translations("sell")
