"""A real Label Studio server on loopback for end-to-end tests, from its own virtual environment
(``scripts/test-services.sh`` makes it and exports ``LABELLOOP_TEST_LABEL_STUDIO``: the
``label-studio`` executable; never installed into labelloop's environment).

Started headless with a whitelisted environment: no analytics, no version check, no Sentry;
loopback ML backends allowed (``ML_BLOCK_LOCAL_IP=false``, ``SSRF_PROTECTION_ENABLED=false``);
legacy API tokens on, with a known token. The migrated data folder (``label-studio init``) is
made once and kept beside the virtual environment, and each test run starts from a copy of it,
so a start takes seconds rather than the minute the migrations take."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

ENV = "LABELLOOP_TEST_LABEL_STUDIO"
USER, PASSWORD = "admin@example.com", "e2e-password-123"
TOKEN = "e2etoken0123456789abcdef0123456789abcd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(data: Path, home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "XDG_DATA_HOME": str(home / "share"),
        "XDG_CONFIG_HOME": str(home / "config"), "XDG_CACHE_HOME": str(home / "cache"), "PYTHONUNBUFFERED": "1",
        "LABEL_STUDIO_BASE_DATA_DIR": str(data), "DJANGO_DB": "sqlite",
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true", "LATEST_VERSION_CHECK": "false",
        "COLLECT_ANALYTICS": "false", "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "", "FEATURE_FLAGS_OFFLINE": "true",
        "ML_BLOCK_LOCAL_IP": "false", "SSRF_PROTECTION_ENABLED": "false", "LOCAL_FILES_SERVING_ENABLED": "false",
        "CONVERTER_DOWNLOAD_RESOURCES": "false", "DEBUG": "false",
    }


USER_ARGS = ["--username", USER, "--password", PASSWORD, "--user-token", TOKEN, "--enable-legacy-api-token"]


def template(binary: Path) -> Path:
    """The migrated data folder with the admin user (made on first use, kept for the next runs)."""
    folder = binary.parent.parent / "template-data"
    if (folder / "label_studio.sqlite3").is_file() and (folder / ".done").is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    home = folder.parent / "template-home"
    subprocess.run([str(binary), "init", "--quiet", *USER_ARGS], env=_env(folder, home), cwd=folder, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=900)
    (folder / ".done").touch()
    return folder


class LabelStudio:
    def __init__(self, binary: Path, work: Path) -> None:
        self.binary = binary
        self.data = work / "ls-data"
        self.home = work / "ls-home"
        self.port = _free_port()
        self.log_path = work / "label-studio.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 300.0) -> LabelStudio:
        shutil.copytree(template(self.binary), self.data)
        log = open(self.log_path, "ab")  # noqa: SIM115  (closed with the process)
        self.proc = subprocess.Popen(
            [str(self.binary), "start", "--no-browser", "--debug", "--internal-host", "127.0.0.1",
             "--port", str(self.port), "--host", self.url, *USER_ARGS],
            env=_env(self.data, self.home), cwd=self.data, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Label Studio exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health/", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"Label Studio did not answer in {timeout}s:\n{self.log()}")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120, headers={"Authorization": f"Token {TOKEN}"})

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""
