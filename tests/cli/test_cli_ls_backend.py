"""`labelloop ls-backend --project DIR`: one project served as a Label Studio ML backend, with the
URL and credentials to give Label Studio printed at start."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from labelloop.services.layers import add_layer
from labelloop.services.projects import new_project

pytest.importorskip("fastapi")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABELLOOP_")}
    env.update(LABELLOOP_ADMIN_PASSWORD="admin-pass-123", LABELLOOP_HOME=str(tmp_path / "home"))
    return env


LABELLOOP = str(Path(sys.executable).parent / "labelloop")


@pytest.mark.parametrize("layer", [None, "nuclei"])
def test_ls_backend_serves_the_project_and_says_how_to_connect(tmp_path: Path, layer: str | None) -> None:
    ctx = new_project(tmp_path / "cells", task="detect", labels=["cell"])
    add_layer(ctx, "nuclei", "detect", labels=["nucleus"])
    ctx.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ls/cells" + (f"/layers/{layer}" if layer else "")
    proc = subprocess.Popen([LABELLOOP, "ls-backend", "--project", str(tmp_path / "cells"), "--port", str(port),
                             *(["--layer", layer] if layer else [])],
                            env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    auth = base64.b64encode(b"admin:admin-pass-123").decode()
    try:
        deadline, answer = time.monotonic() + 60, None
        while time.monotonic() < deadline and answer is None:
            try:
                answer = httpx.get(f"{url}/health",
                                   headers={"Authorization": f"Basic {auth}"}, timeout=2)
            except httpx.HTTPError:
                time.sleep(0.3)
        assert answer is not None and answer.status_code == 200, answer
        assert answer.json() == {"status": "UP", "model_class": "labelloop", "model_version": "labelloop-untrained"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out = proc.communicate(timeout=30)[0].decode()
    assert f"URL {url}," in out and "basic auth" in out


def test_ls_backend_refuses_a_layer_the_project_has_not(tmp_path: Path) -> None:
    new_project(tmp_path / "cells", task="detect", labels=["cell"]).close()
    r = subprocess.run([LABELLOOP, "ls-backend", "--project", str(tmp_path / "cells"), "--layer", "nuclei"],
                       env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "nuclei" in r.stderr and "Traceback" not in r.stderr
