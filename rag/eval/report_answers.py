"""The answer part of the evaluation report: metric tables, the worst failures, a user's own data, calibration.

``rag.eval.report`` calls these for every dataset that has answers; the measures are defined in
``rag.eval.answers`` (the table's header line repeats the definitions a reader needs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from rag.eval.tables import fmt, retrieval_header, retrieval_rows, table

OWN_SETS = ("own", "squad")
COLUMNS = [("contains_gold", "contains gold"), ("short_exact", "short EM"), ("short_f1", "short F1"),
           ("short_correct", "short correct"), ("short_verbatim", "short verbatim"), ("gold_citation", "gold citation"), ("abstention", "abstention"),
           ("false_abstention", "false abstention"), ("ece", "ECE"), ("removed_declined", "removed declined"),
           ("ece_incl_removed", "ECE incl. removed"), ("near_declined", "near-miss declined"),
           ("missing_declined", "missing-paragraph declined")]
DEFINITIONS = (
    "*Contains gold*: the answer holds every gold fact (answerable questions; a declined one is wrong). "
    "*Short EM/F1*: SQuAD's exact match and token F1 of `short_answer` against the gold spans (German "
    "normalisation: lower case, no punctuation, no articles; a missing short answer scores 0). *Short correct*: "
    "the short answer holds every gold fact; *short verbatim*: it is a substring of a cited quote. *Gold citation*: answered and citing a gold article. *Abstention*: "
    "unanswerable questions declined; *false abstention*: answerable ones declined. *ECE*: expected calibration "
    "error of `confidence` over the answered questions (10 bins). `–`: not measured (e.g. the answerer gives no "
    "`short_answer`/`confidence`).")
XQUAD_ANSWERS = (
    "Held-out half (articles 25–48, nothing tuned there), retrieval over all 240 paragraphs, each question through "
    "the answerer `make_answerer` builds. *Removed declined*: the paragraphs of articles 37–48 are removed from a "
    "second index (a copy of the first, updated incrementally) and their questions asked there; declining is the "
    "right response. False abstention is measured on the full index. *Near-miss declined*: each held-out question "
    "with one specific term swapped for one its gold article does not hold (a year moved by a few years, or its "
    "rarest capitalised word replaced by one from another article; `rag.eval.near_misses`), asked over the full "
    "index; declining is the right response. *Missing-paragraph declined* (the extractive answerer): a third index "
    "leaves out the second and fourth paragraph of every article, and the held-out questions of those paragraphs "
    "whose answer no other paragraph of the article holds are asked there: the topic, names and words are indexed, "
    "only the fact is missing, as when a user asks what the articles do not say (a floor: a few are answered in "
    "other words by a kept paragraph).")


def _cell(text: str | None, limit: int = 90) -> str:
    text = " ".join(str(text or "").split())
    text = text if len(text) <= limit else text[:limit - 1] + "…"
    return text.replace("|", "\\|")


def answer_sections(answers: Mapping[str, Mapping], intro: str = "") -> list[str]:
    """The answer metrics of every answerer, then each answerer's worst failures."""
    if not answers:
        return []
    columns = [(k, t) for k, t in COLUMNS if any(a.get(k) is not None for a in answers.values())]
    lines = ["### Answer metrics", ""] + ([intro, ""] if intro else []) + [DEFINITIONS, ""]
    lines += table(["answerer", "answerable + unanswerable (+ removed)"] + [t for _, t in columns] + ["calibrated"],
                    [[f"`{n}`", f"{a.get('answerable')} + {a.get('unanswerable')}"
                      + (f" (+ {a['removed_questions']})" if a.get("removed_questions") else "")]
                     + [fmt(a.get(k)) for k, _ in columns] + [str(a.get("calibrated", "–"))]
                     for n, a in answers.items()]) + [""]
    for name, a in answers.items():
        if a.get("failures_by_reason"):
            lines += [f"`{name}` failures by reason: " + ", ".join(f"{r} {n}" for r, n in a["failures_by_reason"].items())
                      + ".", ""]
        lines += worst_table(a.get("worst") or [], f"`{name}`: worst {len(a.get('worst') or [])} failures")
        lines += worst_table(a.get("removed_worst") or [], f"`{name}`: removed-article questions answered anyway "
                             f"(most confident {len(a.get('removed_worst') or [])})")
        lines += worst_table(a.get("near_worst") or [], f"`{name}`: near-miss questions answered anyway "
                             f"(most confident {len(a.get('near_worst') or [])})")
        lines += worst_table(a.get("missing_worst") or [], f"`{name}`: missing-paragraph questions answered anyway "
                             f"(most confident {len(a.get('missing_worst') or [])})")
    return lines


