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
import stat
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

from priorlab.analysis.schema import StoreError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


# No image priorlab writes comes near this (a 4096² RGB PNG is under 50 MB); a larger "artifact"
# is not one, and a reader (the dashboard) must not spend its memory on it.
MAX_ARTIFACT_BYTES = 64 << 20


class ArtifactCorrupt(StoreError):
    """An artifact file whose bytes no longer hash to the name it is stored under."""


class ArtifactRefused(ArtifactCorrupt):
    """Where an artifact should be there is something no reader should read: a symbolic link,
    a device or FIFO, or a file larger than `MAX_ARTIFACT_BYTES`."""


def read_regular(path: Path, limit: int) -> bytes | None:
    """The bytes of the regular file `path` (None when missing). A symbolic link at `path`, a
    device (`/dev/zero` reads forever), a FIFO (blocks a reader forever) or a file over `limit`
    bytes is `ArtifactRefused`, found before reading a byte."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError:
        if os.path.islink(path):
            raise ArtifactRefused(f"{path}: a symbolic link where an artifact file belongs; not read "
                                  "(`priorlab check` lists it)") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ArtifactRefused(f"{path}: not a regular file (a device, FIFO or socket) where an "
                                  "artifact belongs; not read")
        if st.st_size > limit:
            raise ArtifactRefused(f"{path}: {st.st_size} bytes, more than any artifact "
                                  f"({limit} bytes at most); not read")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
        if len(data) > limit:  # it grew while being read
            raise ArtifactRefused(f"{path}: more than {limit} bytes; not read")
        return data
    finally:
        os.close(fd)


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

    def put_artifacts(self, pngs: list[bytes]) -> list[tuple[str, int, int]]:
        return [self.put_artifact(png) for png in pngs]

    def read_artifact(self, sha256: str, *, verify: bool = False, hint: str = "") -> bytes | None:
        """The bytes of `sha256`, or None when the file is missing; `verify`: `ArtifactCorrupt`
        when they do not hash to `sha256` (`hint` names the store for the fix)."""
        path = self.artifact_path(sha256)
        data = read_regular(path, MAX_ARTIFACT_BYTES)
        if data is None:
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
        """Every regular file under the artifact folder (temporary files included), with its
        mtime. Symbolic links are never followed nor listed (`links()` names them): a link may
        lead out of the store, and nothing outside it is the store's to judge or remove."""
        if not self._own_dir(self.artifact_dir):
            return
        for folder, dirs, files in os.walk(self.artifact_dir):  # os.walk never enters linked folders
            dirs.sort()
            for name in sorted(files):
                path = Path(folder) / name
                st = path.lstat()
                if stat.S_ISREG(st.st_mode):
                    yield path, st.st_mtime

    def links(self) -> list[Path]:
        """Symbolic links (and other non-regular entries: FIFOs, devices) inside the artifact
        and shard folders, or those folders themselves when they are links: what `check`
        skips and says it skipped."""
        found = []
        for top in (self.artifact_dir, self.shard_dir):
            if top.is_symlink():
                found.append(top)
                continue
            if not top.is_dir():
                continue
            for folder, dirs, files in os.walk(top):
                for name in sorted(dirs + files):
                    path = Path(folder) / name
                    mode = path.lstat().st_mode
                    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                        found.append(path)
        return sorted(found)

    def _own_dir(self, folder: Path) -> bool:
        """A real folder of this store (not a link to one somewhere else)."""
        return folder.is_dir() and not folder.is_symlink()

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
        if not self._own_dir(self.shard_dir):
            return
        for folder in sorted(self.shard_dir.iterdir()):
            if folder.is_dir() and not folder.is_symlink():
                yield folder.name, folder, folder.stat().st_mtime

    # ------------------------------------------------------------------ removing

    def remove(self, path: Path) -> bool:
        """Remove a file or folder this object listed (`priorlab check --repair`); True when it
        is gone. Never a symbolic link or anything it leads to, never a path outside the
        store's own folders: such a path is left alone and False returned."""
        path = Path(path)
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return False
        # No link anywhere between the store folder and the path, and inside one of its folders.
        if (len(rel.parts) < 2 or rel.parts[0] not in ("artifacts", "shards")
                or Path(os.path.realpath(path)) != Path(os.path.realpath(self.root)) / rel):
            return False
        if path.is_dir():
            for folder, dirs, files in os.walk(path):  # a link inside the folder blocks its removal
                if any((Path(folder) / n).is_symlink() for n in dirs + files):
                    return False
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        return not os.path.lexists(path)

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
