"""``labelloop serve``: the web app and API (FastAPI + uvicorn) plus a local job worker.

Zero configuration: SQLite and files under ``LABELLOOP_HOME`` (default ``~/.labelloop``); the
worker is a child process in its own process group, stopped with the server. Also runnable as
``python -m labelloop.cli.serve``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from labelloop.cli.common import JsonOpt, out, output

__all__ = ["check_deployment", "check_listen", "ls_backend", "register", "run_server", "serve", "start_worker",
           "stop_worker"]


def _prepare_home(home: Path | None) -> tuple[Path, str, str]:
    """(home, server database URL, the URL the CLI would use for a project folder)."""
    from labelloop.services.projects import server_database_url
    from labelloop.settings import get_settings

    settings = get_settings()
    cli_url = settings.database_url
    home = (home or settings.home).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    url = server_database_url(home)
    os.environ["LABELLOOP_DATABASE_URL"] = url  # this process and its worker (a subprocess) share it
    os.environ["LABELLOOP_HOME"] = str(home)
    get_settings.cache_clear()
    return home, url, cli_url


def start_worker(home: Path, workers: int = 1) -> subprocess.Popen[bytes]:
    """The job worker as a child in a new process group (so stopping it stops its children too)."""
    cmd = [sys.executable, "-m", "labelloop.jobs.worker", "--home", str(home), "--workers", str(workers),
           "--parent-pid", str(os.getpid())]
    return subprocess.Popen(cmd, start_new_session=True, env=os.environ.copy())


def stop_worker(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Stop the worker's whole process group: TERM, then KILL after ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def exposure_warning(host: str) -> str | None:
    """A warning when ``host`` is reachable from other machines: the server speaks plain HTTP."""
    import ipaddress

    try:
        local = ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = host == "localhost"
    if local:
        return None
    return (f"warning: listening on {host}, reachable from other machines, over plain HTTP: passwords and "
            "images cross the network unencrypted. Put a TLS proxy (nginx, Caddy) in front and let only it "
            "reach this port, or listen on 127.0.0.1.")


def check_listen(host: str, port: int) -> None:
    """Fail early, with the fix, when HOST:PORT cannot be listened on (uvicorn would only log it)."""
    import errno
    import socket

    from labelloop.errors import ConfigError

    if not 0 < port < 65536:
        raise ConfigError(f"port {port} is out of range", "pick a port from 1 to 65535, e.g. --port 8000")
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host!r}: {exc.strerror}",
                          "use an address of this machine, e.g. --host 127.0.0.1 (or 0.0.0.0 for all)") from exc
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind(address)
        except OSError as exc:
            hint = ("another program (another `labelloop serve`?) uses that port: stop it or pick another --port"
                    if exc.errno == errno.EADDRINUSE else
                    "ports below 1024 need root: pick --port 8000" if exc.errno == errno.EACCES else
                    "use an address of this machine, e.g. --host 127.0.0.1 (or 0.0.0.0 for all)")
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}", hint) from exc


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    home: Annotated[Path | None, typer.Option(help="server folder (default: LABELLOOP_HOME or ~/.labelloop)",
                                              show_default=False)] = None,
    project: Annotated[list[Path] | None, typer.Option("--project", "-p",
                                                       help="also serve this CLI project folder (repeatable)")] = None,
    workers: Annotated[int, typer.Option(help="job worker threads")] = 1,
    worker: Annotated[bool, typer.Option(help="start the local job worker")] = True,
    access_log: Annotated[bool, typer.Option(help="log every request")] = False,
    executor: Annotated[str | None, typer.Option(help="local (a worker process) or ray (a Ray cluster; "
                                                      "default: LABELLOOP_EXECUTOR, else local)")] = None,
    ray_address: Annotated[str | None, typer.Option(help="the Ray cluster, e.g. 127.0.0.1:6379 (default: "
                                                         "LABELLOOP_RAY_ADDRESS or RAY_ADDRESS)")] = None,
    check: Annotated[bool, typer.Option("--check", help="serve nothing: report what this machine and each Ray "
                                        "node sees (versions, GPUs, the database, the projects folder, an "
                                        "image); exit 1 when a node cannot run jobs")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Serve the web app and API, with a local worker (or a Ray cluster) for training and other long jobs."""
    if check:
        check_deployment(home, executor, ray_address, json_out)
        return
    run_server(host, port, home, project or [], workers=workers, worker=worker, access_log=access_log,
               executor=executor, ray_address=ray_address)


def ls_backend(
    project: Annotated[Path, typer.Option("--project", "-p", help="the project folder Label Studio's model is")],
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 9090,
    home: Annotated[Path | None, typer.Option(help="server folder (default: LABELLOOP_HOME or ~/.labelloop)",
                                              show_default=False)] = None,
    layer: Annotated[str | None, typer.Option(help="the project's layer Label Studio labels (default: its first)",
                                              show_default=False)] = None,
) -> None:
    """Serve a project as a Label Studio ML backend (with the web app and a training worker)."""
    suffix = ""
    if layer:
        from urllib.parse import quote

        from labelloop.services.layers import layer_context
        from labelloop.services.projects import load_project

        ctx = load_project(project)
        try:
            suffix = f"/layers/{quote(layer_context(ctx, layer).layer)}"  # an unknown layer: the list of them
        finally:
            ctx.close()

    def announce(slugs: list[str]) -> None:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        typer.echo(f"Label Studio ML backend for {project}: in Label Studio, Settings > Model > Connect Model,\n"
                   f"  URL http://{shown}:{port}/ls/{slugs[0]}{suffix}, basic auth: a labelloop user name and one of\n"
                   f"  their API tokens (`labelloop tokens create`) as the password. Label Studio needs\n"
                   f"  ML_BLOCK_LOCAL_IP=false and SSRF_PROTECTION_ENABLED=false for a backend on this machine.",
                   err=True)

    run_server(host, port, home, [project], announce=announce)


