"""Paired differences between recorded conflicts/boundary/lifelong runs (`selfparam.eval.probe_compare`), as
a table.

    PYTHONPATH=. python scripts/probe_compare.py --figure later_wins \
        --reference docs/results/conflicts-counterfact:selfparam \
        docs/results/conflicts-counterfact-reask:selfparam docs/results/conflicts-counterfact:ft-c
    PYTHONPATH=. python scripts/probe_compare.py --figure reliability --edits 100 \
        --reference docs/results/lifelong-counterfact-shipped:recipe docs/results/lifelong-recipe-read:recipe

Each RUN:METHOD names a run folder and a method in it; the difference is that method minus the
reference, on the questions both answered, with a 95% bootstrap interval over those answers. `--reference-figure`
takes the reference's value from another figure of its rows, e.g. SELF-PARAM's pollution against what the
unchanged model (its teacher) said reading the fact:

    PYTHONPATH=. python scripts/probe_compare.py --figure pollution --reference-figure reading_pollution \
        --reference runs/boundary-base-reading:base docs/results/boundary-counterfact:selfparam
"""

from __future__ import annotations

import argparse

from selfparam.eval.probe_compare import FIGURES, compare, figure_values, load_predictions


def values(spec: str, figure: str, edits: int | None = None) -> dict:
    run, sep, method = spec.rpartition(":")
    if not sep or not run or not method:
        raise SystemExit(f"{spec!r}: expected RUN:METHOD, e.g. docs/results/conflicts-counterfact:selfparam")
    return figure_values(load_predictions(run), method, figure, edits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--figure", required=True, choices=sorted(FIGURES))
    parser.add_argument("--edits", type=int, help="lifelong figures: compare after this many edits")
    parser.add_argument("--reference", required=True, help="RUN:METHOD the others are compared with")
    parser.add_argument("--reference-figure", choices=sorted(FIGURES),
                        help="the reference's figure, when not --figure (e.g. reading_pollution)")
    parser.add_argument("others", nargs="+", help="RUN:METHOD")
    args = parser.parse_args()
    try:
        table(args)
    except ValueError as e:  # a folder that is not a recorded run, a method it does not hold, no shared question
        raise SystemExit(f"probe_compare: {e}") from None


def table(args: argparse.Namespace) -> None:
    reference_figure = args.reference_figure or args.figure
    reference = values(args.reference, reference_figure, args.edits)
    # every comparison before printing, so a bad RUN:METHOD fails before half a table
    rows = [(spec, compare(reference, values(spec, args.figure, args.edits))) for spec in args.others]
    figure = args.figure if args.edits is None else f"{args.figure} after {args.edits} edits"
    if reference_figure != args.figure:
        figure += f" (reference: {reference_figure})"
    print(f"| {figure}: RUN:METHOD | questions | value [95% CI] | reference | difference [95% CI] |")
    print("|---|---|---|---|---|")
    for spec, c in rows:
        lo, hi = c["value_ci"]
        dlo, dhi = c["difference_ci"]
        print(f"| {spec} | {c['questions']} | {c['value']:.3f} [{lo:.2f}, {hi:.2f}] | {c['reference']:.3f} | "
              f"{c['difference']:+.3f} [{dlo:+.2f}, {dhi:+.2f}] |")


if __name__ == "__main__":
    main()
