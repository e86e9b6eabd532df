"""The store's files in object storage or any other fsspec filesystem (`--artifacts s3://bucket/prefix`,
`gs://…`, `memory://…`): the same layout as a store folder (`artifacts/ab/<sha256>.png`,
`shards/<run_id>/00000.npz`, see `files.py`), so content addressing works across stores: two
groups writing the same image into one bucket store it once.

An object store writes each object whole (a PUT is atomic), so there is no temporary file to
rename, and a PUT of the same bytes under the same key is harmless: an artifact is uploaded
without asking whether it is there (a later sweep that logs an image thereby also restores a
lost or damaged copy), once per writer process. Credentials and endpoints come only
from the libraries' own environment and config files (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`,
`~/.aws/config`, `GOOGLE_APPLICATION_CREDENTIALS`, `FSSPEC_S3_*`): never from a URL or the store.
Any failure to reach the service is a one-line `StoreError` naming the URL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from priorlab.analysis.schema import StoreAway, StoreError
from priorlab.analysis.store.files import ArtifactCorrupt, check_sha, png_size


WRITTEN_KEPT = 100_000  # sha256s remembered as uploaded (~10 MB of strings)


def is_files_url(value: Any) -> bool:
    """A URL fsspec should open (anything with a scheme except a plain local `file://`)."""
    return isinstance(value, str) and "://" in value and not value.startswith("file://")


class FsspecFiles:
    """Artifacts and shards under the fsspec URL `url`."""

    def __init__(self, url: str):
        import fsspec  # only a store with remote files pays for the import

        self.url = url.rstrip("/")
        try:
            self.fs, self.base = fsspec.core.url_to_fs(self.url)
        except (ImportError, ValueError) as e:
            raise StoreError(f"artifacts {self.url}: {e}") from None
        self.root = self.url
        self.artifact_dir = f"{self.url}/artifacts"
        self.fsync = True
        self._written: set[str] = set()  # artifacts this process uploaded (see put_artifacts)
        self._uploader = None  # an UploadProcess, once `upload_in_child` is called

    def upload_in_child(self) -> None:
        """Send artifact uploads through a child process from now on (store/uploads.py): for a
        long-lived writer whose own GIL has other work."""
        from priorlab.analysis.store.uploads import UploadProcess

        if self._uploader is None:
            self._uploader = UploadProcess(self.url)

    def __repr__(self) -> str:
        return f"FsspecFiles({self.url!r})"

    @contextmanager
    def _service(self, what: str) -> Iterator[None]:
        """Failures of the service (down, refused, denied) as one line naming the URL."""
        try:
            yield
        except (FileNotFoundError, ArtifactCorrupt, StoreError):
            raise
        except Exception as e:  # botocore, aiohttp, gcsfs: each library has its own errors
            text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise StoreAway(f"artifacts {self.url}: cannot {what} ({text}); "
                             "the same command resumes once the object store is back") from None

    def _key(self, *parts: str) -> str:
        return "/".join([self.base.rstrip("/"), *parts])

    def _url(self, key: str) -> str:
        return self.url + key[len(self.base.rstrip("/")):]

    # ------------------------------------------------------------------ artifacts

    def artifact_path(self, sha256: str) -> str:
        check_sha(sha256)
        return f"{self.url}/artifacts/{sha256[:2]}/{sha256}.png"

    def _artifact_key(self, sha256: str) -> str:
        check_sha(sha256)
        return self._key("artifacts", sha256[:2], f"{sha256}.png")

    def put_artifact(self, png: bytes) -> tuple[str, int, int]:
        return self.put_artifacts([png])[0]

    def put_artifacts(self, pngs: list[bytes]) -> list[tuple[str, int, int]]:
        """Upload PNGs (content-addressed), all at once: one concurrent `pipe` of the objects
        this process has not written yet. No existence check first: a PUT of the same key and
        bytes is idempotent, and a HEAD before each PUT (plus s3fs's directory listing when the
        key is missing) tripled the requests per image (bench_shared_store). `_written` keeps
        a run's repeated images (its clean and corrupted copies, the same in every run of a
        sweep) from being uploaded again by the same writer."""
        out, todo = [], {}
        for png in pngs:
            png = bytes(png)
            width, height = png_size(png)
            sha = hashlib.sha256(png).hexdigest()
            out.append((sha, width, height))
            if sha not in self._written:
                todo[self._artifact_key(sha)] = png
        if todo:
            with self._service("write an artifact"):
                if self._uploader is not None:
                    self._uploader.put(todo)
                else:
                    self.fs.pipe(todo)
            self._written.update(sha for sha, _, _ in out)
            if len(self._written) > WRITTEN_KEPT:  # a long-lived writer: forget, re-uploading is only slower
                self._written.clear()
        return out

    def read_artifact(self, sha256: str, *, verify: bool = False, hint: str = "") -> bytes | None:
        key = self._artifact_key(sha256)
        with self._service("read an artifact"):
            try:
                data = self.fs.cat_file(key)
            except FileNotFoundError:
                return None
        if verify and hashlib.sha256(data).hexdigest() != sha256:
            raise ArtifactCorrupt(f"{self.artifact_path(sha256)}: corrupted artifact (its bytes do not match "
                                  f"its sha256; `priorlab check --store {hint}` lists every damaged file)")
        return data

    def artifact_ok(self, sha256: str) -> bool | None:
        data = self.read_artifact(sha256)
        return None if data is None else hashlib.sha256(data).hexdigest() == sha256

    def artifact_files(self) -> Iterator[tuple[str, float]]:
        with self._service("list artifacts"):
            found = self.fs.find(self._key("artifacts"), detail=True) if self.fs.exists(self._key("artifacts")) else {}
        for key, info in sorted(found.items()):
            if info.get("type", "file") == "file":
                yield self._url(key), _mtime(info)

    def has_artifact_dir(self) -> bool:
        with self._service("list artifacts"):
            return self.fs.exists(self._key("artifacts"))

    # ------------------------------------------------------------------ shards

    def shard_path(self, run_id: str, index: int) -> str:
        return self._key("shards", run_id, f"{index:05d}.npz")

    def put_shard(self, run_id: str, index: int, data: bytes) -> None:
        with self._service("write a shard"):
            self.fs.pipe_file(self.shard_path(run_id, index), bytes(data))

    def shards_present(self, run_id: str) -> list[int]:
        with self._service("list shards"):
            keys = self.fs.glob(self._key("shards", run_id, "*.npz"))
        return sorted(int(k.rsplit("/", 1)[-1][:-4]) for k in keys)

    def get_shards(self, run_id: str, n_shards: int) -> list[bytes]:
        missing = sorted(set(range(n_shards)) - set(self.shards_present(run_id)))
        if missing:
            raise RuntimeError(f"run {run_id}: shards {missing} of {n_shards} were never scored")
        with self._service("read shards"):
            return [self.fs.cat_file(self.shard_path(run_id, i)) for i in range(n_shards)]

    def drop_shards(self, run_id: str) -> None:
        with self._service("remove shards"):
            try:
                self.fs.rm(self._key("shards", run_id), recursive=True)
            except FileNotFoundError:
                pass

    def shard_runs(self) -> Iterator[tuple[str, str, float]]:
        """(run_id, URL, newest mtime of its files) of every run with shards."""
        with self._service("list shards"):
            base = self._key("shards")
            found = self.fs.find(base, detail=True) if self.fs.exists(base) else {}
        newest: dict[str, float] = {}
        for key, info in found.items():
            run_id = key[len(base) + 1:].split("/", 1)[0]
            newest[run_id] = max(newest.get(run_id, 0.0), _mtime(info))
        for run_id in sorted(newest):
            yield run_id, self._url(self._key("shards", run_id)), newest[run_id]

    def remove(self, url: str) -> None:
        with self._service("remove a file"):
            try:
                self.fs.rm(self._key(url[len(self.url) + 1:]), recursive=True)
            except FileNotFoundError:
                pass


def _mtime(info: dict) -> float:
    """Modification time of an fsspec listing entry, as Unix seconds (0 when unknown)."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return 0.0
