"""How SELF-PARAM's teacher answers with worked examples first (`teacher_shots`): greedy F1, EM, answer length and
the gold answer's log-probability of the model *with the context in view*, on SQuAD questions, per number of
worked examples, with each setting's paired difference from the first one (95% bootstrap over questions).

    PYTHONPATH=. python scripts/teacher_prompt_probe.py --n 30 --shots 0,3 \
        --data ../shared/data/squad_v1.1/dev-v1.1-public.json --articles 1-16 --exclude Steam_engine/34

The teacher is what the student distils, so a better reading here is an upper bound on what the lever can give;
whether the student takes it up is measured by `selfparam eval single` with `{"selfparam": {"teacher_shots": K}}`.
Writes one JSON line per setting to stdout (`--out FILE` keeps the per-question figures).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from selfparam.eval.loaders import load_squad, parse_articles, sample_contexts
from selfparam.eval.metrics import best_em, best_f1, mean
from selfparam.eval.stats import paired_difference
from selfparam.generation import generate, target_logprob
from selfparam.lm import load_lm
from selfparam.targets.demonstrations import teacher_prompt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--articles", default="1-16", help="the tuning split by default")
    ap.add_argument("--exclude", default="", help="comma-separated context ids passed over")
    ap.add_argument("--n", type=int, default=30, help="paragraphs (3 questions each), the harness's seeded draw")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shots", default="0,3", help="comma-separated numbers of worked examples (the first: reference)")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--out", type=Path, help="per-question figures of every setting, as JSON")
    args = ap.parse_args()

    lm = load_lm(args.model, device="auto", dtype="auto")
    drawn = sample_contexts(load_squad(args.data, parse_articles(args.articles)), args.n, args.seed, 3,
                            exclude=tuple(x for x in args.exclude.split(",") if x))
    rows = [(c.context.text, qa) for c in drawn for qa in c.questions]
    shots = [int(s) for s in args.shots.split(",")]
    per: dict[int, dict[str, list[float]]] = {}
    for k in shots:
        prompts = [teacher_prompt(lm.tokenizer, qa.question, ctx, k) for ctx, qa in rows]
        answers = generate(lm, prompts, max_new_tokens=args.max_new_tokens)
        per[k] = {"f1": [best_f1(a, qa.answers) for a, (_, qa) in zip(answers, rows)],
                  "em": [best_em(a, qa.answers) for a, (_, qa) in zip(answers, rows)],
                  "words": [float(len(a.split())) for a in answers],
                  "gold_logprob": target_logprob(lm, prompts, [qa.answers[0] for _, qa in rows])}
        line = {"shots": k, "questions": len(rows), **{f: mean(v) for f, v in per[k].items()}}
        if k != shots[0]:
            line.update({f"{f}_minus_{shots[0]}": paired_difference(per[k][f], per[shots[0]][f])._asdict()
                         for f in ("f1", "em", "gold_logprob")})
        print(json.dumps(line), flush=True)
    if args.out:
        args.out.write_text(json.dumps({str(k): v for k, v in per.items()}))


if __name__ == "__main__":
    main()
