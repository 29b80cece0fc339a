#!/usr/bin/env python3
"""One row per Atari run: its training returns at the end against its evaluation score, for
docs/results/atari100k.md (issue 13: a large gap between the two is investigated, not
averaged away).

Reads each run folder under the given folders (`config.toml`, `metrics.csv`, `eval.json`):

    python3 scripts/atari_runs_table.py results/atari100k

Columns: frames trained; the mean raw game score of the games finished in the last 50k frames
of training (the `episode_score` rows, weighted by the games each row finished); the
checkpoint evaluations logged during training (`eval_score`, 10 games each); the final
evaluation's mean, sd and episodes (`eval.json`); final ÷ training-end; and, where the
run has one (`masp eval RUN --policy noisy`), the same checkpoint played with training's
noisy policy (`eval-noisy.json`), which tells whether such a gap is the exploration noise.
"""

import argparse
import csv
import json
import statistics
from pathlib import Path

TAIL_FRAMES = 50_000


def runs(folders):
    for folder in folders:
        for path in sorted([folder, *folder.rglob("*")]):
            if (path / "metrics.csv").exists() and (path / "eval.json").exists():
                yield path


def training_end(rows):
    """Mean episode score over the games finished in the last TAIL_FRAMES frames."""
    last = int(rows[-1]["frames"])
    total = games = 0.0
    previous_games = None
    for r in rows:
        finished = int(r["games"]) - (previous_games if previous_games is not None else 0)
        previous_games = int(r["games"])
        if int(r["frames"]) > last - TAIL_FRAMES and r["episode_score"] and finished > 0:
            total += float(r["episode_score"]) * finished
            games += finished
    return (total / games if games else None), int(games)


def summary(evaluation):
    """An evaluation report's mean, sample sd and number of games."""
    scores = evaluation["scores"]
    sd = statistics.stdev(scores) if len(scores) > 1 else 0.0
    return f"{evaluation['mean']:.1f} ± {sd:.1f} sd ({evaluation['episodes']} games)"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+")
    args = parser.parse_args()
    print("| run | frames | training, last 50k frames (games) | checkpoint evaluations | final evaluation | final ÷ training | noisy policy |")
    print("|---|---|---|---|---|---|---|")
    for run in runs(args.folders):
        rows = list(csv.DictReader(open(run / "metrics.csv")))
        evaluation = json.load(open(run / "eval.json"))
        train, games = training_end(rows)
        checkpoints = ", ".join(f"{float(r['eval_score']):.0f} at {int(r['frames']) // 1000}k" for r in rows if r["eval_score"])
        final = summary(evaluation)
        ratio = f"{evaluation['mean'] / train:.2f}" if train else "–"
        train_text = f"{train:.1f} ({games})" if train is not None else "–"
        noisy_path = run / "eval-noisy.json"
        noisy = "–"
        if noisy_path.exists():
            report = json.load(open(noisy_path))
            noisy = summary(report)
            if report["frames_trained"] != evaluation["frames_trained"]:
                noisy += f" (another checkpoint: {report['frames_trained']:,} frames)"
        print(f"| {run.name} | {evaluation['frames_trained']:,} | {train_text} | {checkpoints} | {final} | {ratio} | {noisy} |")


if __name__ == "__main__":
    main()
