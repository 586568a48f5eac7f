"""``bakestore metadata``, ``inspect`` and ``ui``: the generator's --check, and real servers started in a
subprocess on a free port that answer HTTP on 127.0.0.1 and stop cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bakestore.cli import main
from bakestore.inspect import METADATA_FILE, metadata_yaml
from bakestore.store import Store

from .conftest import DEVICE_A

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8")


class Server:
    """``bakestore ...`` in a subprocess; waits until 127.0.0.1:port answers."""

    def __init__(self, args: list[str], port: int, env: dict[str, str], cwd: Path) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "bakestore", *args], env=env, cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited early ({self.proc.returncode}):\n{self.proc.stdout.read()}")
            try:
                fetch(self.base + "/-/versions.json", timeout=1)
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        self.stop()
        raise AssertionError("server did not answer within 60 s")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stdout.read() if self.proc.stdout else ""


@pytest.fixture
def env(tmp_path: Path, _isolated_home: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("BAKESTORE_") and k != "PYTEST_CURRENT_TEST"}
    out["BAKESTORE_HOME"] = str(_isolated_home)
    return out


@pytest.fixture
def live(tmp_path: Path) -> Path:
    path = tmp_path / "live.db"
    with Store(path, device_id=DEVICE_A) as store:
        store.insert("ingredients", {"display_name": "Bread Flour", "slug": "bread_flour", "category": "Flour"})
    return path


# --------------------------------------------------------------------------- metadata


def test_metadata_check_passes_for_the_repository_file(runner: CliRunner) -> None:
    result = runner.invoke(main, ["metadata", "--check", "--path", str(REPO / METADATA_FILE)])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_metadata_writes_and_check_detects_drift(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / METADATA_FILE
    missing = runner.invoke(main, ["metadata", "--check", "--path", str(target)])
    assert missing.exit_code == 1 and "out of date" in missing.output
    written = runner.invoke(main, ["metadata", "--path", str(target)])
    assert written.exit_code == 0 and "written" in written.output
    assert target.read_text(encoding="utf-8") == metadata_yaml()
    assert runner.invoke(main, ["metadata", "--check", "--path", str(target)]).exit_code == 0
    again = runner.invoke(main, ["metadata", "--path", str(target)])
    assert "already up to date" in again.output
    target.write_text(metadata_yaml().replace("Generic ingredients", "Ingredients"), encoding="utf-8")
    drifted = runner.invoke(main, ["metadata", "--check", "--path", str(target)])
    assert drifted.exit_code == 1
    assert target.read_text(encoding="utf-8") != metadata_yaml()  # --check changes nothing


# --------------------------------------------------------------------------- ui: argument handling


def test_ui_refuses_a_missing_database(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["--db", str(tmp_path / "nope.db"), "ui", "--no-browser"])
    assert result.exit_code == 1
    assert "no such database" in result.output and "--demo" in result.output
    assert not (tmp_path / "nope.db").exists()


def test_ui_demo_never_uses_the_database_named_by_the_environment(
        runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _isolated_home: Path) -> None:
    served: dict[str, Any] = {}
    monkeypatch.setattr("bakestore.web.server.serve",
                        lambda ds, **kw: served.update(ds=ds, port=kw["sock"].getsockname()[1], **kw))
    import bakestore.web.server as server

    real_bind = server.bind
    asked: list[int] = []
    # The port asked for is recorded; the socket is a free one (8001 may be taken on this machine).
    monkeypatch.setattr(server, "bind", lambda port: asked.append(port) or real_bind(0))
    real = tmp_path / "real.db"
    monkeypatch.setenv("BAKESTORE_DB", str(real))
    result = runner.invoke(main, ["ui", "--demo", "--no-browser", "--port", "0"])
    assert result.exit_code == 0, result.output
    assert not real.exists()
    live = Path(served["ds"].get_database("bakestore").path)
    assert live.is_relative_to(_isolated_home) and live.name == "demo.db"
    assert served["open_path"] is None and served["port"] > 0 and asked == [0]
    # With --db given explicitly (as `make demo` does), the demo goes exactly there.
    chosen = tmp_path / "demo-here" / "demo.db"
    result = runner.invoke(main, ["--db", str(chosen), "ui", "--demo", "--no-browser"])
    assert result.exit_code == 0, result.output
    assert chosen.exists() and Path(served["ds"].get_database("bakestore").path) == chosen.resolve()
    assert asked[-1] == 8001


# --------------------------------------------------------------------------- real servers


def test_inspect_serves_read_only_on_localhost(live: Path, env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    server = Server(["--db", str(live), "inspect", "--port", str(port)], port, env, tmp_path)
    try:
        status, body = fetch(server.base + "/-/databases.json")
        assert status == 200
        databases = {d["name"]: d for d in json.loads(body)}
        assert Path(databases["bakestore"]["path"]) == live.resolve()
        status, body = fetch(server.base + "/bakestore/ingredients.json?_shape=objects")
        assert status == 200 and json.loads(body)["rows"][0]["slug"] == "bread_flour"
        status, body = fetch(server.base + "/bakestore.json?sql=insert+into+units(code)+values('x')")
        assert status == 400
        assert fetch(server.base + "/data")[0] == 404  # inspect has no UI routes
        with pytest.raises(OSError):  # 127.0.0.1 only
            _connect_elsewhere(port)
    finally:
        output = server.stop()
    assert "http://127.0.0.1:" in output


def _connect_elsewhere(port: int) -> None:
    """Connect to the port on a non-loopback address of this machine (raises if nothing listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET: no packet is sent, picks the outgoing interface
            address = probe.getsockname()[0]
        except OSError:
            address = "127.0.0.1"
    if address.startswith("127."):
        raise OSError("no non-loopback interface to test against")
    with socket.create_connection((address, port), timeout=2):
        pass


def test_inspect_serves_case_databases(live: Path, env: dict[str, str], tmp_path: Path) -> None:
    from bakestore.forensics import analyze

    case = tmp_path / "case1"
    analyze(live, case)
    port = free_port()
    server = Server(["--db", str(live), "inspect", "--port", str(port), "--case", str(case)], port, env, tmp_path)
    try:
        status, body = fetch(server.base + "/case_case1/free_page_ratio.json?_shape=objects")
        assert status == 200 and json.loads(body)["ok"] is True
    finally:
        server.stop()


def test_ui_demo_builds_the_demo_database_and_serves_the_ui(env: dict[str, str], tmp_path: Path) -> None:
    demo = tmp_path / ".bakestore-demo" / "demo.db"
    port = free_port()
    server = Server(["--db", str(demo), "ui", "--demo", "--port", str(port), "--no-browser"], port, env, tmp_path)
    try:
        assert demo.exists()
        status, body = fetch(server.base + "/")
        assert status == 200 and "<h1>Dashboard</h1>" in body and "demo data" in body
        status, body = fetch(server.base + "/data/ingredients")
        assert status == 200 and 'href="/data/ingredients/' in body
        status, body = fetch(server.base + "/bakestore/recipes.json?_size=1")
        assert status == 200  # every table read-only in Datasette on the same server
        status, body = fetch(server.base + "/-/static-bakestore/bakestore.css")
        assert status == 200 and "--accent" in body
    finally:
        server.stop()
