"""Uploaded articles: validation with German reasons, safe names, incremental re-indexing beside the index."""

from pathlib import Path

import pytest

from rag.errors import RagError
from rag.index.build import build_index
from rag.index.store import load_index
from rag.ingest.uploads import (UploadRejected, text_digest, safe_id, save_uploads, source_folders, undo, uploads_dir,
                                validate)
from rag.pipeline import add_files

NEWS = ("Nordlicht Energie baut Speicher\n28.01.2026\n"
        "Der Versorger Nordlicht Energie investiert 2026 rund 3,4 Milliarden Euro in Batteriespeicher. "
        "Finanzchef Jonas Berg nannte die Pläne ehrgeizig.").encode("utf-8")


@pytest.mark.parametrize("name, data, reason", [
    ("notiz.pdf", b"%PDF", "nur .txt- und .md-Dateien"),
    ("leer.txt", b"", "ist leer"),
    ("gross.txt", b"a" * 2001, "erlaubt sind höchstens"),
    ("latin1.txt", "Größe".encode("latin-1"), "nicht UTF-8"),
    ("bild.md", b"\x89PNG\x00\x00", "Binärdaten"),
    ("kaputt16.txt", b"\xff\xfeK\x00\x00\xd8", "nicht UTF-8-kodiert"),
    ("knapp.txt", b"a" * 2049, "2.049 Bytes groß; erlaubt sind höchstens 2.000 Bytes"),
    ("leerzeichen.md", b" \n\t \n", "enthält keinen Text"),
])
def test_invalid_files_are_rejected_with_a_reason(name, data, reason):
    with pytest.raises(UploadRejected, match=reason) as err:
        validate(name, data, max_bytes=2000)
    assert name in str(err.value)


def test_valid_utf8_is_accepted_with_or_without_bom():
    assert validate("a.txt", NEWS).startswith("Nordlicht")
    assert validate("a.MD", b"\xef\xbb\xbf" + NEWS).startswith("Nordlicht")


def test_utf16_with_a_byte_order_mark_is_accepted():
    text = NEWS.decode("utf-8")
    assert validate("a.txt", text.encode("utf-16")) == text
    assert validate("a.txt", b"\xfe\xff" + text.encode("utf-16-be")) == text


@pytest.mark.parametrize("name, expected", [
    ("../../etc/passwd.txt", "passwd"),
    ("C:\\Users\\x\\Bericht 2026 (final).md", "C_Users_x_Bericht_2026_final"),
    (".versteckt.txt", "versteckt"),
    ("???.txt", "artikel"),
    ("Größe–Ärger.txt", "Größe_Ärger"),
])
def test_safe_ids(name, expected):
    assert safe_id(name) == expected


def test_uploads_folder_sits_beside_the_index(tmp_path):
    assert uploads_dir(tmp_path / "index" / "default") == tmp_path / "index" / "default-uploads"


def test_save_renames_clashes_with_seed_articles_and_leaves_known_texts_alone(tmp_path):
    folder = tmp_path / "up"
    indexed = {"002_x": ("sha-a", str(tmp_path / "seeds")), "003_y": ("sha-b", str(tmp_path / "seeds"))}
    result = save_uploads([("002_x.txt", NEWS), ("neu.md", NEWS), ("kaputt.txt", b"\xff\xfa")], folder, indexed)
    assert [s.doc_id for s in result.saved] == ["002_x-2"]
    assert (folder / "002_x-2.txt").read_bytes() == NEWS
    assert result.unchanged == [("neu.md", "002_x-2")]
    assert "kaputt.txt" in dict(result.rejected)
    assert "hinzugefügt als 002_x-2 (002_x ist schon ein anderer Artikel)" in result.messages()[0]
    undo(result)
    assert not (folder / "002_x-2.txt").exists()


