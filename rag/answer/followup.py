"""Follow-up questions → standalone questions, using the conversation so far.

"Und 2025?" after "Wie viel investiert Meta 2026?" means "Wie viel investiert
Meta 2025?"; "Wer ist dort Finanzchefin?" means "Wer ist bei Meta
Finanzchefin?". Retrieval and the extractive answerer only see one question,
so the chat rewrites a follow-up before answering and shows the rewrite.

Two ways, same result type:

* ``rewrite_rules`` — no model: elliptical follow-ups ("Und 2025?", "Und
  Google?", "What about 2025?") take the previous question and swap its year
  or its company; references ("dort", "das Unternehmen", "ihr Umsatz",
  "there", "its") are replaced by the company the previous question was about;
  a short question without a company of its own gets the previous one added.
* ``LLMRewriter`` — a chat model rewrites, only when the rules see a
  follow-up; an answer that is not one plausible question falls back to the
  rules, so a model can never make a question worse than the rules would.

Previous questions are passed as their standalone versions, so chains work:
"Und 2025?" then "Und Google?" gives "Wie viel investiert Google 2025?".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from rag.lang.de import (AFTER_VERB, DETERMINERS, POINTING_ADVERBS, POSSESSIVE, PRONOUN, QUANTIFIERS,
                         is_common_word)

# A capitalised word after one of these is a common noun ("der Umsatz", "viel Geld"), not a name.
_NOUN_MARKERS = DETERMINERS | QUANTIFIERS

_WORD = re.compile(r"[A-Za-zÄÖÜäöüß0-9][\w&'’-]*")
_YEAR = re.compile(r"(?<![\d.,])(?:19|20)\d{2}(?![\d.,]\d)")

_ELLIPSIS = re.compile(
    r"^(?:und|aber|sowie|also|and|but)\s+(?:(?:wie\s+(?:ist|war|sieht)\s+es\s+(?:mit|bei|aus\s+bei|im|in)|"
    r"was\s+ist\s+mit|wie\s+steht\s+es\s+mit|bei|für|mit|im|in|von|für\s+das\s+jahr|what\s+about|how\s+about|"
    r"for|in|at|with)\s+)?(?P<rest>.*)$|"
    r"^(?:what|how)\s+about\s+(?P<rest2>.*)$|"
    r"^(?:wie\s+(?:ist|war|sieht)\s+es\s+(?:mit|bei|im|in)|was\s+ist\s+mit|und)\s+(?P<rest3>.*)$",
    re.IGNORECASE,
)
_COMPANY_PHRASE = re.compile(
    r"\b(?:beim|bei\s+(?:dem|diesem)|vom|von\s+(?:dem|diesem))\s+(?:Konzern|Unternehmen|Tech-Konzern|Internetkonzern)\b|"
    r"\b(?:de[rmns]|die|das|diese[mnrs]?)\s+(?:Konzerns?|Unternehmens?|Firma|Tech-Konzerns?|Internetkonzerns?)\b|"
    r"\bthe\s+(?:company|firm|group)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Rewrite:
    """A question as typed and the standalone question that is answered."""

    question: str
    standalone: str
    method: str = "unchanged"  # "unchanged", "rules" or "llm"

    @property
    def changed(self) -> bool:
        return self.standalone != self.question


def _words(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group(0)) for m in _WORD.finditer(text)]


def _is_name(word: str, previous: str | None, first: bool, known: frozenset[str]) -> bool:
    """``first``: the word opens the sentence, where every German word is capitalised: not a name by itself."""
    bare = word.strip("'’-")
    low = bare.lower()
    if low in known:
        return True
    if not bare[:1].isupper() or is_common_word(bare) or low in DETERMINERS or _YEAR.fullmatch(bare):
        return False
    if previous is not None and previous.lower() in _NOUN_MARKERS:
        return False
    if first:
        return False
    return "-" not in bare  # "Meta-Chef", "KI-Investitionen": a compound noun, not a name


def find_names(text: str, known: Iterable[str] = (), fragment: bool = False) -> list[str]:
    """Company and person names in a question, in order ("Meta", "Mark Zuckerberg"); a heuristic for German
    and English: capitalised words not after an article and not common nouns. The first word counts only when a
    lowercase word follows ("Meta investiert …", not "Investiert Meta …"), or in a ``fragment`` ("Google 2025")."""
    known_set = frozenset(k.lower() for k in known)
    names: list[str] = []
    words = _words(text)
    i = 0
    while i < len(words):
        start, end, word = words[i]
        prev = words[i - 1][2] if i else None
        first = i == 0 and not fragment and not (len(words) > 1 and words[1][2][:1].islower()
                                                 and words[1][2].lower() not in AFTER_VERB)
        if _is_name(word, prev, first, known_set):
            j = i + 1
            while j < len(words) and words[j][0] == words[j - 1][1] + 1 and _is_name(words[j][2], None, False, known_set) \
                    and words[j][2][:1].isupper():
                j += 1
            names.append(text[start:words[j - 1][1]])
            i = j
        else:
            i += 1
    return names


def _years(text: str) -> list[str]:
    return _YEAR.findall(text)


def _strip_question(text: str) -> str:
    return text.strip().rstrip("?!. ").strip()


def _genitive(name: str) -> str:
    return name + ("’" if name[-1:].lower() in "sßxz" else "s")


def is_followup(question: str, previous: Sequence[str], known: Iterable[str] = ()) -> bool:
    """Whether a question leans on the previous one (and so needs rewriting). A message without a single word
    ("🙂🙂", "???") leans on nothing: made "🙂🙂 bei Meta?", it would be answered with a sentence about Meta."""
    q = question.strip()
    if not previous or not re.search(r"[^\W_]", q):
        return False
    if _ELLIPSIS.match(_strip_question(q)):
        return True
    if find_names(q, known):
        return False
    if not find_names(previous[-1], known):
        return False
    return bool(POINTING_ADVERBS.search(q) or _COMPANY_PHRASE.search(q) or POSSESSIVE.search(q) or PRONOUN.search(q)
                or len(_words(q)) <= 5)


def _replace_years(text: str, years: list[str]) -> str:
    found = _years(text)
    if not found:
        return f"{_strip_question(text)} {' und '.join(years)}?"
    out, k = [], 0
    last = 0
    for match in _YEAR.finditer(text):
        out.append(text[last:match.start()])
        out.append(years[min(k, len(years) - 1)])
        k += 1
        last = match.end()
    out.append(text[last:])
    return "".join(out)


def _ensure_question_mark(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if text.endswith("?") else _strip_question(text) + "?"


def _elliptic(rest: str, previous: str, known: Iterable[str]) -> str | None:
    """'Und 2025?' / 'Und Google?' / 'Und Google 2025?' → the previous question with its year or name swapped."""
    rest = _strip_question(rest)
    if not rest:
        return None
    rest_years, rest_names = _years(rest), find_names(rest, known, fragment=True)
    # what is left of the fragment once years, names and filler words are gone
    leftover = rest
    for part in rest_years + rest_names:
        leftover = leftover.replace(part, " ")
    leftover_words = [w for _, _, w in _words(leftover)
                      if w.lower() not in {"im", "in", "jahr", "das", "dem", "bei", "für", "von", "year", "the", "of", "at",
                                           "for", "mit", "with", "es", "ist"}]
    if leftover_words or not (rest_years or rest_names):
        return None
    result = previous
    if rest_years:
        result = _replace_years(result, rest_years)
    if rest_names:
        old_names = find_names(result, known)
        if old_names:
            result = result.replace(old_names[0], rest_names[0], 1)
        else:
            result = f"{_strip_question(result)} bei {rest_names[0]}?"
    return _ensure_question_mark(result)


def rewrite_rules(question: str, previous: Sequence[str], known: Iterable[str] = ()) -> Rewrite:
    """The rule-based rewrite; ``previous`` are the earlier standalone questions, oldest first."""
    q = re.sub(r"\s+", " ", question).strip()
    if not is_followup(q, previous, known):
        return Rewrite(question, question)
    last = previous[-1]
    names = find_names(last, known)
    match = _ELLIPSIS.match(_strip_question(q))
    if match:
        rest = match.group("rest") or match.group("rest2") or match.group("rest3") or ""
        elliptic = _elliptic(rest, last, known)
        if elliptic:
            return Rewrite(question, elliptic, "rules")
        q = _strip_question(q)
        q = re.sub(r"^(?:und|aber|sowie|also|and|but)\s+", "", q, flags=re.IGNORECASE)
        q = q[:1].upper() + q[1:]
        if find_names(q, known, fragment=True):
            return Rewrite(question, _ensure_question_mark(q), "rules")
        if not _years(q) and _years(last):  # "Und der Umsatz?" keeps the previous question's year too
            q = f"{q} {' '.join(_years(last))}"
        q += "?"
    if not names:
        return Rewrite(question, _ensure_question_mark(q), "rules") if q != question.strip() else Rewrite(question, question)
    name = names[0]
    english = bool(re.search(r"\b(?:the|what|how|who|is|does|did|there|its|their)\b", q, re.IGNORECASE))
    text, n = _COMPANY_PHRASE.subn(lambda m: ("bei " if m.group(0).lower().startswith("bei") else
                                              "von " if m.group(0).lower().startswith("v") else "") + name, q)
    if not n:
        text, n = re.subn(r"\bdort\b", f"bei {name}", text, flags=re.IGNORECASE)
        text, m = re.subn(r"\bthere\b", f"at {name}", text, flags=re.IGNORECASE)
        n += m
    if not n:
        text, n = POSSESSIVE.subn(f"{name}’s" if english else _genitive(name), text, count=1)
    if not n:
        text, n = re.subn(r"\b(?:dabei|hierbei|dafür|davon)\b", f"bei {name}", text, count=1, flags=re.IGNORECASE)
    if not n:
        text = f"{_strip_question(text)} {'at' if english else 'bei'} {name}?"
    return Rewrite(question, _ensure_question_mark(text), "rules")


REWRITE_PROMPT = """Du formulierst Folgefragen in einem Chat über Nachrichtenartikel zu eigenständigen Fragen um.
Ersetze Bezüge wie „dort“, „das Unternehmen“, „ihr“ oder Auslassungen wie „Und 2025?“ durch das, worauf sie sich im
Gesprächsverlauf beziehen. Behalte die Sprache der Folgefrage bei. Antworte nur mit der umformulierten Frage, ohne
Erklärung.

