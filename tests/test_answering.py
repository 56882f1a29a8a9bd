"""Answers with citations: behaviours of the learned extractive answerer on small corpora written for the test and on
the seeds (real e5 vectors, FAISS and BM25), its measured numbers on the eval set (printed, with floors well
below the issue's targets: a regression guard, not a target), the command line and the local model.

No test pins the outcome of a named eval question: the eval set's numbers are measured by `rag eval`.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from types import SimpleNamespace
from pathlib import Path

import pytest

from rag.answer.answering import (PART_RANKS, Choice, ExtractiveAnswerer, GenerativeAnswerer, Selection, _about,
                                  _per_article, _per_date, _states, _widened, agreement, asked_parts, compose, says)
from rag.answer.features import Candidate, question_view
from rag.answer.generation import REFUSAL
from rag.answer.grounding import check_quotes, markers
from rag.errors import RagError
from rag.index.build import build_index
from rag.index.store import load_index
from rag.lang.de import tokenize
from rag.retrieve.retrieval import Retriever
from rag.schema import Article
from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [json.loads(line) for line in (ROOT / "eval" / "questions_de.jsonl").read_text(encoding="utf-8").splitlines()
             if line.strip()]
RAG = str(Path(sys.executable).with_name("rag"))

# A small corpus of invented facts: nothing here is in any training set of the selector.
ARTICLES = {
    "boote_2021": (" date 2022-02-10 Nordlicht meldet Rekord\n"
                   "Die Werft Nordlicht aus Kiel hat ein gutes Jahr hinter sich. 2019 verkaufte Nordlicht 300 Segelboote. "
                   "2021 verkaufte Nordlicht 450 Segelboote, so viele wie nie zuvor. Das entspricht einem Plus von "
                   "50 Prozent. Geschäftsführerin ist seit 2018 Hanna Petersen."),
    "boote_bericht": (" date 2022-03-01 Werften im Norden\n"
                      "Im Norden kämpfen viele Werften mit hohen Kosten. Die Kieler Werft Nordlicht verkaufte im Jahr "
                      "2021 insgesamt 450 Segelboote. Andere Betriebe mussten Mitarbeiter entlassen."),
    "bahn": (" date 2021-06-05 Neue Bahnstrecke eröffnet\n"
             "Die neue Bahnstrecke zwischen Lindau und Hohenberg wurde am 4. Juni 2021 eröffnet. Die Fahrzeit sinkt "
             "auf 35 Minuten. Gebaut wurde sieben Jahre lang."),
}


def invented(tmp_path_factory, embedder, articles: dict[str, str]) -> ExtractiveAnswerer:
    """An answerer over ``articles`` (name → text), indexed with the real embedder."""
    folder = tmp_path_factory.mktemp("articles")
    for name, text in articles.items():
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    settings = Settings(index_dir=tmp_path_factory.mktemp("index") / "index", seeds_dir=folder)
    build_index(folder, settings, embedder)
    retriever = Retriever(load_index(settings.index_dir, embedder.model_id), embedder, settings)
    answerer = ExtractiveAnswerer(retriever, settings)
    answerer.warm_up()
    return answerer


@pytest.fixture(scope="module")
def small(tmp_path_factory, real_seeds_index):
    """The invented corpus indexed with the real embedder."""
    return invented(tmp_path_factory, real_seeds_index[1], ARTICLES)


@pytest.fixture(scope="module")
def seeds(real_seeds_index):
    settings, embedder, index = real_seeds_index
    retriever = Retriever(index, embedder, settings)
    answerer = ExtractiveAnswerer(retriever, settings)
    answerer.warm_up()
    return settings, retriever, answerer


def query(q: dict) -> str:
    return q["standalone"] or q["question"]


def assert_well_formed(answer, texts: dict[str, str]) -> None:
    """Quotes exact at their offsets, every [n] a given citation, no sentence cited twice, the short answer inside a
    cited quote, and a confidence in [0, 1]."""
    assert check_quotes(answer.citations, texts) == []
    assert set(markers(answer.answer or "")) <= {c.n for c in answer.citations}
    spans = [(c.doc_id, c.start, c.end) for c in answer.citations]
    assert len(spans) == len(set(spans))
    if answer.short_answer is not None:
        assert not answer.abstained and any(answer.short_answer in c.quote for c in answer.citations)
    assert answer.confidence is None or 0.0 <= answer.confidence <= 1.0


# --- behaviours on the invented corpus ---------------------------------------------------------------------------


def _choice(article: Article, sentences: tuple[int, int], probability: float, doc_id: str = "a") -> Choice:
    """A candidate of ``article`` quoting its sentences ``first..last`` (10 characters each, one space apart)."""
    first, last = sentences
    return Choice(Candidate(doc_id, first * 11, last * 11 + 10, last, 0, first < last, 0.0), article, probability)


def test_a_nearly_as_likely_overlapping_candidate_widens_the_quote():
    article = Article("a", "T", None, False, " ".join(f"Satz {i:04d}." for i in range(5)), "a.txt", "0")
    single, pair, later_pair = (1, 1), (0, 1), (1, 2)
    joined = _widened([_choice(article, single, 0.9), _choice(article, pair, 0.8)], floor=0.54)
    assert joined.quote == "Satz 0000. Satz 0001." and joined.probability == 0.9
    joined = _widened([_choice(article, pair, 0.9), _choice(article, later_pair, 0.7)], floor=0.54)
    assert joined.quote == "Satz 0000. Satz 0001. Satz 0002."
    # unlikely, or not overlapping, or in another article: the best quote stays as it is
    for runner_up in (_choice(article, pair, 0.5), _choice(article, (2, 3), 0.8), _choice(article, pair, 0.8, "b")):
        assert _widened([_choice(article, single, 0.9), runner_up], floor=0.54).quote == "Satz 0001."


def _undated(*texts: str) -> list[Article]:
    """Undated one-sentence articles "a", "b", … of ``texts``."""
    return [Article(d, "T", None, False, t, f"{d}.txt", "0") for d, t in zip("abcdefgh", texts)]


def _whole(article: Article) -> Choice:
    """The candidate quoting the whole (one-sentence) article."""
    return Choice(Candidate(article.doc_id, 0, len(article.text), 0, 0, False, 0.0), article, 0.9)


def test_a_range_ending_in_the_best_sentences_figure_does_not_state_it():
    best, same, forecast = _undated("Im Jahr 2025 investierte Nordlicht über 72 Millionen Euro.",
                                    "2025 gab Nordlicht gut 72 Millionen Euro aus.",
                                    "2025 werden die Investitionen bei 64 bis 72 Millionen Euro liegen.")
    asked = frozenset({"2025"})
    assert _states(_whole(same), None, _whole(best), asked)
    assert not _states(_whole(forecast), None, _whole(best), asked)  # a forecast range, not the same fact
    assert _states(_whole(same), "72 Millionen Euro", _whole(best), asked)
    assert not _states(_whole(forecast), "72 Millionen Euro", _whole(best), asked)
    assert _states(_whole(forecast), "64 bis 72 Millionen Euro", _whole(forecast), asked)


def test_a_timeline_takes_each_dates_statement_and_far_down_only_one_of_the_asked_time():
    def dated(doc_id: str, date: str, text: str, time_fit: float, probability: float) -> Choice:
        article = Article(doc_id, "T", date, False, text, f"{doc_id}.txt", "0")
        return Choice(Candidate(doc_id, 0, len(text), 0, 0, False, time_fit), article, probability)

    best = dated("a", "2026-01-28", "2025 gab Nordlicht 72 Millionen Euro aus.", 1.0, 0.9)
    filler = [dated(f"f{i}", "2026-01-28", "Nordlicht baut Boote.", 0.0, 0.5) for i in range(PART_RANKS)]
    untimed = dated("b", "2025-07-01", "Nordlicht gibt 64 Millionen Euro aus.", 0.0, 0.2)
    later = dated("c", "2025-01-30", "In diesem Jahr sollen 60 Millionen Euro fließen.", 1.0, 0.1)
    other = dated("d", "2024-10-31", "Für dieses Jahr rechnet Nordlicht mit 37 Millionen Euro.", -1.0, 0.3)
    years = frozenset({2025})
    near = _per_date([best, untimed, other, later], [best], frozenset(), years, 6)
    assert [c.candidate.doc_id for c in near] == ["a", "b", "c"]  # never another year's figure
    far = _per_date([best, *filler, untimed, later], [best], frozenset(), years, 6)
    assert [c.candidate.doc_id for c in far] == ["a", "c"]  # below the best ranks only the asked time counts


def test_an_overview_takes_each_articles_best_sentence_of_no_other_time():
    a, b, c, d = _undated("Nordlicht baut Segelboote.", "Nordlicht verkaufte 450 Boote.", "Nordlicht sitzt in Kiel.",
                          "Nordlicht wurde 1950 gegründet.")
    second_of_a = Choice(Candidate("a", 0, 5, 1, 0, False, 0.0), a, 0.8)
    other_time = replace(_whole(d), candidate=replace(_whole(d).candidate, time_fit=-1.0))
    ranked = [_whole(a), second_of_a, other_time, _whole(b), _whole(c)]
    assert [x.candidate.doc_id for x in _per_article(ranked, ranked[:1], 3)] == ["a", "b", "c"]
    assert [x.candidate.doc_id for x in _per_article(ranked, ranked[:1], 2)] == ["a", "b"]  # at most the limit


def test_a_short_answer_is_stated_as_whole_words_or_by_its_figures():
    """"20" (new aircraft) is not what "2025 kamen nur 60,1 Prozent der Züge an" states: cited as agreeing, the
    railway's punctuality stood under "Mehrere Artikel nennen das übereinstimmend"."""
    best, other, same = _undated("Die Flotte soll 2025 um 20 neue Flugzeuge wachsen.",
                                 "2025 kamen nur 60,1 Prozent der Züge pünktlich an.",
                                 "Im Jahr 2025 kommen 20  neue Flugzeuge hinzu.")
    asked = frozenset({"2025"})
    assert not _states(_whole(other), "20", _whole(best), asked)
    assert _states(_whole(same), "20 neue", _whole(best), asked)  # white space aside
    assert says("Finanzchefin Susan Li betonte", "susan li") and not says("die Lizenz", "Li")
    assert not says("mit 20,5 Prozent", "20") and says("bis 2030.", "2030")
    # the short answer's figures in other words state it too; a year the best sentence adds does not matter
    plan, other_words = _undated("Für das laufende Jahr 2026 plant Nordlicht 115 bis 135 Millionen Euro ein.",
                                 "Für das laufende Jahr stellte Nordlicht zwischen 115 und 135 Millionen Euro in Aussicht.")
    assert _states(_whole(other_words), "115 bis 135 Millionen Euro", _whole(plan), frozenset())
    assert not _states(_whole(other_words), "135 Millionen Euro", _whole(plan), frozenset())  # the end of a range


