"""One evaluation run end to end: check the inputs, load data and model, run the task, write the report.

The CLI commands are thin shells over `evaluate`. Everything that can be checked without the model
(task, method names, data file, sizes) is checked first, so bad input fails in a second and leaves no
run folder behind.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tqdm.auto import tqdm

from ..lm import DEFAULT_MODEL, LM, load_lm
from ..methods.base import KnowledgeMethod, Resources
from ..methods.registry import METHODS, QA_METHODS, build_method, config_class, preflight
from ..settings import absent_values, retired_values
from ..targets import TooFewPairsError
from ..targets.config import DEFAULT_FACT_PHRASINGS, TargetConfig
from . import tasks
from .configs import recorded_method_configs
from .general import GeneralConfig, general_ability
from .loaders import CRS_DATASETS, DataError, load_crs, load_qa, parse_articles, sample_contexts, sample_turns
from .progress import LOG_NAME, RESUMABLE, RunLog, added_settings, added_values, resume_differences
from .report import plots_wanted, write_config, write_report
from .seeds import parse_seeds, seed_folder, seed_summary, seeded_method_configs, write_seed_report

TASKS = ("single", "batch", "sequential", "recommendation")
DEFAULT_MAX_NEW_TOKENS = {"single": 32, "batch": 32, "sequential": 32, "recommendation": 64}


@dataclass
class EvalSettings:
    """Everything a run depends on; written to `config.json` as resolved."""

    task: str
    data: Path
    out: Path
    methods: tuple[str, ...] = QA_METHODS
    n: int = 20
    seed: int = 0
    model: str = DEFAULT_MODEL
    device: str = "auto"
    dtype: str = "auto"
    questions_per_context: int = 3
    articles: tuple[int, ...] | str | None = None  # SQuAD: draw only from these articles (1-based), e.g. "17-32"
    exclude: tuple[str, ...] = ()  # context ids the draw passes over (the next one takes their place)
    max_new_tokens: int | None = None  # None: the task's default
    k: int | None = None  # batch: contexts per update (None: all n at once)
    dataset: str | None = None  # recommendation: inspired | redial (a subfolder of `data`)
    n_pairs: int | None = None  # generated pairs per context (None: the target builder's default)
    unrelated: Path | None = None  # unrelated sentences for the target sets (None: none)
    unrelated_ratio: float | None = None  # unrelated sentences per pair (None: the target builder's default)
    questions: str = "facts"  # target questions: answer-aware fact-covering ones, or the paper's prompt ("paper")
    fact_phrasings: int = DEFAULT_FACT_PHRASINGS  # questions="facts": questions per fact (1: the cloze alone)
    fact_cycle: bool = True  # questions="facts": sets with fewer than n_pairs distinct pairs repeated up to n_pairs
    fact_spans: str = "rules"  # questions="facts": the answer spans asked (rules; wide: also counts, noun phrases)
    fact_pronouns: str = "drop"  # questions="facts": a cloze with an unresolved pronoun dropped, or asked with a name
    targets_dir: Path | None = None  # cache of target sets (None: <out>/targets)
    method_config: Path | None = None  # JSON of per-method settings
    general: GeneralConfig | None = None
    general_every: int = 0  # sequential with `general`: also measure it after every N-th step (0: off)
    progress: bool = True
    command: str | None = None  # the command line that asked for the run, recorded in config.json

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; known tasks: {', '.join(TASKS)}")
        self.methods = tuple(self.methods)
        if not self.methods:
            raise ValueError("no methods given")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {', '.join(map(repr, unknown))}; known methods: {', '.join(METHODS)}")
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods listed twice: {', '.join(self.methods)}")
        if self.n < 1 or self.questions_per_context < 1:
            raise ValueError(f"n and questions_per_context must be >= 1, got {self.n} and {self.questions_per_context}")
        if self.max_new_tokens is None:
            self.max_new_tokens = DEFAULT_MAX_NEW_TOKENS[self.task]
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.task == "batch":
            self.k = self.k or self.n
            if self.k < 1 or self.n % self.k:
                raise ValueError(f"batch: k={self.k} must be >= 1 and divide n={self.n}")
        if self.task == "recommendation":
            if self.dataset is not None and self.dataset not in CRS_DATASETS:
                raise ValueError(f"unknown dataset {self.dataset!r}; known: {', '.join(CRS_DATASETS)}")
        self.data, self.out = Path(self.data), Path(self.out)
        if self.articles is not None:
            if self.task == "recommendation" or self.data.suffix != ".json":
                raise ValueError(f"articles: apply to SQuAD JSON data only, not to {self.task} on {self.data}")
            self.articles = parse_articles(self.articles) if isinstance(self.articles, str) \
                else tuple(sorted(set(int(a) for a in self.articles)))
            if not self.articles or self.articles[0] < 1:
                raise ValueError(f"articles: need article numbers >= 1, got {self.articles}")
        self.exclude = tuple(dict.fromkeys(str(e).strip() for e in self.exclude if str(e).strip()))
        if self.exclude and self.task == "recommendation":
            raise ValueError("exclude: applies to the QA tasks' contexts, not to recommendation turns")
        if self.general_every < 0:
            raise ValueError(f"general_every: must be >= 1 (0: off), got {self.general_every}")
        # the run's target settings, checked by the one config that holds them, before config.json is written or
        # the model loads
        TargetConfig(questions=self.questions, fact_phrasings=self.fact_phrasings, fact_cycle=self.fact_cycle,
                     fact_spans=self.fact_spans, fact_pronouns=self.fact_pronouns)
        if self.general_every and self.task != "sequential":
            raise ValueError(f"general_every: applies to the sequential task only, not to {self.task}")
        if self.general_every and self.general is None:
            raise ValueError("general_every: measures general ability, so it needs --general (a GeneralConfig)")
        if self.unrelated is not None and not Path(self.unrelated).is_file():
            raise ValueError(f"unrelated corpus {self.unrelated} does not exist")
        if self.unrelated_ratio is not None:
            TargetConfig(unrelated_ratio=self.unrelated_ratio)  # its one check: >= 0
            if self.unrelated is None and self.unrelated_ratio > 0:
                raise ValueError(f"unrelated_ratio={self.unrelated_ratio} draws unrelated sentences: it needs an "
                                 "unrelated corpus (--unrelated)")
        if self.targets_dir is None:
            self.targets_dir = self.out / "targets"

    def to_dict(self) -> dict[str, Any]:
        return {k: (dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v)
                for k, v in vars(self).items()}


def load_task_data(settings: EvalSettings):
    """The contexts (QA tasks) or dialogue turns (recommendation) of the run, drawn with the seed."""
    if settings.task == "recommendation":
        folder = settings.data / settings.dataset if settings.dataset else settings.data
        if not folder.exists():
            raise DataError(f"recommendation data folder {folder} does not exist")
        data = load_crs(folder)
        return data, sample_turns(data, settings.n, settings.seed)
    contexts = load_qa(settings.data, settings.articles)
    return None, sample_contexts(contexts, settings.n, settings.seed, settings.questions_per_context,
                                 exclude=settings.exclude)


def make_resources(settings: EvalSettings, lm: LM) -> Resources:
    """The run's shared target builder (see `shared_target_resources`)."""
    return shared_target_resources(lm, seed=settings.seed, unrelated=settings.unrelated, n_pairs=settings.n_pairs,
                                   unrelated_ratio=settings.unrelated_ratio, questions=settings.questions,
                                   fact_phrasings=settings.fact_phrasings,
                                   fact_cycle=settings.fact_cycle, fact_spans=settings.fact_spans,
                                   fact_pronouns=settings.fact_pronouns,
                                   targets_dir=settings.targets_dir, progress=settings.progress)


