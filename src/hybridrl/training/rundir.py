"""One process per run directory, and no half-made run directories.

`RunDirectory` is the context a run executes in:

* **Lock.** ``RUN_DIR/.lock`` is held with ``flock`` for the whole run, so a second process
  (a ``--resume`` started while the run still goes, or two fresh runs aimed at the same
  directory) is refused at once, with the holder's pid and host in the message. The kernel
  drops an ``flock`` when its process dies, so the lock of a killed run is stale by
  construction and the next process takes it over. Every check of the directory's contents
  (is there a run? a checkpoint?) happens under the lock, which makes "check, then create"
  atomic. Where ``flock`` is unsupported (some network file systems) the pid and host written
  into the file decide instead: a lock of a dead process on this host is taken over.
* **Nothing half-made.** Until `RunDirectory.started` is called (just before the first
  training step), an exception removes everything the run created: the directory itself if
  it did not exist, else the entries that were not there before. A run that fails in its
  set-up (unwritable directory, unusable dataset, an env that cannot be made) leaves the
  directory as it found it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from hybridrl.types import HybridRLError

try:  # POSIX only; elsewhere the pid file alone decides
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


class RunDirectoryBusy(HybridRLError):
    """Another live process holds the run directory."""


class RunDirectory:
    """Lock ``path`` for one run and undo the run's files if it fails before it starts."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._created = False
        self._before: set[str] = set()
        self._started = False
        self._file: IO[str] | None = None

    # ----------------------------------------------------------------------- context
    def __enter__(self) -> RunDirectory:
        self._make_directory()
        try:
            self._lock()
        except BaseException:
            # Refused: what is here may be another live run's. Remove at most the directory
            # this process made, and only while it is empty.
            if self._created:
                with contextlib.suppress(OSError):
                    self.path.rmdir()
            raise
        # What the directory held before this run, read under the lock (`_undo` keeps it).
        self._before = {p.name for p in self.path.iterdir()}
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is not None and not self._started:
                self._undo()
        finally:
            self._unlock()

    def started(self) -> None:
        """From now on the directory holds a run (resumable): keep it whatever happens."""
        self._started = True

    # ----------------------------------------------------------------------- pieces
    def _make_directory(self) -> None:
        try:
            try:
                self.path.mkdir(parents=True)
                self._created = True
            except FileExistsError:
                pass  # an existing directory (or a file, which the probe below reports)
            probe = self.path / f".write-test-{os.getpid()}"
            probe.write_text("")
            with contextlib.suppress(FileNotFoundError):
                probe.unlink()
        except OSError as exc:
            if self._created:
                with contextlib.suppress(OSError):
                    self.path.rmdir()
            reason = exc.strerror or str(exc)
            raise HybridRLError(
                f"run directory {self.path}: cannot write there ({reason})"
            ) from None

    def _lock(self) -> None:
        lock = self.path / LOCK_NAME
        while True:
            fh = open(lock, "a+")  # noqa: SIM115 - held open for the whole run
            if fcntl is None or not self._flock(fh):
                self._pid_lock(fh)
            # The previous holder may have removed the file between our open and our flock:
            # then we hold a lock on a name nobody sees, and must try again.
            try:
                same = os.path.samestat(os.fstat(fh.fileno()), os.stat(lock))
            except FileNotFoundError:
                same = False
            if same:
                break
            fh.close()
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
        fh.flush()
        self._file = fh

    def _flock(self, fh: IO[str]) -> bool:
        """Take the kernel lock; False when the file system does not support it."""
        assert fcntl is not None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                fh.close()
                raise RunDirectoryBusy(self._busy_message(_holder(self.path / LOCK_NAME))) from None
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                return False
            fh.close()
            raise
        return True

    def _pid_lock(self, fh: IO[str]) -> None:
        holder = _holder(self.path / LOCK_NAME)
        if holder and holder.get("pid") != os.getpid() and _alive(holder):
            fh.close()
            raise RunDirectoryBusy(self._busy_message(holder))

    def _busy_message(self, holder: dict[str, Any] | None) -> str:
        who = (
            f"process {holder.get('pid')} on {holder.get('host')}" if holder else "another process"
        )
        return (
            f"run directory {self.path} is in use by {who}; wait for it to finish, or stop "
            "it first (a killed run's lock is taken over automatically)"
        )

    def _unlock(self) -> None:
        if self._file is None:
            return
        lock = self.path / LOCK_NAME
        # Remove the name while still holding the lock (a waiter re-checks the inode), then
        # release by closing.
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        self._file.close()
        self._file = None

    def _undo(self) -> None:
        if self._created:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        for entry in self.path.iterdir() if self.path.is_dir() else ():
            if entry.name in self._before or entry.name == LOCK_NAME:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()


def _holder(lock: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(lock.read_text() or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _alive(holder: dict[str, Any]) -> bool:
    """Whether the holder may still run: a dead pid on this host is not; on another host we
    cannot tell, so it counts as alive."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, ValueError, TypeError):
        return True
    return True


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: where it stood, where its last checkpoint is (``str(exc)``), and
    the run directory to ``--resume``. A `KeyboardInterrupt`, so callers that stop on one
    still do."""

    def __init__(self, message: str, run_dir: Path):
        super().__init__(message)
        self.message = message
        self.run_dir = run_dir
