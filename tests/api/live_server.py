"""A real ``labelloop serve`` on loopback in a subprocess, with its own HOME, for API and browser tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

TESTS = Path(__file__).resolve().parents[1]
ADMIN_PASSWORD = "admin-pass-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """``start()`` / ``stop()`` (SIGTERM to the server, which stops its worker's process group)."""

    def __init__(self, home: Path, *, database_url: str = "", extra_env: dict[str, str] | None = None,
                 projects: list[Path] | None = None) -> None:
        self.home = home
        self.projects = projects or []
        self.port = free_port()
        self.database_url = database_url
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = home.parent / f"{home.name}-server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> LiveServer:
        self.home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LABELLOOP_")}
        env.update({"LABELLOOP_ADMIN_PASSWORD": ADMIN_PASSWORD, "LABELLOOP_JOB_PLUGINS": "fake_kinds",
                    "PYTHONPATH": os.pathsep.join([str(TESTS / "jobs"), env.get("PYTHONPATH", "")]),
                    "HF_HUB_OFFLINE": "1", "LABELLOOP_STRICT_RESPONSES": "1", **self.extra_env})
        if self.database_url:
            env["LABELLOOP_DATABASE_URL"] = self.database_url
        log = open(self.log_path, "ab")  # noqa: SIM115  (closed with the process)
        folders = [arg for p in self.projects for arg in ("--project", str(p))]
        self.proc = subprocess.Popen([sys.executable, "-m", "labelloop.cli.serve", "--home", str(self.home),
                                      "--port", str(self.port), *folders], stdout=log, stderr=subprocess.STDOUT,
                                     env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/api/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not answer in {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def contract_errors(self) -> list[str]:
        """Answers the server refused to send because they did not match their route's response model
        (the server runs with LABELLOOP_STRICT_RESPONSES=1)."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        blocks = text.split("internal error on ")
        return [b[:2000] for b in blocks[1:] if "ResponseValidationError" in b]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    def client(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> httpx.Client:
        """A logged-in client (not yet opened, so it can be used as a context manager)."""
        response = httpx.post(self.url + "/api/auth/login", json={"username": username, "password": password})
        response.raise_for_status()
        return httpx.Client(base_url=self.url, timeout=60, cookies=response.cookies)

    def anonymous(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)


def wait_for_job(client: httpx.Client, project: str, job_id: int, *, until: tuple[str, ...] = (
        "succeeded", "failed", "cancelled"), timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/projects/{project}/jobs/{job_id}").json()
        if job["status"] in until:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not reach {until} in {timeout}s: {job}")


def png_bytes(h: int = 64, w: int = 96, seed: int = 0) -> bytes:
    import io

    from PIL import Image

    from factories import make_image

    buf = io.BytesIO()
    Image.fromarray(make_image(h, w, seed=seed)).save(buf, "PNG")
    return buf.getvalue()
