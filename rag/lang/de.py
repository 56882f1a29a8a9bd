"""German language knowledge, in one place: months, dates, number words, scale words, abbreviations, stop words,
stems and the tokenizer every stage shares.

Why one module: every stage reads German (the corpus reader dates articles, the sentence splitter must not split
"1. Februar 2026", BM25 and the answerer compare stems, the chat writes dates). When each kept its own month table
they drifted apart ("Jänner" known to one, not another). Only general German lives here, never words taken from one
corpus or one eval set.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Callable, Collection, Iterable

MONTHS = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November",
          "Dezember")
# Lower-case month name → number, with the Austrian "Jänner".
MONTH_NUMBERS = {**{name.lower(): n for n, name in enumerate(MONTHS, start=1)}, "jänner": 1}
ENGLISH_MONTHS = {name: n for n, name in enumerate(
    "january february march april may june july august september october november december".split(), start=1)}
WEEKDAYS = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")

# Number words and their values ("sechs Milliarden" = 6 Mrd.); English ones for English questions and answers.
NUMBER_WORDS = {"null": 0, "ein": 1, "eine": 1, "einer": 1, "einem": 1, "eins": 1, "zwei": 2, "drei": 3, "vier": 4,
                "fünf": 5, "sechs": 6, "sieben": 7, "acht": 8, "neun": 9, "zehn": 10, "elf": 11, "zwölf": 12,
                "zwanzig": 20, "dreißig": 30, "vierzig": 40, "fünfzig": 50, "hundert": 100, "tausend": 1000,
                "zehnmal": 10}
ENGLISH_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                        "nine": 9, "ten": 10}
# A figure written in digits: "14,3", "1.000", "2026" (not inside a word or another number).
DIGITS = r"\d+(?:[.,]\d+)*"
FIGURE = re.compile(rf"(?<![\w.,]){DIGITS}(?![\w])")
# What joins the two ends of a range of figures ("64 bis 72", "zwischen 115 und 135", "60-65", "5 to 7").
RANGE_WORD = r"(?:-|–|bis|und|to)"
FIGURE_RANGE = re.compile(rf"(?<![\w.,])({DIGITS})\s*{RANGE_WORD}\s*({DIGITS})(?![\w])")


def range_partners(text: str) -> dict[str, set[str]]:
    """Each figure of ``text`` that ends a range, with the figure at its other end: "64 bis 72 Milliarden" does
    not say "72 Milliarden"."""
    partners: dict[str, set[str]] = {}
    for match in FIGURE_RANGE.finditer(text):
        low, high = match.groups()
        partners.setdefault(low, set()).add(high)
        partners.setdefault(high, set()).add(low)
    return partners


# Scale words and abbreviations with their factor ("Mrd." = 10^9).
SCALES = {"tausend": 1e3, "tsd": 1e3, "mio": 1e6, "million": 1e6, "millionen": 1e6, "mrd": 1e9, "milliarde": 1e9,
          "milliarden": 1e9, "bn": 1e9, "billionen": 1e12}
# Abbreviated scale words spelled out before stemming, so "14 Mrd." matches "14 Milliarden".
SCALE_ABBREVIATIONS = {"mrd": "milliarden", "mio": "millionen", "bn": "billion", "mln": "millionen", "tsd": "tausend"}
# Abbreviations after which a full stop does not end a sentence ("z. B.", "Mrd.", "Prof.").
ABBREVIATIONS = frozenset(
    """
    abs bd bspw bzgl bzw ca chr co corp dipl dr etc evtl ggf hr hrsg inc inkl jh jr kap max min mio mrd
    mill nr od phil pkt prof rd sog st str tel tsd usw vgl vs zb zt ltd mr mrs ms no
    """.split()
)
# Words that commonly open a sentence: after "Nr. 5" or "Abs." followed by one of them, a new sentence starts.
SENTENCE_STARTERS = frozenset("der die das dies diese im in am auch aber er sie es wir man doch so und".split())
# A calendar day as German text writes it: "28.01.2026", "1. Februar 2026" (a pattern without groups).
DAY_DATE = r"\d{1,2}\.\d{1,2}\.\d{4}|\d{1,2}\.\s*(?i:" + "|".join(MONTH_NUMBERS) + r")\s+\d{4}"
# A news dateline opening a paragraph: where (and through which agency) or when the report was filed, then a dash
# ("Berlin – Die Bahn …", "Frankfurt/Main (dpa) - Der …", "1. Februar 2026 – Die …"). It is no part of the sentence
# after it: quoted with it, "Wer leitet die Deutsche Bahn?" was answered "Berlin".
DATELINE = re.compile(r"(?!(?i:der|die|das|den|dem|des|ein|eine|einer|eines|dies|diese|dieser|ihr|ihre|sein|seine|"
                      r"mein|unser|kein|keine)\b)"
                      r"(?:[A-ZÄÖÜ][\w.'-]*(?:[ /][A-ZÄÖÜ][\w.'-]*){0,2}(?:[ \t]*\([^()\n]{1,30}\))?|"
                      + DAY_DATE + r")"
                      r"[ \t]+[–—-][ \t]+(?=[\"„»A-ZÄÖÜ0-9])")
# A place after a locative preposition ("in Berlin", "aus der Schweiz").
PLACE_PHRASE = re.compile(r"\b(?:in|aus|nach|bei|nahe|im|von)\s+(?:der\s+|dem\s+|den\s+)?[A-ZÄÖÜ][a-zäöüß]+")
# Two capitalised words in a row (with a name particle between), not at a sentence start: "Susan Li", "Karl der Große".
NAME_PAIR = re.compile(r"(?<![.!?]\s)\b[A-ZÄÖÜ][a-zäöüß]+(?:\s+(?:von|van|de|der|la|le)\s+|\s+)[A-ZÄÖÜ][a-zäöüß]+")

# ---- Short answers: the words in and around a span that answers (rag.answer.spans) ------------------------------
ARTICLES = frozenset("der die das den dem des ein eine einer eines einem einen the a an".split())
PREPOSITIONS = frozenset("""in im an am auf aus bei beim mit nach seit von vom vor zu zum zur über unter um durch
    für gegen ohne bis als wegen während zwischen hinter neben ins ans of on at by for from with to into""".split())
# Lower-case words inside names: "Ludwig van Beethoven", "Louis-Joseph de Montcalm".
NAME_PARTICLES = frozenset("von van de der den da di du la le del zu af ten ter y".split())
# Words that hedge or bound a figure: "rund 39 Milliarden", "zwischen 115 und 135", "mehr als 5.100".
APPROXIMATORS = frozenset("""rund etwa ca circa fast knapp mehr weniger als über unter bis zu zwischen ungefähr nahezu
    annähernd mindestens höchstens gut about around nearly almost over under more than""".split())
RANGE_WORDS = frozenset("bis und - – oder to".split())
# Words after which a definition or a name follows ("ist ein Fachmagazin", "genannt Pons Aelius").
COPULAS = frozenset("ist sind war waren wurde wurden heißt hieß hießen heißen namens genannt bezeichnet als "
                    "is are was were called named".split())
# What a figure counts or measures ("1,5 Gigatonnen", "14,3 Prozent"); compounds are found by their endings.
# Currencies: the units of an amount of money ("wie viele" never counts in them, see ``counted_noun``).
CURRENCIES = frozenset("dollar us-dollar euro € $ £ pfund franken yen yuan cent dollars euros pounds".split())
MEASURE_UNITS = CURRENCIES | frozenset("""prozent % prozentpunkt prozentpunkte grad meter kilometer km m zentimeter
    cm millimeter mm meilen quadratmeilen quadratkilometer km² hektar tonnen kilogramm kg gramm liter jahre jahr jahren
    monate monaten wochen tage tagen stunden minuten sekunden mal einwohner menschen mitglieder punkte percent miles
    years""".split())
MEASURE_ENDINGS = ("prozent", "meter", "meilen", "tonnen", "dollar", "euro", "gramm", "liter")
# Cardinal number words, German compounds ("dreiundzwanzig") and English ones; articles are not numbers here.
CARDINAL_PATTERN = re.compile(
    r"(?:(?:ein|zwei|drei|vier|fünf|sechs|sieben|acht|neun)und)?(?:eins|zwei|drei|vier|fünf|sechs|sieben|acht|neun|"
    r"zehn|elf|zwölf|dreizehn|vierzehn|fünfzehn|sechzehn|siebzehn|achtzehn|neunzehn|zwanzig|dreißig|vierzig|"
    r"fünfzig|sechzig|siebzig|achtzig|neunzig|hundert|tausend|dutzend|doppelt|one|two|three|four|five|six|seven|"
    r"eight|nine|ten|twelve|hundred|thousand)")
# Questions that want a reason or a process, which no short span answers; a development over time is one too
# ("Wie hat sich der Gewinn entwickelt?": each date's figure, not one phrase of one of them).
EXPLANATION_PATTERN = re.compile(r"\b(?:warum|weshalb|wieso|weswegen|aus welchem grund|wie funktionier\w*|wie kam es|"
                                 r"inwiefern|why|how does .{1,40} work)\b|"
                                 r"\bwie (?:hat|haben|hatte|hatten) sich\b.{1,80}?\b(?:entwickelt|verändert|geändert)\b|"
                                 r"\bhow (?:did|has|have|do|does) .{1,60}?\b(?:change|changed|evolve|evolved|develop|"
                                 r"developed)\b", re.IGNORECASE)
# The form of a question by its question words, finer than its answer type: "Welche Schlucht …" (which) wants a
# noun like the one asked, "Wie heißt …" (name) a name, "Was …" (what) a phrase.
QUESTION_FORMS = (
    ("when", re.compile(r"\b(?:wann|seit wann|bis wann|für wann|ab wann|in welche[mn] (?:jahr|jahrhundert|monat|"
                        r"jahrzehnt)|welche[sn]? (?:jahr|datum|jahrhundert|monat)|an welchem tag|when|what year|"
                        r"which year|in what year)\b", re.IGNORECASE)),
    ("count", re.compile(r"\b(?:wie ?viele?|wieviel|wie oft|wie hoch|wie groß|wie lang|wie lange|wie alt|wie weit|"
                         r"wie schwer|wie teuer|wie schnell|um wie viel|welche[nmrs]? (?:anzahl|betrag|summe|höhe|"
                         r"prozentsatz|anteil)|how many|how much|how long|how old|how far|how big|how large)\b",
                         re.IGNORECASE)),
    ("who", re.compile(r"\b(?:wer|wem|wen|wessen|who|whom|whose)\b", re.IGNORECASE)),
    ("where", re.compile(r"\b(?:wo|woher|wohin|where)\b", re.IGNORECASE)),
    ("name", re.compile(r"\b(?:wie (?:heißt|hieß|hießen|heißen|lautet|lautete|nennt|nannte|nennen|werden|wird|wurde"
                        r"|wurden)\b|what is the name|what was the name)", re.IGNORECASE)),
    ("which", re.compile(r"\b(?:welche[rsnm]?|which|what \w+)\b", re.IGNORECASE)),
    ("what", re.compile(r"\b(?:was|wor?(?:für|mit|von|aus|zu|auf|durch|an|in|über|um|nach|bei))\b|\bwhat\b",
                        re.IGNORECASE)),
    ("how", re.compile(r"\b(?:wie|how)\b", re.IGNORECASE)),
)


def stem(word: str) -> str:
    """The Snowball German stem of one lower-case word (the stemmer BM25 uses too)."""
    return _stemmer().stemWord(word)


def stem_bases(stem: str) -> tuple[str, ...]:
    """What a Snowball stem may be an inflected form of, most likely first: itself, itself without up to three
    final letters, and the same without a participle's "ge" ("gesteckt" → steck, "investiert" → investi,
    "gegrund" → grund). Snowball keeps the "-t" of "steckt" and the "ge-" of "gesteckt", which the infinitive's
    stem ("steck") has not; a word list of base forms (``rag.lang.thesaurus``) is found through these."""
    def shorter(s: str) -> list[str]:
        return [s] + [s[:-k] for k in range(1, 4) if len(s) - k >= 4]

    bare = shorter(stem[2:]) if stem.startswith("ge") and len(stem) >= 6 else []
    return tuple(dict.fromkeys(shorter(stem) + bare))


# The noun a "welche"/"wie viele" question names ("Wie viele Punkte …", "Welche Art von Schule …", "Wie viele
# erzwungene Fumbles …"): the question word in any case (it mostly opens the question), then at most two inflected
# adjectives, not a verb ("Wie viel investiert Meta" names none).
# An inflected adjective and the space after it ("erzwungene ", "operativen "): what may stand before the noun.
_ADJECTIVE = r"[a-zäöüß]\w*(?:e|en|er|es|em)\s+"
_ASKED_NOUN_PATTERN = re.compile(r"\b(?i:welche[rsnm]?|wie ?viele?|wieviel|which|how many|how much)\s+"
                                 r"(?:(?:Art|Arten|Sorte|Form|Typ|Typs|kind of|type of)\s+(?:von|der|des|an)?\s*)?"
                                 r"(?:" + _ADJECTIVE + r"){0,2}?([A-ZÄÖÜ][\w-]*|[a-z]+s\b)")
# The measure a "wie hoch/groß …" question asks the value of ("Wie hoch war der operative Verlust …" → Verlust).
_MEASURE_PATTERN = re.compile(r"\b(?i:wie (?:hoch|groß|gross|teuer|lang|schwer|alt)\s+(?:ist|war|sind|waren|lag|"
                              r"liegt|wird|wurde|fiel|fällt))\s+(?:der|die|das|den|dem|des)?\s*"
                              r"(?:" + _ADJECTIVE + r")?([A-ZÄÖÜ][\w-]*)")

# "Wie viele Mitarbeiter …" counts its noun; an amount of money ("14,3 Milliarden Dollar") does not count it, unless
# the noun is money itself ("Wie viele Dollar …", "Wie viele Milliarden …"). Percentages can ("7 bis 10 Prozent"
# of the asked doctors), so only currencies (``CURRENCIES``) rule an answer out.
_COUNT_PATTERN = re.compile(r"\b(?i:wie ?viele|how many)\s+(?:" + _ADJECTIVE + r"){0,2}?([A-ZÄÖÜ][\w-]*|[a-z]+s\b)")


def counted_noun(question: str) -> str | None:
    """The noun a "wie viele" question counts ("Wie viele Mitarbeiter hat …" → Mitarbeiter), unless it is money or
    a scale ("Wie viele Milliarden Dollar …"); None for any other question."""
    match = _COUNT_PATTERN.search(question)
    noun = match.group(1).lower() if match else None
    return None if noun is None or noun in CURRENCIES or noun in SCALES else noun


def names_money(text: str) -> bool:
    """Whether ``text`` ("14,3 Milliarden Dollar", "5 $") gives an amount of money."""
    return any(word in CURRENCIES for word in re.findall(r"[\w-]+|[€$£]", text.lower()))


_PERCENT = re.compile(r"%|\b(?:prozent|percent)\b", re.IGNORECASE)


def names_share_or_money(text: str) -> bool:
    """Whether ``text`` gives a percentage or an amount of money ("von über 90%"): never when something happened."""
    return bool(_PERCENT.search(text)) or names_money(text)


def asked_noun(question: str) -> str | None:
    """The noun whose value or instance the question asks for: after "welche"/"wie viele" ("Wie viele Mitarbeiter"
    → Mitarbeiter) or the measure of "wie hoch ist der …" ("Wie hoch war der Umsatz" → Umsatz); None without one."""
    match = _ASKED_NOUN_PATTERN.search(question) or _MEASURE_PATTERN.search(question)
    return match.group(1) if match else None


_TOKEN_PATTERN = re.compile(DIGITS + r"|[^\W\d_]+(?:[-'][^\W\d_]+)*", re.UNICODE)
_TOKEN_CACHE: dict[str, tuple[str, ...]] = {}
_TOKEN_CACHE_MAX = 2_000_000


def format_date(value: str | None, inferred: bool = False) -> str:
    """``2026-01-28`` → ``28. Januar 2026``, ``2025-07`` → ``Juli 2025``, None → ``ohne Datum``; an inferred date
    says so. Anything else is shown as it is."""
    if not value:
        return "ohne Datum"
    parts = str(value).split("-")
    month = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() and 1 <= int(parts[1]) <= 12 else 0
    text = str(value)
    if len(parts) == 3 and month and parts[0].isdigit() and parts[2].isdigit():
        text = f"{int(parts[2])}. {MONTHS[month - 1]} {parts[0]}"
    elif len(parts) == 2 and month:
        text = f"{MONTHS[month - 1]} {parts[0]}"
    return f"{text} (Datum erschlossen)" if inferred else text


def month_year(value: str | None) -> str | None:
    """``2026-01-28`` → ``Januar 2026``; a bare year stays a year; None when there is no date."""
    if not value:
        return None
    year, _, rest = value.partition("-")
    month = int(rest[:2]) if rest[:2].isdigit() else 0
    return f"{MONTHS[month - 1]} {year}" if 1 <= month <= 12 else year


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """bm25s' German stop words, read from its ``stopwords.py`` alone: importing the bm25s package pulls in
    scipy and numba (about 0.3 s of start-up) that searching does not need."""
    import importlib.util

    spec = importlib.util.find_spec("bm25s")
    location = Path(next(iter(spec.submodule_search_locations))) / "stopwords.py" if spec else None
    if location is None or not location.exists():
        from bm25s.stopwords import STOPWORDS_GERMAN
    else:
        module_spec = importlib.util.spec_from_file_location("_bm25s_stopwords", location)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        STOPWORDS_GERMAN = module.STOPWORDS_GERMAN
    return frozenset(STOPWORDS_GERMAN)


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("german")


def _expand(token: str) -> tuple[str, ...]:
    """What one raw token contributes: itself for a number, else its non-stop-word parts, expanded and stemmed."""
    if token[0].isdigit():
        return (token,)
    stop = stopwords()
    if token in stop:
        return ()
    stem = _stemmer().stemWord
    parts = []
    for part in token.split("-"):
        part = SCALE_ABBREVIATIONS.get(part, part)
        if part and part not in stop:
            parts.append(stem(part))
    return tuple(parts)


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop-word-free, Snowball-stemmed tokens; numbers ("14,3", "1.000") are kept whole and unstemmed.

    Why our own: bm25s' tokenizer splits "14,3" into "14" and "3", and figures are what users ask about.
    """
    cache = _TOKEN_CACHE
    tokens: list[str] = []
    for token in _TOKEN_PATTERN.findall(text.casefold()):
        parts = cache.get(token)
        if parts is None:
            parts = _expand(token)
            if len(cache) < _TOKEN_CACHE_MAX:
                cache[token] = parts
        tokens += parts
    return tokens


