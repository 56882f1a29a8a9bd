"""Follow-up questions rewritten into standalone ones: rules, and a model with a fallback to the rules."""

import pytest

from rag.answer.followup import LLMRewriter, find_names, is_followup, rewrite, rewrite_rules

META = ["Wie viel investiert Meta 2026?"]


@pytest.mark.parametrize("question, previous, expected", [
    ("Und 2025?", META, "Wie viel investiert Meta 2025?"),
    ("Und im Jahr 2024?", META, "Wie viel investiert Meta 2024?"),
    ("Wer ist dort Finanzchefin?", META, "Wer ist bei Meta Finanzchefin?"),
    ("Und Google?", META, "Wie viel investiert Google 2026?"),
    ("Und Microsoft 2025?", META, "Wie viel investiert Microsoft 2025?"),
    ("Und wie ist es bei Amazon?", META, "Wie viel investiert Amazon 2026?"),
    ("Wie hoch ist ihr Umsatz?", META, "Wie hoch ist Metas Umsatz?"),
    ("Was plant das Unternehmen bei KI?", META, "Was plant Meta bei KI?"),
    ("Wer ist Finanzchefin?", META, "Wer ist Finanzchefin bei Meta?"),
    ("What about 2025?", ["How much does Meta plan to invest in 2026?"], "How much does Meta plan to invest in 2025?"),
    ("Who is the CFO there?", ["How much does Meta plan to invest in 2026?"], "Who is the CFO at Meta?"),
    # chains use the previous *standalone* question
    ("Und 2025?", ["Wie viel investiert Meta 2026?", "Wie viel investiert Google 2026?"], "Wie viel investiert Google 2025?"),
])
def test_rule_rewrites(question, previous, expected):
    result = rewrite_rules(question, previous)
    assert result.standalone == expected
    assert result.changed and result.method == "rules" and result.question == question


@pytest.mark.parametrize("question, previous", [
    ("Wie viel investiert Meta 2026?", []),
    ("Und 2025?", []),
    ("Wie viel investiert Google 2026?", META),
    ("Was kostet ein Flug zum Mars bei SpaceX?", META),
    ("Wie viel Geld steckt Microsoft 2025 in Rechenzentren?", META),
])
def test_standalone_questions_stay_unchanged(question, previous):
    result = rewrite_rules(question, previous)
    assert result.standalone == question and not result.changed and result.method == "unchanged"


def test_names_are_found_but_not_common_nouns_or_question_words():
    assert find_names("Wie viel investiert Meta 2026?") == ["Meta"]
    assert find_names("Wofür gibt Mark Zuckerberg 2025 so viel Geld aus?") == ["Mark Zuckerberg"]
    assert find_names("Wie unterscheiden sich die Investitionen von Meta und Microsoft?") == ["Meta", "Microsoft"]
    assert find_names("Meta investiert wie viel?") == ["Meta"]
    assert find_names("Steigt der Umsatz?") == []
    assert find_names("Google 2025", fragment=True) == ["Google"]


def test_is_followup():
    assert is_followup("Und 2025?", META)
    assert is_followup("Wer ist dort Finanzchefin?", META)
    assert not is_followup("Wie viel investiert Google 2026?", META)
    assert not is_followup("Wer ist dort Finanzchefin?", [])
    assert not is_followup("🙂🙂", META) and not is_followup("???", META)  # no word: no question to complete


class FakeModel:
    def __init__(self, reply):
        self.reply = reply
        self.calls = []

    def __call__(self, messages):
        self.calls.append(messages)
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


def test_model_rewrite_is_used_when_plausible():
    model = FakeModel("Eigenständige Frage: „Wer ist Finanzchefin bei Meta?“\n")
    result = rewrite("Wer ist dort Finanzchefin?", META, LLMRewriter(model))
    assert result.standalone == "Wer ist Finanzchefin bei Meta?" and result.method == "llm"
    prompt = model.calls[0][-1]["content"]
    assert "Wie viel investiert Meta 2026?" in prompt and "Wer ist dort Finanzchefin?" in prompt


@pytest.mark.parametrize("reply", ["", "   ", "x", "y" * 400, RuntimeError("server down"), "Wer ist dort Finanzchefin?"])
def test_bad_model_output_falls_back_to_the_rules(reply):
    result = rewrite("Wer ist dort Finanzchefin?", META, LLMRewriter(FakeModel(reply)))
    assert result.standalone == "Wer ist bei Meta Finanzchefin?" and result.method == "rules"


def test_model_is_not_asked_for_standalone_questions():
    model = FakeModel("Etwas ganz anderes?")
    result = rewrite("Wie viel investiert Google 2026?", META, LLMRewriter(model))
    assert not result.changed and model.calls == []


def test_common_nouns_of_any_topic_are_not_names():
    """General German, not the seed articles' vocabulary: noun endings, a quantifier before a word, time nouns, units
    and common acronyms mark common nouns; the company is still found."""
    assert find_names("Wann startet Produktion bei Volkswagen?") == ["Volkswagen"]
    assert find_names("Wie viel Wasser verbraucht Bosch Ende 2027?") == ["Bosch"]
    assert find_names("Wer leitet Forschung und Entwicklung bei Bayer?") == ["Bayer"]
    assert find_names("Was kostet Elektromobilität bei BMW in Euro?") == ["BMW"]
    assert rewrite_rules("Wer ist dort Personalchefin?", ["Wie viel Gewinn machte Siemens 2024?"]).standalone == \
        "Wer ist bei Siemens Personalchefin?"
