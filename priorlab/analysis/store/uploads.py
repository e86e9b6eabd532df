"""A child process that uploads a long-lived writer's objects (`FsspecFiles.upload_in_child`).

An upload to object storage costs the client a few milliseconds of Python per object (request
signing and botocore's event hooks) under the GIL of the process that sends it. In the sweep's
writer actor that is the same GIL that takes the trials' calls and writes the rows, so uploads
and everything else took turns. Sent from a child process they run beside it: the writer
hands over `{key: bytes}` and waits without holding the GIL (bench_shared_store).

The child is `python -P …/store/uploads.py URL`: a plain subprocess, not multiprocessing
(that would re-import the parent's main module, a Ray worker's or a user's script), and this
file run as a script, not `-m priorlab.analysis.store.uploads`, which would import the store
package and pandas with it (~0.5 s of CPU taken from the sweep as the writer starts). `-P`
keeps this folder off `sys.path`, where `copy.py` would hide the standard library's `copy`.
It opens the same URL with the same environment (credentials come only from there), reads
pickled `{key: bytes}` from stdin and answers each with None or a one-line error. It ends when
the writer does: a closed stdin is its signal, so a killed writer leaves no process.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading


class UploadProcess:
    """`put(objects)`: upload `{key: bytes}` to `url`'s filesystem in the child; an error there
    is raised here as an `OSError` carrying the child's one line."""

    def __init__(self, url: str):
        self._proc = subprocess.Popen([sys.executable, "-P", __file__, url],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._lock = threading.Lock()

    def put(self, objects: dict[str, bytes]) -> None:
        with self._lock:
            try:
                pickle.dump(objects, self._proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                self._proc.stdin.flush()
                said = pickle.load(self._proc.stdout)
            except (EOFError, OSError, pickle.UnpicklingError) as e:
                raise OSError(f"the upload process ended (exit {self._proc.poll()}: {e or type(e).__name__})") from None
        if said is not None:
            raise OSError(said)

def _serve(url: str) -> None:
    import fsspec

    fs, _ = fsspec.core.url_to_fs(url)
    source, answers = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            objects = pickle.load(source)
        except EOFError:  # the writer ended
            return
        try:
            fs.pipe(objects)
            said = None
        except Exception as e:
            text = str(e).strip().splitlines()[0] if str(e).strip() else ""
            said = f"{type(e).__name__}: {text}"
        pickle.dump(said, answers)
        answers.flush()


if __name__ == "__main__":
    _serve(sys.argv[1])