# Linking elements between the parts of a German compound ("Quartal-s-umsatz", "Arbeit-s-markt", "Sonne-n-schein").
LINKING_ELEMENTS = ("s", "es", "n", "en", "e", "er", "")


def compound_parts(stem: str, known: Callable[[Iterable[str]], Collection[str]]) -> tuple[str, ...]:
    """A German compound's modifier and head as stems that ``known`` (stems → those a corpus uses) knows:
    "quartalsumsatz" → ("quartal", "umsatz") when the articles say "Umsatz" and "Quartal" but never
    "Quartalsumsatz"; () when the word is not such a compound.

    Why: a question's compound that no article uses matches nothing, though the articles state its parts
    ("Wie hoch war der Quartalsumsatz?" over "der Umsatz im vergangenen Quartal"). The head is the longest known
    ending of at least four letters (the head of a German compound is its last part); the modifier before it, less
    a linking element, must be a known word of three letters or more, so that a prefix ("ver-antwort") is not a
    part."""
    def modifiers(i: int) -> list[str]:
        """The words the first ``i`` letters may be, less a linking element, in ``LINKING_ELEMENTS`` order."""
        return [stem[:i - len(link)] for link in LINKING_ELEMENTS
                if stem[:i].endswith(link) and i - len(link) >= 3]

    ends = range(1, len(stem) - 3)
    found = set(known([*(stem[i:] for i in ends), *(m for i in ends for m in modifiers(i))]))
    for i in ends:
        if stem[i:] in found:
            modifier = next((m for m in modifiers(i) if m in found), None)
            return (modifier, stem[i:]) if modifier else ()
    return ()


