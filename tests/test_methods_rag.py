"""RAG baselines: the right passage is retrieved and put in the shared prompt; storage grows with the store."""

from __future__ import annotations

import pytest

from selfparam.methods.base import Context, Query, RetrievingMethod
from selfparam.methods.rag import BM25RAG, DenseRAG, RAGConfig, chunk_text
from selfparam.methods.registry import build_method
from selfparam.prompts import answer_prompt

CONTEXTS = [
    Context("bowl", "Super Bowl 50 was won by the Denver Broncos, who beat the Carolina Panthers 24 to 10."),
    Context("cat", "The cat of the Louvre museum sleeps on a velvet cushion near the Mona Lisa."),
    Context("rain", "Monsoon rains in Kerala usually begin in early June and last until September."),
]
QUESTIONS = ["Which team won Super Bowl 50?", "Where does the Louvre cat sleep?", "When do the monsoon rains begin?"]


@pytest.fixture(scope="module")
def dense_encoder_rag():
    from selfparam.testing import tiny_lm

    return DenseRAG(tiny_lm())


def test_chunking():
    assert chunk_text("a b c d e", 2, 1) == ["a b", "b c", "c d", "d e"]
    assert chunk_text("a b c d e", 2) == ["a b", "c d", "e"]
    assert chunk_text("a  b\nc", 0) == ["a b c"]
    assert chunk_text("   ", 3) == []


@pytest.mark.parametrize("field, value", [("top_k", 0), ("chunk_words", -1), ("batch_size", 0)])
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        RAGConfig(**{field: value})
    with pytest.raises(ValueError, match="chunk_overlap"):
        RAGConfig(chunk_words=4, chunk_overlap=4)


def _check_retrieval(method):
    assert isinstance(method, RetrievingMethod)
    assert method.retrieve(QUESTIONS) == [[], [], []]  # nothing stored: the question alone, as Base(Q)
    assert method.retrieved_ids(QUESTIONS) == [None, None, None]
    assert method.prompt_for(Query(QUESTIONS[0])) == answer_prompt(method.lm.tokenizer, QUESTIONS[0])
    assert method.storage_bytes() == 0
    method.inject(CONTEXTS[:1])
    one = method.storage_bytes()
    method.inject(CONTEXTS[1:])  # a second update adds to the store
    assert method.storage_bytes() > one > 0
    retrieved = method.retrieve(QUESTIONS)
    assert [r[0] for r in retrieved] == [c.text for c in CONTEXTS]
    assert method.retrieved_ids(QUESTIONS[::-1]) == [c.id for c in CONTEXTS[::-1]]  # the best passage's context
    # the retrieved passage stands where Base(C+Q) puts the gold context
    assert method.prompt_for(Query(QUESTIONS[1], context="ignored gold")) == \
        answer_prompt(method.lm.tokenizer, QUESTIONS[1], CONTEXTS[1].text)
    # so RAG answers exactly as Base(C+Q) does with the gold context
    in_context = build_method("base-cq", method.lm)
    gold = [Query(q, context=c.text) for q, c in zip(QUESTIONS, CONTEXTS)]
    assert method.answer([Query(q) for q in QUESTIONS], max_new_tokens=3) == in_context.answer(gold, max_new_tokens=3)


def test_bm25_retrieves_the_matching_context(tiny):
    method = build_method("rag-bm25", tiny)
    assert isinstance(method, BM25RAG)
    _check_retrieval(method)
    # a question of stop words only matches nothing: every score ties at 0 and store order decides
    assert method.retrieve(["the of a"]) == [[CONTEXTS[0].text]]


def test_dense_retrieves_the_matching_context(dense_encoder_rag):
    dense_encoder_rag.reset()
    _check_retrieval(dense_encoder_rag)
    # storage: the passages' UTF-8 bytes plus one float32 embedding (384-d MiniLM) per passage
    text_bytes = sum(len(c.text.encode("utf-8")) for c in CONTEXTS)
    assert dense_encoder_rag.storage_bytes() == text_bytes + len(CONTEXTS) * 384 * 4
    dense_encoder_rag.reset()


def test_top_k_and_chunks(tiny):
    method = BM25RAG(tiny, RAGConfig(top_k=2, chunk_words=6))
    method.inject(CONTEXTS)
    assert len(method.passages) > len(CONTEXTS)
    passages = method.retrieve(["Who won Super Bowl 50?"])[0]
    assert len(passages) == 2 and "Super Bowl 50" in passages[0]


@pytest.mark.parametrize("make", [lambda lm: BM25RAG(lm), "dense"])
def test_reset_save_load(tiny, tmp_path, make, dense_encoder_rag):
    method = dense_encoder_rag if make == "dense" else make(tiny)
    method.reset()
    method.inject(CONTEXTS)
    before = method.retrieve(QUESTIONS)
    size = method.storage_bytes()
    method.save(tmp_path / "store")
    method.reset()
    assert method.storage_bytes() == 0 and method.retrieve(QUESTIONS) == [[], [], []]
    method.load(tmp_path / "store")
    assert method.retrieve(QUESTIONS) == before
    assert method.storage_bytes() == size
    assert method.sources == ["bowl", "cat", "rain"]
    method.reset()


def test_load_refuses_another_methods_folder(tiny, tmp_path):
    BM25RAG(tiny).save(tmp_path / "bm25")
    with pytest.raises(ValueError, match="not 'rag-dense'"):
        DenseRAG.load(DenseRAG.__new__(DenseRAG), tmp_path / "bm25")


def test_wrong_config_type(tiny):
    with pytest.raises(TypeError, match="RAGConfig"):
        BM25RAG(tiny, config={"top_k": 2})
