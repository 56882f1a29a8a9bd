"""HTML for the chat: answers with linked ``[n]`` markers, source cards with the quoted sentence highlighted.

Everything that comes from an article or a user goes through ``escape``: HTML
special characters and the characters Markdown, tables and LaTeX react to
become character references, so an article containing ``<script>``, a
Markdown link or ``$$`` shows exactly as written, whatever renderer (Markdown
on or off) displays the result. Only the tags built here are markup.

The functions are pure (data in, string out) so they are tested without a browser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Iterable, Mapping, Sequence

from rag.ingest.sentences import sentence_spans
from rag.lang.de import format_date
from rag.schema import Answer, Citation, Retrieved

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
            **{c: f"&#{ord(c)};" for c in "[]()*_`#|~\\!$:{}+^=@"}}
_MARKER = re.compile(r"\[(\d{1,3})\]")
CONTEXT_CHARS = 180
UNSURE_BELOW = 0.5  # an answer whose calibrated confidence is below this is marked "unsicher"
ENGLISH_NOTE = "Note: the articles are German, so the answer and its quotes are in German."


def escape(text: object) -> str:
    """Text → HTML that renders as exactly this text (no tags, no Markdown, no links, no LaTeX)."""
    return "".join(_ESCAPES.get(c, c) for c in ("" if text is None else str(text)))


def escape_multiline(text: object) -> str:
    return "<br>".join(escape(line) for line in str(text or "").split("\n"))


def date_html(value: str | None, inferred: bool) -> str:
    text = f'<span class="rag-date">{escape(format_date(value))}</span>'
    if value and inferred:
        text += (' <span class="rag-inferred" title="Das Datum steht nicht im Artikel; es wurde aus dem Inhalt '
                 'erschlossen.">erschlossen</span>')
    return text


def relevance_html(score: float | None, best: float | None) -> str:
    """How well a passage fits, relative to the best one of the answer: a word and a small bar (raw fusion scores
    mean nothing to a reader)."""
    if score is None or not best or best <= 0:
        return ""
    share = max(0.0, min(1.0, score / best))
    word = "hoch" if share >= 0.8 else "mittel" if share >= 0.5 else "gering"
    return (f'<span class="rag-relevance" title="Wie gut die Passage zur Frage passt, verglichen mit der besten">'
            f'Relevanz {word} <span class="rag-bar"><span style="width:{max(8, round(share * 100))}%"></span></span>'
            f'</span>')


def progress_html(percent: int) -> str:
    """A progress bar (0–100)."""
    percent = max(0, min(100, int(percent)))
    return (f'<div class="rag-progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" '
            f'aria-valuenow="{percent}"><span style="width:{percent}%"></span></div>')


def anchor(uid: str, n: int) -> str:
    """The HTML id of source card ``n`` of the answer ``uid`` (ids stay unique across a whole conversation)."""
    return f"{re.sub(r'[^A-Za-z0-9_-]', '', uid)}-q{n}"


_ITEM_LEAD = re.compile(r"^(\d{1,2}\.\d{1,2}\.\d{4}|(?:\d{1,2}\. )?[A-ZÄÖÜ][a-zäöü]+ \d{4}|\d{4}(?:-\d{2}){0,2}|ohne Datum)"
                        r"((?: \(Datum erschlossen\))?:) ")


def answer_text(text: str, numbers: Iterable[int], uid: str) -> str:
    """The answer as HTML: lines starting with ``- `` (a timeline) become a list with their date in bold."""
    blocks, items = [], []
    for line in text.split("\n"):
        if line.startswith("- "):
            item = line[2:]
            lead = _ITEM_LEAD.match(item)
            if lead:
                items.append(f"<b>{escape(lead.group(1))}</b>{escape(lead.group(2))} "
                             f"{link_markers(item[lead.end():], numbers, uid)}")
            else:
                items.append(link_markers(item, numbers, uid))
            continue
        if items:
            blocks.append("<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
            items = []
        blocks.append(link_markers(line, numbers, uid))
    if items:
        blocks.append("<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
    return "<br>".join(b for b in blocks if b).replace("<br><ul>", "<ul>").replace("</ul><br>", "</ul>")


def link_markers(text: str, numbers: Iterable[int], uid: str) -> str:
    """Escape ``text`` and turn each ``[n]`` that has a source card into a link to it; others stay plain text."""
    known = set(numbers)
    out, last = [], 0
    for match in _MARKER.finditer(text):
        n = int(match.group(1))
        if n not in known:
            continue
        out.append(escape_multiline(text[last:match.start()]))
        out.append(f'<a class="rag-cite" href="#{anchor(uid, n)}" title="Quelle {n} anzeigen">&#91;{n}&#93;</a>')
        last = match.end()
    out.append(escape_multiline(text[last:]))
    return "".join(out)


def _cut_left(text: str, limit: int) -> str:
    """The end of ``text``, at most ``limit`` characters, starting at a sentence or word boundary."""
    if len(text) <= limit:
        return text
    tail = text[-limit:]
    sentence = re.search(r"[.!?…]\s+(?=\S)", tail)
    if sentence and sentence.end() < len(tail) - 20:
        return tail[sentence.end():]
    space = tail.find(" ")
    return "… " + (tail[space + 1:] if space >= 0 else tail)


def _cut_right(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[:limit]
    ends = [m.end() for m in re.finditer(r"[.!?…](?=\s)", head)]
    if ends and ends[-1] > 20:
        return head[:ends[-1]]
    space = head.rfind(" ")
    return (head[:space] if space > 0 else head) + " …"


def highlight(text: str, start: int, end: int, context: int = CONTEXT_CHARS) -> str:
    """The quote ``text[start:end]`` in ``<mark>``, with up to ``context`` characters of its passage either side."""
    start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
    if end < start:
        start, end = end, start
    paragraph_start = text.rfind("\n", 0, start) + 1
    paragraph_end = text.find("\n", end)
    paragraph_end = len(text) if paragraph_end < 0 else paragraph_end
    before = _cut_left(text[paragraph_start:start], context)
    after = _cut_right(text[end:paragraph_end], context)
    return f"{escape_multiline(before)}<mark>{escape_multiline(text[start:end])}</mark>{escape_multiline(after)}"


@dataclass(frozen=True)
class SourceText:
    """What a card needs of an article besides the citation: its stored text (offsets point into it)."""

    title: str
    text: str
    date: str | None = None
    date_inferred: bool = False


def _quote_span(citation: Citation, text: str | None) -> tuple[str, int, int]:
    """The text to show around the quote and the quote's span in it; falls back to the quote alone."""
    if text is not None and 0 <= citation.start <= citation.end <= len(text) \
            and text[citation.start:citation.end] == citation.quote:
        return text, citation.start, citation.end
    if text is not None and citation.quote and citation.quote in text:
        at = text.index(citation.quote)
        return text, at, at + len(citation.quote)
    return citation.quote, 0, len(citation.quote)


