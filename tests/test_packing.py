"""Packed training batches: several sequences per row, the same log-probabilities and updates as padding."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from selfparam.testing import tiny_lm
from selfparam.training import AdapterConfig, TrainConfig, batching
from selfparam.training.batching import (
    pack_rows,
    packs_sequences,
    scored_logprobs,
    scored_outputs,
    scored_slots,
    spread_rows,
    unflatten_slots,
    use_packing,
)
from selfparam.training.examples import Example, encode
from selfparam.training.losses import compact_teacher, kl_compact, next_token_nll
from selfparam.training.trainer import encode_share, token_losses, train_and_merge

SEQUENCES = [[3, 4, 5, 6, 7, 8, 9], [10, 11, 12], [13, 14, 15, 16, 17], [20, 21]]
N_SCORED = [3, 2, 4, 1]


def test_rows_are_filled_first_fit_by_decreasing_length():
    batch, ends = pack_rows(SEQUENCES, pad_id=0, capacity=8)
    # 7 opens row 0, 5 opens row 1, 3 joins row 1 (5 + 3 = 8), 2 opens row 2; rows as wide as the fullest
    assert batch["input_ids"].tolist() == [[3, 4, 5, 6, 7, 8, 9, 0],
                                           [13, 14, 15, 16, 17, 10, 11, 12],
                                           [20, 21, 0, 0, 0, 0, 0, 0]]
    # positions restart at every sequence, and a row's padding is a sequence of its own
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4, 5, 6, 0],
                                              [0, 1, 2, 3, 4, 0, 1, 2],
                                              [0, 1, 0, 1, 2, 3, 4, 5]]
    assert ends.tolist() == [7, 16, 13, 18]                 # in the order given: row * 8 + column
    one_row, _ = pack_rows(SEQUENCES, pad_id=0)             # PACK_WIDTH: all 17 tokens in one row
    assert one_row["input_ids"].shape == (1, 17)
    with pytest.raises(ValueError, match="longest"):
        pack_rows(SEQUENCES, pad_id=0, capacity=6)


def test_default_rows_are_the_narrower_packing_unless_the_wider_computes_fewer_slots(monkeypatch):
    one_row, _ = pack_rows(SEQUENCES, pad_id=0)        # PACK_WIDTH 256: 17 slots in one row against 3 x 7
    assert one_row["input_ids"].shape == (1, 17)
    monkeypatch.setattr(batching, "PACK_WIDTH", 16)
    narrow, _ = pack_rows(SEQUENCES, pad_id=0)          # 16 wide: 2 x 15 (7 + 5 + 3, then 2) against 3 x 7
    assert narrow["input_ids"].shape == (3, 7)
    tie, _ = pack_rows([[1] * 8, [2] * 8, [3] * 8, [4] * 3], pad_id=0)   # 2 x 16 against 4 x 8: the narrower
    assert tie["input_ids"].shape == (4, 8)


@pytest.mark.parametrize("capacity", [8, None])
def test_packed_rows_score_like_left_padding(capacity, monkeypatch):
    tiny = tiny_lm(seed=0, initializer_range=0.3)  # large weights: a sequence seeing another would show
    if capacity is not None:
        monkeypatch.setattr(batching, "PACK_WIDTH", capacity)
    packed_calls = []
    real = batching.pack_rows
    monkeypatch.setattr(batching, "pack_rows", lambda *a, **k: packed_calls.append(a) or real(*a, **k))
    with torch.no_grad():
        packed, mask = scored_logprobs(tiny.model, tiny, SEQUENCES, N_SCORED, pack=True)
        padded, padded_mask = scored_logprobs(tiny.model, tiny, SEQUENCES, N_SCORED, pack=False)
    assert packed_calls  # the packed path ran
    assert torch.equal(mask, padded_mask) and mask.sum() == sum(N_SCORED)
    assert torch.allclose(packed[mask], padded[mask], atol=1e-5)


def test_hidden_states_at_the_scored_positions_are_the_same_packed_as_padded(monkeypatch):
    tiny = tiny_lm(seed=0, initializer_range=0.3, num_hidden_layers=3)
    monkeypatch.setattr(batching, "PACK_WIDTH", 8)  # several rows: the gather crosses rows
    with torch.no_grad():
        logp, mask, packed = scored_outputs(tiny.model, tiny, SEQUENCES, N_SCORED, pack=True, hidden=True)
        padded_logp, _, padded = scored_outputs(tiny.model, tiny, SEQUENCES, N_SCORED, pack=False, hidden=True)
        alone = [scored_outputs(tiny.model, tiny, [s], [n], pack=False, hidden=True)[2]
                 for s, n in zip(SEQUENCES, N_SCORED)]
        full = [tiny.model(input_ids=torch.tensor([s]), output_hidden_states=True).hidden_states
                for s in SEQUENCES]
        plain, _ = scored_logprobs(tiny.model, tiny, SEQUENCES, N_SCORED, pack=True)
    assert packed.shape == padded.shape == (3, 4, 4, 32)                  # (L, B, N, D): every layer's output
    assert torch.allclose(packed[:, mask], padded[:, mask], atol=1e-5)
    assert torch.equal(logp, plain) and torch.allclose(logp[mask], padded_logp[mask], atol=1e-5)
    for i, (s, n) in enumerate(zip(SEQUENCES, N_SCORED)):
        # slot j predicts token len - n + j, so it holds the states at the position before it
        expected = torch.stack([h[0, len(s) - n - 1:len(s) - 1] for h in full[i][1:]])
        assert torch.allclose(packed[:, i, mask[i]], expected, atol=1e-5)
        assert torch.allclose(alone[i][:, 0, -n:], expected, atol=1e-5)


def test_packed_output_layer_runs_on_the_real_slots_alone(monkeypatch):
    tiny = tiny_lm(seed=0, initializer_range=0.3)
    rows = []
    real = batching.log_softmax_fp32
    monkeypatch.setattr(batching, "log_softmax_fp32", lambda x: rows.append(x.shape[0]) or real(x))
    with torch.no_grad():
        logp, mask = scored_logprobs(tiny.model, tiny, SEQUENCES, N_SCORED, pack=True)
    assert rows == [sum(N_SCORED)] and logp.shape[:2] == (4, 4)  # 10 rows computed, not 4 x 4 = 16
    vocab = logp.shape[-1]
    assert torch.allclose(logp[~mask], torch.full((16 - 10, vocab), -math.log(vocab)))  # uniform, finite
    assert torch.allclose(logp[mask].exp().sum(-1), torch.ones(10), atol=1e-5)
    spread = spread_rows(torch.tensor([[0.0, -1.0], [-2.0, -3.0]]), torch.tensor([False, True, False, True]))
    assert torch.allclose(spread, torch.tensor([[-math.log(2)] * 2, [0.0, -1.0], [-math.log(2)] * 2, [-2.0, -3.0]]))


@pytest.mark.parametrize("pack", [True, False])
def test_slots_are_the_real_rows_of_the_spread_scores(pack):
    """`scored_slots` gives the real slots' log-probabilities alone, (M, V) in the mask's row-major order: the
    rows `scored_logprobs` spreads into every slot, packed or padded."""
    tiny = tiny_lm(seed=0, initializer_range=0.3)
    with torch.no_grad():
        flat, mask, _ = scored_slots(tiny.model, tiny, SEQUENCES, N_SCORED, pack=pack)
        spread, spread_mask = scored_logprobs(tiny.model, tiny, SEQUENCES, N_SCORED, pack=pack)
    assert torch.equal(mask, spread_mask) and flat.shape == (sum(N_SCORED), spread.shape[-1])
    assert torch.equal(flat, spread[mask])
    back = unflatten_slots(flat[:, 0], mask)
    assert torch.equal(back[mask], flat[:, 0]) and not back[~mask].any()


def test_training_losses_on_the_slots_equal_the_losses_on_the_spread_scores():
    """The trainer's per-token KL and NLL, computed on the real slots alone and placed into (B, N), are the
    losses of the full (B, N, V) scores at the real slots, 0 elsewhere, with the same gradient."""
    tiny = tiny_lm(seed=0, initializer_range=0.3)
    encoded = encode_share(tiny, [Example(student_prefix="Q: ", text=t, teacher_prefix="C. Q: ")
                                  for t in ("Quenby hosts the Zorblat festival every May.", "Rivers flow.",
                                            "Seven.")])
    with torch.no_grad():
        teachers = [compact_teacher(scored_logprobs(tiny.model, tiny, [e.teacher_ids], [e.n_scored])[0][0], 4)
                    for e in encoded]
    sequences, n_scored = [e.student_ids for e in encoded], [e.n_scored for e in encoded]
    for nll_weight, hard in ((0.0, None), (0.5, [True, False, True])):
        per_token, mask = token_losses(tiny.model, tiny, encoded, teachers, nll_weight=nll_weight, hard=hard)
        logp, _ = scored_logprobs(tiny.model, tiny, sequences, n_scored)
        width = mask.shape[1]
        t = [torch.nn.functional.pad(x, (0, 0) * (x.dim() - 1) + (width - len(x), 0))
             for tt in teachers for x in (tt.topk_logp, tt.topk_ids, tt.rest_logp)]
        expected = kl_compact(torch.stack(t[0::3]), torch.stack(t[1::3]), torch.stack(t[2::3]), logp)
        if nll_weight:
            gold = torch.stack([torch.nn.functional.pad(torch.tensor(s[len(s) - n:]), (width - n, 0))
                                for s, n in zip(sequences, n_scored)])
            expected = expected + nll_weight * torch.where(torch.tensor(hard).unsqueeze(1),
                                                           next_token_nll(logp, gold), 0.0)
        assert torch.allclose(per_token[mask], expected[mask], atol=1e-5) and not per_token[~mask].any()
        grad = torch.autograd.grad(per_token[mask].sum(), tiny.model.model.norm.weight)[0]
        expected_grad = torch.autograd.grad(expected[mask].sum(), tiny.model.model.norm.weight)[0]
        assert torch.allclose(grad, expected_grad, atol=1e-5)
    nll, nll_mask = token_losses(tiny.model, tiny, encoded, None)
    gold = torch.stack([torch.nn.functional.pad(torch.tensor(s[len(s) - n:]), (width - n, 0))
                        for s, n in zip(sequences, n_scored)])
    assert torch.allclose(nll[nll_mask], next_token_nll(logp, gold)[nll_mask], atol=1e-5)


def test_packing_is_used_only_where_it_computes_fewer_tokens(tiny, monkeypatch):
    assert packs_sequences(tiny)  # the probe, run before the calls are counted
    calls = []
    real_forward = tiny.model.forward
    monkeypatch.setattr(tiny.model, "forward", lambda **k: calls.append(k["input_ids"].shape) or real_forward(**k))
    with torch.no_grad():
        scored_logprobs(tiny.model, tiny, SEQUENCES, N_SCORED)      # 17 tokens packed against 4 x 7 padded
        scored_logprobs(tiny.model, tiny, [[1, 2, 3], [4, 5, 6]], [1, 1])   # 6 tokens either way: padded
    assert calls == [(1, 17), (2, 3)]


def test_a_model_that_lets_packed_sequences_see_each_other_gets_padded_batches():
    tiny = tiny_lm(seed=0)
    real_forward = tiny.model.forward
    # a model that ignores position ids sees one long sequence: the second sequence attends to the first
    tiny.model.forward = lambda position_ids=None, **k: real_forward(**k)
    assert not packs_sequences(tiny)
    with torch.no_grad():
        default, mask = scored_logprobs(tiny.model, tiny, SEQUENCES, N_SCORED)
        padded, _ = scored_logprobs(tiny.model, tiny, SEQUENCES, N_SCORED, pack=False)
        mixed, _ = scored_logprobs(tiny.model, tiny, SEQUENCES, N_SCORED, pack=True)
    assert torch.equal(default[mask], padded[mask])
    assert not torch.allclose(mixed[mask], padded[mask], atol=1e-3)  # what packing would have done


def test_an_update_trains_the_same_packed_as_padded(tiny):
    texts = ["Quenby hosts the Zorblat festival every May.", "Rivers flow.", "The cat sat on the mat today.",
             "Answer: in May.", "Zorblat is a festival.", "Seven."]
    encoded = encode_share(tiny, [Example(student_prefix="Q: ", text=t) for t in texts])
    adapter = AdapterConfig(dropout=0.0)  # dropout masks are drawn per row, so they differ between layouts
    train = TrainConfig(epochs=2, batch_size=3, lr=1e-2)
    start = copy.deepcopy(tiny.model)
    weights = {}
    for packed in (False, True):
        tiny.model = copy.deepcopy(start)
        use_packing(tiny, packed)
        assert packs_sequences(tiny) is packed
        _, stats = train_and_merge(tiny, encoded, None, adapter, train, progress=False)
        weights[packed] = {n: p.detach().clone() for n, p in tiny.model.named_parameters()}
        assert stats.last_loss < stats.first_loss
    moved = max((weights[True][n] - start.state_dict()[n]).abs().max().item() for n in weights[True])
    assert moved > 1e-3
    for name, value in weights[True].items():
        assert torch.allclose(value, weights[False][name], atol=1e-5), name


def test_the_teacher_pass_is_unchanged_by_packing(tiny):
    from selfparam.training.teacher import teacher_pass

    encoded = [encode(tiny.tokenizer, Example("Q: when?", t, teacher_prefix="Context: it is May. Q: when?"),
                      tiny.max_length) for t in ("In May.", "May", "Every year in May, at noon.")]
    packed = teacher_pass(tiny, encoded, top_k=4, batch_size=3, progress=False)
    use_packing(tiny, False)
    padded = teacher_pass(tiny, encoded, top_k=4, batch_size=3, progress=False)
    for a, b in zip(packed, padded):
        assert torch.equal(a.topk_ids, b.topk_ids) and torch.allclose(a.topk_logp, b.topk_logp, atol=1e-5)


def test_the_teacher_pass_keeps_each_example_its_own_slots(tiny):
    """Batched with spans of unequal length (empty slots between them), each example gets exactly the
    distributions it gets when run alone: the top-k taken on the scored slots is sliced back row by row."""
    from selfparam.training.teacher import teacher_pass

    encoded = [encode(tiny.tokenizer, Example("Q: when?", t, teacher_prefix="Context: it is May. Q: when?"),
                      tiny.max_length) for t in ("In May.", "May", "Every year in May, at noon.", "Noon, in May")]
    together = teacher_pass(tiny, encoded, top_k=4, batch_size=4, progress=False)
    alone = teacher_pass(tiny, encoded, top_k=4, batch_size=1, progress=False)
    assert len({len(t) for t in together}) > 1
    for a, b, e in zip(together, alone, encoded):
        assert len(a) == len(b) == e.n_scored
        assert torch.equal(a.topk_ids, b.topk_ids) and torch.allclose(a.topk_logp, b.topk_logp, atol=1e-5)
        assert torch.allclose(a.rest_logp, b.rest_logp, atol=1e-5)
