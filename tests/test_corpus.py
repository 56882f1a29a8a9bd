import json

import pytest

from rag.ingest.corpus import clean_text, find_date, guess_title, load_folder
from rag.errors import RagError

from conftest import SEEDS


@pytest.mark.parametrize("header, expected", [
    (" date 2025-07 Man könnte denken", "2025-07"),
    (" date 2026-01-28 Titel 28.01.2026, 22:17 Uhr von dpa", "2026-01-28"),
    ("Lesezeit: 8 Min.\nAktualisiert: 1. Februar 2026\nGeprüft", "2026-02-01"),
    ("Berlin, 28.01.2026 – Meta meldet", "2026-01-28"),
    ("Kein Datum hier, nur 2026 als Jahr.", None),
    ("Veröffentlicht am 3. März 2025\nText", "2025-03-03"),
    ("Titel der Meldung\n28.01.2026\nText", "2026-01-28"),
    # ISO dates in a header line, as exports write them
    ("Bahn verfehlt Ziel\ndate 2026-01-20\n\nDie Bahn", "2026-01-20"),
    ("Titel\nDatum: 2025-03-06\nText", "2025-03-06"),
    ("Titel\n2025-03-06\nText", "2025-03-06"),
    ("Titel\nDatum: 2025-02-30\nText", None),  # no calendar day
    ("Die Anlage ging am 2025-03-06 in Betrieb.", None),
    # dates in the body are what an article reports, not when it appeared
    ("Der Vertrag wurde am 18. September 1947 in Paris unterzeichnet.", None),
    ("Laut dem Bericht vom 28.01.2026 stieg der Umsatz.", None),
    ("Kurz\nAm 1. Februar 2026 – so der Plan – beginnt der Bau.", None),
])
def test_find_date(header, expected):
    assert find_date(header) == expected


def test_a_body_date_never_becomes_the_publication_date(tmp_path):
    (tmp_path / "a.txt").write_text("Die Stadt wurde am 18. September 1947 gegründet. Sie wuchs schnell.", encoding="utf-8")
    (tmp_path / "b.txt").write_text("Am 18. September 1947 begann der Bau.", encoding="utf-8")
    (tmp_path / "metadata.json").write_text(json.dumps({"b": {"date": "2024-10-31"}}), encoding="utf-8")
    articles = {a.doc_id: a for a in load_folder(tmp_path)[0]}
    assert articles["a"].date is None
    assert articles["b"].date == "2024-10-31"


def test_clean_text_drops_markers_and_teasers():
    raw = (" date 2026-01-28 Titel hoch 28.01.2026, 22:17 Uhr von dpa Jetzt kommentieren: 0\n\n"
           "Lesezeit: 8 Min.\nGeprüft\nSatz eins. (Lesen Sie auch: Etwas anderes…)\nSatz zwei.")
    assert clean_text(raw) == "Titel hoch\n\nSatz eins.\nSatz zwei."


def test_markdown_heading_markers_are_not_part_of_the_text():
    assert clean_text("# Mannheim\n\nMannheim ist eine Stadt.\n\n## Geschichte\nIm Jahr 1886 #fuhr sie.") == (
        "Mannheim\n\nMannheim ist eine Stadt.\n\nGeschichte\nIm Jahr 1886 #fuhr sie.")
    assert clean_text("#MeToo war ein Thema.") == "#MeToo war ein Thema."  # a hashtag is text


def test_header_lines_that_only_date_the_article_are_not_part_of_its_text():
    assert clean_text("Haushalt beschlossen\nVeröffentlicht am 2. Februar 2024\n\nDer Bundestag hat.") == (
        "Haushalt beschlossen\n\nDer Bundestag hat.")
    assert clean_text("30.10.2025\nVolkswagen: Gewinn bricht ein\nVolkswagen hat.") == (
        "Volkswagen: Gewinn bricht ein\nVolkswagen hat.")
    assert clean_text("Bahn verfehlt Ziel\ndate 2026-01-20\nDie Bahn hat.") == "Bahn verfehlt Ziel\nDie Bahn hat."
    # a dateline that opens the text, and a date line deep in the body, stay
    assert clean_text("1. Februar 2026 – Die rasante Entwicklung.") == "1. Februar 2026 – Die rasante Entwicklung."
    body = "Titel\n" + "Ein Satz über die Lage. " * 30 + "\n18. September 1947\nDer Vertrag."
    assert "18. September 1947" in clean_text(body)
    assert find_date("Titel\nVeröffentlicht am 2. Februar 2024\nText") == "2024-02-02"


