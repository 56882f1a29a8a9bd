"""Evaluation results → ``eval/reports/<name>.md``, ``<name>.json`` and PNG charts.

The Markdown has one table line per configuration (XQuAD-de: separate tables
for the held-out half, the tuning half and all questions), the fusion sweep,
the answer metrics and links to the charts. The JSON holds everything except
per-question latency samples (they only feed the latency chart).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

from rag.eval.report_answers import (OWN_SETS, XQUAD_ANSWERS, ablation_section, answer_sections, calibration_chart,
                                     english_section, own_section, small_section)
from rag.eval.tables import fmt, retrieval_header, retrieval_rows, table

ANSWER_COLUMNS = [("answer_correctness", "correct"), ("citation_precision", "citation precision"),
                  ("citation_hit", "citation hit"), ("citation_validity", "citation validity"),
                  ("abstention_precision", "abstention P"), ("abstention_recall", "abstention R")]
GERMAN_SETS = (("questions_de", "German eval set over the seed articles (`eval/questions_de.jsonl`)"),
               ("questions_de_heldout", "Held-out German questions over the seeds (`eval/questions_de_heldout.jsonl`, "
                                        "written after the answerer; nobody tunes on them)"))
SPLIT_TITLES = {"heldout": "Held-out half (last 24 articles) — the numbers to quote",
                "tune": "Tuning half (first 24 articles) — weights were chosen here",
                "all": "All 48 articles"}


def _chart_name(name: str, what: str) -> str:
    return f"{name}-{what}.png"


def render_markdown(result: Mapping, name: str, charts: Sequence[str] = ()) -> str:
    """The report as Markdown."""
    s = result.get("settings", {})
    lines = [f"# Evaluation report `{name}`", "",
             f"Created {result.get('created')} at commit `{result.get('commit')}` in {result.get('seconds')} s "
             f"({'quick subset' if result.get('quick') else 'full run'}; {result.get('machine', {}).get('cpus')} CPUs).",
             "",
             "Settings: " + ", ".join(f"`{k}={v}`" for k, v in s.items()) + ".", "",
             "Retrieval is scored per *document* (an XQuAD paragraph, a seed article): the ranked list of "
             "10 passages is reduced to its documents in order of first appearance, then Recall@k, Hit@5, MRR@10 "
             "and nDCG@10 are computed with `ranx`. Latency is the wall time of one `Retriever.run` call "
             "(query embedding + FAISS + BM25 + fusion) in one warm process; `–` marks rows computed from "
             "recorded candidates (no latency of their own).", ""]
    xquad = result.get("datasets", {}).get("xquad")
    if xquad:
        lines += ["## XQuAD-de paragraph retrieval", "",
                  f"{xquad['paragraphs']} paragraphs as one-paragraph articles ({xquad['passages']} passages in "
                  f"`{xquad['index']}`), {xquad['questions']} questions; split by article "
                  f"(tune {xquad['splits'].get('tune')}, held-out {xquad['splits'].get('heldout')} questions). "
                  "Data: XQuAD (Artetxe et al. 2020), CC BY-SA 4.0, see `eval/xquad-de/LICENSE.txt`.", ""]
        for split in ("heldout", "tune", "all"):
            rows = retrieval_rows(xquad["configs"], split)
            if rows:
                title = SPLIT_TITLES[split] if not result.get("quick") else f"{split} (quick slice: 2 articles, 10 paragraphs)"
                lines += [f"### {title}", ""] + table(retrieval_header(), rows) + [""]
        notes = [f"- `{n}`: {d['note']}" for n, d in xquad["configs"].items() if d.get("note")] + \
                [f"- {n}" for n in xquad.get("notes", [])]
        if notes:
            lines += notes + [""]
        if xquad.get("answers"):
            lines += ["## XQuAD-de answers", "", XQUAD_ANSWERS, ""] + answer_sections(xquad["answers"])
            lines += english_section(xquad["answers"])
            lines += small_section(xquad["answers"])
            lines += ablation_section(xquad.get("ablation") or {}, xquad["answers"].get("extractive"))
        lines += _sweep_section(xquad.get("sweep"))
        misses = [m for m in xquad.get("misses", []) if m["split"] == "heldout"]
        if misses:
            lines += [f"### Held-out questions where `hybrid` does not rank the gold paragraph first ({len(misses)})", "",
                      "<details><summary>show</summary>", ""]
            lines += table(["question", "gold", "gold rank", "ranked first"],
                            [[m["question"].replace("|", "\\|"), f"`{m['gold']}`", fmt(m["rank"]),
                              f"`{m['top'][0]}`" if m["top"] else "–"] for m in misses])
            lines += ["", "</details>", ""]
    for key, title in GERMAN_SETS:
        german = result.get("datasets", {}).get(key)
        if not german:
            continue
        lines += [f"## {title}", "",
                  f"{german['questions']} questions ({german['answerable']} answerable) over {german['articles']} "
                  f"articles ({german['passages']} passages in `{german['index']}`). Retrieval metrics count the "
                  "answerable questions; a question with two gold articles needs both for Recall@k = 1, one for Hit@5. "
                  "Follow-up questions are asked in their standalone form.", ""]
        rows = retrieval_rows(german["configs"], "all")
        if rows:
            lines += ["### Retrieval", ""] + table(retrieval_header(), rows) + [""]
            columns = [("evidence_hit@1", "evidence hit@1"), ("evidence_hit@3", "evidence hit@3"),
                       ("evidence_hit@5", "evidence hit@5"), ("evidence_recall@5", "evidence recall@5")]
            lines += ["Passage level: does a top-k *passage* of a gold article overlap a gold evidence sentence "
                      "(hit), and what share of a question's evidence sentences do the top 5 passages cover (recall)?", ""]
            lines += table(retrieval_header(columns), retrieval_rows(german["configs"], "all", columns)) + [""]
        hybrid = german["configs"].get("hybrid", {}).get("by_type")
        if hybrid:
            lines += ["### `hybrid` by question type", ""]
            lines += table(["type", "questions", "R@5", "Hit@5", "MRR@10"],
                            [[k, str(v["questions"]), fmt(v.get("recall@5")), fmt(v.get("hit_rate@5")),
                              fmt(v.get("mrr@10"))] for k, v in hybrid.items()]) + [""]
        if german.get("answers"):
            lines += ["### Answers", "", "Correct: every gold fact (one of its variants, case-insensitive, `14,3` = `14.3`) "
                      "in a non-abstaining answer, over all answerable questions. Citation precision: citations of "
                      "answered answerable questions that point into a gold article and overlap a gold evidence "
                      "sentence. Validity: quote = article text at `[start, end)`. Abstention P/R: abstaining vs. "
                      "the unanswerable questions.", ""]
            lines += table(["answerer"] + [t for _, t in ANSWER_COLUMNS] + ["answered", "abstained"],
                            [[f"`{n}`"] + [fmt(a.get(k)) for k, _ in ANSWER_COLUMNS]
                             + [str(a.get("answered")), str(a.get("abstained"))]
                             for n, a in german["answers"].items()]) + [""]
            stage_rows = []
            for n, a in german["answers"].items():
                for stage in ("retrieval", "answer", "total"):
                    summary = a.get("stages", {}).get(stage)
                    if summary:
                        stage_rows.append([f"`{n}`", stage, fmt(summary.get("p50_ms"), 1), fmt(summary.get("p95_ms"), 1),
                                           fmt(summary.get("mean_ms"), 1)])
            if stage_rows:
                lines += ["Latency per stage (retrieval = query embedding + search + fusion; answer = sentence "
                          "selection / generation):", ""]
                lines += table(["answerer", "stage", "p50 ms", "p95 ms", "mean ms"], stage_rows) + [""]
        lines += answer_sections(german.get("answers", {}))
        lines += ablation_section(german.get("ablation") or {}, german.get("answers", {}).get("extractive"))
        if german.get("notes"):
            lines += [f"- {n}" for n in german["notes"]] + [""]
    for key, data in result.get("datasets", {}).items():
        if key in OWN_SETS:
            lines += own_section(key, data)
    if charts:
        lines += ["## Charts", ""] + [f"![{Path(c).stem}]({Path(c).name})" for c in charts] + [""]
    return "\n".join(lines)


def _sweep_section(sweep: Mapping | None) -> list[str]:
    if not sweep:
        return []
    chosen = sweep["chosen"]
    lines = ["### Fusion sweep (chosen on the tuning half, reported on the held-out half)", "",
             "Coordinate-wise: each parameter in turn, the others at their best so far; the best value by "
             f"({', '.join(sweep['selection'])}) on the tuning half replaces the current one only if it gains at least "
             f"{sweep.get('min_gain', 0)} {sweep['selection'][0]} (smaller gains are a question or two: noise). "
             "Defaults: " + ", ".join(f"`{k}={v}`" for k, v in sweep["defaults"].items()) + "; chosen: "
             + ", ".join(f"**`{k}={v}`**" for k, v in chosen.items()) + ".", ""]
    for parameter in sweep["grid"]:
        points = [p for p in sweep["points"] if p["parameter"] == parameter]
        rows = []
        for p in points:
            mark = " ◀" if p["value"] == chosen[parameter] else ""
            rows.append([f"{p['value']}{mark}", fmt(p["tune"]["recall@1"]), fmt(p["tune"]["recall@5"]),
                         fmt(p["tune"]["mrr@10"]), fmt(p["heldout"]["recall@1"]), fmt(p["heldout"]["recall@5"]),
                         fmt(p["heldout"]["mrr@10"])])
        lines += [f"`{parameter}`:", ""] + table([parameter, "tune R@1", "tune R@5", "tune MRR@10", "held-out R@1",
                                                    "held-out R@5", "held-out MRR@10"], rows) + [""]
    tuned = sweep.get("tuned", {}).get("heldout")
    if tuned:
        lines += [f"Chosen setting on the held-out half: R@1 {fmt(tuned['recall@1'])}, R@5 {fmt(tuned['recall@5'])}, "
                  f"MRR@10 {fmt(tuned['mrr@10'])}.", ""]
    return lines


def write_charts(result: Mapping, folder: Path, name: str) -> list[Path]:
    """Metric-per-configuration bars for each dataset, the latency distribution, the weight sweep, the reliability
    of ``confidence``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    written: list[Path] = []
    datasets = result.get("datasets", {})
    panels = []
    if "xquad" in datasets:
        panels.append(("XQuAD-de held-out", datasets["xquad"]["configs"], "heldout"))
    if "questions_de" in datasets:
        panels.append(("questions_de (seeds)", datasets["questions_de"]["configs"], "all"))
    panels += [(f"{key} (your data)", datasets[key]["configs"], "all") for key in ("own", "squad")
               if datasets.get(key, {}).get("configs")]
    if panels:
        metrics = [("recall@1", "R@1"), ("recall@5", "R@5"), ("mrr@10", "MRR@10"), ("ndcg@10", "nDCG@10")]
        fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), squeeze=False)
        for ax, (title, configs, split) in zip(axes[0], panels):
            names = [n for n, d in configs.items() if d.get(split)]
            width = 0.8 / len(metrics)
            x = np.arange(len(names))
            for i, (key, label) in enumerate(metrics):
                values = [configs[n][split].get(key) or 0.0 for n in names]
                bars = ax.bar(x + (i - (len(metrics) - 1) / 2) * width, values, width, label=label)
                if key == "recall@1":
                    ax.bar_label(bars, fmt="%.3f", fontsize=7, rotation=90, padding=2)
            ax.set_xticks(x, names, rotation=20, ha="right")
            low = min([configs[n][split].get("recall@1") or 1.0 for n in names] + [1.0])
            ax.set_ylim(max(0.0, low - 0.15), 1.02)
            ax.set_title(title)
            ax.grid(axis="y", alpha=0.3)
        axes[0][0].legend(loc="lower left", fontsize=8)
        fig.tight_layout()
        path = folder / _chart_name(name, "metrics")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    series = [(f"{ds}\n{cfg}", np.asarray(v) * 1000) for ds, data in datasets.items()
              for cfg, v in data.get("_samples", {}).items() if len(v)]
    if series:
        fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(series)), 4.2))
        ax.boxplot([s for _, s in series], whis=(5, 95), showfliers=False)
        ax.set_xticks(range(1, len(series) + 1), [label for label, _ in series], fontsize=7)
        ax.set_yscale("log")
        ax.set_ylabel("ms per question (log)")
        ax.set_title("Latency per question (box: p25–p75, whiskers: p5–p95)")
        for i, (_, s) in enumerate(series, start=1):
            p50, p95 = np.percentile(s, 50), np.percentile(s, 95)
            ax.annotate(f"p50 {p50:.{1 if p50 < 10 else 0}f}\np95 {p95:.{1 if p95 < 10 else 0}f}", (i, p95),
                        textcoords="offset points", xytext=(0, 4), ha="center", fontsize=6)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        path = folder / _chart_name(name, "latency")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    sweep = datasets.get("xquad", {}).get("sweep")
    if sweep:
        points = [p for p in sweep["points"] if p["parameter"] == "dense_weight"]
        if points:
            fig, ax = plt.subplots(figsize=(6.5, 4.0))
            w = [p["value"] for p in points]
            for split, style in (("tune", "-"), ("heldout", "--")):
                ax.plot(w, [p[split]["recall@1"] for p in points], style, marker="o", ms=3, label=f"R@1 {split}")
                ax.plot(w, [p[split]["mrr@10"] for p in points], style, marker="s", ms=3, label=f"MRR@10 {split}")
            ax.axvline(sweep["chosen"]["dense_weight"], color="grey", lw=0.8)
            ax.set_xlabel("dense weight (z-score fusion; 0 = BM25 only, 1 = dense only)")
            ax.set_title("XQuAD-de: fusion weight sweep")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
            fig.tight_layout()
            path = folder / _chart_name(name, "sweep")
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written.append(path)
    calibration = calibration_chart(result, folder / _chart_name(name, "calibration"))
    return written + ([calibration] if calibration else [])


def _public(value):
    """The result without private keys (``_samples``)."""
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list):
        return [_public(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_report(result: Mapping, folder: Path, name: str, charts: bool = True) -> dict[str, Path]:
    """Write ``<name>.md``, ``<name>.json`` and the charts into ``folder``; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    images = write_charts(result, folder, name) if charts else []
    md = folder / f"{name}.md"
    js = folder / f"{name}.json"
    md.write_text(render_markdown(result, name, images), encoding="utf-8")
    js.write_text(json.dumps(_public(result), indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return {"markdown": md, "json": js, **{p.stem.rsplit("-", 1)[-1]: p for p in images}}
