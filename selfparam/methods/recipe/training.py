"""Training the RECIPE editor with the LLM frozen: L_edit + L_pl (see losses.py), checkpointed and resumable.

    >>> train_recipe(lm, encoder, records, EditorConfig(), TrainConfig(data=..., out="runs/recipe"))

Layout of `out`: `encodings.safetensors` (the frozen encoder's outputs for every training text, computed
once), `checkpoint/` (editor + optimizer + step + every invocation's config, replaced atomically every
`save_every` steps: a killed run resumes from it), `editor/` (the final editor, what `Recipe` loads; its
`editor.json` records how it was trained), `train_log.jsonl` (losses per step), `train_config.json`
(resolved configs, versions, git revision), `training.json` + `loss_curve.png` (data, steps, seconds, commit,
every invocation's settings, loss curve; rewritten at every checkpoint) and `validation.json`.

One step, with B = `batch_size` records through the frozen LLM and C = `contrastive_batch` for retrieval:
- L_edit = hinge_target_loss(reliability + generality rows) + locality_weight * masked_kl(locality rows);
  a `question_share` of the reliability rows asks the record's question form (questions.py) instead of its
  statement prompt;
- L_pl = sentinel_info_nce(related -> own knowledge, unrelated -> sentinel) + sentinel_over_others_nce
  (related: sentinel above every other knowledge), both over C records;
- preceded by `retrieval_steps` L_pl-only updates on fresh batches (cheap: the encoder is frozen).
"""

from __future__ import annotations

import json
import pickle
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from ...atomic import atomic_file, atomic_folder, atomic_write_text
from ...generation import encode_with_target
from ...lm import LM
from ...padding import pad_tokens
from ...prompt_vectors import prompted_logits
from ...prompts import answer_prompt
from ...provenance import provenance
from .calibration import calibrate_sentinel
from .config import EditorConfig, TrainConfig
from .editor import RecipeEditor
from .encoder import TextEncoder
from .losses import (
    IGNORE,
    hinge_target_loss,
    masked_kl,
    sentinel_info_nce,
    sentinel_over_others_nce,
    target_cross_entropy,
)
from .method import llm_hidden_size
from .prompting import fact_token_embeddings
from .questions import question_prompt
from .record import (
    INVOCATIONS,
    file_sha256,
    invocation,
    read_invocations,
    read_log,
    training_summary,
    write_training_record,
)

if TYPE_CHECKING:  # records are duck-typed: any object with these fields (eval/editing_data.EditRecord)
    from ...eval.editing_data import EditRecord

FIELDS = ("fact", "prompt", "rephrase", "locality_prompt", "question")


def record_text(record: EditRecord, field: str) -> str:
    """One of a record's training texts: a field of the record, or "question", its question form."""
    if field == "question":
        return question_prompt(record.prompt, getattr(record, "subject", ""))
    return getattr(record, field)


def encode_records(encoder: TextEncoder, records: Sequence[EditRecord], cache: Path | None = None,
                   progress: bool = True) -> dict[str, torch.Tensor]:
    """Encoder outputs (N, D) for the fact, reliability, generality and locality text of every record,
    cached in `cache` (keyed by encoder name and record ids) so a resumed run skips this."""
    key = {"encoder": encoder.name, "n": str(len(records)), "first": records[0].id, "last": records[-1].id,
           "fields": ",".join(FIELDS)}
    if cache is not None and cache.is_file():
        with safe_open(cache, "pt") as f:  # the key is stored in the file's own metadata: one atomic write
            if (f.metadata() or {}) == key:
                return {name: f.get_tensor(name) for name in f.keys()}
    out = {}
    for name in tqdm(FIELDS, desc="encoding training texts", disable=not progress):
        texts = [record_text(r, name) for r in records]
        chunks = [encoder.encode(texts[s:s + 512]) for s in range(0, len(texts), 512)]
        out[name] = torch.cat(chunks)
    if cache is not None:
        with atomic_file(cache) as tmp:
            save_file(out, tmp, metadata=key)
    return out


