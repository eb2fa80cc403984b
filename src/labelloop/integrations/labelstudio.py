"""Label Studio, the other side of the ML backend (:mod:`labelloop.services.labelstudio`): its
labelling config, and a small client for what the backend fetches from it (task images, a
project's annotated tasks).

The labelling config is XML: object tags (``<Image name="image" value="$image"/>``) and control
tags (``<RectangleLabels name="label" toName="image"><Label value="cat"/></RectangleLabels>``,
``PolygonLabels``, ``BrushLabels``). Regions in predictions name their control (``from_name``)
and object (``to_name``).

Tokens: a Label Studio *personal access token* is a JWT refresh token, exchanged at
``POST /api/token/refresh/`` for a short-lived access token sent as ``Authorization: Bearer``; a
*legacy* token (40 hex digits) is sent as ``Authorization: Token``. The token goes only to Label
Studio's own host, never to another host an image URL may point at.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from labelloop.errors import InvalidInputError, UpstreamError

__all__ = ["CONTROL_TYPES", "Control", "LabelConfig", "LabelStudioClient", "parse_label_config"]

#: Label Studio control tags the backend predicts and reads, and the region type of each
CONTROL_TYPES = {"RectangleLabels": "rectanglelabels", "PolygonLabels": "polygonlabels",
                 "BrushLabels": "brushlabels"}
MAX_CONFIG_BYTES = 1_000_000
TIMEOUT = httpx_timeout = 30.0


@dataclass(frozen=True)
class Control:
    """One control tag: its ``name``, the object it labels (``to_name``), region type and labels."""

    name: str
    to_name: str
    type: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class LabelConfig:
    controls: tuple[Control, ...]

    @property
    def labels(self) -> list[str]:
        return list(dict.fromkeys(label for c in self.controls for label in c.labels))

    def control_for(self, region_type: str) -> Control | None:
        """The control that takes regions of ``region_type`` (a box goes to RectangleLabels, else to the first)."""
        return next((c for c in self.controls if c.type == region_type), None)


def parse_label_config(xml: str) -> LabelConfig:
    """The controls of a labelling config; a malformed one, or one without a box, polygon or brush
    control, is an :class:`InvalidInputError` saying what was expected."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    if not isinstance(xml, str) or not xml.strip():
        raise InvalidInputError("the labelling config is empty", "send the project's label config XML as 'schema'")
    if len(xml.encode()) > MAX_CONFIG_BYTES:
        raise InvalidInputError("the labelling config is over 1 MB", "is this a labelling config?")
    try:
        root = fromstring(xml, forbid_dtd=True)
    except (DefusedXmlException, ParseError) as exc:
        raise InvalidInputError(f"the labelling config is not valid XML ({exc})",
                                "send Label Studio's labelling config, e.g. <View><Image .../>...</View>") from None
    controls = []
    for el in root.iter():
        kind = CONTROL_TYPES.get(str(el.tag))
        if kind is None:
            continue
        name, to_name = el.get("name"), el.get("toName")
        if not name or not to_name:
            raise InvalidInputError(f"<{el.tag}> needs 'name' and 'toName' attributes",
                                    f'e.g. <{el.tag} name="label" toName="image">')
        labels = tuple(dict.fromkeys(str(lab.get("value")).strip() for lab in el.iter("Label")
                                     if (lab.get("value") or "").strip()))
        controls.append(Control(name=name, to_name=to_name.split(",")[0], type=kind, labels=labels))
    if not controls:
        raise InvalidInputError("the labelling config has no RectangleLabels, PolygonLabels or BrushLabels control",
                                "labelloop predicts boxes, polygons and masks: add one of these to the config")
    return LabelConfig(controls=tuple(controls))


