"""A dense, imbalanced, multi-class detection set built from real images (for the loop benchmarks).

Objects are cut from ``../shared/datasets`` with their real outlines and pasted onto real
backgrounds, so the pixels are real photos while the scenes are crowded as microscopy or
aerial images are:

- ``person``: Penn-Fudan pedestrians, cut with their instance masks (common: ~60 %);
- ``balloon``: balloons, cut with their VIA polygons (~30 %);
- ``raccoon``: raccoons, cut as soft-edged ellipses inside their boxes (rare: ~10 %, small);
- backgrounds: coco128 images with no person in them, resized to 640x480 (their own,
  unlabelled objects stay as distractors).

10-30 objects per image, 16-110 px tall (a third under 32 px), overlaps limited to IoU < 0.3.
Written once as COCO (``annotations.json`` + ``images/``) into ``out`` and reused when present.

    .venv/bin/python benchmarks/dense_data.py /tmp/dense --images 220
"""

from __future__ import annotations

import argparse
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SHARED = Path(os.environ.get("LABELLOOP_SHARED_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
SIZE = (640, 480)
CLASSES = ("person", "balloon", "raccoon")
SHARE = (0.6, 0.3, 0.1)


@dataclass
class Cutout:
    rgba: Image.Image  # the object, alpha = its outline


def _crop(img: Image.Image, mask: np.ndarray) -> Cutout | None:
    ys, xs = np.nonzero(mask)
    if len(xs) < 50:
        return None
    x1, y1, x2, y2 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    rgba = img.convert("RGB").crop((x1, y1, x2, y2)).convert("RGBA")
    rgba.putalpha(Image.fromarray((mask[y1:y2, x1:x2] > 0).astype(np.uint8) * 255))
    return Cutout(rgba)


def _people(limit: int) -> list[Cutout]:
    root = SHARED / "pennfudan"
    out: list[Cutout] = []
    for png in sorted((root / "PNGImages").glob("*.png"))[:limit]:
        inst = np.asarray(Image.open(root / "PedMasks" / f"{png.stem}_mask.png"))
        with Image.open(png) as img:
            for k in (v for v in np.unique(inst) if v):
                c = _crop(img, inst == k)
                if c:
                    out.append(c)
    return out


def _balloons(limit: int) -> list[Cutout]:
    out: list[Cutout] = []
    for split in ("train", "val"):
        folder = SHARED / "balloon" / split
        meta = json.loads((folder / "via_region_data.json").read_text())
        for entry in list(meta.values())[:limit]:
            regions = entry["regions"].values() if isinstance(entry["regions"], dict) else entry["regions"]
            with Image.open(folder / entry["filename"]) as img:
                img.load()
                for r in regions:
                    a = r["shape_attributes"]
                    m = Image.new("L", img.size, 0)
                    ImageDraw.Draw(m).polygon(list(zip(a["all_points_x"], a["all_points_y"], strict=True)), fill=255)
                    c = _crop(img, np.asarray(m))
                    if c:
                        out.append(c)
    return out


def _raccoons(limit: int) -> list[Cutout]:
    from defusedxml import ElementTree

    root = SHARED / "raccoon"
    out: list[Cutout] = []
    for xml in sorted((root / "annotations").glob("*.xml"))[:limit]:
        doc = ElementTree.parse(xml).getroot()
        name = doc.findtext("filename") or xml.with_suffix(".jpg").name
        with Image.open(root / "images" / name) as img:
            img.load()
            for o in doc.iter("object"):
                x1, y1, x2, y2 = (int(float(o.findtext(f"bndbox/{k}") or 0)) for k in ("xmin", "ymin", "xmax", "ymax"))
                m = Image.new("L", img.size, 0)
                ImageDraw.Draw(m).ellipse((x1, y1, x2, y2), fill=255)
                m = m.filter(ImageFilter.GaussianBlur(2))
                c = _crop(img, (np.asarray(m) > 128).astype(np.uint8))
                if c:
                    out.append(c)
    return out


def _backgrounds() -> list[Path]:
    root = SHARED / "coco128"
    data = json.loads((root / "annotations" / "instances_train2017.json").read_text())
    people = {a["image_id"] for a in data["annotations"] if a["category_id"] == 1}
    return [root / "train2017" / i["file_name"] for i in data["images"] if i["id"] not in people]


def _iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter + 1e-9)


def build(out: Path, n_images: int = 220, seed: int = 0) -> Path:
    """Write the dataset to ``out`` (COCO); returns the annotation file. Reused when present."""
    ann_file = out / "annotations.json"
    if ann_file.is_file():
        return ann_file
    rng = random.Random(seed)
    pools = [_people(170), _balloons(80), _raccoons(200)]
    backgrounds = _backgrounds()
    (out / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(n_images):
        with Image.open(rng.choice(backgrounds)) as bg:
            canvas = bg.convert("RGB").resize(SIZE)
        boxes: list[list[float]] = []
        for _ in range(rng.randint(10, 30)):
            k = rng.choices(range(3), weights=SHARE)[0]
            obj = rng.choice(pools[k]).rgba
            height = rng.uniform(16, 48) if rng.random() < 0.45 or k == 2 else rng.uniform(48, 110)
            scale = height / obj.height
            w, h = max(4, int(obj.width * scale)), max(4, int(obj.height * scale))
            if w >= SIZE[0] - 2 or h >= SIZE[1] - 2:
                continue
            for _try in range(20):
                x, y = rng.randint(0, SIZE[0] - w), rng.randint(0, SIZE[1] - h)
                box = [float(x), float(y), float(x + w), float(y + h)]
                if all(_iou(box, b) < 0.3 for b in boxes):
                    break
            else:
                continue
            piece = obj.resize((w, h), Image.Resampling.LANCZOS)
            if rng.random() < 0.5:
                piece = piece.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            canvas.paste(piece, (x, y), piece)
            alpha = np.asarray(piece.getchannel("A")) > 127
            ys, xs = np.nonzero(alpha)
            if not len(xs):
                continue
            tight = [float(x + xs.min()), float(y + ys.min()), float(x + xs.max() + 1), float(y + ys.max() + 1)]
            boxes.append(box)
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": k + 1,
                                "bbox": [tight[0], tight[1], tight[2] - tight[0], tight[3] - tight[1]],
                                "area": float(alpha.sum()), "iscrowd": 0})
        name = f"dense_{i:04d}.jpg"
        canvas.save(out / "images" / name, quality=90)
        images.append({"id": i + 1, "file_name": name, "width": SIZE[0], "height": SIZE[1]})
    categories = [{"id": k + 1, "name": n} for k, n in enumerate(CLASSES)]
    tmp = ann_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    tmp.replace(ann_file)
    return ann_file


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--images", type=int, default=220)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    f = build(a.out, a.images, a.seed)
    data = json.loads(f.read_text())
    counts = np.bincount([x["category_id"] - 1 for x in data["annotations"]], minlength=3)
    print(f"{f}: {len(data['images'])} images, {len(data['annotations'])} objects "
          f"({', '.join(f'{n} {c}' for n, c in zip(CLASSES, counts, strict=True))})")


if __name__ == "__main__":
    main()
