"""Split a recorded single-injection SQuAD run by whether each question's fact was a training target
(`selfparam.eval.coverage`), and print the table.

    PYTHONPATH=. python scripts/gold_coverage.py docs/results/single-squad-report-every-method \
        --sets docs/results/targets-squad-report/targets-1bde8c1668d5 --out runs/coverage

The run's `config.json` names its data file and articles; each context's target set is read from `--sets`
(`<sha256 of the context>.json`, as the run cached it). `--out FOLDER` also writes `coverage.json` and
`coverage.md` there. `--also RUN:LABEL` (repeatable) adds another single run of the same draw, say a lever's,
its methods named `method[LABEL]`, and keeps only the questions every added run answered:

    PYTHONPATH=. python scripts/gold_coverage.py docs/results/single-squad-report-every-method \
        --sets docs/results/targets-squad-report/targets-1bde8c1668d5 \
        --also docs/results/single-squad-report-nll1:nll1 --out docs/results/single-squad-report-nll1/coverage
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from selfparam.atomic import atomic_write_text
from selfparam.eval.coverage import coverage_split, markdown
from selfparam.eval.loaders import load_squad
from selfparam.jsonl import read_jsonl
from selfparam.targets.build import context_key, load_target_set


def trained_answers(run: Path, sets: Path) -> dict[str, list[str]]:
    """Each context id of the run's data: the answers of its cached target set."""
    settings = json.loads((run / "config.json").read_text(encoding="utf-8"))["settings"]
    if settings.get("task") != "single":
        raise SystemExit(f"{run}: a single-injection run is expected, this one is {settings.get('task')!r}")
    answers = {}
    for item in load_squad(Path(settings["data"]), tuple(settings["articles"]) if settings.get("articles") else None):
        path = sets / f"{context_key(item.context.text)}.json"
        if path.is_file():
            answers[item.context.id] = [pair.answer for pair in load_target_set(path).pairs]
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a single-injection run folder (config.json, predictions.jsonl)")
    parser.add_argument("--sets", type=Path, required=True, help="the folder of the run's cached target sets")
    parser.add_argument("--reference", default="selfparam", help="the method the differences are taken from")
    parser.add_argument("--also", action="append", default=[], metavar="RUN:LABEL",
                        help="another single run of the same draw; its methods become method[LABEL]")
    parser.add_argument("--out", type=Path, help="also write coverage.json and coverage.md into this folder")
    args = parser.parse_args()
    if not args.sets.is_dir():
        raise SystemExit(f"--sets {args.sets}: not a folder")
    records = [row for _, row in read_jsonl(args.run / "predictions.jsonl")]
    asked = {(row["context_id"], row["question"]) for row in records}
    for spec in args.also:
        run, sep, label = spec.rpartition(":")
        if not sep or not run or not label:
            raise SystemExit(f"--also {spec!r}: expected RUN:LABEL, e.g. docs/results/single-squad-report-nll1:nll1")
        added = [dict(row, method=f"{row['method']}[{label}]")
                 for _, row in read_jsonl(Path(run) / "predictions.jsonl")]
        asked &= {(row["context_id"], row["question"]) for row in added}
        records += added
    records = [row for row in records if (row["context_id"], row["question"]) in asked]
    split = coverage_split(records, trained_answers(args.run, args.sets), args.reference)
    text = markdown(split)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out / "coverage.json", json.dumps(split, indent=1))
        atomic_write_text(args.out / "coverage.md", text)


if __name__ == "__main__":
    main()
