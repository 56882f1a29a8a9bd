"""German parts of speech: HanTa's shipped model tags nouns, names, numbers and function words, loads with the network
blocked, and only when first asked."""

import os
import subprocess
import sys
from pathlib import Path

from rag.lang import pos

GUARD = Path(__file__).resolve().parent / "offline_guard"


def test_nouns_names_numbers_and_function_words():
    words = "Für das laufende Jahr 2026 plant Meta Investitionen in Höhe von 115 Milliarden Dollar".split()
    classes = dict(zip(words, pos.word_classes(words)))
    assert classes["Jahr"] == "noun" and classes["Meta"] == "name" and classes["2026"] == "number"
    assert classes["das"] == "det" and classes["in"] == "prep" and classes["plant"] == "verb"
    assert classes["laufende"] == "adja"
    assert pos.word_classes([]) == ()


def test_every_tag_has_a_class():
    assert {pos.word_class(tag) for tag in ("VV(FIN)", "VA(INF)", "PTKZU", "$,", "XY")} == {"verb", "particle", "other"}
    assert pos.PHRASE <= set(pos.CLASSES) and pos.HEADS <= pos.PHRASE


def test_the_model_loads_offline_and_not_at_import(tmp_path):
    log = tmp_path / "blocked.log"
    log.write_text("", encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(GUARD), os.environ.get("PYTHONPATH", "")]),
               RAG_OFFLINE_LOG=str(log))
    script = ("import sys; from rag.lang import pos; import rag.answer.spans; assert 'HanTa' not in sys.modules; "
              "pos.warm_up(); assert 'HanTa' in sys.modules; print(pos.word_classes(['Wer', 'leitet', 'Scale', 'AI', '?']))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "pron" in result.stdout and log.read_text() == ""


def test_a_giant_token_is_tagged_quickly():
    import time

    started = time.perf_counter()
    classes = pos.word_classes(["Das", "ist", "Datenübertragungsprotokoll" * 400, "."])
    assert time.perf_counter() - started < 2.0 and classes[2] == "noun"


def test_a_comparative_is_told_from_an_inflected_adjective():
    assert pos.is_comparative("teurer") and pos.is_comparative("höher") and pos.is_comparative("besser")
    assert not pos.is_comparative("chemischer") and not pos.is_comparative("welcher")


def test_comparisons_are_found_by_their_grammar_not_by_adjacent_words():
    for question in ("Hat das Training mehr gekostet als die Einigung?", "Was war teurer: der Kauf oder der Deal?",
                     "Ist der Umsatz 2025 schneller gewachsen als 2024?", "Wer steckt mehr Geld in KI, A oder B?",
                     "Wie unterscheiden sich Meta und Microsoft?", "Wie hoch ist der Umsatz im Vergleich zu 2024?",
                     "Is Google spending more than Meta?"):
        assert pos.asks_comparison(question), question
    for question in ("Wer war an der Verwendung chemischer Verbindungen als Arzneimittel beteiligt?",
                     "Welcher Standort lenkte als letzter ein?", "Wie viel investiert Meta 2026?",
                     "Wann wurde die Firma gegründet oder gekauft?"):
        assert not pos.asks_comparison(question), question


def test_a_word_outside_the_lexicon_is_analysed_once_with_the_same_tags():
    from HanTa import HanoverTagger

    fresh = HanoverTagger.HanoverTagger(pos.MODEL)  # the bare tagger, analysing every unknown word again
    first = ["Die", "Quartalsumsatzprognosen", "der", "Zwergkaninchenzüchter", "stiegen", "."]
    second = ["Wer", "kennt", "die", "Zwergkaninchenzüchter", "?"]
    tagger = pos._tagger()
    before = tagger.analyze_forward.cache_info()
    assert pos.tag_words(tuple(first)) == tuple(fresh.tag_sent(first, taglevel=0))
    assert pos.tag_words(tuple(second)) == tuple(fresh.tag_sent(second, taglevel=0))
    after = tagger.analyze_forward.cache_info()
    assert after.hits > before.hits  # "Zwergkaninchenzüchter" is not analysed a second time


def test_a_question_opened_by_its_finite_verb_asks_yes_or_no_unless_it_offers_alternatives_or_commands():
    for question in ("Hat Meta AI mehr Nutzer als ChatGPT?", "Wurde Norwegen 1972 Mitglied der Europäischen Union?",
                     "Kann Meta das finanzieren?", "Gibt es Pläne für Europa", "Stieg die Aktie nach den Zahlen?",
                     "Haben Sie Zahlen zu 2025?", "Did Meta spend more than Microsoft?"):
        assert pos.asks_yes_no(question), question
    for question in ("Ist Llama frei verfügbar oder ein geschlossenes Modell?", "Is Llama open or closed?",
                     "Nennen Sie ein Luxussegment von Toyota?", "Nenne drei Beispiele für Hugenotten.",
                     "Hat Meta angekündigt, wie viel es 2026 investiert?", "Wie viel investiert Meta 2026?",
                     "Meta investiert 2026 wie viel?", "How much did Meta invest?", "Und 2025?", "Susan Li?", "",
                     "?!"):
        assert not pos.asks_yes_no(question), question



def test_an_owner_is_a_name_unless_the_tagger_reads_a_common_noun():
    assert pos.is_name("Microsoft") and pos.is_name("Marlow")
    assert not pos.is_name("Konzerns") and not pos.is_name("Nordlicht")


def test_acting_names_are_not_complements_of_a_preposition():
    assert pos.acting_names("Für das laufende Jahr plant Meta Investitionen von 40 Milliarden.") == ["Meta"]
    assert pos.acting_names("Microsoft will 80 Milliarden in Rechenzentren für KI und Cloud investieren.") == [
        "Microsoft"]
    assert pos.acting_names("der Mädchen in den Küstengebieten von Malindi und Mombasa") == []
    # a capitalised word read as a verb is a name within a sentence, not at its opening
    assert pos.acting_names(", Google plant mit 75 Milliarden.") == ["Google"]
    assert pos.acting_names("Bauen will die Werft nicht.") == []
