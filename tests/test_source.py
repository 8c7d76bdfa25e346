"""The upstream-source route (modelzoo.source.prepare_source) on a small local git repository.

No network: the "upstream" is a repository made in the test, cloned by path or copied with
from_dir, so every step (pinned commit, patches, marker, reuse, refusals) runs for real.
"""
from __future__ import annotations

import json
import logging
import re
import subprocess
from pathlib import Path

import pytest

from modelzoo.errors import UserError
from modelzoo.manifest import Manifest, load_manifest
from modelzoo.source import MARKER, prepare_source, read_marker

REAL_MANIFEST = Path(__file__).resolve().parents[1] / "plugin.toml"

# A patch for the pinned (first) commit, and one written for the second commit's text.
GOOD_PATCH = """\
--- a/greeting.txt
+++ b/greeting.txt
@@ -1,2 +1,2 @@
 hello
-world
+planet
"""
STALE_PATCH = GOOD_PATCH.replace("-world", "-there")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def upstream(tmp_path_factory) -> tuple[Path, str]:
    """A repository with two commits; returns it and the full hash of the first one."""
    repo = tmp_path_factory.mktemp("upstream")
    git(repo, "init", "--quiet")
    (repo / "greeting.txt").write_text("hello\nworld\n")
    git(repo, "add", "greeting.txt")
    git(repo, "commit", "--quiet", "-m", "first")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "greeting.txt").write_text("hello\nthere\n")
    git(repo, "commit", "--quiet", "-am", "second")
    return repo, first


def make_manifest(tmp_path: Path, repo: str, commit: str, patches: dict[str, str]) -> Manifest:
    """The real plugin.toml with its [source] table replaced, and the patch files beside it."""
    plugin = tmp_path / "plugin"
    (plugin / "patches").mkdir(parents=True, exist_ok=True)
    for name, text in patches.items():
        (plugin / "patches" / name).write_text(text)
    listed = ", ".join(f'"patches/{name}"' for name in patches)
    source = f'[source]\nrepo = "{repo}"\ncommit = "{commit}"\npatches = [{listed}]\n\n'
    text = re.sub(r"\[source\]\n.*?\n(?=\[)", lambda _: source, REAL_MANIFEST.read_text(), flags=re.DOTALL)
    (plugin / "plugin.toml").write_text(text)
    return load_manifest(plugin / "plugin.toml")


def one_line_error(*args, **kwargs) -> str:
    with pytest.raises(UserError) as info:
        prepare_source(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_clones_pinned_commit_and_applies_patch(upstream, tmp_path, caplog):
    repo, first = upstream
    manifest = make_manifest(tmp_path, str(repo), first[:7], {"good.patch": GOOD_PATCH})
    with caplog.at_level(logging.INFO, logger="modelzoo.source"):
        dest = prepare_source(manifest, tmp_path / "src")
    assert dest == tmp_path / "src"
    assert (dest / "greeting.txt").read_text() == "hello\nplanet\n"
    assert git(dest, "rev-parse", "HEAD") == first
    assert git(dest, "status", "--porcelain") == "M greeting.txt"  # the patch only; marker excluded
    marker = read_marker(dest)
    assert marker["repo"] == str(repo) and marker["commit"] == first[:7]
    assert marker["resolved_commit"] == first
    assert [p["path"] for p in marker["patches"]] == ["patches/good.patch"]
    assert len(marker["patches"][0]["sha256"]) == 64
    assert "git apply --check" in caplog.text and "git clone" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plugin", "src"]  # no temporary left behind


def test_from_dir_copies_local_checkout_without_touching_it(upstream, tmp_path):
    repo, first = upstream
    manifest = make_manifest(tmp_path, "https://example.invalid/never-contacted", first,
                             {"good.patch": GOOD_PATCH})
    dest = prepare_source(manifest, tmp_path / "src", from_dir=repo)
    assert (dest / "greeting.txt").read_text() == "hello\nplanet\n"
    assert (repo / "greeting.txt").read_text() == "hello\nthere\n"
    assert git(repo, "status", "--porcelain") == ""
    assert json.loads((dest / MARKER).read_text())["cloned_from"] == str(repo)


def test_reuses_prepared_dest(upstream, tmp_path, caplog):
    repo, first = upstream
    manifest = make_manifest(tmp_path, str(repo), first, {"good.patch": GOOD_PATCH})
    dest = prepare_source(manifest, tmp_path / "src")
    (dest / "__pycache__").mkdir()  # importing upstream code may write bytecode: still reusable
    (dest / "__pycache__" / "greeting.cpython-311.pyc").write_bytes(b"\0")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="modelzoo.source"):
        assert prepare_source(manifest, dest) == dest
    assert "reusing" in caplog.text and "git clone" not in caplog.text