def test_an_articles_quotes_stand_on_its_one_dated_line_in_its_own_order():
    newer = Article("a", "T", "2025-01-02", False, " ".join(f"Satz {i:04d}." for i in range(5)), "a.txt", "0")
    older = Article("b", "U", "2024-05-01", False, " ".join(f"Satz {i:04d}." for i in range(5)), "b.txt", "0")
    chosen = [_choice(newer, (3, 3), 0.9), _choice(older, (2, 2), 0.7, "b"), _choice(newer, (1, 1), 0.6)]
    answer = compose("q", "Was steht da?", Selection("Was steht da?", "other", chosen, chosen, False, 0.9, 0.9),
                     [])
    head, *lines = answer.answer.split("\n")
    assert lines == ["- 2. Januar 2025: Satz 0001 [1]. Satz 0003 [2].", "- 1. Mai 2024: Satz 0002 [3]."]
    assert [c.doc_id for c in answer.citations] == ["a", "a", "b"]


def test_a_further_sources_context_is_quoted_only_when_its_own_sentence_does_not_state_the_fact():
    text = "Hanna Petersen ist Analystin. Nordlicht könne Marktführer werden, ist die Analystin überzeugt."
    second = text.index("Nordlicht")
    article = Article("a", "T", None, False, text, "a.txt", "0")
    answerer = ExtractiveAnswerer.__new__(ExtractiveAnswerer)
    infos = [SimpleNamespace(start=0, anaphoric=False), SimpleNamespace(start=second, anaphoric=False)]
    answerer.selector = SimpleNamespace(sentences=SimpleNamespace(of=lambda doc_id: infos))
    pair = Choice(Candidate("a", 0, len(text), 1, 0, True, 0.0), article, 0.9)
    def holds(short):
        return lambda own, before: short in own.quote

    assert answerer._alone(pair, holds("Hanna Petersen")) is None
    assert answerer._alone(pair, holds("Nordlicht")).quote == text[second:]
    infos[1].anaphoric = True  # a sentence that leans on the one before keeps it
    assert answerer._alone(pair, holds("Nordlicht")) is None


