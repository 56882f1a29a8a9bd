"""The answer selector's features on small inputs: question types, sentence facts, candidates and what a sentence
lacks of the question."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rag.answer import features as F
from rag.lang.de import question_type, tokenize


@pytest.mark.parametrize("question, kind", [
    ("Wer gründete die Stadt?", "person"),
    ("Wann wurde die Brücke eröffnet?", "date"),
    ("In welchem Jahr endete der Krieg?", "date"),
    ("Wie viele Einwohner hat Fresno?", "amount"),
    ("Wie hoch ist der Turm?", "amount"),
    ("Wo liegt das Kloster?", "place"),
    ("Warum scheiterte der Plan?", "reason"),
    ("Was ist ein Apothekentechniker?", "other"),
    ("How much did the company invest?", "amount"),
    ("Who leads the team?", "person"),
])
def test_question_words_give_the_kind_of_answer(question, kind):
    assert question_type(question) == kind


def test_sentence_info_reads_figures_years_of_any_century_dates_and_anaphors():
    text = "Im Jahr 1862 zählte die Stadt drei Millionen Einwohner. Das entspricht 14,3 Prozent am 18. September."
    first, second = (F.sentence_info(text, a, b) for a, b in ((0, 55), (56, len(text))))
    assert first.years == {"1862"} and {"1862", "drei", "Millionen"} <= first.numbers and first.has_unit
    assert second.anaphoric and not first.anaphoric
    assert second.has_day_date and second.has_month and "14,3" in second.numbers


def test_question_view_weighs_unknown_words_and_keeps_names():
    view = F.question_view("Wie viel verdiente Nordlicht 2021?", {"nordlicht": 3.0, "verdient": 1.0}, 5.0)
    assert view.kind == "amount" and view.years == {"2021"}
    assert "nordlicht" in view.names
    assert view.unknown_share == 0.0  # "2021" is a figure, not an unknown word
    unknown = F.question_view("Wie viel verdiente Südwind?", {"verdient": 1.0}, 5.0)
    assert unknown.unknown_share == pytest.approx(5.0 / 6.0)


def test_the_view_sums_the_same_whatever_order_its_weights_come_in():
    """Hash randomisation orders the sets the weights come from differently in every process; the coverage sums
    (and so the trained model) must not move with it, not even in the last bit."""
    weights = {"a": 0.1, "b": 0.2, "c": 0.3, "d": 1e-17, "e": 0.7}
    question = "Wie viel a b c d e?"
    tokens = ("a", "b", "c", "d", "e")
    first = F.question_view(question, weights, 5.0)
    second = F.question_view(question, dict(reversed(weights.items())), 5.0,
                             gloss=None)
    assert list(first.weights) == list(second.weights)
    assert F._coverage(first, tokens[:3]).hex() == F._coverage(second, tokens[:3]).hex()


def test_a_person_question_prefers_a_sentence_with_a_name_the_tagger_finds():
    """Every German noun is capitalised, so capitals do not tell "Carsten Spohr" from "Milliarden Euro"; the
    tagger's names do."""
    from rag.lang.pos import proper_names

    view = F.question_view("Wer ist Konzernchef der Lufthansa?", {"konzernchef": 2.0, "lufthansa": 3.0}, 5.0)
    common = dict(prev_tokens=(), next_tokens=(), dense=0.8, passage_score=1.0, passage_rank=0, passage_dense=0.8,
                  position=1, count=5, pair=False, title_tokens=frozenset())
    person = "Konzernchef Carsten Spohr sprach von einem soliden Ergebnis."
    nouns = "Die Lufthansa hat einen Gewinn von 1,6 Milliarden Euro erzielt."
    with_name, without = (F.sentence_info(text, 0, len(text)) for text in (person, nouns))
    a = F.candidate_features(view, with_name, with_name.tokens, names=proper_names(person), **common)
    b = F.candidate_features(view, without, without.tokens, names=proper_names(nouns), **common)
    assert a["person_x_names"] > 0 and b["person_x_names"] == 0  # "Lufthansa" is a name, but the question's
    assert a["new_caps"] == b["new_caps"]  # capitals alone cannot tell them apart