def test_patch_that_no_longer_applies(upstream, tmp_path):
    repo, first = upstream
    manifest = make_manifest(tmp_path, str(repo), first[:8],
                             {"good.patch": GOOD_PATCH, "stale.patch": STALE_PATCH})
    message = one_line_error(manifest, tmp_path / "src")
    assert message.startswith("patch patches/stale.patch (")
    assert f"does not apply to {repo} at {first[:8]}" in message
    assert "update the patch" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plugin"]  # nothing half-prepared


def test_commit_not_in_repository(upstream, tmp_path):
    repo, _ = upstream
    manifest = make_manifest(tmp_path, str(repo), "deadbeef", {})
    message = one_line_error(manifest, tmp_path / "src")
    assert message.startswith(f"commit deadbeef is not in {repo}")
    assert not (tmp_path / "src").exists()


def test_missing_patch_file(upstream, tmp_path):
    repo, first = upstream
    manifest = make_manifest(tmp_path, str(repo), first, {"good.patch": GOOD_PATCH})
    (manifest.root / "patches" / "good.patch").unlink()
    assert "patch 'patches/good.patch' not found" in one_line_error(manifest, tmp_path / "src")


def test_commit_must_be_a_hash(upstream, tmp_path):
    repo, _ = upstream
    manifest = make_manifest(tmp_path, str(repo), "master", {})
    assert "must be a commit hash" in one_line_error(manifest, tmp_path / "src")


def test_dirty_or_foreign_dest_is_refused(upstream, tmp_path):
    repo, first = upstream
    manifest = make_manifest(tmp_path, str(repo), first, {"good.patch": GOOD_PATCH})
    dest = prepare_source(manifest, tmp_path / "src")

    (dest / "greeting.txt").write_text("hello\nedited\n")
    assert "has local changes since it was prepared" in one_line_error(manifest, dest)
    (dest / "greeting.txt").write_text("hello\nplanet\n")
    (dest / "extra.txt").write_text("new\n")
    assert "has local changes since it was prepared" in one_line_error(manifest, dest)
    (dest / "extra.txt").unlink()
    assert prepare_source(manifest, dest) == dest  # back to exactly what was prepared

    unpatched = make_manifest(tmp_path / "other", str(repo), first, {})
    assert "was prepared for" in one_line_error(unpatched, dest)

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine\n")
    assert "is not a checkout prepared by modelzoo" in one_line_error(manifest, foreign)
    assert (foreign / "notes.txt").read_text() == "mine\n"


def test_clone_failure_suggests_from(tmp_path):
    manifest = make_manifest(tmp_path, str(tmp_path / "no-such-repo"), "9dbfd59", {})
    message = one_line_error(manifest, tmp_path / "src")
    assert message.startswith(f"could not clone {tmp_path / 'no-such-repo'}") and "--from DIR" in message


def test_from_dir_that_is_not_a_checkout(tmp_path):
    manifest = make_manifest(tmp_path, "https://example.invalid/x", "9dbfd59", {})
    (tmp_path / "empty").mkdir()
    assert "not a git checkout" in one_line_error(manifest, tmp_path / "src", from_dir=tmp_path / "empty")


def test_missing_git(tmp_path, monkeypatch):
    manifest = make_manifest(tmp_path, "https://example.invalid/x", "9dbfd59", {})
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert one_line_error(manifest, tmp_path / "src").startswith("git is not installed")