def test_warm_up_loads_the_span_model_and_the_tagger(small):
    """The first answer must not pay for loading what every short answer needs."""
    from rag.answer.spans import default_span_model
    from rag.lang import pos

    default_span_model.cache_clear()
    pos._tagger.cache_clear()
    small.warm_up()
    assert default_span_model.cache_info().currsize == 1 and pos._tagger.cache_info().currsize == 1


def test_a_year_question_prefers_the_sentence_of_that_year(small):
    answer = small.run("Wie viele Segelboote verkaufte Nordlicht 2019?")
    assert not answer.abstained
    assert "300" in answer.citations[0].quote and "2019" in answer.citations[0].quote


def test_a_year_every_likely_sentence_speaks_past_is_declined(tmp_path_factory, real_seeds_index):
    answerer = invented(tmp_path_factory, real_seeds_index[1], {"werft": (
        " date 2022-02-10 Nordlicht meldet Zahlen\n2019 verkaufte die Werft Nordlicht 300 Segelboote. 2020 verkaufte "
        "die Werft Nordlicht 350 Segelboote. 2021 verkaufte die Werft Nordlicht 450 Segelboote. Die Werft "
        "Nordlicht baut ihre Segelboote in Kiel.")})
    question = "Wie viele Segelboote verkaufte die Werft Nordlicht 2023?"
    selection = answerer.select(question, answerer.retriever.run(question, k=answerer.settings.top_k))
    assert selection.abstained
    assert selection.reasons == ["the likely sentences speak about other times than the asked one"]
    assert answerer.run(question).abstained
    assert not answerer.run("Wie viele Segelboote verkaufte die Werft Nordlicht 2020?").abstained


