"""Does "what to annotate next" beat random picking? Every strategy, several seeds, several datasets.

For each dataset, seed and strategy, ``labelloop simulate`` replays the loop (the ground truth is
the annotator; thresholds and click-to-box as the product's defaults) and one more model is
trained on the last round's labels (``--final-model``), so every round's picks are judged by
the model they bought. Within a seed every strategy sees the same seed images, the same
validation images and the same first model (trained once on the seed images), so the first picks
differ by strategy only, not by training noise; the seeds change all three.

Printed per dataset, strategies ranked by mean final mAP@.5:

- mAP@.5 of the model trained on the labels of rounds 0..k, for each k (mean ± spread over seeds;
  spread = standard deviation, 0 with one seed);
- labelled images and human seconds (loop time, click-to-box and review included) until the
  mean mAP first reaches 95 % of the best strategy's final mean mAP (``—`` if never);
- total loop seconds;
- whether the winner's lead over the runner-up (and over ``random``) exceeds the seed spread, and the
  lead paired by seed (mean ± sd of the per-seed differences: the seeds share their first model).

Strategies are compared on the same seeds: the seed set most of them have; a strategy lacking one of
those seeds is left out of the table, and so is a seed only some have (both are said).

    .venv/bin/python benchmarks/selection.py --datasets dense,pennfudan,raccoon --seeds 0,1,2
    .venv/bin/python benchmarks/selection.py --quick      # generated shapes, 1 seed, tiny rounds
    .venv/bin/python benchmarks/selection.py --report benchmarks/results/selection-*.json

A full table takes hours on a 2-core CPU (raccoon: about 27 min per seed for the 7 strategies with
``--rounds 1 --train-args epochs=10``), so runs saved with ``--json`` are kept under
``benchmarks/results/`` and merged by ``--report``: each run records its seed, so seeds add up per dataset
and strategy, and a seed found in two files is counted once.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

STRATEGIES = "random,mixed,diversity,uncertainty,class-deficit,hybrid,effort"
REACH = 0.95


def shapes_dataset(cache: Path) -> tuple[Path, str]:
    """A generated multi-class set (no ../shared needed): the quick tier's data."""
    from labelloop.formats import WriteOptions, get_format
    from labelloop.services.demo import make_shapes_dataset

    out = cache / "shapes-coco"
    if not (out / "annotations.json").is_file():
        data = make_shapes_dataset(cache / "shapes", n_images=40, size=(96, 128), seed=5, with_polygons=False)
        get_format("coco").write(data, out, WriteOptions())
    return out, "coco"


def dataset_path(name: str, cache: Path) -> tuple[Path, str | None]:
    if name == "shapes":
        return shapes_dataset(cache)
    from loop_value import dataset_path as shared_path

    return shared_path(name, cache)


