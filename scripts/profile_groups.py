"""Where a sampled profile's time goes, grouped by the deepest selfparam frame of each sample.

    py-spy record -r 20 -d 110 -f raw -o profile.txt --pid PID
    python scripts/profile_groups.py profile.txt --top 15

py-spy's raw format is one line per distinct stack: frames (outermost first) joined by ';', a space, and the
number of samples. A sample with no selfparam frame (the interpreter starting, a library's own thread) is
counted as "outside selfparam". Prints a markdown table of shares, largest first.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# "function (path/to/file.py:123)" -> ("function", "path/to/file.py")
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+\.py)(?::\d+)?\)$")


def group(lines: list[str], package: str = "selfparam/") -> Counter:
    """Samples per deepest `package` frame, as 'function (package-relative file)'."""
    counts: Counter = Counter()
    for line in lines:
        line = line.rstrip()
        if not line:
            continue
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            raise ValueError(f"not a py-spy raw line (no trailing sample count): {line[:80]!r}")
        where = "outside selfparam"
        for frame in reversed(stack.split(";")):
            match = _FRAME.match(frame.strip())
            inside = re.search(rf"(?:^|/)({re.escape(package)}.*)$", match["file"]) if match else None
            if inside:
                file = inside[1]
                where = f"{match['func']} ({file})"
                break
        counts[where] += int(n)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path, help="py-spy record -f raw output")
    parser.add_argument("--top", type=int, default=15, help="rows to show; the rest are summed as 'other'")
    args = parser.parse_args()
    counts = group(args.profile.read_text(encoding="utf-8").splitlines())
    total = sum(counts.values())
    if not total:
        raise SystemExit(f"{args.profile}: no samples")
    print(f"{total} samples\n\n| deepest selfparam frame | samples | share |\n|---|---|---|")
    shown = counts.most_common(args.top)
    for where, n in shown:
        print(f"| `{where}` | {n} | {n / total:.1%} |")
    rest = total - sum(n for _, n in shown)
    if rest:
        print(f"| other | {rest} | {rest / total:.1%} |")


if __name__ == "__main__":
    main()