def test_a_sentence_is_about_the_asked_time_or_gives_its_figure_as_the_year_before():
    text = "Der Verlust stieg im vergangenen Quartal auf sechs Milliarden Dollar von fünf Milliarden ein Jahr zuvor."
    article = Article("a", "T", "2026-01-28", False, text, "a.txt", "0")

    def about(question: str, time_fit: float) -> bool:
        choice = Choice(Candidate("a", 0, len(text), 0, 0, False, time_fit), article, 0.9)
        return _about(choice, question_view(question, {}, 5.0))

    assert about("Wie hoch war der Verlust im vierten Quartal 2025?", 1.0)
    assert about("Wie hoch war der Verlust im vierten Quartal 2024?", -1.0)  # the figure it compares with
    assert not about("Wie hoch war der Verlust im vierten Quartal 2023?", -1.0)
    assert about("Wie hoch war der Verlust 2024?", -1.0) and not about("Wie hoch war der Verlust 2022?", -1.0)


def test_an_overview_question_quotes_each_article_and_has_no_short_answer(small):
    answer = small.run("Was berichten die Artikel über die Werft Nordlicht?")
    assert not answer.abstained and answer.short_answer is None
    assert {"boote_2021", "boote_bericht"} <= {c.doc_id for c in answer.citations}
    assert_well_formed(answer, {d: a.text for d, a in small.index.articles.items()})


def test_a_name_the_likely_sentences_articles_never_mention_is_declined(small):
    # "Lindau" is indexed (the railway article), but no article about the yard mentions it: a near miss
    question = "Wie viele Segelboote verkaufte Nordlicht 2021 in Lindau?"
    selection = small.select(question, small.retriever.run(question, k=small.settings.top_k))
    assert selection.abstained
    assert selection.reasons == ["the likely sentences' articles do not mention a name the question asks about"]
    assert not small.run("Wie viele Segelboote verkaufte Nordlicht 2021 in Kiel?").abstained
    settings = small.settings.model_copy(update={"answer_rules_off": ["other_name"]})
    alone = ExtractiveAnswerer(small.retriever, settings)
    assert alone.select(question, small.retriever.run(question, k=small.settings.top_k)).reasons != selection.reasons


def test_another_names_role_is_not_the_answer_and_only_that_is_declined(tmp_path_factory, real_seeds_index):
    answerer = invented(tmp_path_factory, real_seeds_index[1], {
        "werft": (" date 2023-05-02 Werften im Norden\n"
                  "Die Werft Harbeck aus Kiel und die Reederei Marlow aus Hamburg arbeiten seit Jahren zusammen. "
                  "Während Harbeck-Chef Jens Berg neue Segelboote ankündigte, blieb die Finanzchefin von Marlow, "
                  "Eva Kern, vorsichtig. Die Boote sollen 2024 fertig sein."),
        "harbeck": (" date 2023-05-03 Harbeck baut aus\n"
                      "Die Werft Harbeck will wachsen. Finanzchefin Anna Kurz rechnet mit mehr Aufträgen. "
                      "Neue Hallen entstehen am Kieler Hafen.")})
    answer = answerer.run("Wer ist die Finanzchefin von Harbeck?")
    assert not answer.abstained and answer.short_answer == "Anna Kurz"
    assert all("Eva Kern" not in c.quote for c in answer.citations)
    question = "Wer ist der Chef von Marlow?"  # the only chief named is Harbeck's
    selection = answerer.select(question, answerer.retriever.run(question, k=answerer.settings.top_k))
    assert selection.abstained
    assert selection.reasons == ["the likely sentences name what the question asks about for another name"]
    assert answerer.run("Wer ist der Chef von Harbeck?").short_answer == "Jens Berg"
    settings = answerer.settings.model_copy(update={"answer_rules_off": ["other_owner"]})
    alone = ExtractiveAnswerer(answerer.retriever, settings)
    assert alone.select(question, answerer.retriever.run(question, k=settings.top_k)).reasons != selection.reasons