Beispiel:
Bisherige Fragen: Wie viel investiert Meta 2026?
Folgefrage: Und 2025?
Eigenständige Frage: Wie viel investiert Meta 2025?"""


class LLMRewriter:
    """Rewrites follow-ups with a chat model: ``complete(messages) -> str`` (OpenAI-style message dicts).

    The model is asked only when the rules see a follow-up; its answer is used when it is one plausible question
    (one line, 3–300 characters, not a copy of the follow-up); anything else, or an error, falls back to the rules.
    """

    def __init__(self, complete: Callable[[list[dict]], str], known: Iterable[str] = ()) -> None:
        self.complete = complete
        self.known = tuple(known)

    def messages(self, question: str, previous: Sequence[str]) -> list[dict]:
        history = "\n".join(f"- {p}" for p in previous[-3:])
        return [{"role": "system", "content": REWRITE_PROMPT},
                {"role": "user", "content": f"Bisherige Fragen:\n{history}\nFolgefrage: {question}\nEigenständige Frage:"}]

    @staticmethod
    def clean(output: str) -> str | None:
        lines = [line.strip() for line in (output or "").strip().splitlines() if line.strip()]
        if not lines:
            return None
        text = re.sub(r"^(?:Eigenständige Frage|Frage|Standalone question)\s*:\s*", "", lines[0], flags=re.IGNORECASE)
        text = text.strip().strip("\"„“”»«'").strip()
        if not 3 <= len(text) <= 300:
            return None
        return _ensure_question_mark(text)

    def __call__(self, question: str, previous: Sequence[str]) -> Rewrite:
        rules = rewrite_rules(question, previous, self.known)
        if not rules.changed:
            return rules
        try:
            text = self.clean(self.complete(self.messages(question, previous)))
        except Exception:  # a model or server problem must not stop the chat: the rules' rewrite stands
            return rules
        if text is None or text.strip().lower() == question.strip().lower():
            return rules
        return Rewrite(question, text, "llm")


def rewrite(question: str, previous: Sequence[str], llm: LLMRewriter | None = None, known: Iterable[str] = ()) -> Rewrite:
    """The standalone version of ``question``: by the model when given, else by the rules."""
    if llm is not None:
        return llm(question, previous)
    return rewrite_rules(question, previous, known)
