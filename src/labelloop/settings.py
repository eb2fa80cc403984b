"""Settings from the environment (``LABELLOOP_*``), read when asked for, never at import."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LABELLOOP_", extra="ignore")

    #: empty = one SQLite file per project folder; else e.g. postgresql://user:pw@host/db
    database_url: str = ""
    #: where ``labelloop serve`` keeps projects, the job queue and uploads
    home: Path = Field(default_factory=lambda: Path.home() / ".labelloop")
    admin_password: str | None = None
    #: proxies whose X-Forwarded-Proto/-For headers are believed (comma-separated IPs or networks, "*"
    #: for any): behind a TLS proxy on another machine, its address, so the session cookie is Secure
    trusted_proxies: str = "127.0.0.1"
    #: SQLite durability: NORMAL keeps every acknowledged save when the process is killed; FULL also
    #: when the machine loses power (each commit waits for the disk)
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    #: refuse images with more pixels than this (decompression bombs)
    max_image_pixels: int = 400_000_000
    #: refuse image files larger than this many bytes
    max_image_bytes: int = 1_000_000_000
    #: an uploaded zip (web import) may hold this many files, unpack to this many bytes, and -- when it
    #: unpacks to more than 1 GB -- to at most this many times its own size (zip bombs)
    max_zip_members: int = 2_000_000
    max_unzipped_bytes: int = 100_000_000_000
    max_zip_ratio: float = 100.0
    #: a project's cache of image tiles is kept under this many bytes, least recently viewed images
    #: dropped first (they are re-cut when viewed again)
    tile_cache_bytes: int = 5_000_000_000
    #: a job (train, pre-annotate, suggest, QA) skips and lists images it cannot read, and fails only
    #: when more than this share of its images cannot be read
    max_unreadable_share: float = Field(default=0.2, ge=0.0, le=1.0)
    #: the annotation target per class for a first training round
    target_per_class: int = 20
    #: the Label Studio a project served as its ML backend fetches images and annotations from
    #: (default: the hostname Label Studio sends to /setup), and its personal access token (or legacy token)
    label_studio_url: str = ""
    label_studio_token: str = ""
    #: where `labelloop serve` runs jobs: its local worker, or a Ray cluster (extra [ray]) at
    #: ray_address (default: RAY_ADDRESS, else a Ray started for this server)
    executor: Literal["local", "ray"] = "local"
    ray_address: str = ""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings; a malformed ``LABELLOOP_*`` variable is a :class:`ConfigError` naming it."""
    from pydantic import ValidationError

    from labelloop.errors import ConfigError

    try:
        return Settings()
    except ValidationError as exc:
        wrong = "; ".join(f"LABELLOOP_{'_'.join(str(p) for p in e['loc']).upper()}={e.get('input')!r}: {e['msg']}"
                          for e in exc.errors())
        raise ConfigError(f"bad setting: {wrong}", "fix or unset that environment variable") from None
