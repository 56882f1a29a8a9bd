"""What a question asks for: the kind of answer (a figure, a person, a date, a place, an organisation), its
content terms with their German translations, synonyms and compound relatives, the names and figures it stands or
falls with, and the time it is about. Analysed once per question with regular expressions and word lists, so that
the answerer (``rag.answer.answering``) can hold every candidate sentence against it on cheap, explainable signals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from rag.lang.de import ENGLISH_MONTHS, MONTH_NUMBERS
from rag.answer.facts import BASELINE, NUMBER, QUARTER, THIS_YEAR, YEAR, quarter_periods
from rag.lang.de import tokenize

# Question words and English function words carry no content to match; German stop words are already gone.
_QUESTION_WORDS = frozenset(
    """wer wem wen wessen wann wo woher wohin warum weshalb wieso welch wieviel viele hoch groß gross stark
    laut konkret eigentlich insgesamt etwa genau
    wie viel ist sind war waren hat haben hatte wird wurde wurden will wollte soll sollen gibt macht machen gemacht steht stehen
    how much many what which who whom whose when where why does did do is are was were the a an of to in for
    on by at and or from with its it this that according annual jährlich jährliche jährlichen""".split()
)
_MONTH_YEAR = re.compile(r"\b(" + "|".join([*MONTH_NUMBERS, *ENGLISH_MONTHS]) +
                         r"|Herbst|Frühjahr|Sommer|Winter|Anfang|Ende|Mitte|autumn|spring|summer|winter|early|end of|late)"
                         r"\s+(\d{4})\b", re.IGNORECASE)
# Months in which an article about that time was published ("im Herbst 2024" → articles of Sep–Nov 2024) and the
# quarter reported on ("Ende 2025" → the fourth quarter of 2025, reported in January).
_SEASON_MONTHS = {"frühjahr": (3, 4, 5), "sommer": (6, 7, 8), "herbst": (9, 10, 11), "winter": (12, 1, 2),
                  "anfang": (1, 2, 3), "mitte": (5, 6, 7), "ende": (10, 11, 12), "spring": (3, 4, 5),
                  "summer": (6, 7, 8), "autumn": (9, 10, 11), "early": (1, 2, 3), "end of": (10, 11, 12),
                  "late": (10, 11, 12)}
_SEASON_QUARTERS = {"anfang": 1, "ende": 4, "early": 1, "end of": 4, "late": 4}
_ROLE_WORD = re.compile(r"\b(?:\w*chef\w*|\w*boss|gründer\w*|gegründet|\w*analyst\w*|\w*manager|präsident\w*|"
                        r"leite[nt]?|leiter\w*|ceo|cfo|head|heads|spitze)\b", re.IGNORECASE)

_KINDS = [
    ("date", re.compile(r"\b(?:wann|seit wann|bis wann|an welchem (?:tag|wochentag|datum)|in welchem jahr|"
                        r"für welches jahr|when|which year|what year|what day)\b", re.IGNORECASE)),
    ("amount", re.compile(r"\b(?:wie ?viele?|wie hoch|wie groß|wie stark|um wie viel|wie teuer|wieviel|"
                          r"how much|how many|by how much|welche[nms]? (?:umsatz|gewinn|betrag|summe|kosten|"
                          r"verlust|ergebnis|anteil|wert|operative)|mit welchen kosten|what (?:revenue|profit|loss|"
                          r"operating|amount|share)|what (?:is|was|were|are) [\w' ]{0,40}?\b(?:revenue|profit|loss|"
                          r"earnings|sales|spending|capex|investment)s?\b)", re.IGNORECASE)),
    ("person", re.compile(r"\b(?:wer|wem|wen|welche[rm]? (?:analyst|manager|chef|person|politiker)|who|whom)\b",
                          re.IGNORECASE)),
    ("place", re.compile(r"\b(?:wo|woher|wohin|where)\b", re.IGNORECASE)),
    ("entity", re.compile(r"\b(?:wie heißt|welche[nrsm]? (?:\w+-)?(?:firma|firmen|unternehmen|konzern|konzerne|"
                          r"zeitung|marke|hersteller|chiphersteller|start-up|modell|modelle|konkurrenten|sparte|"
                          r"einheit|plattform|produkt)|von welchem|mit welcher|für welches|which company)\b",
                          re.IGNORECASE)),
]
# Nouns of things that are counted or measured: "Wie haben sich die Quartalsverluste entwickelt?" wants figures.
MEASURE = re.compile(r"(?:investition|ausgaben|umsatz|gewinn|verlust|kosten|nutzer|zahl|wachstum|börsenwert|"
                     r"kapital|einnahmen|geld|preis|revenue|profit|loss|capex|spend|users|cost|invest)",
                     re.IGNORECASE)
_TIMELINE = re.compile(r"\b(?:entwickelt|entwicklung|verändert|veränderung|im lauf der zeit|im laufe der zeit|"
                       r"über die jahre|bis \d{4}|von \d{4} bis|am ende|ursprünglich|zuerst|im vergleich|vergleich|"
                       r"unterscheiden|unterscheidet|oder|mehr als|weniger als|change|changed|evolve|over time|"
                       r"compared|versus|vs\.?)\b", re.IGNORECASE)
# Questions about a change, not a level: "Wie stark ist der Umsatz gewachsen?" wants "um 24 Prozent".
_CHANGE = re.compile(r"(?:wachstum|gewachsen|wuchs|zugelegt|gestiegen|anstieg|zuwachs|gesunken|rückgang|grow|grew|growth|"
                     r"increase|decline|declined)", re.IGNORECASE)
_NEWEST = re.compile(r"\b(?:aktuell|derzeit|zurzeit|momentan|jetzt|neueste[nm]?|jüngste[nm]?|dieses jahr|"
                     r"in diesem jahr|currently|latest|this year|now)\b", re.IGNORECASE)
# Words that news reports use for the same business figure or role; a synonym counts 0.8 of the word itself.
_SYNONYMS = [
    "Umsatz Einnahmen Erlöse Umsatzwachstum", "Gewinn Nettogewinn Quartalsgewinn Überschuss",
    "Investitionen investieren investiert Kapitalinvestitionen Ausgaben ausgeben ausgegeben Kosten stecken steckt "
    "steckte gesteckt aufwenden fließen fließt", "Verlust Minus Verluste", "Nutzer Menschen User Kunden",
    "wachsen gewachsen gestiegen stieg steigerte zugelegt legte",
    "Chef leitet Spitze Boss Unternehmensboss Firmenboss Head CEO", "Finanzchefin Finanzchef CFO",
    "gegründet mitgegründet Gründer Mitgründer", "Kosten Preis Kaufpreis", "zahlt bezahlt zahlte",
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
    "quarterly": "Quartal",
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
_NAME_START = re.compile(r"[A-ZÄÖÜ][\w-]*|[a-z]+[A-Z][\w-]*")


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
    change: bool = False


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
    measured = bool(MEASURE.search(question))
    compares = re.search(r"\b(?:mehr|weniger|größten?|höchsten?|entwickelt|verändert|im lauf|more|less|change)",
                         question, re.IGNORECASE)
    if measured and compares and kind in ("other", "person"):
        kind = "amount"  # "Wie haben sich die Quartalsverluste entwickelt?", "Wer steckt mehr Geld in KI?"
    english = len(_ENGLISH.findall(question)) >= 2
    # Content words only: question words, timeline cues and time expressions are matched separately.
    words = question.replace("’", "'").replace("'s ", " ")
    for pattern in (_TIMELINE, QUARTER, _MONTH_YEAR, THIS_YEAR, YEAR, _META_WORDS, BASELINE, _YEAR_ON_YEAR):
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
    years = {int(y) for y in YEAR.findall(question)}
    newest = bool(_NEWEST.search(question))
    if THIS_YEAR.search(question) or re.search(r"\bdieses jahr\b", question, re.IGNORECASE):
        years.add(today.year)
    span = re.search(r"\b(\d{4})\s*(?:bis|to|-|–)\s*(\d{4})\b", question)
    if span and int(span.group(1)) < int(span.group(2)) <= int(span.group(1)) + 20:
        years.update(range(int(span.group(1)), int(span.group(2)) + 1))
    periods = quarter_periods(question, min(years) if len(years) == 1 else None)
    for match in _MONTH_YEAR.finditer(question):
        word, year = match.group(1).lower(), int(match.group(2))
        month = MONTH_NUMBERS.get(word) or ENGLISH_MONTHS.get(word)
        months = (month,) if month else _SEASON_MONTHS[word]
        periods.update(f"month:{year}-{m:02d}" for m in months)
        if word in _SEASON_QUARTERS:
            periods.add(f"{year}-q{_SEASON_QUARTERS[word]}")
    numbers = frozenset(n.group(0).lower() for n in NUMBER.finditer(question)) - {str(y) for y in years}
    roles = {m.group(0).lower() for m in _ROLE_WORD.finditer(question)}
    if english:
        roles = {w.lower() for r in roles for w in (_ENGLISH_GERMAN.get(r) or r).split()}
    roles = frozenset(r.rstrip("tn") if r.startswith("leite") else r for r in roles)
    return QuestionProfile(question, kind, tuple(terms.items()), key_terms, named, frozenset(essential), roles, numbers,
                           frozenset(years), frozenset(periods), bool(timeline_cues) or len(years) > 1, newest, english,
                          bool(_CHANGE.search(question)))
