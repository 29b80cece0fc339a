#!/usr/bin/env python3
"""Per-arm table of a toy experiment's runs, for docs/experiments.md.

Reads each run folder of OUT/NAME (as `masp experiment` writes them: `{env}__{arm}__{seed}`):
`metrics.csv` (training return per interval, `eval_score` at checkpoints), `eval.json` (the
final greedy evaluation) and, where `masp analyze` has run, `analysis/analysis.json` (or an
`analysis.json` beside the others, as results/ keeps it: the group separation of S). Prints one markdown row per arm, the mean over seeds with its 95 %
Student-t half-width, and writes the same numbers to OUT/NAME/study.csv.

    python3 scripts/study_table.py runs/mechanism --threshold 0.8

Sample efficiency is read two ways: the mean training return over the whole budget (the
area under the learning curve, divided by the budget) and the frames until the interval's
training return first reaches --threshold (runs that never do count as the budget, and
are counted).

With `--compare naive,masp` it also compares the arms `naive-LEVEL` and `masp-LEVEL` at each
level both have (`k64`, `noise25`, ...): the second minus the first in mean training return,
how many runs of each reached --threshold with Fisher's exact test (two-sided), and over the
levels named by `--levels` (default: all) a stratified permutation test of the mean
difference (arm labels shuffled within each level, 20,000 draws, seeded, two-sided):

    python3 scripts/study_table.py results/toy-noise-corridor60-source-draw --threshold 0.8 \
        --eval-bin 10000 --compare naive,masp --levels noise25,noise50,noise75
"""

import argparse
import csv
import json
import math
import random
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

# Two-sided 95 % Student t quantiles by degrees of freedom.
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def mean_ci(values, digits=3):
    """`mean ± half-width` text with `digits` decimals, the mean and the half-width."""
    values = [v for v in values if v is not None]
    if not values:
        return "–", None, None
    m = statistics.fmean(values)
    if len(values) < 2:
        return f"{m:.{digits}f}", m, None
    half = T95.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))
    return f"{m:.{digits}f} ± {half:.{digits}f}", m, half


def arm_order(arm):
    """Arms by their swept number, then name: `naive-k4` before `naive-k16`, and each naive
    arm beside its MASP one."""
    digits = re.findall(r"\d+(?:\.\d+)?", arm)
    return (float(digits[-1]) if digits else -1.0, arm)


def run_numbers(run, threshold, eval_bin):
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    budget = int(rows[-1]["frames"])
    scores = [(int(r["frames"]), float(r["episode_score"])) for r in rows if r["episode_score"]]
    reached = next((f for f, s in scores if s >= threshold), None)
    # A macro agent's checkpoints land a few frames past the interval (a macro is not cut):
    # file each under the nearest multiple of `eval_bin`, so that seeds line up.
    evals = {round(int(r["frames"]) / eval_bin) * eval_bin: float(r["eval_score"]) for r in rows if r["eval_score"]}
    final = json.load(open(run / "eval.json"))["mean"] if (run / "eval.json").exists() else None
    groups = None
    # `masp analyze`'s output in a run folder, or its JSON copied beside the run's files.
    for analysis in [run / "analysis" / "analysis.json", run / "analysis.json"]:
        if analysis.exists():
            groups = json.load(open(analysis)).get("group_separation")
    return {
        "auc": statistics.fmean(s for _, s in scores),
        "first": scores[0][1],
        "frames_to_threshold": reached if reached is not None else budget,
        "never": reached is None,
        "evals": evals,
        "final": final,
        "auc_s": groups["auc"] if groups else None,
        "within": groups["within_mean"] if groups else None,
        "between": groups["between_mean"] if groups else None,
    }


def fisher_exact(a, b, c, d):
    """Two-sided p of Fisher's exact test on the 2x2 table [[a, b], [c, d]]: the summed
    probability of every table with the same margins that is no more likely than this one."""
    row1, col1, n = a + b, a + c, a + b + c + d

    def prob(x):
        return math.comb(col1, x) * math.comb(n - col1, row1 - x) / math.comb(n, row1)

    observed = prob(a)
    tables = range(max(0, row1 + col1 - n), min(row1, col1) + 1)
    return min(1.0, sum(prob(x) for x in tables if prob(x) <= observed * (1 + 1e-9)))


def stratified_permutation(levels, draws=20_000, seed=0):
    """Two-sided p of the mean over levels of (mean of B - mean of A), `levels` a list of
    (A values, B values), with the labels shuffled within each level."""

    def statistic(pairs):
        return statistics.fmean(statistics.fmean(b) - statistics.fmean(a) for a, b in pairs)

    observed = statistic(levels)
    rng = random.Random(seed)
    hits = 0
    for _ in range(draws):
        shuffled = []
        for a, b in levels:
            pooled = a + b
            rng.shuffle(pooled)
            shuffled.append((pooled[: len(a)], pooled[len(a) :]))
        hits += abs(statistic(shuffled)) >= abs(observed) - 1e-12
    return observed, hits / draws


def parse_compare(compare, levels):
    """The two arm prefixes of `--compare` and the levels of `--levels` (None: all), or an
    exit naming what is wrong and the fix."""
    if compare is None:
        if levels is not None:
            sys.exit("--levels needs --compare A,B, e.g. --compare naive,masp --levels noise25,noise50")
        return None
    prefixes = [p.strip() for p in compare.split(",")]
    if len(prefixes) != 2 or not all(prefixes) or prefixes[0] == prefixes[1]:
        sys.exit(f"--compare takes two different arm prefixes, e.g. naive,masp, not {compare!r}")
    chosen = None
    if levels is not None:
        chosen = [l.strip() for l in levels.split(",")]
        if not all(chosen) or len(set(chosen)) != len(chosen):
            sys.exit(f"--levels takes distinct level names, e.g. noise25,noise50, not {levels!r}")
    return prefixes, chosen


