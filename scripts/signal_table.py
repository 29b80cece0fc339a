#!/usr/bin/env python3
"""Where MASP's meta-gradient went, per arm of a toy experiment, for docs/experiments.md.

Reads the signal columns of each run's `metrics.csv` (`meta_reach`, `meta_consistency`,
`s_change`, `meta_alignment`, `penalty_td_ratio`; see crates/masp/src/signal.rs) in OUT/NAME
(run folders `{env}__{arm}__{seed}`), averages each run over its log intervals, and prints one
markdown row per arm: the mean over seeds with its 95 % Student-t half-width. Arms without
MASP (no signal) are left out. Writes the same numbers to OUT/NAME/signal.csv.

    python3 scripts/signal_table.py runs/mechanism --meta-interval 4

Consistency is read against what random signs would give: a pair pushed by `k` steps of
random sign and equal size has `E|sum| / sum|g| ~ sqrt(2 / (pi k))`; `k`, the meta steps per
interval, is the interval's updates over the arm's meta interval (`--interval ARM=N` for an
arm whose interval differs).
"""

import argparse
import csv
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from study_table import mean_ci


def run_numbers(run, interval):
    rows = [r for r in csv.DictReader(open(run / "metrics.csv")) if r.get("meta_consistency")]
    if not rows:
        return None
    updates = [int(r["updates"]) for r in csv.DictReader(open(run / "metrics.csv"))]
    steps = [max((b - a) / interval, 1.0) for a, b in zip([0] + updates, updates)][-len(rows):]
    value = lambda r, k: float(r[k]) if r[k] else None
    alignment = [value(r, "meta_alignment") for r in rows if r["meta_alignment"]]
    consistency = [value(r, "meta_consistency") for r in rows]
    chance = [math.sqrt(2 / (math.pi * k)) for k in steps]
    ratio = [value(r, "penalty_td_ratio") for r in rows if r["penalty_td_ratio"]]
    return {
        "reach": statistics.fmean(value(r, "meta_reach") for r in rows),
        "consistency": statistics.fmean(consistency),
        "chance": statistics.fmean(chance),
        "change": statistics.fmean(value(r, "s_change") for r in rows),
        "relative_change": statistics.fmean(
            value(r, "s_change") / value(r, "s_mean_off_diagonal") for r in rows if value(r, "s_mean_off_diagonal")
        ),
        "alignment": statistics.fmean(alignment) if alignment else None,
        "aligned_share": statistics.fmean(a > 0.5 for a in alignment) if alignment else None,
        "ratio_first": ratio[0] if ratio else None,
        "ratio_last": ratio[-1] if ratio else None,
    }


KEYS = [
    ("reach", "pairs reached", 3),
    ("consistency", "consistency", 3),
    ("chance", "consistency of random signs", 3),
    ("change", "S's change per interval", 5),
    ("relative_change", "S's change per interval / mean S", 4),
    ("alignment", "AUC of the interval's descent (groups)", 3),
    ("aligned_share", "intervals with AUC > 0.5", 2),
    ("ratio_first", "penalty/TD first", 4),
    ("ratio_last", "penalty/TD last", 4),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", type=Path, help="OUT/NAME, the experiment's folder")
    parser.add_argument("--meta-interval", type=int, required=True, help="updates between meta steps")
    parser.add_argument("--interval", action="append", default=[], help="ARM=N: another arm's meta interval")
    args = parser.parse_args()
    intervals = dict(item.split("=") for item in args.interval)
    arms = defaultdict(list)
    for run in sorted(p for p in args.experiment.iterdir() if (p / "metrics.csv").exists()):
        parts = run.name.split("__")
        if len(parts) != 3:
            continue
        numbers = run_numbers(run, int(intervals.get(parts[1], args.meta_interval)))
        if numbers:
            arms[parts[1]].append(numbers)
    if not arms:
        sys.exit(f"no run with signal columns in {args.experiment}")
    header = ["arm", "seeds"] + [title for _, title, _ in KEYS]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    table = []
    for arm, runs in arms.items():
        cells, numbers = [arm, str(len(runs))], [arm, len(runs)]
        for key, _, digits in KEYS:
            text, m, h = mean_ci([r[key] for r in runs], digits)
            cells.append(text)
            numbers += [m, h]
        print("| " + " | ".join(cells) + " |")
        table.append(numbers)
    with open(args.experiment / "signal.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arm", "seeds"] + [f"{k}_{s}" for k, _, _ in KEYS for s in ("mean", "ci")])
        w.writerows(table)


if __name__ == "__main__":
    main()