def _executor_kind(executor: str | None) -> str:
    from labelloop.errors import ConfigError
    from labelloop.settings import get_settings

    kind = executor or get_settings().executor
    if kind not in ("local", "ray"):
        raise ConfigError(f"unknown executor {kind!r}", "expected local or ray")
    return kind


def check_deployment(home: Path | None, executor: str | None, ray_address: str | None, json_out: bool) -> None:
    """``serve --check``: each node's report (:mod:`labelloop.jobs.node_check`); exit 1 when one fails."""
    from labelloop.jobs.node_check import deployment_report
    from labelloop.settings import get_settings

    kind = _executor_kind(executor)
    home, url, _ = _prepare_home(home)
    report = deployment_report(home, url, executor=kind, ray_address=ray_address or get_settings().ray_address)
    output(report, json_out, _print_check)
    if not report["ok"]:
        raise typer.Exit(1)


def _print_check(report: dict[str, Any]) -> None:
    from rich.table import Table

    t = Table("node", "host", "labelloop", "ray", "torch", "GPUs", "database", "home", "images")
    for n in report["nodes"]:
        checks = {c["name"]: c for c in n["checks"]}
        cells = [("[green]ok[/]" if checks[k]["ok"] else "[red]no[/]") if k in checks else "—"
                 for k in ("database", "home", "images")]
        t.add_row(f"{n['role']} {n.get('address') or ''}".strip(), n.get("host", "?"), n.get("labelloop") or "—",
                  n.get("ray") or "—", n.get("torch") or "—", str(n.get("gpus", "—")), *cells)
    out.print(t)
    for n in report["nodes"]:
        for c in n["checks"]:
            if not c["ok"]:
                out.print(f"[red]{n['role']} {n.get('host', '')}: {c['name']}:[/] {c['detail']}")
        if n.get("error"):
            out.print(f"[red]{n['role']} {n.get('address', '')}:[/] {n['error']}")
    out.print("every node can run jobs" if report["ok"] else "[red]some nodes cannot run jobs[/] (see above)")


def run_server(host: str, port: int, home: Path | None, project: list[Path], *, workers: int = 1,
               worker: bool = True, access_log: bool = False, executor: str | None = None,
               ray_address: str | None = None, announce: Callable[[list[str]], None] | None = None) -> None:
    """Serve until stopped; ``announce`` is told the slugs the ``project`` folders are served under."""
    import uvicorn

    from labelloop.api import create_app
    from labelloop.jobs.executor import Executor, HueyExecutor
    from labelloop.jobs.registry import load_plugins
    from labelloop.services.projects import ProjectRegistry
    from labelloop.services.users import ensure_admin
    from labelloop.settings import get_settings

    check_listen(host, port)
    if warning := exposure_warning(host):
        typer.echo(warning, err=True)
    home, url, cli_url = _prepare_home(home)
    load_plugins()
    registry = ProjectRegistry(home, url)
    store = registry.store()
    generated = ensure_admin(store, get_settings().admin_password)
    if generated:
        typer.echo(f"created user 'admin' with password: {generated}\n"
                   "  (shown only this once; change it with `labelloop users set-password admin`)", err=True)
    slugs = []
    for folder in project:
        slug = registry.register_folder(folder, cli_url)
        slugs.append(slug)
        typer.echo(f"serving project folder {folder} as /{slug}", err=True)
    if announce is not None:
        announce(slugs)
    kind = _executor_kind(executor)
    jobs: Executor
    if kind == "ray":
        from labelloop.jobs.ray_executor import RayExecutor

        jobs = RayExecutor(store, home=home, database_url=url, address=ray_address or get_settings().ray_address)
        typer.echo(f"jobs run on Ray: {jobs.resources()}", err=True)
    else:
        jobs = HueyExecutor(store, registry.paths.queue)
    app = create_app(registry, jobs)
    proc = start_worker(home, workers) if worker and kind == "local" else None
    # Requests run in threads that mostly wait on the database; a short GIL switch interval keeps one
    # CPU-busy request from delaying the others by whole 5 ms slices (p99 latency halves under load).
    sys.setswitchinterval(0.0005)
    typer.echo(f"labelloop on http://{host}:{port} (home {home}, database {store.url.split('@')[-1]})", err=True)
    try:
        # X-Forwarded-Proto/-For are believed only from these proxies (the session cookie is Secure when
        # the proxy says the page came over HTTPS)
        uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log,
                    timeout_graceful_shutdown=5, proxy_headers=True,
                    forwarded_allow_ips=get_settings().trusted_proxies)
    finally:
        if proc is not None:
            stop_worker(proc)
        jobs.close()
        registry.close()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("ls-backend")(ls_backend)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    _app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    _app.command()(serve)
    from labelloop.errors import LabelloopError

    try:
        _app()
    except LabelloopError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(1)
