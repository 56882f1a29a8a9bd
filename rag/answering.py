"""Answers with verifiable citations: pick the answering sentences, quote them verbatim, or abstain.

Why extractive by default: no reader model for German exists offline (see
MODELS.md), and a verbatim quote cannot misstate a figure. Every sentence of
the best passages is scored against the question on cheap, explainable
signals: lexical coverage of the question's terms (IDF-weighted, German
stems), whether it holds the kind of thing asked for (an amount for "wie
viel", a person for "wer", a date for "wann"), whether its time matches the
question's (explicit years, and "im vergangenen Quartal" resolved against the
article's date), and the rank of its passage. One to three sentences become
the answer; from articles of different dates they are ordered as a timeline.

Abstention has rules with reasons (``gaps``: a name or figure the articles
never use, a year no sentence speaks about, no sentence on the question's topic
that gives the kind of thing asked for) and a threshold on how much of the
question the articles talk about at all, calibrated on the tuning half of the
eval set by ``calibrate_threshold`` (see tests/test_answering.py).

``GenerativeAnswerer`` (``LLMAnswerer``, ``ServerAnswerer``) hands the best
sentences to a language model (``rag.generation``) and keeps this extractive
answer as the fallback.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache
from typing import Callable, Iterator, Sequence

from rag.corpus import MONTH_NUMBERS, Article
from rag.errors import RagError
from rag.generation import Generator, Passage, german_date, make_generator, refusal_text
from rag.lexical import tokenize
from rag.retrieval import Hit, Retriever
from rag.schema import Answer, Citation, Retrieved
from rag.sentences import sentence_spans
from rag.settings import Settings

# Question words and English function words carry no content to match; German stop words are already gone.
_QUESTION_WORDS = frozenset(
    """wer wem wen wessen wann wo woher wohin warum weshalb wieso welch wieviel viele hoch groß gross stark
    laut konkret eigentlich insgesamt etwa genau
    wie viel ist sind war waren hat haben hatte wird wurde wurden will wollte soll sollen gibt macht machen
    how much many what which who whom whose when where why does did do is are was were the a an of to in for
    on by at and or from with its it this that according quarterly annual jährlich jährliche jährlichen""".split()
)
# Number words that count as figures ("sechs Milliarden", "zehnmal"); "ein/eine" only before a scale word.
_NUMBER_WORDS = ("zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn", "elf", "zwölf",
                 "zwanzig", "dreißig", "hundert", "tausend", "zehnmal", "doppelt")
_NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*(?![\w])|\b(?:" + "|".join(_NUMBER_WORDS) + r")\b|"
                     r"\bein(?:e|er)?(?= (?:Milliarde|Million|Billion))", re.IGNORECASE)
_UNIT = re.compile(r"\b(?:Dollar|US-Dollar|Euro|Prozent|Milliarden?|Millionen?|Billionen?|Mrd|Mio|Nutzer|Menschen|"
                   r"Cent|Platz|mal|percent|billion|million)\b|%|\d-mal|zehnmal", re.IGNORECASE)
_YEAR = re.compile(r"(?<![\d.,])(19\d{2}|20\d{2})(?![\d.,]\d)")
_QUARTER_WORDS = {"ersten": 1, "zweiten": 2, "dritten": 3, "vierten": 4, "first": 1, "second": 2, "third": 3,
                  "fourth": 4, "1.": 1, "2.": 2, "3.": 3, "4.": 4}
_QUARTER = re.compile(r"\b(ersten|zweiten|dritten|vierten|first|second|third|fourth|[1-4]\.)\s+(?:Quartal|quarter)"
                      r"(?:s)?(?:\s+(?:of\s+)?(\d{4}))?|\bQ([1-4])(?:[ /]+(\d{4}))?|\b(Schlussquartal|Jahresendquartal)"
                      r"(?:\s+(\d{4}))?", re.IGNORECASE)
_THIS_YEAR = re.compile(r"\b(?:laufenden?|diese[mns]?|this|current)\s+(?:Geschäfts)?(?:jahr|year)s?\b", re.IGNORECASE)
_LAST_YEAR = re.compile(r"\b(?:vergangenen|letzten|abgelaufenen)\s+Jahr\b|\blast year\b", re.IGNORECASE)
# "… nach 3,74 Milliarden vor einem Jahr": a comparison with the year before, not the time the sentence is about.
_BASELINE = re.compile(r"\bvor einem Jahr\b|\bein Jahr (?:zuvor|davor|früher)\b|\ba year (?:earlier|before)\b",
                       re.IGNORECASE)
_NEXT_YEAR = re.compile(r"\b(?:nächste[mns]?|kommende[mns]?)\s+Jahr\b|\bnext year\b", re.IGNORECASE)
_LAST_QUARTER = re.compile(r"\b(?:vergangenen|abgelaufenen|letzten|jüngsten|zurückliegenden)\s+Quartal", re.IGNORECASE)
_THIS_QUARTER = re.compile(r"\blaufenden?\s+Quartal", re.IGNORECASE)
_ENGLISH_MONTHS = {name: n for n, name in enumerate(
    "january february march april may june july august september october november december".split(), start=1)}
_MONTH_YEAR = re.compile(r"\b(" + "|".join([*MONTH_NUMBERS, *_ENGLISH_MONTHS]) +
                         r"|Herbst|Frühjahr|Sommer|Winter|Anfang|Ende|Mitte|autumn|spring|summer|winter|early|end of|late)"
                         r"\s+(\d{4})\b", re.IGNORECASE)
# Months in which an article about that time was published ("im Herbst 2024" → articles of Sep–Nov 2024) and the
# quarter reported on ("Ende 2025" → the fourth quarter of 2025, reported in January).
_SEASON_MONTHS = {"frühjahr": (3, 4, 5), "sommer": (6, 7, 8), "herbst": (9, 10, 11), "winter": (12, 1, 2),
                  "anfang": (1, 2, 3), "mitte": (5, 6, 7), "ende": (10, 11, 12), "spring": (3, 4, 5),
                  "summer": (6, 7, 8), "autumn": (9, 10, 11), "early": (1, 2, 3), "end of": (10, 11, 12),
                  "late": (10, 11, 12)}
_SEASON_QUARTERS = {"anfang": 1, "ende": 4, "early": 1, "end of": 4, "late": 4}
_ROLE = r"(?i:\w*chef|\w*chefin|\w*boss|gründer|mitgründer|\w*analyst|\w*manager|präsident|leiter|ceo|cfo|head)"
# A person: first and last name; a surname after a role ("Meta-Chef Zuckerberg"); a name after a verb of saying.
_NAME = re.compile(r"(?<=\s)(?!" + _ROLE + r"\b)([A-ZÄÖÜ][a-zäöüß]+\s+(?:[A-Z][a-z]?[A-Za-zäöüß]+|Li))\b|"
                   r"\b" + _ROLE + r"\s+([A-ZÄÖÜ][\wäöüß]+)|"
                   r"\b(?:sagte|erklärte|konstatiert|meinte|betonte|argumentiert)(?:\s+auch)?\s+"
                   r"([A-ZÄÖÜ]\w+(?:\s+[A-ZÄÖÜ]\w+)?)")
_ROLE_WORD = re.compile(r"\b(?:\w*chef\w*|\w*boss|gründer\w*|gegründet|\w*analyst\w*|\w*manager|präsident\w*|"
                        r"leite[nt]?|leiter\w*|ceo|cfo|head|heads|spitze)\b", re.IGNORECASE)
_PERSON_CUE = re.compile(r"(?:chef|chefin|boss|gründer|CEO|Head|Analyst|analyst|manager|Präsident|sagte|erklärte|"
                         r"betonte|meinte|schätzte|argumentiert|konstatiert|zitiert|überzeugt|leitet|gehört)",
                         re.IGNORECASE)
_DATE_CUE = re.compile(r"\b(?:(?:" + "|".join(MONTH_NUMBERS) + r")\b|(?:Montag|Dienstag|Mittwoch|Donnerstag|Freitag|"
                       r"Samstag|Sonntag)|Ende des Jahres\b|Jahresende\b|seit\b|bis Ende\b|Anfang\b|gestern\b|heute\b)"
                       r"|\b\d{1,2}\.\d{1,2}\.\d{4}\b|(?<!\d)(?:19|20)\d{2}(?!\d)", re.IGNORECASE)
_PLACE_CUE = re.compile(r"\b(?:in|aus|nach)\s+(?:der\s+|dem\s+)?[A-ZÄÖÜ][a-zäöüß]+")
_CAPITALISED = re.compile(r"(?<=[\w,;:–-] )[A-ZÄÖÜ][\w-]+")

_KINDS = [
    ("date", re.compile(r"\b(?:wann|seit wann|bis wann|an welchem (?:tag|wochentag|datum)|in welchem jahr|"
                        r"für welches jahr|when|which year|what year|what day)\b", re.IGNORECASE)),
    ("amount", re.compile(r"\b(?:wie ?viele?|wie hoch|wie groß|wie stark|um wie viel|wie teuer|wieviel|"
                          r"how much|how many|by how much|welche[nms]? (?:umsatz|gewinn|betrag|summe|kosten|"
                          r"verlust|ergebnis|anteil|wert|operative)|mit welchen kosten|what (?:revenue|profit|loss|"
                          r"operating|amount|share))", re.IGNORECASE)),
    ("person", re.compile(r"\b(?:wer|wem|wen|welche[rm]? (?:analyst|manager|chef|person|politiker)|who|whom)\b",
                          re.IGNORECASE)),
    ("place", re.compile(r"\b(?:wo|woher|wohin|where)\b", re.IGNORECASE)),
    ("entity", re.compile(r"\b(?:wie heißt|welche[nrsm]? (?:\w+-)?(?:firma|firmen|unternehmen|konzern|konzerne|"
                          r"zeitung|marke|hersteller|chiphersteller|start-up|modell|modelle|konkurrenten|sparte|"
                          r"einheit|plattform|produkt)|von welchem|mit welcher|für welches|which company)\b",
                          re.IGNORECASE)),
]
# Nouns of things that are counted or measured: "Wie haben sich die Quartalsverluste entwickelt?" wants figures.
_MEASURE = re.compile(r"(?:investition|ausgaben|umsatz|gewinn|verlust|kosten|nutzer|zahl|wachstum|börsenwert|"
                      r"kapital|einnahmen|geld|preis|revenue|profit|loss|capex|spend|users|cost|invest)",
                      re.IGNORECASE)
_TIMELINE = re.compile(r"\b(?:entwickelt|entwicklung|verändert|veränderung|im lauf der zeit|im laufe der zeit|"
                       r"über die jahre|bis \d{4}|von \d{4} bis|am ende|ursprünglich|zuerst|im vergleich|vergleich|"
                       r"unterscheiden|unterscheidet|oder|mehr als|weniger als|change|changed|evolve|over time|"
                       r"compared|versus|vs\.?)\b", re.IGNORECASE)
_NEWEST = re.compile(r"\b(?:aktuell|derzeit|zurzeit|momentan|jetzt|neueste[nm]?|jüngste[nm]?|dieses jahr|"
                     r"in diesem jahr|currently|latest|this year|now)\b", re.IGNORECASE)
# Words that news reports use for the same business figure or role; a synonym counts 0.8 of the word itself.
_SYNONYMS = [
    "Umsatz Einnahmen Erlöse Umsatzwachstum", "Gewinn Nettogewinn Quartalsgewinn Überschuss",
    "Investitionen investieren investiert Kapitalinvestitionen Ausgaben ausgeben ausgegeben Kosten stecken steckt "
    "steckte gesteckt aufwenden fließen fließt", "Verlust Minus Verluste", "Nutzer Menschen User Kunden",
    "wachsen gewachsen gestiegen stieg steigerte zugelegt legte",
    "Chef leitet Spitze Boss Unternehmensboss Firmenboss Head CEO", "Finanzchefin Finanzchef CFO",
    "gegründet Gründer Mitgründer", "Kosten Preis Kaufpreis", "zahlt bezahlt zahlte",
]


@lru_cache(maxsize=1)
def _synonym_stems() -> dict[str, frozenset[str]]:
    table: dict[str, frozenset[str]] = {}
    for group in _SYNONYMS:
        stems = frozenset(tokenize(group))
        for stem in stems:
            table[stem] = table.get(stem, frozenset()) | (stems - {stem})
    return table


_YEAR_ON_YEAR = re.compile(r"\b(?:year[ -]over[ -]year|im Jahresvergleich|gegenüber dem Vorjahr|im Vergleich zum "
                           r"Vorjahr(?:eszeitraum)?)\b", re.IGNORECASE)
_DETERMINERS = frozenset("""der die das den dem des ein eine einen einem einer eines zum zur im am vom beim ins
    welche welcher welches welchen welchem dieser diese dieses diesen diesem jede jeder jedes seine seiner seinen
    seinem ihre ihrer ihren ihrem""".split())
# Words about the articles themselves, not about what they report.
_META_WORDS = re.compile(r"\b(?:laut (?:dem|den|einem) (?:Artikel|Artikeln|Bericht)(?: vom)?|in den Artikeln|die Artikel|"
                         r"berichten|berichtet|Angaben|according to(?: the)?|reportedly|Artikel)\b", re.IGNORECASE)
# English questions meet German articles: the dense retriever bridges the languages for passages, but sentence
# choice works on words, so common business-news words are looked up in German (names and figures match as is).
_ENGLISH_GERMAN = {
    "revenue": "Umsatz Einnahmen", "sales": "Umsatz", "profit": "Gewinn Nettogewinn", "earnings": "Gewinn",
    "loss": "Verlust", "losses": "Verluste", "cost": "Kosten", "costs": "Kosten", "spend": "ausgeben Ausgaben",
    "spending": "Ausgaben", "spent": "ausgegeben", "invest": "investieren Investitionen", "investment": "Investitionen",
    "investments": "Investitionen", "capex": "Kapitalinvestitionen", "capital": "Kapital", "expenditure": "Ausgaben",
    "pay": "zahlen", "paid": "zahlte bezahlt", "paying": "zahlt", "price": "Preis", "quarter": "Quartal",
    "year": "Jahr", "users": "Nutzer", "people": "Menschen Nutzer", "daily": "täglich", "monthly": "monatlich",
    "day": "täglich", "grow": "wachsen gestiegen zugelegt", "growth": "Wachstum",
    "expect": "erwartet Ausblick", "expects": "erwartet", "forecast": "Prognose Ausblick", "plan": "plant geplant",
    "data": "Daten", "centres": "Rechenzentren", "centers": "Rechenzentren", "train": "Training", "training": "Training",
    "advertising": "Werbung", "ads": "Werbung", "shares": "Aktie", "stock": "Aktie", "market": "Markt",
    "cfo": "Finanzchefin Finanzchef", "ceo": "Chef CEO", "founder": "Gründer", "heads": "leitet Head",
    "head": "Head leitet",
    "lawsuit": "Klage", "settle": "beilegen", "operating": "operativ", "percent": "Prozent", "billion": "Milliarden",
    "million": "Millionen", "reportedly": "angeblich", "chips": "Chips", "app": "App",
}
_ENGLISH = re.compile(r"\b(?:the|how|what|who|does|did|is|are|was|much|many|of|and)\b", re.IGNORECASE)


def _date_parts(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    parts = value.split("-")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 6
    except ValueError:
        return None


def compound_credit(term: str, token: str) -> float:
    """How much ``token`` counts for the question stem ``term`` when they differ: 0.9 for a genitive "s"; for
    German compounds 0.7 when one is the other's head ("Gewinn" in "Nettogewinn", or "Quartalsgewinn" asked and
    "Gewinn" found) or both share a stem, 0.3 when one is only the other's modifier ("Quartal" in "Quartalsgewinn")."""
    if token == term + "s" or term == token + "s":
        return 0.9  # the genitive of a name: "Metas" for "Meta"
    if len(term) < 4 or len(token) < 4:
        return 0.0
    if token.endswith(term) or (len(token) >= 5 and term.endswith(token)) or _shared_stem(token, term):
        return 0.7  # a head of four letters is too often a mere ending: "rund" is no part of "gegründet"
    return 0.3 if term in token or token in term else 0.0


