"""Hybrid retrieval: dense (FAISS) and BM25 candidates fused by weighted z-scores, optional reranking.

Why z-scores: the two score scales are unrelated (cosine ≈ 0.8 vs BM25 ≈ 12),
and rank fusion throws away how far ahead the best hit is. On the tuning half
of XQuAD-de, z-score fusion beats reciprocal-rank fusion (see eval/reports).
A chunk missing from one list gets that list's lowest candidate score.
"""

from __future__ import annotations

import threading
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from rag.errors import RagError
from rag.index.dates import DateRange
from rag.index.dense import search_within
from rag.index.milvus import MilvusStore, to_rows
from rag.index.store import Index
from rag.index.lexical import SentenceTerms, bm25_idf, sentence_coverage
from rag.lang.de import dated_question, looks_english, tokenize
from rag.lang.dictionary import Dictionary, configured_dictionary, translations_used
from rag.lang.thesaurus import Thesaurus, configured_thesaurus
from rag.ingest.sentences import sentence_spans
from rag.schema import Embedder, Hit
from rag.settings import Settings


# Up to this many passages, sentence coverage weighs terms by their frequency in passage bodies (see
# ``Retriever.term_weights``); counting them takes about 0.15 s per 1,000 passages, once, at warm-up.
BODY_IDF_MAX_PASSAGES = 5_000


def mean_std(values: np.ndarray) -> tuple[np.float32, np.float32]:
    """``values.mean()`` and ``values.std()`` of a float32 array, bit for bit, in a third of their time.

    Why: numpy's generic reductions cost ~13 µs per call on a hundred values, and fusion standardises seven columns a
    question. Same arithmetic as numpy's: a float32 (pairwise) sum divided by the count, then the float32 sum of
    squared deviations divided by the count, square-rooted.
    """
    n = len(values)
    mean = np.float32(np.add.reduce(values) / n)
    deviations = values - mean
    return mean, np.sqrt(np.float32(np.add.reduce(deviations * deviations) / n))


def fuse(columns: Sequence[tuple[Mapping[int, float], float]]) -> list[tuple[int, float]]:
    """Weighted z-score fusion of ``(scores, weight)`` columns of ``{row: score}``, best first (ties by row).

    Each column is standardised over its own candidates; a row missing from a column gets that column's lowest score.
    """
    columns = [(scores, weight) for scores, weight in columns if weight]
    rows = np.array(sorted(set().union(*(scores for scores, _ in columns))), np.int64)
    if not len(rows):
        return []

    def column(scores: Mapping[int, float]) -> np.ndarray:
        if not scores:
            return np.zeros(len(rows), np.float32)
        values = np.fromiter(scores.values(), np.float32, len(scores))
        mean, std = mean_std(values)
        filled = np.empty(len(rows), np.float32)
        if len(values) < len(rows):
            filled.fill(np.minimum.reduce(values))
        filled[rows.searchsorted(np.fromiter(scores.keys(), np.int64, len(scores)))] = values
        return (filled - mean) / std if std > 1e-9 else np.zeros(len(rows), np.float32)

    fused = sum(weight * column(scores) for scores, weight in columns)
    order = np.lexsort((rows, -fused))
    return list(zip(rows[order].tolist(), fused[order].tolist()))


def diversify(ranked: list[tuple[int, float]], article_of: Callable[[int], object], penalty: float
              ) -> list[tuple[int, float]]:
    """Greedy re-ranking that lowers each further passage of an already chosen article by ``penalty``.

    Why: long articles repeat their key figure in several overlapping chunks and
    would fill the top ranks alone; a reader wants the other articles' versions
    of the fact too. Each score becomes the adjusted score it was chosen with,
    so the list stays sorted by score. Each greedy step takes the best adjusted score (the earlier of equal ones).
    With ``ranked`` best first, an article's passages are chosen in list order, so the ``j``-th one is chosen with
    ``score - j * penalty`` and the greedy order is simply the order of those adjusted scores: one sort.
    """
    if penalty <= 0 or len(ranked) < 2:
        return ranked
    seen: dict[object, int] = {}
    keyed = []
    for i, (row, score) in enumerate(ranked):
        article = article_of(row)
        times = seen.get(article, 0)
        seen[article] = times + 1
        keyed.append((penalty * times - score, i, row))  # −(adjusted score), exactly: rounding is symmetric
    keyed.sort()
    return [(row, -negative) for negative, _, row in keyed]