def test_a_compound_no_article_uses_asks_for_its_parts():
    """"Quartalsumsatz" is unknown to articles that say "Umsatz" and "Quartal": the question asks for those."""
    weights = {"nordlicht": 3.0, "quartal": 1.0, "umsatz": 2.0, "hoch": 0.5}
    question = "Wie hoch war der Quartalsumsatz von Nordlicht?"
    compounds = F.question_compounds(question, {"nordlicht": 3.0, "hoch": 0.5}, lambda stems: [s for s in stems if s in weights])
    assert compounds == {"quartalsumsatz": ("quartal", "umsatz")}
    view = F.question_view(question, weights, 5.0, compounds)
    assert {"quartal", "umsatz"} <= view.tokens and "quartalsumsatz" not in view.tokens
    assert view.unknown_share == 0.0 and {"quartal", "umsatz"} <= {t for t, _ in view.specific}
    sentence = F.sentence_info("Der Umsatz von Nordlicht stieg im Quartal auf 12 Millionen.", 0, 58)
    assert F._coverage(view, sentence.tokens) == pytest.approx(6.0 / 6.5)  # all but "hoch"
    assert F.question_view(question, weights, 5.0).unknown_share > 0


def test_features_prefer_the_sentence_that_holds_the_asked_kind():
    view = F.question_view("Wie viele Boote verkaufte Nordlicht?", {"boot": 2.0, "verkauft": 1.0, "nordlicht": 3.0}, 5.0)
    with_figure = F.sentence_info("Nordlicht verkaufte 450 Boote.", 0, 30)
    without = F.sentence_info("Nordlicht verkaufte viele Boote.", 0, 32)
    common = dict(prev_tokens=(), next_tokens=(), dense=0.8, passage_score=1.0, passage_rank=0, passage_dense=0.8,
                  position=0, count=1, pair=False, title_tokens=frozenset())
    a = F.candidate_features(view, with_figure, with_figure.tokens, **common)
    b = F.candidate_features(view, without, without.tokens, **common)
    assert a["amount_x_number"] == 1.0 and b["amount_x_number"] == 0.0
    assert a["coverage"] == pytest.approx(b["coverage"])


def test_a_synonym_holds_the_question_term_it_stands_for_and_without_the_thesaurus_nothing_is_measured():
    question = "Wie viel Geld steckt Nordlicht in Boote?"
    weights = {"geld": 1.0, "steckt": 2.0, "nordlicht": 3.0, "boot": 2.0}
    view = F.question_view(question, weights, 5.0, synonyms={"steckt": frozenset({"investiert"}), "was": frozenset()})
    assert view.synonyms == {"steckt": (pytest.approx(2.0 / 8.0), frozenset({"investiert"}))}  # only its own stems
    text = "Nordlicht investiert 40 Millionen Euro in Boote."
    info = F.sentence_info(text, 0, len(text))
    common = dict(prev_tokens=(), next_tokens=(), dense=0.8, passage_score=1.0, passage_rank=0, passage_dense=0.8,
                  position=0, count=1, pair=False, title_tokens=frozenset())
    held = F.candidate_features(view, info, info.tokens, **common)
    assert held["synonyms"] == pytest.approx(2.0 / 8.0) and held["coverage"] == pytest.approx(5.0 / 8.0)
    said = "Nordlicht steckt 40 Millionen Euro in Boote."  # the term itself: coverage, not a synonym
    assert F.candidate_features(view, F.sentence_info(said, 0, len(said)), tokenize(said), **common)["synonyms"] == 0
    unread = F.question_view(question, weights, 5.0)
    assert math.isnan(F.candidate_features(unread, info, info.tokens, **common)["synonyms"])


def test_a_near_miss_shows_in_the_specific_terms_the_sentence_lacks():
    """The question's names (also "xAI") and figures weigh by IDF; a sentence that holds all but one lacks that one."""
    weights = {t: 3.0 for t in tokenize("Nordlicht Südwind")} | {t: 1.0 for t in tokenize("investiert")}
    view = F.question_view("Wie viel investiert Südwind 2026?", weights, 5.0)
    other = "Nordlicht investiert 2026 rund 40 Millionen Euro."
    same = "Südwind investiert 2026 rund 40 Millionen Euro."
    assert F.specific_missing(view, F.sentence_info(other, 0, len(other)), tokenize(other), frozenset()) == \
        pytest.approx(3.0 / 8.0)  # "2026" is unknown to the index: it weighs as the rarest term
    assert F.specific_missing(view, F.sentence_info(same, 0, len(same)), tokenize(same), frozenset()) == 0.0
    assert F.holds_term("metas", {"meta"}) and not F.holds_term("bus", {"bu"})  # a genitive s, not a short word
    lower = F.question_view("Wie viel investiert xAI?", weights, 5.0)
    assert F.specific_missing(lower, F.sentence_info(other, 0, len(other)), tokenize(other), frozenset()) == 1.0