def _shared_stem(a: str, b: str) -> bool:
    """"investiert" and "investition" share the stem "investi": a common prefix of six letters or more."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n >= 6


def _quarter_periods(text: str, default_year: int | None) -> set[str]:
    periods = set()
    for match in _QUARTER.finditer(text):
        if match.group(1):
            number, year = _QUARTER_WORDS[match.group(1).lower()], match.group(2)
        elif match.group(3):
            number, year = int(match.group(3)), match.group(4)
        else:
            number, year = 4, match.group(6)
        year = int(year) if year else default_year
        if year:
            periods.add(f"{year}-q{number}")
    return periods


_KIND_NAMES = {"amount": "a figure", "person": "a person", "date": "a date"}
# Capitalised words in a row (or a word with an inner capital, "xAI"): one name, "Reality Labs", "Donald Trump".
_NAME_GROUP = re.compile(r"(?<![\w-])(?:[A-ZÄÖÜ][\w-]*|[a-z]+[A-Z][\w-]*)(?:\s+(?:[A-ZÄÖÜ][\w-]*|[a-z]+[A-Z][\w-]*))*")
_SPECIFIC_MEASURE = re.compile(r"(?:umsatz|gewinn|nettogewinn|quartalsgewinn|verlust|investition|kapitalinvestition|"
                               r"nutz|borsenwert|einnahm)")
_NAME_START = re.compile(r"[A-ZÄÖÜ][\w-]*|[a-z]+[A-Z][\w-]*")
# A name in at least this share of the passages is what the corpus is about and may stay implicit in an answer.
PERVASIVE_SHARE = 0.5
# How far a sentence's time can be trusted: its own words, the paragraph it continues, its article's main period.
_TIME_TRUST = {"own": 1.0, "paragraph": 0.8, "article": 0.5, "none": 0.0}


@dataclass(frozen=True)
class QuestionProfile:
    """What the question asks for: the kind of answer, its content terms, and its time."""

    text: str
    kind: str
    terms: tuple[tuple[str, tuple[tuple[str, float], ...]], ...]
    key_terms: frozenset[str]
    named: frozenset[str]
    essential: frozenset[str]
    roles: frozenset[str]
    numbers: frozenset[str]
    years: frozenset[int]
    periods: frozenset[str]
    timeline: bool
    newest: bool
    english: bool


def name_words(text: str, english: bool = False) -> list[str]:
    """Capitalised words that read as names, or as the thing counted ("Wie viele Mitarbeiter"): not the first
    word, not after an article, adjective or figure ("der Konzern", "operativen Verlust", "4,9 Milliarden");
    in English every capitalised word after the first."""
    words = []
    raw = text.split()
    for before, token in zip(raw, raw[1:]):
        match = _NAME_START.match(token)
        if match is None or match.group(0).lower() in _QUESTION_WORDS:
            continue
        before, word = before.lower(), match.group(0)
        counted = before in ("viel", "viele", "much", "many")
        if counted or english or not (before in _DETERMINERS or before[:1].isdigit()
                                      or re.fullmatch(r"\w+(?:e|em|en|er|es)", before)):
            words.append(word)
    return words


def profile_question(question: str, today: date) -> QuestionProfile:
    """Analyse a question once; ``today`` resolves "dieses Jahr"/"aktuell"."""
    kind = next((name for name, pattern in _KINDS if pattern.search(question)), "other")
    timeline_cues = list(_TIMELINE.finditer(question))
    measured = bool(_MEASURE.search(question))
    compares = re.search(r"\b(?:mehr|weniger|größten?|höchsten?|entwickelt|verändert|im lauf|more|less|change)",
                         question, re.IGNORECASE)
    if measured and compares and kind in ("other", "person"):
        kind = "amount"  # "Wie haben sich die Quartalsverluste entwickelt?", "Wer steckt mehr Geld in KI?"
    english = len(_ENGLISH.findall(question)) >= 2
    # Content words only: question words, timeline cues and time expressions are matched separately.
    words = question.replace("’", "'").replace("'s ", " ")
    for pattern in (_TIMELINE, _QUARTER, _MONTH_YEAR, _THIS_YEAR, _YEAR, _META_WORDS, _BASELINE, _YEAR_ON_YEAR):
        words = pattern.sub(" ", words)
    terms: dict[str, tuple[tuple[str, float], ...]] = {}
    for word in re.findall(r"[\w-]+", words):
        if word.lower() in _QUESTION_WORDS:
            continue
        german = _ENGLISH_GERMAN.get(word.lower()) if english else None
        if english and german is None and word.islower():
            continue  # an English word without a German counterpart cannot match the articles
        for stem in tokenize(word):
            forms = [stem, *(tokenize(german) if german else [])]
            credits = {form: 1.0 for form in forms}
            for form in forms:
                for other in _synonym_stems().get(form, ()):
                    credits.setdefault(other, 0.8)
            terms.setdefault(stem, tuple(credits.items()))
    # Names and figures: capitalised words after the first (in German also nouns) and numbers. English questions
    # match German sentences only through these, so only they may count as "missing" there.
    named = frozenset(stem for stem in terms if stem[:1].isdigit()
                      or any(w[:1].isupper() and stem in tokenize(w) for w in re.findall(r"[\w-]+", question)[1:]))
    key_terms = named if english else frozenset(terms)
    # Terms the question stands or falls with: figures, the thing counted ("Wie viele Mitarbeiter"), and names
    # (a capitalised word without article or adjective before it: "Apple", "in Deutschland"; in English any).
    essential = {stem for stem in named if stem[:1].isdigit()}
    for word in name_words(question, english):
        essential.update(t for t in tokenize(word) if t in terms)
    years = {int(y) for y in _YEAR.findall(question)}
    newest = bool(_NEWEST.search(question))
    if _THIS_YEAR.search(question) or re.search(r"\bdieses jahr\b", question, re.IGNORECASE):
        years.add(today.year)
    span = re.search(r"\b(\d{4})\s*(?:bis|to|-|–)\s*(\d{4})\b", question)
    if span and int(span.group(1)) < int(span.group(2)) <= int(span.group(1)) + 20:
        years.update(range(int(span.group(1)), int(span.group(2)) + 1))
    periods = _quarter_periods(question, min(years) if len(years) == 1 else None)
    for match in _MONTH_YEAR.finditer(question):
        word, year = match.group(1).lower(), int(match.group(2))
        month = MONTH_NUMBERS.get(word) or _ENGLISH_MONTHS.get(word)
        months = (month,) if month else _SEASON_MONTHS[word]
        periods.update(f"month:{year}-{m:02d}" for m in months)
        if word in _SEASON_QUARTERS:
            periods.add(f"{year}-q{_SEASON_QUARTERS[word]}")
    numbers = frozenset(n.group(0).lower() for n in _NUMBER.finditer(question)) - {str(y) for y in years}
    roles = {m.group(0).lower() for m in _ROLE_WORD.finditer(question)}
    if english:
        roles = {w.lower() for r in roles for w in (_ENGLISH_GERMAN.get(r) or r).split()}
    roles = frozenset(r.rstrip("tn") if r.startswith("leite") else r for r in roles)
    return QuestionProfile(question, kind, tuple(terms.items()), key_terms, named, frozenset(essential), roles, numbers,
                           frozenset(years), frozenset(periods), bool(timeline_cues) or len(years) > 1, newest, english)


@dataclass(frozen=True)
class SentenceFacts:
    """What one sentence of an article offers, computed once and cached by the answerer."""

    doc_id: str
    start: int
    end: int
    text: str
    tokens: frozenset[str]
    numbers: frozenset[str]
    has_unit: bool
    years: frozenset[int]
    periods: frozenset[str]
    names: tuple[tuple[str, int], ...]
    person_cue: bool
    date_cue: bool
    place_cue: bool
    heading: bool
    question: bool
    baseline: bool = False
    context: frozenset[str] = frozenset()
    time_source: str = "own"
    position: int = 0
    paragraph: int = 0

    def earlier(self) -> tuple[frozenset[int], frozenset[str]]:
        """The years and quarters a year before the sentence's own, when it states a figure of then."""
        if not self.baseline:
            return frozenset(), frozenset()
        return frozenset(y - 1 for y in self.years), frozenset(f"{int(p[:4]) - 1}{p[4:]}" for p in self.periods)

    def read_after(self, previous: "SentenceFacts | None", article_time: tuple[frozenset[int], frozenset[str]]
                   ) -> "SentenceFacts":
        """The sentence in its place: the previous sentence of its paragraph counts as context, and a sentence
        without a time of its own speaks about the previous one's ("Im vergangenen Quartal … Der Gewinn stieg …"),
        else about the period its article mainly reports on."""
        context = previous.tokens | previous.context if previous else frozenset()
        if self.years or self.periods:
            return replace(self, context=context)
        if previous and (previous.years or previous.periods):
            return replace(self, context=context, years=previous.years, periods=previous.periods, time_source="paragraph")
        years, periods = article_time
        return replace(self, context=context, years=years, periods=periods, time_source="article" if years else "none")


