"""Near-miss unanswerable questions: an answerable question with one specific term swapped for one its gold article
does not hold, asked against the full index (the eval's "near-miss declined").

Why: a question whose article is missing from the index is easy to decline, because nothing in the index is close.
The questions users ask that the articles cannot answer are mostly near misses: the right topic, another company,
person or year ("Wie viel investiert Apple 2025?" over articles about Meta). The removed-article measure does not
see them. Swapping one specific term is the standard way to make such questions (as for SQuAD 2.0's adversarial
negatives) and needs no hand-written question: a year moves by a few years the gold article never mentions;
otherwise the question's rarest capitalised word that its gold article holds is replaced by a rare capitalised word
of another article's paragraph that the gold article does not hold. A few variants stay answerable (a word swapped
in a list the article still answers in part), so the measure is a floor of what is right to decline.

Tried as training data too (the answerability classifier, and a second classifier for near misses only): on
XQuAD-de's held-out half it declined 0.32–0.35 of them against 0.31 without, at the same false abstention, and
declined fewer removed-article questions, so the committed model is trained without them.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Mapping, Sequence

from rag.answer.features import YEAR
from rag.lang.de import stopwords

# A capitalised word of at least four letters: a name or a German noun.
WORD = re.compile(r"\b[A-ZÄÖÜ][\wäöüß-]{3,}\b")


def document_frequencies(texts: Sequence[str]) -> Counter:
    """In how many of ``texts`` each capitalised word occurs."""
    return Counter(w for text in texts for w in {m.group(0) for m in WORD.finditer(text)})


def replacement_words(texts: Mapping[str, str], df: Mapping[str, int], most: int = 3) -> dict[str, list[str]]:
    """Per document, its rare capitalised words (in at most ``most`` documents) that are not sentence-initial."""
    words = {}
    for doc, text in texts.items():
        found = {m.group(0) for m in WORD.finditer(text) if m.start() > 1 and text[m.start() - 2] not in ".!?"}
        words[doc] = sorted(w for w in found if df[w] <= most and w.lower() not in stopwords())
    return words


def near_miss(question: str, gold_text: str, others: Sequence[str], df: Mapping[str, int],
              rng: random.Random) -> str | None:
    """``question`` with one specific term swapped so that ``gold_text`` no longer answers it, or None.

    ``others``: candidate words from other articles; ``df``: document frequencies, to swap the rarest word."""
    m = YEAR.search(question)
    if m:
        shifts = [d for d in (1, -1, 2, -2, 3, -3, 5, -5) if str(int(m.group(0)) + d) not in gold_text]
        if not shifts:
            return None
        return question[:m.start()] + str(int(m.group(0)) + rng.choice(shifts[:4])) + question[m.end():]
    held = [m for m in WORD.finditer(question)
            if m.start() > 0 and m.group(0) in gold_text and m.group(0).lower() not in stopwords()]
    choices = [w for w in others if w not in gold_text and w not in question]
    if not held or not choices:
        return None
    m = min(held, key=lambda m: (df.get(m.group(0), 0), m.start()))
    return question[:m.start()] + rng.choice(choices) + question[m.end():]


def near_miss_questions(paragraphs: Sequence, questions: Sequence, seed: int = 0) -> dict[str, str]:
    """Question id → its near-miss variant, for every question of ``questions`` (``rag.eval.xquad.XQuestion``-like:
    ``id``, ``question``, ``gold_docs``, ``article``) that has one; ``paragraphs`` are the corpus's
    (``doc_id``, ``article``, ``text``). The swapped-in word comes from a paragraph of another article."""
    texts = {p.doc_id: p.text for p in paragraphs}
    df = document_frequencies(list(texts.values()))
    words = replacement_words(texts, df)
    with_words = [p for p in paragraphs if words[p.doc_id]]
    others = {a: [p.doc_id for p in with_words if p.article != a] for a in {q.article for q in questions}}
    rng = random.Random(seed)
    variants = {}
    for q in questions:
        if not others[q.article]:
            continue
        variant = near_miss(q.question, " ".join(texts[d] for d in q.gold_docs if d in texts),
                            words[rng.choice(others[q.article])], df, rng)
        if variant:
            variants[q.id] = variant
    return variants