def level_pairs(arms, first, second, levels):
    """`{level: (runs of first-level, runs of second-level)}` for every level both arms have,
    checked against `levels`, or an exit that lists what there is."""
    pairs = {}
    for arm in arms:
        if arm.startswith(first + "-") and f"{second}-{arm[len(first) + 1:]}" in arms:
            level = arm[len(first) + 1 :]
            pairs[level] = (arms[arm], arms[f"{second}-{level}"])
    if not pairs:
        found = ", ".join(sorted(arms, key=arm_order))
        sys.exit(f"no level has both a {first}-LEVEL and a {second}-LEVEL arm; the finished arms are {found}")
    missing = [level for level in levels or [] if level not in pairs]
    if missing:
        both = ", ".join(sorted(pairs, key=arm_order))
        sys.exit(f"--levels names {', '.join(missing)}, which lack a finished {first} or {second} arm; "
                 f"the levels with both are {both}")
    return pairs


def compare(pairs, first, second, levels, threshold):
    """Prints the `--compare` table and test; see the module docs."""
    print()
    print(f"| level | {second} - {first}, mean training return | reached {threshold}: {first} | {second} | Fisher p |")
    print("|---|---|---|---|---|")
    for level in sorted(pairs, key=arm_order):
        a, b = pairs[level]
        diff = statistics.fmean(r["auc"] for r in b) - statistics.fmean(r["auc"] for r in a)
        ra, rb = sum(not r["never"] for r in a), sum(not r["never"] for r in b)
        p = fisher_exact(ra, len(a) - ra, rb, len(b) - rb)
        print(f"| {level} | {diff:+.3f} | {ra} of {len(a)} | {rb} of {len(b)} | {p:.2f} |")
    chosen = levels or sorted(pairs, key=arm_order)
    values = [([r["auc"] for r in pairs[l][0]], [r["auc"] for r in pairs[l][1]]) for l in chosen]
    observed, p = stratified_permutation(values)
    print()
    print(f"mean over {', '.join(chosen)} of ({second} - {first}) mean training return: {observed:+.3f}; "
          f"stratified permutation test, 20,000 draws, two-sided: p = {p:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", type=Path, help="OUT/NAME, the experiment's folder")
    parser.add_argument("--threshold", type=float, required=True, help="training return to reach")
    parser.add_argument("--eval-bin", type=int, default=1000, help="frames: checkpoint evaluations are matched to the nearest multiple")
    parser.add_argument("--compare", metavar="A,B", help="arm prefixes to compare level by level, e.g. naive,masp")
    parser.add_argument("--levels", help="the levels the permutation test pools, e.g. noise25,noise50 (default: all)")
    args = parser.parse_args()
    comparison = parse_compare(args.compare, args.levels)
    arms = defaultdict(list)
    for run in sorted(p for p in args.experiment.iterdir() if (p / "metrics.csv").exists()):
        parts = run.name.split("__")
        if len(parts) != 3 or not (run / "eval.json").exists():
            continue
        arms[parts[1]].append(run_numbers(run, args.threshold, args.eval_bin))
    if not arms:
        sys.exit(f"no finished run in {args.experiment}")
    if comparison:
        (first, second), levels = comparison
        pairs = level_pairs(arms, first, second, levels)
    checkpoints = sorted({f for runs in arms.values() for r in runs for f in r["evals"]})
    header = (
        ["arm", "seeds", "mean training return", f"frames to {args.threshold}", "never"]
        + [f"eval at {f}" for f in checkpoints]
        + ["final eval", "AUC of S (groups)", "S within", "S between"]
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    table = []
    for arm, runs in sorted(arms.items(), key=lambda item: arm_order(item[0])):
        cells = [arm, str(len(runs))]
        numbers = [arm, len(runs)]
        for key, digits in [("auc", 3), ("frames_to_threshold", 0)]:
            text, m, h = mean_ci([r[key] for r in runs], digits)
            cells.append(text)
            numbers += [m, h]
        never = sum(r["never"] for r in runs)
        cells.append(str(never))
        numbers.append(never)
        for f in checkpoints:
            text, m, h = mean_ci([r["evals"].get(f) for r in runs])
            cells.append(text)
            numbers += [m, h]
        for key, digits in [("final", 3), ("auc_s", 3), ("within", 5), ("between", 5)]:
            text, m, h = mean_ci([r[key] for r in runs], digits)
            cells.append(text)
            numbers += [m, h]
        print("| " + " | ".join(cells) + " |")
        table.append(numbers)
    columns = ["arm", "seeds", "return_mean", "return_ci", "frames_mean", "frames_ci", "never"]
    for f in checkpoints:
        columns += [f"eval{f}_mean", f"eval{f}_ci"]
    columns += ["final_mean", "final_ci", "auc_s_mean", "auc_s_ci", "within_mean", "within_ci",
                "between_mean", "between_ci"]
    with open(args.experiment / "study.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        w.writerows(table)
    if comparison:
        compare(pairs, first, second, levels, args.threshold)


if __name__ == "__main__":
    main()