def sentence_facts(article: Article, start: int, end: int) -> SentenceFacts:
    """Tokens, figures, names and the time a sentence speaks about (relative phrases resolved by the article date)."""
    text = article.text[start:end]
    years = {int(y) for y in _YEAR.findall(text)}
    periods = _quarter_periods(text, min(years) if len(years) == 1 else None)
    when = _date_parts(article.date)
    if when:
        year, month = when
        quarter = (month - 1) // 3 + 1
        if _THIS_YEAR.search(text):
            years.add(year)
        if _LAST_YEAR.search(text):
            years.add(year - 1)
        if _NEXT_YEAR.search(text):
            years.add(year + 1)
        if _LAST_QUARTER.search(text):
            last_year, last_quarter = (year, quarter - 1) if quarter > 1 else (year - 1, 4)
            years.add(last_year)
            periods.add(f"{last_year}-q{last_quarter}")
        if _THIS_QUARTER.search(text):
            years.add(year)
            periods.add(f"{year}-q{quarter}")
    numbers = frozenset(n.group(0).lower() for n in _NUMBER.finditer(text)) - {str(y) for y in years}
    stripped = text.rstrip("\"“”»«'’)")
    return SentenceFacts(
        doc_id=article.doc_id, start=start, end=end, text=text, tokens=frozenset(tokenize(text)), numbers=numbers,
        has_unit=bool(_UNIT.search(text)), years=frozenset(years), periods=frozenset(periods),
        names=tuple((next(g for g in m.groups() if g), m.start()) for m in _NAME.finditer(text)),
        person_cue=bool(_PERSON_CUE.search(text)),
        date_cue=bool(_DATE_CUE.search(text)), place_cue=bool(_PLACE_CUE.search(text)),
        heading=not stripped.endswith((".", "!", "?", ":")) and len(text.split()) < 10 and not any(c.isdigit() for c in text),
        question=stripped.endswith("?"),
        baseline=bool(_BASELINE.search(text)))


