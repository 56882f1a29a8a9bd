"""Load a folder of articles into typed records with title, date and the exact text we index.

The stored ``text`` is the article after boilerplate removal (date markers,
"Lesezeit"/"Geprüft" lines, "(Lesen Sie auch: …)" teasers). Every character
offset elsewhere in the project points into this text, so it is kept verbatim
in the index.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from rag.errors import RagError
from rag.lang.de import DAY_DATE, MONTH_NUMBERS
from rag.schema import Article

ARTICLE_SUFFIXES = (".txt", ".md")
METADATA_FILE = "metadata.json"

_DATE_MARKER = re.compile(r"\A\s*date (\d{4}-\d{2}(?:-\d{2})?)\s*")
_ISO_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_NUMERIC_DATE = re.compile(r"\b(\d{1,2})\.(\d{1,2})\.(\d{4})\b")
_WORD_DATE = re.compile(r"\b(\d{1,2})\.\s*(" + "|".join(MONTH_NUMBERS) + r")\s+(\d{4})\b", re.IGNORECASE)
# Where a publication date stands in a header (../shared/seeds/README.md): after a label ("Aktualisiert: 1. Februar
# 2026"), as a timestamp ("28.01.2026, 22:17 Uhr"), or as a dateline opening a line ("Berlin, 28.01.2026 – …",
# "1. Februar 2026 – …", a line holding only the date). A date inside a sentence ("Am 18. September 1947 wurde …")
# is what the article reports, not when it appeared, even in the first lines of a short text.
# (also ISO, "2026-01-20", as exports and scrapers write it: a header line "date 2026-01-20" or "Datum: 2026-01-20")
_DATE = r"(" + DAY_DATE + r"|\d{4}-\d{2}-\d{2}\b)"
_DATE_LABEL = (r"(?:Aktualisiert|Veröffentlicht|Erschienen|Publiziert|Stand|Datum|Updated|Published|Date)"
               r"(?:[ \t]+am)?:?")
_HEADER_DATES = (
    re.compile(r"^[ \t]*" + _DATE_LABEL + r"[ \t]*" + _DATE, re.IGNORECASE | re.MULTILINE),
    re.compile(_DATE + r",?[ \t]+\d{1,2}[:.]\d{2}[ \t]*Uhr"),
    re.compile(r"^[ \t]*(?:[A-ZÄÖÜ][\w./-]*(?:[ \t][A-ZÄÖÜ][\w./-]*){0,3},[ \t]*)?" + _DATE + r"[ \t]*(?:[–—|-]|$)",
               re.MULTILINE),
)
_BOILERPLATE = [
    # a Markdown heading's marker ("# Heidelberg"): markup, not text, or quotes begin "# Mannheim Mannheim ist …"
    re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(?=\S)", re.MULTILINE),
    re.compile(r"^[ \t]*(?:Lesezeit: *\d+ *Min\.?|Aktualisiert: [^\n]*|Geprüft)[ \t]*\n", re.MULTILINE),
    re.compile(r"[ \t]*\d{1,2}\.\d{1,2}\.\d{4}, \d{1,2}:\d{2} Uhr(?: von [^\n]*?)?(?: Jetzt kommentieren: \d+)?[ \t]*$", re.MULTILINE),
    re.compile(r"[ \t]*\(Lesen Sie auch:[^)\n]*\)"),
]
HEADER_CHARS = 400
# A header line that only dates the article ("Veröffentlicht am 2. Februar 2024", "30.10.2025"): metadata, not text.
_DATELINE = re.compile(r"[ \t]*(?:" + _DATE_LABEL + r"[ \t]*)?" + _DATE + r"[ \t]*", re.IGNORECASE)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed, with the reason in one sentence."""

    path: str
    reason: str