def test_time_fit_reads_relative_years_against_the_article_date():
    from rag.schema import Article

    text = "Für das laufende Jahr plant die Werft 40 neue Boote. 2023 waren es 30."
    article = Article("a", "Titel", "2026-01-28", False, text, "a.txt", "0")
    first = F.sentence_info(text, 0, 52, article)
    second = F.sentence_info(text, 53, len(text), article)
    view = F.question_view("Wie viele Boote plant die Werft 2026?", {"boot": 1.0, "werft": 1.0}, 5.0)
    assert F.time_match(view, first) == 1.0 and F.time_match(view, second) == -1.0


def test_a_quarter_question_reads_the_quarter_and_only_then_the_year():
    """Asked about a quarter: the quarter itself fits, another quarter does not, and a sentence that names only
    the quarter's year (no quarter) neither fits nor contradicts; another year contradicts."""
    from rag.schema import Article

    article = Article("a", "Titel", "2024-10-31", False, "", "a.txt", "0")
    view = F.question_view("Wie viel verlor die Werft im dritten Quartal 2023?", {"werft": 1.0}, 5.0)
    fits = {text: F.time_match(view, F.sentence_info(text, 0, len(text), article)) for text in (
        "Im dritten Quartal 2023 verlor die Werft 3 Millionen.", "Im vierten Quartal 2023 verlor sie 4 Millionen.",
        "Im ganzen Jahr 2023 verlor die Werft 9 Millionen.", "Die Werft verlor 2022 rund 6 Millionen.",
        "Die Werft verlor 7 Millionen.")}
    assert list(fits.values()) == [1.0, -1.0, 0.0, -1.0, 0.0]


def test_a_sentence_quoted_with_its_predecessor_speaks_about_the_predecessors_time():
    from rag.schema import Article

    text = "Im vergangenen Quartal stieg der Umsatz auf 59 Millionen. Der Gewinn legte auf 22 Millionen zu."
    article = Article("a", "Titel", "2026-01-28", False, text, "a.txt", "0")
    cut = text.index("Der")
    first, second = F.sentence_info(text, 0, cut - 1, article), F.sentence_info(text, cut, len(text), article)
    asked = F.question_view("Wie hoch war der Gewinn im dritten Quartal 2024?", {"gewinn": 1.0}, 5.0)
    assert F.time_match(asked, second) == 0.0  # alone it names no time
    assert F.time_match(asked, F.joined_time(first, second)) == -1.0  # with its predecessor: the last quarter of 2025
    now = F.question_view("Wie hoch war der Gewinn im vierten Quartal 2025?", {"gewinn": 1.0}, 5.0)
    assert F.time_match(now, F.joined_time(first, second)) == 1.0


def test_a_sentence_naming_no_time_speaks_about_its_paragraphs_quarter():
    """A quarter carries on through its paragraph, not into the next one, and a year alone does not carry."""
    from rag.ingest.sentences import sentence_spans
    from rag.schema import Article

    text = ("Im vergangenen Quartal stieg der Umsatz auf 59 Millionen. Der Gewinn legte auf 22 Millionen zu.\n"
            "Die Werft beschäftigt 300 Menschen.\nIm Jahr 2024 baute sie 40 Boote. Sie verkaufte 35.")
    article = Article("a", "Titel", "2026-01-28", False, text, "a.txt", "0")
    infos = F.carried_time(text, [F.sentence_info(text, a, b, article) for a, b in sentence_spans(text)])
    assert [(sorted(i.time_years), sorted(i.time_periods)) for i in infos] == [
        ([2025], ["2025-q4"]), ([2025], ["2025-q4"]), ([], []), ([2024], []), ([], [])]
    asked = F.question_view("Wie hoch war der Gewinn im vierten Quartal 2025?", {"gewinn": 1.0}, 5.0)
    assert F.time_match(asked, infos[1]) == 1.0