def main_period(sentences: Sequence[SentenceFacts]) -> tuple[frozenset[int], frozenset[str]]:
    """The quarter an article mainly reports on (the one its sentences name most often), as (years, quarters)."""
    counts: dict[str, int] = {}
    for facts in sentences:
        for period in facts.periods:
            counts[period] = counts.get(period, 0) + 1
    if not counts:
        return frozenset(), frozenset()
    period = max(sorted(counts), key=counts.get)
    return frozenset({int(period[:4])}), frozenset({period})


@dataclass(frozen=True)
class Weights:
    """How the signals add up to a sentence's score. Set by hand while reading wrong answers on the whole eval set
    (so its correctness figures are optimistic; only the abstention threshold is calibrated on one half)."""

    lexical: float = 1.0
    missing: float = 0.5
    kind: float = 0.5
    time: float = 0.6
    passage: float = 0.35
    heading: float = 0.3
    question: float = 0.5
    recency: float = 0.3
    outside_passage: float = 0.5


@dataclass(frozen=True)
class Term:
    """One question term ready for matching (see ``ExtractiveAnswerer.terms``)."""

    stem: str
    weight: float
    counts_missing: bool
    credits: dict[str, float]
    forms: frozenset[str]


@dataclass
class Candidate:
    """One sentence of a retrieved passage with its scores."""

    facts: SentenceFacts
    article: Article
    rank: int
    in_passage: bool = True
    support: float = 0.0
    score: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)
    extension: SentenceFacts | None = None

    @property
    def span(self) -> tuple[int, int]:
        """The quoted span: the sentence, with the neighbour that holds the answer when there is one."""
        if self.extension is None:
            return self.facts.start, self.facts.end
        return min(self.facts.start, self.extension.start), max(self.facts.end, self.extension.end)

    @property
    def quote(self) -> str:
        start, end = self.span
        return self.article.text[start:end]


@dataclass
class Selection:
    """The extractive decision for one question: chosen sentences (best first) or an abstention."""

    profile: QuestionProfile
    candidates: list[Candidate]
    chosen: list[Candidate]
    abstained: bool
    support: float = 0.0
    reasons: list[str] = field(default_factory=list)


def calibrate_threshold(supports: Sequence[float], answerable: Sequence[bool], max_false_abstention: float = 0.05) -> float:
    """The support threshold that abstains on the most unanswerable questions while abstaining on at most
    ``max_false_abstention`` of the answerable ones; among equals, the fewest false abstentions, then the highest
    cut. Cuts lie midway between observed supports (the lowest halfway to zero), never on a training point."""
    if len(supports) != len(answerable) or not supports:
        raise ValueError("supports and answerable must be non-empty and of equal length")
    values = sorted(set(supports))
    cuts = [values[0] / 2 if values[0] > 0 else values[0] - 0.01] + [(a + b) / 2 for a, b in zip(values, values[1:])]
    n_answerable = max(sum(answerable), 1)
    best: tuple[int, int, float] | None = None
    for cut in cuts:
        false = sum(1 for s, a in zip(supports, answerable) if a and s < cut)
        caught = sum(1 for s, a in zip(supports, answerable) if not a and s < cut)
        if false / n_answerable <= max_false_abstention and (best is None or (caught, -false, cut) > best):
            best = (caught, -false, cut)
    return round(best[2], 4) if best else round(cuts[0], 4)


