"""A user's own evaluation data (a question file over their index, or any SQuAD-format file): read, index, evaluate.

Question files (``.jsonl`` one object a line, or ``.csv`` with a header):

- ``question`` (required), ``id`` (optional: the line number),
- ``gold_docs``: the article ids (file names without extension) that answer it — a JSON list, or one string
  with ids separated by ``;``,
- ``answers`` (optional): accepted answer texts, list or ``;``-separated (any one counts),
- ``unanswerable`` (optional): ``true``/``false`` (also ``1``/``0``, ``yes``/``no``, ``ja``/``nein``).

SQuAD files (XQuAD, MLQA, GermanQuAD-style data): every paragraph becomes one article (ids as for XQuAD-de,
``<article>_<paragraph>_<title>``), every question's gold article is its paragraph and its accepted answers are
the answer texts. ``holdout`` leaves the *last* N articles (file order) out of the index: their questions become
unanswerable, the honest way to measure abstention (the answer is not just ranked low, it is absent).

Bad input never loses the good part: every problem is one sentence in ``problems`` and the rest is evaluated;
only a file with nothing to evaluate is an error.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

from rag.errors import RagError
from rag.eval.answer_runs import answer_runs, open_retriever
from rag.eval.datasets import EvalOptions, EvalQuestion, score_splits
from rag.eval.evaluation import _shown, flatten, result_header
from rag.eval.metrics import latency_summary
from rag.eval.retrieval_runs import REPLAYED, RecordingRetriever, replayed_runs, run_modes
from rag.eval.xquad import doc_id_for, read_squad_data, write_articles
from rag.retrieve.retrieval import Retriever
from rag.settings import Settings

TRUE = frozenset({"true", "1", "yes", "ja", "y", "x", "wahr"})
FALSE = frozenset({"false", "0", "no", "nein", "n", "", "falsch"})
SEPARATOR = ";"


@dataclass(frozen=True)
class OwnData:
    """Questions ready for the evaluation and what was wrong with the input (one sentence each)."""

    questions: list[EvalQuestion]
    problems: list[str]
    articles: dict[str, str] | None = None  # SQuAD: doc id → paragraph text of the *indexed* articles
    removed: tuple[str, ...] = ()            # SQuAD: doc ids left out of the index (``holdout``)


# --- question files ----------------------------------------------------------


def _ids(value) -> tuple[str, ...]:
    """A list, or one string with ``;`` between items, as clean non-empty strings."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else str(value).split(SEPARATOR)
    return tuple(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))


def _flag(value) -> bool | None:
    """True/False from the usual spellings; None when it is none of them."""
    if isinstance(value, bool) or value is None:
        return bool(value)
    text = str(value).strip().lower()
    return True if text in TRUE else False if text in FALSE else None


def _rows(path: Path) -> tuple[list[tuple[int, dict]], list[str]]:
    """``(line number, row)`` of a ``.jsonl``/``.csv`` file, and the lines that could not be read."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RagError(f"The question file {path} does not exist.") from None
    except UnicodeDecodeError:
        raise RagError(f"The question file {path} is not UTF-8 text.") from None
    except OSError as err:
        raise RagError(f"The question file {path} cannot be read ({err.strerror}).") from None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        columns = [c.strip().lower() for c in reader.fieldnames or []]
        if columns and "question" not in columns:
            raise RagError(f"{path.name} has no 'question' column (its columns: {', '.join(columns)}).")
        return [(n, {(k or "").strip().lower(): v for k, v in row.items()}) for n, row in enumerate(reader, start=2)], []
    if suffix in (".jsonl", ".json"):
        rows, bad = [], []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if isinstance(row, dict):
                rows.append((n, {str(k).strip().lower(): v for k, v in row.items()}))
            else:
                bad.append(n)
        if rows and not any("question" in row for _, row in rows):
            raise RagError(f"{path.name} has no 'question' field in any line.")
        return rows, bad
    raise RagError(f"{path.name}: question files must be .jsonl or .csv.")


def _lines(numbers: Iterable[int]) -> str:
    numbers = list(numbers)
    shown = ", ".join(map(str, numbers[:10]))
    return shown + (f" and {len(numbers) - 10} more" if len(numbers) > 10 else "")


def read_question_file(path: Path) -> OwnData:
    """The questions of a user's ``.jsonl``/``.csv`` file (see the module docstring)."""
    path = Path(path)
    rows, unreadable = _rows(path)
    problems = [f"{path.name}: line(s) {_lines(unreadable)} are not JSON objects and were skipped."] if unreadable else []
    questions, no_question, bad_flag, seen = [], [], [], set()
    for number, row in rows:
        text = str(row.get("question") or "").strip()
        if not text:
            no_question.append(number)
            continue
        flag = _flag(row.get("unanswerable"))
        if flag is None:
            bad_flag.append(number)
        unanswerable = bool(flag)
        qid = str(row.get("id") or "").strip() or str(number)
        if qid in seen:
            qid = f"{qid}@{number}"
        seen.add(qid)
        answers = _ids(row.get("answers"))
        questions.append(EvalQuestion(qid, text, text, () if unanswerable else _ids(row.get("gold_docs")), "all",
                                      "own", not unanswerable, () if unanswerable or not answers else (answers,)))
    if no_question:
        problems.append(f"{path.name}: line(s) {_lines(no_question)} have no question and were skipped.")
    if bad_flag:
        problems.append(f"{path.name}: line(s) {_lines(bad_flag)} have an 'unanswerable' value that is not "
                        "true/false; they were taken as answerable.")
    if not questions:
        raise RagError(f"{path.name} holds no questions.")
    return OwnData(questions, problems)