def source_card(citation: Citation, uid: str, article: SourceText | None = None, best: float | None = None) -> str:
    """One card: number, title, date (marked when inferred), relevance (against ``best``, the answer's best score),
    the passage with the quote marked; the article id only as a tooltip."""
    text, start, end = _quote_span(citation, article.text if article else None)
    title = citation.title or (article.title if article else "") or citation.doc_id
    relevance = relevance_html(citation.score, best if best is not None else citation.score)
    return (
        f'<div class="rag-card" id="{anchor(uid, citation.n)}">'
        f'<div class="rag-card-head"><span class="rag-n">{citation.n}</span>'
        f'<span class="rag-title" title="Artikel {escape(citation.doc_id)}">{escape(title)}</span></div>'
        f'<div class="rag-meta">{date_html(citation.date, citation.date_inferred)}'
        f'{" · " + relevance if relevance else ""}</div>'
        f'<div class="rag-passage">{highlight(text, start, end)}</div>'
        f"</div>"
    )


def _flat(text: str) -> str:
    return " ".join(text.split())


def dedupe(text: str | None, citations: Sequence[Citation]) -> tuple[str | None, list[Citation]]:
    """The answer text and cards without repeats: identical cards (same title, same quote) become one, numbered
    1, 2, … in order, and a sentence that says the same as an earlier one (ignoring its ``[n]`` markers) is dropped,
    its markers joining the earlier sentence. Answer objects may carry such repeats (one sentence retrieved through
    two passages); the reader should see each once."""
    kept: dict[tuple[str, str], Citation] = {}
    number: dict[int, int] = {}
    for citation in citations:
        key = (_flat(citation.title or citation.doc_id), _flat(citation.quote))
        if key not in kept:
            kept[key] = replace(citation, n=len(kept) + 1)
        number[citation.n] = kept[key].n
    if not text:
        return text, list(kept.values())
    text = _MARKER.sub(lambda m: f"[{number.get(int(m.group(1)), int(m.group(1)))}]", text)
    lines, seen = [], {}
    for line in text.split("\n"):
        prefix = "- " if line.startswith("- ") else ""
        body = line[len(prefix):]
        out: list[list[str]] = []  # per kept sentence: [text, extra markers]
        for start, end in sentence_spans(body):
            sentence = body[start:end]
            core = _flat(_MARKER.sub("", sentence))
            markers = _MARKER.findall(sentence)
            if core and core in seen:
                first = seen[core]
                first[1].extend(m for m in markers if f"[{m}]" not in first[0] and m not in first[1])
                continue
            out.append([sentence, []])
            if core:
                seen[core] = out[-1]
        lines.append((prefix, out))
    rendered = []
    for prefix, sentences in lines:
        parts = [_with_markers(sentence, extra) for sentence, extra in sentences]
        if parts or not prefix:
            rendered.append(prefix + " ".join(parts))
    return "\n".join(rendered).strip("\n"), list(kept.values())


