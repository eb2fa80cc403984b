"""Jobs on a real Ray cluster on loopback: a head node without CPUs (so jobs run on the workers) and
worker nodes started and killed by the test, each its own raylet; the live server dispatches with
``--executor ray``. Progress, events, failures and cancel reach the job row as with the local
worker; a job whose worker node dies is retried on another node, or fails with the reason."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from live_server import LiveServer, wait_for_job

pytest.importorskip("ray")
pytestmark = pytest.mark.slow
RAY = str(Path(sys.executable).parent / "ray")
#: the cluster's token (Ray's token authentication): given to its nodes and to the server, so neither
#: depends on a ~/.ray/auth_token a local ray.init() may have left behind
TOKEN = secrets.token_hex(32)
RAY_AUTH = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN}
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith(("LABELLOOP_", "RAY_"))},
       "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(Path(__file__).parent), **RAY_AUTH}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    def __init__(self) -> None:
        self.port = _port()
        self.temp = Path(tempfile.mkdtemp(prefix="llray-"))  # short: Ray's socket paths have a length limit
        self.head = self._start("--head", f"--port={self.port}", "--num-cpus=0", f"--temp-dir={self.temp}",
                                "--include-dashboard=false", "--disable-usage-stats")
        self.workers: list[subprocess.Popen[bytes]] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([RAY, "start", "--block", *args], env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)

    def add_worker(self, cpus: int = 1) -> subprocess.Popen[bytes]:
        proc = self._start(f"--address={self.address}", f"--num-cpus={cpus}")
        self.workers.append(proc)
        return proc

    def wait_for_cpus(self, cpus: int, timeout: float = 90) -> None:
        """Until the cluster's alive nodes have ``cpus`` CPUs (a node that was just started joins in seconds)."""
        status = [RAY, "status", f"--address={self.address}"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = subprocess.run(status, env=ENV, capture_output=True, text=True, timeout=60).stdout
            if f"/{cpus}.0 CPU" in out:
                return
            time.sleep(1)
        raise AssertionError(f"the cluster never had {cpus} CPUs:\n{out}")

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        for proc in [*self.workers, self.head]:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    self.kill(proc)
        shutil.rmtree(self.temp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if not Path(RAY).exists():
        pytest.skip("the ray command is not installed (pip install 'labelloop[ray]')")
    c = Cluster()
    c.add_worker()
    c.wait_for_cpus(1)
    yield c
    c.stop()


def _server(tmp: Path, cluster: Cluster, **env: str) -> LiveServer:
    return LiveServer(tmp / "home", extra_env={"LABELLOOP_EXECUTOR": "ray", "LABELLOOP_RAY_ADDRESS": cluster.address,
                                               **RAY_AUTH, **env}).start(timeout=120)


def _project(c: httpx.Client) -> str:
    slug: str = c.post("/api/projects", json={"name": f"ray {time.monotonic_ns()}"}).json()["slug"]
    return slug


def _start(c: httpx.Client, slug: str, kind: str, **params: Any) -> int:
    r = c.post(f"/api/projects/{slug}/jobs", json={"kind": kind, "params": params})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_jobs_run_on_the_cluster_as_they_do_locally(tmp_path: Path, cluster: Cluster) -> None:
    server = _server(tmp_path, cluster)
    try:
        with server.client() as c:
            slug = _project(c)
            done = wait_for_job(c, slug, _start(c, slug, "sleepy", steps=4, seconds=0.1), timeout=180)
            assert done["status"] == "succeeded" and done["output"] == {"steps": 4, "message": "slept 4 steps"}
            events = c.get(f"/api/projects/{slug}/jobs/{done['id']}", params={"events": True}).json()["events"]
            assert events[0]["type"] == "start" and events[-1]["type"] == "end"
            assert "sleepy job" in c.get(f"/api/projects/{slug}/jobs/{done['id']}/log").text
            failed = wait_for_job(c, slug, _start(c, slug, "boom"), timeout=120)
            assert failed["status"] == "failed" and "failed on purpose" in failed["error"]
            long = _start(c, slug, "sleepy", steps=600, seconds=0.1)
            wait_for_job(c, slug, long, until=("running",), timeout=120)
            c.post(f"/api/projects/{slug}/jobs/{long}/cancel")
            assert wait_for_job(c, slug, long, timeout=60)["status"] == "cancelled"
    finally:
        server.stop()
    assert "jobs run on Ray" in server.log()


def _serve_check(home: Path, cluster: Cluster) -> dict[str, Any]:
    env = {**ENV, "LABELLOOP_HOME": str(home)}
    r = subprocess.run([str(Path(sys.executable).parent / "labelloop"), "serve", "--check", "--executor", "ray",
                        "--ray-address", cluster.address, "--json"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    report: dict[str, Any] = json.loads(r.stdout)
    return report


def test_serve_check_reports_what_every_node_of_the_cluster_sees(tmp_path: Path, cluster: Cluster) -> None:
    expected = 1 + len([w for w in cluster.workers if w.poll() is None])  # the head and each worker
    deadline = time.monotonic() + 90
    while True:  # a worker that was just started joins within seconds
        report = _serve_check(tmp_path / "home", cluster)
        if len(report["nodes"]) - 1 == expected or time.monotonic() > deadline:
            break
        time.sleep(2)
    server, *nodes = report["nodes"]
    assert server["role"] == "server" and report["executor"] == "ray"
    assert len(nodes) == expected
    for node in nodes:
        assert node["role"] == "ray node" and node["ok"], node
        assert node["ray"] == server["ray"] and node["address"]
        assert [c["name"] for c in node["checks"]] == ["database", "home", "images"]
    assert sorted(n["cpus"] for n in nodes) == [0.0, 1.0]  # the CPU-less head answers too (it asks for none)


def test_a_lost_worker_node_is_retried_elsewhere_or_fails_with_the_reason(tmp_path: Path, cluster: Cluster) -> None:
    server = _server(tmp_path / "a", cluster)
    try:
        with server.client() as c:
            slug = _project(c)
            job = _start(c, slug, "sleepy", steps=40, seconds=0.25)
            wait_for_job(c, slug, job, until=("running",), timeout=120)
            cluster.kill(cluster.workers[-1])  # the only node with CPUs: the job's
            cluster.add_worker()
            done = wait_for_job(c, slug, job, timeout=240)
            assert done["status"] == "succeeded", (done["error"], done["message"])
            assert "lost on Ray" in c.get(f"/api/projects/{slug}/jobs/{job}/log").text
    finally:
        server.stop()
    no_retry = _server(tmp_path / "b", cluster, LABELLOOP_RAY_RETRIES="0")
    try:
        with no_retry.client() as c:
            slug = _project(c)
            job = _start(c, slug, "sleepy", steps=40, seconds=0.25)
            wait_for_job(c, slug, job, until=("running",), timeout=120)
            cluster.kill(cluster.workers[-1])
            failed = wait_for_job(c, slug, job, timeout=120)
            assert failed["status"] == "failed" and "Ray worker running this job was lost" in failed["error"]
    finally:
        no_retry.stop()
        cluster.add_worker()


def test_preannotation_of_hundreds_of_images_runs_on_ray_data(tmp_path: Path, cluster: Cluster) -> None:
    from sqlalchemy import select

    from labelloop.services.demo import make_shapes_dataset
    from labelloop.services.importing import import_dataset
    from labelloop.services.projects import load_project
    from labelloop.store.tables import Image
    from selection.loopkit import trained_demo

    root, _ = trained_demo()  # a project with a really trained (tiny) model
    folder = tmp_path / "shapes"
    shutil.copytree(root, folder)
    ctx = load_project(folder)
    try:  # a few hundred more unlabelled images, one of them then broken on disk
        extra = make_shapes_dataset(tmp_path / "more", n_images=230, seed=9)
        for image in extra.images:
            image.file_name, image.annotations = f"more_{image.file_name}", []
        import_dataset(ctx, extra)
        with ctx.store.session() as s:
            broken = s.scalars(select(Image).where(Image.project_id == ctx.id, Image.status == "new")
                               .order_by(Image.id.desc())).first()
            (ctx.root / broken.storage_path).write_bytes(b"\x00 not an image any more")
            broken_name = broken.file_name
            unlabelled = len(s.scalars(select(Image.id).where(Image.project_id == ctx.id,
                                                              Image.status == "new")).all())
    finally:
        ctx.close()
    server = LiveServer(tmp_path / "home", projects=[folder], extra_env={
        "LABELLOOP_EXECUTOR": "ray", "LABELLOOP_RAY_ADDRESS": cluster.address, **RAY_AUTH}).start(timeout=120)
    try:
        with server.client() as c:
            job = _start(c, "shapes", "preannotate", engine="ray")
            done = wait_for_job(c, "shapes", job, timeout=600)
    finally:
        server.stop()
    assert done["status"] == "succeeded", (done["error"], done["message"])
    out = done["output"]
    assert out["engine"] == "ray" and out["images"] == unlabelled - 1
    assert [s["file_name"] for s in out["skipped"]] == [broken_name] and out["warnings"] == 1


#: a two-epoch training of tiny inputs
SHORT = "epochs=2;image_size=128;batch_size=4"


def _demo_server(tmp: Path, cluster: Cluster) -> tuple[LiveServer, str]:
    """The server on a demo project with 12 labelled images (enough for two clones of 4 images a step)."""
    from labelloop.services.demo import create_demo_project

    ctx, _ = create_demo_project(tmp / "demo", n_images=16, labelled=12, seed=3)
    ctx.close()
    server = LiveServer(tmp / "home", projects=[tmp / "demo"], extra_env={
        "LABELLOOP_EXECUTOR": "ray", "LABELLOOP_RAY_ADDRESS": cluster.address, **RAY_AUTH}).start(timeout=120)
    with server.client() as c:
        slug: str = c.get("/api/projects").json()[0]["slug"]
    return server, slug


def test_a_training_with_two_clones_runs_on_ray_train_across_two_nodes(tmp_path: Path, cluster: Cluster) -> None:
    cluster.wait_for_cpus(1)  # two nodes starting at once can take the same ports: one after the other
    second = cluster.add_worker()  # two nodes of 1 CPU: the two ranks cannot share one
    cluster.wait_for_cpus(2)
    server, slug = _demo_server(tmp_path, cluster)
    try:
        with server.client() as c:
            done = wait_for_job(c, slug, _start(c, slug, "train", args=f"{SHORT};num_clones=2"),
                                timeout=600)
            assert done["status"] == "succeeded", (done["error"], done["message"])
            log = c.get(f"/api/projects/{slug}/jobs/{done['id']}/log").text
            assert "training on Ray Train: 2 workers, 1 CPU each (gloo)" in log, log
            events = c.get(f"/api/projects/{slug}/jobs/{done['id']}", params={"events": True}).json()["events"]
            epochs = [e for e in events if e["type"] == "epoch"]
            assert [e["epoch"] for e in epochs] == [1, 2] and "map50" in epochs[-1]["metrics"]
            model = f"/api/projects/{slug}/models/{done['output']['model_id']}"
            assert [e["epoch"] for e in c.get(f"{model}/epochs").json()] == [1, 2]  # what rank 0 wrote
            assert [e["epoch"] for e in c.get(f"{model}/flipbook").json()["epochs"]] == [1, 2]
            long = _start(c, slug, "train", args="epochs=200;image_size=128;batch_size=4;num_clones=2")
            deadline = time.monotonic() + 300
            while not any(e["type"] == "step" for e in c.get(f"/api/projects/{slug}/jobs/{long}",
                                                               params={"events": True}).json()["events"]):
                assert time.monotonic() < deadline, "the two-clone training never reported a step"
                time.sleep(1)
            c.post(f"/api/projects/{slug}/jobs/{long}/cancel")
            assert wait_for_job(c, slug, long, timeout=120)["status"] == "cancelled"
    finally:
        server.stop()
        cluster.kill(second)
        cluster.workers.remove(second)


def test_a_sweep_runs_its_trials_on_ray_tune(tmp_path: Path, cluster: Cluster) -> None:
    server, slug = _demo_server(tmp_path, cluster)
    try:
        with server.client() as c:
            job = _start(c, slug, "sweep", variants=["lr=0.0004", "lr=0.0002"], args=SHORT)
            done = wait_for_job(c, slug, job, timeout=600)
            assert done["status"] == "succeeded", (done["error"], done["message"])
            events = c.get(f"/api/projects/{slug}/jobs/{job}", params={"events": True}).json()["events"]
    finally:
        server.stop()
    out = done["output"]
    assert out["engine"] == "ray tune" and out["errors"] == []
    assert sorted(r["args"].split(";")[-1] for r in out["leaderboard"]) == ["lr=0.0002", "lr=0.0004"]
    assert all(r["status"] == "ready" for r in out["leaderboard"]) and out["best_model_id"]
    assert any(e["type"] == "leaderboard" for e in events)  # the live leaderboard, as locally
