"""Where weights come from, and `modelzoo fetch` with and without a network."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from modelzoo.errors import UserError
from modelzoo.manifest import load_manifest
from modelzoo.weights import fetch_weights, resolve_weights, sha256_of, weights_dir
from tests.conftest import run_cli

MANIFEST = load_manifest(Path(__file__).resolve().parent.parent / "plugin.toml")


def with_weights(**changes):
    return dataclasses.replace(MANIFEST, weights={**MANIFEST.weights, **changes})


def test_explicit_path_then_the_weights_dir_then_random(tmp_path):
    assert resolve_weights(MANIFEST, None).random
    standard = weights_dir() / MANIFEST.weights["file"]
    standard.parent.mkdir(parents=True, exist_ok=True)
    standard.write_bytes(b"standard")
    try:
        found = resolve_weights(MANIFEST, None)
        assert found.path == standard and found.sha256 == hashlib.sha256(b"standard").hexdigest()
        explicit = tmp_path / "mine.pth"
        explicit.write_bytes(b"mine")
        assert resolve_weights(MANIFEST, explicit).path == explicit.resolve()
    finally:
        standard.unlink()
    with pytest.raises(UserError, match="does not exist"):
        resolve_weights(MANIFEST, tmp_path / "missing.pth")


@pytest.fixture
def server(tmp_path):
    """A web server on loopback serving tmp_path/www."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_fetch_downloads_verifies_and_stores_atomically(server):
    www, base = server
    (www / "w.pth").write_bytes(b"weights" * 1000)
    manifest = with_weights(url=f"{base}/w.pth", size=7000, sha256=hashlib.sha256(b"weights" * 1000).hexdigest())
    path = fetch_weights(manifest)
    assert path == weights_dir() / MANIFEST.weights["file"]
    assert path.read_bytes() == b"weights" * 1000
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no partial file left
    path.unlink()


def test_fetch_refuses_a_file_whose_checksum_differs(server):
    www, base = server
    (www / "w.pth").write_bytes(b"tampered")
    manifest = with_weights(url=f"{base}/w.pth", sha256="0" * 64)
    with pytest.raises(UserError, match="sha256 differs"):
        fetch_weights(manifest)
    assert not (weights_dir() / MANIFEST.weights["file"]).exists()


def test_fetch_without_a_network_is_one_line():
    # Nothing listens on port 9 of loopback: the connection is refused at once.
    manifest = with_weights(url="http://127.0.0.1:9/lvvit.pth")
    with pytest.raises(UserError) as info:
        fetch_weights(manifest)
    message = str(info.value)
    assert "\n" not in message and "cannot download" in message and "--weights" in message
    assert not (weights_dir() / MANIFEST.weights["file"]).exists()


def test_fetch_command_reports_an_existing_file(tmp_path):
    home = tmp_path / "home"
    target = home / "weights" / MANIFEST.weights["file"]
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x")
    result = run_cli("fetch", "lvvit", env={"MODELZOO_HOME": str(home)})
    assert result.returncode == 0 and str(target) in result.stdout
    assert sha256_of(target) == hashlib.sha256(b"x").hexdigest()  # untouched