def build_edit_batch(lm: LM, records: Sequence[EditRecord],
                     as_question: Sequence[bool] | None = None) -> dict[str, torch.Tensor]:
    """Token batches for one training step over B records.

    Returns `ids`, `mask`, `labels` (3B, T), left-padded so every answer sits at the end (`keep` (1,): how
    many final positions hold all logits the losses need): rows 0..B-1 reliability (prompt -> target + EOS;
    the record's question form instead where `as_question[i]`),
    B..2B-1 generality (rephrase -> target + EOS), 2B..3B-1 locality (locality prompt -> its gold answer,
    labels IGNORE); and `kl_mask` (3B, T): the locality rows' positions whose logits predict answer tokens.
    """
    tok = lm.tokenizer
    eos = tok.eos_token or ""
    rows, labels_start, kl_spans, needs = [], [], [], []
    as_question = list(as_question) if as_question is not None else [False] * len(records)
    if len(as_question) != len(records):
        raise ValueError(f"as_question: {len(as_question)} flags for {len(records)} records")
    for question_of in ("prompt", "rephrase"):
        for r, q in zip(records, as_question):
            text = record_text(r, "question") if question_of == "prompt" and q else getattr(r, question_of)
            ids, start = encode_with_target(lm, answer_prompt(tok, text), r.target.strip() + eos)
            rows.append(ids)
            labels_start.append(start)
            needs.append(len(ids) - start + 1)  # the logit before the answer predicts its first token
    for r in records:
        ids, start = encode_with_target(lm, answer_prompt(tok, r.locality_prompt), r.locality_target.strip())
        rows.append(ids)
        labels_start.append(None)
        kl_spans.append((len(rows) - 1, start - 1, len(ids) - 1))
        needs.append(len(ids) - start + 1)
    padded = pad_tokens(rows, tok.pad_token_id, side="left")
    ids, mask = padded["input_ids"], padded["attention_mask"]
    width = ids.shape[1]
    labels = torch.full_like(ids, IGNORE)
    for row, start in enumerate(labels_start):
        if start is not None:
            offset = width - len(rows[row])
            labels[row, offset + start:] = ids[row, offset + start:]
    kl_mask = torch.zeros_like(ids)
    for row, a, b in kl_spans:
        offset = width - len(rows[row])
        kl_mask[row, offset + a:offset + b] = 1
    keep = torch.tensor([min(width, max(needs))])
    return {"ids": ids, "mask": mask, "labels": labels, "kl_mask": kl_mask, "keep": keep}


def _save_checkpoint(out: Path, editor: RecipeEditor, optimizer: torch.optim.Optimizer, step: int,
                     seconds: float, invocations: list[dict]) -> None:
    """Editor + optimizer + counters + RNG states + the invocations so far, replaced whole. Only tensors and
    plain containers, so `_load_state` reads it with `torch.load(weights_only=True)` (no pickled code runs on
    resume)."""
    with atomic_folder(out / "checkpoint") as tmp:
        editor.save(tmp / "editor")
        (tmp / INVOCATIONS).write_text(json.dumps(invocations, indent=2))
        torch.save({"optimizer": optimizer.state_dict(), "step": step, "seconds": seconds,
                    "rng": torch.get_rng_state(), "py_rng": random.getstate()}, tmp / "state.pt")


def _load_state(path: Path) -> dict:
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path} holds more than tensors and plain containers, so it is not loaded (only "
                         f"checkpoints written by `selfparam recipe train` are): {str(e).splitlines()[0]}; "
                         f"use another --out or delete {path.parent}") from None


