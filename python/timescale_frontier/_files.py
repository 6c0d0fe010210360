"""Writing the files the tool produces, one function for all of them: a regular file is replaced
atomically (an interrupted or failed write leaves the previous file whole, and nothing behind);
a symlink is followed to its target; a device, a FIFO or ``-`` (stdout) is written directly; a
target that is one of the run's inputs is refused."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from timescale_frontier._core import MAX_RECORD_BYTES, check_record_bytes
from timescale_frontier.errors import InvalidInputError, TimescaleError

__all__ = ["check_output", "check_readable", "record_lines", "refuse_inputs", "write_atomic"]


def _umask_mode() -> int:
    """The mode a new file gets from the process's umask (0o666 & ~umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """While writing, SIGTERM (and SIGHUP) unwind like Ctrl-C so the temporary file is removed
    (SIGKILL cannot be caught: a rename is atomic, so the target is still old or new)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            previous[sig] = signal.signal(sig, stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


#: Whether this system links an unnamed (O_TMPFILE) file into a directory; learnt on first use.
_linkable: bool | None = None


def _open_fd(fd: int, text: str | bytes) -> Any:
    """The file of ``fd``, open for writing ``text`` (bytes: binary; str: UTF-8)."""
    return os.fdopen(fd, "wb") if isinstance(text, bytes) else os.fdopen(fd, "w", encoding="utf-8")


def _write_new(directory: Path, name: str, text: str | bytes, mode: int) -> str:
    """Writes ``text`` (or bytes) to a new file in ``directory`` and returns its (hidden, unpredictable) name.
    Where the system allows it the file has no name until it is complete (Linux O_TMPFILE, linked
    at the end), so a kill before then leaves nothing behind; else it is created exclusively under
    that name from the start. The caller renames it (or removes it on failure)."""
    global _linkable
    # At most 100 bytes of the name: a target's name may be 255 bytes long, its temporary one too.
    stem = name.encode("utf-8", "surrogateescape")[:100].decode("utf-8", "ignore")
    tmp = str(directory / f".{stem}.{os.urandom(6).hex()}.tmp")
    flag = getattr(os, "O_TMPFILE", 0)
    if flag and _linkable is not False:
        try:
            fd = os.open(directory, flag | os.O_WRONLY, 0o600)
        except OSError:
            _linkable = False
        else:
            with _open_fd(fd, text) as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
                os.fchmod(f.fileno(), mode)
                try:
                    os.link(f"/proc/self/fd/{f.fileno()}", tmp, follow_symlinks=True)
                    _linkable = True
                    return tmp
                except OSError:
                    _linkable = False
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with _open_fd(fd, text) as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), mode)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def check_readable(path: str | os.PathLike[str], what: str, field: str, expected: str) -> os.stat_result:
    """The status of ``path``, a regular file to read as ``what`` (``field``: the option that named
    it; ``expected``: what it should be, e.g. "an existing CSV file of runs"); else one
    ``InvalidInputError`` that says what is there instead: nothing, a directory, a FIFO or device
    (reading one could wait forever), a symlink loop, no permission."""
    shown = os.fspath(path)

    def refused(why: str) -> InvalidInputError:
        return InvalidInputError(f"{shown}: {why}", field=field, value=shown, expected=expected)

    try:
        st = os.stat(path)
    except FileNotFoundError:
        broken = " (a link to a missing file)" if os.path.islink(path) else ""
        raise refused(f"{what} file not found{broken}") from None
    except OSError as e:
        loop = " (a symlink loop)" if e.errno == errno.ELOOP else ""
        raise refused(f"cannot read {what} file ({e.strerror}){loop}") from None
    if stat.S_ISDIR(st.st_mode):
        raise refused(f"is a directory, not a {what} file")
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "a device"
        raise refused(f"is {kind}, not a regular {what} file")
    if not os.access(path, os.R_OK):
        raise refused(f"cannot read {what} file (permission denied)")
    return st


def _ending(line: str) -> int:
    """Characters of ``line``'s line ending: 2 for CRLF, 1 for LF or a lone CR, 0 for none."""
    return 2 if line.endswith("\r\n") else 1 if line.endswith(("\n", "\r")) else 0


def record_lines(path: str | os.PathLike[str]) -> Iterator[str]:
    """The lines of the UTF-8 text file ``path`` (a byte-order mark skipped; LF, CRLF and lone-CR
    line ends recognised and kept), each checked against the core's ``MAX_RECORD_BYTES`` (its
    UTF-8 bytes, the line end not counted) as it is read: a longer line is measured to its end
    without being kept, then refused naming the file and the line, so one huge line costs no more
    memory than the limit. Check the file's size first (a measurements or runs file's bound): that
    bounds the time. Raises ``UnicodeDecodeError`` and ``OSError`` as ``open`` does."""
    limit = int(MAX_RECORD_BYTES)
    with open(path, encoding="utf-8-sig", newline="") as f:
        i = 0
        while line := f.readline(limit + 1):  # characters: at most 4 bytes each
            i += 1
            end = _ending(line)
            n = len(line[: len(line) - end].encode("utf-8", "surrogatepass"))
            if n > limit:
                while not end and (chunk := f.readline(1 << 20)):  # the rest of the line, unkept
                    end = _ending(chunk)
                    n += len(chunk[: len(chunk) - end].encode("utf-8", "surrogatepass"))
                try:
                    check_record_bytes(n)
                except TimescaleError as e:
                    e.message = f"line {i}: {e.message}"
                    e.source = e.source or os.fspath(path)
                    raise
            yield line


