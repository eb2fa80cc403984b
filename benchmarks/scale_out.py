"""Pre-annotation throughput: the local process vs Ray Data, and Ray with one vs two worker nodes.

A demo project with a tiny trained model and ``--images`` generated unlabelled images is
pre-annotated three ways, each timed end to end (reading, inference, writing the proposals):

1. ``local``: this process, one image after another (the local worker's way);
2. ``ray, same CPUs``: Ray Data on a Ray started here with as many CPUs as this machine has;
3. ``ray, 1 node`` / ``ray, 2 nodes``: a loopback cluster (a head without CPUs and worker nodes of
   ``--node-cpus`` CPUs each, separate raylets), first with one worker node, then with two.

Printed: images/s of each, and the ratios ``ray same CPUs / local`` (target >= 0.8) and
``2 nodes / 1 node`` (target >= 1.6; on one machine the two nodes share its cores, so this
measures the dispatch, not more hardware).

Then the latency a user sees: a real ``labelloop serve`` with the local worker, then with
``--executor ray`` on the two-node cluster, each given a one-epoch train job (one clone, then
``num_clones=2``: spawned processes locally, Ray Train workers on Ray); printed are the seconds from
the ``POST`` to the job's first step and to its first epoch, and the Ray / local ratios.

    .venv/bin/python benchmarks/scale_out.py --images 2000
    .venv/bin/python benchmarks/scale_out.py --latency-only
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "api"))
#: the train job of the latency figures: one short epoch
LATENCY_ARGS = "epochs=1;image_size=128;batch_size=4"


def _project(root: Path, n: int):
    from labelloop.services.demo import create_demo_project, make_shapes_dataset
    from labelloop.services.importing import import_dataset
    from labelloop.services.training import train_project

    ctx, _ = create_demo_project(root, n_images=20, labelled=12, seed=1)
    train_project(ctx, args="epochs=1;image_size=128;batch_size=4")
    if n:
        extra = make_shapes_dataset(root.parent / "extra", n_images=n, seed=7)
        for image in extra.images:
            image.file_name, image.annotations = f"x_{image.file_name}", []
        import_dataset(ctx, extra)
    return ctx


def _run(ctx, engine: str) -> float:
    from labelloop.services.preannotate import preannotate

    started = time.perf_counter()
    out = preannotate(ctx, images="unlabeled", engine=engine)
    seconds = time.perf_counter() - started
    return out["images"] / seconds


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--block", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _wait_cpus(ray, cpus: float, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while ray.cluster_resources().get("CPU", 0) < cpus:
        if time.monotonic() > deadline:
            raise SystemExit(f"the cluster never had {cpus} CPUs: {ray.cluster_resources()}")
        time.sleep(0.5)


def _first_events(server_env: dict[str, str], home: Path, project: Path, args: str) -> tuple[float, float]:
    """(seconds to the first step, to the first epoch) of a train job, from its POST, on a live server."""
    from live_server import LiveServer

    server = LiveServer(home, projects=[project], extra_env=server_env).start(timeout=180)
    try:
        with server.client() as c:
            slug = c.get("/api/projects").json()[0]["slug"]
            started = time.perf_counter()
            job = c.post(f"/api/projects/{slug}/jobs", json={"kind": "train", "params": {"args": args}}).json()["id"]
            first_step = first_epoch = 0.0
            while not first_epoch:
                view = c.get(f"/api/projects/{slug}/jobs/{job}", params={"events": True}).json()
                kinds = {e["type"] for e in view.get("events") or []}
                now = time.perf_counter() - started
                first_step = first_step or (now if "step" in kinds else 0.0)
                first_epoch = now if "epoch" in kinds else 0.0
                if view["status"] in ("failed", "cancelled"):
                    raise SystemExit(f"the train job {view['status']}: {view.get('error')}\n{server.log()}")
                time.sleep(0.1)
            while c.get(f"/api/projects/{slug}/jobs/{job}").json()["status"] not in ("succeeded", "failed"):
                time.sleep(0.2)
    finally:
        server.stop()
    return first_step, first_epoch


def _latencies(work: Path, project: Path, address: str) -> dict[str, tuple[float, float]]:
    ray_env = {"LABELLOOP_EXECUTOR": "ray", "LABELLOOP_RAY_ADDRESS": address,
               "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
    out = {}
    for clones in (1, 2):
        args = LATENCY_ARGS + (f";num_clones={clones}" if clones > 1 else "")
        out[f"local, {clones} clone(s)"] = _first_events({}, work / f"home-local-{clones}", project, args)
        out[f"ray, {clones} clone(s)"] = _first_events(ray_env, work / f"home-ray-{clones}", project, args)
    return out


def _print_latencies(latency: dict[str, tuple[float, float]]) -> None:
    print("\nfrom submit to the first step / epoch of a one-epoch train job (live server)")
    print("| run | first step (s) | first epoch (s) |\n|---|---|---|")
    for name, (step, epoch) in latency.items():
        print(f"| {name} | {step:.1f} | {epoch:.1f} |")
    for clones in (1, 2):
        ray, local = latency[f"ray, {clones} clone(s)"], latency[f"local, {clones} clone(s)"]
        print(f"ray / local, {clones} clone(s): first step {ray[0] / local[0]:.2f}x, "
              f"first epoch {ray[1] / local[1]:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--node-cpus", type=int, default=1)
    ap.add_argument("--latency-only", action="store_true", help="only the submit-to-first-epoch figures")
    args = ap.parse_args()
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    # a loopback cluster of this run only: no token written to ~/.ray (a local ray.init() would)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    work = Path(tempfile.mkdtemp(prefix="llscale-"))
    procs: list[subprocess.Popen[bytes]] = []
    rates: dict[str, float] = {}
    try:
        ctx = _project(work / "proj", 0 if args.latency_only else args.images)
        if not args.latency_only:
            rates["local"] = _run(ctx, "local")
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="WARNING")
            rates["ray, same CPUs"] = _run(ctx, "ray")
            ray.shutdown()
        port = _port()
        procs.append(_ray("--head", f"--port={port}", "--num-cpus=0", f"--temp-dir={work / 'ray'}",
                          "--include-dashboard=false", "--disable-usage-stats"))
        time.sleep(3)
        procs.append(_ray(f"--address=127.0.0.1:{port}", f"--num-cpus={args.node_cpus}"))
        ray.init(address=f"127.0.0.1:{port}", logging_level="WARNING")
        _wait_cpus(ray, args.node_cpus)
        if not args.latency_only:
            rates["ray, 1 node"] = _run(ctx, "ray")
        procs.append(_ray(f"--address=127.0.0.1:{port}", f"--num-cpus={args.node_cpus}"))
        _wait_cpus(ray, 2 * args.node_cpus)
        if not args.latency_only:
            rates["ray, 2 nodes"] = _run(ctx, "ray")
        ray.shutdown()
        ctx.close()
        latency = _latencies(work, work / "proj", f"127.0.0.1:{port}")
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    if rates:
        print(f"pre-annotation of {args.images} generated 240x320 images (tiny model, ONNX), {os.cpu_count()} cores")
        print("| run | images/s |\n|---|---|")
        for name, rate in rates.items():
            print(f"| {name} | {rate:.1f} |")
        print(f"ray (same CPUs) / local: {rates['ray, same CPUs'] / rates['local']:.2f}x (target >= 0.8)")
        print(f"2 nodes / 1 node: {rates['ray, 2 nodes'] / rates['ray, 1 node']:.2f}x (target >= 1.6)")
    _print_latencies(latency)


if __name__ == "__main__":
    main()