def test_another_names_figure_is_not_the_answer(tmp_path_factory, real_seeds_index):
    """A figure belongs to who acts in its clause: asked about Marlow, Harbeck's plan is not the answer, Marlow's
    figure is; asked about Dorrit, which the article names without a figure, nothing is."""
    answerer = invented(tmp_path_factory, real_seeds_index[1], {
        "werften": (" date 2024-02-01 Werften investieren\n"
                    "Die Werften im Norden investieren wieder. Für das laufende Jahr plant Harbeck Investitionen von "
                    "40 Millionen Euro in neue Hallen. Die Reederei Marlow aus Hamburg steckte zuletzt 12 Millionen "
                    "Euro in neue Schiffe. Die Reederei Dorrit lobte die Pläne der Werften."),
        "bahn": ARTICLES["bahn"]})
    assert answerer.run("Wie viel will Harbeck 2024 investieren?").short_answer == "40 Millionen Euro"
    assert answerer.run("Wie viel will Marlow 2024 investieren?").short_answer == "12 Millionen Euro"
    question = "Wie viel will Dorrit 2024 investieren?"
    selection = answerer.select(question, answerer.retriever.run(question, k=answerer.settings.top_k))
    assert selection.abstained
    assert selection.reasons == ["the likely sentence gives the figure of another name than the asked one"]
    settings = answerer.settings.model_copy(update={"answer_rules_off": ["other_subject"]})
    alone = ExtractiveAnswerer(answerer.retriever, settings)
    assert alone.select(question, answerer.retriever.run(question, k=settings.top_k)).reasons != selection.reasons


def test_two_articles_stating_the_same_figure_are_both_cited(small):
    answer = small.run("Wie viele Segelboote verkaufte die Werft Nordlicht 2021?")
    assert not answer.abstained and "450" in answer.answer
    assert {"boote_2021", "boote_bericht"} <= {c.doc_id for c in answer.citations}
    assert "übereinstimmend" in answer.answer  # agreeing sources of two dates are not told as a change over time
    assert not any("300" in c.quote for c in answer.citations)  # 2019's figure, in the sentence before, is not quoted
    assert_well_formed(answer, {d: a.text for d, a in small.index.articles.items()})


def test_a_question_s_relative_year_is_the_year_it_means_on_the_settings_day(seeds):
    """"dieses Jahr" in a question is the year of the day asked (``settings.today``), not the year of an article
    that says "für dieses Jahr"; "vor zwei Jahren" likewise."""
    settings, retriever, _ = seeds

    def asked_on(day: str, question: str):
        local = settings.model_copy(update={"today": day})
        answerer = ExtractiveAnswerer(Retriever(retriever.index, retriever.embedder, local), local)
        return answerer.run(question)

    now = asked_on("2026-12-02", "Wie viel investiert Meta dieses Jahr?")
    assert now.short_answer == "115 bis 135 Milliarden US-Dollar"
    assert {"002_ce2073f525773260", "004_d8aa40ec0fc96a64"} <= {c.doc_id for c in now.citations}
    assert now.question == "Wie viel investiert Meta dieses Jahr?"  # the user's words are kept in the answer object
    then = asked_on("2026-12-02", "Wie viel Geld hat Meta vor zwei Jahren in Rechenzentren gesteckt?")
    assert not then.abstained and "39 Milliarden" in then.answer and "115" not in then.answer


def test_each_composition_rule_can_be_switched_off_and_an_unknown_one_is_one_clear_error(small):
    # the second article states the same figure: cited as an agreeing source, or as a runner-up nearly as likely
    settings = small.settings.model_copy(update={"answer_rules_off": ["agree", "runner_up"]})
    alone = ExtractiveAnswerer(small.retriever, settings)
    answer = alone.run("Wie viele Segelboote verkaufte die Werft Nordlicht 2021?")
    assert not answer.abstained and "450" in answer.answer and len({c.doc_id for c in answer.citations}) == 1
    with pytest.raises(RagError, match="Unknown answer rule"):
        ExtractiveAnswerer(small.retriever, small.settings.model_copy(update={"answer_rules_off": ["nonsense"]}))


def test_a_question_about_an_absent_entity_abstains(small):
    answer = small.run("Wie viele Flugzeuge baute Airbus in Toulouse?")
    assert answer.abstained and answer.answer.startswith(REFUSAL) and answer.short_answer is None


