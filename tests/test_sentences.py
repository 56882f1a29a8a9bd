from hypothesis import given, strategies as st

from rag.ingest.sentences import sentence_spans


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
    assert covered.replace(" ", "") == "".join(text.split())