def test_guess_title_prefers_heading_line_then_first_sentence():
    assert guess_title("Meta investiert massiv\nDer Text.") == "Meta investiert massiv"
    assert guess_title("Facebook bleibt Geldmaschine. Mehr Text folgt hier.") == "Facebook bleibt Geldmaschine."


def test_seeds_have_titles_dates_and_no_teasers():
    articles, skipped = load_folder(SEEDS)
    by_id = {a.doc_id: a for a in articles}
    assert skipped == [] and len(articles) == 5
    assert by_id["001_39bf3e9c7bd6fdf9"].date == "2025-07"
    assert by_id["002_ce2073f525773260"].date == "2026-01-28"
    assert by_id["002_ce2073f525773260"].title == "Facebook-Konzern schraubt KI-Investitionen hoch"
    assert by_id["004_d8aa40ec0fc96a64"].date == "2026-02-01"
    assert "Lesen Sie auch" not in by_id["004_d8aa40ec0fc96a64"].text
    for undated in ("000_cb3fcbcbbf75b92a", "003_a751d851a43831ac"):
        assert by_id[undated].date and by_id[undated].date_inferred
    assert not by_id["002_ce2073f525773260"].date_inferred
    assert all(not a.text.startswith(" date") for a in articles)


def test_bad_files_are_skipped_with_reasons(tmp_path):
    (tmp_path / "good.txt").write_text("Meta investiert 2026 viel Geld.", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("Größe und Maß".encode("latin-1"))
    (tmp_path / "binary.md").write_bytes(b"\x89PNG\x00\x00\x01")
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    (tmp_path / "utf16.txt").write_bytes("Umlaute: Köln".encode("utf-16"))
    (tmp_path / "ignored.pdf").write_bytes(b"%PDF")
    articles, skipped = load_folder(tmp_path)
    assert sorted(a.doc_id for a in articles) == ["good", "utf16"]
    reasons = {s.path.rsplit("/", 1)[1]: s.reason for s in skipped}
    assert set(reasons) == {"latin1.txt", "binary.md", "empty.txt"}
    assert "not UTF-8" in reasons["latin1.txt"] and "binary" in reasons["binary.md"]


def test_huge_file_is_skipped(tmp_path):
    (tmp_path / "ok.txt").write_text("Ein Satz.", encoding="utf-8")
    (tmp_path / "huge.txt").write_text("a" * 2000, encoding="utf-8")
    articles, skipped = load_folder(tmp_path, max_bytes=1000)
    assert [a.doc_id for a in articles] == ["ok"] and "limit" in skipped[0].reason


def test_metadata_file_supplies_missing_dates_only(tmp_path):
    (tmp_path / "a.txt").write_text("Text ohne Datum.", encoding="utf-8")
    (tmp_path / "b.txt").write_text(" date 2025-07 Text mit Datum.", encoding="utf-8")
    (tmp_path / "metadata.json").write_text(json.dumps({
        "a": {"date": "2024-10-31", "date_inferred": True, "title": "Titel A"},
        "b": {"date": "1999-01-01"}}), encoding="utf-8")
    articles = {a.doc_id: a for a in load_folder(tmp_path)[0]}
    assert (articles["a"].date, articles["a"].date_inferred, articles["a"].title) == ("2024-10-31", True, "Titel A")
    assert (articles["b"].date, articles["b"].date_inferred) == ("2025-07", False)


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: p, "no readable"),
])
def test_unusable_folders_raise_one_sentence(tmp_path, make, message):
    with pytest.raises(RagError, match=message):
        load_folder(make(tmp_path))


def test_broken_metadata_file_is_a_clear_error(tmp_path):
    (tmp_path / "a.txt").write_text("Text.", encoding="utf-8")
    (tmp_path / "metadata.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(RagError, match="metadata file"):
        load_folder(tmp_path)