def _truncate_log(path: Path, step: int) -> None:
    """Keep the log rows up to the checkpoint's step: a killed run logged steps that this run redoes (and may
    have cut its last line short)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line + "\n")
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    atomic_write_text(path, "".join(kept))


def train_recipe(lm: LM, encoder: TextEncoder, records: Sequence[EditRecord], editor_config: EditorConfig,
                 config: TrainConfig, validation: Sequence[EditRecord] = (), progress: bool = True) -> RecipeEditor:
    """Train (or resume training) the editor on `records` with the LLM frozen; returns the trained editor,
    also written to `config.out/editor`."""
    if not config.out:
        raise ValueError("out: an output folder is needed for checkpoints")
    if len(records) < config.contrastive_batch:
        raise ValueError(f"contrastive_batch: {config.contrastive_batch} is more than the {len(records)} records")
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    device = torch.device(config.device)
    enc = encode_records(encoder, records, out / "encodings.safetensors", progress)

    embed_std = lm.model.get_input_embeddings().weight.detach().float().std().item()
    editor = RecipeEditor(editor_config, encoder.dim, llm_hidden_size(lm), prompt_scale=embed_std, llm_name=lm.name)
    optimizer = torch.optim.AdamW(editor.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    step, seconds = 0, 0.0
    history: list[dict] = []  # earlier invocations of this run, each with its own config (record.py)
    if (out / "checkpoint" / "state.pt").is_file():
        resumed = RecipeEditor.load(out / "checkpoint" / "editor")
        if resumed.meta() != editor.meta():
            raise ValueError(f"{out}/checkpoint was trained with another editor config or model: "
                             f"{resumed.meta()} vs {editor.meta()}; use another --out")
        editor.load_state_dict(resumed.state_dict())
        state = _load_state(out / "checkpoint" / "state.pt")
        optimizer.load_state_dict(state["optimizer"])
        step, seconds = state["step"], state["seconds"]
        torch.set_rng_state(state["rng"])
        random.setstate(state["py_rng"])
        history = read_invocations(out / "checkpoint", step, seconds)
    first_step, first_seconds = step, seconds
    _truncate_log(out / "train_log.jsonl", step)
    atomic_write_text(out / "train_config.json", json.dumps(
        {"editor": asdict(editor_config), "train": asdict(config), "llm": lm.name, "encoder": encoder.name,
         "records": len(records), "validation_records": len(validation), **provenance()}, indent=2))

    editor.to(device).train()
    frozen = [p.requires_grad for p in lm.model.parameters()]
    for p in lm.model.parameters():
        p.requires_grad_(False)
    lm.model.eval()
    data_sha256 = file_sha256(config.data) if config.data else None

    def invocations(step: int, seconds: float) -> list[dict]:
        return history + [invocation(config, first_step, step, seconds - first_seconds)]

    def summary(step: int, seconds: float) -> dict:
        return training_summary(config, records, validation, lm.name, encoder.name, step, seconds, data_sha256,
                                invocations(step, seconds))

    log = open(out / "train_log.jsonl", "a")
    bar = tqdm(total=config.steps, initial=step, desc="training RECIPE", disable=not progress)
    started = time.perf_counter() - seconds  # `seconds` counts every run; `max_seconds` only this one
    session_started = time.perf_counter()
    try:
        related_fields = ("prompt", "rephrase") + (("question",) if config.question_share > 0 else ())

        def contrastive(idx: torch.Tensor) -> torch.Tensor:
            keys = editor.keys(enc["fact"][idx].to(device))  # (C, R)
            c, sentinel, t = idx.shape[0], editor.sentinel_repr(), editor_config.temperature
            related = torch.cat([editor.query(enc[f][idx].to(device)) for f in related_fields])  # (kC, R)
            unrelated = editor.query(enc["locality_prompt"][idx].to(device))  # (C, R)
            own = torch.arange(c, device=device).repeat(len(related_fields))  # (kC,)
            positives = torch.cat([own, torch.full((c,), -1, device=device)])
            loss = sentinel_info_nce(torch.cat([related, unrelated]), keys, sentinel, positives, t,
                                     config.contrastive_hinge_scale)
            return loss + sentinel_over_others_nce(related, keys, sentinel, own, t, config.contrastive_hinge_scale)

        while step < config.steps:
            for _ in range(config.retrieval_steps):
                l_extra = contrastive(torch.tensor(random.sample(range(len(records)), config.contrastive_batch)))
                optimizer.zero_grad(set_to_none=True)
                (config.contrastive_weight * l_extra).backward()
                optimizer.step()
            picked = random.sample(range(len(records)), config.contrastive_batch)  # first batch_size go through the LLM
            l_pl = contrastive(torch.tensor(picked))

            b = config.batch_size
            edited = [records[i] for i in picked[:b]]
            fact_tokens = None
            if editor.reads_fact_tokens:
                embeds, mask = fact_token_embeddings(lm, [record_text(r, "fact") for r in edited],
                                                     editor_config.read_max_tokens)
                fact_tokens = (embeds.to(device), mask.to(device))
            prompts = editor.prompts(enc["fact"][torch.tensor(picked[:b])].to(device), fact_tokens)  # (B, n, H)
            as_question = [random.random() < config.question_share for _ in range(b)]
            batch = {k: v.to(lm.device)
                     for k, v in build_edit_batch(lm, edited, as_question).items()}
            row_prompts = prompts.repeat(3, 1, 1).to(lm.device)  # (3B, n, H): each row gets its record's prompt
            keep = int(batch["keep"][0])
            with lm.autocast():
                logits = prompted_logits(lm, batch["ids"], batch["mask"], row_prompts,
                                         torch.ones(3 * b, dtype=torch.bool, device=lm.device), keep_last=keep)
                with torch.no_grad():
                    base = prompted_logits(lm, batch["ids"][2 * b:], batch["mask"][2 * b:], None, None, keep_last=keep)
            l_edit = hinge_target_loss(logits[:2 * b], batch["labels"][:2 * b, -keep:], config.edit_hinge_scale)
            with torch.no_grad():  # the plain cross-entropy, comparable across hinge settings and older runs
                l_edit_ce = target_cross_entropy(logits[:2 * b].detach(), batch["labels"][:2 * b, -keep:])
            l_loc = masked_kl(base, logits[2 * b:], batch["kl_mask"][2 * b:, -keep:])
            loss = l_edit + config.locality_weight * l_loc + config.contrastive_weight * l_pl
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(editor.parameters(), 1.0)
            optimizer.step()
            step += 1
            seconds = time.perf_counter() - started
            row = {"step": step, "loss": loss.item(), "edit": l_edit.item(), "edit_ce": l_edit_ce.item(),
                   "locality_kl": l_loc.item(), "contrastive": l_pl.item(), "seconds": round(seconds, 1)}
            log.write(json.dumps(row) + "\n")
            log.flush()
            bar.update(1)
            bar.set_postfix(edit=f"{row['edit']:.2f}", kl=f"{row['locality_kl']:.3f}", nce=f"{row['contrastive']:.2f}")
            out_of_time = config.max_seconds and time.perf_counter() - session_started >= config.max_seconds
            if step % config.save_every == 0 or step == config.steps or out_of_time:
                _save_checkpoint(out, editor, optimizer, step, seconds, invocations(step, seconds))
                write_training_record(out, summary(step, seconds), read_log(out / "train_log.jsonl"),
                                      config.curve_every)
            if out_of_time:
                break
    finally:
        bar.close()
        log.close()
        for p, flag in zip(lm.model.parameters(), frozen):
            p.requires_grad_(flag)
    editor.eval()
    record = summary(step, seconds)
    write_training_record(out, record, read_log(out / "train_log.jsonl"), config.curve_every)
    report = None
    if validation:  # the sentinel's margin is chosen on the held-out records and ships with the editor
        val_enc = encode_records(encoder, validation, None, progress=False)
        editor.calibration = {**calibrate_sentinel(editor, val_enc, config.sentinel_locality),
                              "data": {"path": config.data, "first_id": validation[0].id,
                                       "last_id": validation[-1].id}}
        report = {"steps": step, "seconds": round(seconds, 1),  # retrieval under the paper's rule, as before
                  "retrieval": editor.calibration["retrieval_without_margin"], "calibration": editor.calibration}
    editor.save(out / "editor", extra={"trained_steps": step, "train_seconds": round(seconds, 1),
                                       "train_records": len(records), "training": record})
    if report is not None:
        atomic_write_text(out / "validation.json", json.dumps(report, indent=2))
    return editor
