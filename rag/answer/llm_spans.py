"""The short answer by the language model: the shortest verbatim span of the chosen quote, or nothing.

Why a second extractor: the learned span scorer (``rag.answer.spans``) sees only shallow features of a span, while
the local model reads the question and the sentence together. The model is asked, with a few worked examples (made
up, from no article; the small model follows examples far better than rules), to copy the few words of the quote
that answer. Its reply is used only when it *is* a span of the quote (white space and case aside, it is mapped back
to the quote's own characters, so a short answer stays a verbatim substring of a cited quote); anything else (a
rewording, a whole sentence, a refusal) gives None and the caller keeps the learned span.

Measured on XQuAD-de's held-out half in ``rag.eval.llm_spans`` (``eval/reports/llm.md``); offered as
``short_answers = "llm"`` (``RAG_SHORT_ANSWERS``) for the extractive answerer.
"""

from __future__ import annotations

import re
from typing import Callable, Protocol

from rag.answer.spans import wants_short_answer
from rag.errors import RagError
from rag.settings import Settings

# A short answer is a few words; the greedy model stops earlier on its own, this only bounds a runaway reply.
SPAN_TOKENS = 24
# A reply longer than this many words is no short answer (the model copied the clause): the learned span wins.
MAX_WORDS = 10
SPAN_PROMPT = ("Du liest einen Satz und eine Frage. Schreib nur die kürzeste Stelle des Satzes, die die Frage "
               "beantwortet – einen Namen, eine Zahl mit Einheit, ein Datum, einen Ort oder wenige Wörter –, genau so, "
               "wie sie im Satz steht. Keinen ganzen Satz, keine Erklärung.")
# (sentence, question, answer): made up, on purpose not from any article or benchmark.
SPAN_EXAMPLES = (
    ("Der Hafenbetreiber erwartet für 2025 Investitionen zwischen 40 und 45 Millionen Euro in neue Kräne.",
     "Wie viel will der Hafenbetreiber 2025 investieren?", "zwischen 40 und 45 Millionen Euro"),
    ("Die Sternwarte wurde 1874 nach Plänen des Architekten Heinrich Albers am Stadtrand errichtet.",
     "Wer entwarf die Sternwarte?", "Heinrich Albers"),
    ("Die Sternwarte wurde 1874 nach Plänen des Architekten Heinrich Albers am Stadtrand errichtet.",
     "Wann wurde die Sternwarte gebaut?", "1874"),
    ("Seit der Fusion sitzt die Verwaltung der Genossenschaft in Göttingen, während die Produktion in Polen bleibt.",
     "Wo hat die Genossenschaft ihre Verwaltung?", "Göttingen"),
    ("Für ihre Messungen nutzen die Forscher vor allem Wetterballons, weil Satelliten die unteren Luftschichten "
     "kaum erfassen.", "Womit messen die Forscher?", "Wetterballons"),
)
_QUOTES = "\"'„“”»«‚‘’ "
# Characters inside one word or figure ("US-Dollar", "14,3", "5.100"), as the learned spans' tokens have them.
_JOINERS = "-.,'’/"
_LABEL = re.compile(r"\A(?:antwort|kurzantwort|stelle)\s*:\s*", re.IGNORECASE)


class Completer(Protocol):
    """What the extractor needs of a backend (``rag.answer.generation.LocalModel`` or ``ServerClient``)."""

    def complete(self, messages: list[dict], max_tokens: int | None = None) -> str: ...


def span_messages(question: str, quote: str) -> list[dict]:
    """The chat messages: instructions and the worked examples first (the same every time, so the prompt cache
    keeps them), then the quote and the question."""
    def ask(sentence: str, asked: str) -> dict:
        return {"role": "user", "content": f"Satz: {' '.join(sentence.split())}\nFrage: {asked.strip()}"}

    messages = [{"role": "system", "content": SPAN_PROMPT}]
    for sentence, asked, answer in SPAN_EXAMPLES:
        messages += [ask(sentence, asked), {"role": "assistant", "content": answer}]
    return messages + [ask(quote, question)]


def verbatim(reply: str, quote: str) -> str | None:
    """The quote's own text of the span the model replied with, or None when the reply is no short span of it.

    The first line counts, without a label ("Antwort:"), quotation marks or a final full stop; white space and case
    may differ from the quote, the returned text is the quote's, in whole words.
    """
    lines = (reply or "").strip().splitlines()
    text = _LABEL.sub("", lines[0].strip()).strip(_QUOTES) if lines else ""
    for guess in (text, text.rstrip(".").strip(_QUOTES)):
        words = guess.split()
        if not words or len(words) > MAX_WORDS:
            continue
        pattern = r"\s+".join(re.escape(w) for w in words)
        match = re.search(pattern, quote) or re.search(pattern, quote, re.IGNORECASE)
        if match is None:
            continue
        start, end = match.span()  # a cut word is completed: "phagosomale" → "phagosomalen", "US" → "US-Dollar"
        while start > 0 and (quote[start - 1].isalnum() or (quote[start - 1] in _JOINERS and start > 1
                                                             and quote[start - 2].isalnum())):
            start -= 1
        while end < len(quote) and (quote[end].isalnum() or (quote[end] in _JOINERS and end + 1 < len(quote)
                                                             and quote[end + 1].isalnum())):
            end += 1
        if end - start < len(quote.strip().rstrip(".")):
            return quote[start:end]
    return None


def llm_short_answer(backend: Completer, question: str, quote: str) -> str | None:
    """The model's short answer as a verbatim span of ``quote``; None for a "Warum …?" or a yes/no question (no short
    fact of the quote answers it, ``wants_short_answer``) and whenever the reply is not a short span of the quote."""
    if not wants_short_answer(question) or not quote.strip():
        return None
    return verbatim(backend.complete(span_messages(question, quote), max_tokens=SPAN_TOKENS), quote)


def short_reader(settings: Settings) -> Callable[[str, str], str | None] | None:
    """``(question, quote) → short answer or None`` by the language model when ``settings.short_answers`` is
    ``"llm"`` (the server when the answerer is ``"server"``, else the local model), None for the learned spans.
    A failing model or server gives None (the learned span). Nothing is loaded here: the local model loads at its
    first question."""
    if settings.short_answers != "llm":
        return None
    from rag.answer.generation import make_backend

    backend = make_backend(settings if settings.answerer == "server" else settings.model_copy(update={"answerer": "llm"}))

    def read(question: str, quote: str) -> str | None:
        try:
            return llm_short_answer(backend, question, quote)
        except RagError:  # the server is down, the model failed: the learned span stands
            return None

    return read
