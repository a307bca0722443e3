"""RECIPE fast tier: a tiny random Llama and a tiny random sentence encoder built in code (no weights)."""

from __future__ import annotations

import json

import pytest
import torch
from torch.nn import functional as F

from selfparam.eval.editing_data import EditRecord, load_edits
from selfparam.generation import generate, target_logprob, target_token_accuracy
from selfparam.methods.base import Context, Query
from selfparam.methods.recipe import (
    EditorConfig,
    KnowledgeRepository,
    Recipe,
    RecipeConfig,
    RecipeEditor,
    TrainConfig,
    fact_text,
    sentinel_retrieve,
)
from selfparam.methods.recipe.encoder import MeanPoolEncoder
from selfparam.methods.recipe.losses import IGNORE, masked_kl, sentinel_info_nce, target_cross_entropy
from selfparam.methods.recipe.prompting import prompted_generate
from selfparam.prompt_vectors import insert_prompts, prompted_logits
from selfparam.prompts import answer_prompt


def tiny_encoder(seed: int = 0) -> MeanPoolEncoder:
    from transformers import BertConfig, BertModel

    from selfparam.testing import byte_tokenizer

    tok = byte_tokenizer()
    tok.padding_side = "right"
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=256, pad_token_id=tok.pad_token_id)
    return MeanPoolEncoder(BertModel(cfg), tok, name="tiny-bert")


def tiny_editor(lm, encoder, seed: int = 0, **overrides) -> RecipeEditor:
    torch.manual_seed(seed)
    cfg = EditorConfig(encoder="tiny-bert", repr_dim=16, head_hidden=32, prompt_hidden=32, **overrides)
    return RecipeEditor(cfg, encoder.dim, lm.model.config.hidden_size, prompt_scale=1.0, llm_name=lm.name).eval()


@pytest.fixture
def recipe(tiny):
    enc = tiny_encoder()
    return Recipe(tiny, RecipeConfig(batch_size=4), editor=tiny_editor(tiny, enc), encoder=enc)


# --- the sentinel rule ------------------------------------------------------------------------------------

def test_sentinel_rule_on_hand_made_vectors():
    keys = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    sentinel = F.normalize(torch.tensor([1.0, 1.0, 1.0]), dim=0)
    queries = F.normalize(torch.tensor([
        [0.9, 0.1, 0.0],   # close to key 0 -> 0
        [0.1, 0.9, 0.1],   # close to key 1 -> 1
        [0.3, 0.3, 0.9],   # closer to the sentinel than to any key -> nothing
    ]), dim=1)
    index, best, sent = sentinel_retrieve(queries, keys, sentinel)
    assert index.tolist() == [0, 1, -1]
    assert best[2] < sent[2] and best[0] > sent[0]
    empty, _, _ = sentinel_retrieve(queries, torch.zeros(0, 3), sentinel)
    assert empty.tolist() == [-1, -1, -1]


def test_recency_retrieves_the_latest_of_the_nearly_best_keys():
    sentinel = torch.tensor([0.0, 0.0, 1.0])
    keys = F.normalize(torch.tensor([[1.0, 0.00, 0.0],    # earlier fact
                                     [1.0, 0.05, 0.0],    # the same fact restated later (nearly the same key)
                                     [0.0, 1.00, 0.0]]), dim=1)  # another fact, stored last
    queries = F.normalize(torch.tensor([[1.0, 0.0, 0.1], [0.1, 1.0, 0.0], [0.0, 0.0, 1.0]]), dim=1)
    assert sentinel_retrieve(queries, keys, sentinel)[0].tolist() == [0, 2, -1]  # the paper's rule: the best
    index, best, _ = sentinel_retrieve(queries, keys, sentinel, recency=0.01)
    # query 0: keys 0 and 1 within 0.01, key 1 is later; key 2 is far, though stored last
    assert index.tolist() == [1, 2, -1]
    assert torch.allclose(best, sentinel_retrieve(queries, keys, sentinel)[1])  # the sentinel sees the best
    assert sentinel_retrieve(queries, keys, sentinel, recency=2.0)[0].tolist() == [2, 2, -1]  # all near: last
    # stored order is edit order through delete and rollback: the restored earlier fact stays earlier
    repo = KnowledgeRepository(hidden_size=2, n_prompt_tokens=1, repr_dim=3)
    repo.add(["early", "late", "other"], ["f a", "f b", "g"], keys, torch.zeros(3, 1, 2))
    repo.delete("early")
    repo.rollback()
    assert repo.ids == ["early", "late", "other"]
    assert repo.retrieve(queries[:1], sentinel, recency=0.01)[1].tolist() == [1]
    with pytest.raises(ValueError, match="recency_tolerance"):
        RecipeConfig(recency_tolerance=-0.1)
    with pytest.raises(ValueError, match="recency_tolerance"):
        RecipeConfig(recency_tolerance=True)