def _with_markers(sentence: str, extra: list[str]) -> str:
    """``sentence`` with the markers ``extra`` added after its last marker (or before its final punctuation)."""
    sentence = re.sub(r"(\[\d{1,3}\])(\s*\1)+", r"\1", sentence)  # "[1] [1]" → "[1]"
    if not extra:
        return sentence
    added = "".join(f"[{n}]" for n in extra)
    last = list(_MARKER.finditer(sentence))
    at = last[-1].end() if last else len(sentence.rstrip(".!?…"))
    return sentence[:at] + ("" if last else " ") + added + sentence[at:]


def _overlaps(item: Retrieved, citations: Sequence[Citation]) -> bool:
    return any(c.doc_id == item.doc_id and (item.start < c.end and c.start < item.end or item.start == item.end == 0)
               for c in citations)


def uncited_list(answer: Answer, articles: Mapping[str, SourceText], limit: int = 10) -> str:
    """The retrieved passages no citation points into, collapsed under a summary line."""
    rest = [r for r in answer.retrieved if not _overlaps(r, answer.citations)][:limit]
    if not rest:
        return ""
    best = max((r.score for r in answer.retrieved), default=None)
    items = []
    for item in rest:
        article = articles.get(item.doc_id)
        title = article.title if article else item.doc_id
        date = date_html(article.date, article.date_inferred) if article else ""
        snippet = _cut_right(" ".join(item.text.split()), 280)
        relevance = relevance_html(item.score, best)
        items.append(f'<li><div class="rag-meta"><span class="rag-title">{escape(title)}</span> · {date}'
                     f'{" · " + relevance if relevance else ""}</div>'
                     f'<div class="rag-passage">{escape(snippet)}</div></li>')
    return (f'<details class="rag-uncited"><summary>Weitere gefundene, nicht zitierte Passagen ({len(rest)})</summary>'
            f'<ol>{"".join(items)}</ol></details>')


def rewrite_note(original: str, standalone: str, method: str = "rules") -> str:
    """How the question was read: a follow-up completed (``method`` "rules" or "llm"), or a relative year dated
    ("date")."""
    if method == "date":
        title = "„dieses Jahr“, „letztes Jahr“ und Ähnliches wurden auf das heutige Datum bezogen."
    else:
        how = "vom Sprachmodell" if method == "llm" else "aus dem Gesprächsverlauf"
        title = f"Die Folgefrage wurde {how} zu einer eigenständigen Frage ergänzt."
    return f'<div class="rag-rewrite" title="{escape(title)}">Verstanden als: <q>{escape(standalone)}</q></div>'


def answer_html(
    answer: Answer | None,
    uid: str,
    articles: Mapping[str, SourceText] | None = None,
    *,
    text: str | None = None,
    rewrite: tuple[str, str, str] | None = None,
    show_uncited: bool = False,
    status: str | None = None,
    note: str | None = None,
    progress: int | None = None,
    english: bool = False,
) -> str:
    """One assistant message: the rewrite (if any), the short answer and an "unsicher" note when the answer object
    has them, the answer with linked markers (repeats removed), a status line (with a bar when ``progress`` is a
    percentage) while more is coming, a one-line English note for an ``english`` question, and one card per
    distinct citation. ``text`` overrides the answer text (a generated answer as it streams)."""
    articles = articles or {}
    parts = ['<div class="rag-answer rag-pending">' if status else '<div class="rag-answer">']
    if rewrite:
        parts.append(rewrite_note(*rewrite))
    body, citations = dedupe(text if text is not None else (answer.answer if answer else None),
                             answer.citations if answer else [])
    abstained = answer is not None and answer.abstained
    short = getattr(answer, "short_answer", None) if answer is not None and text is None and not abstained else None
    if short:
        parts.append(f'<div class="rag-short">{escape(short)}</div>')
        if body and _flat(body).startswith(_flat(short).rstrip(".") + "."):  # the text opens with it: say it once
            body = body.lstrip()[len(short.rstrip(".")) + 1:].lstrip()
    confidence = getattr(answer, "confidence", None) if answer is not None and text is None else None
    if confidence is not None and confidence < UNSURE_BELOW and not abstained:
        parts.append(f'<div class="rag-unsure" title="Geschätzte Wahrscheinlichkeit, dass die Antwort stimmt: '
                     f'{round(confidence * 100)} %">Unsicher: Die Quellen belegen diese Antwort nur schwach – bitte '
                     f'die zitierten Sätze prüfen.</div>')
    if body:
        css = "rag-text rag-abstained" if abstained and text is None else "rag-text"
        parts.append(f'<div class="{css}">{answer_text(body, [c.n for c in citations], uid)}</div>')
    if status:
        parts.append(f'<div class="rag-status"><span class="rag-spinner"></span>{escape(status)}</div>')
        if progress is not None:
            parts.append(progress_html(progress))
    if note:
        parts.append(f'<div class="rag-note">{escape(note)}</div>')
    if english:
        parts.append(f'<div class="rag-english" lang="en">{escape(ENGLISH_NOTE)}</div>')
    if citations:
        label = "Nächstliegende Passagen" if abstained else "Quellen"
        best = max((c.score for c in citations if c.score is not None), default=None)
        parts.append(f'<div class="rag-sources"><div class="rag-sources-label">{label}</div>')
        parts.extend(source_card(c, uid, articles.get(c.doc_id), best) for c in citations)
        parts.append("</div>")
    if show_uncited and answer is not None:
        parts.append(uncited_list(answer, articles))
    parts.append("</div>")
    return "".join(parts)


