import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from rag.index.lexical import BM25Index, SentenceTerms, sentence_coverage
from rag.lang.de import tokenize


def test_tokenize_keeps_figures_umlauts_and_folds_case():
    tokens = tokenize("Meta plant 14,3 Milliarden und 3,58 Mrd. für Größere Rechenzentren im Jahr 2026!")
    assert "14,3" in tokens and "3,58" in tokens and "2026" in tokens
    assert "meta" in tokens
    assert tokens.count("milliard") == 2, "Mrd. is read as Milliarden"
    assert "und" not in tokens and "für" not in tokens and "im" not in tokens
    assert tokenize("ÄRGER ärger") == tokenize("ärger ärger")


def test_hyphenated_compounds_give_their_parts():
    assert tokenize("KI-Rechenzentren") == tokenize("KI Rechenzentren")


@given(st.text(max_size=200))
def test_tokens_are_never_empty_and_never_contain_spaces(text):
    assert all(t and not any(c.isspace() for c in t) for t in tokenize(text))


def reference_bm25(query: list[str], docs: list[list[str]], k1: float = 1.5, b: float = 0.75) -> list[float]:
    """Lucene BM25 (as in Lucene 8+, without the constant (k1 + 1) factor) written out, to check bm25s against."""
    n = len(docs)
    avgdl = sum(len(d) for d in docs) / n
    scores = []
    for doc in docs:
        score = 0.0
        for term in set(query):
            df = sum(term in d for d in docs)
            if df == 0:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            tf = doc.count(term)
            score += idf * tf / (tf + k1 * (1 - b + b * len(doc) / avgdl))
        scores.append(score)
    return scores


def test_bm25_scores_match_the_reference_formula():
    texts = ["Meta investiert 2026 bis zu 135 Milliarden Dollar in Rechenzentren.",
             "Google plant 75 Milliarden Dollar für KI und Cloud.",
             "Microsoft will 80 Milliarden Dollar in Rechenzentren investieren.",
             "Der Umsatz stieg um 24 Prozent."]
    index = BM25Index.build(texts)
    query = "Wie viel Milliarden investiert Meta in Rechenzentren?"
    rows, scores = index.search(query, k=4)
    expected = reference_bm25(tokenize(query), [tokenize(t) for t in texts])
    assert rows[0] == 0
    np.testing.assert_allclose(scores, [expected[r] for r in rows], rtol=1e-4)
    assert 3 not in rows, "a passage with no query term is not returned"


def _coverage(weights, passages):
    """``sentence_coverage`` of passages given as lists of token sets."""
    ids: dict[str, int] = {}
    table = []
    for passage in passages:
        terms, numbers = [], []
        for number, sentence in enumerate(passage):
            for token in sentence:
                terms.append(ids.setdefault(token, len(ids)))
                numbers.append(number)
        table.append((np.array(terms, np.int32), np.array(numbers, np.int32), len(passage)))
    return sentence_coverage(weights, ids, SentenceTerms.of(table))


def _coverage_reference(weights, sentences):
    """The plain definition: the best sentence's sum of term weights, over the total weight."""
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    return max((sum(w for t, w in weights.items() if t in sentence) for sentence in sentences
                if not weights.keys().isdisjoint(sentence)), default=0.0) / total


def test_sentence_coverage_by_hand():
    weights = {"meta": 1.0, "rechenzentr": 3.0}
    sentences = [{"meta", "umsatz"}, {"rechenzentr", "dollar"}, set()]
    assert _coverage(weights, [sentences, [{"meta", "rechenzentr"}], [set()]]).tolist() == [0.75, 1.0, 0.0]
    assert _coverage({}, [sentences]).tolist() == [0.0] and len(_coverage(weights, [])) == 0


@given(st.dictionaries(st.sampled_from("abcdefg"), st.floats(0.01, 20.0), max_size=6),
       st.lists(st.lists(st.sets(st.sampled_from("abcdefghij"), max_size=5), min_size=1, max_size=4), max_size=6))
def test_sentence_coverage_equals_the_plain_definition(weights, passages):
    """Bit for bit, not approximately: the fused ranking must not move."""
    assert _coverage(weights, passages).tolist() == [_coverage_reference(weights, p) for p in passages]


def test_idf_follows_the_bm25_formula():
    index = BM25Index.build(["Meta baut Rechenzentren.", "Meta plant mehr.", "Google plant auch."])
    idf = index.idf(["meta", "rechenzentr", "unbekannt"])
    assert idf == pytest.approx({"meta": math.log(1 + 1.5 / 2.5), "rechenzentr": math.log(1 + 2.5 / 1.5)})