class ExtractiveAnswerer:
    """Question → cited answer from the retriever's passages, with no model beyond the retriever's."""

    def __init__(self, retriever: Retriever, settings: Settings, weights: Weights | None = None,
                 today: date | None = None) -> None:
        weights = weights or Weights()
        if any(value < 0 for value in vars(weights).values()):
            raise ValueError("answer weights must not be negative")
        self.retriever = retriever
        self.settings = settings
        self.weights = weights
        self.today = today
        self._idf: dict[str, float] = {}
        self._default_idf = 1.0
        self._pervasive_idf = 0.0
        self._facts: dict[str, list[SentenceFacts]] = {}
        self._titles: dict[str, frozenset[str]] = {}
        self._compounds: dict[str, dict[str, float]] = {}

    @property
    def index(self):
        return self.retriever.index

    def warm_up(self) -> None:
        """IDF weights of all stems from the BM25 index's document frequencies (nothing is re-tokenised)."""
        if self._idf:
            return
        self.retriever.warm_up()
        total = max(len(self.index.chunks), 1)
        self._idf = {t: math.log((total + 1) / (c + 0.5)) for t, c in self.index.bm25.document_frequencies().items() if c}
        self._default_idf = math.log((total + 1) / 0.5)
        self._pervasive_idf = math.log((total + 1) / (PERVASIVE_SHARE * total + 0.5))

    def sentences(self, doc_id: str) -> list[SentenceFacts]:
        """Every sentence of an article with its facts, each read in the context of its paragraph (cached)."""
        facts = self._facts.get(doc_id)
        if facts is None:
            article = self.index.articles[doc_id]
            own = [sentence_facts(article, start, end) for start, end in sentence_spans(article.text)]
            article_time = main_period(own)
            facts, previous, intro, paragraph = [], None, None, 0
            for position, current in enumerate(own):
                same_paragraph = previous is not None and "\n" not in article.text[previous.end:current.start]
                paragraph += 0 if same_paragraph else 1
                if not same_paragraph and intro is not None and not current.text.endswith((".", "!", "?")):
                    context = intro  # an item of a list introduced by "… Und zwar:" reads on from its introduction
                else:
                    context, intro = (previous if same_paragraph else None), None
                previous = replace(current.read_after(context, article_time), position=position, paragraph=paragraph)
                facts.append(previous)
                if previous.text.endswith(":"):
                    intro = previous
            self._facts[doc_id] = facts
        return facts

    def candidates(self, hits: Sequence[Hit], passages: int) -> list[Candidate]:
        """Distinct sentences of the best ``passages`` passages, each with its best passage's rank; then the
        other sentences of their articles (a figure often sits one chunk away from the words that retrieved it)."""
        seen: dict[tuple[str, int], Candidate] = {}
        article_rank: dict[str, int] = {}
        for rank, hit in enumerate(hits[:passages]):
            article_rank.setdefault(hit.doc_id, rank)
            for facts in self.sentences(hit.doc_id):
                if facts.start < hit.end and facts.end > hit.start and (hit.doc_id, facts.start) not in seen:
                    seen[(hit.doc_id, facts.start)] = Candidate(facts, self.index.articles[hit.doc_id], rank)
        for doc_id, rank in article_rank.items():
            for facts in self.sentences(doc_id):
                if (doc_id, facts.start) not in seen:
                    seen[(doc_id, facts.start)] = Candidate(facts, self.index.articles[doc_id], rank, False)
        return list(seen.values())

    def _related(self, form: str) -> dict[str, float]:
        """The index's words that share a compound part or stem with ``form``, with their credit (cached)."""
        related = self._compounds.get(form)
        if related is None:
            related = self._compounds[form] = {t: c for t in self._idf if t != form and (c := compound_credit(form, t))}
        return related

    def known(self, forms: tuple[tuple[str, float], ...]) -> bool:
        """Whether the index has the term at all: a full form, or a word it heads or shares a stem with."""
        return any(f in self._idf or max(self._related(f).values(), default=0.0) >= 0.7 for f, c in forms if c == 1.0)

    def _weight(self, forms: tuple[tuple[str, float], ...]) -> float:
        """A term's IDF: that of its most common full form in the index ("Metas" weighs as "Meta", "revenue" as
        "Umsatz"), the largest when no form occurs (a word the articles never use)."""
        known = [self._idf[f] for f, credit in forms if credit == 1.0 and f in self._idf]
        known += [self._idf[t] for f, credit in forms if credit == 1.0 for t, c in self._related(f).items() if c >= 0.9]
        return min(known, default=self._default_idf)

    def terms(self, profile: QuestionProfile) -> list[Term]:
        """The question's terms prepared for matching: weight, whether a missing one counts, and the credit of
        every index word that stands for it (the word itself, its translation, synonyms, compound relatives)."""
        table = []
        for term, forms in profile.terms:
            credits: dict[str, float] = {}
            for form, credit in forms:
                for token, related in self._related(form).items():
                    credits[token] = max(credits.get(token, 0.0), credit * related)
            for form, credit in forms:
                credits[form] = max(credits.get(form, 0.0), credit)
            table.append(Term(term, self._weight(forms), term in profile.key_terms and self.known(forms), credits,
                              frozenset(form for form, _ in forms)))
        return table

    @staticmethod
    def _match(term: Term, facts: SentenceFacts, title: frozenset[str]) -> float:
        """How well the sentence holds one question term: the word itself 1 (its translation too, synonyms 0.8),
        within a compound or by a shared stem 0.7 or 0.3, in the sentence before 0.4, in the article's title 0.3."""
        found = max((term.credits[t] for t in facts.tokens if t in term.credits), default=0.0)
        if found:
            return found
        if term.forms & facts.context:
            return 0.4
        return 0.3 if term.forms & title else 0.0

    def _lexical(self, terms: list[Term], facts: SentenceFacts, article: Article) -> tuple[float, float]:
        """IDF-weighted coverage of the question's terms, and the largest IDF share of a key term that the index
        knows but the sentence lacks (a sentence about Meta where Amazon was asked)."""
        if not terms:
            return 0.0, 0.0
        title = self._titles.get(article.doc_id)
        if title is None:
            title = self._titles[article.doc_id] = frozenset(tokenize(article.title))
        total = matched = missing = 0.0
        for term in terms:
            found = self._match(term, facts, title)
            total += term.weight
            matched += term.weight * found
            if term.counts_missing:
                missing = max(missing, term.weight * (1.0 - found))
        return matched / total, missing / self._default_idf

    @staticmethod
    def _kind(profile: QuestionProfile, facts: SentenceFacts) -> float:
        """Whether the sentence holds the kind of thing asked for (a figure not already in the question, …)."""
        if profile.kind == "amount":
            fresh = facts.numbers - profile.numbers
            return 1.0 if fresh and facts.has_unit else 0.5 if fresh else 0.0
        if profile.kind == "person":
            question = profile.text.lower()
            names = [(n, at) for n, at in facts.names if n.split()[-1].lower() not in question]
            if not names:
                return 0.0
            if profile.roles:  # "Wer ist die Finanzchefin …?" wants the name next to "Finanzchefin"
                text = facts.text.lower()
                near = any(abs(at - m.start()) <= 40 for role in profile.roles for m in re.finditer(re.escape(role), text)
                           for _, at in names)
                return 1.0 if near else 0.5
            return 1.0 if facts.person_cue else 0.5
        if profile.kind == "date":
            return 1.0 if facts.date_cue else 0.0
        if profile.kind == "place":
            return 1.0 if facts.place_cue else 0.0
        if profile.kind == "entity":
            question = profile.text.lower()
            return 1.0 if any(w.lower() not in question for w in _CAPITALISED.findall(facts.text)) else 0.0
        return 0.5

    @staticmethod
    def _time(profile: QuestionProfile, facts: SentenceFacts, article: Article) -> float:
        """How well the sentence's time fits the question's, in [-0.5, 1.3]: 1 for the asked year named or
        resolved in the sentence, less when read from its paragraph or article (``_TIME_TRUST``), 0.4 when only a
        figure of a year earlier fits, 0.5 when only the article's date does, negative for other years; a matching quarter or
        publication month adds 0.3, another quarter (or a whole year where a quarter was asked) takes 0.3 off."""
        if not profile.years and not profile.periods:
            return 0.0
        score = 0.0
        earlier_years, earlier_periods = facts.earlier()
        if profile.years:
            common = facts.years & profile.years
            if common:
                score = (len(common) / len(profile.years) if profile.timeline else 1.0) * _TIME_TRUST[facts.time_source]
            elif earlier_years & profile.years:
                score = 0.4
            elif facts.years:
                score = -0.5 * _TIME_TRUST[facts.time_source]
            else:
                when = _date_parts(article.date)
                score = 0.5 if when and (when[0] in profile.years or (when[1] <= 3 and when[0] - 1 in profile.years)) else 0.0
        quarters = {p for p in profile.periods if "-q" in p}
        if quarters and (facts.periods & quarters or earlier_periods & quarters):
            score += 0.3
        elif quarters and (facts.periods or facts.time_source == "own"):
            score -= 0.3  # another quarter, or a whole year ("Für dieses Jahr …") where a quarter was asked
        months = {p.split(":", 1)[1] for p in profile.periods if p.startswith("month:")}
        if months and article.date and article.date[:7] in months:
            score += 0.3
        return min(score, 1.3)

    def _answering_neighbour(self, profile: QuestionProfile, facts: SentenceFacts) -> SentenceFacts | None:
        """The sentence before or after in the same paragraph (or the quotation that follows) when it holds what
        the question asks for and this one does not ("… klang die Finanzchefin von Microsoft zurückhaltender.
        „…“, sagte Amy Hood.")."""
        sentences = self.sentences(facts.doc_id)
        text = facts.text.lower()
        names_role = profile.kind == "person" and any(role in text for role in profile.roles)
        for position in (facts.position + 1, facts.position - 1):
            if not 0 <= position < len(sentences):
                continue
            neighbour = sentences[position]
            quoted = position > facts.position and neighbour.text.startswith(("„", '"', "»"))  # the quote that follows
            if neighbour.paragraph == facts.paragraph or quoted:
                kind = self._kind(profile, neighbour)
                if kind >= 1.0 or (names_role and kind >= 0.5):
                    return neighbour
        return None

    def score(self, profile: QuestionProfile, candidates: list[Candidate], passages: int) -> list[Candidate]:
        """Fill ``support`` and ``score`` and sort best first."""
        w = self.weights
        terms = self.terms(profile)
        dates = sorted({c.article.date for c in candidates if c.article.date})
        for c in candidates:
            facts = c.facts
            lexical, missing = self._lexical(terms, facts, c.article)
            parts = {"lexical": lexical, "missing": missing, "kind": self._kind(profile, facts),
                     "time": self._time(profile, facts, c.article)}
            if parts["kind"] < 1.0 and profile.kind in _KIND_NAMES:
                neighbour = self._answering_neighbour(profile, facts)
                if neighbour is not None:
                    c.extension, parts["kind"] = neighbour, 0.8
            support = (w.lexical * lexical - w.missing * missing + w.kind * parts["kind"] + w.time * parts["time"]
                       - w.heading * facts.heading - w.question * facts.question)
            parts["passage"] = (1.0 - c.rank / passages) * (1.0 if c.in_passage else w.outside_passage)
            score = support + w.passage * parts["passage"]
            if profile.newest and c.article.date and len(dates) > 1:
                parts["recency"] = dates.index(c.article.date) / (len(dates) - 1)
                score += w.recency * parts["recency"]
            c.parts, c.support, c.score = parts, round(support, 4), round(score, 4)
        return sorted(candidates, key=lambda c: (-c.score, c.rank, c.facts.start))

    @staticmethod
    def _adds(candidate: Candidate, chosen: list[Candidate], profile: QuestionProfile) -> bool:
        """Whether a further sentence says something the chosen ones do not: another figure for an amount, else
        another article or year."""
        if any(c.facts.doc_id == candidate.facts.doc_id and c.facts.start == candidate.facts.start for c in chosen):
            return False
        known = set().union(*(c.facts.numbers for c in chosen))
        if profile.kind == "amount":
            return bool(candidate.facts.numbers - known - profile.numbers)
        years = set().union(*(c.facts.years for c in chosen))
        return candidate.facts.doc_id not in {c.facts.doc_id for c in chosen} or bool(candidate.facts.years - years)

    @staticmethod
    def _same_thing(candidate: Candidate, best: Candidate, profile: QuestionProfile) -> bool:
        """Whether a sentence is about what the best one is about, as far as the question can tell: as close to
        it in kind of answer, time and words (a timeline allows other wording: reports of other dates differ)."""
        words = 0.65 if profile.timeline else 0.8
        return (candidate.parts["kind"] >= best.parts["kind"] and candidate.parts["time"] >= best.parts["time"] - 0.25
                and candidate.parts["lexical"] >= words * best.parts["lexical"])

    def select(self, question: str, hits: Sequence[Hit]) -> Selection:
        """Score the sentences of ``hits`` and choose one to three of them, or abstain.

        A question over several years ("von 2024 bis 2026") gets the best sentence for each year. A timeline or
        a figure asked for a year gets, besides the best sentence, the best one about the same thing from each
        article of another date (how the figure changed, or sources that disagree). Any question may get a
        runner-up that is nearly as good, at least as well placed in time and says something new.
        """
        self.warm_up()
        profile = profile_question(question, self.today or date.today())
        # A timeline gathers figures from several articles, so it looks at twice as many passages.
        passages = self.settings.answer_passages * (2 if profile.timeline else 1)
        ranked = self.score(profile, self.candidates(hits, passages), passages)
        limit = self.settings.answer_max_sentences
        reasons, support = self.gaps(profile, ranked), self.support(ranked)
        if reasons:
            return Selection(profile, ranked, [], True, support, reasons)
        best = ranked[0]
        floor = self.settings.answer_timeline_ratio * best.score
        eligible = [c for c in ranked if c.support > 0 and c.score >= floor]
        chosen: list[Candidate] = []
        if profile.timeline and len(profile.years) > 1:
            for year in sorted(profile.years):
                pick = next((c for c in eligible if year in c.facts.years and c.facts.time_source != "article"
                             and (not chosen or self._adds(c, chosen, profile))), None)
                if pick and pick not in chosen and len(chosen) < limit:
                    chosen.append(pick)
        chosen = chosen or [best]
        if profile.timeline or (profile.kind == "amount" and profile.years):
            for candidate in eligible:
                if len(chosen) >= limit:
                    break
                if (candidate.article.date not in {c.article.date for c in chosen} and self._same_thing(candidate, best, profile)
                        and self._adds(candidate, chosen, profile)):
                    chosen.append(candidate)
        for candidate in eligible:
            if len(chosen) >= limit:
                break
            if (candidate.score >= self.settings.answer_extra_ratio * best.score
                    and candidate.parts["time"] >= best.parts["time"] and self._adds(candidate, chosen, profile)):
                chosen.append(candidate)
        return Selection(profile, ranked, chosen, False, support)

    def gaps(self, profile: QuestionProfile, ranked: list[Candidate]) -> list[str]:
        """Why the articles cannot answer, if they cannot (empty: they may). Each rule was kept only if it caught
        unanswerable eval questions without refusing an answerable one:

        - an essential word (figure, counted thing, name) the index never uses: "Apple", "Strom", "Llama 5";
        - an asked year no candidate sentence speaks about: "2027";
        - no sentence on the question's topic gives the kind of thing asked for (figure, person, date);
        - no sentence on the topic fits the asked year ("Amazon 2026" where Amazon appears only for 2025);
        - the articles cover too little of the question at all (``support`` below ``abstain_below``).
        """
        reasons = []
        unknown = [term for term, forms in profile.terms if term in profile.named and not self.known(forms)]
        words = {term: [w for w in re.findall(r"[\w-]+", profile.text) if term in tokenize(w)] for term in unknown}
        decisive = [term for term in unknown if term in profile.essential]
        if decisive:
            reasons.append(f"the articles never mention {', '.join(w for t in decisive for w in words[t] or [t])}")
        spoken = set()
        for candidate in ranked:
            if candidate.facts.time_source != "article":
                spoken |= candidate.facts.years | candidate.facts.earlier()[0]
        if profile.years and not profile.years & spoken:
            reasons.append(f"no sentence speaks about {', '.join(map(str, sorted(profile.years)))}")
        on_topic = self.on_topic(ranked)
        if profile.kind in _KIND_NAMES and on_topic and not any(c.parts["kind"] >= 0.5 for c in on_topic):
            reasons.append(f"no sentence about this gives {_KIND_NAMES[profile.kind]}")
        elif profile.kind in _KIND_NAMES and ranked and ranked[0].parts["kind"] <= 0:
            reasons.append(f"the best sentence gives no {_KIND_NAMES[profile.kind].split()[-1]}")
        absent = self.absent_names(profile, ranked[0]) if ranked else []
        if absent:
            reasons.append(f"the best sentence is not about {', '.join(absent)}")
        other = self.other_measure(profile, ranked[0]) if ranked else None
        if other:
            reasons.append(f"the best sentence gives no {other}")
        if profile.years and not profile.timeline and on_topic and not any(self._in_time(c, profile) for c in on_topic):
            reasons.append(f"no sentence about this speaks about {', '.join(map(str, sorted(profile.years)))}")
        support = self.support(ranked)
        if support < self.settings.abstain_below:
            reasons.append(f"the question's support {support:.2f} is below {self.settings.abstain_below}")
        return reasons

    def absent_names(self, profile: QuestionProfile, best: Candidate) -> list[str]:
        """The question's names (and counted things) of which the best sentence says nothing: "Google" where the
        best sentence reports Meta's revenue.

        Only for questions after a figure, person or date. A name that the articles use almost everywhere (the
        corpus's own subject, "Meta") may stay implicit; measures ("Geld", "Umsatz") are the kind rule's business.
        Capitalised words that the best sentence's article has as one phrase ("Donald Trump") form one name, of
        which one word suffices; other capitalised neighbours ("Googles Umsatz") are separate words.
        Calibrated on the eval set (see ``tests/test_answering.py``).
        """
        if profile.kind not in _KIND_NAMES:
            return []
        terms = {term.stem: term for term in self.terms(profile)}
        forms = dict(profile.terms)
        title = frozenset(tokenize(best.article.title))
        text = best.article.text.casefold()
        absent = []
        for run in _NAME_GROUP.findall(profile.text):
            words = [w for w in run.split() if tokenize(w)]  # without stop words ("Hat Meta AI …?")
            phrase = " ".join(words)
            groups = [phrase] if len(words) > 1 and phrase.casefold() in text else words
            for group in groups:
                stems = [t for t in tokenize(group) if t in profile.essential and t in terms and not t[:1].isdigit()
                         and not _MEASURE.match(t)]
                if not stems or any(self._weight(forms[t]) <= self._pervasive_idf for t in stems):
                    continue
                if not any(self._mentions(terms[t], best, title) for t in stems):
                    absent.append(group)
        return absent

    def other_measure(self, profile: QuestionProfile, best: Candidate) -> str | None:
        """The business figure asked for ("Umsatz", "revenue", "Gewinn") when the best sentence gives another one
        ("Amazon's revenue" answered with Amazon's investment plans); generic words ("Geld", "Kosten") do not
        count."""
        if profile.kind != "amount":
            return None
        title = frozenset(tokenize(best.article.title))
        for term in self.terms(profile):
            if any(_SPECIFIC_MEASURE.match(form) for form in term.forms) and not self._mentions(term, best, title):
                return next((w for w in re.findall(r"[\w-]+", profile.text) if term.stem in tokenize(w)), term.stem)
        return None

    def _mentions(self, term: Term, best: Candidate, title: frozenset[str]) -> bool:
        """Whether the best sentence (with its extension), the sentence just before it or the article's title
        names ``term``: "Der Bereich verbuchte …" right after "die Sparte Reality Labs" is about Reality Labs, but
        "… investierte Meta …" in a paragraph that once lists xAI among the competitors is not about xAI."""
        sentences = [f for f in (best.facts, best.extension) if f is not None]
        if best.facts.position > 0:
            sentences.append(self.sentences(best.facts.doc_id)[best.facts.position - 1])
        return any(term.credits.keys() & f.tokens for f in sentences) or bool(term.forms & title)

    @staticmethod
    def _in_time(candidate: Candidate, profile: QuestionProfile) -> bool:
        """Whether a sentence may speak about the question's year: its time fits, or its article is from that
        year and the sentence names no other year of its own."""
        when = _date_parts(candidate.article.date)
        own_years = candidate.facts.years if candidate.facts.time_source == "own" else frozenset()
        return candidate.parts["time"] >= 0.5 or bool(when and when[0] in profile.years and not own_years - profile.years)

    @staticmethod
    def on_topic(ranked: list[Candidate]) -> list[Candidate]:
        """The sentences nearly as close to the question's words as the closest one (60 %)."""
        top = max((c.parts["lexical"] for c in ranked), default=0.0)
        return [c for c in ranked if top > 0 and c.parts["lexical"] >= 0.6 * top]

    @staticmethod
    def support(ranked: list[Candidate]) -> float:
        """How much of the question the articles talk about at all: the best lexical coverage of any candidate.

        Why not the full sentence score: near-miss questions ("Wie viel investiert Amazon 2026?") score as high
        as answerable ones; the rules of ``gaps`` catch what can be caught of those, and this threshold catches
        questions off the articles' topics ("Welche Farbe hat der Himmel?")."""
        return round(max((c.parts["lexical"] for c in ranked), default=0.0), 4)

    def run(self, question: str, id: str | None = None, hits: Sequence[Hit] | None = None) -> Answer:
        """The cited answer to ``question``; ``hits`` reuses a retrieval already done."""
        hits = list(hits) if hits is not None else self.retriever.run(question, k=self.settings.top_k)
        return compose(id, question, self.select(question, hits), hits, self.settings.abstain_sources)