def test_standout_measures_the_best_score_against_the_question_background():
    background = [0.80 + 0.001 * i for i in range(39)]
    sharp_lift, sharp_z = F.standout([0.95, *background], passages=400)
    flat_lift, flat_z = F.standout([0.84, *background], passages=400)
    assert sharp_lift > flat_lift > 0 and sharp_z > flat_z > 0
    # the same shape shifted by a constant (another corpus's cosine level) stands out as much
    shifted = F.standout([s - 0.1 for s in [0.95, *background]], passages=400)
    assert shifted == pytest.approx((sharp_lift, sharp_z))
    # BM25 returns only matching passages: missing ranks score 0 (no term matched)
    assert F.standout([6.0, 5.0], passages=400)[0] == pytest.approx(6.0)
    assert F.standout([6.0] * 11 + [3.0] * 3, passages=400)[0] == pytest.approx(6.0 - (6.0 + 3 * 3.0) / 30)


def test_an_index_too_small_for_a_background_measures_no_standout():
    """Three short articles (6 passages) have no ranks 11-40: the lift is not measured (NaN), not blown up."""
    for scores in ([0.9, 0.7, 0.7, 0.7, 0.7, 0.7], [], [0.9] + [0.5] * (F.STANDOUT_RANKS - 2)):
        lift, z = F.standout(scores, passages=len(scores))
        assert math.isnan(lift) and math.isnan(z)
    assert not math.isnan(F.standout([0.9] + [0.5] * 39, passages=F.STANDOUT_RANKS)[1])


def test_unknown_names_counts_proper_names_the_index_never_uses():
    # "Apple" is a name the index lacks; "Mitarbeiter" is a common noun, never counted
    def unknown_names(question, known, knows=None):
        return F.question_view(question, known, 5.0, knows=knows).unknown_names

    assert unknown_names("Wie viel investiert Apple 2025?", {"investiert": 1.0}) == 1.0
    assert unknown_names("Wie viele Mitarbeiter hat Zalando?", {"zalando": 2.0}) == 0.0
    assert unknown_names("Wer leitet Zalando und Siemens?", {"zalando": 2.0}) == 0.5
    # the German tagger calls most English words names: an English question counts as having none
    assert unknown_names("Who is the CFO of Zalando?", {}) == 0.0
    view = F.question_view("Wie viel verdiente Kenyatta?", {"verdient": 1.0}, 5.0)
    assert view.unknown_names == 1.0 and view.unmentioned == ("Kenyatta",)
    # a known name beside the unknown one: not every name is unmentioned
    assert F.question_view("Wer leitet Zalando und Siemens?", {"zalando": 2.0}, 5.0).unmentioned == ()


def _lookup(index: dict[str, float]):
    """The index's lookup of stems (``Retriever.stem_weights``) over ``index``."""
    return lambda stems: {s: index[s] for s in stems if s in index}


def unmentioned(question: str, known: dict[str, float], knows=None) -> tuple[str, ...]:
    """The question's names no article mentions, as the view keeps them (each of these questions has one name)."""
    return F.question_view(question, known, 5.0, knows=knows).unmentioned


def test_a_name_in_the_genitive_is_known_when_the_index_knows_it_without_its_s():
    knows = _lookup({"odinga": 2.0, "rolle": 1.0})
    question = "Was sollte Odingas Rolle in der Regierung sein?"
    assert unmentioned(question, {"rolle": 1.0}) == ("Odingas",)  # without the index's lookup
    assert unmentioned(question, {"rolle": 1.0}, knows) == ()
    assert unmentioned("Was sagte Kenyattas Sprecher?", {}, knows) == ("Kenyattas",)
    # a one-letter name ("ein Feld F") is no name to look for
    assert F.question_view("Was wäre das Primfeld für ein Feld F?", {"primfeld": 1.0}, 5.0,
                           knows=knows).unknown_names == 0.0
    assert F.question_view(question, {"rolle": 1.0}, 5.0, knows=knows).unknown_names == 0.0


