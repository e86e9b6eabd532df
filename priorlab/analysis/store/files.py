"""The store's files: content-addressed artifacts and the shard outputs waiting for their run.

```
<root>/artifacts/ab/abcdef….png      artifact files named by the SHA-256 of their bytes
<root>/shards/<run_id>/00000.npz     a sharded run's scored shards, until the run finishes
```

This module is the one place that knows this layout: the store writes and reads artifacts
through it, the sweep's writer keeps shards through it, and `priorlab check` audits both.
Every file is written to a temporary name beside its place and renamed, so a reader or a
crash never sees half a file. Files carry no rows: the database says which ones are used.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

from priorlab.analysis.schema import StoreError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


class ArtifactCorrupt(StoreError):
    """An artifact file whose bytes no longer hash to the name it is stored under."""


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; ValueError when `data` is not a PNG."""
    if len(data) < 24 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError(f"not PNG bytes (starts with {bytes(data[:16])!r})")
    return struct.unpack(">II", data[16:24])


def check_sha(sha256: str) -> str:
    if not isinstance(sha256, str) or not _SHA_RE.match(sha256):
        raise ValueError(f"not a lowercase hex sha256: {sha256!r}")
    return sha256


class LocalFiles:
    """Artifacts and shards in folders on this machine's disk (the store folder by default).

    `fsync=False` skips flushing files to disk before their rename (bulk loads).
    """

    def __init__(self, root: str | os.PathLike, *, fsync: bool = True):
        self.root = Path(root)
        self.artifact_dir = self.root / "artifacts"
        self.shard_dir = self.root / "shards"
        self.fsync = fsync

    def __repr__(self) -> str:
        return f"LocalFiles({str(self.root)!r})"

    # ------------------------------------------------------------------ artifacts

    def artifact_path(self, sha256: str) -> Path:
        """Where the file of `sha256` lives (whether or not it exists)."""
        check_sha(sha256)
        return self.artifact_dir / sha256[:2] / f"{sha256}.png"

    def put_artifact(self, png: bytes) -> tuple[str, int, int]:
        """Write an artifact file if its content is not stored yet; return (sha256, width, height)."""
        png = bytes(png)
        width, height = png_size(png)
        sha = hashlib.sha256(png).hexdigest()
        path = self.artifact_path(sha)
        # Skip the write only when the file there really is this content: a file of the right
        # size with damaged bytes (a bad disk, a partial copy) is replaced, not trusted.
        try:
            if path.stat().st_size == len(png) and file_sha256(path) == sha:
                return sha, width, height
        except FileNotFoundError:
            pass
        self._write_atomic(path, png, prefix=f".{sha[:12]}.")
        return sha, width, height

    def read_artifact(self, sha256: str, *, verify: bool = False, hint: str = "") -> bytes | None:
        """The bytes of `sha256`, or None when the file is missing; `verify`: `ArtifactCorrupt`
        when they do not hash to `sha256` (`hint` names the store for the fix)."""
        path = self.artifact_path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        if verify and hashlib.sha256(data).hexdigest() != sha256:
            raise ArtifactCorrupt(f"{path}: corrupted artifact (its bytes do not match its sha256; "
                                  f"`priorlab check --store {hint or self.root}` lists every damaged file)")
        return data

    def artifact_ok(self, sha256: str) -> bool | None:
        """None when the file of `sha256` is missing, else whether its bytes hash to its name."""
        path = self.artifact_path(sha256)
        if not path.is_file():
            return None
        return file_sha256(path) == sha256

    def has_artifact_dir(self) -> bool:
        return self.artifact_dir.is_dir()

    def artifact_files(self) -> Iterator[tuple[Path, float]]:
        """Every file under the artifact folder (temporary files included), with its mtime."""
        if not self.artifact_dir.is_dir():
            return
        for path in sorted(self.artifact_dir.rglob("*")):
            if path.is_file():
                yield path, path.stat().st_mtime

    # ------------------------------------------------------------------ shards

    # Shard outputs of a sharded run (e.g. scored StyleGAN samples) wait here, beside the
    # store, until the run's finishing trial collects them; kept on disk so a resumed sweep
    # does not score a shard twice.
    def shard_path(self, run_id: str, index: int) -> Path:
        return self.shard_dir / run_id / f"{index:05d}.npz"

    def put_shard(self, run_id: str, index: int, data: bytes) -> None:
        path = self.shard_path(run_id, index)
        self._write_atomic(path, data, prefix=f".{index:05d}.")

    def shards_present(self, run_id: str) -> list[int]:
        folder = self.shard_dir / run_id
        return sorted(int(p.stem) for p in folder.glob("*.npz")) if folder.is_dir() else []

    def get_shards(self, run_id: str, n_shards: int) -> list[bytes]:
        missing = [i for i in range(n_shards) if not self.shard_path(run_id, i).is_file()]
        if missing:
            raise RuntimeError(f"run {run_id}: shards {missing} of {n_shards} were never scored")
        return [self.shard_path(run_id, i).read_bytes() for i in range(n_shards)]

    def drop_shards(self, run_id: str) -> None:
        """Forget a run's shards (it finished: they are never read again)."""
        shutil.rmtree(self.shard_dir / run_id, ignore_errors=True)

    def shard_runs(self) -> Iterator[tuple[str, Path, float]]:
        """(run_id, folder, mtime) of every run with a shard folder."""
        if not self.shard_dir.is_dir():
            return
        for folder in sorted(self.shard_dir.iterdir()):
            if folder.is_dir():
                yield folder.name, folder, folder.stat().st_mtime

    # ------------------------------------------------------------------ removing

    def remove(self, path: Path) -> None:
        """Remove a file or folder this object listed (`priorlab check --repair`)."""
        if Path(path).is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            Path(path).unlink(missing_ok=True)

    def _write_atomic(self, path: Path, data: bytes, prefix: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
