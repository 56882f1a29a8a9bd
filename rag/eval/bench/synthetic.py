"""The corpora ``rag bench`` makes for its larger sizes.

Synthetic corpora (made here, never downloaded):

* **Texts**: XQuAD-de paragraphs (240, CC BY-SA 4.0) recombined: each article is a dated, titled run of
  3–5 paragraphs (a few sentences dropped at random), so passages are real German news-like prose with
  real vocabulary for BM25.
* **Vectors**: embedding 100k passages would take hours on 2 cores, so synthetic sizes use *synthetic*
  vectors built from *real* ones: the real embedder embeds the 240 XQuAD paragraphs (once, cached), and a passage's
  vector is the sentence-count-weighted mean of the vectors of the paragraphs its sentences come from,
  plus Gaussian noise (norm ``NOISE``), re-normalised. Neighbourhoods are therefore as clustered as real
  topics, not uniformly random (which would be unrealistically hard for approximate search). Queries are
  real: questions are embedded by the real embedder at query time, exactly as in production.
* **Paths**: up to ``FOLDER_MAX`` passages the corpus is written as ``.txt`` files and indexed by the real
  ``build_index`` (reading, chunking, tokenising, index writing; only the embedder is synthetic, with an
  e5 token count estimated from characters; the files are dated a day back, like an archive's). Above,
  articles and chunks are generated in memory and written with ``write_index`` (tokenising, BM25, dense
  index, writing; no file reading or chunking).
* **Approximate index choice**: at the 100k size, IVF-Flat and HNSW-Flat are both built on the same vectors
  (each tuned to the same recall target) and compared on the same questions.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from rag.settings import Settings

NOISE = 0.35
FOLDER_MAX = 150_000



@dataclass
class Material:
    """XQuAD-de as raw material: paragraphs cut into sentences, questions, and real e5 vectors."""

    titles: list[str]
    paragraph_title: list[int]
    paragraph_sentences: list[list[str]]
    questions: list[str]
    question_paragraph: np.ndarray
    paragraph_vectors: np.ndarray
    question_vectors: np.ndarray
    chars_per_token: float
    sentence_paragraph: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for p, sentences in enumerate(self.paragraph_sentences):
            for sentence in sentences:
                self.sentence_paragraph.setdefault(sentence, p)


def xquad_path() -> Path:
    from rag.errors import RagError
    from rag.eval.xquad import default_source

    path = default_source()
    if not path.exists():
        raise RagError(f"The benchmark needs XQuAD-de ({path}); it is not there.")
    return path


def load_material(embedder, cache_dir: Path, log: Callable[[str], None], paragraphs: int | None = None) -> Material:
    """XQuAD-de cut into sentences; paragraph and question vectors from ``embedder`` (cached by model and file).

    ``paragraphs`` keeps only the first paragraphs (and their questions), for quick runs.
    """
    from rag.ingest.sentences import sentence_spans

    path = xquad_path()
    raw = path.read_bytes()
    data = json.loads(raw)["data"]
    titles, paragraph_title, paragraph_sentences, questions, question_paragraph, contexts = [], [], [], [], [], []
    for a, article in enumerate(data):
        titles.append(article["title"])
        for paragraph in article["paragraphs"]:
            if paragraphs is not None and len(contexts) >= paragraphs:
                break
            text = paragraph["context"]
            contexts.append(text)
            paragraph_title.append(a)
            paragraph_sentences.append([text[s:e].strip() for s, e in sentence_spans(text) if text[s:e].strip()])
            for qa in paragraph["qas"]:
                questions.append(qa["question"])
                question_paragraph.append(len(contexts) - 1)
    titles = titles[:max(paragraph_title, default=-1) + 1]
    key = hashlib.sha256(raw + f"{embedder.model_id}|{paragraphs}".encode()).hexdigest()[:16]
    cache = Path(cache_dir) / f"xquad-vectors-{key}.npz"
    if cache.exists():
        stored = np.load(cache, allow_pickle=False)
        paragraph_vectors, question_vectors, chars_per_token = stored["paragraphs"], stored["questions"], float(stored["cpt"])
    else:
        log(f"Embedding the {len(contexts)} XQuAD-de paragraphs and {len(questions)} questions once (cached in {cache.parent}) …")
        paragraph_vectors = np.concatenate([embedder.embed_passages(contexts[i:i + 16]) for i in range(0, len(contexts), 16)])
        question_vectors = np.concatenate([embedder.embed_queries(questions[i:i + 64]) for i in range(0, len(questions), 64)])
        sample = [s for sentences in paragraph_sentences[::4] for s in sentences]
        chars_per_token = sum(len(s) for s in sample) / max(1, sum(embedder.token_count(s) for s in sample))
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, paragraphs=paragraph_vectors, questions=question_vectors, cpt=np.float64(chars_per_token))
        tmp.replace(cache)
    return Material(titles, paragraph_title, paragraph_sentences, questions, np.asarray(question_paragraph),
                    np.asarray(paragraph_vectors, np.float32), np.asarray(question_vectors, np.float32), chars_per_token)


# ---------------------------------------------------------------------------------------------- synthetic corpus


def synthetic_article(material: Material, number: int, rng: np.random.Generator) -> tuple[str, str, list[tuple[int, list[str]]]]:
    """``(doc_id, file text, [(paragraph id, its kept sentences)])``: a dated, titled article of 3–5 XQuAD-de paragraphs."""
    count = int(rng.integers(3, 6))
    first = int(rng.integers(len(material.paragraph_sentences)))
    paragraphs = [first] + [int(p) for p in rng.integers(len(material.paragraph_sentences), size=count - 1)]
    body, kept = [], []
    for p in paragraphs:
        sentences = material.paragraph_sentences[p]
        keep = [s for s in sentences if len(sentences) < 3 or rng.random() > 0.15] or sentences[:1]
        body.append(" ".join(keep))
        kept.append((p, keep))
    year, month, day = 2019 + int(rng.integers(8)), 1 + int(rng.integers(12)), 1 + int(rng.integers(28))
    title = f"{material.titles[material.paragraph_title[first]]}: Bericht {number}"
    text = f" date {year:04d}-{month:02d}-{day:02d}\n{title}\n" + "\n".join(body) + "\n"
    return f"syn{number:07d}", text, kept


def passage_vectors(material: Material, texts: list[str], rng: np.random.Generator, noise: float = NOISE) -> np.ndarray:
    """Synthetic vectors for passages made of XQuAD-de sentences (see the module docstring)."""
    from rag.ingest.sentences import sentence_spans

    origins = [[p for p in (material.sentence_paragraph.get(text[s:e].strip()) for s, e in sentence_spans(text)) if p is not None]
               for text in texts]
    return mixed_vectors(material, origins, rng, noise)


def mixed_vectors(material: Material, origins: list[list[int]], rng: np.random.Generator, noise: float = NOISE) -> np.ndarray:
    """For each passage, the mean of the paragraph vectors of its sentences' origins, plus noise, normalised."""
    basis = material.paragraph_vectors
    mix = np.zeros((len(origins), len(basis)), np.float32)
    for i, paragraphs in enumerate(origins):
        np.add.at(mix[i], paragraphs, 1.0)
    empty = mix.sum(axis=1) == 0
    mix[empty] = 1.0
    vectors = (mix / mix.sum(axis=1, keepdims=True)) @ basis
    vectors += rng.standard_normal(vectors.shape).astype(np.float32) * (noise / np.sqrt(basis.shape[1]))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class SyntheticEmbedder:
    """Passage vectors from :func:`passage_vectors`, under the real model's id (so the real model can update
    the index later); token counts estimated from characters, calibrated on XQuAD-de with the real model."""

    def __init__(self, material: Material, model_id: str, seed: int = 0) -> None:
        self.material = material
        self.model_id = model_id
        self.dim = material.paragraph_vectors.shape[1]
        self.rng = np.random.default_rng(seed)
        self.calls = 0

    def embed_passages(self, texts) -> np.ndarray:
        self.calls += 1
        return passage_vectors(self.material, list(texts), self.rng)

    def embed_queries(self, texts) -> np.ndarray:
        raise NotImplementedError("queries are embedded by the real model")

    def token_count(self, text: str) -> int:
        return 2 + int(len(text) / self.material.chars_per_token)