@pytest.mark.parametrize("first, second", [("Bericht?.txt", "Bericht!.txt"), ("A" * 80 + "1.txt", "A" * 80 + "2.md")])
def test_names_that_clean_to_the_same_id_never_overwrite(tmp_path, first, second):
    """Issue 15: both files stay, each under its own id, loaded or still waiting in the folder."""
    folder = tmp_path / "up"
    one = save_uploads([(first, NEWS)], folder, {})
    waiting = save_uploads([(second, NEWS + b" Zweite Fassung.")], folder, {})  # the first is not indexed yet
    base = one.saved[0].doc_id
    assert waiting.saved[0].doc_id == f"{base}-2" and waiting.saved[0].taken == base
    assert one.saved[0].path.read_bytes() == NEWS
    indexed = {base: (text_digest(NEWS.decode()), str(folder))}
    again = save_uploads([(first, NEWS), (second, NEWS + b" Dritte Fassung.")], folder, indexed)
    assert again.unchanged == [(first, base)] and again.saved[0].doc_id == f"{base}-3"


def test_too_many_files_at_once(tmp_path):
    files = [(f"a{i}.txt", NEWS + str(i).encode()) for i in range(4)]
    result = save_uploads(files, tmp_path / "up", {}, max_files=3)
    assert len(result.saved) == 3 and "höchstens 3 Dateien" in result.rejected[0][1]


def test_source_folders_come_from_the_index(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    up = tmp_path / "up"
    assert source_folders([str(seeds / "a.txt"), str(up / "b.txt"), str(seeds / "c.txt")], up) == [seeds.resolve(), up.resolve()]
    with pytest.raises(RagError, match="fehlt"):
        source_folders([str(tmp_path / "gone" / "a.txt")], up)


def test_add_files_indexes_only_the_new_passages(seeds_copy, settings_for, fake_embedder):
    settings = settings_for()
    build_index(seeds_copy, settings, fake_embedder)
    index = load_index(settings.index_dir, fake_embedder.model_id)
    fake_embedder.calls.clear()

    result = add_files([("nordlicht.txt", NEWS), ("leer.txt", b"")], index, settings, fake_embedder)

    assert [s.doc_id for s in result.saved] == ["nordlicht"] and "leer.txt" in dict(result.rejected)
    assert result.report.reused == len(index.chunks) and result.report.embedded >= 1
    embedded = [text for call in fake_embedder.calls for text in call]
    fresh = load_index(settings.index_dir, fake_embedder.model_id)
    new_text = fresh.articles["nordlicht"].text
    assert embedded and all(text.split("\n", 1)[1] in new_text for text in embedded), "passages and sentences of it only"
    assert set(fresh.articles) == set(index.articles) | {"nordlicht"}
    assert Path(fresh.articles["nordlicht"].source).parent == uploads_dir(settings.index_dir)
    assert any("wiederverwendet" in line for line in result.messages())


def test_failed_indexing_leaves_index_and_uploads_as_they_were(seeds_copy, settings_for, fake_embedder, monkeypatch):
    settings = settings_for()
    build_index(seeds_copy, settings, fake_embedder)
    index = load_index(settings.index_dir, fake_embedder.model_id)

    def broken(texts):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fake_embedder, "embed_passages", broken)
    with pytest.raises(RuntimeError):
        add_files([("nordlicht.txt", NEWS)], index, settings, fake_embedder)
    assert not (uploads_dir(settings.index_dir) / "nordlicht.txt").exists()
    assert set(load_index(settings.index_dir, fake_embedder.model_id).articles) == set(index.articles)


def test_queue_answers_a_rejected_file_at_once_with_its_reason(tmp_path):
    from rag.ingest.uploads import UploadQueue, Uploads

    queue = UploadQueue(tmp_path / "uploads", index=lambda files, listener: None, failed=str)
    uploads = Uploads(queue.submit([("kaputt.txt", "Größe".encode("latin-1"))]))
    assert uploads.finished(timeout=0) and uploads.percent() is None
    assert uploads.messages() == ["✗ kaputt.txt ist nicht UTF-8-kodiert (ungültiges Byte an Position 2); "
                                  "bitte als UTF-8 speichern."]
