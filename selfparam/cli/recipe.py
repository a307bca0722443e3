"""`selfparam recipe train` and `selfparam recipe edit`: thin shells over `selfparam.methods.recipe`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

recipe_app = typer.Typer(help="RECIPE: lifelong editing with retrieved continuous prompts.", no_args_is_help=True)


@recipe_app.command("train")
def train(
    data: Annotated[Path, typer.Option(help="CounterFact-style training JSON")]
    = Path("../shared/data/counterfact_recipe/counterfact-train.json"),
    out: Annotated[Optional[Path], typer.Option(help="output folder (default: <cache>/recipe/<model>, or the parent "
                                                     "of $SELFPARAM_RECIPE_CHECKPOINT)")] = None,
    model: Annotated[str, typer.Option(help="LLM to edit (kept frozen)")] = "smollm2-135m",
    encoder: Annotated[str, typer.Option(help="sentence encoder name or folder")] = "all-minilm-l6-v2",
    steps: Annotated[int, typer.Option(help="optimizer steps")] = 300,
    batch_size: Annotated[int, typer.Option(help="records per step through the LLM")] = 8,
    contrastive_batch: Annotated[int, typer.Option(help="records per step in the InfoNCE losses")] = 128,
    lr: Annotated[float, typer.Option(help="learning rate")] = 1e-3,
    retrieval_steps: Annotated[int, typer.Option(help="extra InfoNCE-only updates per step (10 overfitted the "
                                                      "heads; the paper has none)")] = 2,
    edit_hinge_scale: Annotated[float, typer.Option(
        help="edit-loss hinge: a target token counts while its probability is below this x the runner-up's "
             "(inf: off)")] = 1.2,
    contrastive_hinge_scale: Annotated[float, typer.Option(help="hinge of the sentinel-oriented InfoNCE terms "
                                                                "(inf: off)")] = 1.2,
    question_share: Annotated[float, typer.Option(help="share of reliability rows asked as the record's question "
                                                       "form (0: statements only)")] = 0.5,
    curve_every: Annotated[int, typer.Option(help="steps per loss-curve point in training.json")] = 50,
    max_records: Annotated[int, typer.Option(help="training records used")] = 10000,
    validation: Annotated[int, typer.Option(help="records held out from the end of the data for validation")] = 500,
    n_prompt_tokens: Annotated[int, typer.Option(help="prompt vectors per edit")] = 3,
    read_fact_tokens: Annotated[bool, typer.Option(help="each prompt vector also reads the LLM's embeddings of the "
                                                        "fact's last tokens (attention), so an object can reach "
                                                        "the LLM as itself; not in the paper")] = False,
    max_seconds: Annotated[float, typer.Option(help="stop after this many seconds of this invocation (a resumed "
                                                    "run gets its own allowance; 0: no limit)")] = 0.0,
    save_every: Annotated[int, typer.Option(help="checkpoint every N steps")] = 25,
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option()] = "cpu",
    dtype: Annotated[str, typer.Option(help="compute dtype: auto, bf16, fp32")] = "auto",
    ship: Annotated[bool, typer.Option(help="then install OUT/editor as the editor shipped inside the package "
                                            "(selfparam/assets/recipe/<model>/)")] = False,
) -> None:
    """Train the editor (heads, sentinel, prompt MLP) with the LLM frozen; resumes from OUT/checkpoint.
    Writes OUT/editor, OUT/training.json and OUT/loss_curve.png."""
    from ..eval.editing_data import load_edits
    from ..lm import load_lm
    from ..methods.recipe import EditorConfig, TrainConfig, default_train_dir, ship_editor
    from ..methods.recipe.encoder import load_encoder
    from ..methods.recipe.training import train_recipe

    records = load_edits(data)
    if validation >= len(records):
        raise typer.BadParameter(f"validation: {validation} held-out records leave none of {len(records)} to train on")
    held_out = records[len(records) - validation:] if validation else []
    train_records = records[:len(records) - validation][:max_records]
    out = out or default_train_dir(model)
    config = TrainConfig(data=str(data), out=str(out), max_records=max_records, steps=steps, batch_size=batch_size,
                         contrastive_batch=contrastive_batch, lr=lr, retrieval_steps=retrieval_steps,
                         edit_hinge_scale=edit_hinge_scale, contrastive_hinge_scale=contrastive_hinge_scale,
                         question_share=question_share, curve_every=curve_every,
                         max_seconds=max_seconds, save_every=save_every,
                         seed=seed, device=device)
    editor_config = EditorConfig(encoder=encoder, n_prompt_tokens=n_prompt_tokens, read_fact_tokens=read_fact_tokens)
    text_encoder = load_encoder(encoder, device=device)  # a bad encoder fails before the LLM loads
    lm = load_lm(model, device=device, dtype=dtype)
    train_recipe(lm, text_encoder, train_records, editor_config, config, validation=held_out)
    typer.echo(f"editor written to {out / 'editor'}; training record {out / 'training.json'}")
    if (out / "validation.json").is_file():
        typer.echo((out / "validation.json").read_text())
    if ship:
        typer.echo(f"shipped: {ship_editor(out / 'editor', model)}")


@recipe_app.command("ship")
def ship(
    editor: Annotated[Path, typer.Argument(help="a trained editor folder (`recipe train` writes OUT/editor)")],
    model: Annotated[str, typer.Option(help="the LLM it was trained for")] = "smollm2-135m",
) -> None:
    """Install a trained editor inside the package (selfparam/assets/recipe/<model>/), where RECIPE finds it
    by default on any install built from this tree."""
    from ..methods.recipe import ship_editor

    typer.echo(f"shipped: {ship_editor(editor, model)}")


@recipe_app.command("calibrate")
def calibrate(
    editor: Annotated[Optional[Path], typer.Argument(help="trained editor folder (default: the one RECIPE loads for "
                                                          "--model, e.g. the shipped editor)")] = None,
    data: Annotated[Path, typer.Option(help="CounterFact-style JSON the editor was trained from")]
    = Path("../shared/data/counterfact_recipe/counterfact-train.json"),
    validation: Annotated[int, typer.Option(help="calibrate on the last N records of --data (the records `recipe "
                                                 "train` held out; never the ones you report on)")] = 500,
    locality: Annotated[float, typer.Option(help="share of the held-out locality prompts that must retrieve "
                                                 "nothing")] = 0.98,
    distractors: Annotated[int, typer.Option(help="also store the facts of the first N records of --data (other "
                                                  "edits), so the margin holds in a repository of N + "
                                                  "--validation facts")] = 0,
    sizes: Annotated[Optional[str], typer.Option(help="calibrate at each of these repository sizes, e.g. "
                                                      "100,500,1000,2500,8000: the --validation held-out facts plus "
                                                      "the first N - --validation records' facts stored (below "
                                                      "--validation: the first N held-out facts); RECIPE then "
                                                      "interpolates the margin at the number of edits "
                                                      "stored")] = None,
    model: Annotated[str, typer.Option(help="the LLM the editor serves (for the default editor)")] = "smollm2-135m",
) -> None:
    """Choose the knowledge sentinel's margin on held-out records and write it into the editor's editor.json:
    the largest margin that keeps --locality of unrelated prompts retrieving nothing (with --sizes, one per
    repository size). Needs no LLM."""
    import torch

    from ..eval.editing_data import load_edits
    from ..methods.recipe import RecipeEditor, default_checkpoint
    from ..methods.recipe.calibration import calibrate_editor, check_sizes
    from ..methods.recipe.editor import EDITOR_META
    from ..methods.recipe.encoder import load_encoder
    from ..methods.recipe.training import encode_records

    size_list = None
    if sizes is not None:  # the syntax first: a typo fails before anything loads
        try:
            size_list = [int(x) for x in sizes.split(",") if x.strip()]
        except ValueError:
            raise typer.BadParameter(f"sizes: expected comma-separated integers, got {sizes!r}") from None
        if not size_list:
            raise typer.BadParameter(f"sizes: expected comma-separated integers, got {sizes!r}")
        if distractors:
            raise typer.BadParameter("sizes: give --sizes or --distractors, not both (with --sizes, the first "
                                     "N - --validation records are the distractors at size N)")
    folder = editor or default_checkpoint(model)
    loaded = RecipeEditor.load(folder)  # a missing editor fails before anything is encoded
    if not 0.0 < locality < 1.0:
        raise typer.BadParameter(f"locality: must be in (0, 1), got {locality}")
    records = load_edits(data)
    if not 0 < validation <= len(records):
        raise typer.BadParameter(f"validation: must be in 1..{len(records)} (the records of {data}), got {validation}")
    held_out = records[len(records) - validation:]
    if not 0 <= distractors <= len(records) - validation:
        raise typer.BadParameter(f"distractors: must be in 0..{len(records) - validation} (the records before the "
                                 f"held-out ones), got {distractors}")
    if size_list is not None:
        try:
            size_list = check_sizes(size_list, validation, len(records) - validation)
        except ValueError as e:
            raise typer.BadParameter(str(e)) from None
        distractors = size_list[-1] - validation
    training = json.loads((folder / EDITOR_META).read_text()).get("training") or {}
    trained_on = training.get("data", {})
    if trained_on.get("last_id") and any(r.id == trained_on["last_id"] for r in held_out):
        raise typer.BadParameter(f"validation: the last {validation} records of {data} include records the editor "
                                 f"was trained on (up to {trained_on['last_id']}); hold out fewer")
    encoder = load_encoder(loaded.config.encoder)
    enc = encode_records(encoder, held_out, None, progress=False)
    facts = [r.fact for r in records[:distractors]]
    others = torch.cat([encoder.encode(facts[s:s + 512]) for s in range(0, len(facts), 512)]) if facts else None
    calibration = calibrate_editor(folder, enc, locality, distractors=others, sizes=size_list,
                                   data={"path": str(data), "first_id": held_out[0].id, "last_id": held_out[-1].id})
    typer.echo(json.dumps(calibration, indent=2))
    typer.echo(f"written to {folder / EDITOR_META}")


@recipe_app.command("edit")
def edit(
    repo: Annotated[Path, typer.Option(help="repository folder (created if missing, updated atomically)")],
    prompt: Annotated[Optional[str], typer.Option(help="the edit's prompt, e.g. 'The CEO of Amazon is'")] = None,
    target: Annotated[Optional[str], typer.Option(help="the new target, e.g. 'Andy Jassy'")] = None,
    edit_id: Annotated[Optional[str], typer.Option("--id", help="id of the new edit (default: random)")] = None,
    delete: Annotated[Optional[str], typer.Option(help="delete the edit with this id")] = None,
    rollback: Annotated[int, typer.Option(help="undo the last N operations")] = 0,
    ask: Annotated[Optional[str], typer.Option(help="then answer this question with the edited model")] = None,
    model: Annotated[str, typer.Option(help="the LLM the editor was trained for")] = "smollm2-135m",
    checkpoint: Annotated[Optional[Path], typer.Option(help="trained editor folder (default location if "
                                                            "omitted)")] = None,
    refine_steps: Annotated[int, typer.Option(help="beyond the paper: fit the new edit's prompt to it for N Adam "
                                                   "steps (seconds on a CPU; docs/recipe.md); 0: the editor's "
                                                   "one-pass prompt")] = 0,
    device: Annotated[str, typer.Option()] = "cpu",
) -> None:
    """Add, delete or roll back edits in a RECIPE repository, and optionally ask a question."""
    from ..lm import load_lm
    from ..methods.base import Query
    from ..methods.recipe import Recipe, RecipeConfig, RecipeEditor, default_checkpoint

    if (prompt is None) != (target is None):
        raise typer.BadParameter("give both --prompt and --target for an edit")
    config = RecipeConfig(checkpoint=str(checkpoint) if checkpoint else None, refine_steps=refine_steps)
    editor = RecipeEditor.load(checkpoint or default_checkpoint(model))  # a missing editor fails before the LLM loads
    lm = load_lm(model, device=device)
    recipe = Recipe(lm, config, editor=editor)
    if (repo / "recipe.json").is_file():
        recipe.load(repo)
    if rollback:
        recipe.rollback(rollback)
    if delete:
        try:
            recipe.delete(delete)
        except KeyError as e:
            raise ValueError(e.args[0]) from None
    if prompt is not None:
        started = time.perf_counter()
        new_id = recipe.edit(prompt, target, edit_id)
        typer.echo(f"stored edit {new_id} in {(time.perf_counter() - started) * 1000:.1f} ms")
    recipe.save(repo)
    typer.echo(json.dumps({"edits": len(recipe.repository), "version": recipe.repository.version}))
    if ask:
        typer.echo(f"retrieved: {recipe.retrieved_ids([ask])[0]}")
        typer.echo(recipe.answer([Query(ask)], max_new_tokens=16)[0])
