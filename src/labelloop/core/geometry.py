"""Geometry as small pure functions; names carry the convention.

Boxes are ``(N, 4)`` float arrays. Polygons are flat rings ``[x0, y0, x1, y1, ...]``
in pixels. Masks are COCO RLE dicts (``counts`` as str) via ``pycocotools.mask``.
Inputs are never mutated.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

__all__ = [
    "box_iou",
    "boxes_inside",
    "check_mask_size",
    "check_polygons",
    "check_rle",
    "clip_xyxy",
    "cvat_rle_to_mask",
    "ellipse_to_polygon",
    "flip_xyxy",
    "fraction_inside",
    "mask_to_cvat_rle",
    "mask_to_polygons",
    "mask_to_rle",
    "move_polygons",
    "move_rle",
    "polygon_area",
    "polygons_bbox",
    "polygons_to_rle",
    "rle_area",
    "rle_bbox_xyxy",
    "rle_counts",
    "rle_iou",
    "rle_to_mask",
    "snap_move",
    "xywh_to_xyxy",
    "xyxy_to_xywh",
]


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """``(N, 4)`` x1, y1, x2, y2 -> x, y, w, h."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """``(N, 4)`` x, y, w, h -> x1, y1, x2, y2."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], axis=1)


def clip_xyxy(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """Clip ``(N, 4)`` xyxy boxes to the image."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, width)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, height)
    return b


def flip_xyxy(boxes: np.ndarray, width: float) -> np.ndarray:
    """Mirror ``(N, 4)`` xyxy boxes horizontally in an image ``width`` pixels wide (an involution)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack([width - b[:, 2], b[:, 1], width - b[:, 0], b[:, 3]], axis=1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` xyxy boxes -> ``(N, M)``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    area_a = (a[:, 2] - a[:, 0]).clip(0) * (a[:, 3] - a[:, 1]).clip(0)
    area_b = (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clip(0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def fraction_inside(region: np.ndarray, box: Sequence[float] | np.ndarray) -> float:
    """Fraction of ``box``'s pixels (xyxy) that lie inside the boolean ``region`` mask."""
    h, w = region.shape
    x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x1, y1 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    if x1 <= x0 or y1 <= y0:
        return 0.0
    return float(region[y0:y1, x0:x1].mean())


#: a box may overshoot its image by this share of the image's size (tools round a box at the border
#: outwards); the importer and the YOLO reader both allow it
EDGE_SLACK = 0.02

#: an object at least this share inside an area (training regions, a parent layer's regions) is in it
INSIDE_SHARE = 0.5


def boxes_inside(region: np.ndarray, boxes: np.ndarray, share: float = INSIDE_SHARE) -> np.ndarray:
    """``(N,)`` bool: which of ``boxes`` (xyxy) have at least ``share`` of their pixels inside ``region``."""
    return np.array([fraction_inside(region, b) >= share for b in np.asarray(boxes).reshape(-1, 4)], dtype=bool)


def ellipse_to_polygon(cx: float, cy: float, rx: float, ry: float, angle_rad: float = 0.0,
                       n: int = 64) -> list[float]:
    """A flat ring of ``n`` points (pixels) on an ellipse centred at ``(cx, cy)`` with radii
    ``rx``, ``ry``, rotated by ``angle_rad`` (clockwise on screen, y pointing down)."""
    import math

    if not (rx > 0 and ry > 0):
        raise ValueError(f"expected positive radii, got rx={rx!r}, ry={ry!r}")
    cos_a, sin_a = math.cos(angle_rad), math.sin(angle_rad)
    ring: list[float] = []
    for k in range(n):
        t = 2.0 * math.pi * k / n
        dx, dy = rx * math.cos(t), ry * math.sin(t)
        ring += [cx + dx * cos_a - dy * sin_a, cy + dx * sin_a + dy * cos_a]
    return ring


def polygon_area(ring: Sequence[float]) -> float:
    """Shoelace area of a flat ring."""
    pts = np.asarray(ring, dtype=np.float64).reshape(-1, 2)
    x, y = pts[:, 0], pts[:, 1]
    return float(abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) / 2.0)


def polygons_bbox(polygons: Sequence[Sequence[float]]) -> tuple[float, float, float, float]:
    """Bounding box ``(x1, y1, x2, y2)`` of flat rings."""
    pts = np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polygons])
    return (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max()))


def _decode_counts(rle: dict[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    if isinstance(counts, list):  # uncompressed COCO RLE
        from pycocotools import mask as mask_utils

        h, w = rle["size"]
        return mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    return {"size": list(rle["size"]), "counts": counts.encode() if isinstance(counts, str) else counts}


def _to_str_rle(rle: dict[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    return {"size": [int(rle["size"][0]), int(rle["size"][1])],
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """``(H, W)`` bool/uint8 mask -> compressed COCO RLE with ``counts`` as str."""
    from pycocotools import mask as mask_utils

    m = np.asfortranarray(np.asarray(mask, dtype=np.uint8))
    return _to_str_rle(mask_utils.encode(m))


def check_mask_size(height: Any, width: Any, max_pixels: int | None = None, what: str = "mask") -> None:
    """A ``what`` (a mask, an image) of ``height x width`` may be allocated: positive integers, at most
    ``max_pixels`` pixels (default: the ``max_image_pixels`` setting), else a ``ValueError`` that says so."""
    if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) and v > 0 for v in (height, width)):
        raise ValueError(f"{what} size {[height, width]!r}: expected two positive integers [height, width]")
    if max_pixels is None:
        from labelloop.settings import get_settings

        max_pixels = get_settings().max_image_pixels
    if int(height) * int(width) > max_pixels:
        raise ValueError(f"{what} of {width}x{height} pixels is over the limit of {max_pixels} "
                         "(LABELLOOP_MAX_IMAGE_PIXELS)")


def rle_counts(counts: str | bytes) -> list[int]:
    """The run lengths of a compressed COCO RLE string (pycocotools' ``rleFrString``), checked: a
    ``ValueError`` for characters outside the code or negative runs."""
    data = counts.encode() if isinstance(counts, str) else bytes(counts)
    runs: list[int] = []
    p = 0
    while p < len(data):
        x = k = 0
        more = True
        while more:
            if p >= len(data):
                raise ValueError("the RLE counts end in the middle of a number")
            c = data[p] - 48
            if not 0 <= c < 64:
                raise ValueError(f"the RLE counts hold {chr(data[p])!r}, outside the COCO RLE code")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        if x < 0:
            raise ValueError("the RLE counts decode to a negative run")
        runs.append(x)
    return runs


def check_rle(rle: Any, height: int, width: int) -> None:
    """``rle`` is a COCO RLE of a ``height x width`` image whose runs cover it exactly; else a ``ValueError``."""
    if not isinstance(rle, dict):
        raise ValueError(f"expected a COCO RLE {{size, counts}}, got {type(rle).__name__}")
    size = rle.get("size")
    if not isinstance(size, list | tuple) or len(size) != 2 or [_int(v) for v in size] != [height, width]:
        raise ValueError(f"mask size {size!r} does not match the image [h, w] = [{height}, {width}]")
    counts = rle.get("counts")
    if isinstance(counts, list):
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
            raise ValueError("uncompressed RLE counts must be non-negative integers")
        runs = counts
    elif isinstance(counts, str | bytes):
        runs = rle_counts(counts)
    else:
        raise ValueError("expected RLE counts as a string or a list of ints")
    if sum(runs) != height * width:
        raise ValueError(f"the RLE runs cover {sum(runs)} pixels, the image has {height * width}")


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) and float(v).is_integer() else None


def check_polygons(polygons: Sequence[Sequence[float]], width: float, height: float, tolerance: float = 2.0) -> None:
    """Every ring has at least 3 points, lies inside the image (within ``tolerance`` pixels) and
    encloses some area; else a ``ValueError`` that names the ring."""
    for i, ring in enumerate(polygons):
        pts = np.asarray(ring, dtype=np.float64)
        if pts.size < 6 or pts.size % 2:
            raise ValueError(f"polygon ring {i}: expected x, y pairs of at least 3 points, got {pts.size} numbers")
        xs, ys = pts[0::2], pts[1::2]
        if xs.min() < -tolerance or ys.min() < -tolerance or xs.max() > width + tolerance or \
                ys.max() > height + tolerance:
            raise ValueError(f"polygon ring {i} reaches outside the {width:g}x{height:g} image")
        if polygon_area(ring) <= 0.0:
            raise ValueError(f"polygon ring {i} encloses no area (its points are on one line)")


def rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    """COCO RLE (compressed or uncompressed) -> ``(H, W)`` uint8 mask, within the pixel limit."""
    from pycocotools import mask as mask_utils

    size = rle.get("size") or [None, None]
    check_mask_size(size[0], size[1])
    return np.asarray(mask_utils.decode(_decode_counts(rle)), dtype=np.uint8)


def polygons_to_rle(polygons: Sequence[Sequence[float]], height: int, width: int) -> dict[str, Any]:
    """Rasterise flat rings (pixels) into one compressed RLE, as COCO does."""
    from pycocotools import mask as mask_utils

    check_mask_size(height, width)
    rles = mask_utils.frPyObjects([list(map(float, p)) for p in polygons], height, width)
    return _to_str_rle(mask_utils.merge(rles))


def _box_map(old: Sequence[float], new: Sequence[float]) -> tuple[float, float, float, float]:
    """``(sx, sy, tx, ty)``: ``x' = x * sx + tx`` maps box ``old`` (xyxy) onto box ``new``."""
    sx = (new[2] - new[0]) / max(old[2] - old[0], 1e-9)
    sy = (new[3] - new[1]) / max(old[3] - old[1], 1e-9)
    return sx, sy, new[0] - old[0] * sx, new[1] - old[1] * sy


def move_polygons(polygons: Sequence[Sequence[float]], old: Sequence[float], new: Sequence[float]
                  ) -> list[list[float]]:
    """Every ring moved and scaled with its box: the map that takes box ``old`` onto box ``new`` (xyxy)."""
    sx, sy, tx, ty = _box_map(old, new)
    return [[round(v * sx + tx, 2) if i % 2 == 0 else round(v * sy + ty, 2) for i, v in enumerate(ring)]
            for ring in polygons]


def move_rle(rle: dict[str, Any], old: Sequence[float], new: Sequence[float]) -> dict[str, Any]:
    """The mask moved and scaled with its box (nearest-neighbour), in an image of the same size.

    A box moved without resizing shifts the mask by whole pixels, ``round(new - old)`` (see
    :func:`snap_move`): a mask cannot move by a fraction, and rounding each of many small drags
    separately would let mask and box drift apart.
    """
    from PIL import Image

    mask = rle_to_mask(rle)
    h, w = mask.shape
    if _same_size(old, new):
        dx, dy = round(float(new[0] - old[0])), round(float(new[1] - old[1]))
        out = np.zeros_like(mask)
        ys, xs = slice(max(0, dy), min(h, h + dy)), slice(max(0, dx), min(w, w + dx))
        out[ys, xs] = mask[ys.start - dy : ys.stop - dy, xs.start - dx : xs.stop - dx]
        return mask_to_rle(out)
    x0, y0 = max(0, int(np.floor(old[0]))), max(0, int(np.floor(old[1])))
    x1, y1 = min(w, int(np.ceil(old[2]))), min(h, int(np.ceil(old[3])))
    sx, sy, tx, ty = _box_map(old, new)  # the pixel window taken, mapped
    nx0, ny0 = round(x0 * sx + tx), round(y0 * sy + ty)
    nw, nh = max(1, round((x1 - x0) * sx)), max(1, round((y1 - y0) * sy))
    out = np.zeros_like(mask)
    if x1 > x0 and y1 > y0:
        patch = np.asarray(Image.fromarray(mask[y0:y1, x0:x1] * 255).resize((nw, nh), Image.Resampling.NEAREST)) > 0
        ys, xs = slice(max(0, ny0), min(h, ny0 + nh)), slice(max(0, nx0), min(w, nx0 + nw))
        out[ys, xs] = patch[ys.start - ny0 : ys.stop - ny0, xs.start - nx0 : xs.stop - nx0]
    return mask_to_rle(out)


def _same_size(a: Sequence[float], b: Sequence[float], tol: float = 0.02) -> bool:
    return abs((a[2] - a[0]) - (b[2] - b[0])) <= tol and abs((a[3] - a[1]) - (b[3] - b[1])) <= tol


def snap_move(old: Sequence[float], new: Sequence[float]) -> tuple[float, float, float, float]:
    """The box a masked annotation ends at: a move without resizing by whole pixels (as its mask moves),
    anything else as given."""
    if not _same_size(old, new):
        return float(new[0]), float(new[1]), float(new[2]), float(new[3])
    dx, dy = round(float(new[0] - old[0])), round(float(new[1] - old[1]))
    return float(old[0] + dx), float(old[1] + dy), float(old[2] + dx), float(old[3] + dy)


def rle_area(rle: dict[str, Any]) -> float:
    from pycocotools import mask as mask_utils

    return float(mask_utils.area(_decode_counts(rle)))


def rle_bbox_xyxy(rle: dict[str, Any]) -> tuple[float, float, float, float]:
    """Tight box of a mask's pixels, as COCO computes it (pixel edges)."""
    from pycocotools import mask as mask_utils

    x, y, w, h = (float(v) for v in mask_utils.toBbox(_decode_counts(rle)))
    return (x, y, x + w, y + h)


def rle_iou(a: dict[str, Any], b: dict[str, Any]) -> float:
    """IoU of two RLE masks of the same size."""
    from pycocotools import mask as mask_utils

    return float(mask_utils.iou([_decode_counts(a)], [_decode_counts(b)], [0])[0][0])


def mask_to_polygons(mask: np.ndarray) -> list[list[float]]:
    """Outer contours of a binary mask as flat rings along pixel edges (lossless for hole-free masks).

    Boundary edges between pixel corners are chained into closed loops; loops that run
    the outer way round become polygons, holes are dropped (polygon formats cannot hold them).
    """
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return []
    rings: list[list[float]] = []
    for loop in _loops(_boundary_edges(m)):
        if len(loop) >= 3 and _signed_area(loop) > 0:
            simplified = _drop_collinear(loop)
            if len(simplified) >= 3:
                rings.append([float(v) for pt in simplified for v in pt])
    return rings


def _boundary_edges(m: np.ndarray) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """Directed edges between pixel corners, object on the right in image coordinates.

    Only boundary pixels are visited (numpy finds them), in raster order and top, right, bottom,
    left within a pixel, so the work grows with the outline, not with the area.
    """
    h, w = m.shape
    padded = np.zeros((h + 2, w + 2), dtype=bool)
    padded[1:-1, 1:-1] = m
    inner = padded[1:-1, 1:-1]
    # per side: (pixel has no neighbour there, the edge's start and end corners relative to the pixel)
    sides = ((~padded[:-2, 1:-1], (0, 0), (1, 0)), (~padded[1:-1, 2:], (1, 0), (1, 1)),
             (~padded[2:, 1:-1], (1, 1), (0, 1)), (~padded[1:-1, :-2], (0, 1), (0, 0)))
    keys, starts, ends = [], [], []
    for d, (open_side, (sx, sy), (ex, ey)) in enumerate(sides):
        ys, xs = np.nonzero(inner & open_side)
        keys.append((ys.astype(np.int64) * w + xs) * 4 + d)
        starts.append(np.stack([xs + sx, ys + sy], axis=1))
        ends.append(np.stack([xs + ex, ys + ey], axis=1))
    order = np.argsort(np.concatenate(keys), kind="stable")
    edges: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for a, b in zip(np.concatenate(starts)[order].tolist(), np.concatenate(ends)[order].tolist(), strict=True):
        edges.setdefault((a[0], a[1]), []).append((b[0], b[1]))
    return edges


def _loops(edges: dict[tuple[int, int], list[tuple[int, int]]]) -> Iterator[list[tuple[int, int]]]:
    """Pop closed loops off ``edges``, each starting at the smallest corner left (keys only go away,
    so one sorted pass finds each start)."""
    for start in sorted(edges):
        while start in edges:
            loop = [start]
            current = start
            while True:
                nxt = edges[current].pop()
                if not edges[current]:
                    del edges[current]
                if nxt == start or nxt not in edges:
                    break
                loop.append(nxt)
                current = nxt
            yield loop


def _signed_area(points: list[tuple[int, int]]) -> float:
    pts = np.asarray(points, dtype=np.float64)
    x, y = pts[:, 0], pts[:, 1]
    return float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0


def _drop_collinear(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    n = len(points)
    for i in range(n):
        px, py = points[i - 1]
        cx, cy = points[i]
        nx, ny = points[(i + 1) % n]
        if (cx - px) * (ny - cy) - (cy - py) * (nx - cx) != 0:
            out.append((cx, cy))
    return out


def mask_to_cvat_rle(mask: np.ndarray, left: int, top: int, width: int, height: int) -> list[int]:
    """CVAT 1.1 mask RLE: run lengths over the ``(height, width)`` crop at (left, top), row-major,
    starting with a run of zeros."""
    crop = np.asarray(mask, dtype=bool)[top: top + height, left: left + width].reshape(-1)
    change = np.flatnonzero(crop[1:] != crop[:-1]) + 1  # where a run of the other value starts
    bounds = np.concatenate([[0], change, [crop.size]])
    runs = np.diff(bounds).tolist()
    return [0, *runs] if crop.size and crop[0] else (runs or [0])


def cvat_rle_to_mask(runs: Sequence[int], left: int, top: int, width: int, height: int,
                     image_height: int, image_width: int) -> np.ndarray:
    """Inverse of :func:`mask_to_cvat_rle` into a full ``(H, W)`` uint8 mask."""
    flat = np.zeros(width * height, dtype=np.uint8)
    pos, value = 0, 0
    for run in runs:
        if value:
            flat[pos: pos + int(run)] = 1
        pos += int(run)
        value ^= 1
    if pos != width * height:
        raise ValueError(f"mask RLE covers {pos} pixels, expected {width}x{height}={width * height}")
    full = np.zeros((image_height, image_width), dtype=np.uint8)
    full[top: top + height, left: left + width] = flat.reshape(height, width)[
        : max(0, image_height - top), : max(0, image_width - left)]
    return full
