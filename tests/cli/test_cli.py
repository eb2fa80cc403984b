"""The real `labelloop` command in a subprocess: exit codes, one-line errors, --json."""

from __future__ import annotations

import json

from factories import make_dataset
from helpers import run
from labelloop.formats import WriteOptions, get_format


def test_init_import_stats_export_split_labels(tmp_path):
    ds = make_dataset(tmp_path / "src", n_images=12, with_proposals=True)
    get_format("coco").write(ds, tmp_path / "coco", WriteOptions())
    proj = tmp_path / "proj"
    assert run("init", str(proj), "--task", "detect", "--labels", "cat,dog").returncode == 0
    r = run("import", str(tmp_path / "coco"), "--json", cwd=proj)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["images_added"] == 12 and report["labels_added"] == ["bird"]
    r = run("split", "--val", "0.25", "--json", "-p", str(proj))
    assert json.loads(r.stdout)["totals"]["val"] >= 2
    stats = json.loads(run("stats", "--json", "-p", str(proj)).stdout)
    assert stats["images"]["total"] == 12
    assert sum(stats["images"]["by_split"].values()) == 12
    assert {c["name"] for c in stats["classes"]} == {"cat", "dog", "bird"}
    r = run("export", str(tmp_path / "out"), "--format", "coco", "--split", "val", "--no-images", "--json",
            "-p", str(proj))
    assert r.returncode == 0, r.stderr
    exported = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert len(exported["images"]) == json.loads(r.stdout)["images"] == stats["images"]["by_split"]["val"]
    assert run("labels", "rename", "bird", "sparrow", "-p", str(proj)).returncode == 0
    names = [c["name"] for c in json.loads(run("labels", "list", "--json", "-p", str(proj)).stdout)]
    assert names == ["cat", "dog", "sparrow"]


def test_errors_are_one_line_without_traceback(tmp_path):
    r = run("stats", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip().startswith("error: no labelloop project")
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    run("init", str(tmp_path / "p"))
    (tmp_path / "bad.json").write_text('{"images": [1, 2')
    r = run("import", str(tmp_path / "bad.json"), "--format", "coco", "-p", str(tmp_path / "p"))
    assert r.returncode == 1 and "invalid JSON" in r.stderr and "Traceback" not in r.stderr
    r = run("init", str(tmp_path / "p"))
    assert r.returncode == 1 and "already holds" in r.stderr
    r = run("export", str(tmp_path / "o"), "--format", "nope", "-p", str(tmp_path / "p"))
    assert r.returncode == 1 and "expected one of" in r.stderr
    (tmp_path / "a-file").write_text("")
    r = run("init", str(tmp_path / "a-file" / "p"))
    assert r.returncode == 1 and "cannot create the project folder" in r.stderr and "Traceback" not in r.stderr
    r = run("export", str(tmp_path / "a-file"), "--format", "coco", "-p", str(tmp_path / "p"))
    assert r.returncode == 1 and "an export is a folder" in r.stderr
    r = run("report", "--out", str(tmp_path / "r.txt"), "-p", str(tmp_path / "p"))
    assert r.returncode == 1 and "e.g. report.png" in r.stderr and "Traceback" not in r.stderr


def test_serve_refuses_an_unusable_address_before_starting(tmp_path, monkeypatch):
    import socket

    monkeypatch.setenv("LABELLOOP_HOME", str(tmp_path / "home"))
    r = run("serve", "--port", "99999")
    assert r.returncode == 1 and "port 99999 is out of range" in r.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run("serve", "--port", str(port))
    assert r.returncode == 1 and "Address already in use" in r.stderr and "another --port" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "home").exists()  # nothing set up


def test_demo_creates_a_ready_project(tmp_path):
    r = run("demo", str(tmp_path / "demo"), "--images", "12", "--labelled", "8", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["import"]["images_added"] == 12
    stats = json.loads(run("stats", "--json", "-p", str(tmp_path / "demo")).stdout)
    assert stats["images"]["by_status"]["annotated"] == 8


def test_serving_beyond_loopback_warns_about_plain_http() -> None:
    from labelloop.cli.serve import exposure_warning

    assert exposure_warning("127.0.0.1") is None and exposure_warning("::1") is None
    assert exposure_warning("localhost") is None
    for host in ("0.0.0.0", "192.168.1.20", "::"):
        warning = exposure_warning(host) or ""
        assert "plain HTTP" in warning and "TLS proxy" in warning, host
