"""The chat app's logic, independent of Gradio: load, answer (streaming), follow-ups, uploads, status.

``ui/app.py`` only wires Gradio components to a ``ChatEngine``. One engine is
shared by all browser sessions; everything per user (history, settings)
is passed in by the caller, so sessions cannot see each other's state.

Threading: Gradio runs several events at once. Retrieval and extractive
answering call the native embedding engine, which is serialised by a lock
(a query takes ~10 ms); a generated answer streams outside that lock (the language
models are ``ui.models``). Uploads (``ui.uploads``) wait in a queue and are re-indexed in its background
thread, smallest first, then the new index is swapped in with one assignment;
questions already running finish on the index they started with.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from rag.errors import RagError
from rag.index.dates import DateRange
from rag.answer.followup import LLMRewriter, Rewrite, rewrite
from ui.render import answer_html, article_list_html, error_html, loading_html, status_html
from rag.lang.de import dated_question, looks_english
from rag.progress import build_percent
from rag.schema import Answer
from rag.settings import Settings
from rag.ingest.uploads import uploads_dir
from ui.models import ChatModels, Generator, SettingProblem
from ui.uploads import ChatUploads

if TYPE_CHECKING:  # rag.answer.answering loads on first use, not at import
    from rag.answer.answering import Selection

log = logging.getLogger("ui.chat")

EXAMPLES = [
    "Wie viel investiert Meta 2026?",
    "Wie unterscheiden sich die KI-Investitionen von Meta und Microsoft?",
    "How much does Meta plan to invest in 2026?",
]
ANSWERERS = {
    "extractive": "Extraktiv (wörtliche Zitate, sofort)",
    "llm": "Lokales Sprachmodell (Qwen2.5 1.5B)",
    "server": "Sprachmodell-Server (OpenAI-kompatibel)",
}
INTERNAL_ERROR = ("Entschuldigung, bei dieser Frage ist ein interner Fehler aufgetreten. Bitte versuchen Sie es noch "
                  "einmal oder formulieren Sie die Frage anders.")


@dataclass
class Options:
    """One session's settings panel."""

    answerer: str = "extractive"
    passages: int = 5
    show_uncited: bool = False
    server_url: str = ""
    since: str = ""  # the date range of the articles to answer from, YYYY-MM-DD (empty: open)
    until: str = ""

    def dates(self) -> DateRange | None:
        """The session's date range; a malformed one is a German sentence for the chat."""
        try:
            return DateRange.parse(self.since or None, self.until or None)
        except RagError:
            raise RagError("Der Datumsbereich ist ungültig: bitte Tage als JJJJ-MM-TT angeben, „ab“ nicht nach "
                           "„bis“.") from None


@dataclass
class Update:
    """One step of a streamed reply: the assistant message as HTML and, at the end, the answer behind it."""

    html: str
    answer: Answer | None = None
    standalone: str | None = None
    done: bool = False
    error: bool = False


@dataclass
class Status:
    articles: int
    passages: int
    embedder: str
    answerer: str
    uploads: int
    llm_available: bool
    loaded_seconds: float = 0.0
    uploaded_ids: list[str] = field(default_factory=list)
    newest: str | None = None

    def html(self) -> str:
        return status_html(self.articles, self.passages, self.newest, self.embedder, self.answerer, self.uploads)


_STAGES = {"article": "Artikel gelesen", "passage": "Passagen eingebettet", "sentence": "Sätze eingebettet"}


@dataclass(frozen=True)
class Loading:
    """Where loading stands: a percentage and what is happening, for the header and the waiting chat bubble."""

    percent: int
    detail: str

    def html(self) -> str:
        return loading_html(self.percent, self.detail)

    def message(self) -> str:
        return f"Der Index wird aufgebaut ({self.percent} %) – die Antwort folgt"


def friendly(err: BaseException) -> str:
    """A user-facing German sentence for an error; internals are logged, never shown."""
    if isinstance(err, RagError):
        return f"Das hat nicht geklappt: {err}"
    return INTERNAL_ERROR


