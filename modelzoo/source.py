"""The upstream-source route: a model's original repository at a pinned commit, with its patches.

ModelZoo models are made by cloning the author's repository, checking out one commit and applying
the ModelZoo patches. `prepare_source` does exactly that, from a manifest's ``[source]`` table, and
checks each step, so that a moved commit or a patch that stopped applying is one clear line instead
of a model that silently differs.

The prepared checkout holds a marker file (MARKER) recording what was done and a hash of the
resulting tree, so that a later call can reuse it only when it is still exactly that.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelzoo.errors import UserError
from modelzoo.manifest import Manifest
from modelzoo.weights import modelzoo_home

if TYPE_CHECKING:
    from modelzoo.core import ModelEntry

log = logging.getLogger(__name__)

MARKER = ".modelzoo-source.json"
# Kept out of the tree hash: the marker itself, and bytecode that importing upstream code writes.
EXCLUDED = (MARKER, "__pycache__/", "*.py[cod]")
# A commit must be a hash, not a branch or tag, or the build would change under the user's feet.
COMMIT_RE = re.compile(r"[0-9a-fA-F]{7,40}")


def prepare_source(manifest: Manifest, dest: Path, from_dir: Path | None = None) -> Path:
    """Clone the manifest's repository (or copy the local checkout `from_dir`) to `dest`, check
    out the pinned commit and apply the patches; reuse `dest` if it is already exactly that."""
    git = _git_executable()
    dest = Path(dest).absolute()
    repo: str = manifest.source["repo"]
    commit: str = manifest.source["commit"]
    if not COMMIT_RE.fullmatch(commit):
        raise UserError(f"{manifest.path}: [source] commit {commit!r} must be a commit hash "
                        "(7 to 40 hex digits), not a branch or tag; pin the commit")
    patches = _patches(manifest)
    wanted = {"repo": repo, "commit": commit,
              "patches": [{"path": rel, "sha256": _sha256(path)} for rel, path in patches]}

    if dest.exists() and _reusable(git, dest, wanted):
        log.info("reusing %s: already %s at %s with %d patch(es) applied", dest, repo, commit, len(patches))
        return dest

    # Work in a sibling temporary directory and rename at the end: a failed step never leaves a
    # half-prepared dest that a later call could mistake for a good one.
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        _clone(git, repo, work, from_dir)
        resolved = _checkout(git, work, repo, commit)
        for rel, path in patches:
            _apply(git, work, path, rel, repo, commit)
        _exclude(work)
        marker = dict(wanted, resolved_commit=resolved, tree=_tree_hash(git, work),
                      cloned_from=str(from_dir) if from_dir else repo)
        (work / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        if dest.exists():
            dest.rmdir()  # _reusable accepted it only because it is empty
        work.rename(dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("prepared %s: %s at %s with %d patch(es)", dest, repo, resolved[:12], len(patches))
    return dest


def read_marker(checkout: Path) -> dict[str, Any] | None:
    """What prepare_source recorded in `checkout`, or None for a checkout it did not make."""
    try:
        return json.loads((Path(checkout) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _git_executable() -> str:
    git = shutil.which("git")
    if git is None:
        raise UserError("git is not installed or not on PATH; install git to use the upstream source route")
    return git


def _run(git: str, args: list[str], cwd: Path | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run git with an argument list (never a shell), logging the command line."""
    cmd = [git, *args]
    log.info("$ %s%s", shlex.join(cmd), f"  (in {cwd})" if cwd else "")
    # No credential prompt: a private or mistyped URL must fail, not wait for a password.
    full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    try:
        return subprocess.run(cmd, check=False, cwd=cwd, env=full_env, capture_output=True, text=True)
    except FileNotFoundError:
        raise UserError(f"could not run {git}; install git to use the upstream source route") from None