def test_bm25_save_and_load_round_trip_without_pickle(tmp_path):
    index = BM25Index.build(["eins zwei", "drei vier", "zwei drei"])
    index.save(tmp_path / "bm25")
    files = sorted(p.suffix for p in (tmp_path / "bm25").iterdir())
    assert set(files) <= {".npy", ".json"}
    loaded = BM25Index.load(tmp_path / "bm25")
    assert loaded.size == 3
    for query in ["zwei", "drei vier", "nichts"]:
        a, b = index.search(query, 3), loaded.search(query, 3)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1])


@pytest.mark.parametrize("query", ["", "   ", "und oder", "🙂"])
def test_queries_without_known_terms_return_nothing(query):
    rows, scores = BM25Index.build(["Meta investiert."]).search(query, 5)
    assert rows.size == 0 and scores.size == 0


# --- issue 7: vectorised build and search, kept tokens, merging -------------------------------------------------

from rag.index.lexical import TokenTable, merge_tables  # noqa: E402


def test_vectorised_index_matches_bm25s_own_scoring_on_a_random_corpus():
    import bm25s

    rng = np.random.default_rng(3)
    words = [str(1000 + i) for i in range(60)]  # numbers pass the tokenizer unchanged
    docs = [[words[j] for j in rng.zipf(1.5, size=rng.integers(0, 40)) % 60] for _ in range(300)]
    ours = BM25Index.from_table(TokenTable.from_tokens(docs))
    reference = bm25s.BM25(k1=1.5, b=0.75)
    reference.index(docs, show_progress=False)
    for _ in range(50):
        query = " ".join(words[j] for j in rng.integers(0, 60, size=3))
        rows, scores = ours.search(query, 10)
        tokens = [t for t in query.split() if t in reference.vocab_dict]
        full = reference.get_scores(tokens)
        expected = [r for r in np.lexsort((np.arange(len(full)), -full))[:10] if full[r] > 0]
        assert list(rows) == expected
        np.testing.assert_allclose(scores, full[expected], rtol=1e-5)


def test_kept_tokens_rebuild_the_same_index_and_dropped_documents_leave_the_vocabulary(tmp_path):
    texts = ["Meta investiert 135 Milliarden.", "Google plant Rechenzentren.", "Amazon und Meta bauen."]
    index = BM25Index.build(texts)
    index.save(tmp_path / "bm25")
    table = BM25Index.load(tmp_path / "bm25").token_table()
    assert [table.tokens(i) for i in range(3)] == [tokenize(t) for t in texts]
    merged = merge_tables(table, [0, tokenize("Neue Nachricht über Microsoft."), 2])
    rebuilt = BM25Index.from_table(merged)
    fresh = BM25Index.build([texts[0], "Neue Nachricht über Microsoft.", texts[2]])
    for query in ["Meta", "Microsoft Nachricht", "Google"]:
        a, b = rebuilt.search(query, 5), fresh.search(query, 5)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1], rtol=1e-6)
    assert "googl" not in merged.vocab, "a token only the dropped document had is gone"
    assert rebuilt.document_frequencies()["meta"] == 2


def test_large_indexes_load_memory_mapped(tmp_path, monkeypatch):
    import rag.index.lexical as lexical

    BM25Index.build(["eins zwei", "drei vier", "zwei drei"]).save(tmp_path / "bm25")
    monkeypatch.setattr(lexical, "MMAP_ABOVE_BYTES", 0)
    loaded = BM25Index.load(tmp_path / "bm25")
    assert isinstance(loaded.scores["data"], np.memmap)
    assert list(loaded.search("zwei", 3)[0]) == [0, 2]


def test_saved_files_stay_loadable_by_bm25s_itself(tmp_path):
    import bm25s

    texts = ["Meta investiert 135 Milliarden.", "Google plant Rechenzentren.", "Amazon und Meta bauen Rechenzentren."]
    BM25Index.build(texts).save(tmp_path / "bm25")
    theirs = bm25s.BM25.load(str(tmp_path / "bm25"), show_progress=False)
    ours = BM25Index.load(tmp_path / "bm25")
    for query in ["Meta", "Rechenzentren Meta"]:
        rows, scores = ours.search(query, 3)
        full = theirs.get_scores([t for t in tokenize(query) if t in theirs.vocab_dict])
        np.testing.assert_allclose(scores, full[rows], rtol=1e-6)