class ChatEngine:
    """Everything the chat needs, loaded once: retriever, answerers, optional generator."""

    def __init__(self, settings: Settings, say: Callable[[str], None] = lambda m: None,
                 generators: Callable[[Settings, Callable[[str], None]], Generator] | None = None,
                 source: Path | None = None) -> None:
        self.settings = settings
        self.source = source                # articles to build a missing index from (None: only the default index)
        self._loading = Loading(0, "Artikel werden geladen …")
        self._articles_read = 0
        self._newest: str | None = None
        self.say = say
        self.retriever = None
        self._answerers: dict[int, object] = {}
        self._native = threading.Lock()     # the embedding engine is not re-entrant
        self._swap = threading.Lock()       # installing a new index
        self._ready = threading.Event()
        self._uploaded: list[str] = []
        self.models = ChatModels(settings, say, generators)
        self._load_error: BaseException | None = None
        self.loaded_seconds = 0.0
        self.uploads = ChatUploads(self, friendly)

    # ---- loading -------------------------------------------------------------------------------------------

    def load(self) -> "ChatEngine":
        """Open (building if absent) the index, add pending uploads, warm up. Safe to run in a thread."""
        started = time.perf_counter()
        try:
            from rag.pipeline import open_retriever

            retriever = open_retriever(self.settings, log=self.say, build_from=self.source, listener=self._on_progress)
            self._loading = Loading(97, "Index wird geladen …")
            retriever = self.uploads.add_pending(retriever)
            self.install(retriever)
            self.loaded_seconds = time.perf_counter() - started
            self.uploads.resume()
        except BaseException as err:
            self._load_error = err
            raise
        finally:
            self._ready.set()
        return self

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        """The build's listener (``rag.progress``): turn a step into the overall percentage and a German line."""
        percent, label = build_percent(stage, done, total), _STAGES.get(stage)
        if percent is None or not label:
            return
        if stage == "article":
            self._articles_read = total
        step = f"{label}: {done} von {total}" if stage != "article" else f"{total} {label}"
        articles = f"{self._articles_read} Artikel gelesen · " if stage != "article" and self._articles_read else ""
        self._loading = Loading(percent, f"Der Index wird aufgebaut: {articles}{step}")

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def loading(self) -> Loading | None:
        """Where loading stands, or None once the engine is ready."""
        return None if self._ready.is_set() else self._loading

    def _until_ready(self, timeout: float = 600.0, every: float = 1.0) -> Iterator[Loading]:
        """While loading: the state at once, then every ``every`` seconds; ends when ready (or times out)."""
        deadline = time.monotonic() + timeout
        while not self._ready.is_set():
            yield self._loading
            if time.monotonic() > deadline:
                raise RagError("Die Artikel werden noch geladen; bitte einen Moment Geduld.")
            self._ready.wait(every)

    def wait(self, timeout: float | None = None) -> None:
        """Block until ``load`` has finished (in another thread); re-raise its error."""
        if not self._ready.wait(timeout):
            raise RagError("Die Artikel werden noch geladen; bitte einen Moment Geduld.")
        if isinstance(self._load_error, RagError):
            raise self._load_error
        if self._load_error is not None:
            raise RagError(f"The articles could not be loaded ({type(self._load_error).__name__}: {self._load_error}).")

    def reopen(self, retriever):
        """A retriever on the index as it is on disk now (after a build), sharing the models of ``retriever``."""
        from rag.index.store import load_index
        from rag.retrieve.retrieval import Retriever

        fresh = Retriever(load_index(self.settings.index_dir, retriever.embedder.model_id), retriever.embedder,
                          self.settings, reranker=retriever.reranker, store=retriever.store)
        with self._native:
            fresh.warm_up()
        return fresh

    def install(self, retriever) -> None:
        """Use ``retriever`` from now on (also: hand the engine a retriever that is already loaded)."""
        from rag.answer.answering import ExtractiveAnswerer

        answerer = ExtractiveAnswerer(retriever, self.settings)
        with self._native:
            answerer.warm_up()
        folder = uploads_dir(self.settings.index_dir).resolve()
        uploaded = sorted(a.doc_id for a in retriever.index.articles.values() if Path(a.source).parent.resolve() == folder)
        newest = max((a.date for a in retriever.index.articles.values() if a.date), default=None)
        with self._swap:
            self.retriever = retriever
            self._answerers = {self.settings.answer_passages: answerer}
            self._uploaded = uploaded
            self._newest = newest
        self._ready.set()

    def warm_caches(self, questions: Sequence[str] = EXAMPLES) -> None:
        """Answer the example questions once (in the background after start) so first answers are fast."""
        for question in questions:
            try:
                self.extractive(question)
            except Exception:  # warming is best effort
                log.debug("warm-up question failed", exc_info=True)

    # ---- state ---------------------------------------------------------------------------------------------

    @property
    def index(self):
        return self.retriever.index

    def answerer(self, passages: int | None = None):
        """The extractive answerer for a number of passages (one per distinct setting, created on first use)."""
        from rag.answer.answering import ExtractiveAnswerer

        passages = passages or self.settings.answer_passages
        with self._swap:
            retriever, answerers = self.retriever, self._answerers
            found = answerers.get(passages)
        if found is None:
            found = ExtractiveAnswerer(retriever, self.settings.model_copy(update={"answer_passages": passages}))
            with self._native:
                found.warm_up()
            with self._swap:
                if self.retriever is retriever:
                    self._answerers[passages] = found
        return found

    def uploaded_ids(self) -> list[str]:
        """Ids of the loaded articles that came from the uploads folder."""
        return list(self._uploaded)

    def status(self) -> Status:
        self.wait()
        index = self.index
        return Status(len(index.articles), len(index.chunks), index.params["embedder"]["id"],
                      ANSWERERS.get(self.settings.answerer, self.settings.answerer), len(self.uploaded_ids()),
                      self.models.available(), self.loaded_seconds, self.uploaded_ids(), self._newest)

    def articles_html(self, limit: int = 300) -> str:
        """The loaded articles (newest first; at most ``limit``, uploads always included)."""
        self.wait()
        articles = self.index.articles
        uploaded = self.uploaded_ids()
        ids = sorted(articles, key=lambda i: (i in uploaded, articles[i].date or "", i), reverse=True)[:limit]
        more = len(articles) - len(ids)
        listing = article_list_html([articles[i] for i in ids], ids, uploaded)
        return listing + (f"<div class='rag-hint'>… und {more} weitere</div>" if more > 0 else "")

    # ---- answering -----------------------------------------------------------------------------------------

    def check_question(self, question: str) -> str:
        """The question, stripped; anything that is not a usable question is one German sentence."""
        if question is not None and not isinstance(question, str):
            raise RagError("Die Frage muss ein Text sein.")
        question = (question or "").strip()
        try:
            question.encode("utf-8")
        except UnicodeEncodeError as err:
            raise RagError(f"Die Frage enthält an Stelle {err.start + 1} ein ungültiges Zeichen (kein gültiges "
                           f"Unicode).") from None
        if not question:
            raise RagError("Bitte eine Frage eingeben.")
        if len(question) > self.settings.max_question_chars:
            raise RagError(f"Die Frage ist zu lang ({len(question)} Zeichen, höchstens "
                           f"{self.settings.max_question_chars}).")
        return question

    def extractive(self, question: str, passages: int | None = None, dates: DateRange | None = None
                   ) -> tuple[Answer, list, Selection]:
        """The extractive answer, the retrieval behind it, and the sentence selection it was composed from (a
        language model writes from the same selection, so it is made once)."""
        from rag.answer.answering import compose

        answerer = self.answerer(passages)
        with self._native:
            hits = answerer.retriever.run(question, k=max(self.settings.top_k, passages or 0), dates=dates)
            selection = answerer.select(question, hits)
        return compose(None, question, selection, hits, answerer.settings.abstain_sources), hits, selection

    def answer(self, question: str, id: str | None = None) -> Answer:
        """The answer object for one standalone question with the default answerer (the `/answer` API)."""
        self.wait()
        question = self.check_question(question)
        answer, hits, selection = self.extractive(question)
        if self.settings.answerer != "extractive":
            final = None
            for _, partial in self.models.generate(question, hits, selection, answer, self.settings.answerer):
                final = partial or final
            answer = final or answer
        answer.id = id
        return answer

    def rewrite(self, question: str, previous: Sequence[str], options: Options, model: bool = False) -> Rewrite:
        """The standalone question: by the rules, or (``model``) by the session's language model when it has one
        (the model is asked only for follow-ups and falls back to the rules)."""
        llm = None
        if model and options.answerer in ("llm", "server") and previous:
            complete = self.models.completer(options.answerer, options.server_url)
            llm = LLMRewriter(complete) if complete is not None else None
        return rewrite(question, list(previous), llm)

    def reading(self, turn: Rewrite) -> tuple[str, str, str] | None:
        """What the reply shows under "Verstanden als": a follow-up made standalone, and the year a question's
        "dieses Jahr" or "letztes Jahr" was read as (``rag.lang.de.dated_question``, as retrieval reads it);
        None when the question was read as typed."""
        dated = dated_question(turn.standalone, self.settings.reference_day())
        if dated != turn.standalone:
            return turn.question, dated, turn.method if turn.changed else "date"
        return (turn.question, turn.standalone, turn.method) if turn.changed else None

    def chat(self, question: str, previous: Sequence[str] = (), options: Options | None = None) -> Iterator[Update]:
        """One reply, as a stream of updates: the rule-based rewrite and the extractive answer at once; then, with a
        language model, the model's rewrite of a follow-up (re-retrieving when it differs) and the generated answer
        replacing the extractive one as it streams. Errors end the stream as a friendly message."""
        options = options or Options()
        uid = uuid.uuid4().hex[:10]
        try:
            question = self.check_question(question)
            for state in self._until_ready():  # the first start: the question waits, visibly, for the index
                yield Update(answer_html(None, uid, status=state.message(), progress=state.percent))
            self.wait(timeout=0)
            english = looks_english(question)
            turn = self.rewrite(question, previous, options)
            note = self.reading(turn)
            yield Update(answer_html(None, uid, rewrite=note, status="Suche in den Artikeln …"), standalone=turn.standalone)
            answer, hits, selection = self.extractive(turn.standalone, options.passages, options.dates())
            articles = self.index.articles
            if options.answerer == "extractive":
                yield Update(answer_html(answer, uid, articles, rewrite=note, show_uncited=options.show_uncited,
                                         english=english), answer, turn.standalone, done=True)
                return
            yield Update(answer_html(answer, uid, articles, rewrite=note, show_uncited=options.show_uncited,
                                     status=self.models.status(options.answerer)), answer, turn.standalone)
            if turn.changed:  # a follow-up: the model may understand it better than the rules
                better = self.rewrite(question, previous, options, model=True)
                if better.standalone != turn.standalone:
                    turn = better
                    note = self.reading(turn)
                    answer, hits, selection = self.extractive(turn.standalone, options.passages, options.dates())
                    yield Update(answer_html(answer, uid, articles, rewrite=note, show_uncited=options.show_uncited,
                                             status=self.models.status(options.answerer)), answer, turn.standalone)
            final, text = None, ""
            try:
                for text, partial in self.models.generate(turn.standalone, hits, selection, answer, options.answerer,
                                                          options.server_url):
                    if partial is not None:
                        final = partial
                        continue
                    yield Update(answer_html(None, uid, articles, text=text, rewrite=note,
                                             status="Sprachmodell schreibt …"), answer, turn.standalone)
            except Exception as err:  # the extractive answer stands; say why the model did not answer
                if isinstance(err, RagError):  # e.g. the server is not reachable: for the log, not the reader
                    log.warning("the language model did not answer %r: %s", turn.standalone, err)
                else:
                    log.exception("generating an answer to %r failed", turn.standalone)
                yield Update(answer_html(answer, uid, articles, rewrite=note, show_uncited=options.show_uncited,
                                         note=f"{err} Hier die Antwort aus den Artikeln (wörtliche Zitate)."
                                         if isinstance(err, SettingProblem) else "Das Sprachmodell hat nicht "
                                         "geantwortet; hier die Antwort aus den Artikeln (wörtliche Zitate).",
                                         english=english),
                             answer, turn.standalone, done=True)
                return
            final = final or answer
            reason = getattr(final, "fallback_reason", None)
            yield Update(answer_html(final, uid, articles, rewrite=note, show_uncited=options.show_uncited,
                                     note=f"{reason} Angezeigt wird die extraktive Antwort." if reason else None,
                                     english=english), final, turn.standalone, done=True)
        except Exception as err:  # the chat shows a friendly sentence; the traceback goes to the server log only
            if not isinstance(err, RagError):
                log.exception("answering %r failed", question)
            yield Update(error_html(friendly(err)), done=True, error=True)