def run_seed(name: str, strategies: list[str], seed: int, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Every strategy on one seed; they share round 0's labels and the model trained on them."""
    from loop_value import kept_folder

    from labelloop.services.simulate import simulate_strategies

    path, fmt = dataset_path(name, args.cache)
    started = time.monotonic()
    results = simulate_strategies(path, format=fmt, strategies=strategies, seed_per_class=args.seed_per_class,
                                  round_size=args.round_size, rounds=args.rounds, args=args.train_args, seed=seed,
                                  final_model=True, project_dir=kept_folder(f"select-{name}-{seed}-", args.keep))
    wall = round(time.monotonic() - started, 1)
    return {strategy: {"seed": seed, **_curve(result), "wall": wall} for strategy, result in results.items()}


def _curve(result: dict[str, Any]) -> dict[str, Any]:
    rounds = [r for r in result["rounds"] if r["round"] > 0]
    if not rounds:
        sys.exit("no round after the seed round: the pool of unlabelled images ran out (use a bigger dataset, "
                 "or a smaller --seed-per-class / --round-size)")
    # the model after the labels of rounds 0..k: round k+1's model, the final one after the last round
    maps = [r["map50"] for r in rounds[1:]] + [result["summary"]["after_last_round_map50"]]
    maps = [rounds[0]["map50"], *maps]  # index k: labels of rounds 0..k
    seconds, images = [0.0], [result["rounds"][0]["images"]]
    for r in rounds:
        seconds.append(seconds[-1] + r["seconds_loop"])
        images.append(images[-1] + r["images"])
    return {"map": maps, "seconds": seconds, "images": images, "loop_seconds": result["summary"]["seconds_loop"]}


def _mean_sd(values: list[float | None]) -> tuple[float, float]:
    v = [x for x in values if x is not None]
    if not v:
        return float("nan"), 0.0
    return statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0


Runs = dict[str, dict[int, dict[str, Any]]]  # strategy -> seed -> run


def table_seeds(runs: Runs) -> list[int]:
    """The seeds strategies are compared on: the seed set most strategies have (the larger one on a tie).
    A strategy lacking one of them is left out of the table; seeds beyond them are not used."""
    sets = Counter(frozenset(by_seed) for by_seed in runs.values())
    return sorted(max(sets.items(), key=lambda kv: (kv[1], len(kv[0])))[0]) if sets else []


def comparable(runs: Runs) -> Runs:
    """The strategies that have every table seed, with those seeds only."""
    seeds = table_seeds(runs)
    return {strategy: {seed: by_seed[seed] for seed in seeds} for strategy, by_seed in runs.items()
            if set(seeds) <= set(by_seed)}


def summarise(runs: Runs) -> list[dict[str, Any]]:
    """One row per strategy (``runs`` as :func:`comparable` gives them): mean/sd mAP per k, images and seconds
    to reach 95 % of the best final mAP, and the final mAP per seed (for the paired verdict)."""
    seeds = table_seeds(runs)
    lengths = {len(by_seed[seed]["map"]) for by_seed in runs.values() for seed in seeds}
    if len(lengths) > 1:
        sys.exit(f"these runs have different numbers of rounds ({sorted(lengths)}): report runs of one --rounds "
                 "setting at a time")
    rows = []
    for strategy, by_seed in runs.items():
        chosen = [by_seed[seed] for seed in seeds]
        rows.append({"strategy": strategy, "seeds": seeds,
                     "map": [_mean_sd(list(k)) for k in zip(*[s["map"] for s in chosen], strict=True)],
                     "final": {seed: by_seed[seed]["map"][-1] for seed in seeds},
                     "seconds": [statistics.fmean(k) for k in zip(*[s["seconds"] for s in chosen], strict=True)],
                     "images": [statistics.fmean(k) for k in zip(*[s["images"] for s in chosen], strict=True)],
                     "loop_seconds": _mean_sd([s["loop_seconds"] for s in chosen])})
    best = max(r["map"][-1][0] for r in rows)
    for r in rows:
        reach = next((k for k, (m, _) in enumerate(r["map"]) if m >= REACH * best), None)
        r["reach_images"] = r["images"][reach] if reach is not None else None
        r["reach_seconds"] = r["seconds"][reach] if reach is not None else None
    return sorted(rows, key=lambda r: -r["map"][-1][0])


def left_out(runs: Runs) -> list[str]:
    """A line per strategy whose runs are not all in the table, and why."""
    seeds = set(table_seeds(runs))
    out = []
    for strategy, by_seed in runs.items():
        mine = set(by_seed)
        if not seeds <= mine:
            out.append(f"{strategy}: left out, it lacks seeds {sorted(seeds - mine)} of the table")
        elif mine - seeds:
            out.append(f"{strategy}: seeds {sorted(mine - seeds)} left out (the other strategies lack them)")
    return out


def verdict(rows: list[dict[str, Any]]) -> list[str]:
    """Whether the winner's lead exceeds the seed spread (over the runner-up and over random), and the lead
    paired by seed."""
    win = rows[0]
    if len(win["seeds"]) < 2:
        return [f"{win['strategy']} leads on one seed only: no spread between seeds to judge the lead by"]
    out = []
    others = rows[1:2] + [r for r in rows[2:] if r["strategy"] == "random"]
    for other in others:
        lead = win["map"][-1][0] - other["map"][-1][0]
        spread = max(win["map"][-1][1], other["map"][-1][1])
        diffs = [win["final"][seed] - other["final"][seed] for seed in win["seeds"]]
        paired = f"paired by seed {statistics.fmean(diffs):+.3f} ± {statistics.stdev(diffs):.3f}, " \
                 f"ahead on {sum(d > 0 for d in diffs)} of {len(diffs)} seeds"
        word = "exceeds" if lead > spread else "is within"
        out.append(f"{win['strategy']} leads {other['strategy']} by {lead:+.3f} mAP@.5, which {word} the seed "
                   f"spread ({spread:.3f}); {paired}")
    return out


def _f(x: Any, d: int = 3) -> str:
    return "—" if x is None else f"{x:.{d}f}" if isinstance(x, float) else str(x)


def table(name: str, rows: list[dict[str, Any]]) -> str:
    ks = len(rows[0]["map"])
    head = " | ".join(f"mAP after r{k}" for k in range(ks))
    lines = [f"### {name} (seeds {', '.join(map(str, rows[0]['seeds']))})",
             f"| strategy | {head} | images to {REACH:.0%} | seconds after r0 to {REACH:.0%} | loop seconds |",
             "|" + "---|" * (ks + 4)]
    for r in rows:
        maps = " | ".join(f"{m:.3f} ± {sd:.3f}" for m, sd in r["map"])
        lines.append(f"| {r['strategy']} | {maps} | {_f(r['reach_images'], 0)} | {_f(r['reach_seconds'], 0)} | "
                     f"{r['loop_seconds'][0]:.0f} ± {r['loop_seconds'][1]:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="dense,pennfudan,raccoon")
    ap.add_argument("--strategies", default=STRATEGIES)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--round-size", type=int, default=50)
    ap.add_argument("--seed-per-class", type=int, default=20)
    ap.add_argument("--train-args", default="")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "labelloop-bench")
    ap.add_argument("--json", type=Path, help="also write every run here")
    ap.add_argument("--keep", action="store_true", help="keep each seed's project folder (default: removed)")
    ap.add_argument("--quick", action="store_true", help="generated shapes, 1 seed, 2 rounds of 4, 1 epoch")
    ap.add_argument("--report", type=Path, nargs="+", metavar="JSON",
                    help="run nothing: print the tables of runs saved with --json (several files are merged)")
    args = ap.parse_args()
    if args.report:
        report(args.report)
        return
    if args.quick:
        args.datasets, args.seeds, args.rounds, args.round_size, args.seed_per_class = "shapes", "0", 2, 4, 3
        args.train_args = args.train_args or "epochs=1;image_size=128;batch_size=4"
    args.cache.mkdir(parents=True, exist_ok=True)
    everything: dict[str, Runs] = {}
    for name in args.datasets.split(","):
        runs: Runs = {}
        everything[name] = runs
        # seed by seed, so a run stopped early still compares every strategy on the seeds it finished
        for seed in (int(s) for s in args.seeds.split(",")):
            print(f"... {name} / seed {seed} / {args.strategies}", file=sys.stderr, flush=True)
            for strategy, one in run_seed(name, args.strategies.split(","), seed, args).items():
                runs.setdefault(strategy, {})[seed] = one
                print(f"    {strategy}: mAP@.5 {[round(m, 3) for m in one['map']]}, loop seconds "
                      f"{one['loop_seconds']:.0f}", file=sys.stderr, flush=True)
            print(f"    wall {one['wall']:.0f} s for the seed", file=sys.stderr, flush=True)
            if args.json:  # written after every seed: nothing is lost if the benchmark is stopped
                args.json.write_text(json.dumps(_saved(everything), indent=2))
        print_dataset(name, runs)


def _saved(everything: dict[str, Runs]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The --json form: per dataset and strategy, a list of runs, each with its seed."""
    return {name: {strategy: [by_seed[seed] for seed in sorted(by_seed)] for strategy, by_seed in runs.items()}
            for name, runs in everything.items()}


def print_dataset(name: str, runs: Runs) -> None:
    rows = summarise(comparable(runs))
    print(table(name, rows))
    for line in [*verdict(rows), *left_out(runs)]:
        print(line)
    print(flush=True)


def merge(files: list[Path]) -> dict[str, Runs]:
    """Saved runs merged per dataset, strategy and seed: a seed saved twice counts once (a different second
    result for it is left out, with a warning)."""
    merged: dict[str, Runs] = {}
    for f in files:
        try:
            saved = json.loads(f.read_text())
        except (OSError, ValueError) as err:
            sys.exit(f"cannot read {f}: {err} (expected a file written by --json)")
        for name, runs in saved.items():
            for strategy, seeds in runs.items():
                for run in seeds:
                    if "seed" not in run:
                        sys.exit(f"{f}: a {name}/{strategy} run has no 'seed' (expected a file written by --json)")
                    by_seed = merged.setdefault(name, {}).setdefault(strategy, {})
                    known = by_seed.setdefault(run["seed"], run)
                    if known is not run and known["map"] != run["map"]:
                        print(f"warning: {f} has another {name}/{strategy} run of seed {run['seed']}: the first one "
                              "read is kept", file=sys.stderr)
    return merged


def report(files: list[Path]) -> None:
    """The tables of saved runs, files merged per dataset, strategy and seed."""
    for name, runs in merge(files).items():
        if runs:
            print_dataset(name, runs)


if __name__ == "__main__":
    main()
