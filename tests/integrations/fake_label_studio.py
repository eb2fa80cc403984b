"""A stand-in for the parts of a Label Studio server an ML backend calls, on loopback in a thread:
uploaded files (``/data/upload/<project>/<name>``, token required), the project export
(``/api/projects/<id>/export``) and the personal-access-token exchange (``/api/token/refresh/``).
The request shapes are those of Label Studio 1.23 (its ``data_import``, ``data_export`` and
``jwt_auth`` views). Every request is recorded, so tests can check which headers went where."""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

LEGACY_TOKEN = "0123456789abcdef0123456789abcdef01234567"


def jwt(payload: dict[str, Any]) -> str:
    """An unsigned JWT (the backend only reads ``exp``; Label Studio checks signatures itself)."""
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(payload)}.c2ln"


PAT = jwt({"token_type": "refresh", "exp": int(time.time()) + 10**8})


def access_token() -> str:
    """A fresh short-lived access token, as Label Studio issues on each exchange (5 minutes)."""
    return jwt({"token_type": "access", "exp": int(time.time()) + 300, "jti": time.monotonic_ns()})


@dataclass
class FakeLabelStudio:
    files: dict[str, bytes] = field(default_factory=dict)  # path -> bytes, e.g. "/data/upload/1/ab12cd34-a.png"
    tasks: list[dict[str, Any]] = field(default_factory=list)  # the export of project 1
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    issued: set[str] = field(default_factory=set)  # access tokens handed out
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def authorised(self, headers: dict[str, str]) -> bool:
        given = headers.get("authorization", "")
        return given == f"Token {LEGACY_TOKEN}" or (given.startswith("Bearer ") and given[7:] in self.issued)

    def start(self) -> FakeLabelStudio:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _record(self) -> tuple[str, dict[str, str]]:
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.requests.append((self.command, self.path, headers))
                return urlsplit(self.path).path, headers

            def do_GET(self) -> None:
                path, headers = self._record()
                if path in fake.files:
                    if not fake.authorised(headers):
                        self._answer(401, b'{"detail": "Authentication credentials were not provided."}')
                    else:
                        self._answer(200, fake.files[path], "image/png")
                elif path == "/api/projects/1/export":
                    ok = fake.authorised(headers)
                    self._answer(200 if ok else 401, json.dumps(fake.tasks if ok else {"detail": "no"}).encode())
                else:
                    self._answer(404, b'{"detail": "Not found."}')

            def do_POST(self) -> None:
                path, _ = self._record()
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
                if path == "/api/token/refresh/" and body.get("refresh") == PAT:
                    token = access_token()
                    fake.issued.add(token)
                    self._answer(200, json.dumps({"access": token}).encode())
                else:
                    self._answer(401, b'{"detail": "Token is invalid"}')

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def seen(self, path_start: str) -> list[dict[str, str]]:
        """The headers of every request whose path starts with ``path_start``."""
        return [h for _, p, h in self.requests if p.startswith(path_start)]


CONFIG = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="label" toName="image">
    <Label value="circle"/><Label value="square"/><Label value="hexagon"/>
  </RectangleLabels>
</View>"""


def rect(x: float, y: float, w: float, h: float, label: str, width: int, height: int) -> dict[str, Any]:
    """A Label Studio rectangle region over an image of ``width`` x ``height`` pixels, given in pixels."""
    return {"id": f"r{x:.0f}{y:.0f}", "from_name": "label", "to_name": "image", "type": "rectanglelabels",
            "original_width": width, "original_height": height, "image_rotation": 0,
            "value": {"x": x / width * 100, "y": y / height * 100, "width": w / width * 100,
                      "height": h / height * 100, "rotation": 0, "rectanglelabels": [label]}}