def test_a_long_name_mistyped_by_one_letter_is_known():
    knows = _lookup({"lufthansa": 2.0, "gewinn": 1.0, "bahn": 1.0})
    for typo in ("Lufthanza", "Lufthnsa", "Luftthansa", "Lfuthansa"):  # replaced, dropped, added, swapped
        assert unmentioned(f"Wie viel Gewinn machte {typo}?", {"gewinn": 1.0}, knows) == (), typo
    assert unmentioned("Wie viel Gewinn machte Ryanair?", {"gewinn": 1.0}, knows) == ("Ryanair",)
    assert unmentioned("Wie pünktlich war die Bohn?", {}, knows) == ("Bohn",)  # too short to call it a typo
    assert "lufthansa" in F.one_edit("lufthanza") and "lufthanza" not in F.one_edit("lufthanza")


def test_question_level_features_read_own_sentences_not_context_pairs():
    col = F.FEATURES.index
    rows = np.zeros((4, len(F.FEATURES)))
    rows[1, col("pair")] = 1  # a sentence with its predecessor for context
    rows[2, col("pair")] = rows[2, col("anaphoric")] = 1  # "Das entspricht …" with the sentence it leans on
    rows[3, col("coverage")] = 0.9
    assert F.own_sentences(rows).tolist() == [True, False, True, True]
    beyond = rows.copy()
    beyond[3, col("beyond")] = 1  # the sentence after its passage: no evidence that the passages answer
    assert F.own_sentences(beyond).tolist() == [True, False, True, False]
    rows[1, col("coverage")] = 1.0  # a context pair covers more of the question only because it is longer
    view = F.QuestionView("Wer?", "person", frozenset({"wer"}), {"wer": 1.0}, 0.0, *[frozenset()] * 4)
    row = F.question_features(view, rows, np.array([0.0, 5.0, 1.0, 2.0]), [], [], [], passages=100)
    assert row[F.QUESTION_FEATURES.index("max_coverage")] == pytest.approx(0.9)
    assert row[F.QUESTION_FEATURES.index("top_logit")] == pytest.approx(2.0)


def test_a_context_pair_does_not_move_the_sentences_relative_features():
    col = F.FEATURES.index
    sentences = np.zeros((3, len(F.FEATURES)))
    sentences[:, col("coverage")] = [0.2, 0.6, 0.4]
    pair = np.zeros((1, len(F.FEATURES)))
    pair[0, col("coverage")], pair[0, col("pair")] = 0.9, 1  # longer, so it covers more
    with_pair = F.sentences_view(np.vstack([sentences, pair]))
    alone = F.sentences_view(sentences)
    assert with_pair[:3].tolist() == alone.tolist()
    assert alone[:, col("coverage_rank")].tolist() == [1 / 3, 1.0, 1 / 2]
    assert alone[:, col("coverage_gap")] == pytest.approx([-0.4, 0.0, -0.2])



def test_the_view_knows_an_english_question():
    weights = {"boot": 2.0, "verkauft": 1.0, "nordlicht": 3.0}
    assert F.question_view("How many boats did Nordlicht sell?", weights, 5.0).english
    assert not F.question_view("Wie viele Boote verkaufte Nordlicht?", weights, 5.0).english


def test_an_english_question_asks_for_the_translations_its_passages_use_as_terms_not_names():
    from rag.lang.dictionary import Dictionary

    dictionary = Dictionary({"boats": ["Boote", "Schiffe"], "sell": ["verkaufen", "absetzen"], "yard": ["Werft"]})
    passages = {*tokenize("Die Werft verkaufte 450 Boote."), *tokenize("Nordlicht wird verkaufen.")}
    question = "How many boats did the yard Nordlicht sell?"
    gloss = F.english_gloss(question, passages, dictionary)
    assert gloss == {*tokenize("Boote"), *tokenize("Werft"), *tokenize("verkaufen")}  # not "Schiffe", "absetzen"
    weights = {"nordlicht": 3.0}
    view = F.question_view(question, weights, 5.0, gloss={t: 2.0 for t in gloss})
    assert gloss <= view.tokens and all(view.weights[t] == 2.0 for t in gloss)
    assert not gloss & view.names and view.english
    assert F._coverage(view, tokenize("Die Werft verkaufte 450 Boote.")) > 0.0
    assert F._coverage(F.question_view(question, weights, 5.0), tokenize("Die Werft verkaufte 450 Boote.")) == 0.0