def drop_unknown_docs(data: OwnData, known: Iterable[str]) -> OwnData:
    """Gold article ids the index does not hold are removed (named once); their questions stay."""
    known = set(known)
    unknown = sorted({d for q in data.questions for d in q.gold_docs if d not in known})
    if not unknown:
        return data
    kept = [q if not set(q.gold_docs) & set(unknown) else
            EvalQuestion(q.id, q.question, q.query, tuple(d for d in q.gold_docs if d in known), q.split, q.type,
                         q.answerable, q.answer, q.evidence)
            for q in data.questions]
    shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
    note = (f"{len(unknown)} gold article id(s) are not in the index and were ignored: {shown}; questions left "
            "without gold articles count for the answer metrics only.")
    return OwnData(kept, data.problems + [note], data.articles, data.removed)


# --- SQuAD files -------------------------------------------------------------


def read_squad(path: Path, holdout: int = 0) -> OwnData:
    """Paragraphs as articles and questions of a SQuAD-format file; the last ``holdout`` articles left out."""
    path = Path(path)
    data = read_squad_data(path)
    if not isinstance(data, list) or not data:
        raise RagError(f"{path.name} holds no articles.")
    if not 0 <= holdout < len(data):
        raise RagError(f"--holdout-articles must be between 0 and {len(data) - 1} for {path.name} "
                       f"({len(data)} articles).")
    articles, removed, questions = {}, [], []
    skipped_paragraphs = skipped_questions = broken = answers_seen = 0
    first_removed = len(data) - holdout
    for a, article in enumerate(data):
        title = str(article.get("title") or f"article {a}") if isinstance(article, dict) else ""
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        for p, paragraph in enumerate(paragraphs if isinstance(paragraphs, list) else []):
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            if not isinstance(context, str) or not context.strip():
                skipped_paragraphs += 1
                continue
            doc_id = doc_id_for(a, p, title)
            text = context.lstrip("\ufeff")  # a leading byte-order mark would be dropped by the corpus loader
            held_out = a >= first_removed
            if held_out:
                removed.append(doc_id)
            else:
                articles[doc_id] = text
            for qa in paragraph.get("qas") or []:
                question = str(qa.get("question") or "").strip() if isinstance(qa, dict) else ""
                if not question:
                    skipped_questions += 1
                    continue
                answers = [x for x in qa.get("answers") or [] if isinstance(x, dict) and str(x.get("text") or "").strip()]
                for x in answers:
                    answers_seen += 1
                    start = x.get("answer_start")
                    if not isinstance(start, int) or context[start:start + len(x["text"])] != x["text"]:
                        broken += 1
                texts = tuple(dict.fromkeys(str(x["text"]).strip() for x in answers))
                answerable = bool(texts) and not qa.get("is_impossible") and not held_out
                questions.append(EvalQuestion(str(qa.get("id") or f"{doc_id}/{len(questions)}"), question, question,
                                              (doc_id,) if answerable else (), "removed" if held_out else "indexed",
                                              "squad", answerable, (texts,) if answerable else ()))
    problems = []
    if skipped_paragraphs:
        problems.append(f"{path.name}: {skipped_paragraphs} paragraph(s) without a 'context' text were skipped.")
    if skipped_questions:
        problems.append(f"{path.name}: {skipped_questions} question(s) without a 'question' text were skipped.")
    if broken:
        problems.append(f"{path.name}: {broken} of {answers_seen} answers have an 'answer_start' that does not point at "
                        "their text in the paragraph; their text is still used as the gold answer.")
    if not articles or not questions:
        raise RagError(f"{path.name} holds no paragraphs with questions to evaluate.")
    return OwnData(questions, problems, articles, tuple(removed))


