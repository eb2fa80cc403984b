"""Writing one output file the user named: whole or not at all, and a clear error when it cannot be."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from labelloop.errors import InvalidInputError

__all__ = ["output_file"]


@contextlib.contextmanager
def output_file(out: Path, what: str) -> Iterator[Path]:
    """A temporary path beside ``out`` to write ``what`` to, renamed to ``out`` when the block ends well.

    A folder in the way, a missing permission or a full disk (any ``OSError``) becomes an
    :class:`InvalidInputError` naming ``out``; no half-written file is left under either name."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp{out.suffix}")  # the same suffix: writers pick the format by it
    if out.is_dir():
        raise InvalidInputError(f"cannot write the {what} to {out}: it is a folder",
                                f"give a file name inside it, e.g. {out / ('out' + out.suffix)}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        tmp.replace(out)
    except OSError as exc:
        raise InvalidInputError(f"cannot write the {what} to {out}: {exc.strerror or exc}",
                                "pick a writable folder (and a path whose parents are folders, not files)") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
