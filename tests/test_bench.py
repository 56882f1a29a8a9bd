"""`rag bench` on a tiny run: the seeds (two articles) and a small synthetic corpus, the real default embedder, real subprocesses."""

import json
import shutil

import numpy as np
import pytest

from conftest import SEEDS
from rag.eval.bench.run import parse_sizes, run_bench
from rag.eval.bench.synthetic import Material, passage_vectors
from rag.settings import Settings


def test_parse_sizes():
    assert parse_sizes("seeds,10k,100k,1m") == [("seeds", 0), ("10k", 10_000), ("100k", 100_000), ("1m", 1_000_000)]
    assert parse_sizes(" 2000, 5k ,1.5m") == [("2000", 2000), ("5k", 5000), ("1.5m", 1_500_000)]
    for bad in ["", "huge", "50"]:
        with pytest.raises(ValueError):
            parse_sizes(bad)


def test_synthetic_vectors_follow_the_sentences_they_are_made_of():
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((4, 16)).astype(np.float32)
    basis /= np.linalg.norm(basis, axis=1, keepdims=True)
    paragraphs = [["Der Umsatz stieg stark.", "Die Kosten fielen deutlich."], ["Das Wetter war gut."],
                  ["Der Zug kam spät."], ["Die Wahl ist vorbei."]]
    material = Material(["T"], [0, 0, 0, 0], paragraphs, [], np.zeros(0, int), basis, np.zeros((0, 16), np.float32), 4.0)
    texts = ["Der Umsatz stieg stark. Die Kosten fielen deutlich. Der Zug kam spät.", "Das Wetter war gut."]
    vectors = passage_vectors(material, texts, rng, noise=0.05)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    expected = (2 * basis[0] + basis[2]) / 3
    assert vectors[0] @ expected / np.linalg.norm(expected) > 0.99, "two sentences of paragraph 0, one of paragraph 2"
    assert vectors[1] @ basis[1] > 0.99


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    seeds = root / "seeds"
    seeds.mkdir()
    for name in ("002_ce2073f525773260.txt", "003_a751d851a43831ac.txt"):
        shutil.copy(SEEDS / name, seeds / name)
    settings = Settings(seeds_dir=seeds, index_dir=root / "unused", llm_cache_dir=root / "cache", exact_max_passages=300)
    messages = []
    result = run_bench(parse_sizes("seeds,600"), settings, root / "reports" / "bench", queries=4, rounds=1,
                       work_dir=root / "work", log=messages.append, startup_runs=1, material_paragraphs=30)
    return root, result


def test_tiny_bench_writes_the_three_reports(tiny_bench):
    root, result = tiny_bench
    stored = json.loads((root / "reports" / "bench.json").read_text(encoding="utf-8"))
    assert [s["name"] for s in stored["sizes"]] == ["seeds", "600"]
    markdown = (root / "reports" / "bench.md").read_text(encoding="utf-8")
    for heading in ("## Targets", "## Retrieval latency", "## Incremental indexing", "## Start-up", "| seeds |"):
        assert heading in markdown
    assert (root / "reports" / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_latencies_are_sane_and_the_floor_ratio_is_computed(tiny_bench):
    _, result = tiny_bench
    for size in result["sizes"]:
        latency = size["latency_ms"]
        for stage in ("query_embedding", "dense_search", "bm25", "fusion", "retrieval", "floor"):
            assert latency[stage]["n"] == 4 and 0 <= latency[stage]["p50"] <= latency[stage]["p95"], stage
        assert latency["ratio_to_floor_p50"] == round(latency["retrieval"]["p50"] / latency["floor"]["p50"], 3)
        assert latency["floor"]["p50"] > 0
        assert size["load_fresh_process"]["load_seconds"] >= 0 and "index_memory_mb" in size["load_fresh_process"]
        assert size["build"]["seconds"] > 0


def test_seeds_throughput_startup_and_incremental(tiny_bench):
    _, result = tiny_bench
    seeds = result["sizes"][0]
    assert seeds["passages"] > 5 and seeds["bare_embedder"]["passages_per_s"] > 0
    assert seeds["build"]["ratio_to_bare_embedder"] == pytest.approx(
        seeds["build"]["passages_per_s"] / seeds["bare_embedder"]["passages_per_s"], rel=0.01)
    assert seeds["startup"]["help_seconds"] > 0 and seeds["startup"]["search_cold_seconds"] > 0
    assert seeds["recall"]["exact"]
    incremental = seeds["incremental"]
    assert incremental["add_one_article"]["embedded"] > 0 and incremental["add_one_article"]["reused"] == seeds["passages"]
    assert incremental["remove_it"]["removed"] == 1 and incremental["remove_it"]["embedded"] == 0
    assert incremental["unchanged"]["up_to_date"] and incremental["unchanged"]["embedded"] == 0
    batch = seeds["batch"]
    assert batch["questions"] == 12 and batch["workers"] == Settings().threads
    assert batch["at_once"]["questions_per_s"] > 0 and batch["one_at_a_time"]["questions_per_s"] > 0
    targets = {row["target"]: row for row in result["targets"]}
    assert targets["seeds: rag batch ≥ 20 questions/s (extractive)"]["value"] == batch["at_once"]["questions_per_s"]


def test_synthetic_size_uses_the_approximate_index_and_reports_its_recall(tiny_bench):
    _, result = tiny_bench
    size = result["sizes"][1]
    assert 450 <= size["passages"] <= 800 and size["articles"] > 10
    assert size["dense"]["type"] == "ivf" and not size["recall"]["exact"]
    assert 0.5 <= size["recall"]["recall_at_10"] <= 1.0
    assert size["build"]["passages_per_s_without_embedding"] > 0
    assert size["incremental"]["add_one_article"]["reused"] == size["passages"]
    targets = {row["target"]: row for row in result["targets"]}
    assert targets["rag --help ≤ 0.5 s"]["value"] == result["sizes"][0]["startup"]["help_seconds"]
    assert targets["1M: load time ≤ 10 s"]["met"] is None, "sizes not run are marked, not guessed"


@pytest.mark.slow
def test_full_bench_meets_the_scale_targets(tmp_path):
    """The documented long run (about 20 minutes on 2 cores): `rag bench --sizes seeds,10k,100k,1m`."""
    result = run_bench(parse_sizes("seeds,10k,100k,1m"), Settings(), tmp_path / "bench", queries=100, rounds=2)
    misses = [row["target"] for row in result["targets"] if row["met"] is False]
    assert not misses, misses


def test_ann_comparison_builds_both_kinds_on_the_same_vectors():
    from types import SimpleNamespace

    from rag.eval.bench.measure import ann_comparison
    from test_index import clustered

    vectors = clustered(3000)
    index = SimpleNamespace(vectors=lambda: vectors)
    result = ann_comparison(index, clustered(50, seed=1), Settings(ann_target_recall=0.9), lambda message: None)
    assert set(result) == {"ivf", "hnsw"}
    for row in result.values():
        assert row["recall_at_10"] >= 0.8 and row["build_seconds"] >= 0 and row["megabytes"] > 0
        assert row["search_ms"]["p50"] <= row["search_ms"]["p95"]
    assert result["ivf"]["params"]["type"] == "ivf" and result["hnsw"]["params"]["type"] == "hnsw"
