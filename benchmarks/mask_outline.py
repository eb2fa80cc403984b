"""Mask outlines (``mask_to_polygons``) and CVAT mask runs (``mask_to_cvat_rle``) on big masks, as
ratios to pycocotools' RLE encoding of the same mask, measured in the same run.

Masks: a 640x480 instance, a 3000x3000 disc (one long outline around a big area), and 1500x1500
scattered spots (2 % of the pixels: thousands of small outlines). The outline's work follows its
length, not the area: before it walked every foreground pixel in Python and looked for the next
loop's start over every edge left (the spots took 309 s against 2.7 s now on this machine).

    .venv/bin/python benchmarks/mask_outline.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np


def _best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def masks() -> dict[str, np.ndarray]:
    yy, xx = np.mgrid[:480, :640]
    person = ((yy - 260) / 180) ** 2 + ((xx - 300) / 70) ** 2 < 1
    yy, xx = np.mgrid[:3000, :3000]
    disc = (yy - 1500) ** 2 + (xx - 1400) ** 2 < 1200**2
    spots = np.random.default_rng(0).random((1500, 1500)) < 0.02
    return {"instance 640x480": person, "disc 3000x3000": disc, "spots 1500x1500": spots}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from pycocotools import mask as mask_utils

    from labelloop.core.geometry import mask_to_cvat_rle, mask_to_polygons

    print("| mask | rings | baseline: pycocotools encode (s) | outline (s) | outline / baseline "
          "| CVAT runs / baseline |")
    print("|---|---|---|---|---|---|")
    for name, m in masks().items():
        h, w = m.shape
        fortran = np.asfortranarray(m.astype(np.uint8))
        base = _best(lambda f=fortran: mask_utils.encode(f), args.repeat)
        rings = len(mask_to_polygons(m))
        outline = _best(lambda m=m: mask_to_polygons(m), args.repeat)
        runs = _best(lambda m=m, h=h, w=w: mask_to_cvat_rle(m, 0, 0, w, h), args.repeat)
        print(f"| {name} | {rings} | {base:.4f} | {outline:.3f} | {outline / base:.0f}x | {runs / base:.1f}x |",
              flush=True)


if __name__ == "__main__":
    main()