def decode_article(raw: bytes) -> str:
    """UTF-8 (with or without BOM) or UTF-16 with BOM; anything else is refused with a reason."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    if b"\x00" in raw:
        raise ValueError("it looks like a binary file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"it is not UTF-8 text (invalid byte at position {err.start}); save it as UTF-8") from None


def is_date(value: str) -> bool:
    """An ISO ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` of a real calendar day (a metadata file may hold anything)."""
    match = _ISO_DATE.fullmatch(value)
    if not match:
        return False
    try:
        datetime.date(int(match.group(1)), int(match.group(2) or 1), int(match.group(3) or 1))
    except ValueError:
        return False
    return True


def find_date(raw_text: str) -> str | None:
    """The publication date stated in the article's header (``_HEADER_DATES`` in its first ``HEADER_CHARS``
    characters), as ISO ``YYYY-MM[-DD]``; None when the header states none."""
    marker = _DATE_MARKER.match(raw_text)
    if marker and is_date(marker.group(1)):
        return marker.group(1)
    header = raw_text[:HEADER_CHARS]
    candidates = []
    for pattern in _HEADER_DATES:
        for match in pattern.finditer(header):
            value = _iso_date(match.group(1))
            if value:
                candidates.append((match.start(1), value))
    return min(candidates)[1] if candidates else None


def _iso_date(text: str) -> str | None:
    """``28.01.2026``, ``1. Februar 2026`` or ``2026-01-28`` → ``2026-01-28``/``2026-02-01``; None for no calendar
    day."""
    if text.count("-") == 2:
        return text if is_date(text) else None
    numeric, words = _NUMERIC_DATE.fullmatch(text), _WORD_DATE.fullmatch(text)
    if numeric:
        day, month, year = (int(g) for g in numeric.groups())
    else:
        day, month, year = int(words.group(1)), MONTH_NUMBERS[words.group(2).lower()], int(words.group(3))
    value = f"{year:04d}-{month:02d}-{day:02d}"
    return value if is_date(value) else None


def clean_text(raw_text: str) -> str:
    """The article without markers, teasers and header lines that only date it, none of which is part of it.

    Why the dating lines go: the date is read into the article's metadata (``find_date``); left in the text, the
    line "Veröffentlicht am 2. Februar 2024" was a sentence that speaks about 2024, so it was quoted beside a
    heading as the answer to "Wie viel neue Schulden macht der Bund 2024?", with "2" for its short answer."""
    text = raw_text.replace("\r\n", "\n").replace("\r", "\n")
    text = _DATE_MARKER.sub("", text, count=1)
    for pattern in _BOILERPLATE:
        text = pattern.sub("", text)
    lines, kept, offset = text.split("\n"), [], 0
    for line in lines:
        if not (offset < HEADER_CHARS and _DATELINE.fullmatch(line)):
            kept.append(line)
        offset += len(line) + 1
    return "\n".join(kept).strip()


def guess_title(text: str, max_chars: int = 120) -> str:
    """A heading-like first line (without a Markdown ``#`` mark), else the first sentence, shortened to ``max_chars``."""
    first_line = re.sub(r"^#{1,6}\s+", "", text.split("\n", 1)[0].strip())
    if first_line and len(first_line) <= max_chars and not first_line.endswith((".", "!", "?")):
        return first_line
    sentence = re.split(r"(?<=[.!?])\s", first_line, maxsplit=1)[0]
    return sentence if len(sentence) <= max_chars else sentence[: max_chars - 1].rsplit(" ", 1)[0] + "…"


def read_metadata(folder: Path) -> dict[str, dict]:
    """The optional ``metadata.json`` beside the articles: ``{doc_id: {title, date, date_inferred}}``."""
    path = folder / METADATA_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RagError(f"The metadata file {path} cannot be read ({err}); fix or remove it.") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise RagError(f"The metadata file {path} must map article ids to objects with title/date.")
    return data


def article_from_text(doc_id: str, raw_text: str, source: str, meta: dict | None = None) -> Article:
    """Build one record; dates in the text win over the metadata file, whose dates may be marked inferred."""
    meta = meta or {}
    text = clean_text(raw_text)
    date = find_date(raw_text)
    inferred = False
    if date is None and meta.get("date"):
        if is_date(str(meta["date"])):
            date, inferred = str(meta["date"]), bool(meta.get("date_inferred", False))
        else:
            log.warning("%s: the metadata date %r is not a date (YYYY, YYYY-MM or YYYY-MM-DD); the date is treated "
                        "as unknown.", source, str(meta["date"])[:40])
    title = str(meta.get("title") or guess_title(text) or doc_id)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Article(doc_id=doc_id, title=title, date=date, date_inferred=inferred, text=text, source=source, sha256=digest)


def load_article_file(path: Path, meta: dict | None = None, max_bytes: int = 5_000_000) -> Article:
    """One file as an article; ``ValueError`` says in one sentence why it cannot be used."""
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(f"it is {size / 1e6:.1f} MB, above the {max_bytes / 1e6:.1f} MB limit for one article")
    raw_text = decode_article(path.read_bytes())
    article = article_from_text(path.stem, raw_text, str(path), meta)
    if not article.text.strip():
        raise ValueError("it contains no text")
    return article


def load_folder(folder: Path, max_bytes: int = 5_000_000) -> tuple[list[Article], list[Skipped]]:
    """All ``.txt``/``.md`` articles of a folder, sorted by id, and the files skipped with reasons."""
    folder = Path(folder)
    if not folder.exists():
        raise RagError(f"The folder {folder} does not exist.")
    if not folder.is_dir():
        raise RagError(f"{folder} is not a folder of articles.")
    metadata = read_metadata(folder)
    articles: list[Article] = []
    skipped: list[Skipped] = []
    try:
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in ARTICLE_SUFFIXES and p.is_file())
    except OSError as err:
        raise RagError(f"The folder {folder} cannot be read ({err.strerror}).") from None
    for path in paths:
        try:
            articles.append(load_article_file(path, metadata.get(path.stem), max_bytes))
        except ValueError as err:
            skipped.append(Skipped(str(path), f"{path.name} skipped: {err}."))
        except OSError as err:
            skipped.append(Skipped(str(path), f"{path.name} skipped: it cannot be read ({err.strerror})."))
    if not articles:
        raise RagError(f"The folder {folder} contains no readable .txt or .md articles.")
    return articles, skipped
