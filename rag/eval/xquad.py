"""XQuAD-de as a retrieval benchmark: 240 paragraphs → 240 one-paragraph articles, 1190 questions with gold ids.

XQuAD (Artetxe et al., CC BY-SA 4.0; licence in ``eval/xquad-de/LICENSE.txt``)
is SQuAD v1.1 in German: 48 Wikipedia articles with 5 paragraphs each. Every
paragraph becomes one ``.txt`` file whose name is its article id::

    07_3_Nikola_Tesla.txt   →  article 7 (0-based, file order), paragraph 3, title

so ``parse_doc_id`` maps any retrieved ``doc_id`` back to the paragraph. The
articles are split in file order: the first 24 are the *tuning* half (weights
are chosen there), the last 24 the *held-out* half (numbers are reported
there). No article has paragraphs in both halves.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

from rag.errors import RagError
from rag.settings import project_root

TUNE_ARTICLES = 24
SPLITS = ("tune", "heldout")
_DOC_ID = re.compile(r"\A(\d{2})_(\d+)_([A-Za-z0-9_]*)\Z")


def default_source() -> Path:
    """The copy committed beside its licence, else the shared benchmark folder."""
    local = project_root() / "eval" / "xquad-de" / "xquad.de.json"
    return local if local.exists() else project_root().parent / "shared" / "benchmarks" / "xquad-de" / "xquad.de.json"


def default_workdir() -> Path:
    """Where the generated paragraph folder and question files go (git-ignored: derived data)."""
    return project_root() / "eval" / "xquad_paragraphs"


@dataclass(frozen=True)
class Paragraph:
    doc_id: str
    article: int
    paragraph: int
    title: str
    split: str
    text: str


@dataclass(frozen=True)
class XQuestion:
    id: str
    question: str
    gold_docs: list[str]
    split: str
    article: int
    title: str
    answers: list[str]


@dataclass(frozen=True)
class Prepared:
    """Where ``prepare`` put the benchmark."""

    paragraph_dir: Path
    questions: Path
    paragraphs: int
    question_count: int


def slug(title: str) -> str:
    """ASCII letters, digits and underscores only ("Fresno,_California" → "Fresno_California")."""
    return re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", title)).strip("_")


def doc_id_for(article: int, paragraph: int, title: str) -> str:
    return f"{article:02d}_{paragraph}_{slug(title)}"


def parse_doc_id(doc_id: str) -> tuple[int, int]:
    """``(article index, paragraph index)`` of a paragraph's id."""
    match = _DOC_ID.match(doc_id)
    if not match:
        raise ValueError(f"{doc_id!r} is not an XQuAD paragraph id")
    return int(match.group(1)), int(match.group(2))


def split_of(article: int) -> str:
    return "tune" if article < TUNE_ARTICLES else "heldout"


def read_squad_data(path: Path) -> list:
    """The ``data`` list of a SQuAD-format JSON file (XQuAD, MLQA, a user's own), or one sentence saying why not."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))["data"]
    except FileNotFoundError:
        raise RagError(f"The SQuAD file {path} does not exist.") from None
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        raise RagError(f"{Path(path).name} is not a SQuAD-format JSON file (an object with a 'data' list).") from None
    return data


def load_xquad(source: Path | None = None) -> tuple[list[Paragraph], list[XQuestion]]:
    """Paragraphs and questions of a SQuAD-format file, in file order."""
    source = Path(source or default_source())
    data = read_squad_data(source)
    if len(data) > 99:
        raise RagError(f"{source} has {len(data)} articles; paragraph ids allow at most 99.")
    paragraphs: list[Paragraph] = []
    questions: list[XQuestion] = []
    try:
        for a, article in enumerate(data):
            title = article["title"]
            for p, paragraph in enumerate(article["paragraphs"]):
                doc_id = doc_id_for(a, p, title)
                # six contexts start with a byte-order mark; the corpus loader would drop it anyway
                text = paragraph["context"].lstrip("\ufeff")
                paragraphs.append(Paragraph(doc_id, a, p, title, split_of(a), text))
                for qa in paragraph["qas"]:
                    answers = list(dict.fromkeys(answer["text"] for answer in qa.get("answers", [])))
                    questions.append(XQuestion(str(qa["id"]), qa["question"].strip(), [doc_id], split_of(a), a, title,
                                               answers))
    except (KeyError, TypeError, AttributeError):
        raise RagError(f"{source} is not a SQuAD-format JSON file.") from None
    return paragraphs, questions


def prepare(source: Path | None = None, workdir: Path | None = None) -> Prepared:
    """Write ``<workdir>/paragraphs/*.txt`` and ``<workdir>/questions.jsonl`` (idempotent; stale files removed).

    Files whose content is already right are not rewritten, so an index built
    from the folder stays up to date. Question lines carry ``id``, ``question``
    (what ``rag batch`` reads), ``gold_docs``, ``split``, ``article``, ``title``, ``answers``.
    """
    paragraphs, questions = load_xquad(source)
    workdir = Path(workdir or default_workdir())
    folder = write_articles(workdir / "paragraphs", {p.doc_id: p.text for p in paragraphs})
    lines = "".join(json.dumps(asdict(q), ensure_ascii=False) + "\n" for q in questions)
    target = workdir / "questions.jsonl"
    if not target.exists() or target.read_text(encoding="utf-8") != lines:
        target.write_text(lines, encoding="utf-8")
    return Prepared(folder, target, len(paragraphs), len(questions))


def write_articles(folder: Path, articles: Mapping[str, str]) -> Path:
    """``<folder>/<doc id>.txt`` for every article; other files removed; unchanged files are not rewritten
    (so an index built from the folder stays up to date)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {f"{doc_id}.txt": text + "\n" for doc_id, text in articles.items()}
    for stale in folder.iterdir():
        if stale.name not in wanted:
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    for name, text in wanted.items():
        target = folder / name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
    return folder


def read_questions(path: Path) -> list[XQuestion]:
    """The question file ``prepare`` wrote."""
    with Path(path).open(encoding="utf-8") as handle:
        return [XQuestion(**json.loads(line)) for line in handle if line.strip()]


if __name__ == "__main__":  # python -m rag.eval.xquad: write the paragraph folder and the question file
    print(prepare())