# --- the article folder's content key ---------------------------------------


def content_key(articles: Mapping[str, str]) -> str:
    """A hash of the articles (ids and texts): the index of the same articles is built once and reused."""
    digest = hashlib.sha256()
    for doc_id in sorted(articles):
        digest.update(doc_id.encode("utf-8") + b"\0" + articles[doc_id].encode("utf-8") + b"\0")
    return digest.hexdigest()[:16]


# --- evaluating ----------------------------------------------------------------


def squad_retriever(data: OwnData, settings: Settings, log: Callable[[str], None] = lambda m: None,
                    progress: bool = False, embedder=None) -> Retriever:
    """A retriever on the SQuAD paragraphs, indexed once into ``squad-<content hash>/`` beside
    ``settings.index_dir`` (by default under ``index/``)."""
    root = Path(settings.index_dir).parent / f"squad-{content_key(data.articles)}"
    folder = write_articles(root / "articles", data.articles)
    _seed_from_larger(root, set(data.articles))
    return open_retriever(root / "index", settings, folder, log, progress, embedder)


def _seed_from_larger(root: Path, wanted: set[str]) -> None:
    """A new index of articles that an earlier run indexed with more (the full file, then ``--holdout-articles``)
    starts as a copy of that index: building it then only drops the held-out articles and embeds nothing again,
    seconds instead of minutes. The build still checks every article's text, so a changed one is re-embedded."""
    if (root / "index" / "params.json").exists():
        return
    larger = []
    for params in root.parent.glob("squad-*/index/params.json"):
        have = {p.stem for p in (params.parent.parent / "articles").glob("*.txt")}
        if wanted <= have:
            larger.append((len(have), params.parent))
    if larger:
        shutil.copytree(min(larger)[1], root / "index", symlinks=True, dirs_exist_ok=True)


def evaluate_own(settings: Settings, options: EvalOptions, data: OwnData, base: Retriever, label: str = "own") -> dict:
    """Retrieval configurations and answerers on a user's questions over ``base``'s index (one dataset entry)."""
    data = drop_unknown_docs(data, base.index.articles)
    questions = data.questions
    retriever = RecordingRetriever(base)
    configs, notes, samples = {}, list(data.problems), {}
    for mode, run in run_modes(retriever, questions, options, label).items():
        configs[mode] = {**score_splits(questions, run.ranked), "latency": latency_summary(run.latencies)}
        samples[mode] = run.latencies
    for name, run in replayed_runs(retriever, questions, options, label).items():
        configs[name] = {**score_splits(questions, run.ranked), "latency": latency_summary([]), "note": REPLAYED[name][2]}
    articles = {doc_id: a.text for doc_id, a in base.index.articles.items()}
    answers = answer_runs(base, settings, questions, articles, options, notes, samples, span_gold=True, label=label)
    return {"index": _shown(base.index.path), "articles": len(base.index.articles), "passages": len(base.index.chunks),
            "questions": len(questions), "answerable": sum(q.answerable for q in questions),
            "removed_articles": len(data.removed), "configs": configs, "answers": answers, "notes": notes,
            "_samples": samples}


def run_own_evaluation(settings: Settings, options: EvalOptions, data: OwnData, base: Retriever, label: str) -> dict:
    """The whole result (header, one dataset ``label``, flat metrics) for ``report.write_report``."""
    started = time.perf_counter()
    result = result_header(settings, options)
    result["datasets"][label] = evaluate_own(settings, options, data, base, label)
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["flat"] = flatten(result)
    return result


def evaluate_file(settings: Settings, options: EvalOptions, questions: Path | None = None, squad: Path | None = None,
                  holdout: int = 0, log: Callable[[str], None] = lambda m: None) -> dict:
    """`rag eval --questions FILE` (over ``settings.index_dir``) or `rag eval --squad FILE [--holdout-articles N]`.

    The result's dataset is named ``own`` or ``squad``; each input problem is logged once and kept in its notes.
    """
    from rag.pipeline import open_retriever

    if (questions is None) == (squad is None):
        raise RagError("Give either --questions FILE or --squad FILE.")
    if squad is not None:
        data = read_squad(squad, holdout)
        base = squad_retriever(data, settings, log, options.progress)
    else:
        if holdout:
            raise RagError("--holdout-articles works with --squad only: with --questions, leave articles out of "
                           "the index you pass with --index-dir.")
        data = read_question_file(questions)
        base = open_retriever(settings, log=log, progress=options.progress)
    data = drop_unknown_docs(data, base.index.articles)
    for problem in data.problems:
        log(problem)
    return run_own_evaluation(settings, options, data, base, "squad" if squad is not None else "own")
