"""The language model's short answer: only a verbatim span of the quote counts, otherwise the learned span stands.

The default suite uses a scripted stand-in for the model (what it replies is the point, not the model); the real
local model runs under ``pytest -m llm``.
"""

from __future__ import annotations

import pytest

from rag.answer.answering import ExtractiveAnswerer, _short_answer, generate
from rag.answer.llm_spans import MAX_WORDS, llm_short_answer, short_reader, span_messages, verbatim
from rag.errors import RagError
from rag.retrieve.retrieval import Retriever
from rag.schema import Answer
from rag.settings import Settings

QUOTE = ("Für das Jahr 2026 plant Meta Investitionen zwischen 115 und 135 Milliarden US-Dollar, "
         "sagte Finanzchefin Susan Li.")


class Scripted:
    """A backend that replies with a fixed text and records what it was asked."""

    def __init__(self, reply: str | Exception) -> None:
        self.reply = reply
        self.asked: list[tuple[list[dict], int | None]] = []

    def complete(self, messages: list[dict], max_tokens: int | None = None) -> str:
        self.asked.append((messages, max_tokens))
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


@pytest.mark.parametrize("reply, expected", [
    ("Susan Li", "Susan Li"),
    ("susan   li", "Susan Li"),                                   # case and white space are the quote's
    ("Antwort: „zwischen 115 und 135 Milliarden US-Dollar“.", "zwischen 115 und 135 Milliarden US-Dollar"),
    ("Milliarden US\n(weil die Finanzchefin es sagte)", "Milliarden US-Dollar"),  # first line; a cut word completed
    ("Sheryl Sandberg", None),                                    # not in the quote
    ("115 bis 135 Milliarden", None),                             # reworded: no span of the quote
    (QUOTE, None),                                                # the whole sentence is no short answer
    ("", None),
])
def test_only_a_short_verbatim_span_of_the_quote_counts(reply, expected):
    found = verbatim(reply, QUOTE)
    assert found == expected
    assert found is None or (found in QUOTE and len(found.split()) <= MAX_WORDS)


def test_the_model_is_asked_with_fixed_examples_first_and_a_small_token_budget():
    model = Scripted("Susan Li")
    assert llm_short_answer(model, "Wer ist Finanzchefin von Meta?", QUOTE) == "Susan Li"
    (messages, max_tokens), = model.asked
    assert max_tokens is not None and max_tokens <= 32
    assert messages[:-1] == span_messages("Andere Frage?", "Anderer Satz.")[:-1]  # cacheable prefix
    assert QUOTE in messages[-1]["content"] and "Finanzchefin" in messages[-1]["content"]


def test_a_reason_question_gets_no_short_answer_and_the_model_is_not_asked():
    model = Scripted("weil")
    assert llm_short_answer(model, "Warum investiert Meta so viel?", QUOTE) is None and model.asked == []


def test_the_learned_span_stands_when_the_model_gives_none(reader):
    question = "Wer ist Finanzchefin von Meta?"
    learned = _short_answer(question, QUOTE, reader)
    assert _short_answer(question, QUOTE, reader, lambda q, s: None) == learned
    assert _short_answer(question, QUOTE, reader, lambda q, s: "Susan Li") == "Susan Li"


def test_the_setting_chooses_the_reader_and_a_failing_server_falls_back(monkeypatch):
    assert short_reader(Settings(short_answers="learned")) is None
    failing = Scripted(RagError("The language-model server at http://127.0.0.1:9/v1 is not reachable."))
    monkeypatch.setattr("rag.answer.generation.make_backend", lambda settings, log=None: failing)
    read = short_reader(Settings(short_answers="llm", answerer="server", llm_url="http://127.0.0.1:9/v1"))
    assert read("Wer ist Finanzchefin von Meta?", QUOTE) is None and len(failing.asked) == 1
    with pytest.raises(ValueError):
        Settings(short_answers="gpt")


def test_the_extractive_answer_leads_with_the_models_span(real_seeds_index):
    settings, embedder, index = real_seeds_index
    retriever = Retriever(index, embedder, settings)
    answerer = ExtractiveAnswerer(retriever, settings)
    question = "Wie viel zahlt Meta für Scale AI?"
    learned = answerer.run(question)
    quote = learned.citations[0].quote
    words = quote.split()[1:3]
    answerer.short_reader = lambda q, s: verbatim(" ".join(words), s)
    answer = answerer.run(question)
    assert answer.short_answer == " ".join(words) and answer.answer.startswith(answer.short_answer)
    assert answer.short_answer in answer.citations[0].quote


class Citing:
    """A generator that writes one passage's sentence verbatim and cites only that passage."""

    def __init__(self, settings: Settings, pick: int) -> None:
        self.settings, self.pick = settings, pick

    def stream(self, question, hits, passages, fallback, id=None, agree=None):
        cited = passages[self.pick]
        yield Answer(id, question, f"{cited.text} [{cited.n}]", False, [cited.citation()], [], "server")


@pytest.mark.parametrize("pick", [0, -1])
def test_a_generated_answer_keeps_the_short_answer_only_when_it_cites_its_quote(real_seeds_index, pick):
    settings, embedder, index = real_seeds_index
    retriever = Retriever(index, embedder, settings)
    extractive = ExtractiveAnswerer(retriever, settings)
    question = "Wie viel zahlt Meta für Scale AI?"
    hits = retriever.run(question, k=settings.top_k)
    selection = extractive.select(question, hits)
    assert selection.short and not selection.abstained
    *_, answer = generate(Citing(settings, pick), selection, question, hits, lambda: None)
    quote = answer.citations[0].quote
    assert answer.short_answer == (selection.short if selection.short in quote else None)
    if pick == 0:
        assert answer.short_answer == selection.short


@pytest.mark.llm
def test_the_local_model_picks_a_span_of_the_quote(real_seeds_index):
    """The real local model on a real question: its short answer is a substring of the quote it was given."""
    settings, embedder, index = real_seeds_index
    retriever = Retriever(index, embedder, settings)
    answerer = ExtractiveAnswerer(retriever, settings.model_copy(update={"short_answers": "llm"}))
    for question in ("Wie viel investiert Meta 2026?", "Wer ist Finanzchefin von Meta?"):
        answer = answerer.run(question)
        quote = answer.citations[0].quote
        assert not answer.abstained and answer.short_answer and answer.short_answer in quote
        assert answerer.short_reader(question, quote) in (None, answer.short_answer)
