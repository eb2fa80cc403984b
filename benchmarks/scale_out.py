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

    .venv/bin/python benchmarks/scale_out.py --images 2000
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


def _project(root: Path, n: int):
    from labelloop.services.demo import create_demo_project, make_shapes_dataset
    from labelloop.services.importing import import_dataset
    from labelloop.services.training import train_project

    ctx, _ = create_demo_project(root, n_images=20, labelled=12, seed=1)
    train_project(ctx, args="epochs=1;image_size=128;batch_size=4")
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--node-cpus", type=int, default=1)
    args = ap.parse_args()
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    # a loopback cluster of this run only: no token written to ~/.ray (a local ray.init() would)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    work = Path(tempfile.mkdtemp(prefix="llscale-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        ctx = _project(work / "proj", args.images)
        rates = {"local": _run(ctx, "local")}
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
        rates["ray, 1 node"] = _run(ctx, "ray")
        procs.append(_ray(f"--address=127.0.0.1:{port}", f"--num-cpus={args.node_cpus}"))
        _wait_cpus(ray, 2 * args.node_cpus)
        rates["ray, 2 nodes"] = _run(ctx, "ray")
        ray.shutdown()
        ctx.close()
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
    print(f"pre-annotation of {args.images} generated 240x320 images (tiny model, ONNX), {os.cpu_count()} cores")
    print("| run | images/s |\n|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.1f} |")
    print(f"ray (same CPUs) / local: {rates['ray, same CPUs'] / rates['local']:.2f}x (target >= 0.8)")
    print(f"2 nodes / 1 node: {rates['ray, 2 nodes'] / rates['ray, 1 node']:.2f}x (target >= 1.6)")


if __name__ == "__main__":
    main()
