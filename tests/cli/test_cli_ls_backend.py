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

from labelloop.services.projects import new_project

pytest.importorskip("fastapi")


def test_ls_backend_serves_the_project_and_says_how_to_connect(tmp_path: Path) -> None:
    new_project(tmp_path / "cells", task="detect", labels=["cell"]).close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABELLOOP_")}
    env.update(LABELLOOP_ADMIN_PASSWORD="admin-pass-123", LABELLOOP_HOME=str(tmp_path / "home"))
    labelloop = str(Path(sys.executable).parent / "labelloop")
    proc = subprocess.Popen([labelloop, "ls-backend", "--project", str(tmp_path / "cells"), "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    auth = base64.b64encode(b"admin:admin-pass-123").decode()
    try:
        deadline, answer = time.monotonic() + 60, None
        while time.monotonic() < deadline and answer is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/ls/cells/health",
                                   headers={"Authorization": f"Basic {auth}"}, timeout=2)
            except httpx.HTTPError:
                time.sleep(0.3)
        assert answer is not None and answer.status_code == 200, answer
        assert answer.json() == {"status": "UP", "model_class": "labelloop", "model_version": "labelloop-untrained"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out = proc.communicate(timeout=30)[0].decode()
    assert f"URL http://127.0.0.1:{port}/ls/cells" in out and "basic auth" in out