# ---- What a question asks for and how sentences refer back (used by the answer selector) ------------------------
# The kind of answer a question's wording asks for, German and English question words; the first that matches wins
# ("Warum …" before "wer", "Wann …" before "wie viele"). General question grammar, not any corpus's vocabulary.
ANSWER_TYPES = ("person", "date", "amount", "place", "reason", "other")
QUESTION_TYPE_PATTERNS = (
    ("reason", re.compile(r"\b(?:warum|weshalb|wieso|weswegen|aus welchem grund|why)\b", re.I)),
    ("date", re.compile(r"\b(?:wann|seit wann|bis wann|in welche[mn] (?:jahr|jahrhundert|jahrzehnt|monat|zeitraum)|"
                        r"an welche[mn] (?:tag|datum)|welche[ns]? (?:jahr|datum|jahrhundert)|when|what year|"
                        r"which year)\b", re.I)),
    ("amount", re.compile(r"\b(?:wie ?viele?[nrs]?|wie (?:hoch|groß|gross|lang|lange|alt|weit|oft|schnell|schwer|"
                          r"teuer|stark|breit|tief|dick|warm|kalt|häufig)|um wie viel|welche[nrs]? (?:anteil|"
                          r"prozentsatz|anzahl|zahl|betrag|summe|höhe|größe|länge)|how (?:much|many|long|old|"
                          r"far|big|large|high|often))\b", re.I)),
    ("person", re.compile(r"\b(?:wer|wem|wen|wessen|who|whom|whose)\b", re.I)),
    ("place", re.compile(r"\b(?:wo|woher|wohin|where|in welche[mnr] (?:stadt|land|region|staat|ort|gegend|"
                         r"teil|bundesstaat|provinz|kontinent|gebiet))\b", re.I)),
)
# Units and measure words that make a bare number an amount.
UNIT_PATTERN = re.compile(r"%|\b(?:prozent|euro|dollar|us-dollar|pfund|franken|yen|meter|kilometer|km|cm|mm|kilogramm|"
                          r"kg|tonnen|grad|stunden|minuten|sekunden|tage|jahre|monate|wochen|einwohner|menschen|"
                          r"mitglieder|quadratkilometer|hektar|liter|mal|millionen|milliarden|mio|mrd)\b", re.I)