def test_an_english_word_the_passages_translate_otherwise_is_read_through_the_thesaurus():
    from rag.lang.dictionary import Dictionary
    from rag.lang.thesaurus import Thesaurus

    dictionary = Dictionary({"revenue": ["Erlös", "Ertrag"], "boats": ["Boote"]})
    thesaurus = Thesaurus.of([frozenset(tokenize("Erlös Umsatz")), frozenset(tokenize("Boot Kahn"))])
    passages = {*tokenize("Der Umsatz der Werft stieg."), *tokenize("Die Werft verkaufte Boote und einen Kahn.")}
    question = "What was the revenue of the yard that sells boats?"
    assert F.english_gloss(question, passages, dictionary) == set(tokenize("Boote"))
    # "revenue": no translation in the passages, so their synonym; "boats": translated as used, no synonym added
    assert F.english_gloss(question, passages, dictionary, thesaurus) == {*tokenize("Boote"), *tokenize("Umsatz")}


def test_a_chunk_knows_which_article_sentences_it_holds_and_a_cut_one_has_none():
    from types import SimpleNamespace

    from rag.schema import Chunk

    text = "Erster Satz hier. Zweiter Satz folgt. Dritter Satz endet."
    article = SimpleNamespace(text=text, title="Titel", date=None)
    cut = text.index("Satz hier")  # the chunk starts inside the first sentence
    chunks = [Chunk("c0", "d", 0, 0, len(text), text, "h0"), Chunk("c1", "d", 1, cut, len(text), text[cut:], "h1")]
    sentences = F.ArticleSentences(SimpleNamespace(articles={"d": article}, chunks=chunks))
    assert sentences.in_chunk(0) == (3, [(0, 0), (1, 1), (2, 2)])
    count, held = sentences.in_chunk(1)
    assert count == 3 and held == [(1, 1), (2, 2)]
    assert sentences.in_chunk(1) is sentences.in_chunk(1)  # kept: chunks recur across questions
    pair = sentences.joined("d", 2)
    assert pair.start == sentences.of("d")[2].start and pair.tokens == sentences.of("d")[2].tokens


def test_a_chunk_s_window_adds_the_article_sentence_right_after_it_from_the_next_chunk():
    from types import SimpleNamespace

    from rag.schema import Chunk

    text = "Erster Satz hier. Zweiter Satz folgt. Dritter Satz endet. Vierter Satz schließt."
    article = SimpleNamespace(text=text, title="Titel", date=None)
    second, fourth = text.index("Zweiter"), text.index("Vierter")
    chunks = [Chunk("c0", "d", 0, 0, fourth - 1, text[:fourth - 1], "h0"),
              Chunk("c1", "d", 1, second, len(text), text[second:], "h1"),
              Chunk("c2", "e", 0, 0, len(text), text, "h2")]
    index = SimpleNamespace(articles={"d": article, "e": article}, chunks=chunks, sentences=None)
    sentences = F.ArticleSentences(index)
    window = F._window(index, sentences, 0, np.zeros(4, np.float32))
    assert [(position, beyond) for _, position, _, beyond in window] == [(0, False), (1, False), (2, False),
                                                                         (3, True)]
    assert window[-1][0] == 2  # the third sentence of chunk c1
    # the last chunk of an article has nothing after it in the same article
    assert [beyond for *_, beyond in F._window(index, sentences, 1, np.zeros(4, np.float32))] == [False] * 3


def test_related_words_are_the_passages_synonyms_other_forms_and_compound_heads():
    from rag.lang.thesaurus import Thesaurus

    thesaurus = Thesaurus.of([frozenset(tokenize("investieren stecken"))])
    used = set(tokenize("Nordlicht investiert, der Umsatz im Quartal stieg"))
    stems = tokenize("Wie viel steckt Nordlicht in Boote, wie hoch war der Quartalsumsatz?")
    related = F.related_words(stems, used, thesaurus, lambda terms: [t for t in terms if t in used])
    assert related == {tokenize("steckt")[0]: frozenset(tokenize("investiert")),
                       tokenize("Quartalsumsatz")[0]: frozenset(tokenize("Umsatz"))}
