"""Markdown table pieces shared by the evaluation report's sections (``rag.eval.report``, ``rag.eval.report_answers``).

A module of their own so that the report can import its answer sections at the top without either importing the
other.
"""

from __future__ import annotations

from typing import Mapping, Sequence

RETRIEVAL_COLUMNS = [("recall@1", "R@1"), ("recall@5", "R@5"), ("recall@10", "R@10"), ("hit_rate@5", "Hit@5"),
                     ("mrr@10", "MRR@10"), ("ndcg@10", "nDCG@10")]


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def retrieval_rows(configs: Mapping, split: str, columns=RETRIEVAL_COLUMNS) -> list[list[str]]:
    rows = []
    for name, data in configs.items():
        scores = data.get(split)
        if not scores:
            continue
        latency = data.get("latency") or {}
        rows.append([f"`{name}`"] + [fmt(scores.get(key)) for key, _ in columns]
                    + [fmt(latency.get("p50_ms"), 1), fmt(latency.get("p95_ms"), 1)])
    return rows


def retrieval_header(columns=RETRIEVAL_COLUMNS) -> list[str]:
    return ["configuration"] + [title for _, title in columns] + ["p50 ms", "p95 ms"]
