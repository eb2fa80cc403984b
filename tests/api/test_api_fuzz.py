"""Schemathesis against a real server on loopback: every operation of the OpenAPI document, with
generated (valid and invalid) requests, bounded in time; any 5xx fails. The fixtures make the
generated requests hit real objects: a project ``fuzz`` (every ``slug``) with images, classes and
annotations, and an API token. Operations that would end the token's life (log out, revoke,
password or role changes) or delete the project under test are left out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from live_server import LiveServer, png_bytes

pytest.importorskip("schemathesis")
pytestmark = pytest.mark.slow

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
LEFT_OUT = r"^(logout|revoke_token|update_user|delete_project|job_events)"
CONFIG = """\
headers = { Authorization = "Bearer ${LABELLOOP_FUZZ_TOKEN}" }
request-timeout = 60.0

[parameters]
slug = "fuzz"
"""


def test_no_request_makes_the_server_fail(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "home").start()
    try:
        with server.client() as c:
            token = c.post("/api/auth/tokens", json={"name": "fuzz"}).json()["token"]
            assert c.post("/api/projects", json={"name": "fuzz", "labels": ["cat", "dog"]}).json()["slug"] == "fuzz"
            files = [("files", (f"i{i}.png", png_bytes(seed=i), "image/png")) for i in range(3)]
            image_id = c.post("/api/projects/fuzz/images", files=files).json()["added"][0]["id"]
            c.post(f"/api/projects/fuzz/images/{image_id}/annotations", json={"label": "cat", "bbox": [1, 1, 9, 9]})
        (tmp_path / "schemathesis.toml").write_text(CONFIG)
        cmd = [SCHEMATHESIS, "--config-file", str(tmp_path / "schemathesis.toml"), "run",
               f"{server.url}/api/openapi.json", "--checks", "not_a_server_error", "--max-examples", "40",
               "--seed", "1", "--exclude-operation-id-regex", LEFT_OUT, "--no-color"]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, cwd=tmp_path,
                             env={**os.environ, "LABELLOOP_FUZZ_TOKEN": token})
        summary = run.stdout[run.stdout.rfind("SUMMARY"):]
        print(summary)
        assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:] + server.log()
        assert "Authentication failed" not in run.stdout, "the fuzzer lost its token: the run tested nothing"
        assert " generated, " in summary and " passed" in summary
    finally:
        server.stop()
