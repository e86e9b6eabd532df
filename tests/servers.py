"""Real servers for the shared-store tests: a throwaway PostgreSQL cluster and an S3-compatible
HTTP server (moto's standalone server), both on 127.0.0.1, started once per test session.

PostgreSQL comes from Debian's `postgresql` package (`.ci/run` installs it): `initdb` and
`pg_ctl` run a cluster in a temporary folder, as the `postgres` user when the tests run as
root (the server refuses root). Each test gets its own database. moto runs as a subprocess,
so a test can stop it like an object store that went away. `unavailable()` says why a server
cannot start here; the tests skip with that reason only then.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 30.0) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class PostgresServer:
    """A PostgreSQL cluster in a temp folder; `url(db)` names a database on it."""

    def __init__(self):
        self.initdb, self.pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not (self.initdb and self.pg_ctl):
            raise RuntimeError("PostgreSQL's initdb/pg_ctl are not installed (apt-get install postgresql)")
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # postgres refuses to run as root
            if shutil.which("runuser") is None:
                raise RuntimeError("running as root without runuser: cannot start PostgreSQL as postgres")
            try:
                import pwd

                pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no `postgres` user to run the server") from None
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.dir = Path(tempfile.mkdtemp(prefix="priorlab-pg-"))
        if self.as_user:
            shutil.chown(self.dir, "postgres")
        self.port = free_port()
        self._run([self.initdb, "-D", str(self.dir / "data"), "--auth=trust", "-U", "postgres", "-E", "UTF8"])
        self.start()

    def _run(self, cmd: list[str]) -> None:
        out = subprocess.run(self.as_user + cmd, capture_output=True, text=True, timeout=120)
        if out.returncode:
            raise RuntimeError(f"{Path(cmd[0]).name} failed: {(out.stderr or out.stdout).strip()[-500:]}")

    def start(self) -> None:
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        self._run([self.pg_ctl, "-D", str(self.dir / "data"), "-o", opts, "-l", str(self.dir / "log"),
                   "-w", "-t", "60", "start"])

    def stop(self) -> None:
        self._run([self.pg_ctl, "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop"])

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def new_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def close(self) -> None:
        try:
            self.stop()
        except Exception:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


# What the store reads from the environment to reach the test S3 server: the same variables a
# group sets for real S3 or MinIO (credentials only ever come from here).
def s3_env(port: int) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}


class S3Server:
    """moto's S3 server as a subprocess on 127.0.0.1 (stoppable, restartable on the same port)."""

    def __init__(self):
        import moto.server  # noqa: F401  (raises ImportError when moto[server] is missing)

        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not _wait_port(self.port):
            self.stop()
            raise RuntimeError("moto's S3 server did not start listening within 30 s")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    @property
    def env(self) -> dict[str, str]:
        return s3_env(self.port)

    def new_bucket(self) -> str:
        """A fresh bucket, as an `s3://` URL with a prefix."""
        import boto3

        name = "b-" + uuid.uuid4().hex[:12]
        boto3.client("s3", endpoint_url=self.env["AWS_ENDPOINT_URL"], aws_access_key_id="testing",
                     aws_secret_access_key="testing", region_name="us-east-1").create_bucket(Bucket=name)
        return f"s3://{name}/priorlab"

    def close(self) -> None:
        self.stop()