# A sentence that leans on the one before ("Das entspricht …", "Er wurde …"): pronouns and demonstratives at its start.
ANAPHOR_PATTERN = re.compile(r"(?:Das|Dies|Diese[rsmn]?|Damit|Dabei|Dadurch|Daher|Deshalb|Dort|Danach|Darauf|Somit|"
                             r"Er|Sie|Es|Ihr|Ihre|Sein|Seine|Jene[rsmn]?|Hier|Hierbei)\b")


def question_type(question: str) -> str:
    """The kind of answer a question asks for (one of ``ANSWER_TYPES``), from its question words."""
    for kind, pattern in QUESTION_TYPE_PATTERNS:
        if pattern.search(question):
            return kind
    return "other"


# Function words of one language only ("in" and "will" are German too, "was" is counted on both sides), so that
# "In welchem Jahr wurde X in Y gegründet?" stays German.
_ENGLISH_WORDS = re.compile(r"\b(?:the|how|what|who|whom|whose|which|when|where|why|does|did|do|is|are|was|were|"
                            r"has|have|had|been|be|much|many|of|and|or|than|to|for|from|with|by|at|this|that|it|"
                            r"its|their|his|can|could|would|should)\b", re.IGNORECASE)
# An English question word no German question starts with ("was" is both).
_ENGLISH_START = re.compile(r"\s*[„\"'(]?(?:how|what|who|whom|whose|which|when|where|why)\b", re.IGNORECASE)
_GERMAN_WORDS = re.compile(r"\b(?:der|die|das|und|wie|wer|wem|wen|wessen|was|wann|wo|warum|wieso|weshalb|ist|"
                           r"sind|hat|im|von|den|dem|nicht|mit|für|"
                           r"welche[rsnm]?|wurden?|wird|ein|eine[rsnm]?|auf|zu|bei|nach|aus|sich|es|er|sie|als|auch)\b"
                           r"|[äöüß]", re.IGNORECASE)


