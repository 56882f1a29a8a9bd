"""Articles added from the chat: validated, saved beside the index, indexed incrementally.

Uploaded files live in ``<index parent>/<index name>-uploads/`` (for the
default index: ``index/default-uploads/``), so the index can always be rebuilt
from its source folders plus that folder with ``build_index`` — which embeds
only passages whose text is new. A file is accepted when it is a ``.txt`` or
``.md`` file of at most ``max_bytes``, UTF-8 (or UTF-16 with a byte order
mark), and has text left after boilerplate removal; otherwise it is rejected
with one German sentence saying why. An upload never replaces another article:
a file whose id (its cleaned name) is taken by an article with different text,
loaded or waiting in the uploads folder, gets a new id (``<name>-2``, …) and
the result says so; a text that is loaded already is left as it is.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from rag.ingest.corpus import ARTICLE_SUFFIXES, clean_text
from rag.errors import RagError
from rag.progress import build_percent

MAX_UPLOAD_BYTES = 1_000_000
MAX_FILES = 20


class UploadRejected(ValueError):
    """A file that cannot be added; the message is one German sentence for the user."""


@dataclass
class SavedFile:
    name: str
    doc_id: str
    path: Path
    taken: str | None = None  # the id the name asked for, held by another article


@dataclass
class UploadResult:
    """What happened to each file of one upload."""

    saved: list[SavedFile] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    unchanged: list[tuple[str, str]] = field(default_factory=list)  # (name, id): this text is loaded already
    report: object | None = None

    def messages(self) -> list[str]:
        lines = []
        for s in self.saved:
            if s.taken:
                lines.append(f"✓ {s.name} hinzugefügt als {s.doc_id} ({s.taken} ist schon ein anderer Artikel)")
            else:
                lines.append(f"✓ {s.name} hinzugefügt" + (f" (als {s.doc_id})" if Path(s.name).stem != s.doc_id else ""))
        lines += [f"= {name}: derselbe Text ist schon geladen (als {doc_id}); nichts geändert" for name, doc_id in self.unchanged]
        lines += [f"✗ {reason}" for _, reason in self.rejected]
        report = self.report
        if report is not None and not getattr(report, "up_to_date", True):
            lines.append(f"Index aktualisiert: {report.articles} Artikel, {report.chunks} Passagen "
                         f"({report.embedded} neu eingebettet, {report.reused} wiederverwendet).")
        return lines


def uploads_dir(index_dir: Path) -> Path:
    """The folder the chat saves uploads to, beside the index it belongs to."""
    index_dir = Path(index_dir)
    return index_dir.parent / f"{index_dir.name}-uploads"


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f}".replace(".", ",") + " MB"


def _sizes(n: int, limit: int) -> tuple[str, str]:
    """Both sizes in MB, or in bytes when they would read the same ("1,0 MB groß; höchstens 1,0 MB")."""
    if _megabytes(n) != _megabytes(limit):
        return _megabytes(n), _megabytes(limit)
    return tuple(f"{v:,}".replace(",", ".") + " Bytes" for v in (n, limit))


def validate(name: str, data: bytes, max_bytes: int = MAX_UPLOAD_BYTES) -> str:
    """The file's text if it can be added; otherwise ``UploadRejected`` with the reason."""
    label = Path(name).name or "Die Datei"
    if Path(label).suffix.lower() not in ARTICLE_SUFFIXES:
        raise UploadRejected(f"{label}: nur .txt- und .md-Dateien können hinzugefügt werden.")
    if len(data) == 0:
        raise UploadRejected(f"{label} ist leer.")
    if len(data) > max_bytes:
        size, limit = _sizes(len(data), max_bytes)
        raise UploadRejected(f"{label} ist {size} groß; erlaubt sind höchstens {limit}.")
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a byte order mark, as the corpus reads it
            text = data.decode("utf-16")
        elif b"\x00" in data:
            raise UploadRejected(f"{label} ist keine Textdatei (sie enthält Binärdaten).")
        else:
            text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UploadRejected(f"{label} ist nicht UTF-8-kodiert (ungültiges Byte an Position {err.start}); "
                             f"bitte als UTF-8 speichern.") from None
    if not clean_text(text).strip():
        raise UploadRejected(f"{label} enthält keinen Text.")
    return text


def safe_id(name: str) -> str:
    """A file name's stem reduced to letters, digits, ``-``, ``_`` and ``.``: no paths, no hidden files."""
    stem = Path(Path(name).name).stem
    stem = re.sub(r"[^\w.-]+", "_", stem, flags=re.UNICODE).strip("._-")
    return stem[:80] or "artikel"


def text_digest(text: str) -> str:
    """The hash an article of this text gets (``Article.sha256``): what tells "same text" apart from "same name"."""
    return hashlib.sha256(clean_text(text).encode("utf-8")).hexdigest()


