"""Transfer-learning benchmark on real data sets: validation mAP and wall time with default
settings, ImageNet-pretrained backbone vs random initialisation (measured in the same run).

    .venv/bin/python benchmarks/transfer.py --dataset raccoon            # pretrained only
    .venv/bin/python benchmarks/transfer.py --dataset all --random-init  # + random-init baseline
    .venv/bin/python benchmarks/transfer.py --dataset raccoon --random-only
    .venv/bin/python benchmarks/transfer.py --quick                      # 2 epochs, smoke test

Data sets are read from ``../shared/datasets`` (``LABELLOOP_SHARED_DATASETS`` overrides) by
small local readers, so this does not depend on ``labelloop.formats``.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from defusedxml import ElementTree
from PIL import Image

from labelloop.core.geometry import mask_to_rle
from labelloop.core.samples import Sample, TrainingData

ROOT = Path(os.environ.get("LABELLOOP_SHARED_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def read_raccoon(root: Path) -> TrainingData:
    """Pascal VOC XMLs in ``annotations/``; the 160/40 split from ``data/{train,test}_labels.csv``."""

    def split(name: str) -> set[str]:
        with open(root / "data" / name, newline="") as f:
            return {row["filename"] for row in csv.DictReader(f)}

    train_names, val_names = split("train_labels.csv"), split("test_labels.csv")
    train, val = [], []
    for i, xml in enumerate(sorted((root / "annotations").glob("*.xml"))):
        doc = ElementTree.parse(xml).getroot()
        name = doc.findtext("filename") or xml.with_suffix(".jpg").name
        boxes = [[float(o.findtext(f"bndbox/{k}") or 0) for k in ("xmin", "ymin", "xmax", "ymax")]
                 for o in doc.iter("object")]
        with Image.open(root / "images" / name) as im:
            w, h = im.size
        s = Sample(i + 1, root / "images" / name, w, h, np.array(boxes, np.float32).reshape(-1, 4),
                   np.zeros(len(boxes), np.int64))
        (val if name in val_names and name not in train_names else train).append(s)
    return TrainingData(["raccoon"], "detect", train, val)


def read_pennfudan(root: Path) -> TrainingData:
    """PNG images + instance-id masks (``PedMasks``); first 80% of sorted names train, rest val."""
    samples = []
    for i, png in enumerate(sorted((root / "PNGImages").glob("*.png"))):
        ids = np.asarray(Image.open(root / "PedMasks" / f"{png.stem}_mask.png"))
        masks, boxes = [], []
        for inst in [v for v in np.unique(ids) if v != 0]:
            m = ids == inst
            ys, xs = np.nonzero(m)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            masks.append(mask_to_rle(m))
        samples.append(Sample(i + 1, png, ids.shape[1], ids.shape[0], np.array(boxes, np.float32),
                              np.zeros(len(boxes), np.int64), masks=masks))
    cut = int(len(samples) * 0.8)
    return TrainingData(["person"], "segment", samples[:cut], samples[cut:])


READERS = {"raccoon": read_raccoon, "pennfudan": read_pennfudan}


def run(name: str, pretrained: bool, quick: bool, extra: str) -> dict[str, float]:
    from labelloop.training import derive_defaults, train_model

    data = READERS[name](ROOT / name)
    overrides = f"pretrained={pretrained};" + ("epochs=2;" if quick else "") + extra
    config = derive_defaults(data, overrides=overrides)
    print(f"[{name}] {len(data.train)} train / {len(data.val)} val; {config}", flush=True)
    t0 = time.time()

    def progress(event: dict) -> None:
        if event["type"] == "epoch":
            m = event["metrics"]
            print(f"  epoch {event['epoch']}: loss {event['losses']['loss']:.3f} mAP@.5 {m.get('map50', 0):.3f} "
                  f"mAP {m.get('map', 0):.3f} ({event['seconds']:.0f}s, {time.time() - t0:.0f}s total)", flush=True)

    with tempfile.TemporaryDirectory() as out:
        result = train_model(data, config, out, progress=progress)
    seconds = time.time() - t0
    m = result.best_metrics
    return {"map50": m.get("map50", 0.0), "map": m.get("map", 0.0), "mask_map50": m.get("mask_map50", 0.0),
            "seconds": seconds, "epochs": len(result.epochs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=[*READERS, "all"], default="raccoon")
    parser.add_argument("--random-init", action="store_true", help="also train from a random backbone")
    parser.add_argument("--random-only", action="store_true",
                        help="train only from a random backbone (the pretrained figure measured in another run)")
    parser.add_argument("--quick", action="store_true", help="2 epochs (smoke test, not a figure)")
    parser.add_argument("--args", default="", help="extra k=v training arguments")
    ns = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    names = list(READERS) if ns.dataset == "all" else [ns.dataset]
    for name in names:
        if not (ROOT / name).is_dir():
            print(f"skip {name}: {ROOT / name} not found")
            continue
        pre = None if ns.random_only else run(name, True, ns.quick, ns.args)
        if pre is not None:
            print(f"RESULT {name} pretrained: mAP@.5 {pre['map50']:.3f}  mAP {pre['map']:.3f}  "
                  f"mask mAP@.5 {pre['mask_map50']:.3f}  {pre['seconds']:.0f} s  {pre['epochs']} epochs", flush=True)
        if ns.random_init or ns.random_only:
            rnd = run(name, False, ns.quick, ns.args)
            ratio = "" if pre is None else \
                f"; pretrained/random mAP@.5 ratio {pre['map50'] / max(rnd['map50'], 1e-6):.2f}"
            print(f"RESULT {name} random init: mAP@.5 {rnd['map50']:.3f}  mAP {rnd['map']:.3f}  "
                  f"mask mAP@.5 {rnd['mask_map50']:.3f}  {rnd['seconds']:.0f} s  {rnd['epochs']} epochs{ratio}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