def shared_target_resources(lm: LM, *, seed: int, unrelated: Path | None, n_pairs: int | None,
                            targets_dir: Path, progress: bool = False, **target_settings: Any) -> Resources:
    """One cached target builder for every method of a run: SELF-PARAM and FT(S) train on the very same
    generated sets, written by the unchanged base model (`lm`, which no method modifies in place).
    `target_settings`: further `TargetConfig` fields (None values are left at their defaults); `progress`: a
    bar of the pairs found while a set is generated."""
    from ..targets import make_target_builder

    fields: dict[str, Any] = {"seed": seed, "unrelated_path": str(unrelated) if unrelated else None}
    if n_pairs is not None:
        fields["n_pairs"] = n_pairs
    fields.update({k: v for k, v in target_settings.items() if v is not None})
    config = TargetConfig(**fields)
    return Resources(target_builder=make_target_builder(config, lm, cache_dir=str(targets_dir), progress=progress),
                     targets=config, seed=seed)


GROWABLE = ("single", "recommendation")  # tasks whose run grows by a larger --n (draws are prefixes of one order)


def open_run_log(out: Path, config: dict[str, Any]) -> RunLog:
    """The run log in `out`, after checking that the run it logs had the same settings, method configs and
    drawn items as `config` (a changed setting would mix two runs' figures in one report).

    Single-context and recommendation runs may grow: a larger `--n` draws the same items first (draws are
    prefixes of one seeded order), so the logged items are kept, the new ones are run, and every method's
    figures are computed again over all of them. Long recorded runs are grown this way in steps, with a
    complete table for every method after each step."""
    path = Path(out) / LOG_NAME
    growable = config["settings"].get("task") in GROWABLE
    n_items = len(config.get("items") or ()) if growable else None
    if not path.is_file():
        return RunLog(path, n_items)
    previous = Path(out) / "config.json"
    if not previous.is_file():
        raise ValueError(f"{out} has a run log but no config.json; move {path} away to start afresh")
    old = json.loads(previous.read_text(encoding="utf-8"))
    # which methods run may change (each method's figures are its own): the configs of the methods both the run
    # and this command name are compared; a method added to the run starts its own units
    both = _methods_of(old) & _methods_of(config)
    old = {**old, "method_configs": _without_retired({k: v for k, v in
                                                       recorded_method_configs(old.get("method_configs")).items()
                                                       if k in both})}
    config = {**config, "method_configs": {k: v for k, v in config["method_configs"].items() if k in both}}
    grows = _grows(old, config)
    left_out = sorted(set(old.get("settings", {}).get("methods") or ()) - set(config["settings"].get("methods") or ()))
    if grows and left_out:  # they would stay finished at the smaller n
        raise ValueError(f"{out}: a run grows with every method it has; add {', '.join(left_out)} to --methods")
    ignore = RESUMABLE + (("n",) if grows else ())
    differ = resume_differences(old.get("settings", {}), config["settings"], ignore=ignore)
    differ += resume_differences({k: old.get(k) for k in ("method_configs",) + (() if grows else ("items",))},
                                 {k: config[k] for k in ("method_configs",) + (() if grows else ("items",))})
    differ += _behaves_otherwise(old["method_configs"], config["method_configs"])
    if differ:
        raise ValueError(f"{out} holds a run with other settings, which this command would resume: "
                         f"{'; '.join(differ)}. Run it with the same settings, or choose another --out")
    added = added_settings(old.get("settings", {}), config["settings"], ignore=ignore)
    added += added_settings({"method_configs": old["method_configs"]}, {"method_configs": config["method_configs"]})
    if added:
        print(f"selfparam: resuming {out}, whose run predates the settings {', '.join(added)}", file=sys.stderr)
    return RunLog(path, n_items)  # a method finished over fewer items than the run now draws goes on