def cross_encoder_reranker(model_path: str, threads: int = 2) -> Callable[[str, Sequence[str]], np.ndarray]:
    """A sentence-transformers ``CrossEncoder`` from a local path, as ``(question, passages) → scores``."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import torch
        from sentence_transformers import CrossEncoder
    except ImportError:
        raise RagError("The reranker needs sentence-transformers; run: pip install -e '.[st]'") from None
    torch.set_num_threads(threads)
    try:
        model = CrossEncoder(model_path, device="cpu")
    except Exception as err:  # many exception types for a missing or broken model folder
        raise RagError(f"The reranker model '{model_path}' cannot be loaded offline ({type(err).__name__}).") from None

    def rerank(question: str, passages: Sequence[str]) -> np.ndarray:
        return np.asarray(model.predict([(question, p) for p in passages], show_progress_bar=False), np.float32).reshape(-1)

    return rerank


MODES = ("hybrid", "dense", "bm25")
# An English question's BM25 side searches the German translations of its words that its best passages by vector
# use (``Retriever.gloss_search``); chosen on XQuAD-de's tuning half asked in English, Recall@1 with 5/10/20 such
# passages and the BM25 weight 0.3: 0.909 / 0.908 / 0.908 (vectors alone 0.890).
GLOSS_PASSAGES = 5


def mode_weights(settings: Settings, mode: str, has_sentences: bool) -> tuple[float, float, float, float]:
    """Normalised (passage, sentence, BM25, coverage) fusion weights of a retrieval mode.

    ``dense`` drops the two lexical signals (BM25, coverage), ``bm25`` keeps only BM25, ``english`` (an English
    question, ``question_mode``) drops coverage, an index without sentence vectors drops those; what is left is
    scaled to sum 1 (passage vectors alone when nothing is left).
    """
    if mode not in (*MODES, "english"):
        raise ValueError(f"unknown retrieval mode {mode!r}")
    if mode == "bm25":
        return 0.0, 0.0, 1.0, 0.0
    lexical = mode == "hybrid"
    weights = (settings.dense_weight, settings.sentence_weight if has_sentences else 0.0,
               settings.bm25_weight if lexical or mode == "english" else 0.0,
               settings.coverage_weight if lexical else 0.0)
    total = sum(weights)
    return tuple(w / total for w in weights) if total > 0 else (1.0, 0.0, 0.0, 0.0)


def question_mode(settings: Settings, question: str, mode: str) -> str:
    """The mode a question is searched in: an English question over German articles is searched by its vectors
    and by BM25 over the German translations of its words (``english``; ``settings.english_dense_only``), not by
    its own words; without the dictionary (``rag.lang.dictionary``), by its vectors alone.

    Why: BM25 and sentence coverage match the question's words, and an English question shares few words with a
    German passage (names and figures at best); their votes are mostly noise. XQuAD-de's tuning half asked in
    English (``rag.eval.english_questions``), Recall@1 with the lexical weights scaled by 1, 0.75, 0.5, 0.25, 0:
    0.864, 0.877, 0.883, 0.884, 0.891; on the held-out half 0.759 with them, 0.822 without. The German eval set's
    17 English questions, which name the company and the quarter, lose 2 first places (hybrid Recall@1 over its
    107 answerable questions 0.696 → 0.678)."""
    if mode == "hybrid" and settings.english_dense_only and looks_english(question):
        return "english"
    return mode


class Retriever:
    """Question → ranked passages from one loaded index.

    Four signals are fused: the passage's vector, its best-matching sentence's vector, BM25, and how much of
    the question's rare words its best sentence holds. Why the two sentence signals: most misses put a sibling
    paragraph of the same topic first; the one sentence a question was asked about separates them where passage
    scores do not (XQuAD-de held-out Recall@1 0.925 with passages only, 0.941 with both sentence signals).
    """

    def __init__(self, index: Index, embedder: Embedder, settings: Settings,
                 reranker: Callable[[str, Sequence[str]], np.ndarray] | None = None,
                 store: MilvusStore | None = None) -> None:
        if index.params["embedder"]["id"] != embedder.model_id:
            raise RagError(f"The index was built with {index.params['embedder']['id']}, not {embedder.model_id}.")
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self.reranker = reranker
        self.store = store  # Milvus, when the index's backend is milvus: it answers the dense and BM25 searches
        self._allowed: dict[DateRange, np.ndarray] = {}
        self._article_numbers: np.ndarray | None = None
        # Per thread, what its last question computed: the query vector (``query``), the last dense and BM25
        # search by kind (``search``: question, dates, n, rows → scores; the answerer's background features ask
        # the same question again with a smaller n right after `run`) and the term weights (``weights``). Per
        # thread, because the chat and `rag batch` answer several questions at once and each must find its own
        # question's results, so that its answer is the one a single thread would give.
        self._recent = threading.local()
        self._term_ids: dict[str, int] = {}  # every passage term met so far, numbered as met
        self._numbering = threading.Lock()  # the chat answers several questions at once: one number per term
        self._sentence_terms: dict[int, tuple[np.ndarray, np.ndarray, int]] = {}
        self._body_frequencies: np.ndarray | None = None
        self._all_sentences: SentenceTerms | None = None  # every passage's, for an index of few passages

    def warm_up(self) -> None:
        import faiss

        # One question at a time: a single-query FAISS search is fastest on one thread (exact search of 10k
        # passages: ~1 ms vs 3-5 ms on two), and the embedder keeps the cores (rag.eval.bench measures both).
        faiss.omp_set_num_threads(1)
        if self.reranker is None and self.settings.reranker:
            self.reranker = cross_encoder_reranker(self.settings.reranker, self.settings.threads)
        self.embedder.embed_queries(["warm-up"])
        self.index.bm25.search("warm-up", 1)
        self.term_weights("warm-up")

    def query_vector(self, question: str) -> np.ndarray:
        """The question's embedding; the last one is kept, since the passage and sentence searches both need it."""
        last = getattr(self._recent, "query", None)
        if last is not None and last[0] == question:
            return last[1]
        vector = np.asarray(self.embedder.embed_queries([question]), np.float32).reshape(1, -1)
        self._recent.query = (question, vector)
        return vector

    def forget_last_question(self) -> None:
        """Drop this thread's kept query vector, searches and term weights, so the next question costs what a new
        one costs (the benchmark times the same questions several times)."""
        self._recent.query = self._recent.weights = None
        self._recent.search = {}

    def allowed_rows(self, dates: DateRange) -> np.ndarray:
        """A boolean mask over chunk rows: the passages of articles published within ``dates`` (kept per range)."""
        mask = self._allowed.get(dates)
        if mask is None:
            articles = self.index.articles
            inside = np.fromiter((dates.allows(articles[doc_id].date) for doc_id in articles), bool, len(articles))
            mask = inside[self.article_numbers()]
            if len(self._allowed) >= 16:
                self._allowed.clear()
            self._allowed[dates] = mask
        return mask

    def article_numbers(self) -> np.ndarray:
        """Each chunk row's article number (its article's place in article order), made on first use."""
        if self._article_numbers is None:
            starts = self.index.article_chunk_starts()
            self._article_numbers = np.repeat(np.arange(len(starts) - 1, dtype=np.int32), np.diff(starts))
        return self._article_numbers

    def _milvus_rows(self, candidates) -> dict[int, float]:
        return to_rows(candidates, lambda doc_id: self.index.articles.row(doc_id) if doc_id in self.index.articles
                       else None, self.index.article_chunk_starts())

    def _searched(self, kind: str, question: str, n: int, dates: DateRange | None,
                  search: Callable[[], dict[int, float]]) -> dict[int, float]:
        """``search()``, or the best ``n`` of the last search of this kind when it asked the same question within
        the same dates for at least ``n`` rows (the answerer's unrestricted top 40 after `run`'s top 100).
        One slot per kind in each thread."""
        searches = getattr(self._recent, "search", None)
        if searches is None:
            searches = self._recent.search = {}
        last = searches.get(kind)
        if last is not None and last[0] == question and last[1] == dates and last[2] >= n:
            found = last[3]
            return found if len(found) <= n else dict(sorted(found.items(), key=lambda item: -item[1])[:n])
        found = search()
        searches[kind] = (question, dates, n, found)
        return found

    def dense_search(self, question: str, n: int, dates: DateRange | None = None) -> dict[int, float]:
        """The ``n`` nearest passages (within ``dates``: the range is applied while searching, not after)."""
        return self._searched("dense", question, n, dates, lambda: self._dense_search(question, n, dates))

    def _dense_search(self, question: str, n: int, dates: DateRange | None) -> dict[int, float]:
        vector = self.query_vector(question)
        if self.store is not None:
            return self._milvus_rows(self.store.dense_search(vector, n, dates))
        if dates is None:
            scores, rows = self.index.dense.search(vector, min(n, self.index.dense.ntotal))
        else:
            scores, rows = search_within(self.index.dense, vector, n, np.flatnonzero(self.allowed_rows(dates)))
        found = rows[0] >= 0
        return dict(zip(rows[0][found].tolist(), scores[0][found].tolist()))

    def bm25_search(self, question: str, n: int, dates: DateRange | None = None) -> dict[int, float]:
        """The ``n`` best BM25 passages (within ``dates``)."""
        return self._searched("bm25", question, n, dates, lambda: self._bm25_search(question, n, dates))

    def _bm25_search(self, question: str, n: int, dates: DateRange | None) -> dict[int, float]:
        if self.store is not None:
            return self._milvus_rows(self.store.bm25_search(question, n, dates))
        rows, scores = self.index.bm25.search(question, n, None if dates is None else self.allowed_rows(dates))
        return dict(zip(rows.tolist(), scores.tolist()))

    def dictionary(self) -> Dictionary | None:
        """The English-German dictionary of ``settings.english_dictionary`` (read once per process), or None."""
        return configured_dictionary(self.settings.english_dictionary, self.settings.dictionary_cache_dir)

    def thesaurus(self) -> Thesaurus | None:
        """The German thesaurus of ``settings.german_thesaurus`` (read once per process), or None."""
        return configured_thesaurus(self.settings.german_thesaurus, self.settings.dictionary_cache_dir)

    def gloss_search(self, question: str, dense: Mapping[int, float], n: int, dates: DateRange | None = None
                     ) -> dict[int, float]:
        """The ``n`` best BM25 passages for the German translations of an English question's words that its
        ``GLOSS_PASSAGES`` best passages by vector (``dense``) use (``rag.lang.dictionary.translations_used``);
        empty without the dictionary."""
        dictionary = self.dictionary()
        if dictionary is None or not dense:
            return {}
        best = sorted(dense, key=dense.__getitem__, reverse=True)[:GLOSS_PASSAGES]
        used = {term for row in best for term in tokenize(self.index.chunks[row].text)}
        words = translations_used(question, used, dictionary)
        return self.bm25_search(" ".join(words), n, dates) if words else {}

    def sentence_search(self, question: str, rows: Sequence[int]) -> dict[int, float]:
        """Each candidate row's best sentence cosine (empty for an index without sentence vectors)."""
        if self.index.sentences is None or not len(rows):
            return {}
        rows = sorted(rows)
        best = self.index.sentences.best(np.asarray(rows, np.int64), self.query_vector(question)[0])
        return dict(zip(rows, best.tolist()))

    def _terms_by_sentence(self, row: int) -> tuple[np.ndarray, np.ndarray, int]:
        """A passage's distinct terms per sentence as ``(term ids, sentence numbers, sentences)`` (see
        ``sentence_coverage``), made on first use and kept: candidates recur across questions."""
        found = self._sentence_terms.get(row)
        if found is None:
            text = self.index.chunks[row].text
            spans = sentence_spans(text) or [(0, len(text))]
            ids, terms, numbers = self._term_ids, [], []
            with self._numbering:
                for number, (a, b) in enumerate(spans):
                    for term in dict.fromkeys(tokenize(text[a:b])):
                        terms.append(ids.setdefault(term, len(ids)))
                        numbers.append(number)
            found = self._sentence_terms[row] = (np.array(terms, np.int32), np.array(numbers, np.int32), len(spans))
        return found

    def term_weights(self, question: str) -> dict[str, float]:
        """The IDF of the question's terms over the passages' own text.

        Why not the BM25 index's frequencies: BM25 indexes each passage under its article's title, so in a
        small corpus the title's words ("Meta") look common and weigh nothing (German eval set: MRR@10 0.908
        instead of 0.924). Counting passage bodies takes one pass over every passage, made once (at warm-up);
        above ``BODY_IDF_MAX_PASSAGES`` the BM25 frequencies stand in, where titles are a small share anyway.
        The last question's weights are kept (``run`` asks before the embedding, coverage and the answerer after).
        """
        last = getattr(self._recent, "weights", None)
        if last is not None and last[0] == question:
            return last[1]
        weights = self.stem_weights(set(tokenize(question)))
        self._recent.weights = (question, weights)
        return weights

    def stem_weights(self, terms: Iterable[str]) -> dict[str, float]:
        """The IDF of each of ``terms`` (stems, as ``tokenize`` gives them) that a passage uses (``term_weights``)."""
        chunks = self.index.chunks
        if len(chunks) > BODY_IDF_MAX_PASSAGES:
            weights = self.index.bm25.idf(terms)
        else:
            if self._body_frequencies is None:
                passages = [self._terms_by_sentence(row) for row in range(len(chunks))]
                self._all_sentences = SentenceTerms.of(passages)
                distinct = [np.unique(terms) for terms, _, _ in passages]
                self._body_frequencies = np.bincount(np.concatenate(distinct) if distinct else np.zeros(0, np.int32),
                                                     minlength=len(self._term_ids))
            counts, ids = self._body_frequencies, self._term_ids
            weights = {t: bm25_idf(len(chunks), int(counts[i])) for t in terms
                       if (i := ids.get(t)) is not None and counts[i]}
        return weights

    def coverage_search(self, question: str, rows: Sequence[int]) -> dict[int, float]:
        """Each candidate row's ``sentence_coverage``: the IDF share of the question's terms in its best sentence."""
        weights = self.term_weights(question)
        if not weights or not len(rows):
            return {}
        if self._all_sentences is not None:  # a small index: every passage's table is made at warm-up
            coverage = sentence_coverage(weights, self._term_ids, self._all_sentences)[rows]
        else:
            coverage = sentence_coverage(weights, self._term_ids,
                                         SentenceTerms.of([self._terms_by_sentence(row) for row in rows]))
        return dict(zip(rows, coverage.tolist()))

    def _hit(self, row: int, score: float, dense: dict[int, float], lexical: dict[int, float]) -> Hit:
        chunk = self.index.chunks[row]
        article = self.index.articles[chunk.doc_id]
        return Hit(chunk.doc_id, chunk.chunk_id, round(score, 4), chunk.text, chunk.start, chunk.end, article.title,
                   article.date, article.date_inferred, dense.get(row), lexical.get(row))

    def rank(self, question: str, dense: dict[int, float], lexical: dict[int, float], sentence: dict[int, float],
             k: int, mode: str = "hybrid") -> list[tuple[int, float]]:
        """Fused, diversified and (when configured) reranked ``(row, score)``, best first."""
        weights = mode_weights(self.settings, mode, self.index.sentences is not None)
        columns = list(zip((dense, sentence, lexical), weights))
        if weights[3]:
            # Coverage re-ranks the head of the other signals' fusion: it separates near neighbours, and reading
            # the sentences of every candidate would cost ~25 ms a question where they are not cached (large
            # indexes). XQuAD-de held-out Recall@1 is 0.941 with the head of 50 and with all candidates.
            head = [row for row, _ in fuse(columns)[: self.settings.coverage_candidates]]
            columns.append((self.coverage_search(question, head), weights[3]))
        ranked = fuse(columns)
        head = ranked[: max(k, self.settings.rerank_top) * 2]
        rows = [row for row, _ in head]
        article = dict(zip(rows, self.article_numbers()[rows].tolist()))  # one lookup for all, not a chunk each
        ranked = diversify(head, article.__getitem__, self.settings.same_article_penalty) + ranked[len(head):]
        if self.reranker is not None and ranked:
            top = ranked[: self.settings.rerank_top]
            scores = self.reranker(question, [self.index.chunks[row].text for row, _ in top])
            order = np.argsort(-scores, kind="stable")
            ranked = [(top[i][0], float(scores[i])) for i in order] + ranked[len(top):]
        return ranked

    def run(self, question: str, k: int | None = None, mode: str = "hybrid", dates: DateRange | None = None
            ) -> list[Hit]:
        """The best ``k`` passages; ``mode`` is ``hybrid``, ``dense`` or ``bm25`` (for ablations); ``dates``
        keeps only articles published in that range (filtered before fusion, so ``k`` stay ``k``)."""
        question = question.strip()
        if not question:
            raise RagError("The question is empty.")
        if len(question) > self.settings.max_question_chars:
            raise RagError(f"The question has {len(question)} characters; the limit is {self.settings.max_question_chars}.")
        question = dated_question(question, self.settings.reference_day())
        mode = question_mode(self.settings, question, mode)
        if mode == "english" and self.dictionary() is None:
            mode = "dense"  # the same fusion, and scores, as with no BM25 side at all
        passage_weight, sentence_weight, bm25_weight, coverage_weight = mode_weights(
            self.settings, mode, self.index.sentences is not None)
        k = k or self.settings.top_k
        n = max(self.settings.candidates, k)
        # The lexical side first: it does not need the query vector and costs less before the embedding has
        # flushed the caches (seeds: BM25 and term weights ~95 µs instead of ~120 µs a question).
        lexical = self.bm25_search(question, n, dates) if bm25_weight and mode != "english" else {}
        if coverage_weight:
            self.term_weights(question)
        dense = self.dense_search(question, n, dates) if passage_weight or sentence_weight else {}
        if mode == "english":
            lexical = self.gloss_search(question, dense, n, dates)
        sentence = self.sentence_search(question, list(set(dense) | set(lexical))) if sentence_weight else {}
        ranked = self.rank(question, dense, lexical, sentence, k, mode)
        return [self._hit(row, score, dense, lexical) for row, score in ranked[:k]]