def test_recipe_retrieves_with_its_configured_recency(tiny):
    enc = tiny_encoder()
    facts = [Context("a", "The Eiffel Tower is in Paris"), Context("b", "Hamlet was written by Shakespeare"),
             Context("c", "The Eiffel Tower is in Rome")]
    questions = ["Where is the Eiffel Tower?", "Who wrote Hamlet?"]
    retrieved = {}
    for tolerance in (0.0, 2.0):  # margin 2: the sentinel never wins; tolerance 2: every key is near the best
        r = Recipe(tiny, RecipeConfig(sentinel_margin=2.0, recency_tolerance=tolerance),
                   editor=tiny_editor(tiny, enc), encoder=enc)
        r.inject(facts)
        retrieved[tolerance] = r.retrieved_ids(questions)
    with torch.no_grad():
        best = (r.editor.query(enc.encode(questions)) @ r.repository.keys.T).argmax(dim=1)
    assert retrieved[0.0] == [facts[i].id for i in best.tolist()]  # the best key
    assert retrieved[2.0] == ["c", "c"] != retrieved[0.0]  # the latest, which is not the best here


def test_repository_retrieve_returns_zero_prompts_for_misses():
    repo = KnowledgeRepository(hidden_size=4, n_prompt_tokens=2, repr_dim=2)
    repo.add(["a"], ["fact a"], torch.tensor([[1.0, 0.0]]), torch.ones(1, 2, 4))
    prompts, index = repo.retrieve(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]), torch.tensor([0.0, 1.0]))
    assert index.tolist() == [0, -1]
    assert torch.equal(prompts[0], torch.ones(2, 4)) and torch.equal(prompts[1], torch.zeros(2, 4))


# --- losses on hand-made tensors --------------------------------------------------------------------------