def looks_english(text: str) -> bool:
    """Whether a question is English rather than German (the articles are German; the chat then says so):
    more English function words than German ones, and at least two, or one when it is the English question word
    the question starts with ("Who won Super Bowl XLIX?", "Where is Brazil ranked …?": 43 of XQuAD-de's 1,180
    English questions were taken for German before)."""
    english = len(_ENGLISH_WORDS.findall(text))
    return english >= (1 if _ENGLISH_START.match(text) else 2) and english > len(_GERMAN_WORDS.findall(text))
# A question about how something changed over time wants one dated statement per source, not one sentence.
# A comparison of two things needs a fact per side. These words name one ("im Vergleich zu", "gegenüber"); a
# comparative ("teurer", "mehr") before "als" or alternatives ("A oder B") makes one too
# (``rag.lang.pos.asks_comparison``: the tagger tells "teurer" from "chemischer").
COMPARISON_QUESTION = re.compile(r"\b(?:im vergleich|verglichen|gegenüber|versus|vs|compared|than|differ\w*|"
                                 r"unterschied\w*|unterscheide[nt])\b", re.I)
COMPARATIVE_WORDS = frozenset({"mehr", "weniger", "more", "less"})
# A question that asks "yes or no" starts with its finite verb ("Hat Meta …?", "Wurde Norwegen …?"; in English with
# an auxiliary: "Did Meta …?"); no span of a quote says "ja" or "nein", so such a question gets no short answer
# (``rag.lang.pos.asks_yes_no``). Alternatives ("Ist Llama frei verfügbar oder geschlossen?") are answered by a span.
ENGLISH_AUXILIARIES = frozenset("do does did is are was were am has have had can could will would shall should may "
                                "might must".split())