def user_html(question: str) -> str:
    return f'<div class="rag-question">{escape_multiline(question)}</div>'


def error_html(message: str) -> str:
    return f'<div class="rag-answer"><div class="rag-error">{escape(message)}</div></div>'


def input_note_html(limit: int, error: str = "") -> str:
    """Under the input: a problem with the typed question (not a chat bubble) and the character count, which
    ``page.js`` keeps current as the user types."""
    problem = f'<div class="rag-input-error" role="alert">{escape(error)}</div>' if error else ""
    most = f"{limit:,}".replace(",", ".")
    return (f'<div class="rag-counter" data-max="{limit}">{problem}<span class="rag-count-line">'
            f'<span class="rag-count">0 / {most}</span> Zeichen · Enter sendet</span></div>')


def upload_result_html(messages: Sequence[str], percent: int | None = None) -> str:
    """The upload's outcome: added files and the index update in green, rejected files (``✗ …``) in red; while
    files are indexed, their states and a bar (``percent``)."""
    lines = "".join(f"<li class='{'rag-bad' if m.startswith('✗') else 'rag-ok'}'>{escape(m)}</li>" for m in messages)
    bar = progress_html(percent) if percent is not None else ""
    return f"<ul class='rag-upload-result'>{lines}</ul>{bar}"


def status_html(articles: int, passages: int, newest: str | None, embedder: str, answerer: str,
                uploads: int = 0) -> str:
    """The header line: what is loaded and how recent it is; model details folded under "Info"."""
    extra = f" (davon {uploads} hochgeladen)" if uploads else ""
    stand = f' · <span class="rag-stand">Stand: {escape(format_date(newest))}</span>' if newest else ""
    return (f'<div class="rag-loaded"><span><b>{articles}</b> Artikel{escape(extra)} · <b>{passages}</b> Passagen'
            f'{stand}</span><details class="rag-info"><summary>Info</summary>'
            f'<div>Embedding-Modell: <code>{escape(embedder)}</code></div><div>Antwort: {escape(answerer)}</div>'
            f'</details></div>')


def loading_html(percent: int, detail: str) -> str:
    """The header while the index is built or loaded: what is happening and a bar."""
    return (f'<div class="rag-loading"><div class="rag-loading-text">{escape(detail)} ({int(percent)} %)</div>'
            f'{progress_html(percent)}</div>')


def article_list_html(articles: Sequence[SourceText | object], ids: Sequence[str], uploaded: Iterable[str] = ()) -> str:
    """The loaded articles, newest first, uploaded ones marked."""
    uploaded = set(uploaded)
    rows = sorted(zip(ids, articles), key=lambda pair: (getattr(pair[1], "date", None) or "", pair[0]), reverse=True)
    items = []
    for doc_id, article in rows:
        mark = ' <span class="rag-uploaded">hochgeladen</span>' if doc_id in uploaded else ""
        items.append(f'<li><span class="rag-title">{escape(getattr(article, "title", doc_id))}</span>{mark}'
                     f'<div class="rag-meta">{date_html(getattr(article, "date", None), getattr(article, "date_inferred", False))}'
                     f' · <span class="rag-doc">{escape(doc_id)}</span></div></li>')
    return f'<ul class="rag-articles">{"".join(items)}</ul>'