def test_a_question_whose_every_name_no_article_mentions_abstains_and_says_so(small):
    # everything but the yard matches "2021 verkaufte Nordlicht 450 Segelboote"; the same question about Nordlicht
    # is answered, and one whose unknown name stands beside known ones is not declined for it
    answer = small.run("Wie viele Segelboote verkaufte die Werft Dehler 2021?")
    assert answer.abstained and "Keiner der Artikel erwähnt Dehler." in answer.answer
    assert "Dehler" in answer.abstain_reason
    assert "450" in small.run("Wie viele Segelboote verkaufte die Werft Nordlicht 2021?").short_answer
    assert "erwähnt" not in (small.run("Seit wann ist Hanna Petersen Geschäftsführerin bei Dehler?").answer or "")


def test_another_years_figure_is_quoted_with_its_year_but_never_the_short_answer(small):
    """The articles give 2019's and 2021's sales, not 2015's: an answer may quote them, dated, but must not lead
    with one of their figures as if it were 2015's."""
    answer = small.run("Wie viele Segelboote verkaufte Nordlicht 2015?")
    assert answer.abstained or answer.short_answer is None
    assert small.run("Wie viele Segelboote verkaufte Nordlicht 2021?").short_answer.startswith("450")


def test_the_answer_leads_with_its_quote_and_date(small):
    answer = small.run("Wann wurde die Bahnstrecke zwischen Lindau und Hohenberg eröffnet?")
    assert not answer.abstained and "4. Juni 2021" in answer.citations[0].quote
    assert "5. Juni 2021" in answer.answer  # the article's date, said once
    assert answer.confidence is not None and answer.confidence > 0


def test_a_sentence_that_refers_back_is_quoted_with_the_one_before(small):
    selection = small.select("Um wie viel Prozent stiegen die Verkäufe von Nordlicht?",
                             small.retriever.run("Um wie viel Prozent stiegen die Verkäufe von Nordlicht?"))
    pairs = [c for c in selection.ranked if c.candidate.pair]
    assert any(c.quote.startswith("2021 verkaufte") and c.quote.endswith("50 Prozent.") for c in pairs)


@pytest.mark.parametrize("question", ["😀😀😀", "Qual è la capitale della Francia?", "?", "asdf qwer zxcv"])
def test_odd_questions_get_an_answer_object_not_an_error(small, question):
    answer = small.run(question)
    assert answer.answer and (answer.abstained or answer.citations)
    assert_well_formed(answer, {d: a.text for d, a in small.index.articles.items()})


@pytest.mark.parametrize("question", ["⛵⛵", "🤖🤖", "?!", "… – …"])
def test_a_question_without_a_word_is_declined_whatever_its_vectors_find(small, question):
    answer = small.run(question)
    assert answer.abstained and not answer.citations and answer.abstain_reason == "the question has no words"


def test_empty_and_huge_questions_are_one_clear_error(small):
    with pytest.raises(RagError, match="empty"):
        small.run("   ")
    with pytest.raises(RagError, match="limit"):
        small.run("Wie " * 2000)


def test_generated_answers_must_keep_the_figures_of_the_chosen_sentence(small):
    question = "Wie viele Segelboote verkaufte die Werft Nordlicht 2021?"
    selection = small.select(question, small.retriever.run(question))
    agree = agreement(selection)
    assert any("450" in quote for quote in agree["all_figures"])


# --- the seeds and the eval set ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def eval_answers(seeds):
    _, _, answerer = seeds
    return {q["id"]: answerer.run(query(q), q["id"]) for q in QUESTIONS}


def test_every_eval_answer_is_well_formed(seeds, eval_answers):
    _, retriever, _ = seeds
    texts = {d: a.text for d, a in retriever.index.articles.items()}
    for answer in eval_answers.values():
        assert_well_formed(answer, texts)


def test_eval_set_numbers_hold_a_floor(eval_answers, capsys):
    """Printed with -s; the floors catch a broken selector, the targets are `rag eval`'s business."""
    answerable = [q for q in QUESTIONS if q["answerable"]]
    unanswerable = [q for q in QUESTIONS if not q["answerable"]]

    def correct(q) -> bool:
        a = eval_answers[q["id"]]
        text = (a.answer or "").lower()
        return not a.abstained and all(any(v.lower() in text for v in fact) for fact in q["answer"])

    right = sum(map(correct, answerable)) / len(answerable)
    declined = sum(eval_answers[q["id"]].abstained for q in unanswerable) / len(unanswerable)
    false = sum(eval_answers[q["id"]].abstained for q in answerable) / len(answerable)
    with capsys.disabled():
        print(f"\neval set: correct {right:.3f}, unanswerable declined {declined:.3f}, false abstention {false:.3f}")
    assert right >= 0.6 and false <= 0.2