ALTERNATIVES = re.compile(r"\b(?:oder|or)\b", re.IGNORECASE)
# The polite imperative "Nennen Sie …" starts with a finite-looking verb too, and asks for a span.
IMPERATIVE_PRONOUNS = frozenset({"sie"})
# A comparative's "als" stands at most this many words after it ("mehr gekostet als", "schneller gewachsen als").
COMPARISON_SPAN = 4
CHANGE_QUESTION = re.compile(r"\b(?:entwickelt|entwickelten|verändert|veränderten|geändert|im laufe? der zeit|"
                             r"over time|changed?|evolved?|developed)\b|\b(?:von|zwischen|from|between) \d{4} "
                             r"(?:bis|und|to|and) \d{4}\b", re.I)

# A noun and the name it belongs to: "Meta-Chef", "Metas Finanzchefin", "die Finanzchefin von Microsoft", "der
# Trainer der Broncos". Each pattern gives (owner, noun) or (noun, owner) as ``OWNED_ORDER`` says; whether the owner is
# a name and not a common noun ("der Chef des Konzerns") is the tagger's call (``rag.lang.pos.is_name``). Two capital
# letters before a hyphen name a field more often than an owner ("KI-Chef", "US-Geschäft", "EU-Kommission").
OWNED = (
    re.compile(r"\b([A-ZÄÖÜ][\w.&]*[\w&][\w.&]+)-(?:[\w]+-)*([A-ZÄÖÜ][a-zäöüß]+)\b"),
    re.compile(r"\b([A-ZÄÖÜ][\w]*?[^\Ws])s\s+([A-ZÄÖÜ][a-zäöüß]+)\b"),
    re.compile(r"\b([A-ZÄÖÜ][a-zäöüß]+)\s+(?:von|vom|des|der)\s+(?:der\s+|dem\s+|den\s+)?([A-ZÄÖÜ][\w-]*)"),
)
OWNED_ORDER = ("owner", "owner", "noun")
# The same in an English question: "Meta's CFO", "the chief of OpenAI" (an English noun is lower case, so a
# capitalised owner is a name).
ENGLISH_OWNED = (
    re.compile(r"\b([A-Z][\w.&-]*)['’]s\s+([A-Za-z]+)\b"),
    re.compile(r"\b([a-z]+|[A-Z]{2,})\s+of\s+(?:the\s+)?([A-Z][\w.&-]*)"),
)
ENGLISH_OWNED_ORDER = ("owner", "noun")


def owned_nouns(text: str, english: bool = False) -> list[tuple[str, str]]:
    """Every (noun, owner) pair of ``text`` that ``OWNED`` (``english``: ``ENGLISH_OWNED``) finds, the owner not
    yet checked to be a name."""
    pairs = []
    patterns = zip(ENGLISH_OWNED, ENGLISH_OWNED_ORDER) if english else zip(OWNED, OWNED_ORDER)
    for pattern, first in patterns:
        for match in pattern.finditer(text):
            a, b = match.group(1), match.group(2)
            pairs.append((b, a) if first == "owner" else (a, b))
    return pairs


# A question about what the articles say on a subject ("Was berichten die Artikel über Llama 4?", "What do the sources
# say about …?"): each article's statement is the answer, not the one best sentence.
OVERVIEW_QUESTION = re.compile(r"\b(?:berichten|sagen|schreiben|melden|erzählen|steht|stehen)\b[^?]*?\b(?:die|den) "
                               r"(?:Artikeln?|Quellen|Texten?|Berichten?|Medien)\b|\bwhat do (?:the )?(?:articles|"
                               r"sources|texts|reports) (?:say|report|write|tell)\b", re.I)


# ---- Times a sentence names (rag.answer.facts): quarters, and years and quarters relative to the publication date -
# Ordinals of quarters ("im dritten Quartal", "das erste Quartal", "Q3", "3. Quartal 2024", "Schlussquartal"); English
# ones too. "Im letzten Quartal 2025" is the year's last; without a year "letzten Quartal" is the one before the
# article (``LAST_QUARTER``), so that ordinal counts only with a year.
QUARTER_WORDS = {**{f"{word}{ending}": number for number, word in enumerate(("erste", "zweite", "dritte", "vierte"), 1)
                    for ending in ("", "n", "m", "s")},
                 "first": 1, "second": 2, "third": 3, "fourth": 4, "1.": 1, "2.": 2, "3.": 3, "4.": 4}
# Quarters named by their season or place in the year.
NAMED_QUARTERS = {"schlussquartal": 4, "jahresendquartal": 4, "weihnachtsquartal": 4, "sommerquartal": 3,
                  "auftaktquartal": 1}
