"""Question files in, answer files out: `rag batch`.

Reading is tolerant: a bad line is reported with its number and skipped, every
good line is answered. Writing is incremental (one flushed record per answer, in
the order of the questions), so an interrupted run keeps what it finished and
``--resume`` continues it.

Why several questions at once (``workers``): one question's ONNX passes are too small
to keep two cores busy. On XQuAD-de's questions with the extractive answerer, two
threads answered 44.8 questions/s against 28.6 one after the other (2 cores, the
same answers), so `rag batch` answers ``settings.threads`` questions at a time.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from rag.errors import RagError
from rag.progress import EVERY_SECONDS, Progress
from rag.schema import Answer

INPUT_SUFFIXES = (".jsonl", ".txt", ".csv")
OUTPUT_SUFFIXES = (".jsonl", ".csv", ".md")
CSV_FIELDS = ["id", "question", "answer", "abstained", "sources", "retrieved"]
_MD_MARKER = "<!-- id: "


@dataclass(frozen=True)
class Question:
    id: str
    question: str


@dataclass(frozen=True)
class BadLine:
    line: int
    reason: str


@dataclass
class BatchSummary:
    answered: int = 0
    abstained: int = 0
    retrieved_only: int = 0  # `rag batch --retrieve-only`: passages found, no answer asked for
    skipped: int = 0
    resumed: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def text(self) -> str:
        """``5 Fragen: 4 beantwortet, 1 ohne Beleg in den Artikeln, 0 übersprungen`` – the parts add up to the total
        (an abstention is not counted as answered; with ``--retrieve-only``: ``5 Fragen: 5 nur Passagen gesucht,
        0 übersprungen``)."""
        total = self.answered + self.skipped + self.resumed
        done = f", {self.resumed} schon erledigt" if self.resumed else ""
        if self.retrieved_only:
            found = f"{self.retrieved_only} nur Passagen gesucht"
        else:
            found = f"{self.answered - self.abstained} beantwortet, {self.abstained} ohne Beleg in den Artikeln"
        return f"{total} {'Frage' if total == 1 else 'Fragen'}: {found}, {self.skipped} übersprungen{done}"


def _check(question: object, line: int, max_chars: int) -> str | BadLine:
    if not isinstance(question, str) or not question.strip():
        return BadLine(line, "the question is missing or empty")
    if len(question) > max_chars:
        return BadLine(line, f"the question has {len(question)} characters, more than the limit of {max_chars}")
    return question.strip()


def read_questions(path: Path, max_chars: int = 2000) -> Iterator[Question | BadLine]:
    """Questions of a ``.jsonl``, ``.txt`` or ``.csv`` file, with bad lines as ``BadLine``."""
    path = Path(path)
    if path.suffix.lower() not in INPUT_SUFFIXES:
        raise RagError(f"{path.name}: question files must be .jsonl, .txt or .csv.")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise RagError(f"The question file {path} does not exist.") from None
    except IsADirectoryError:
        raise RagError(f"{path} is a folder, not a question file.") from None
    except PermissionError:
        raise RagError(f"The question file {path} cannot be read (permission denied).") from None
    except UnicodeDecodeError:
        raise RagError(f"The question file {path} is not UTF-8 text; save it as UTF-8.") from None
    suffix = path.suffix.lower()
    seen: dict[str, int] = {}
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text), dialect=_csv_dialect(text))
        if not reader.fieldnames or "question" not in reader.fieldnames:
            raise RagError(f"The CSV file {path} needs a 'question' column.")
        for number, row in enumerate(reader, start=2):
            checked = _check(row.get("question"), number, max_chars)
            yield checked if isinstance(checked, BadLine) else _unique(seen, str(row.get("id") or f"line-{number}"),
                                                                      checked, number)
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if suffix == ".txt":
            checked = _check(line, number, max_chars)
            yield checked if isinstance(checked, BadLine) else Question(f"line-{number}", checked)
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            yield BadLine(number, f"not valid JSON ({err.msg})")
            continue
        if not isinstance(record, dict):
            yield BadLine(number, "not a JSON object")
            continue
        checked = _check(record.get("question"), number, max_chars)
        yield checked if isinstance(checked, BadLine) else _unique(seen, str(record.get("id") or f"line-{number}"),
                                                                  checked, number)


def _unique(seen: dict[str, int], id: str, question: str, line: int) -> Question | BadLine:
    """A question, or a ``BadLine`` when its id was used before: answers are keyed by id (``--resume``)."""
    if id in seen:
        return BadLine(line, f"the id {id!r} was already used on line {seen[id]}")
    seen[id] = line
    return Question(id, question)


def _csv_dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    """Comma, semicolon (German Excel's default) or tab, as the header line uses."""
    try:
        return csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        return csv.excel


def _sources(answer: Answer) -> str:
    return "\n".join(f"[{c.n}] {c.doc_id} ({c.date or 'ohne Datum'}): {c.quote}" for c in answer.citations)


def format_record(answer: Answer, suffix: str) -> str:
    """One answer in the output format of ``suffix``."""
    if suffix == ".jsonl":
        return json.dumps(answer.to_dict(), ensure_ascii=False) + "\n"
    if suffix == ".csv":
        buffer = io.StringIO()
        csv.DictWriter(buffer, CSV_FIELDS, lineterminator="\n").writerow({
            "id": answer.id, "question": answer.question, "answer": answer.answer or "",
            "abstained": str(answer.abstained).lower(), "sources": _sources(answer),
            "retrieved": " ".join(r.chunk_id for r in answer.retrieved)})
        return buffer.getvalue()
    lines = [f"{_MD_MARKER}{answer.id} -->", f"## {answer.question}", "", answer.answer or "_(nur Retrieval)_", ""]
    lines += [f"{c.n}. **{c.title}** ({c.date or 'ohne Datum'}): „{c.quote}“" for c in answer.citations]
    if not answer.citations and answer.retrieved:
        lines += [f"- `{r.chunk_id}` ({r.score:.3f})" for r in answer.retrieved]
    return "\n".join(lines) + "\n\n"


def finished_ids(path: Path) -> set[str]:
    """Ids already answered in an output file; a torn last record (from a kill) is dropped from the file."""
    if not path.exists():
        return set()
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8", errors="replace")
    if suffix == ".jsonl":
        kept, ids = [], set()
        for line in text.splitlines(keepends=True):
            try:
                ids.add(str(json.loads(line)["id"]))
                kept.append(line if line.endswith("\n") else line + "\n")
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
        path.write_text("".join(kept), encoding="utf-8")
        return ids
    if suffix == ".csv":
        rows = [r for r in csv.DictReader(io.StringIO(text)) if r.get("id") and r.get("retrieved") is not None]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        path.write_text(buffer.getvalue(), encoding="utf-8")
        return {r["id"] for r in rows}
    blocks = text.split(_MD_MARKER)
    complete = [b for b in blocks[1:] if b.endswith("\n\n")]
    path.write_text("".join(_MD_MARKER + b for b in complete), encoding="utf-8")
    return {b.split(" -->", 1)[0] for b in complete}


def _ahead(items: list[Question | BadLine], answer: Callable[[Question], Answer], skip: set[str],
           workers: int) -> Iterator[tuple[Question | BadLine, Future | None]]:
    """Each item in order with the future of its answer (None for a bad line or a skipped id); answers are
    computed by ``workers`` threads, at most ``2 * workers`` questions ahead of the one handed out. Stopping early
    (an error, Ctrl-C) cancels the questions not started."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rag-batch")
    window: deque[tuple[Question | BadLine, Future | None]] = deque()
    try:
        for item in items:
            answerable = isinstance(item, Question) and item.id not in skip
            window.append((item, pool.submit(answer, item) if answerable else None))
            if len(window) > 2 * workers:
                yield window.popleft()
        while window:
            yield window.popleft()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_batch(in_path: Path, out_path: Path, answer: Callable[[Question], Answer], resume: bool = False,
              max_chars: int = 2000, progress: bool = False, warn: Callable[[str], None] = lambda m: None,
              every: float = EVERY_SECONDS, workers: int = 1) -> BatchSummary:
    """Answer every good question of ``in_path`` into ``out_path``, one flushed record at a time in the file's
    order (a bar when ``progress``, else a progress line through ``warn`` every ``every`` seconds); ``workers``
    questions are answered at once (``answer`` must then be safe to call from several threads)."""

    out_path = Path(out_path)
    suffix = out_path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise RagError(f"{out_path.name}: the output must be .jsonl, .csv or .md.")
    items = list(read_questions(Path(in_path), max_chars))
    started = time.perf_counter()
    summary = BatchSummary()
    done = finished_ids(out_path) if resume else set()
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        handle = out_path.open("a" if resume else "w", encoding="utf-8", newline="")
    except OSError as err:
        raise RagError(f"The output file {out_path} cannot be written ({err.strerror}).") from None
    ahead = _ahead(items, answer, done, max(1, workers))
    with closing(ahead), handle, Progress(len(items), "Questions", "question", progress, warn, every=every) as bar:
        if suffix == ".csv" and handle.tell() == 0:
            handle.write(",".join(CSV_FIELDS) + "\n")
        for item, future in bar.each(ahead):
            if isinstance(item, BadLine):
                summary.skipped += 1
                message = f"{Path(in_path).name}, line {item.line} skipped: {item.reason}."
                summary.problems.append(message)
                warn(message)
                continue
            if future is None:
                summary.resumed += 1
                continue
            result = future.result()
            handle.write(format_record(result, suffix))
            handle.flush()
            summary.answered += 1
            summary.abstained += int(result.abstained)
            summary.retrieved_only += int(result.answer is None and not result.abstained)
    summary.seconds = round(time.perf_counter() - started, 2)
    return summary