def test_answer_latency_over_retrieval(seeds):
    settings, retriever, answerer = seeds
    times = []
    for q in QUESTIONS[:40]:
        hits = retriever.run(query(q), k=settings.top_k)
        started = time.perf_counter()
        answerer.run(query(q), q["id"], hits)
        times.append(time.perf_counter() - started)
    assert statistics.median(times) <= 0.05  # the target is 30 ms on an idle machine; tests share the CPU


# --- command line --------------------------------------------------------------------------------------------


def run_rag(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([RAG, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ})


def test_rag_ask_prints_answer_and_sources_and_json(seeds):
    settings, _, _ = seeds
    shown = run_rag("ask", "Wie viel zahlt Meta für Scale AI?", "--index-dir", str(settings.index_dir))
    assert shown.returncode == 0, shown.stderr
    assert "Quellen:" in shown.stdout and "[1] " in shown.stdout
    as_json = run_rag("ask", "Wie viel zahlt Meta für Scale AI?", "--index-dir", str(settings.index_dir), "--json")
    lines = as_json.stdout.strip().splitlines()
    assert len(lines) == 1
    answer = json.loads(lines[0])
    assert {"id", "question", "answer", "abstained", "citations", "retrieved", "short_answer", "confidence"} <= answer.keys()
    assert len(answer["retrieved"]) >= 10


def test_rag_ask_user_errors_are_one_sentence(seeds):
    settings, _, _ = seeds
    empty = run_rag("ask", "   ", "--index-dir", str(settings.index_dir))
    assert empty.returncode == 2 and empty.stderr.strip() == "Error: The question is empty."
    wrong = run_rag("ask", "Frage?", "--index-dir", str(settings.index_dir), "--answerer", "magic")
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr and "answerer" in wrong.stderr


def test_rag_batch_answers_forty_questions_and_reports_one_bad_line(seeds, tmp_path):
    settings, _, _ = seeds
    lines = [json.dumps({"id": q["id"], "question": query(q)}, ensure_ascii=False) for q in QUESTIONS[:40]]
    lines.insert(17, '{"id": "broken", "question": ')
    questions = tmp_path / "questions.jsonl"
    questions.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "answers.jsonl"
    done = run_rag("batch", str(questions), "--out", str(out), "--index-dir", str(settings.index_dir))
    assert done.returncode == 0 and "Traceback" not in done.stderr
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == [q["id"] for q in QUESTIONS[:40]]
    assert all(r["answer"] for r in records)
    assert "line 18 skipped" in done.stderr


# --- the local model (pytest -m llm) -------------------------------------------------------------------------


@pytest.mark.llm
def test_local_llm_on_the_eval_set(seeds, capsys):
    """The local model on every eval question, from the learned selection: grounding checks, latency."""
    settings, retriever, _ = seeds
    answerer = GenerativeAnswerer(retriever, settings.model_copy(update={"answerer": "llm"}))
    answerer.warm_up()
    texts = {d: a.text for d, a in retriever.index.articles.items()}
    first, total, generated = [], [], []
    for q in QUESTIONS:
        started, first_piece, final = time.perf_counter(), None, None
        for piece in answerer.stream(query(q), q["id"]):
            if isinstance(piece, str):
                first_piece = first_piece or time.perf_counter() - started
            else:
                final = piece
        if first_piece is not None:
            first.append(first_piece)
            total.append(time.perf_counter() - started)
            generated.append(final)
        assert check_quotes(final.citations, texts) == []
    failed = [a for a in generated if a.grounding and not a.grounding["passed"]]
    with capsys.disabled():
        print(f"\nlocal LLM: generated {len(generated)}, failed grounding {len(failed)} (fell back); first token p50 "
              f"{statistics.median(first):.1f} s, whole answer p50 {statistics.median(total):.1f} s")
    assert statistics.median(first) <= 6 and statistics.median(total) <= 12


def test_a_comparisons_parts_come_in_the_questions_order():
    """Quarters (or years) first, then names and nouns as the question has them, whatever a set's order: the parts
    are completed one after the other, and string hashing changes from one process to the next."""
    question = "Hat Zeta im dritten Quartal 2024 mehr verdient als Alpha, Omega, Kappa oder Beta?"
    names = frozenset(tokenize("Zeta Alpha Omega Kappa Beta Quartal"))
    view = question_view(question, {t: 1.0 for t in tokenize(question)}, 5.0)
    view = replace(view, names=names)
    assert asked_parts(view) == ["2024-q3", *tokenize("Zeta Quartal Alpha Omega Kappa Beta")]
    assert asked_parts(replace(view, periods=frozenset())) == ["2024", *tokenize("Zeta Quartal Alpha Omega Kappa Beta")]


COMPARED = {
    "nordlicht_kauf": (" date 2015-04-02 Hansa kauft Nordlicht\n"
                       "Die Reederei Hansa hat die Kieler Werft Nordlicht für 80 Millionen Euro gekauft. "
                       "Die Werft baut seit 1950 Segelboote."),
    "suedwind_kauf": (" date 2019-05-20 Hansa übernimmt Südwind\n"
                      "Die Werft Südwind gehört nun der Reederei Hansa, die 120 Millionen Euro zahlte. "
                      "Südwind stand schon lange zum Verkauf."),
}


@pytest.fixture(scope="module")
def compared(tmp_path_factory, real_seeds_index):
    """The invented corpus and two purchases to compare."""
    return invented(tmp_path_factory, real_seeds_index[1], ARTICLES | COMPARED)


def test_each_compared_name_gets_the_sentence_that_answers_for_it(compared, monkeypatch):
    """A comparison quotes a sentence for each name it compares; the candidates for a name the best quote lacks are
    ranked for the question without the other compared names."""
    question = "Was war teurer: der Kauf von Nordlicht oder der Kauf von Südwind?"
    answer = compared.run(question)
    quotes = " ".join(c.quote for c in answer.citations)
    assert not answer.abstained and "80 Millionen" in quotes and "120 Millionen" in quotes
    assert_well_formed(answer, {d: a.text for d, a in compared.index.articles.items()})
    asked, score = [], compared.selector.score
    monkeypatch.setattr(compared.selector, "score", lambda q, *a: asked.append(q) or score(q, *a))
    hits = compared.retriever.run(question, k=compared.settings.top_k)
    ranked = compared._ranked_for(question, "sudwind", {"nordlicht", "sudwind"}, hits)
    assert asked == ["Was war teurer: der Kauf von oder der Kauf von Südwind?"]
    assert "120 Millionen" in next(c.quote for c in ranked if compared._holds(c, "sudwind"))


def test_money_does_not_answer_how_many_and_the_rule_can_be_switched_off(compared):
    question = "Wie viele Mitarbeiter hat die Werft Südwind?"  # the articles give what it cost, not who works there
    selection = compared.select(question, compared.retriever.run(question, k=compared.settings.top_k))
    assert selection.abstained
    assert selection.reasons == ["the likely sentence gives an amount of money, the question counts"]
    assert not compared.run("Wie viele Millionen Euro zahlte Hansa für Südwind?").abstained  # money counts money
    settings = compared.settings.model_copy(update={"answer_rules_off": ["money_count"]})
    alone = ExtractiveAnswerer(compared.retriever, settings)
    assert alone.select(question, compared.retriever.run(question, k=settings.top_k)).reasons != selection.reasons


def test_a_who_question_whose_short_answer_names_no_one_is_declined(small, monkeypatch):
    question = "Wer leitet die Werft Nordlicht?"
    hits = small.retriever.run(question, k=small.settings.top_k)
    assert not small.select(question, hits).abstained  # the reader finds "Hanna Petersen"
    monkeypatch.setattr("rag.answer.answering._short_answer", lambda *args: "seit 2018")
    selection = small.select(question, hits)
    assert selection.abstained and selection.reasons == ["the likely sentence names no one the question could ask for"]
    assert not small.select("Was verkaufte Nordlicht 2021?", small.retriever.run("Was verkaufte Nordlicht 2021?",
                                                                                  k=small.settings.top_k)).abstained


def test_a_when_question_whose_short_answer_is_a_share_or_money_is_declined(small, monkeypatch):
    question = "Wann wurde die Bahnstrecke zwischen Lindau und Hohenberg eröffnet?"
    hits = small.retriever.run(question, k=small.settings.top_k)
    assert not small.select(question, hits).abstained
    monkeypatch.setattr("rag.answer.answering._short_answer", lambda *args: "über 90 %")
    selection = small.select(question, hits)
    assert selection.abstained and selection.reasons == ["the likely sentence gives an amount, the question asks when"]
    monkeypatch.setattr("rag.answer.answering._short_answer", lambda *args: "Nordlicht 300 Millionen Euro")
    who = "Wer leitet die Werft Nordlicht?"  # nor who
    assert small.select(who, small.retriever.run(who, k=small.settings.top_k)).reasons == [
        "the likely sentence gives an amount, the question asks who"]
    monkeypatch.setattr("rag.answer.answering._short_answer", lambda *args: "im Juni 2021")
    assert not small.select(question, hits).abstained