def write_synthetic_folder(material: Material, folder: Path, passages: int, settings: Settings,
                           seed: int = 1) -> dict:
    """Article files adding up to about ``passages`` chunks (calibrated on the first articles)."""
    from rag.ingest.chunking import chunk_article
    from rag.ingest.corpus import article_from_text

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    counter = SyntheticEmbedder(material, "count")
    written, number = 0.0, 0
    day_ago = time.time() - 86_400
    per_article: list[int] = []
    while written < passages:
        doc_id, text, _ = synthetic_article(material, number, rng)
        path = folder / f"{doc_id}.txt"
        path.write_text(text, encoding="utf-8")
        os.utime(path, (day_ago, day_ago))  # an archive's files are old (files changed in the last 2 s are re-read)
        if len(per_article) < 200:
            article = article_from_text(doc_id, text, doc_id)
            per_article.append(len(chunk_article(article, settings.chunk_tokens, settings.chunk_overlap, counter.token_count)))
            written += per_article[-1]
        else:
            written += float(np.mean(per_article))
        number += 1
    return {"articles": number, "expected_passages": int(written)}


def synthetic_records(material: Material, passages: int, seed: int = 1, noise: float = NOISE):
    """Articles, chunks (4–5 sentences, overlapping by one) and their vectors, generated in memory.

    The same kind of articles as :func:`write_synthetic_folder` writes, made into records directly: no file,
    no boilerplate cleaning, no token counting (sentences are known, so chunks are cut by sentence count).
    """
    from rag.ingest.chunking import article_context
    from rag.schema import Chunk
    from rag.schema import Article

    rng = np.random.default_rng(seed)
    vector_rng = np.random.default_rng(seed + 1)
    dim = material.paragraph_vectors.shape[1]
    articles, chunks, origins = [], [], []
    vectors = np.empty((passages, dim), np.float32)
    done = 0
    number = 0
    while len(chunks) < passages:
        doc_id, text, kept = synthetic_article(material, number, rng)
        date = text[6:16]
        body = text[17:].strip()
        title = body.split("\n", 1)[0]
        article = Article(doc_id, title, date, False, body, f"synthetic/{doc_id}.txt",
                          hashlib.sha256(body.encode("utf-8")).hexdigest())
        context = article_context(article)
        spans, cursor = [], len(title) + 1
        for p, sentences in kept:
            for sentence in sentences:
                start = body.index(sentence, cursor)
                cursor = start + len(sentence)
                spans.append((start, cursor, p))
        position, first = 0, 0
        while first < len(spans) and len(chunks) < passages:
            last = min(len(spans), first + int(rng.integers(4, 6)))
            start, end = spans[first][0], spans[last - 1][1]
            chunk_text = body[start:end]
            digest = hashlib.sha256(f"{context}\n{chunk_text}".encode("utf-8")).hexdigest()[:16]
            chunks.append(Chunk(f"{doc_id}#{position}", doc_id, position, start, end, chunk_text, digest, context))
            origins.append([s[2] for s in spans[first:last]])
            position += 1
            first = last - 1 if last < len(spans) else last
        articles.append(article)
        number += 1
        if len(origins) >= 20_000 or len(chunks) >= passages:
            vectors[done:done + len(origins)] = mixed_vectors(material, origins, vector_rng, noise)
            done += len(origins)
            origins = []
    return articles, chunks, vectors
