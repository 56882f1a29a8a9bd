"""Articles added from the chat: validated, saved beside the index, indexed incrementally.

Uploaded files live in ``<index parent>/<index name>-uploads/`` (for the
default index: ``index/default-uploads/``), so the index can always be rebuilt
from its source folders plus that folder with ``build_index`` — which embeds
only passages whose text is new. A file is accepted when it is a ``.txt`` or
``.md`` file of at most ``max_bytes``, valid UTF-8, and has text left after
boilerplate removal; otherwise it is rejected with one German sentence saying
why. A file whose name clashes with an article from another folder gets a new
id (``<name>-upload``), so an upload never silently replaces a seed article;
uploading a file of the same name again replaces the earlier upload.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from rag.ingest.corpus import ARTICLE_SUFFIXES, clean_text
from rag.errors import RagError

MAX_UPLOAD_BYTES = 1_000_000
MAX_FILES = 20


class UploadRejected(ValueError):
    """A file that cannot be added; the message is one German sentence for the user."""


@dataclass
class SavedFile:
    name: str
    doc_id: str
    path: Path
    previous: bytes | None = None  # what the file held before, to restore when indexing fails


@dataclass
class UploadResult:
    """What happened to each file of one upload."""

    saved: list[SavedFile] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    report: object | None = None

    def messages(self) -> list[str]:
        lines = [f"✓ {s.name} hinzugefügt" + (f" (als {s.doc_id})" if Path(s.name).stem != s.doc_id else "")
                 for s in self.saved]
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


def validate(name: str, data: bytes, max_bytes: int = MAX_UPLOAD_BYTES) -> str:
    """The file's text if it can be added; otherwise ``UploadRejected`` with the reason."""
    label = Path(name).name or "Die Datei"
    if Path(label).suffix.lower() not in ARTICLE_SUFFIXES:
        raise UploadRejected(f"{label}: nur .txt- und .md-Dateien können hinzugefügt werden.")
    if len(data) == 0:
        raise UploadRejected(f"{label} ist leer.")
    if len(data) > max_bytes:
        raise UploadRejected(f"{label} ist {_megabytes(len(data))} groß; erlaubt sind höchstens {_megabytes(max_bytes)}.")
    if b"\x00" in data:
        raise UploadRejected(f"{label} ist keine Textdatei (sie enthält Binärdaten).")
    try:
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


def _digest(text: str) -> str:
    return hashlib.sha256(clean_text(text).encode("utf-8")).hexdigest()


def save_uploads(files: Sequence[tuple[str, bytes]], folder: Path, indexed: Mapping[str, tuple[str, str]],
                 max_bytes: int = MAX_UPLOAD_BYTES, max_files: int = MAX_FILES) -> UploadResult:
    """Validate and write files into ``folder``. ``indexed`` maps each loaded article id to (sha256 of its stored
    text, the folder it came from); a file whose text is already loaded is rejected as a duplicate."""
    folder = Path(folder)
    result = UploadResult()
    if len(files) > max_files:
        result.rejected += [(name, f"{Path(name).name}: höchstens {max_files} Dateien auf einmal.") for name, _ in files[max_files:]]
        files = files[:max_files]
    known_texts = {sha: doc_id for doc_id, (sha, _) in indexed.items()}
    taken: set[str] = set()
    for name, data in files:
        label = Path(name).name
        try:
            text = validate(name, data, max_bytes)
        except UploadRejected as err:
            result.rejected.append((name, str(err)))
            continue
        digest = _digest(text)
        doc_id = safe_id(name)
        same = known_texts.get(digest)
        if same is not None and not (same == doc_id and Path(indexed[same][1]).resolve() == folder.resolve()):
            result.rejected.append((name, f"{label} ist bereits geladen (gleicher Text wie {same})."))
            continue
        base, k = doc_id, 1
        while doc_id in taken or (doc_id in indexed and Path(indexed[doc_id][1]).resolve() != folder.resolve()):
            doc_id = f"{base}-upload" + (f"-{k}" if k > 1 else "")
            k += 1
        taken.add(doc_id)
        known_texts[digest] = doc_id
        suffix = Path(label).suffix.lower()
        folder.mkdir(parents=True, exist_ok=True)
        for other in ARTICLE_SUFFIXES:  # one file per id: a re-upload as .md replaces the earlier .txt
            stale = folder / f"{doc_id}{other}"
            if other != suffix and stale.exists():
                stale.unlink()
        path = folder / f"{doc_id}{suffix}"
        previous = path.read_bytes() if path.exists() else None
        tmp = folder / f".{doc_id}{suffix}.tmp-{os.getpid()}"
        tmp.write_bytes(data)
        os.replace(tmp, path)
        result.saved.append(SavedFile(label, doc_id, path, previous))
    return result


def undo(result: UploadResult) -> None:
    """Put the uploads folder back as it was before ``save_uploads`` (after a failed indexing)."""
    for saved in result.saved:
        if saved.previous is None:
            saved.path.unlink(missing_ok=True)
        else:
            saved.path.write_bytes(saved.previous)


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