def test_masked_kl_zero_for_identical_and_matches_kl_div():
    torch.manual_seed(0)
    a, b = torch.randn(2, 5, 7), torch.randn(2, 5, 7)
    mask = torch.tensor([[0, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    assert masked_kl(a, a, mask).item() == pytest.approx(0.0, abs=1e-6)
    want = F.kl_div(F.log_softmax(b, -1), F.log_softmax(a, -1), log_target=True, reduction="none").sum(-1)
    assert masked_kl(a, b, mask).item() == pytest.approx((want * mask).sum().item() / 3, rel=1e-5)


def test_sentinel_info_nce_is_cross_entropy_with_sentinel_first():
    q = F.normalize(torch.randn(3, 4), dim=1)
    k = F.normalize(torch.randn(2, 4), dim=1)
    s = F.normalize(torch.randn(4), dim=0)
    pos = torch.tensor([0, 1, -1])
    logits = torch.stack([torch.cat([(qi @ s)[None], k @ qi]) for qi in q]) / 0.1
    want = F.cross_entropy(logits, torch.tensor([1, 2, 0])).item()
    assert sentinel_info_nce(q, k, s, pos, 0.1).item() == pytest.approx(want)
    # perfect separation -> loss near 0
    q2 = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    k2 = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    assert sentinel_info_nce(q2, k2, torch.tensor([0, 0, 1.0]), pos, 0.01).item() < 1e-6


def test_target_cross_entropy_counts_only_labelled_positions():
    logits = torch.zeros(1, 4, 5)
    logits[0, 1, 3] = 100.0  # position 1 predicts token 3 at position 2
    labels = torch.tensor([[IGNORE, IGNORE, 3, IGNORE]])
    assert target_cross_entropy(logits, labels).item() == pytest.approx(0.0, abs=1e-6)
    labels_wrong = torch.tensor([[IGNORE, IGNORE, 2, IGNORE]])
    assert target_cross_entropy(logits, labels_wrong).item() > 50


# --- the prompt changes the logits only when something is retrieved ---------------------------------------

def test_insert_prompts_left_and_right_padding():
    emb = torch.arange(2 * 4 * 1, dtype=torch.float).view(2, 4, 1) + 1
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 0]])  # a left-padded and a right-padded row
    prompts = torch.full((2, 2, 1), -1.0)
    out, m, pos, index = insert_prompts(emb, mask, prompts, torch.tensor([True, False]))
    assert out[0, :, 0].tolist() == [1, 2, -1, -1, 3, 4]
    assert m[0].tolist() == [0, 0, 1, 1, 1, 1] and pos[0].tolist()[2:] == [0, 1, 2, 3]
    assert out[1, :, 0].tolist() == [-1, -1, 5, 6, 7, 8]
    assert m[1].tolist() == [0, 0, 1, 1, 1, 0] and pos[1].tolist()[2:5] == [0, 1, 2]
    assert torch.equal(out.gather(1, index.unsqueeze(-1)), emb)


def test_prompt_changes_logits_only_for_rows_with_a_prompt(tiny):
    tok = tiny.tokenizer
    enc = tok(["what is up", "hi"], return_tensors="pt", padding=True, add_special_tokens=False)
    plain = tiny.model(**enc).logits
    prompts = torch.randn(2, 3, tiny.model.config.hidden_size)
    with torch.no_grad():
        none = prompted_logits(tiny, enc["input_ids"], enc["attention_mask"], prompts, torch.tensor([False, False]))
        one = prompted_logits(tiny, enc["input_ids"], enc["attention_mask"], prompts, torch.tensor([True, False]))
    real = enc["attention_mask"].bool()
    assert torch.allclose(none[real], plain[real], atol=1e-5)
    assert torch.allclose(one[1][real[1]], plain[1][real[1]], atol=1e-5)
    assert not torch.allclose(one[0][real[0]], plain[0][real[0]], atol=1e-3)


def test_recipe_scores_like_the_base_model_until_something_is_retrieved(recipe, tiny):
    queries = [Query("Where is the Eiffel Tower?"), Query("Who wrote Hamlet?")]
    targets = ["Rome", "Bacon"]
    prompts = [answer_prompt(tiny.tokenizer, q.question) for q in queries]
    base_scores = target_token_accuracy(tiny, prompts, targets)
    base_answers = generate(tiny, prompts, max_new_tokens=6)
    base_logprobs = target_logprob(tiny, prompts, targets)
    assert recipe.score(queries, targets) == base_scores  # empty repository
    assert recipe.logprob(queries, targets) == pytest.approx(base_logprobs, abs=1e-6)
    assert recipe.answer(queries, max_new_tokens=6) == base_answers
    recipe.inject([Context("e1", "The Eiffel Tower is in Rome")])
    with torch.no_grad():  # the sentinel wins for every query: still the base model
        both = recipe.editor.query(recipe.encoder.encode([q.question for q in queries])).sum(0)
        recipe.editor.sentinel.copy_(both)
        recipe.repository._keys[0] = -F.normalize(both, dim=0)
    assert recipe.retrieved_ids([q.question for q in queries]) == [None, None]
    assert recipe.answer(queries, max_new_tokens=6) == base_answers
    # now the first query retrieves e1: its logits change, the other's stay
    qrepr = recipe.editor.query(recipe.encoder.encode([queries[0].question]))[0].detach()
    with torch.no_grad():
        recipe.repository._keys[0] = qrepr
        recipe.editor.sentinel.copy_(-qrepr)
        recipe.repository._prompts[0] *= 50  # a loud prompt so the argmax surely moves
    assert recipe.retrieved_ids([queries[0].question]) == ["e1"]
    ids = recipe.retrieved_ids([q.question for q in queries])
    # the log-prob is asked with the retrieved prompt too: a query's moves exactly when it retrieves one
    for got, base, rid in zip(recipe.logprob(queries, targets), base_logprobs, ids):
        assert (got == pytest.approx(base, abs=1e-5)) == (rid is None)
    got_prompts, index = recipe.retrieve([q.question for q in queries])
    enc = tiny.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        plain = tiny.model(**enc).logits
        edited = prompted_logits(tiny, enc["input_ids"], enc["attention_mask"], got_prompts, index >= 0)
    real = enc["attention_mask"].bool()
    for row, rid in enumerate(ids):
        same = torch.allclose(edited[row][real[row]], plain[row][real[row]], atol=1e-5)
        assert same == (rid is None)


