"""Images a job could not read at run time (deleted, replaced, truncated on disk, permission lost).

One bad image never fails a job: train, pre-annotate, suggest and QA skip it, list it (id, file,
reason) in their result and log, and end with a warning count. Only when more than one image and
more than a share of the images fail (``LABELLOOP_MAX_UNREADABLE_SHARE``, 0.2 by default: then
something is wrong with the storage, not with a few files) does the job fail, with the list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

from labelloop.errors import InvalidInputError

__all__ = ["SkippedImage", "Unreadable"]

#: a failure message lists this many images; the result lists them all
LISTED = 10


class SkippedImage(TypedDict):
    image_id: int
    file_name: str
    reason: str


@dataclass
class Unreadable:
    """The images one job skipped; ``check`` fails the job when they are too many."""

    job: str
    items: list[SkippedImage] = field(default_factory=list)

    def add(self, image_id: int, file_name: str, reason: str) -> None:
        self.items.append({"image_id": image_id, "file_name": file_name, "reason": reason})

    def __len__(self) -> int:
        return len(self.items)

    def listed(self) -> str:
        shown = "; ".join(f"image {s['image_id']} {s['file_name']} ({s['reason']})" for s in self.items[:LISTED])
        more = len(self.items) - LISTED
        return shown + (f"; and {more} more" if more > 0 else "")

    def check(self, total: int, max_share: float | None = None) -> None:
        """An :class:`InvalidInputError` listing the images when more than one and more than
        ``max_share`` of ``total`` could not be read (default: the ``max_unreadable_share`` setting)."""
        if max_share is None:
            from labelloop.settings import get_settings

            max_share = get_settings().max_unreadable_share
        if len(self.items) > max(1.0, max_share * total):
            raise InvalidInputError(
                f"{self.job}: {len(self.items)} of {total} images cannot be read: {self.listed()}",
                "run `labelloop doctor` to list missing and damaged images, then re-import or delete them "
                f"(or allow more with LABELLOOP_MAX_UNREADABLE_SHARE, now {max_share:g})")