def refuse_inputs(path: str | os.PathLike[str] | None, inputs: Iterable[str | os.PathLike[str] | None]) -> None:
    """Raises ``InvalidInputError`` when ``path`` is one of ``inputs`` (the files a run reads; a
    ``None`` is skipped): writing it would destroy what the run was asked to read. The same file
    under another name (a link, ``./x``) counts, and so does the same name not created yet (two
    options naming one new file). Commands call it before any work, and ``write_atomic`` again."""
    if path is None or os.fspath(path) == "-":
        return
    shown = os.fspath(path)
    target = os.path.realpath(path)
    for source in inputs:
        if source is None or os.fspath(source) == "-":
            continue
        same = target == os.path.realpath(source)
        if not same:
            with contextlib.suppress(OSError):
                same = os.path.exists(target) and os.path.samefile(target, source)
        if same:
            raise InvalidInputError(
                f"{shown}: is one of this run's inputs ({os.fspath(source)}); write elsewhere",
                field="output",
                value=shown,
                expected="a file other than this run's inputs",
            )


def check_output(
    path: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]] = (), parent_made: bool = False
) -> os.stat_result | None:
    """The status of ``path`` (None for a new file) if ``write_atomic`` may write it; else the
    one-line ``InvalidInputError`` it would raise, so a command can refuse before any work: a name
    ending in ``/`` that is not a directory, one of ``inputs``, a directory, a path under a file
    or a missing directory ("cannot write (Not a directory)", "(No such file or directory)"; not
    checked with ``parent_made``: the caller creates the parent), a read-only file. ``-`` is
    standard output."""
    shown = os.fspath(path)
    if shown == "-":  # standard output
        return None

    def refused(why: str, expected: str = "a writable path") -> InvalidInputError:
        return InvalidInputError(f"{shown}: {why}", field="output", value=shown, expected=expected)

    if shown.endswith(tuple(s for s in ("/", os.sep, os.altsep) if s)) and not os.path.isdir(path):
        # "out/" names a directory: never a file called "out".
        raise refused("names a directory (it ends with a path separator) that does not exist", "a file path")
    refuse_inputs(path, inputs)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise refused(f"cannot write ({e.strerror})") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise refused("is a directory", "a file path, not a directory")
    # A file the user made read-only is kept: a rename would replace it even so (the directory is
    # writable), and for root every permission check passes, so its mode bits are checked too.
    if st is not None and stat.S_ISREG(st.st_mode) and (not st.st_mode & 0o222 or not os.access(path, os.W_OK)):
        raise refused("is read-only; make it writable (chmod u+w) or write elsewhere", "a writable file")
    if st is None and not parent_made:
        parent = os.path.dirname(os.path.realpath(path))
        try:
            parent_st = os.stat(parent)
        except OSError as e:
            raise refused(f"cannot write ({e.strerror})") from None
        if not stat.S_ISDIR(parent_st.st_mode):
            raise refused(f"cannot write ({os.strerror(errno.ENOTDIR)})")
    return st


def write_atomic(
    path: str | os.PathLike[str], text: str | bytes, inputs: Iterable[str | os.PathLike[str]] = ()
) -> Path | None:
    """Writes ``text`` (UTF-8; or bytes as they are, e.g. a rendered plot) to ``path`` and returns
    the file written (None for stdout).

    - ``-``: standard output.
    - A symlink: its target is written (the link stays).
    - An existing device, FIFO or socket: written directly, in place.
    - A regular file or a new name: a temporary file with an unpredictable name, created exclusively
      in the target's directory, receives the text, is flushed to disk, gets the permissions of the
      file it replaces (or the umask's default for a new one), and is renamed over the target.
      Any error or catchable signal removes it; errors name ``path``, not the temporary file.
    - A target that is one of ``inputs`` (the files this run read) is refused: the run would destroy
      what it was asked to read. So is a read-only file (mode bits without write permission, which
      hold for root too), and a name ending in ``/`` that is not a directory.
    """
    if os.fspath(path) == "-":
        try:
            if isinstance(text, bytes):
                sys.stdout.buffer.write(text)
            else:
                sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            raise TimescaleError(f"standard output: cannot write ({e.strerror or e})") from None
        return None
    shown = os.fspath(path)

    def refused(why: str, expected: str = "a writable path") -> InvalidInputError:
        return InvalidInputError(f"{shown}: {why}", field="output", value=shown, expected=expected)

    st = check_output(path, inputs)
    if st is not None and not stat.S_ISREG(st.st_mode):
        # A device, FIFO or socket (/dev/stdout on a pipe too): opened by the name given, written in place.
        try:
            with _open_fd(os.open(path, os.O_WRONLY), text) as f:
                f.write(text)
        except OSError as e:
            raise refused(f"cannot write ({e.strerror})") from None
        return Path(path)
    target = Path(os.path.realpath(path))
    mode = stat.S_IMODE(st.st_mode) if st is not None else _umask_mode()
    directory = target.parent
    tmp: str | None = None
    try:
        with _terminate_as_exit():
            tmp = _write_new(directory, target.name, text, mode)
            os.replace(tmp, target)
            tmp = None
            with contextlib.suppress(OSError):
                dir_fd = os.open(directory, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
    except OSError as e:
        raise InvalidInputError(
            f"{shown}: cannot write ({e.strerror})", field="output", value=shown, expected="a writable path"
        ) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    return target