def test_teacher_forced_accuracy_with_prompts_scores_each_row_with_its_own_prompt(tiny):
    """The tiny random model (tied embeddings, a strong residual) predicts the token it was just fed, so
    the accuracies are known by hand: "aab" after "...a" gets a, a right and b wrong (2/3). Batched, padded
    and with prompts, each row must score that; and each row's forward pass must carry its own prompt."""
    torch.manual_seed(2)
    prefixes, targets = ["Where is it? xa", "Qa", "zz"], ["aab", "aaaa", "zqzz"]
    hand = [2 / 3, 1.0, 2 / 4]
    prompts = 50 * torch.randn(3, 3, tiny.model.config.hidden_size)
    has = torch.tensor([True, False, True])
    seen = []

    def spy(module, args, kwargs):
        seen.append((kwargs["inputs_embeds"][:, :3].detach().clone(), kwargs["attention_mask"][:, :3].clone()))

    assert target_token_accuracy(tiny, prefixes, targets) == pytest.approx(hand)
    handle = tiny.model.register_forward_pre_hook(spy, with_kwargs=True)
    try:
        for batch_size in (1, 2):
            seen.clear()
            got = target_token_accuracy(tiny, prefixes, targets, batch_size=batch_size, prompts=prompts,
                                        has_prompt=has)
            assert got == pytest.approx(hand)
            embeds, masks = torch.cat([e for e, _ in seen]), torch.cat([m for _, m in seen])
            assert torch.equal(embeds[has], prompts[has])  # right padding: the prompt comes first
            assert masks[has].all() and not masks[~has].any()  # a row without one gets masked slots
    finally:
        handle.remove()
    with pytest.raises(ValueError, match="together"):
        target_token_accuracy(tiny, prefixes, targets, prompts=prompts)


def test_generation_with_kv_cache_matches_a_no_cache_greedy_loop(tiny):
    torch.manual_seed(1)
    texts = ["abc", "hello there"]
    prompts = torch.randn(2, 3, tiny.model.config.hidden_size)
    has = torch.tensor([True, False])
    got = prompted_generate(tiny, texts, prompts, has, max_new_tokens=5)
    tok = tiny.tokenizer
    for row, text in enumerate(texts):
        ids = tok([text], return_tensors="pt", add_special_tokens=False)["input_ids"]
        new = []
        for _ in range(5):
            with torch.no_grad():
                logits = prompted_logits(tiny, ids, torch.ones_like(ids), prompts[row:row + 1], has[row:row + 1])
            nxt = int(logits[0, -1].argmax())
            if nxt == tok.eos_token_id:
                break
            new.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
        assert got[row] == tok.decode(new, skip_special_tokens=True).strip()


# --- repository persistence, deletion, rollback ----------------------------------------------------------