def save_uploads(files: Sequence[tuple[str, bytes]], folder: Path, indexed: Mapping[str, tuple[str, str]],
                 max_bytes: int = MAX_UPLOAD_BYTES, max_files: int = MAX_FILES) -> UploadResult:
    """Validate and write files into ``folder``. ``indexed`` maps each loaded article id to (sha256 of its stored
    text, the folder it came from). A text that is loaded already is left alone (``unchanged``); an id that is
    taken by a different text (loaded, or a file waiting in ``folder``) is replaced by the first free
    ``<id>-2``, ``<id>-3``, …; nothing is ever overwritten."""
    folder = Path(folder)
    result = UploadResult()
    if len(files) > max_files:
        result.rejected += [(name, f"{Path(name).name}: höchstens {max_files} Dateien auf einmal.") for name, _ in files[max_files:]]
        files = files[:max_files]
    known_texts = {sha: doc_id for doc_id, (sha, _) in indexed.items()}
    waiting = _waiting_texts(folder, set(indexed))
    known_texts.update({sha: doc_id for doc_id, sha in waiting.items()})
    taken = set(indexed) | set(waiting)
    for name, data in files:
        label = Path(name).name
        try:
            text = validate(name, data, max_bytes)
        except UploadRejected as err:
            result.rejected.append((name, str(err)))
            continue
        digest = text_digest(text)
        if digest in known_texts:
            result.unchanged.append((label, known_texts[digest]))
            continue
        wanted = safe_id(name)
        doc_id, k = wanted, 2
        while doc_id in taken:
            doc_id = f"{wanted}-{k}"
            k += 1
        taken.add(doc_id)
        known_texts[digest] = doc_id
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{doc_id}{Path(label).suffix.lower()}"
        tmp = folder / f".{path.name}.tmp-{os.getpid()}"
        tmp.write_bytes(data)
        os.replace(tmp, path)
        result.saved.append(SavedFile(label, doc_id, path, wanted if doc_id != wanted else None))
    return result


def _waiting_texts(folder: Path, indexed: set[str]) -> dict[str, str]:
    """``id → text hash`` of the files in the uploads folder that are not indexed yet (saved, then interrupted)."""
    waiting: dict[str, str] = {}
    if not folder.is_dir():
        return waiting
    for path in folder.iterdir():
        if path.suffix.lower() in ARTICLE_SUFFIXES and path.is_file() and path.stem not in indexed:
            try:
                waiting[path.stem] = text_digest(validate(path.name, path.read_bytes(), max_bytes=1 << 62))
            except (OSError, UploadRejected):
                waiting[path.stem] = ""
    return waiting


def undo(result: UploadResult) -> None:
    """Remove the files ``save_uploads`` wrote (after a failed indexing): the uploads folder is as it was."""
    for saved in result.saved:
        saved.path.unlink(missing_ok=True)


def source_folders(sources: Iterable[str], uploads: Path, fallback: Path | None = None) -> list[Path]:
    """The folders an index was built from (from its articles' ``source`` paths), then the uploads folder.

    Re-indexing with exactly these folders keeps every article that is there now and adds the uploads."""
    uploads = Path(uploads).resolve()
    folders: list[Path] = []
    for source in sources:
        parent = Path(source).parent
        if not parent.is_absolute() and fallback is not None and not parent.exists():
            parent = Path(fallback)
        parent = parent.resolve()
        if parent != uploads and parent not in folders:
            folders.append(parent)
    if not folders and fallback is not None:
        folders.append(Path(fallback).resolve())
    for folder in folders:
        if not folder.is_dir():
            raise RagError(f"Der Ordner {folder}, aus dem der Index gebaut wurde, fehlt; neue Artikel können erst "
                           f"nach einem neuen `rag index` hinzugefügt werden.")
    return folders + [uploads]


# ---------------------------------------------------------------------------------------------- the queue

QUEUE_FOLDER = ".queue"
BATCH_BYTES = 20_000  # small files waiting together are indexed in one build
PREEMPT_RATIO = 4  # a waiting file this many times smaller than the running build interrupts it
STEPS = {"article": "liest Artikel", "passage": "bettet Passagen ein", "sentence": "bettet Sätze ein"}


@dataclass
class UploadJob:
    """One file on its way into the index: waiting, being indexed, then done with its result lines."""

    name: str
    size: int
    spool: Path | None  # the file's bytes, kept in the queue folder until it is indexed (survives a kill)
    state: str = "wartet"
    percent: int | None = None  # how far its build is, while it is indexed
    lines: list[str] = field(default_factory=list)
    result: UploadResult | None = None
    done: threading.Event = field(default_factory=threading.Event)


class _Interrupted(Exception):
    """A smaller file is waiting: the running build gives way (raised from the build's progress listener)."""


