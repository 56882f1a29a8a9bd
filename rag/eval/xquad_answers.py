"""Answers on XQuAD-de: the held-out half over the full index, and abstention on articles removed from it.

Protocol (issue 14; the numbers of the report's "XQuAD-de answers" section):

- *Answers*: every question of the held-out half (articles 25–48, 1-based in file order; nothing was tuned
  on them) goes through the answerer ``make_answerer`` builds, with retrieval over the index of all 240
  paragraphs. Measured: contains-gold, short-answer EM/F1 against the XQuAD answer spans, gold citation,
  false abstention, calibration of ``confidence``.
- *Removed articles*: a second index holds every paragraph except those of articles 37–48 (the second half of
  the held-out half, 60 paragraphs). Their questions (about 300) are asked there, where no article can answer
  them: the right response is to decline (``removed_declined``). Removing the article, rather than writing
  questions nobody can answer, keeps the questions natural: they look exactly like answerable ones.
  ``ece_incl_removed`` is the calibration error over the answers of both runs (a confident answer to a question
  whose article is gone counts as a wrong answer a user sees).
- *Near misses*: each held-out question with one specific term swapped for one its gold article does not hold
  (``rag.eval.near_misses``: a year moved by a few years, or its rarest capitalised word replaced by one of another
  article), asked over the full index; declining is right (``near_declined``). These are the unanswerable questions
  users ask most (another company, another year), and the hardest to decline: the articles are close.
- *Missing paragraphs*: a third index holds every paragraph but the second and fourth of each article
  (``MISSING_PARAGRAPHS``). The held-out questions of those paragraphs whose gold answer no other paragraph of their
  article holds are asked there (``missing_paragraph_questions``); declining is right (``missing_declined``). These
  are natural near misses: the question's topic, names and words are all indexed, only the fact is not ("Wo wurde
  Tesla geboren?" over paragraphs about Tesla's inventions), the way a user asks what the articles do not say. Some
  still have an answer in other words in a kept paragraph, so the measure is a floor of what is right to decline.
- *Small folders*: each held-out article alone in an index of its own (5 paragraphs, 6-13 passages, the size of
  a user's folder of a few short articles), asked its own questions (answerable) and those of the next held-out
  article (unanswerable: that folder does not hold it) by the extractive answerer (``small_folder_runs``). A
  small index has no background for a question's best passage to stand out of; scores read against one
  (``features.standout``) must not decide there.
- *Asked in English*: the held-out questions in English (``eval/xquad-de/questions_en.jsonl``, translated by the
  local model), over the full index and, for the removed articles, over the reduced one (``english``): users ask
  German articles in English too.

The reduced index is a copy of the full one updated incrementally (deleted articles are dropped, nothing is
embedded again), so the second index costs seconds, not a rebuild.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

from rag.eval.answers import expected_calibration_error, reliability
from rag.eval.answer_runs import answer_runs, make_answerers, open_retriever, run_answerer
from rag.eval.datasets import EvalOptions, EvalQuestion, score_splits
from rag.eval.english_questions import load_english
from rag.eval.metrics import facts_of, normalise_answer
from rag.eval.near_misses import near_miss_questions
from rag.eval.xquad import Paragraph, default_workdir, load_xquad, parse_doc_id, write_articles
from rag.retrieve.retrieval import Retriever
from rag.settings import Settings

REMOVED_ARTICLES = range(36, 48)  # 0-based: articles 37–48
MISSING_PARAGRAPHS = (1, 3)       # 0-based positions in their article: left out of the missing-paragraph index
ENGLISH_METRICS = ("contains_gold", "short_f1", "short_exact", "gold_citation", "false_abstention", "ece")


def in_english(questions: Sequence[EvalQuestion], english: dict[str, str]) -> list[EvalQuestion]:
    """The questions that have an English version, asked in English."""
    return [replace(q, question=english[q.id], query=english[q.id]) for q in questions if q.id in english]


def removed_retriever(full_index: Path, settings: Settings, options: EvalOptions, log: Callable[[str], None],
                      embedder=None, keep: Callable[[Paragraph], bool] | None = None, name: str = "removed") -> Retriever:
    """A retriever on the XQuAD paragraphs ``keep`` accepts (default: all but those of ``REMOVED_ARTICLES``), its
    index beside the full one (``<full>-<name>``; a ``name`` with a slash makes a folder of such indexes), made
    from a copy of it and updated incrementally."""
    keep = keep or (lambda p: p.article not in REMOVED_ARTICLES)
    paragraphs, _ = load_xquad(options.xquad_source)
    workdir = Path(options.xquad_workdir or default_workdir())
    folder = write_articles(workdir / name / "paragraphs", {p.doc_id: p.text for p in paragraphs if keep(p)})
    index_dir = Path(full_index).parent / f"{Path(full_index).name}-{name}"
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    if not (index_dir / "params.json").exists() and (Path(full_index) / "params.json").exists():
        shutil.copytree(full_index, index_dir, symlinks=True, dirs_exist_ok=True)
    return open_retriever(index_dir, settings, folder, log, options.progress, embedder)


def missing_paragraph_questions(paragraphs: Sequence[Paragraph], questions: Sequence[EvalQuestion]) -> list[EvalQuestion]:
    """The ``questions`` of paragraphs at ``MISSING_PARAGRAPHS`` whose gold answer none of their article's other
    paragraphs holds (after SQuAD normalisation), made unanswerable: over an index without those paragraphs, the
    right response is to decline. A question whose answer stands in a kept paragraph too is left out."""
    kept: dict[int, list[str]] = {}
    for p in paragraphs:
        if p.paragraph not in MISSING_PARAGRAPHS:
            kept.setdefault(p.article, []).append(normalise_answer(p.text))
    out = []
    for q in questions:
        article, position = parse_doc_id(q.gold_docs[0])
        answers = [a for variants in facts_of(q.answer) for a in variants]
        if position in MISSING_PARAGRAPHS and not any(
                normalise_answer(a) in text for a in answers for text in kept.get(article, ())):
            out.append(replace(q, gold_docs=(), answerable=False, answer=(), split="missing"))
    return out


def small_folder_runs(base: Retriever, settings: Settings, options: EvalOptions, heldout: Sequence[EvalQuestion],
                      log: Callable[[str], None] = lambda m: None, embedder=None) -> dict:
    """The extractive answerer over one held-out article at a time (see the module's *Small folders*): its own
    questions and the next article's, with contains-gold, false abstention, declined and calibration over all."""
    by_article: dict[int, list[EvalQuestion]] = {}
    for q in heldout:
        by_article.setdefault(parse_doc_id(q.gold_docs[0])[0], []).append(q)
    order = sorted(by_article)
    judged, unanswerable, passages = [], [], []
    for k, article in enumerate(order):
        retriever = removed_retriever(base.index.path, settings, options, log, embedder or base.embedder,
                                      keep=lambda p, article=article: p.article == article, name=f"small/{article + 1:02d}")
        passages.append(len(retriever.index.chunks))
        answer = make_answerers(retriever, settings, ["extractive"], asked=True)[0]["extractive"]
        texts = {doc_id: a.text for doc_id, a in retriever.index.articles.items()}
        others = [replace(q, gold_docs=(), answerable=False, answer=(), split="small")
                  for q in by_article[order[(k + 1) % len(order)]]]
        judged += run_answerer(answer, by_article[article], texts, span_gold=True)["judged"]
        unanswerable += run_answerer(answer, others, texts)["judged"]
    answered = [j for j in judged + unanswerable if not j.abstained and j.confidence is not None]
    curve = reliability([j.confidence for j in answered], [j.correct for j in answered])
    return {"small_questions": len(judged), "small_unanswerable": len(unanswerable), "small_folders": len(order),
            "small_passages": [min(passages), max(passages)],
            "small_contains_gold": sum(j.correct for j in judged) / len(judged),
            "small_false_abstention": sum(j.abstained for j in judged) / len(judged),
            "small_declined": sum(j.abstained for j in unanswerable) / len(unanswerable),
            "small_ece": expected_calibration_error(curve)}


def evaluate_answers(base: Retriever, settings: Settings, options: EvalOptions, questions: Sequence[EvalQuestion],
                     log: Callable[[str], None] = lambda m: None, embedder=None) -> tuple[dict, list[str], dict]:
    """``(answers, notes, latency samples)``: per answerer the held-out metrics plus ``removed_declined`` and
    ``near_declined``; for the extractive one also ``missing_declined``."""
    notes: list[str] = []
    samples: dict = {}
    heldout = [q for q in questions if q.split == "heldout"]
    articles = {doc_id: a.text for doc_id, a in base.index.articles.items()}
    answers = answer_runs(base, settings, heldout, articles, options, notes, samples, span_gold=True, label="xquad")
    if not answers:
        return answers, notes, samples
    removed = [replace(q, gold_docs=(), answerable=False, answer=(), split="removed") for q in heldout
               if parse_doc_id(q.gold_docs[0])[0] in REMOVED_ARTICLES]
    paragraphs, xquestions = load_xquad(options.xquad_source)
    variants = near_miss_questions(paragraphs, [x for x in xquestions if x.split == "heldout"])
    near = [replace(q, question=variants[q.id], query=variants[q.id], gold_docs=(), answerable=False, answer=(),
                    split="near") for q in heldout if q.id in variants]
    english = load_english()
    base_answerers, _ = make_answerers(base, settings, list(answers), asked=options.configs is not None)
    for name, answer in base_answerers.items():
        outcome = run_answerer(answer, near, articles, progress=options.progress, desc=f"xquad near misses {name}")
        answers[name].update(near_declined=outcome["metrics"]["abstention"], near_questions=len(near),
                             near_worst=outcome["worst"])
        if english and name == "extractive":  # the generating answerers take 8 s a question: not twice
            asked = in_english(heldout, english)
            outcome = run_answerer(answer, asked, articles, progress=options.progress, desc=f"xquad in English {name}",
                                   span_gold=True)
            retrieval = score_splits(asked, outcome["ranked"])["all"]
            answers[name]["english"] = {"questions": outcome["metrics"]["answerable"],
                                        **{k: retrieval.get(k) for k in ("recall@1", "mrr@10")},
                                        **{k: outcome["metrics"][k] for k in ENGLISH_METRICS}}
    if "extractive" in answers:  # the generating answerers take 8 s a question: the extractive one is measured
        missing = missing_paragraph_questions(paragraphs, heldout)
        gaps = removed_retriever(base.index.path, settings, options, log, embedder or base.embedder,
                                 keep=lambda p: p.paragraph not in MISSING_PARAGRAPHS, name="missing")
        answer = make_answerers(gaps, settings, ["extractive"], asked=options.configs is not None)[0]["extractive"]
        outcome = run_answerer(answer, missing, {d: a.text for d, a in gaps.index.articles.items()},
                               progress=options.progress, desc="xquad missing paragraphs extractive")
        answers["extractive"].update(missing_declined=outcome["metrics"]["abstention"], missing_questions=len(missing),
                                     missing_worst=outcome["worst"])
        answers["extractive"].update(small_folder_runs(base, settings, options, heldout, log, embedder))
    reduced = removed_retriever(base.index.path, settings, options, log, embedder or base.embedder)
    answerers, _ = make_answerers(reduced, settings, list(answers), asked=options.configs is not None)
    reduced_articles = {doc_id: a.text for doc_id, a in reduced.index.articles.items()}
    for name, answer in answerers.items():
        outcome = run_answerer(answer, removed, reduced_articles, progress=options.progress,
                               desc=f"xquad removed {name}")
        answered = [j for j in answers[name]["_judged"] + outcome["judged"] if not j.abstained and j.confidence is not None]
        curve = reliability([j.confidence for j in answered], [j.correct for j in answered])
        answers[name].update(removed_declined=outcome["metrics"]["abstention"], removed_questions=len(removed),
                             removed_paragraphs=len(base.index.articles) - len(reduced.index.articles),
                             removed_worst=outcome["worst"], ece_incl_removed=expected_calibration_error(curve))
        if "english" in answers[name]:
            outcome = run_answerer(answer, in_english(removed, english), reduced_articles, progress=options.progress,
                                   desc=f"xquad removed in English {name}")
            answers[name]["english"]["removed_declined"] = outcome["metrics"]["abstention"]
    return answers, notes, samples