def test_repository_save_load_roundtrip_delete_and_rollback(tmp_path):
    repo = KnowledgeRepository(hidden_size=4, n_prompt_tokens=2, repr_dim=3)
    keys = F.normalize(torch.randn(3, 3), dim=1)
    prompts = torch.randn(3, 2, 4)
    repo.add(["a", "b", "c"], ["fact a", "fact b", "fact c"], keys, prompts)
    repo.delete("b")
    assert repo.ids == ["a", "c"]
    repo.save(tmp_path / "repo")
    loaded = KnowledgeRepository.load(tmp_path / "repo")
    assert loaded.ids == ["a", "c"] and loaded.version == repo.version == 4
    assert torch.equal(loaded.keys, repo.keys) and torch.equal(loaded.prompts, repo.prompts)
    loaded.rollback(1)  # undo the delete: b is back in its place with its exact vectors
    assert loaded.ids == ["a", "b", "c"]
    assert torch.equal(loaded.keys, keys) and torch.equal(loaded.prompts, prompts)
    loaded.rollback_to(1)
    assert loaded.ids == ["a"]
    with pytest.raises(ValueError, match="steps"):
        loaded.rollback(5)
    with pytest.raises(KeyError, match="zzz"):
        loaded.delete("zzz")


def test_repository_grows_past_its_buffer():
    repo = KnowledgeRepository(hidden_size=2, n_prompt_tokens=1, repr_dim=2)
    for i in range(40):
        repo.add([f"e{i}"], [f"fact {i}"], torch.tensor([[float(i), 1.0]]), torch.full((1, 1, 2), float(i)))
    assert len(repo) == 40 and repo.prompts[37, 0, 0].item() == 37.0 and repo.keys.shape == (40, 2)


def test_an_editor_that_reads_the_fact_tokens_adds_their_weighted_embeddings(tiny, tmp_path):
    from selfparam.methods.recipe.prompting import fact_token_embeddings

    enc = tiny_encoder()
    editor = tiny_editor(tiny, enc, read_fact_tokens=True, read_dim=8, read_max_tokens=24)
    plain = tiny_editor(tiny, enc)
    facts = ["Alice lives in Paris", "Alice lives in Rome"]  # 20 and 19 byte tokens
    tokens = fact_token_embeddings(tiny, facts, 24)
    embeds, mask = tokens
    assert embeds.shape[:2] == mask.shape == (2, 20) and mask[1].sum() == 19 and not mask[1, 0]  # left-padded
    last = fact_token_embeddings(tiny, facts, 8)[0][0]  # a long fact keeps its last tokens
    assert torch.equal(last, fact_token_embeddings(tiny, ["in Paris"], 8)[0][0])
    e = enc.encode(["Alice lives somewhere"]).repeat(2, 1)  # one sentence encoding for both facts
    keys, prompts = editor.knowledge(e, tokens)
    assert torch.equal(keys[0], keys[1])  # retrieval does not read the tokens
    assert not torch.allclose(prompts[0], prompts[1])  # the prompts do: Paris and Rome reach the LLM
    # with the attention's query at zero, every vector gets the plain prompt plus its fact's mean token embedding
    with torch.no_grad():
        editor.read_query.weight.zero_()
        base = editor.prompts(e, tokens) - (mask[:, :, None] * embeds).sum(1, keepdim=True) / mask.sum(1)[:, None, None]
        raw = editor.prompt_generator(editor.knowledge_head(e)) * editor.prompt_scale
    assert torch.allclose(base, raw.view_as(base), atol=1e-5)
    with pytest.raises(ValueError, match="pass fact_tokens"):
        editor.prompts(e)
    with pytest.raises(ValueError, match="more than read_max_tokens"):
        editor.prompts(e, fact_token_embeddings(tiny, ["x" * 30] * 2, 40))
    with pytest.raises(ValueError, match="do not fit"):
        editor.prompts(e[:1], tokens)
    # an editor without the option keeps the architecture record of editors trained before it
    assert "read_fact_tokens" not in plain.meta()["config"] and editor.meta()["config"]["read_fact_tokens"] is True
    editor.save(tmp_path / "editor")
    loaded = RecipeEditor.load(tmp_path / "editor")
    assert loaded.reads_fact_tokens and torch.equal(loaded.prompts(e, tokens), editor.prompts(e, tokens))
    assert loaded.digest() == editor.digest() != plain.digest()
    # the method reads each injected fact's tokens and stores the prompts the editor gives for them
    recipe = Recipe(tiny, RecipeConfig(batch_size=4), editor=loaded, encoder=enc)
    recipe.inject([Context("e1", facts[0]), Context("e2", facts[1])])
    assert torch.allclose(recipe.repository.prompts, loaded.prompts(enc.encode(facts), tokens))