ENGLISH = (
    "The same held-out questions asked in English (translated by the local model, `eval/xquad-de/questions_en.jsonl`; "
    "`rag translate-questions`) over the same German paragraphs; *removed declined*: those of the removed articles, "
    "asked over the reduced index. Users ask German articles in English too, and such a question shares hardly a "
    "word with its answer.")


def english_section(answers: Mapping[str, Mapping]) -> list[str]:
    """XQuAD-de's held-out half asked in English, beside the German questions."""
    rows = [(n, a) for n, a in answers.items() if a.get("english")]
    if not rows:
        return []
    keys = [("recall@1", "R@1"), ("mrr@10", "MRR@10"), ("contains_gold", "contains gold"), ("short_exact", "short EM"), ("short_f1", "short F1"),
            ("gold_citation", "gold citation"), ("false_abstention", "false abstention"), ("ece", "ECE"),
            ("removed_declined", "removed declined")]
    lines = ["### Asked in English", "", ENGLISH, ""]
    lines += table(["answerer", "asked in", "questions"] + [t for _, t in keys],
                   [row for n, a in rows for row in (
                       [f"`{n}`", "German", str(a.get("answerable"))]
                       + [fmt((a.get("retrieval") or {}).get(k) if k in ("recall@1", "mrr@10") else a.get(k))
                          for k, _ in keys],
                       [f"`{n}`", "English", str(a["english"].get("questions"))]
                       + [fmt(a["english"].get(k)) for k, _ in keys])]) + [""]
    return lines


SMALL = (
    "Each held-out article alone in an index of its own (its 5 paragraphs: the size of a user's folder of a few short "
    "articles), asked its own questions and, as unanswerable ones, those of the next held-out article (that folder "
    "does not hold them) by the extractive answerer. *Declined*: the other article's questions declined; *ECE*: "
    "over the answers to both.")


def small_section(answers: Mapping[str, Mapping]) -> list[str]:
    """XQuAD-de's held-out articles one per index, as a user's small folder."""
    a = answers.get("extractive") or {}
    if a.get("small_questions") is None:
        return []
    low, high = a["small_passages"]
    lines = ["### Small folders: one article per index", "", SMALL, ""]
    return lines + table(["answerer", "indexes", "passages each", "answerable + unanswerable", "contains gold",
                          "false abstention", "declined", "ECE"],
                         [["`extractive`", str(a["small_folders"]), f"{low}–{high}",
                           f"{a['small_questions']} + {a['small_unanswerable']}", fmt(a["small_contains_gold"]),
                           fmt(a["small_false_abstention"]), fmt(a["small_declined"]), fmt(a["small_ece"])]]) + [""]


ABLATION_COLUMNS = [("contains_gold", "contains gold"), ("answer_correctness", "correct"), ("short_f1", "short F1"),
                    ("gold_citation", "gold citation"), ("citation_precision", "citation precision"),
                    ("quoted_chars", "characters quoted per answer")]


