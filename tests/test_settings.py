import pytest
from pydantic import ValidationError

from rag.settings import Settings, load_settings


def test_precedence_defaults_config_env_flags(tmp_path, monkeypatch):
    config = tmp_path / "rag.toml"
    config.write_text('top_k = 7\ndense_weight = 0.4\nchunk_tokens = 180\n', encoding="utf-8")
    monkeypatch.setenv("RAG_CONFIG", str(config))
    assert Settings().top_k == 7 and Settings().chunk_overlap == 40
    monkeypatch.setenv("RAG_TOP_K", "9")
    settings = load_settings(dense_weight=None, chunk_tokens=150)
    assert (settings.top_k, settings.dense_weight, settings.chunk_tokens) == (9, 0.4, 150)


@pytest.mark.parametrize("bad", [{"embedder": "word2vec"}, {"chunk_tokens": 50, "chunk_overlap": 60}, {"dense_weight": 2},
                                 {"today": "2026-13-01"}, {"today": "gestern"}])
def test_invalid_settings_are_refused(bad):
    with pytest.raises(ValidationError):
        Settings(**bad)


def test_the_day_questions_are_read_on_is_the_setting_or_the_machine_s_date():
    import datetime

    assert Settings(today="2025-03-01").reference_day() == "2025-03-01"
    assert Settings().reference_day() == datetime.date.today().isoformat()
