"""Articles → overlapping passages of whole sentences, sized in the embedder's tokens.

langchain's ``TextSplitter`` does the packing (size and overlap); our German
sentence splitter supplies the pieces so that no chunk starts or ends inside
"14,3 Milliarden", "z. B." or "1. Februar 2026". Pieces are exact slices of
the article, so every chunk is an exact slice too and keeps its ``[start, end)``.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from typing import Callable, Iterable

from rag.lang.de import month_year
from rag.schema import Article, Chunk
from rag.ingest.sentences import sentence_spans


def sentence_texts(chunk: Chunk, window: int = 2) -> list[str]:
    """What gets a sentence vector: each sentence with the ``window - 1`` sentences after it (within the
    passage), under the passage's header.

    Why: one vector per 200-token passage blurs the sentence a question was
    written against, so neighbouring paragraphs on one topic look alike; a
    lone sentence, though, loses its subject ("Der Konzern plant …"). On the
    German eval set single sentences cost 5 points of MRR@10, pairs none.
    """
    spans = sentence_spans(chunk.text) or [(0, len(chunk.text))]
    last = len(spans) - 1
    windows = [chunk.text[start:spans[min(i + window - 1, last)][1]] for i, (start, _) in enumerate(spans)]
    return [f"{chunk.context}\n{w}" if chunk.context else w for w in windows]


@lru_cache(maxsize=1)
def _piece_splitter() -> type:
    """The splitter class, made on first use: langchain takes half a second to import, and loading an
    index to search it (``Chunk`` records) needs none of it."""
    from langchain_text_splitters import TextSplitter

    class _PieceSplitter(TextSplitter):
        """Packs pre-cut pieces (sentences with their trailing space) into chunks."""

        def split_text(self, text: str) -> list[str]:
            raise NotImplementedError("use pack()")

        def pack(self, pieces: list[str]) -> list[str]:
            return self._merge_splits(pieces, separator="")

    return _PieceSplitter


def _long_sentence_windows(text: str, start: int, end: int, budget: int,
                           length: Callable[[str], int]) -> Iterable[tuple[int, int]]:
    """Cut a sentence longer than the chunk budget at word boundaries."""
    words = [m.span() for m in re.finditer(r"\S+", text[start:end])]
    left = 0
    while left < len(words):
        right = left + 1
        while right < len(words) and length(text[start + words[left][0]:start + words[right][1]]) <= budget:
            right += 1
        yield start + words[left][0], start + words[right - 1][1]
        left = right


def piece_spans(text: str, chunk_tokens: int, length: Callable[[str], int]) -> list[tuple[int, int]]:
    """Sentence spans, each extended over the white space after it, long sentences cut to fit."""
    spans: list[tuple[int, int]] = []
    for start, end in sentence_spans(text):
        if length(text[start:end]) > chunk_tokens:
            spans.extend(_long_sentence_windows(text, start, end, chunk_tokens, length))
        else:
            spans.append((start, end))
    return [(s, spans[i + 1][0] if i + 1 < len(spans) else len(text)) for i, (s, _) in enumerate(spans)]


def article_context(article: Article) -> str:
    """A short header that gives every passage its article's title and date.

    Why: a passage saying "für das laufende Jahr" only answers "2026?" when the
    retriever knows the article is from January 2026. A title that merely repeats
    the article's first words adds nothing and is left out.
    """
    parts = [] if article.text.startswith(article.title.rstrip("…")) else [article.title]
    if article.date:
        parts.append(month_year(article.date))
    return " – ".join(parts)


_MARKER = re.compile(r"\x00(\d+)\x00")


def chunk_article(article: Article, chunk_tokens: int, overlap_tokens: int,
                  token_count: Callable[[str], int]) -> list[Chunk]:
    """Overlapping chunks of whole sentences, each at most ``chunk_tokens`` long where sentences allow."""
    if overlap_tokens >= chunk_tokens:
        raise ValueError("chunk overlap must be smaller than the chunk size")
    length = lru_cache(maxsize=None)(token_count)
    text = article.text
    spans = piece_spans(text, chunk_tokens, length)
    # langchain packs placeholders, one per piece, so each chunk says exactly which pieces it holds: matching chunk
    # strings back into the text would pick the wrong copy of a sentence that the article repeats.
    markers = [f"\x00{i}\x00" for i in range(len(spans))]
    sizes = {marker: length(text[s:e]) for marker, (s, e) in zip(markers, spans)}
    splitter = _piece_splitter()(chunk_size=chunk_tokens, chunk_overlap=overlap_tokens,
                                 length_function=lambda piece: sizes[piece] if piece in sizes else length(piece))
    context = article_context(article)
    chunks: list[Chunk] = []
    for position, packed in enumerate(splitter.pack(markers)):
        pieces = [int(i) for i in _MARKER.findall(packed)]
        start, end = spans[pieces[0]][0], spans[pieces[-1]][1]
        chunk_text = text[start:end].rstrip()
        digest = hashlib.sha256(f"{context}\n{chunk_text}".encode("utf-8")).hexdigest()[:16]
        chunks.append(Chunk(f"{article.doc_id}#{position}", article.doc_id, position, start,
                            start + len(chunk_text), chunk_text, digest, context))
    return chunks


def chunk_articles(articles: Iterable[Article], chunk_tokens: int, overlap_tokens: int,
                   token_count: Callable[[str], int]) -> list[Chunk]:
    """Chunks of every article, in article order."""
    return [c for a in articles for c in chunk_article(a, chunk_tokens, overlap_tokens, token_count)]