def ablation_section(ablation: Mapping[str, Mapping], full: Mapping | None) -> list[str]:
    """The extractive answerer with all its composition rules, then with each one switched off (`rag eval
    --ablate`): a rule stays only where it helps on XQuAD-de's held-out half as well as on the German sets."""
    if not ablation:
        return []
    from rag.answer.answering import RULES

    rows = ([("all rules", full)] if full else []) + [(f"without `{rule}`", ablation[rule]) for rule in ablation]
    columns = [(k, t) for k, t in ABLATION_COLUMNS if any(r.get(k) is not None for _, r in rows)]
    lines = ["### Answer rules: ablation", "", "The extractive answerer's hand-written composition rules "
             "(`rag.answer.answering.RULES`), each switched off in turn (`rag eval --ablate`); the abstention "
             "decision comes before them and is the same in every row.", ""]
    lines += [f"- `{rule}`: {RULES[rule]}" for rule in ablation if rule in RULES] + [""]
    return lines + table(["extractive"] + [t for _, t in columns],
                         [[name] + [fmt(r.get(k), 1 if k == "quoted_chars" else 3) for k, _ in columns]
                          for name, r in rows]) + [""]


def worst_table(rows: Sequence[Mapping], title: str) -> list[str]:
    """Question, gold, answer, first retrieved article, why it failed, confidence."""
    if not rows:
        return []
    return [f"#### {title}", "", "Worst first: answers to unanswerable questions, wrong sentences, retrieval misses, "
            "false abstentions, wrong short answers; within each, the most confident first.", ""] + table(
        ["question", "gold", "answer", "first retrieved", "why", "confidence"],
        [[_cell(r["question"]), _cell(r["gold"], 50), _cell(r["answer"]), f"`{r['first_retrieved'] or '–'}`",
          r["reason"], fmt(r.get("confidence"), 2)] for r in rows]) + [""]


def own_section(key: str, data: Mapping) -> list[str]:
    """A user's question file or SQuAD file: retrieval per configuration, answers, input problems."""
    title = "Your questions" if key == "own" else "SQuAD-format file"
    removed = f", {data['removed_articles']} article(s) held out of the index" if data.get("removed_articles") else ""
    lines = [f"## {title}", "",
             f"{data['questions']} questions ({data['answerable']} answerable) over {data['articles']} articles "
             f"({data['passages']} passages in `{data['index']}`){removed}. Retrieval metrics count the questions "
             "with gold articles.", ""]
    rows = retrieval_rows(data.get("configs", {}), "all")
    if rows:
        lines += ["### Retrieval", ""] + table(retrieval_header(), rows) + [""]
    lines += answer_sections(data.get("answers", {}))
    for name, a in data.get("answers", {}).items():
        stages = a.get("stages", {})
        if stages:
            lines += [f"Latency `{name}` per question (ms): " + ", ".join(
                f"{stage} p50 {fmt(s.get('p50_ms'), 1)} / p95 {fmt(s.get('p95_ms'), 1)}" for stage, s in stages.items()), ""]
    if data.get("notes"):
        lines += ["Input and run notes:", ""] + [f"- {n}" for n in data["notes"]] + [""]
    return lines


def calibration_chart(result: Mapping, path: Path) -> Path | None:
    """Reliability curves (mean confidence vs share correct per bin) of every dataset × answerer that has them."""
    curves = [(f"{dataset} · {name}", a["reliability"], a.get("ece"))
              for dataset, data in result.get("datasets", {}).items()
              for name, a in (data.get("answers") or {}).items() if a.get("reliability")]
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 5.0))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="perfect calibration")
    for label, curve, ece in curves:
        x, y, n = ([b[k] for b in curve] for k in ("predicted", "observed", "n"))
        line, = ax.plot(x, y, lw=1, label=f"{label} (ECE {fmt(ece)})")
        ax.scatter(x, y, s=[8 + 120 * count / max(n) for count in n], color=line.get_color())  # area ∝ questions
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (mean per bin)")
    ax.set_ylabel("share of answers correct")
    ax.set_title("Reliability of `confidence` (answered questions; dot area ∝ questions in the bin)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