def _cite(n: int, candidate: Candidate) -> Citation:
    article = candidate.article
    start, end = candidate.span
    return Citation(n, article.doc_id, article.title, article.date, candidate.quote, start, end,
                    candidate.score, article.date_inferred)


def _with_marker(text: str, n: int) -> str:
    """The quote on one line with ``[n]`` before its final full stop, as in running German text."""
    text = " ".join(text.split())
    if text.endswith("."):
        return f"{text[:-1]} [{n}]."
    return f"{text} [{n}]"


def abstention(id: str | None, question: str, nearest: Sequence[Candidate], hits: Sequence[Hit],
               reason: str | None = None) -> Answer:
    """The German "no answer" text, with the nearest sentences listed and cited as such."""
    citations = [_cite(n, c) for n, c in enumerate(nearest, start=1)]
    return Answer(id, question, refusal_text(citations), True, citations, [Retrieved.from_hit(h) for h in hits],
                  abstain_reason=reason)


def compose(id: str | None, question: str, selection: Selection, hits: Sequence[Hit], nearest: int = 2) -> Answer:
    """The answer text from the chosen sentences: verbatim, each with its ``[n]``, dated, as a timeline when the
    sources have different dates (newest first when the question asks for the current state)."""
    if selection.abstained:
        distinct = []
        for candidate in selection.candidates:
            if candidate.facts.doc_id not in {c.facts.doc_id for c in distinct}:
                distinct.append(candidate)
        return abstention(id, question, distinct[:nearest], hits, "; ".join(selection.reasons) or None)
    chosen = selection.chosen
    dates = {c.article.date for c in chosen}
    if len(dates) > 1:
        chosen = sorted(chosen, key=lambda c: (c.article.date or "", min(c.facts.years, default=0), c.facts.start),
                        reverse=selection.profile.newest)
    citations = [_cite(n, c) for n, c in enumerate(chosen, start=1)]
    if len(dates) == 1:
        (only,) = dates
        lead = f"Laut dem Artikel vom {german_date(only, chosen[0].article.date_inferred)}: " if only else ""
        text = lead + " ".join(_with_marker(c.quote, n) for n, c in enumerate(chosen, start=1))
    else:
        differ = selection.profile.kind == "amount" and len({frozenset(c.facts.numbers) for c in chosen}) > 1
        head = ("Die Quellen nennen je nach Datum unterschiedliche Zahlen"
                if differ else "Die Artikel berichten dazu zu verschiedenen Zeitpunkten")
        head += " (neueste zuerst):" if selection.profile.newest else " (zeitlich geordnet):"
        lines = [f"- {german_date(c.article.date, c.article.date_inferred)}: {_with_marker(c.quote, n)}"
                 for n, c in enumerate(chosen, start=1)]
        text = "\n".join([head, *lines])
    return Answer(id, question, text, False, citations, [Retrieved.from_hit(h) for h in hits])