def _methods_of(config: dict[str, Any]) -> set[str]:
    """The methods a run config names: its settings' `methods` and those it has configs for (a method the run
    ran under an earlier command keeps its config there, `write_config`)."""
    return set(config.get("settings", {}).get("methods") or ()) | set(config.get("method_configs") or ())


def _without_retired(configs: dict[str, Any]) -> dict[str, Any]:
    """Recorded method configs less the settings removed from the code since, where the run had them at the
    value that behaves as the code does without them (`settings.retired_values`); at another value they stay,
    and the resume check names them."""
    out = {}
    for name, values in configs.items():
        cls = config_class(name)
        retired = retired_values(cls) if cls is not None and isinstance(values, dict) else {}
        out[name] = {k: v for k, v in values.items() if k not in retired or v != retired[k]} if retired else values
    return out


def _behaves_otherwise(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Method settings added to the code since the logged run started whose value now differs from the one
    that behaves as that code did (`settings.ABSENT`): a new default that changes what a method does."""
    out = []
    for name, values in new.items():
        cls = config_class(name)
        if cls is None or name not in old or not isinstance(values, dict):
            continue
        absent = absent_values(cls)
        for where, value in added_values(old[name], values).items():
            if where in absent and value != absent[where]:
                out.append(f"{name}.{where}={value!r} was added since the run started (its code behaved as "
                           f"{absent[where]!r}; set it so with --method-config to resume)")
    return out


def _grows(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether `new` extends the logged run `old` by more items of the same draw (single/recommendation)."""
    old_settings, new_settings = old.get("settings", {}), new["settings"]
    old_items, new_items = old.get("items") or [], new.get("items") or []
    return (new_settings.get("task") in GROWABLE
            and isinstance(old_settings.get("n"), int) and new_settings["n"] > old_settings["n"]
            and len(new_items) > len(old_items) and new_items[:len(old_items)] == old_items)


def run_method_configs(settings: EvalSettings) -> dict[str, Any]:
    """Every method's config for this run, seeded with the run's seed (see `seeds.seeded_method_configs`)."""
    return seeded_method_configs(settings.method_config, settings.methods, settings.seed)


def prepare_targets(settings: EvalSettings, lm: LM | None = None) -> dict[str, Any]:
    """Build and cache the target set of every context the run draws, and run no method.

    Pair generation is the expensive part of an injection on a small CPU (minutes per paragraph); doing it
    ahead, once, lets the single, batch and sequential runs of the same draw share the sets (through the same
    `targets_dir`) and keeps generation out of the methods' inject seconds. A set already cached is kept. A
    context whose generator left too few usable pairs does not stop the others: its outcome is cached too
    (the runs fail on it at once) and listed under "failed" ({"context", "error"} each).
    Returns {"contexts", "built", "cached", "failed", "folder"}.
    """
    if settings.task == "recommendation":
        raise ValueError("--targets-only: the QA tasks (single, batch, sequential) only")
    _, items = load_task_data(settings)  # bad data fails here, before the model loads
    lm = lm or load_lm(settings.model, settings.device, settings.dtype)
    builder = make_resources(settings, lm).target_builder
    contexts = {item.context.text: item.context.id for item in items}  # a context drawn twice is built once
    built, failed = 0, []
    for text, context_id in tqdm(contexts.items(), desc="target sets", unit="ctx", disable=not settings.progress):
        misses = builder.misses
        try:
            builder(text)
        except TooFewPairsError as e:
            failed.append({"context": context_id, "error": str(e)})
            continue
        built += builder.misses - misses
    return {"contexts": len(contexts), "built": built, "cached": len(contexts) - built - len(failed),
            "failed": failed, "folder": str(builder.folder)}


def evaluate(settings: EvalSettings, lm: LM | None = None, build: Callable[[str], KnowledgeMethod] | None = None,
             report_only: bool = False) -> tuple[tasks.TaskResult, dict[str, Path]]:
    """Run the task for every method and write the report into `settings.out`.

    `report_only`: run nothing, load no model; write the report of what the run log in `settings.out`
    holds (a long run still going, or stopped): methods it holds only part of are marked `partial`, and
    their comparisons use the questions both sides scored; a partial sequential method is reported after
    its last logged step.

    `lm` and `build` default to loading `settings.model` and building methods from the registry on it;
    tests pass a tiny model or a fake builder.
    """
    data, items = load_task_data(settings)  # bad data fails here, before the model loads
    plots_wanted()  # as does a bad SELFPARAM_PLOTS, which the report reads at the end
    configs = run_method_configs(settings)
    if build is None:
        for name in settings.methods:  # what a method can check without the model (RECIPE's editor)
            preflight(name, configs.get(name), settings.model)
    config = {"settings": settings.to_dict(),
              "method_configs": recorded_method_configs({k: dataclasses.asdict(v) for k, v in configs.items()}),
              "items": [getattr(getattr(i, "context", None), "id", None) or getattr(i, "id", None) for i in items]}
    log = open_run_log(settings.out, config)  # a changed setting refuses to resume, before anything is written
    if report_only:
        if not log.units:
            raise ValueError(f"--report-only: {settings.out} holds no run log with finished units yet")
        build = tasks.LoggedOnly
    else:
        settings.out.mkdir(parents=True, exist_ok=True)
        write_config(settings.out, config)  # a report-only run leaves the run's own config (and command) alone
    started = time.time()
    if build is None:
        lm = lm or load_lm(settings.model, settings.device, settings.dtype)
        resources = make_resources(settings, lm)

        def build(name: str) -> KnowledgeMethod:
            return build_method(name, lm, configs.get(name), resources, progress=settings.progress)

    after = None
    general_before = None
    if settings.general is not None and report_only:  # the base model's figures are not logged: left out
        after = tasks.measured_only  # figures the log holds are taken from it, the first it lacks ends the method
    elif settings.general is not None:
        if lm is None:
            raise ValueError("general ability needs the model: pass `lm` along with a custom `build`")
        general_before = general_ability(lm, settings.general)
        after = _general_after(settings.general)

    resumed = len(log.units)
    common = dict(max_new_tokens=settings.max_new_tokens, seed=settings.seed, progress=settings.progress, after=after,
                  log=log)
    if settings.task == "single":
        result = tasks.run_single(settings.methods, build, items, **common)
    elif settings.task == "batch":
        result = tasks.run_batch(settings.methods, build, items, settings.k, **common)
    elif settings.task == "sequential":
        result = tasks.run_sequential(settings.methods, build, items, after_every=settings.general_every, **common)
    else:
        result = tasks.run_recommendation(settings.methods, build, data, items, **common)
    if general_before is not None:
        result.extra["general_before"] = general_before
        for outcome in result.outcomes:  # the base model is every method's step 0
            if "general_by_step" in outcome.extra:
                outcome.extra["general_by_step"] = {"0": general_before, **outcome.extra["general_by_step"]}
    if not report_only:  # nothing ran: a 0 would read as the run's time
        result.extra["wall_seconds"] = round(time.time() - started, 1)
    if resumed:
        result.extra["resumed_units"] = resumed  # units taken from the run log of an earlier, interrupted run
    result.extra["model"] = settings.model
    title = f"{settings.task} injection: {settings.data.name}" if settings.task != "recommendation" \
        else f"conversational recommendation: {result.extra.get('dataset')}"
    if report_only:
        result.extra["report_only"] = True
        title += " (report only: what the run log holds so far)"
    return result, write_report(settings.out, result, title)


def _general_after(config: GeneralConfig):
    """General ability of the model a method answers with (`method.lm`), measured before its reset.

    Weight-editing methods answer with their own updated copy; retrieval and in-context methods with the
    base model, so theirs equals the base figures. A method without an `lm` gets an error entry instead.
    """

    def after(name: str, method: KnowledgeMethod) -> dict[str, Any]:
        lm = getattr(method, "lm", None)
        if lm is None:
            return {"general_error": f"method {name!r} exposes no `lm` to measure"}
        return general_ability(lm, config)

    return after


def evaluate_seeds(settings: EvalSettings, seeds: tuple[int, ...] | str, lm: LM | None = None,
                   build: Callable[[str], KnowledgeMethod] | None = None) -> tuple[dict[int, tasks.TaskResult],
                                                                                  dict[str, Path]]:
    """`evaluate` once per seed into `OUT/seed-S/` (each seed draws its contexts and seeds every method), then
    a combined `OUT/summary.{json,md}` with the per-seed figures and their mean. The model loads once."""
    seeds = parse_seeds(seeds) if isinstance(seeds, str) else tuple(seeds)
    if not seeds:
        raise ValueError("seeds: give at least one seed")
    shared_targets = settings.targets_dir if settings.targets_dir != settings.out / "targets" else None
    per_seed = [dataclasses.replace(settings, seed=s, out=seed_folder(settings.out, s), targets_dir=shared_targets)
                for s in seeds]
    for s in per_seed:  # every seed's data and method configs are checked before anything runs
        load_task_data(s)
        run_method_configs(s)
    if build is None and lm is None:
        lm = load_lm(settings.model, settings.device, settings.dtype)
    results, summaries = {}, {}
    for seed, s in zip(seeds, per_seed):
        result, paths = evaluate(s, lm, build)
        results[seed] = result
        summaries[seed] = json.loads(paths["summary_json"].read_text(encoding="utf-8"))
    title = f"{settings.task}: {settings.data.name}"
    paths = write_seed_report(settings.out, seed_summary(summaries),
                              {"settings": settings.to_dict(), "seeds": list(seeds),
                               "runs": [str(s.out) for s in per_seed]}, title)
    return results, paths
