"""How much human time the loop saves, round by round, with and without each lever (an ablation).

For each dataset and each configuration, ``labelloop simulate`` replays the loop with the
dataset's ground truth as the annotator and this prints, per round: the model's mAP@.5, the
time ratio (loop / from scratch, lower is better), the share of the achievable saving
((scratch - loop) / (scratch - perfect model)), the actions, and the wall time of the round.
All configurations of a dataset see the same validation images and (with ``--strategy random``,
the default here) the same images in every round, so the differences are the levers'.

Configurations (``--configs``, comma-separated):

- ``old``: the earlier defaults -- best-F1 thresholds, every missed object drawn, predictions at the
  training size;
- ``min-time``: thresholds that minimise expected review time, misses drawn, predictions at the training
  size;
- ``click-1x``: min-time thresholds + click-to-box on misses, predictions at the training size
  (``predict_scale=1``: the defaults before the prediction size was chosen);
- ``click``: the defaults -- min-time thresholds, click-to-box, and the prediction size chosen on the
  validation split (``predict_scale=auto``);
- ``copy-paste``, ``mosaic``, ``balanced``, ``tta``: ``click`` + one training lever (``copy_paste=0.5``:
  class-balanced copy-paste of objects; ``mosaic=0.5``: half the images a mosaic of four, at their
  own scale; ``balanced=true``: repeat-factor sampling;
  ``tta=true``: mirror test-time augmentation with box fusion at pre-annotation);
- ``self-train``: ``click`` + ``self_train=true`` (from round 2 on, the previous model's confident boxes on
  unlabelled images join the training at half weight);
- ``all``: ``click`` + copy-paste, balanced and tta.

Datasets (``--datasets``): ``dense`` (built by ``dense_data.py`` from real images: 10-30
objects of 3 imbalanced classes per image), ``raccoon``, ``pennfudan`` and ``coco128`` from
``../shared/datasets``. Each starts from 20 objects per class and reviews rounds of 50 images, except
coco128 (71 classes in 126 images): 2 per class and rounds of 20 (``--seed-per-class`` and
``--round-size`` set them for every dataset).

    .venv/bin/python benchmarks/loop_value.py --datasets dense --rounds 2
    .venv/bin/python benchmarks/loop_value.py --datasets dense,raccoon,pennfudan --configs old,click
    .venv/bin/python benchmarks/loop_value.py --quick   # tiny rounds, 1 epoch: a smoke test
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from dense_data import SHARED
from dense_data import build as build_dense

CONFIGS: dict[str, dict[str, Any]] = {
    "old": {"threshold": "best-f1", "use_click": False, "args": "predict_scale=1"},
    "min-time": {"threshold": "auto", "use_click": False, "args": "predict_scale=1"},
    "click-1x": {"threshold": "auto", "use_click": True, "args": "predict_scale=1"},
    "click": {"threshold": "auto", "use_click": True},
    "batch4": {"threshold": "auto", "use_click": True, "args": "batch_size=4"},
    "copy-paste": {"threshold": "auto", "use_click": True, "args": "copy_paste=0.5"},
    "mosaic": {"threshold": "auto", "use_click": True, "args": "mosaic=0.5"},
    "freeze2": {"threshold": "auto", "use_click": True, "args": "freeze_at=2"},
    "freeze3": {"threshold": "auto", "use_click": True, "args": "freeze_at=3"},
    "balanced": {"threshold": "auto", "use_click": True, "args": "balanced=true"},
    "tta": {"threshold": "auto", "use_click": True, "args": "tta=true"},
    "self-train": {"threshold": "auto", "use_click": True, "args": "self_train=true"},
    "all": {"threshold": "auto", "use_click": True, "args": "copy_paste=0.5;balanced=true;tta=true"},
}


#: objects per class to start and images per round, per dataset: coco128 spreads 939 objects over 71 classes,
#: so 20 per class would take every labelled image and leave nothing to pre-annotate
START: dict[str, tuple[int, int]] = {"coco128": (2, 20)}
DEFAULT_START = (20, 50)


def dataset_path(name: str, cache: Path) -> tuple[Path, str | None]:
    if name == "dense":
        return build_dense(cache / "dense").parent, "coco"
    paths = {"raccoon": (SHARED / "raccoon" / "annotations", "voc"), "pennfudan": (SHARED / "pennfudan", None),
             "coco128": (SHARED / "coco128", "coco")}
    if name not in paths:
        raise SystemExit(f"unknown dataset {name!r}: expected dense, raccoon, pennfudan or coco128")
    path, fmt = paths[name]
    if not path.exists():
        raise SystemExit(f"{path} is missing (../shared/datasets)")
    return path, fmt


def kept_folder(prefix: str, keep: bool) -> Path | None:
    """With ``--keep``, a folder to keep a run's project in (said on stderr); else ``None``: simulate then
    works in a temporary folder it removes (a run's models and image copies take gigabytes)."""
    if not keep:
        return None
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    print(f"    project kept in {folder}", file=sys.stderr, flush=True)
    return folder


def run(name: str, config: str, args: argparse.Namespace, cache: Path) -> dict[str, Any]:
    from labelloop.services.simulate import simulate

    path, fmt = dataset_path(name, cache)
    started = time.monotonic()
    options = dict(CONFIGS[config])
    train_args = ";".join(a for a in (options.pop("args", ""), args.train_args) if a)
    seed_per_class, round_size = START.get(name, DEFAULT_START)
    result = simulate(path, format=fmt, seed_per_class=args.seed_per_class or seed_per_class,
                      round_size=args.round_size or round_size,
                      rounds=args.rounds, strategy=args.strategy, args=train_args, seed=args.seed,
                      project_dir=kept_folder(f"loop-{name}-{config}-", args.keep), **options)
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    return result


def _f(v: Any, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def table(results: dict[tuple[str, str], dict[str, Any]]) -> str:
    lines = ["| dataset | config | round | mAP@.5 | predicts at (px) | accepted | fixed | clicked | drawn | rejected "
             "| time ratio | share of saving | wall (s) |", "|" + "---|" * 13]
    for (name, config), r in results.items():
        for row in r["rounds"]:
            if row["round"] == 0:
                continue
            a = row["actions"]
            lines.append(f"| {name} | {config} | {row['round']} | {_f(row['map50'])} | {_f(row.get('predict_size'))} | "
                         f"{a['accept']} | "
                         f"{a['fix'] + a['class_change']} | {a.get('click', 0)} | {a['draw']} | {a['delete']} | "
                         f"{_f(row['ratio'])} | {_f(row['share_of_saving'], 2)} | "
                         f"{_f((row.get('wall_seconds') or {}).get('total'), 0)} |")
        s = r["summary"]
        lines.append(f"| {name} | {config} | all | {_f(s['final_map50'])} | | | | | | | {_f(s['time_ratio'])} | "
                     f"{_f(s['share_of_saving'], 2)} | {_f(r['wall_seconds'], 0)} |")
    return "\n".join(lines)


def ratios(results: dict[tuple[str, str], dict[str, Any]], baseline: str = "old") -> list[str]:
    """Each configuration's human time against ``baseline``'s, measured in the same run."""
    out = []
    for (name, config), r in results.items():
        base = results.get((name, baseline))
        if base is None or config == baseline or not base["summary"]["time_ratio"]:
            continue
        out.append(f"{name}: {config} human time / {baseline} human time = "
                   f"{r['summary']['seconds_loop'] / base['summary']['seconds_loop']:.2f}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="dense,raccoon,pennfudan")
    ap.add_argument("--configs", default="old,min-time,click-1x,click")
    ap.add_argument("--baseline", default="old", help="the configuration the others' human time is divided by")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--round-size", type=int, help="images per round (default 50; 20 on coco128)")
    ap.add_argument("--seed-per-class", type=int, help="objects per class to start (default 20; 2 on coco128)")
    ap.add_argument("--strategy", default="random")
    ap.add_argument("--train-args", default="", help='training arguments for every round, e.g. "epochs=10"')
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "labelloop-bench")
    ap.add_argument("--json", type=Path, help="also write every result here")
    ap.add_argument("--keep", action="store_true", help="keep each run's project folder (default: removed)")
    ap.add_argument("--quick", action="store_true", help="1 round of 8 images, 1 epoch at 256 px")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.round_size, args.seed_per_class = 1, 8, 5
        args.train_args = args.train_args or "epochs=1;image_size=256"
    results: dict[tuple[str, str], dict[str, Any]] = {}
    for name in args.datasets.split(","):
        for config in args.configs.split(","):
            if config not in CONFIGS:
                raise SystemExit(f"unknown config {config!r}: expected one of {', '.join(CONFIGS)}")
            print(f"... {name} / {config}", file=sys.stderr, flush=True)
            results[(name, config)] = run(name, config, args, args.cache)
            print(table({(name, config): results[(name, config)]}), file=sys.stderr, flush=True)
    print(table(results))
    for line in ratios(results, args.baseline):
        print(line)
    if args.json:
        args.json.write_text(json.dumps({f"{k[0]}/{k[1]}": v for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()