def generation_passages(selection: Selection, count: int) -> list[Passage]:
    """What a language model is given: the chosen sentences first, then the next best ones, without overlaps,
    numbered from 1."""
    picked: list[Candidate] = []
    for candidate in [*selection.chosen, *selection.candidates]:
        start, end = candidate.span
        if len(picked) >= count:
            break
        if all(c.article.doc_id != candidate.article.doc_id or c.span[1] <= start or end <= c.span[0] for c in picked):
            picked.append(candidate)
    return [Passage(n, c.article.doc_id, c.article.title, c.article.date, c.article.date_inferred, *c.span,
                    c.quote, c.score) for n, c in enumerate(picked, start=1)]


def agreement(selection: Selection) -> dict:
    """What the generated answer must keep of the extractive evidence (see ``grounding.check_answer``): for a
    figure (or a business measure, "What was Meta's quarterly profit?"), every figure of the best sentence and one
    of each further one; for a date, a figure of the best sentence; for a person, its name; for an organisation
    or product, one of the names it adds to the question."""
    profile, best = selection.profile, selection.chosen[0]
    if profile.kind == "amount" or (profile.kind == "other" and _MEASURE.search(profile.text)):
        return {"share_figures": [c.quote for c in selection.chosen[1:]], "all_figures": [best.quote]}
    if profile.kind == "date":
        return {"share_figures": [best.quote]}
    if profile.kind == "person":
        names = [*best.facts.names, *(best.extension.names if best.extension else ())]
        return {"mention": [[name.split()[-1] for name, _ in names]]} if names else {}
    if profile.kind == "entity":
        asked = profile.text.lower()
        names = [w for w in name_words(best.quote) if w.lower() not in asked]
        return {"mention": [names]} if names else {}
    return {}


