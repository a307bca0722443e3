"""How far can RECIPE's continuous prompt carry an edit at all, and how far is the shipped editor from it?

For each of N CounterFact edit records the shipped editor (or `--checkpoint`) writes the edit's prompt (its
`n_prompt_tokens` vectors, as `inject` stores them); that prompt is then optimised directly for this one edit
(Adam on the vectors only, cross-entropy of the target after the edit prompt, the LLM frozen), optionally with
`--extra-tokens` more vectors (started at the mean of the editor's). Both are scored teacher-forced (the lifelong
task's reliability: the share of target tokens that are the model's argmax) on the edit prompt, which the
optimised prompt was fitted on, and on its rephrase, which it never saw; and by the target's mean log-probability
on the edit prompt. Retrieval plays no part: every query
gets its own edit's prompt.

Read: the optimised prompt's reliability is what the prompt mechanism allows (a prompt generator can reach it at
best); its generality is how far one fitted prompt carries to another wording. Where the editor sits well below
the optimised prompt on both, the generator (its size, its training) is what limits; where the optimised prompt
itself is low, the number of prompt vectors is.

    OMP_NUM_THREADS=2 python scripts/recipe_prompt_ceiling.py --n 30 --out runs/recipe-ceiling.json
    OMP_NUM_THREADS=2 python scripts/recipe_prompt_ceiling.py --n 30 --extra-tokens 3 --out runs/recipe-ceiling6.json

Prints one JSON object (also written to `--out`): the settings, per-figure means with 95% bootstrap intervals over
edits, paired differences, and per-edit rows.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch

from selfparam.atomic import atomic_write_text
from selfparam.eval.editing_data import EditRecord, load_edits
from selfparam.eval.stats import mean_ci, paired_difference
from selfparam.generation import target_logprob, target_token_accuracy
from selfparam.lm import LM, load_lm
from selfparam.methods.base import Context
from selfparam.methods.recipe import RecipeConfig
from selfparam.methods.recipe.refine import fit_prompt, frozen
from selfparam.methods.registry import build_method
from selfparam.prompts import answer_prompt


def scored(figure, lm: LM, question: str, target: str, prompt: torch.Tensor) -> float:
    """`figure` (`target_token_accuracy` or `target_logprob`) of `target` after `question`'s answer prompt with
    `prompt` (n, H) in front."""
    return figure(lm, [answer_prompt(lm.tokenizer, question)], [target.strip()],
                  prompts=prompt.detach().unsqueeze(0), has_prompt=torch.tensor([True]))[0]


def edit_rows(lm: LM, records: list[EditRecord], steps: int, lr: float, extra_tokens: int,
              checkpoint: str | None) -> list[dict]:
    """Per record: the editor's prompt and the fitted one, each scored (see the module docstring)."""
    recipe = build_method("recipe", lm, RecipeConfig(checkpoint=checkpoint), progress=False)
    rows = []
    for rec in records:
        started = time.perf_counter()
        recipe.reset()
        recipe.inject([Context(rec.id, rec.fact)])
        editor_prompt = recipe.repository.prompts[0]  # (n, H): what the editor wrote for this edit
        init = editor_prompt
        if extra_tokens:
            extra = editor_prompt.mean(0, keepdim=True).expand(extra_tokens, -1)
            init = torch.cat([editor_prompt, extra + 0.01 * torch.randn_like(extra) * editor_prompt.std()])
        fitted = fit_prompt(lm, [(rec.prompt, rec.target.strip())], init, steps, lr)
        row = {"id": rec.id, "target": rec.target, "prompt_tokens": int(fitted.shape[0])}
        for name, prompt in (("editor", editor_prompt), ("fitted", fitted)):
            row[f"{name}_reliability"] = scored(target_token_accuracy, lm, rec.prompt, rec.target, prompt)
            row[f"{name}_generality"] = scored(target_token_accuracy, lm, rec.rephrase, rec.target, prompt)
            row[f"{name}_logprob"] = scored(target_logprob, lm, rec.prompt, rec.target, prompt)
        rows.append({**row, "seconds": round(time.perf_counter() - started, 2)})
        print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def run(lm: LM, records: list[EditRecord], steps: int, lr: float, extra_tokens: int, checkpoint: str | None,
        seed: int) -> dict:
    """Every record's rows, the means with 95% bootstrap intervals over edits and the fitted-minus-editor
    differences (paired). The LLM's weights are frozen while it runs and their flags restored after."""
    torch.manual_seed(seed)
    with frozen(lm.model):
        rows = edit_rows(lm, records, steps, lr, extra_tokens, checkpoint)
    figures = {}
    for key in ("editor_reliability", "editor_generality", "editor_logprob", "fitted_reliability", "fitted_generality",
                "fitted_logprob"):
        est = mean_ci([r[key] for r in rows])
        figures[key] = {"mean": est.value, "ci": est.ci}
    for fig in ("reliability", "generality", "logprob"):
        est = paired_difference([r[f"fitted_{fig}"] for r in rows], [r[f"editor_{fig}"] for r in rows])
        figures[f"fitted_minus_editor_{fig}"] = {"mean": est.value, "ci": est.ci}
    return {"settings": {"model": lm.name, "records": len(rows), "first_id": rows[0]["id"], "steps": steps,
                         "lr": lr, "extra_tokens": extra_tokens, "prompt_tokens": rows[0]["prompt_tokens"],
                         "checkpoint": checkpoint or "shipped", "seed": seed,
                         "compute_dtype": str(lm.compute_dtype).removeprefix("torch.")},
            "figures": figures, "rows": rows}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data/counterfact_recipe/counterfact-edit-public.json")
    ap.add_argument("--n", type=int, default=30, help="edit records (a seeded sample of the file's)")
    ap.add_argument("--steps", type=int, default=40, help="Adam steps per edit")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--extra-tokens", type=int, default=0, help="prompt vectors beyond the editor's")
    ap.add_argument("--checkpoint", default=None, help="an editor folder (default: the shipped editor)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.n < 1 or args.steps < 0 or args.lr <= 0 or args.extra_tokens < 0:
        ap.error("--n must be >= 1, --steps and --extra-tokens >= 0, --lr > 0")
    records = load_edits(Path(args.data))
    picked = sorted(random.Random(args.seed).sample(range(len(records)), min(args.n, len(records))))
    records = [records[i] for i in picked]
    result = run(load_lm(), records, args.steps, args.lr, args.extra_tokens, args.checkpoint, args.seed)
    text = json.dumps(result, indent=1)
    if args.out:
        atomic_write_text(args.out, text + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}))


if __name__ == "__main__":
    main()
