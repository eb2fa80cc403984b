"""Import/export speed and memory on a large COCO file, as ratios to a baseline in the same run.

Generates a COCO file of N images and M boxes (image records only, no pixels), then measures, each
in a fresh subprocess so peak memory is clean:

- baseline: ``json.load`` + ``pycocotools.coco.COCO`` indexing of the same file;
- import: ``labelloop import --allow-missing-images`` into a new SQLite project;
- export: ``labelloop export --format coco --no-images`` of that project.

Targets (issue #2): import time <= 3x baseline; import peak memory <= 2x the parsed JSON.

Then, on real JPEGs (``--jpegs``: ../shared/datasets/raccoon's, copied ``--copies`` times under new
names), the cost of decoding every pixel at import: ``labelloop import`` of that folder against
decoding the same files alone (Pillow ``convert("RGB")``) and against hashing them alone, in the same run.

    python benchmarks/import_export.py [--images 100000] [--boxes 1000000] [--jpegs DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_coco(path: Path, n_images: int, n_boxes: int, n_classes: int = 20, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    images = [{"id": i + 1, "file_name": f"img_{i:07d}.jpg", "width": 1280, "height": 960} for i in range(n_images)]
    img_ids = rng.integers(1, n_images + 1, n_boxes)
    wh = rng.uniform(4, 300, (n_boxes, 2)).round(2)
    xy = (rng.uniform(0, 1, (n_boxes, 2)) * (np.array([1280, 960]) - wh)).round(2)
    cats = rng.integers(1, n_classes + 1, n_boxes)
    anns = [{"id": j + 1, "image_id": int(img_ids[j]), "category_id": int(cats[j]),
             "bbox": [float(xy[j, 0]), float(xy[j, 1]), float(wh[j, 0]), float(wh[j, 1])],
             "area": float(wh[j, 0] * wh[j, 1]), "iscrowd": 0, "segmentation": []} for j in range(n_boxes)]
    doc = {"images": images, "annotations": anns,
           "categories": [{"id": c + 1, "name": f"class_{c}"} for c in range(n_classes)]}
    path.write_text(json.dumps(doc))


_CHILD = r"""
import json, resource, sys, time, gc
def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
mode, path, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
if mode == "baseline":
    from pycocotools.coco import COCO
    import contextlib, io
    start_rss = rss_mb()
    t = time.perf_counter()
    with open(path) as f:
        doc = json.load(f)
    parsed = rss_mb() - start_rss
    coco = COCO()
    coco.dataset = doc
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    seconds = time.perf_counter() - t
else:
    from pathlib import Path
    from labelloop.store.project import init_project, open_project
    from labelloop.services.importing import import_path
    from labelloop.services.exporting import export_project
    import labelloop.formats.coco  # noqa: preload code so it is not counted as data
    ctx = init_project(Path(extra[0]), task="detect") if mode == "import" else open_project(Path(extra[0]))
    start_rss = rss_mb()
    parsed = 0.0
    t = time.perf_counter()
    if mode == "import":
        import_path(ctx, Path(path), format="coco", allow_missing_images=True)
    else:
        export_project(ctx, Path(extra[1]), format="coco", images="none")
    seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak - start_rss, "parsed_mb": parsed}))
"""


def run_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def decode_cost(jpegs: Path, copies: int, tmpdir: Path) -> None:
    """Import of real JPEGs (every pixel decoded once) as ratios to decoding and to hashing the same files."""
    import hashlib

    from PIL import Image

    from labelloop.core.records import DatasetRecord, ImageRecord
    from labelloop.formats import WriteOptions, get_format

    files = sorted(jpegs.glob("*.jpg"))
    if not files:
        print(f"decode cost: no JPEGs in {jpegs}, skipped")
        return
    folder = tmpdir / "jpegs"
    folder.mkdir()
    records = []
    for k in range(copies):
        for f in files:
            dst = folder / f"{k}_{f.name}"
            dst.write_bytes(f.read_bytes())
            records.append(ImageRecord(file_name=dst.name, path=dst))
    get_format("coco").write(DatasetRecord(labels=["x"], images=records), tmpdir / "jpeg-coco",
                             WriteOptions(images="link"))
    t = time.perf_counter()
    for r in records:
        with Image.open(r.path) as im:
            im.convert("RGB")
    decode = time.perf_counter() - t
    t = time.perf_counter()
    for r in records:
        hashlib.sha256(r.path.read_bytes()).hexdigest()
    hashing = time.perf_counter() - t
    imp = run_child("import", str(tmpdir / "jpeg-coco" / "annotations.json"), str(tmpdir / "jproj"))
    print(f"import of {len(records)} real JPEGs with every pixel decoded: {imp['seconds']:.2f}s = "
          f"{imp['seconds'] / decode:.2f}x decoding them alone ({decode:.2f}s), "
          f"{imp['seconds'] / hashing:.1f}x hashing them alone ({hashing:.2f}s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--boxes", type=int, default=1_000_000)
    parser.add_argument("--jpegs", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "datasets"
                        / "raccoon" / "images")
    parser.add_argument("--copies", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        coco = tmpdir / "big.json"
        t = time.perf_counter()
        make_coco(coco, args.images, args.boxes)
        print(f"generated {args.images} images / {args.boxes} boxes "
              f"({coco.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f}s")
        base = run_child("baseline", str(coco))
        imp = run_child("import", str(coco), str(tmpdir / "proj"))
        exp = run_child("export", str(coco), str(tmpdir / "proj"), str(tmpdir / "out"))
        jpeg_dir = Path(tmpdir) / "jpeg-bench"
        jpeg_dir.mkdir()
        if args.jpegs.is_dir():
            decode_cost(args.jpegs, args.copies, jpeg_dir)
    print(f"baseline json.load + COCO index: {base['seconds']:.2f}s, parsed JSON {base['parsed_mb']:.0f} MB")
    print(f"import: {imp['seconds']:.2f}s = {imp['seconds'] / base['seconds']:.2f}x baseline (target <= 3x); "
          f"peak {imp['peak_mb']:.0f} MB = {imp['peak_mb'] / base['parsed_mb']:.2f}x parsed JSON (target <= 2x)")
    print(f"export: {exp['seconds']:.2f}s = {exp['seconds'] / base['seconds']:.2f}x baseline; "
          f"peak {exp['peak_mb']:.0f} MB = {exp['peak_mb'] / base['parsed_mb']:.2f}x parsed JSON")


if __name__ == "__main__":
    main()