def _jwt_expiry(token: str) -> float | None:
    """The ``exp`` of a JWT, or None when ``token`` is not one (a legacy token)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    return float(exp) if isinstance(exp, int | float) else float("inf")


@dataclass
class LabelStudioClient:
    """Label Studio at ``url`` with ``token`` (a personal access token or a legacy token)."""

    url: str
    token: str
    timeout: float = TIMEOUT
    _access: tuple[str, float] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInputError(f"Label Studio's URL {self.url!r} is not an http(s) URL",
                                    "give it as http://host:port (LABELLOOP_LABEL_STUDIO_URL)")
        self.url = self.url.rstrip("/")

    def _client(self) -> Any:
        import httpx

        return httpx.Client(timeout=self.timeout, follow_redirects=True)

    def auth_header(self) -> dict[str, str]:
        if not self.token:
            return {}
        expiry = _jwt_expiry(self.token)
        if expiry is None:
            return {"Authorization": f"Token {self.token}"}
        if self._access is None or self._access[1] < time.time() + 30:
            self._access = self._refresh()
        return {"Authorization": f"Bearer {self._access[0]}"}

    def _refresh(self) -> tuple[str, float]:
        """A personal access token's short-lived access token."""
        with self._client() as http:
            r = self._send(http, "POST", f"{self.url}/api/token/refresh/", json={"refresh": self.token},
                           what="exchanging the personal access token")
        access = r.json().get("access") if r.headers.get("content-type", "").startswith("application/json") else None
        if not isinstance(access, str):
            raise UpstreamError(f"Label Studio at {self.url} did not return an access token",
                                "check the personal access token (Account & Settings in Label Studio)")
        return access, _jwt_expiry(access) or time.time() + 240

    def _send(self, http: Any, method: str, url: str, *, what: str, **kwargs: Any) -> Any:
        import httpx

        try:
            r = http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise UpstreamError(f"{what}: cannot reach {url} ({type(exc).__name__}: {exc})",
                                "is Label Studio running at that address? (LABELLOOP_LABEL_STUDIO_URL)") from None
        if r.status_code in (401, 403):
            raise UpstreamError(f"{what}: Label Studio refused the token at {url} ({r.status_code})",
                                "give a valid personal access token (LABELLOOP_LABEL_STUDIO_TOKEN); a legacy "
                                "token works only where legacy tokens are enabled")
        if r.status_code >= 400:
            raise UpstreamError(f"{what}: {url} answered {r.status_code} {r.reason_phrase}", None)
        return r

    def resolve(self, ref: str, task_id: int | None = None) -> str:
        """The URL to download a task's image from: relative Label Studio paths are joined to its
        URL; a cloud URI (s3://, gs://, azure-blob://) goes through Label Studio's resolver."""
        parts = urlsplit(ref)
        if parts.scheme in ("http", "https"):
            return ref
        if parts.scheme in ("s3", "gs", "azure-blob"):
            if task_id is None:
                raise InvalidInputError(f"cannot resolve {ref!r} without the task id")
            uri = base64.urlsafe_b64encode(ref.encode()).decode()
            return f"{self.url}/tasks/{task_id}/resolve/?fileuri={uri}"
        if not ref.startswith("/"):
            raise InvalidInputError(f"the task's image {ref!r} is not a URL Label Studio serves",
                                    "expected /data/upload/..., /data/local-files/?d=..., http(s):// or a cloud URI")
        return urljoin(self.url + "/", ref.lstrip("/"))

    def download(self, ref: str, out: Path, *, task_id: int | None = None, limit: int) -> Path:
        """Save a task's image at ``out`` (at most ``limit`` bytes); the token goes to Label Studio only."""
        url = self.resolve(ref, task_id)
        same_host = urlsplit(url).netloc == urlsplit(self.url).netloc
        headers = self.auth_header() if same_host else {}
        tmp = out.with_name(out.name + ".part")
        with self._client() as http:
            import httpx

            try:
                with http.stream("GET", url, headers=headers) as r:
                    if r.status_code >= 400:
                        hint = ("the token may not see this project's files" if r.status_code in (401, 403) else
                                "is the file still in Label Studio?")
                        raise UpstreamError(f"downloading the task's image {url}: {r.status_code} {r.reason_phrase}",
                                            hint)
                    size = 0
                    with open(tmp, "wb") as fh:
                        for chunk in r.iter_bytes(1 << 16):
                            size += len(chunk)
                            if size > limit:
                                raise InvalidInputError(f"the task's image {url} is over {limit} bytes",
                                                        "raise LABELLOOP_MAX_IMAGE_BYTES if this is intended")
                            fh.write(chunk)
            except httpx.HTTPError as exc:
                tmp.unlink(missing_ok=True)
                raise UpstreamError(f"downloading the task's image {url}: {type(exc).__name__}: {exc}",
                                    "is Label Studio (or the file's host) reachable from this server?") from None
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        tmp.replace(out)
        return out

    def tasks(self, project_id: int) -> list[dict[str, Any]]:
        """Every task of a Label Studio project with its annotations (its JSON export)."""
        with self._client() as http:
            r = self._send(http, "GET", f"{self.url}/api/projects/{project_id}/export",
                           params={"exportType": "JSON", "download_all_tasks": "true"},
                           headers=self.auth_header(), what=f"reading the tasks of Label Studio project {project_id}")
        try:
            doc = r.json()
        except ValueError:
            raise UpstreamError(f"Label Studio's export of project {project_id} is not JSON") from None
        if not isinstance(doc, list):
            raise UpstreamError(f"Label Studio's export of project {project_id} is not a list of tasks")
        return [t for t in doc if isinstance(t, dict)]