QUARTER = re.compile(r"\b((?:erste|zweite|dritte|vierte)[nms]?|first|second|third|fourth|[1-4]\.)\s+(?:Quartal|quarter)"
                     r"(?:s)?(?:\s+(?:of\s+)?(\d{4}))?|\bQ([1-4])(?:[ /]+(\d{4}))?|"
                     r"\b(" + "|".join(NAMED_QUARTERS) + r")(?:s)?(?:\s+(\d{4}))?|"
                     r"\b(?:letzten?|last)\s+(?:Quartal|quarter)s?\s+(?:of\s+)?(\d{4})",
                     re.IGNORECASE)
# "Quartalsumsatz Ende 2025", "im Quartal Anfang 2024": a quarter named by the edge of its year; read only in a text
# that speaks of a quarter and numbers none of that year ("Ende 2025" alone is a time of year, not a quarter).
QUARTER_WORD = re.compile(r"quartal|quarter", re.IGNORECASE)
YEAR_EDGE = re.compile(r"\b(Ende|Anfang|Jahresende|Jahresanfang|end|start|beginning)\s+(?:of\s+)?(\d{4})\b",
                       re.IGNORECASE)
YEAR_EDGE_QUARTERS = {"ende": 4, "jahresende": 4, "end": 4, "anfang": 1, "jahresanfang": 1, "start": 1,
                      "beginning": 1}
THIS_YEAR = re.compile(r"\b(?:laufenden?|diese[mns]?|this|current)\s+(?:Geschäfts|Kalender)?(?:jahr|year)s?\b|"
                       r"\bheuer\b", re.IGNORECASE)
LAST_YEAR = re.compile(r"\b(?:vergangene[mns]?|letzte[mns]?|abgelaufene[mns]?|vorige[mns]?)\s+(?:Geschäfts)?Jahr\b|"
                       r"\b(?:im|das) Vorjahr\b(?! (?:gegenüber|verglichen))|\blast year\b", re.IGNORECASE)
# "… nach 3,74 Milliarden vor einem Jahr": a comparison with the year before, not the time the sentence is about.
YEAR_BEFORE = re.compile(r"\bvor einem Jahr\b|\bein Jahr (?:zuvor|davor|früher)\b|\ba year (?:earlier|before|ago)\b|"
                         r"\bVorjahres(?:zeitraum|quartal|wert|monat)\w*|\b(?:gegenüber dem|im Vergleich zum|verglichen "
                         r"mit dem) Vorjahr\b", re.IGNORECASE)
NEXT_YEAR = re.compile(r"\b(?:nächste[mns]?|kommende[mns]?|folgende[mns]?)\s+(?:Geschäfts)?Jahr\b|\bnext year\b",
                       re.IGNORECASE)
YEARS_AGO = re.compile(r"\b(vor|in)\s+(\d{1,2}|zwei|drei|vier|fünf|sechs|sieben|acht|neun|zehn)\s+Jahren\b",
                       re.IGNORECASE)
_NAMED_YEAR = re.compile(r"(?<![\d.,])(?:1\d{3}|20\d{2})(?![\d.,]\d)")


def dated_question(question: str, today: str) -> str:
    """The question with the years its relative phrases mean on ``today`` (ISO date) in their place: "Wie viel
    investiert Meta dieses Jahr?" on 2 December 2026 → "Wie viel investiert Meta 2026?"; "letztes Jahr", "im
    Vorjahr", "vor zwei Jahren", "nächstes Jahr" likewise. A question that names a year is left as it is: its
    phrases are about that year ("im letzten Quartal 2025").

    Why: retrieval and the answer's time filter read years; "dieses Jahr" named none, so the articles' sentences
    that say "für dieses Jahr" (about their own, older year) matched best, and no sentence about the asked year
    stood out (answerability 0.40 against 0.99 for the same question with "2026")."""
    if _NAMED_YEAR.search(question):
        return question
    year = int(today[:4])
    question = THIS_YEAR.sub(str(year), question)
    question = LAST_YEAR.sub(str(year - 1), question)
    question = NEXT_YEAR.sub(str(year + 1), question)

    def years_away(match: re.Match) -> str:
        count = match.group(2)
        step = int(count) if count.isdigit() else NUMBER_WORDS[count.lower()]
        return str(year - step if match.group(1).lower() == "vor" else year + step)

    return YEARS_AGO.sub(years_away, question)


LAST_QUARTER = re.compile(r"\b(?:vergangenen|abgelaufenen|letzten|jüngsten|zurückliegenden|vorigen)\s+Quartal",
                          re.IGNORECASE)
THIS_QUARTER = re.compile(r"\b(?:laufenden?|diese[mn]|aktuellen)\s+Quartal", re.IGNORECASE)
NEXT_QUARTER = re.compile(r"\b(?:nächsten|kommenden|folgenden)\s+Quartal", re.IGNORECASE)
# Where a clause ends inside a sentence: a dash, a semicolon or colon, or a comma before a conjunction. A figure
# belongs to the time named in its own clause ("Für dieses Jahr … 37 bis 40 Milliarden – und … dass sie 2025 …").
CLAUSE_END = re.compile(r"\s[–—-]\s|;|:\s|,\s+(?=(?:und|aber|doch|während|dass|wobei|nachdem|weil|wenn|als|"
                        r"sondern|so dass|sodass)\b)")