def test_recipe_save_load_roundtrip(recipe, tiny, tmp_path):
    recipe.inject([Context("e1", "The Eiffel Tower is in Rome"), Context("e2", "Hamlet was written by Bacon")])
    q = [Query("Where is the Eiffel Tower?")]
    before = recipe.score(q, ["Rome"]), recipe.retrieved_ids([q[0].question])
    recipe.save(tmp_path / "r")
    other = Recipe(tiny, RecipeConfig(batch_size=4), editor=recipe.editor, encoder=recipe.encoder)
    other.load(tmp_path / "r")
    assert other.repository.ids == ["e1", "e2"]
    assert (other.score(q, ["Rome"]), other.retrieved_ids([q[0].question])) == before
    # 2 edits x (a 16-d key + 3 prompt vectors of the LLM's 32-d hidden size) x 4 bytes
    assert other.storage_bytes() == recipe.storage_bytes() == 2 * (16 + 3 * 32) * 4
    recipe.reset()
    assert len(recipe.repository) == 0 and recipe.storage_bytes() == 0


def test_repository_of_another_editor_is_refused(recipe, tiny, tmp_path):
    recipe.inject([Context("e1", "The Eiffel Tower is in Rome")])
    recipe.save(tmp_path / "r")
    assert [p.name for p in tmp_path.iterdir()] == ["r"]  # written whole, no temporary left
    # the same editor written to disk and read back is the same editor: accepted
    recipe.editor.save(tmp_path / "editor")
    same = Recipe(tiny, RecipeConfig(checkpoint=str(tmp_path / "editor")), encoder=recipe.encoder)
    same.load(tmp_path / "r")
    assert same.repository.ids == ["e1"]
    # an editor of the same shape with other weights (another training run): refused, nothing changed
    other = Recipe(tiny, RecipeConfig(), editor=tiny_editor(tiny, recipe.encoder, seed=1), encoder=recipe.encoder)
    other.inject([Context("mine", "Hamlet was written by Bacon")])
    with pytest.raises(ValueError, match="another RECIPE editor"):
        other.load(tmp_path / "r")
    assert other.repository.ids == ["mine"]
    with pytest.raises(FileNotFoundError, match="recipe.json"):
        other.load(tmp_path)
    meta = json.loads((tmp_path / "r" / "recipe.json").read_text())
    del meta["editor_digest"]  # as saved before digests were recorded
    (tmp_path / "r" / "recipe.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="no editor digest"):
        same.load(tmp_path / "r")


# --- bad input: a clear error, nothing changed ----------------------------------------------------------

def test_empty_target_is_refused(recipe):
    with pytest.raises(ValueError, match="target"):
        recipe.edit("The mother tongue of Danielle Darrieux is", "  ")
    with pytest.raises(ValueError, match="empty"):
        recipe.inject([Context("x", "")])
    with pytest.raises(ValueError, match="target"):
        fact_text("The capital of France is", "")
    with pytest.raises(ValueError, match="target"):
        EditRecord("x", "p", "", "r", "lp", "lt")
    assert len(recipe.repository) == 0


def test_duplicate_edit_is_refused_and_nothing_changes(recipe):
    recipe.inject([Context("e1", "The Eiffel Tower is in Rome")])
    keys = recipe.repository.keys.clone()
    with pytest.raises(ValueError, match="duplicate"):
        recipe.inject([Context("e2", "Hamlet was written by Bacon"), Context("e3", "the eiffel tower is  in Rome")])
    with pytest.raises(ValueError, match="already stored"):
        recipe.inject([Context("e1", "Something new")])
    with pytest.raises(ValueError, match="duplicate"):
        recipe.inject([Context("a", "Same fact"), Context("b", "same fact")])
    assert recipe.repository.ids == ["e1"] and torch.equal(recipe.repository.keys, keys)
    assert recipe.repository.version == 1


def test_repository_for_another_hidden_size_is_refused(recipe, tiny, tmp_path):
    from selfparam.testing import tiny_lm

    wide = tiny_lm(seed=0, hidden_size=64, intermediate_size=128)
    enc = tiny_encoder()
    other = Recipe(wide, RecipeConfig(), editor=tiny_editor(wide, enc), encoder=enc)
    other.inject([Context("w", "A wide fact")])
    other.save(tmp_path / "wide")
    recipe.inject([Context("e1", "The Eiffel Tower is in Rome")])
    with pytest.raises(ValueError, match="hidden size 64"):
        recipe.load(tmp_path / "wide")
    assert recipe.repository.ids == ["e1"]
    with pytest.raises(ValueError, match="hidden size 32"):
        Recipe(wide, RecipeConfig(), editor=tiny_editor(tiny, enc), encoder=enc)


def test_untrained_default_is_a_clear_error(tiny, tmp_path):
    with pytest.raises(ValueError, match="trained editor"):
        Recipe(tiny, RecipeConfig(checkpoint=str(tmp_path / "nothing")))


@pytest.mark.parametrize("bad", [dict(repr_dim=0), dict(n_prompt_tokens=-1), dict(temperature=0.0), dict(encoder=""),
                                 dict(repr_dim=2.5)])
def test_editor_config_rejects_bad_values(bad):
    field = next(iter(bad))
    with pytest.raises(ValueError, match=field):
        EditorConfig(**bad)


def test_train_and_recipe_config_reject_bad_values():
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=-1)
    with pytest.raises(ValueError, match="contrastive_batch"):
        TrainConfig(batch_size=8, contrastive_batch=4)
    with pytest.raises(ValueError, match="batch_size"):
        RecipeConfig(batch_size=0)
    with pytest.raises(ValueError, match="unknown setting"):
        RecipeConfig.from_dict({"chekpoint": "x"})