class UploadQueue:
    """Uploads indexed one build at a time in a background thread, smallest files first.

    Why: indexing a large upload (hundreds of sentences to embed) takes minutes on two cores; a small file sent
    with it must not wait that long, and the chat must keep answering meanwhile. Each file is first written to
    ``<uploads>/.queue/`` (so a killed app indexes it at the next start: ``resume``), then the worker takes the
    smallest waiting file, plus further small ones up to ``BATCH_BYTES``, and calls ``index(files, listener)``, which
    saves them into the uploads folder and re-indexes (``rag.pipeline.add_files``), reporting the build's steps
    to the listener it is given (the job's state then says e.g. "bettet Sätze ein: 120/812"). A file sent while a
    build at least ``PREEMPT_RATIO`` times its size runs interrupts that build at its next step (nothing of it
    reaches the index; its files wait again) and goes first; the interrupted files are indexed right after,
    re-embedding what they had done.
    """

    def __init__(self, folder: Path, index: Callable[[list[tuple[str, bytes]], Callable[[str, int, int], None]], UploadResult],
                 failed: Callable[[BaseException], str], max_bytes: int = MAX_UPLOAD_BYTES) -> None:
        self.spool = Path(folder) / QUEUE_FOLDER
        self._index = index
        self._failed = failed
        self._max_bytes = max_bytes
        self._jobs: list[UploadJob] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, files: Sequence[tuple[str, bytes]]) -> list[UploadJob]:
        """Queue files (invalid ones are answered at once); returns one job per file."""
        jobs = []
        for name, data in files:
            label = Path(name).name
            try:
                validate(name, data, self._max_bytes)
            except UploadRejected as err:
                job = UploadJob(label, len(data), None, state="abgelehnt", lines=[f"✗ {err}"])
                job.done.set()
                jobs.append(job)
                continue
            self.spool.mkdir(parents=True, exist_ok=True)
            spool = self.spool / f"{time.time_ns()}-{label}"
            spool.write_bytes(data)
            jobs.append(UploadJob(label, len(data), spool))
        self._enqueue([j for j in jobs if not j.done.is_set()])
        return jobs

    def resume(self) -> list[UploadJob]:
        """Queue the files a killed app had accepted but not indexed."""
        if not self.spool.is_dir():
            return []
        jobs = [UploadJob(p.name.split("-", 1)[1], p.stat().st_size, p) for p in sorted(self.spool.iterdir())
                if p.is_file() and "-" in p.name]
        self._enqueue(jobs)
        return jobs

    def _enqueue(self, jobs: list[UploadJob]) -> None:
        if not jobs:
            return
        with self._wake:
            self._jobs += jobs
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="rag-uploads", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _next(self) -> list[UploadJob]:
        with self._wake:
            while not self._jobs:
                self._wake.wait()
            self._jobs.sort(key=lambda j: j.size)
            batch, total = [], 0
            for job in list(self._jobs):
                if batch and total + job.size > max(BATCH_BYTES, batch[0].size):
                    break
                batch.append(job)
                total += job.size
                self._jobs.remove(job)
            for job in batch:
                job.state = "wird indexiert"
            return batch

    def _work(self) -> None:
        while True:
            batch = self._next()
            size = sum(job.size for job in batch)

            def hear(stage: str, done: int, total: int) -> None:
                with self._wake:
                    if any(job.size * PREEMPT_RATIO <= size for job in self._jobs):
                        raise _Interrupted
                for job in batch:
                    job.state = f"wird indexiert ({STEPS.get(stage, stage)}: {done}/{total})"
                    job.percent = build_percent(stage, done, total)

            try:
                result = self._index([(job.name, job.spool.read_bytes()) for job in batch], hear)
                lines, state = result.messages(), "fertig"
            except _Interrupted:
                for job in batch:
                    job.state, job.percent = "wartet (eine kleinere Datei geht vor)", None
                self._enqueue(batch)
                continue
            except BaseException as err:  # the message is the caller's; the files stay queued for the next start
                lines, state, result = [f"✗ {self._failed(err)}"], "fehlgeschlagen", None
            for job in batch:
                if state == "fertig":
                    job.spool.unlink(missing_ok=True)
                job.state, job.percent, job.lines, job.result = state, None, lines, result
                job.done.set()



@dataclass
class Uploads:
    """The jobs of one upload request, shown together."""

    jobs: list[UploadJob]

    def finished(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (None: until all are done); whether all are done."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for job in self.jobs:
            if not job.done.wait(None if deadline is None else max(0.0, deadline - time.monotonic())):
                return False
        return True

    def messages(self) -> list[str]:
        """Each finished file's result lines, else its state; a line shared by files indexed in one build (the
        index summary) once."""
        lines: list[str] = []
        for job in self.jobs:
            for line in job.lines if job.done.is_set() else [f"… {job.name}: {job.state}"]:
                if line not in lines:
                    lines.append(line)
        return lines

    def percent(self) -> int | None:
        """How far the files being indexed now are (the slowest of them), or None when none is: for a bar."""
        running = [job.percent for job in self.jobs if job.percent is not None]  # None again once done
        return min(running) if running else None
