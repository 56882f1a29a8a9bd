from hypothesis import given, strategies as st

from rag.ingest.sentences import sentence_spans
from rag.lang.de import DATELINE


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


def test_german_abbreviations_ordinals_and_decimals_do_not_split():
    text = ("Das kostet z. B. 14,3 Milliarden Dollar. Am 1. Februar 2026 kündigte Meta an, u.a. mehr zu zahlen. "
            "Die Mrd. Summe ist hoch! Neu? Im 3. Quartal stieg es auf 24. Das ist viel. Dr. Li sagt „Nein.“ Dann ging sie.")
    assert sentences(text) == [
        "Das kostet z. B. 14,3 Milliarden Dollar.",
        "Am 1. Februar 2026 kündigte Meta an, u.a. mehr zu zahlen.",
        "Die Mrd. Summe ist hoch!",
        "Neu?",
        "Im 3. Quartal stieg es auf 24.",
        "Das ist viel.",
        "Dr. Li sagt „Nein.“",
        "Dann ging sie.",
    ]


def test_line_breaks_end_headings():
    assert sentences("Werbung bezahlt die KI-Wette\nDer Umsatz stieg.") == ["Werbung bezahlt die KI-Wette", "Der Umsatz stieg."]


def test_span_window_is_respected():
    text = "Erster Satz. Zweiter Satz. Dritter Satz."
    assert [text[s:e] for s, e in sentence_spans(text, 13, 26)] == ["Zweiter Satz."]


@given(st.text(alphabet=st.sampled_from(list("abcäöüßABÄ 12,.!?\n„“-")), max_size=300))
def test_spans_are_ordered_trimmed_slices(text):
    spans = sentence_spans(text)
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text)
        piece = text[start:end]
        assert piece == piece.strip() and piece
        previous_end = end
    covered = "".join(text[s:e] for s, e in spans)
    without_datelines = "\n".join(line[m.end():] if (m := DATELINE.match(line)) else line for line in text.split("\n"))
    assert covered.replace(" ", "") == "".join(without_datelines.split())


def test_a_dateline_belongs_to_no_sentence():
    text = "Bahn verfehlt Ziel\n\nBerlin – Die Bahn hat ihr Ziel verfehlt. Sie will besser werden."
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "Bahn verfehlt Ziel", "Die Bahn hat ihr Ziel verfehlt.", "Sie will besser werden."]
    for line, first in (("Frankfurt/Main (dpa) - Der Konzern wächst.", "Der Konzern wächst."),
                        ("1. Februar 2026 – Die rasante Entwicklung hält an.", "Die rasante Entwicklung hält an."),
                        ("Meta – und nur Meta – wächst.", "Meta – und nur Meta – wächst."),  # no dateline: lower case
                        ("Die Bahn – Ein Konzern in der Krise.", "Die Bahn – Ein Konzern in der Krise.")):
        (a, b), *_ = sentence_spans(line)
        assert line[a:b] == first
