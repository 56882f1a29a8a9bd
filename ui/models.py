"""The chat's language models: the local model or an OpenAI-compatible server, as each session chooses.

Why apart from the engine (``ui.chat``): a model is optional and slow to load, and a server URL typed in the
browser must be checked before anything is sent to it. This part creates one generator per choice (answerer and
server URL), loads the local model in the background, lets the local model answer one question at a time (two
cores; servers handle their own queue), and streams a generated answer written from the extractive answerer's
sentences (``rag.answer.answering.generate``), exactly as ``rag eval`` measures it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING, Callable, Iterator, Protocol, Sequence

from rag.errors import RagError
from rag.schema import Answer
from rag.settings import Settings

if TYPE_CHECKING:  # rag.answer.answering loads on first use, not at import
    from rag.answer.answering import Selection

log = logging.getLogger("ui.chat")


class SettingProblem(RagError):
    """A chat setting the user can fix (server URL missing or refused): shown in the chat as written (German).
    Other errors of the language-model path (server down, …) are logged; the chat says only that it did not answer."""


class Generator(Protocol):
    """What the chat uses of ``rag.answer.generation.Generator``.

    ``stream(question, hits, fallback=...)`` yields the answer text in pieces as the model writes it and, last,
    the final ``Answer`` (checked against the passages; ``fallback()`` when the check fails); ``complete(messages)``
    returns one chat completion (used to rewrite follow-up questions); ``warm_up()`` loads the model."""

    def stream(self, question: str, hits: Sequence, fallback: Callable[[], Answer] | None = None) -> Iterator[str | Answer]: ...

    def complete(self, messages: list[dict]) -> str: ...

    def warm_up(self) -> None: ...


def default_generator(settings: Settings, log: Callable[[str], None] = lambda m: None) -> Generator:
    """``rag.answer.generation.make_generator``: the local model or a server, as ``settings.answerer`` says."""
    try:
        from rag.answer.generation import make_generator
    except ImportError:
        raise RagError("Antworten mit einem Sprachmodell sind in dieser Installation nicht verfügbar") from None
    return make_generator(settings, log)


class ChatModels:
    """The language models of one chat app; ``generators(settings, say)`` makes one (tests pass a fake)."""

    def __init__(self, settings: Settings, say: Callable[[str], None] = lambda m: None,
                 generators: Callable[[Settings, Callable[[str], None]], Generator] | None = None) -> None:
        self.settings = settings
        self.say = say
        self._generators: dict[tuple, Generator] = {}
        self._make_generator = generators or default_generator
        self._made = threading.Lock()       # the table of generators
        self._local_model = threading.Lock()
        self._warm: set[str] = set()        # answerers whose model has been loaded
        self.allow_server_urls = True       # serve() turns this off when the app listens beyond loopback

    def available(self) -> bool:
        """Whether the local model can run here (its packages are installed); asks ``rag.answer.generation``."""
        try:
            from rag.answer import generation
        except ImportError:
            return False
        check = getattr(generation, "local_available", None)
        try:
            return bool(check(self.settings)) if check is not None else False
        except Exception:
            log.debug("local model check failed", exc_info=True)
            return False

    def generator(self, answerer: str, server_url: str = "") -> Generator:
        """The generator for a session's choice (local model or server URL), created once per choice."""
        url = (server_url or self.settings.llm_url or "").strip() or None
        key = (answerer, url if answerer == "server" else None)
        with self._made:
            found = self._generators.get(key)
        if found is None:
            update: dict = {"answerer": answerer, "llm_url": url}
            if answerer == "server":
                if not url:
                    raise SettingProblem("Bitte unter Einstellungen die URL des Sprachmodell-Servers angeben.")
                if url != self.settings.llm_url:
                    self._check_server_url(url)
                    update["llm_api_key_env"] = "RAG_CHAT_NO_API_KEY"  # the configured key goes to its own server only
            settings = self.settings.model_copy(update=update)
            found = self._make_generator(settings, self.say)
            with self._made:
                self._generators[key] = found
        return found

    def warm_up(self) -> None:
        """Load the local model in the background when it is the default answerer (a minute on first use)."""
        if self.settings.answerer != "llm" or not self.available():
            return
        try:
            generator = self.generator("llm")
            with self._local_model:
                generator.warm_up()
                self._warm.add("llm")
        except Exception:
            log.warning("the local model could not be loaded", exc_info=True)

    def status(self, answerer: str) -> str:
        """The line under the extractive answer while a model works: the local model's first load takes up to a
        minute, so the first answer says so."""
        if answerer == "llm" and "llm" not in self._warm:
            return ("Sprachmodell formuliert eine Antwort … (das lokale Modell wird zuerst geladen, einmalig bis zu "
                    "einer Minute)")
        return "Sprachmodell formuliert eine Antwort …"

    def _check_server_url(self, url: str) -> None:
        """A server URL typed in the browser: http(s) only, and on a shared app (not bound to loopback) only the
        configured one, so the app cannot be used to send requests into its network."""
        from urllib.parse import urlparse

        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise SettingProblem("Die Server-URL muss mit http:// oder https:// beginnen, z. B. "
                                 "http://127.0.0.1:8080/v1.")
        if not self.allow_server_urls:
            raise SettingProblem("Diese App ist freigegeben; sie nutzt nur den beim Start eingestellten "
                                 "Sprachmodell-Server (RAG_LLM_URL).")

    def completer(self, answerer: str, server_url: str = "") -> Callable[[list[dict]], str] | None:
        """``messages -> text`` with the chosen model, for rewriting follow-ups; None when there is none."""
        try:
            generator = self.generator(answerer, server_url)
        except Exception:
            return None
        complete = getattr(generator, "complete", None)
        if complete is None:
            return None
        if answerer != "llm":
            return complete

        def serialised(messages: list[dict]) -> str:
            with self._local_model:
                return complete(messages)

        return serialised

    def generate(self, question: str, hits: list, selection: Selection, extractive: Answer, answerer: str,
                 server_url: str = "") -> Iterator[tuple[str, Answer | None]]:
        """The generated answer: ``(text so far, None)`` as tokens arrive, then ``("", final answer)``. The model
        gets the extractive answerer's sentences (``selection``) and must keep their figures, exactly as
        ``rag eval`` measures."""
        from rag.answer.answering import generate

        generator = self.generator(answerer, server_url)
        lock = self._local_model if answerer == "llm" else contextlib.nullcontext()
        text = ""
        with lock:  # the local model answers one question at a time (2 cores); servers handle their own queue
            generator.warm_up()
            self._warm.add(answerer)
            for piece in generate(generator, selection, question, hits, lambda: extractive):
                if isinstance(piece, Answer):
                    yield "", piece
                    continue
                piece = str(piece)
                text = piece if text and piece.startswith(text) else text + piece  # pieces or the text so far
                yield text, None
