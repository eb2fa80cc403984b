"""Render the per-epoch flipbook (predictions beside ground truth) as a GIF or a self-contained HTML page."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from labelloop.core.geometry import rle_to_mask
from labelloop.core.output import output_file
from labelloop.core.samples import Sample
from labelloop.errors import ConfigError, NotFoundError
from labelloop.training.data import load_rgb

__all__ = ["render_flipbook"]

THUMB = 160
PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
           (240, 50, 230), (210, 245, 60)]
MIN_SCORE = 0.3


def _draw(image: np.ndarray, boxes: Any, labels: Any, masks: Any, scores: Any = None) -> Image.Image:
    """Thumbnail ``THUMB`` px tall with masks tinted and boxes outlined in class colours."""
    im = image.astype(np.float32)
    for i, rle in enumerate(masks or []):
        if scores is not None and scores[i] < MIN_SCORE:
            continue
        m = rle_to_mask(rle).astype(bool)[: im.shape[0], : im.shape[1]]
        im[m] = 0.5 * im[m] + 0.5 * np.array(PALETTE[int(labels[i]) % len(PALETTE)])
    pil = Image.fromarray(im.astype(np.uint8))
    scale = THUMB / pil.height
    pil = pil.resize((max(1, round(pil.width * scale)), THUMB))
    draw = ImageDraw.Draw(pil)
    for i, box in enumerate(boxes):
        if scores is not None and scores[i] < MIN_SCORE:
            continue
        colour = PALETTE[int(labels[i]) % len(PALETTE)]
        draw.rectangle([v * scale for v in box], outline=colour, width=2)
    return pil


def _frame(frame: Mapping[str, Any], samples: Mapping[int, Sample], cache: dict[int, np.ndarray]) -> Image.Image:
    tiles = []
    for item in frame["images"]:
        s = samples.get(item["image_id"])
        if s is None:
            continue
        if s.image_id not in cache:
            cache[s.image_id] = load_rgb(s.path)
        gt = _draw(cache[s.image_id], s.boxes, s.labels, s.masks)
        pred = _draw(cache[s.image_id], item["boxes"], item["labels"], item["masks"], item["scores"])
        tiles.append((gt, pred))
    width = max([g.width + p.width + 12 for g, p in tiles] or [THUMB * 2])
    canvas = Image.new("RGB", (width, 24 + len(tiles) * (THUMB + 6)), (30, 30, 30))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 4), f"epoch {frame['epoch']}   left: ground truth   right: predictions >= {MIN_SCORE}",
              fill=(255, 255, 255))
    for row, (gt, pred) in enumerate(tiles):
        y = 24 + row * (THUMB + 6)
        canvas.paste(gt, (0, y))
        canvas.paste(pred, (gt.width + 12, y))
    return canvas


_HTML = """<!doctype html><html><head><meta charset="utf-8"><title>Training flipbook</title>
<style>body{{background:#222;color:#eee;font:14px sans-serif}} img{{display:block;margin-top:8px}}</style></head>
<body><button id="play">play</button> <input id="s" type="range" min="0" max="{last}" value="{last}">
<span id="l"></span><img id="f"><script>
const frames={frames}, epochs={epochs};
const s=document.getElementById('s'), f=document.getElementById('f'), l=document.getElementById('l');
function show(i){{s.value=i; f.src='data:image/png;base64,'+frames[i]; l.textContent='epoch '+epochs[i];}}
s.oninput=()=>show(+s.value); let t=null;
document.getElementById('play').onclick=()=>{{ if(t){{clearInterval(t);t=null;return;}}
  let i=0; t=setInterval(()=>{{show(i); i=(i+1)%frames.length;}},700); }};
show({last});</script></body></html>"""


def render_flipbook(model_dir: str | Path, samples_by_id: Mapping[int, Sample], out_path: str | Path) -> Path:
    """Write ``out_path`` (``.gif`` or ``.html``): one frame per epoch from ``flipbook/epoch_*.json``."""
    out = Path(out_path)
    if out.suffix.lower() not in (".gif", ".html"):
        raise ConfigError(f"flipbook output must end in .gif or .html, got {out.name!r}")
    files = sorted((Path(model_dir) / "flipbook").glob("epoch_*.json"))
    if not files:
        raise NotFoundError(f"no flipbook frames in {model_dir}/flipbook", "train at least one epoch first")
    cache: dict[int, np.ndarray] = {}
    frames_json = [json.loads(p.read_text()) for p in files]
    frames = [_frame(f, samples_by_id, cache) for f in frames_json]
    with output_file(out, "flipbook") as tmp:
        if out.suffix.lower() == ".gif":
            frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=700, loop=0)
        else:
            tmp.write_text(_HTML.format(last=len(frames) - 1, frames=json.dumps([_png_b64(f) for f in frames]),
                                        epochs=json.dumps([f["epoch"] for f in frames_json])))
    return out


def _png_b64(frame: Image.Image) -> str:
    buf = io.BytesIO()
    frame.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")
