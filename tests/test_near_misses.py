"""Near-miss questions: one specific term swapped so that the gold article no longer answers."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.eval.near_misses import document_frequencies, near_miss, replacement_words

GOLD = "Die Werft Nordlicht baute 1862 in Kiel das erste Dampfschiff der Stadt. Gründer war Henrik Sande."
OTHER = {"a": GOLD, "b": "Die Brauerei Südwind braut seit 1901 in Emden Bier. Ihr Gründer war Ole Brandt.",
         "c": "In Bremen eröffnete Südwind später eine zweite Brauerei."}


def test_a_year_moves_to_one_the_gold_article_never_names():
    variant = near_miss("Wann baute Nordlicht 1862 ein Dampfschiff?", GOLD, ["Emden"], {}, random.Random(0))
    year = int(variant.split()[3])
    assert variant != "Wann baute Nordlicht 1862 ein Dampfschiff?" and 1857 <= year <= 1867
    assert str(year) not in GOLD


def test_the_rarest_held_word_is_swapped_for_a_word_of_another_article():
    df = document_frequencies(list(OTHER.values()))
    words = replacement_words(OTHER, df)
    assert "Emden" in words["b"] and "Südwind" not in words["a"]
    variant = near_miss("Wer gründete die Werft Nordlicht in Kiel?", GOLD, words["b"], df, random.Random(0))
    assert variant.startswith("Wer gründete die Werft ") or variant.endswith(" in Kiel?")
    swapped = set(variant.rstrip("?").split()) - set("Wer gründete die Werft Nordlicht in Kiel".split())
    assert len(swapped) == 1 and swapped <= set(words["b"]) and not swapped & set(GOLD.split())


def test_nothing_to_swap_gives_none():
    assert near_miss("Wer baute es?", GOLD, ["Emden"], {}, random.Random(0)) is None
    assert near_miss("Wer gründete Nordlicht?", GOLD, ["Nordlicht"], {}, random.Random(0)) is None


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abcdeKLMNÄ 12890?.,")), max_size=60), st.integers(0, 10_000))
def test_a_variant_is_never_the_question_itself(question, seed):
    variant = near_miss(question, GOLD, ["Emden", "Brandt"], {"Emden": 1}, random.Random(seed))
    assert variant is None or variant != question
