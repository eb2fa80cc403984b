"""Training-pipeline efficiency: images/s of the full pipeline (PNG/JPEG decode + augmentation
+ collate + step) divided by images/s of the bare model forward+backward+step on ready-made
tensors of the same batch shapes. Both are measured in this run; target ratio >= 0.9.

    .venv/bin/python benchmarks/train_speed.py [--images 24] [--size 512] [--workers 0] [--base fcos-lite0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--base", default="fcos-lite0")
    ns = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(ROOT / "tests"))
    import torch

    from labelloop.models import get_base_model
    from labelloop.models.builders import set_input_size
    from labelloop.training.config import TrainConfig
    from labelloop.training.loop import _Job, _loader, train_step
    from training.synth import make_training_data

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        side = int(ns.size * 1.25)  # images bigger than the input, so the pipeline really resizes
        task = get_base_model(ns.base).task
        data = make_training_data(Path(tmp), n_train=ns.images, n_val=0, size=(side * 3 // 4, side), task=task,
                                  n_objects=(2, 6), obj_size=(24, 120))
        cfg = TrainConfig(base=ns.base, batch_size=ns.batch, image_size=ns.size, workers=ns.workers, device="cpu")
        device = torch.device("cpu")
        model = get_base_model(ns.base).build(2)
        set_input_size(model, ns.size)
        model.train()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        loader = _loader(_Job(data, cfg, Path(tmp), None, False, []), 0, 1, device)
        batches = list(loader)  # the same batches, pre-made, for the bare baseline
        train_step(model, *batches[0], opt, device)  # warm-up

        def bare() -> float:
            t0 = time.perf_counter()
            for images, targets in batches:
                train_step(model, images, targets, opt, device)
            return len(data.train) / (time.perf_counter() - t0)

        def pipeline() -> float:
            t0 = time.perf_counter()
            for images, targets in loader:
                train_step(model, images, targets, opt, device)
            return len(data.train) / (time.perf_counter() - t0)

        # interleave to share the effect of CPU contention from other processes
        runs = [(bare(), pipeline()) for _ in range(2)]
    b = max(r[0] for r in runs)
    p = max(r[1] for r in runs)
    print(f"base={ns.base} size={ns.size} batch={ns.batch} workers={ns.workers} images={ns.images}")
    print(f"bare forward+backward: {b:.2f} images/s; full pipeline: {p:.2f} images/s")
    print(f"RATIO pipeline/bare = {p / b:.3f} (target >= 0.9)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