def _reason(result: subprocess.CompletedProcess[str]) -> str:
    """git's last error line, to quote in a one-line message."""
    lines = [line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {result.returncode}"


def _patches(manifest: Manifest) -> list[tuple[str, Path]]:
    patches = []
    for rel in manifest.source.get("patches", []):
        path = manifest.root / rel
        if not path.is_file():
            raise UserError(f"{manifest.path}: [source] patch {rel!r} not found at {path}; "
                            "fix the path (relative to the plugin directory)")
        patches.append((rel, path))
    return patches


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _reusable(git: str, dest: Path, wanted: dict[str, Any]) -> bool:
    """True if dest is a finished checkout for `wanted`; False if it is an empty directory
    (prepare into it); otherwise a one-line error, since it is not ours to overwrite."""
    if not dest.is_dir():
        raise UserError(f"{dest} exists and is not a directory; remove it or choose another --dest")
    if not any(dest.iterdir()):
        return False
    marker = read_marker(dest)
    if marker is None:
        raise UserError(f"{dest} exists and is not a checkout prepared by modelzoo (no {MARKER}); "
                        "remove it or choose another --dest")
    recorded = {key: marker.get(key) for key in wanted}
    if recorded != wanted:
        raise UserError(f"{dest} was prepared for {marker.get('repo')} at {marker.get('commit')} with other "
                        "patches or another commit; remove it or choose another --dest")
    head = _run(git, ["rev-parse", "HEAD"], cwd=dest)
    if head.returncode != 0 or head.stdout.strip() != marker.get("resolved_commit"):
        raise UserError(f"{dest} is no longer at commit {wanted['commit']}; "
                        "remove it or choose another --dest")
    if _tree_hash(git, dest) != marker.get("tree"):
        raise UserError(f"{dest} has local changes since it was prepared; "
                        "remove it or choose another --dest")
    return True


def _clone(git: str, repo: str, work: Path, from_dir: Path | None) -> None:
    if from_dir is not None:
        # A copy of the local checkout's history (its own files are never touched), so the offline
        # route goes through the same checkout and patch steps as a fresh clone.
        result = _run(git, ["clone", "--quiet", "--no-hardlinks", "--no-checkout",
                            str(Path(from_dir).absolute()), str(work)])
        if result.returncode != 0:
            raise UserError(f"--from {from_dir}: not a git checkout of {repo} ({_reason(result)}); "
                            "pass the directory of a 'git clone' of it")
        return
    result = _run(git, ["clone", "--quiet", "--no-checkout", repo, str(work)])
    if result.returncode != 0:
        raise UserError(f"could not clone {repo} ({_reason(result)}); check the network, or clone it "
                        "on a machine that can and pass that directory with --from DIR")


def _checkout(git: str, work: Path, repo: str, commit: str) -> str:
    """Check out `commit` (possibly abbreviated) and return the full hash HEAD resolves to."""
    found = _run(git, ["rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"], cwd=work)
    if found.returncode != 0:
        raise UserError(f"commit {commit} is not in {repo} (or is ambiguous); fix [source] commit "
                        "in the manifest, or pass --from a checkout that has it")
    full = found.stdout.strip()
    result = _run(git, ["checkout", "--quiet", "--detach", full], cwd=work)
    head = _run(git, ["rev-parse", "HEAD"], cwd=work).stdout.strip()
    if result.returncode != 0 or head != full or not full.startswith(commit.lower()):
        raise UserError(f"could not check out {commit} of {repo} ({_reason(result)}); "
                        "remove the destination and retry")
    return full


def _apply(git: str, work: Path, patch: Path, rel: str, repo: str, commit: str) -> None:
    # --check first, so that a patch that no longer applies changes nothing and is reported as such.
    check = _run(git, ["apply", "--check", str(patch)], cwd=work)
    if check.returncode != 0:
        raise UserError(f"patch {rel} ({patch}) does not apply to {repo} at {commit} ({_reason(check)}); "
                        "update the patch for this commit or pin the commit it was made for")
    result = _run(git, ["apply", str(patch)], cwd=work)
    if result.returncode != 0:
        raise UserError(f"patch {rel} ({patch}) failed on {repo} at {commit} ({_reason(result)}); "
                        "update the patch for this commit")


def _exclude(work: Path) -> None:
    """Keep the marker and bytecode out of `git status` and of the tree hash."""
    exclude = work / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    with exclude.open("a", encoding="utf-8") as f:
        f.write("\n# modelzoo: prepared-source marker and bytecode\n" + "\n".join(EXCLUDED) + "\n")


def _tree_hash(git: str, checkout: Path) -> str:
    """git's tree hash of the whole working tree (tracked, changed and new files), computed in a
    scratch index so the checkout's own index is left as it is."""
    git_dir = checkout / ".git"
    index = git_dir / "modelzoo-index"
    try:
        if (git_dir / "index").is_file():
            shutil.copyfile(git_dir / "index", index)  # starts from known stat data: faster
        env = {"GIT_INDEX_FILE": str(index)}
        added = _run(git, ["add", "--all", "."], cwd=checkout, env=env)
        tree = _run(git, ["write-tree"], cwd=checkout, env=env)
    finally:
        index.unlink(missing_ok=True)
    if added.returncode != 0 or tree.returncode != 0:
        failed = added if added.returncode != 0 else tree
        raise UserError(f"{checkout}: git cannot read this checkout ({_reason(failed)}); "
                        "remove it or choose another --dest")
    return tree.stdout.strip()


def default_source_dir(model: str) -> Path:
    return modelzoo_home() / "sources" / model


def upstream_checkout(entry: ModelEntry, source_dir: Path | None) -> Path:
    """The prepared checkout a run builds from with --model-source upstream (reused when ready)."""
    if entry.build_upstream is None:
        raise UserError(f"model '{entry.name}' has no upstream build; use --model-source builtin")
    return prepare_source(entry.manifest, source_dir or default_source_dir(entry.name))