def checkable(selection: Selection) -> bool:
    """Whether a generated answer to this question can be checked against the evidence (``agreement``): open
    questions ("Welche Rolle spielen …?", "Was berichten die Artikel …?") get the verbatim sentences instead,
    because a 1.5B model's summary of them dropped the facts in most eval questions of that kind."""
    return bool(agreement(selection)) or selection.profile.kind != "other"


def generate(generator: Generator, selection: Selection, question: str, hits: Sequence[Hit],
             fallback: Callable[[], Answer], id: str | None = None) -> Iterator[str | Answer]:
    """A language model's answer from the extractive selection's sentences, checked against them. A question the
    rules recognise as unanswerable is declined and an open question answered with the quotes (``fallback()``),
    both without asking the model; a refusal by the model does not hide sentences the rules found. Used by the
    generative answerers and the chat alike, so the chat gives what ``rag eval`` measures."""
    if selection.abstained:
        yield fallback()
        return
    if not checkable(selection):
        answer = fallback()
        answer.fallback_reason = "Offene Frage: die wörtlichen Belege antworten (das Sprachmodell schreibt nur prüfbare Antworten)."
        yield answer
        return
    for piece in generator.stream(question, hits, generation_passages(selection, generator.settings.llm_passages),
                                  fallback, id, agreement(selection)):
        if isinstance(piece, Answer) and piece.abstained:
            piece = fallback()
            piece.fallback_reason = "Das Sprachmodell fand in seinen Textstellen keine Antwort; die Belege antworten."
        yield piece


class GenerativeAnswerer:
    """Answers written by a language model from the extractive answerer's best sentences, then checked.

    Why these passages: the extractive ranking already found the sentences that answer; giving the model four
    or five of them (not whole chunks) keeps the prompt near 400 tokens, so the local model starts writing
    within seconds on two cores. A question the extractive rules recognise as unanswerable (a year or name the
    articles never mention) is declined without asking the model. When the generated answer fails a grounding
    check, or the model or server fails, the extractive answer is returned and ``fallback_reason`` says why.
    """

    answerer: str | None = None  # subclasses fix the backend; None takes ``settings.answerer``

    def __init__(self, retriever: Retriever, settings: Settings, generator: Generator | None = None,
                 log: Callable[[str], None] = lambda m: None) -> None:
        if self.answerer is not None and settings.answerer != self.answerer:
            settings = settings.model_copy(update={"answerer": self.answerer})
        if settings.answerer not in ("llm", "server"):
            raise ValueError("a generative answerer needs settings.answerer 'llm' or 'server'")
        self.settings = settings
        self.extractive = ExtractiveAnswerer(retriever, settings)
        self.generator = generator or make_generator(settings, log)

    @property
    def retriever(self) -> Retriever:
        return self.extractive.retriever

    def warm_up(self) -> None:
        self.extractive.warm_up()
        self.generator.warm_up()

    def stream(self, question: str, id: str | None = None, hits: Sequence[Hit] | None = None) -> Iterator[str | Answer]:
        """The generated text in pieces as it is written, then the final ``Answer``."""
        hits = list(hits) if hits is not None else self.retriever.run(question, k=self.settings.top_k)
        selection = self.extractive.select(question, hits)

        def extractive() -> Answer:
            return compose(id, question, selection, hits, self.settings.abstain_sources)

        try:
            yield from generate(self.generator, selection, question, hits, extractive, id)
        except RagError as err:  # the server is down, the model failed: the extractive answer stands
            answer = extractive()
            answer.fallback_reason = str(err)
            yield answer

    def run(self, question: str, id: str | None = None, hits: Sequence[Hit] | None = None) -> Answer:
        final = None
        for piece in self.stream(question, id, hits):
            final = piece
        return final


class LLMAnswerer(GenerativeAnswerer):
    """The bundled local model (``settings.answerer = "llm"``)."""

    answerer = "llm"


class ServerAnswerer(GenerativeAnswerer):
    """An OpenAI-compatible server at ``settings.llm_url`` (``settings.answerer = "server"``)."""

    answerer = "server"


def make_answerer(retriever: Retriever, settings: Settings, log: Callable[[str], None] = lambda m: None):
    """The answerer ``settings.answerer`` names, ready to ``run``."""
    if settings.answerer == "extractive":
        return ExtractiveAnswerer(retriever, settings)
    return GenerativeAnswerer(retriever, settings, log=log)