# ---- Names in questions and what refers back to them (rag.answer.followup) ---------------------------------------
# Articles, demonstratives and possessives before a noun: a capitalised word after one is a noun ("der Umsatz").
DETERMINERS = frozenset(
    """der die das den dem des ein eine einen einem einer eines kein keine keinen keinem keiner dies diese dieser
    diesen diesem dieses jede jeder jedes jeden jedem ihr ihre ihren ihrem ihrer sein seine seinen seinem seiner
    im am zum zur vom beim ins the a an its their""".split()
)
# Quantifiers before a noun: "viel Geld", "mehr Umsatz", "wenige Nutzer", "much money".
QUANTIFIERS = frozenset("viel viele vielen vieler wenig wenige wenigen weniger mehr etwas genug einige einigen "
                        "mehrere manche much many more less few".split())
# Words that follow a verb opening a yes/no question ("Steigt der …", "Lohnt sich …"): not a subject's name.
AFTER_VERB = DETERMINERS | {"sich", "es", "man", "er", "sie", "wir", "ich", "du", "mehr", "weniger", "noch", "auch",
                            "bereits", "schon", "there", "it", "they"}
# Possessives and personal pronouns that refer to someone named before ("ihr Umsatz", "Wo investiert er?").
POSSESSIVE = re.compile(r"\b(?:ihr|ihre|ihren|ihrem|ihrer|ihres|sein|seine|seinen|seinem|seiner|seines|deren|dessen|its|"
                        r"their)\b(?=\s+[A-Za-zÄÖÜäöü])", re.IGNORECASE)
PRONOUN = re.compile(r"\b(?:er|sie|es|ihn|ihm|ihnen|it|they|them)\b", re.IGNORECASE)
# Adverbs that point to a place or a thing named before ("Wer ist dort Finanzchefin?").
POINTING_ADVERBS = re.compile(r"\b(?:dort|dabei|hierbei|daran|dafür|davon|there)\b", re.IGNORECASE)
# Words that are capitalised at the start of a question (or are English) but name nothing: question words,
# conjunctions, auxiliary and modal verbs, English function words.
FUNCTION_WORDS = frozenset(
    """wie wer wen wem wessen was wann wo woher wohin warum weshalb wieso welche welcher welches welchen welchem
    wofür womit wozu wodurch worüber woran wovon wieviel inwiefern seit gibt geht stimmt
    und oder aber auch sowie bitte gab hat haben ist sind war waren wird werden kann können soll sollen
    how what who whom whose when where why which and or does did do is are was were will can could should
    the a an in on at for of about with from by i ich""".split()
)
# Common nouns written as acronyms (not names of anyone), and the quarters.
COMMON_ACRONYMS = frozenset("ki ai ceo cfo cto coo cio it bip q1 q2 q3 q4".split())
# Nouns of time that stand before a year or a date ("Ende 2025", "Anfang des Jahres", "Frühjahr 2024").
TIME_NOUNS = frozenset("""jahr jahre jahren jahres quartal quartals quartale monat monate monats woche wochen tag tage
    frühjahr frühling sommer herbst winter anfang ende mitte""".split())
# Endings of German common nouns and of the heads of compounds ("Finanzchefin", "Werbung", "Ergebnis", "Umsatz").
NOUN_SUFFIXES = ("ung", "ungen", "heit", "heiten", "keit", "keiten", "schaft", "schaften", "tion", "tionen", "ität",
                 "itäten", "nis", "nisse", "ismus", "chef", "chefin", "chefs", "leiter", "leiterin", "ment", "ments",
                 "zahlen", "kosten", "markt", "märkte", "geschäft", "satz", "sätze", "gewinn", "verlust", "zentrum",
                 "zentren")


def is_common_word(word: str) -> bool:
    """Whether a capitalised word is a common word rather than a name, by general German alone: a function word, a
    month or another time noun, a scale word or unit ("Milliarden", "Euro"), a common acronym ("KI", "CEO"), or a
    word longer than five letters with a common-noun ending ("Produktion", "Finanzchefin"). What the word stands
    after (a determiner, a quantifier) and where (a question's first word) is for the caller to weigh."""
    low = word.lower()
    if low in FUNCTION_WORDS or low in MONTH_NUMBERS or low in TIME_NOUNS or low in COMMON_ACRONYMS:
        return True
    if low in SCALES or low in MEASURE_UNITS:
        return True
    return len(low) > 5 and low.endswith(NOUN_SUFFIXES)


# Prepositions grouped by what the phrase after them usually is: a place ("in Edinburgh"), a position or occasion
# ("am Rhein", "bei Siemens"), an origin or agent ("von Eero Saarinen"), a manner or role ("als Fachmagazin"), a time
# ("seit 1862").
PREPOSITION_GROUPS = {"in": frozenset("in im ins".split()), "at": frozenset("am an auf bei".split()),
                      "from": frozenset("von vom aus durch".split()), "with": frozenset("mit für als".split()),
                      "time": frozenset("seit bis um nach vor".split())}
