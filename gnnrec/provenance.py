"""Which code produced a result: git commit, uncommitted changes, package version and command line.

A run records ``code_version()`` so a reader can tell whether two results came from the same code, and the
benchmark runner reuses a finished cell only when ``version_key`` is unchanged. The diff hash covers
``git diff HEAD`` (staged and unstaged changes to tracked files) plus the path and content of every untracked,
not-ignored file, so any change to the working tree changes it.
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gnnrec

_GIT_TIMEOUT_S = 20


class _GitError(RuntimeError):
    pass


def _git(args: Sequence[str], cwd: Path) -> bytes:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=_GIT_TIMEOUT_S)
    except FileNotFoundError as exc:
        raise _GitError("git is not installed") from exc
    except (OSError, subprocess.SubprocessError) as exc:
        raise _GitError(f"git {' '.join(args)} failed: {exc}") from exc
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise _GitError(f"git {' '.join(args)} in {cwd}: {message[-1] if message else f'exit {proc.returncode}'}")
    return proc.stdout


def command_line(argv: Sequence[str] | None = None) -> str:
    """The process's argv (default ``sys.argv``), shell-quoted so it can be pasted back into a shell."""
    return shlex.join(sys.argv if argv is None else argv)


def _diff_hash(root: Path) -> tuple[str, bool]:
    """sha256 over ``git diff HEAD`` and the untracked files; ``dirty`` is whether either is non-empty."""
    digest = hashlib.sha256()
    diff = _git(["diff", "HEAD", "--no-color", "--no-ext-diff", "--binary"], root)
    digest.update(b"diff\0" + diff)
    untracked = _git(["ls-files", "--others", "--exclude-standard", "-z"], root).split(b"\0")
    untracked = sorted(name for name in untracked if name)
    for name in untracked:
        digest.update(b"\0untracked\0" + name + b"\0")
        path = root / name.decode(errors="surrogateescape")
        try:
            digest.update(path.read_bytes() if not path.is_symlink() else str(path.readlink()).encode())
        except OSError:
            digest.update(b"<unreadable>")
    return digest.hexdigest(), bool(diff) or bool(untracked)


def code_version(repo_dir: str | Path | None = None, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Provenance of the code in ``repo_dir`` (default: the checkout holding this package).

    Returns ``commit``, ``commit_short``, ``dirty``, ``diff_sha256`` (hash of the uncommitted changes, see the
    module docstring; the same value for a clean tree at any commit), ``gnnrec_version``, ``command`` and
    ``reason`` (None, or why the git fields are None: not a checkout, git missing, ...).
    """
    info: dict[str, Any] = {
        "commit": None,
        "commit_short": None,
        "dirty": None,
        "diff_sha256": None,
        "gnnrec_version": gnnrec.__version__,
        "command": command_line(argv),
        "reason": None,
    }
    package_dir = Path(__file__).resolve().parent
    start = Path(repo_dir) if repo_dir is not None else package_dir
    try:
        root = Path(_git(["rev-parse", "--show-toplevel"], start).decode().strip())
        if repo_dir is None and not _git(["ls-files", "--", str(package_dir / "__init__.py")], root).strip():
            # e.g. a non-editable install into a virtualenv that lives inside some checkout
            raise _GitError(f"gnnrec at {package_dir} is not tracked by the git checkout {root} (an installed copy?)")
        commit = _git(["rev-parse", "HEAD"], root).decode().strip()
        diff_sha256, dirty = _diff_hash(root)
    except _GitError as exc:
        info["reason"] = str(exc)
        return info
    info.update(commit=commit, commit_short=commit[:7], dirty=dirty, diff_sha256=diff_sha256)
    return info


def version_key(prov: dict[str, Any]) -> str:
    """A short key that changes whenever the code changes: ``<commit>+<diff hash>``, or the package version
    (prefixed ``nogit:``) when the git fields are unknown."""
    if prov.get("commit") is None:
        return f"nogit:{prov.get('gnnrec_version')}"
    return f"{prov['commit']}+{prov['diff_sha256'][:16]}"
