"""The German thesaurus: MyThes' line format, forms found through their base, and the real Debian file where
installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.lang.de import tokenize
from rag.lang.thesaurus import MAX_SET, Thesaurus, load_thesaurus, parse
from rag.settings import Settings

# Lines in MyThes' ``.dat`` format: the encoding, then ``word|n`` and n lines ``(pos)|synonym|…``.
LINES = [
    "UTF-8\n",
    "chef|2\n",
    "-|Boss|Chef|Leiter|Vorgesetzter|hohes Tier (ugs.)|Person (Hauptform) (Oberbegriff)\n",
    "-|Präsident|Vorsitzender|Chef (ugs., salopp)\n",
    "leiter|1\n",
    "-|Boss|Chef|Leiter|Vorgesetzter|hohes Tier (ugs.)|Person (Hauptform) (Oberbegriff)\n",
    "investieren|1\n",
    "(Verb)|investieren|anlegen|stecken (in) (ugs.)\n",
    "heiß|1\n",
    "-|heiß|kalt (Antonym)\n",
]


def test_sets_keep_single_words_without_broader_terms_antonyms_or_annotations():
    sets = parse(LINES)
    assert frozenset(tokenize("Boss Chef Leiter Vorgesetzter")) in sets  # once, though two entries list it
    assert len(sets) == 3  # "heiß" has no synonym left once its antonym is gone
    assert all(tokenize("Person")[0] not in s and tokenize("Tier")[0] not in s for s in sets)  # phrase, broader term
    assert frozenset(tokenize("investieren anlegen stecken")) in sets  # "stecken (in)": the annotation goes


def test_a_set_of_many_senses_is_left_out():
    words = [f"Wort{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(MAX_SET + 1)]
    assert parse(["-|" + "|".join(words) + "\n"]) == []
    assert len(parse(["-|" + "|".join(words[:MAX_SET]) + "\n"])) == 1


def test_inflected_forms_find_their_base_and_its_synonyms():
    thesaurus = Thesaurus.of(parse(LINES))
    steckt, gesteckt, investiert = (tokenize(w)[0] for w in ("steckt", "gesteckt", "investiert"))
    assert thesaurus.base(steckt) == thesaurus.base(gesteckt) == tokenize("stecken")[0]
    assert tokenize("investieren")[0] in thesaurus.synonyms(steckt)
    assert thesaurus.synonyms(tokenize("Kanzlerin")[0]) == frozenset()  # not in the thesaurus


def test_used_keeps_the_passages_words_for_each_question_stem():
    thesaurus = Thesaurus.of(parse(LINES))
    question = tokenize("Wie viel Geld steckt Meta in KI? Wer ist der Chef?")
    passages = set(tokenize("Meta investiert 60 Milliarden Dollar, sagte Vorstandschef Zuckerberg. Der Vorsitzende"))
    used = thesaurus.used(question, passages)
    assert used == {tokenize("steckt")[0]: frozenset(tokenize("investiert")),
                    tokenize("Chef")[0]: frozenset(tokenize("Vorsitzende"))}
    assert thesaurus.used(question, set(tokenize("Der Chef sagte"))) == {}  # the word itself is no synonym


def test_the_sets_are_parsed_once_then_read_from_the_cache_and_a_missing_file_is_none(tmp_path):
    assert load_thesaurus(tmp_path / "missing.dat", tmp_path / "cache") is None
    source = tmp_path / "th.dat"
    source.write_text("".join(LINES), encoding="utf-8")
    first = load_thesaurus(source, tmp_path / "cache")
    (stored,) = (tmp_path / "cache").glob("th-de-*.json")
    source.write_text("".join(LINES[:4]), encoding="utf-8")  # the file changed: parsed again, the old cache removed
    load_thesaurus.cache_clear()
    assert len(load_thesaurus(source, tmp_path / "cache").sets) == 2
    assert not stored.exists() and len(list((tmp_path / "cache").glob("*.json"))) == 1
    assert len(first.sets) == 3
    other = tmp_path / "passwd"
    other.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")  # no thesaurus: read as missing
    assert load_thesaurus(other, tmp_path / "cache2") is None


DEBIAN = Path(Settings().german_thesaurus)  # where Debian's mythes-de puts it


@pytest.mark.skipif(not DEBIAN.exists(), reason="Debian's mythes-de is not installed (CI installs it)")
def test_the_debian_thesaurus_knows_common_german_synonyms(tmp_path):
    thesaurus = load_thesaurus(DEBIAN, tmp_path)
    assert len(thesaurus.sets) > 20_000
    stem = tokenize
    assert stem("Erlös")[0] in thesaurus.synonyms(stem("Umsatz")[0])
    assert stem("Chef")[0] in thesaurus.synonyms(stem("leitet")[0])
    assert stem("investieren")[0] in thesaurus.synonyms(stem("steckt")[0])