# --- editing data ----------------------------------------------------------------------------------------

def test_load_edits_both_formats_and_bad_files(tmp_path):
    cf = [{"case_id": 7, "prompt": "The capital of X is", "target_new": "Paris", "subject": "X", "ground_truth": "Y",
           "rephrase_prompt": "X's capital city is", "locality_prompt": "The capital of Z is",
           "locality_ground_truth": "Berlin"}]
    zs = [{"subject": "S", "target_new": "T", "prompt": "What is S?", "ground_truth": ["G"], "rephrase_prompt": "S is?",
           "locality": {"Relation_Specificity": [{"prompt": "S rank", "ground_truth": ["genus"]}]}}]
    (tmp_path / "cf.json").write_text(json.dumps(cf))
    (tmp_path / "zs.json").write_text(json.dumps(zs))
    a = load_edits(tmp_path / "cf.json")[0]
    assert (a.id, a.fact, a.locality_target) == ("cf-7", "The capital of X is Paris", "Berlin")
    b = load_edits(tmp_path / "zs.json")[0]
    assert (b.fact, b.locality_prompt, b.locality_target) == ("What is S? T", "S rank", "genus")
    (tmp_path / "bad.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_edits(tmp_path / "bad.json")
    cf[0]["target_new"] = ""
    (tmp_path / "empty.json").write_text(json.dumps(cf))
    with pytest.raises(ValueError, match="record 0.*target"):
        load_edits(tmp_path / "empty.json")


def test_load_shared_edit_sets(shared_data):
    cf = load_edits(shared_data / "counterfact_recipe" / "counterfact-edit-public.json", limit=1000)
    assert len(cf) == 1000 and cf[0].fact == "The mother tongue of Danielle Darrieux is English"
    zs = load_edits(shared_data / "zsre_knowedit" / "ZsRE-test-public.json")
    assert len(zs) == 1000 and all(r.locality_target for r in zs)
