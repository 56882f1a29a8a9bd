"""The local language model against the learned span scorer as the short-answer extractor, on XQuAD-de's held-out half.

Both extractors get the same quote for the same question, so the comparison is of the span choice alone:

- ``gold``: the gold sentence (the sentence(s) holding the answer span, as ``rag.eval.span_training`` uses);
- ``chosen``: the sentence the extractive answerer quotes first, with retrieval over all 240 paragraphs
  (questions it declines are left out; a chosen sentence without the answer caps both extractors alike).

Scored like the eval: SQuAD-style exact match and token F1 against every XQuAD answer (no short answer scores 0),
and seconds per question of the extractor alone. ``llm+learned`` is what ``short_answers = "llm"`` gives: the model's
span, the learned one when the model's reply is no span of the quote. Nothing here was tuned on these questions:
the prompt's examples are made up and were written before this measurement.

``python -m rag.eval.llm_spans [--sentence gold|chosen] [--limit N]`` prints the table and writes
``eval/reports/llm-spans-<sentence>.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable, Sequence

from rag.answer.llm_spans import Completer, llm_short_answer
from rag.answer.reader import Reader, make_reader
from rag.answer.spans import short_answer
from rag.eval.answers import exact_match, token_f1
from rag.eval.datasets import eval_dir
from rag.eval.span_training import SpanExample, gold_examples
from rag.settings import Settings

EXTRACTORS = ("learned", "llm", "llm+learned")


def sample(examples: Sequence[SpanExample], limit: int | None) -> list[SpanExample]:
    """``limit`` examples spread evenly over the list (every article represented), or all of them."""
    if not limit or limit >= len(examples):
        return list(examples)
    step = len(examples) / limit
    return [examples[int(i * step)] for i in range(limit)]


def chosen_examples(examples: Sequence[SpanExample], settings: Settings,
                    log: Callable[[str], None] = lambda m: None) -> list[SpanExample]:
    """The same questions with the extractive answerer's first quote (retrieval over all XQuAD-de paragraphs) in
    place of the gold sentence; declined questions are dropped."""
    from rag.answer.answering import ExtractiveAnswerer
    from rag.eval.answer_runs import open_retriever
    from rag.eval.xquad import prepare

    prepared = prepare()
    retriever = open_retriever(settings.index_dir.parent / "xquad-de", settings, prepared.paragraph_dir, log, False)
    answerer = ExtractiveAnswerer(retriever, settings.model_copy(update={"answerer": "extractive"}))
    chosen = []
    for example in examples:
        answer = answerer.run(example.question)
        if not answer.abstained and answer.citations:
            chosen.append(SpanExample(example.id, example.question, answer.citations[0].quote, example.answers))
    return chosen


def compare(examples: Sequence[SpanExample], backend: Completer, reader: Reader,
            progress: Callable[[int, int], None] = lambda done, total: None) -> tuple[dict, list[dict]]:
    """Per extractor: questions, exact match, token F1, share answered, seconds per question; and every item
    (``learned``: the span scorer with ``reader``)."""
    totals = {name: {"exact_match": 0.0, "token_f1": 0.0, "answered": 0, "seconds": 0.0} for name in EXTRACTORS}
    items = []
    for done, example in enumerate(examples, start=1):
        started = time.perf_counter()
        span = short_answer(example.question, example.quote, reader)
        learned = span.text if span else None
        middle = time.perf_counter()
        llm = llm_short_answer(backend, example.question, example.quote)
        finished = time.perf_counter()
        picks = {"learned": learned, "llm": llm, "llm+learned": llm or learned}
        seconds = {"learned": middle - started, "llm": finished - middle, "llm+learned": finished - started}
        for name, pick in picks.items():
            totals[name]["exact_match"] += exact_match(pick, example.answers) if pick else 0.0
            totals[name]["token_f1"] += token_f1(pick, example.answers) if pick else 0.0
            totals[name]["answered"] += pick is not None
            totals[name]["seconds"] += seconds[name]
        items.append({"id": example.id, "question": example.question, "answers": list(example.answers), **picks})
        progress(done, len(examples))
    count = max(len(examples), 1)
    metrics = {name: {"questions": len(examples), "exact_match": round(t["exact_match"] / count, 4),
                      "token_f1": round(t["token_f1"] / count, 4), "answered": round(t["answered"] / count, 4),
                      "seconds_per_question": round(t["seconds"] / count, 4)} for name, t in totals.items()}
    return metrics, items


def table(metrics: dict) -> str:
    """The comparison as a Markdown table."""
    lines = ["| extractor | questions | EM | token F1 | answered | s/question |", "|---|---|---|---|---|---|"]
    for name, m in metrics.items():
        lines.append(f"| {name} | {m['questions']} | {m['exact_match']:.3f} | {m['token_f1']:.3f} | "
                     f"{m['answered']:.3f} | {m['seconds_per_question']:.3f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    from rag.answer.generation import make_backend

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentence", choices=("gold", "chosen"), default="gold")
    parser.add_argument("--limit", type=int, default=None, help="questions, spread evenly (default: all)")
    args = parser.parse_args(argv)
    settings = Settings()
    examples = sample(gold_examples("heldout"), args.limit)
    if args.sentence == "chosen":
        examples = chosen_examples(examples, settings, print)
    backend = make_backend(settings.model_copy(update={"answerer": "llm"}), print)
    backend.warm_up()
    metrics, items = compare(examples, backend, make_reader(settings),
                             lambda done, total: print(f"{done}/{total}", flush=True) if done % 25 == 0 else None)
    target = eval_dir() / "reports" / f"llm-spans-{args.sentence}.json"
    target.write_text(json.dumps({"sentence": args.sentence, "limit": args.limit, "metrics": metrics, "items": items},
                                 ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(table(metrics))


if __name__ == "__main__":  # python -m rag.eval.llm_spans
    main()
