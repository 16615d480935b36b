"""The ``bidi`` entry points, cached between processes so that ``list_models()`` starts fast.

``importlib.metadata.entry_points()`` imports ~70 modules (``email``, ``zipfile``,
``csv``, ...) and reads every installed distribution's metadata: most of what
``bidi models`` used to spend. The answer only changes when distributions are
installed, upgraded, removed or edited, so it is kept in a small file, valid while
the *fingerprint* of the import path is unchanged:

* ``sys.path`` itself, in order (and the interpreter and its version);
* for each directory on it, the name of every ``*.dist-info`` and ``*.egg-info``
  directory in it (a ``.dist-info`` name carries the version) and the modification
  time, inode and size of its ``entry_points.txt`` (and of an ``.egg-info``'s
  ``PKG-INFO``): an in-place edit or a reinstall of the same version changes those;
* for a zip or egg file on ``sys.path``, its modification time and size.

Anything else changes nothing the scan would find, except a custom finder on
``sys.meta_path`` that lists distributions itself: then the cache is not used.

The file lives in the user's cache directory (``BIDI_CACHE_DIR``, else
``$XDG_CACHE_HOME/bidi`` or ``~/.cache/bidi``; ``~/Library/Caches/bidi`` on macOS,
``%LOCALAPPDATA%\\bidi\\cache`` on Windows), one per interpreter and ``sys.path``. It is
written to a temporary file and renamed into place, so concurrent processes read
either the old or the new content, never a mix; a file that cannot be read or
written is ignored (the scan runs as before). ``BIDI_NO_CACHE=1`` turns it off.
"""

from __future__ import annotations

import contextlib
import importlib
import marshal
import os
import sys
import time
import zlib
from collections.abc import Iterable
from typing import Any

__all__ = ["CACHE_DIR_ENV", "NO_CACHE_ENV", "CachedEntryPoint", "cache_file", "entry_points"]

#: Where the cache is kept (default: the user's cache directory).
CACHE_DIR_ENV = "BIDI_CACHE_DIR"
#: Set to ``1`` to read entry points from the installed metadata every time.
NO_CACHE_ENV = "BIDI_NO_CACHE"
_FORMAT = 1
_SETTLE_NS = 2_000_000_000


class _Dist:
    """The two facts of a distribution the registry reports: its name and version."""

    __slots__ = ("name", "version")

    def __init__(self, name: str | None, version: str | None) -> None:
        self.name = name
        self.version = version


class CachedEntryPoint:
    """An entry point read from the cache (what the registry uses of one).

    Attributes:
        name: The entry point's name (the plugin name).
        value: ``"module"`` or ``"module:attribute"``.
        dist: The distribution's ``name`` and ``version``.
    """

    __slots__ = ("dist", "name", "value")

    def __init__(self, name: str, value: str, dist_name: str | None, version: str | None) -> None:
        self.name = name
        self.value = value
        self.dist = _Dist(dist_name, version)

    def load(self) -> Any:
        """Import the module and return the object the value names (as ``EntryPoint.load``)."""
        module_name, _, attr = self.value.partition(":")
        obj: Any = importlib.import_module(module_name.strip())
        for part in attr.split("[", 1)[0].strip().split("."):
            if part:
                obj = getattr(obj, part)
        return obj

    def __repr__(self) -> str:
        return f"CachedEntryPoint(name={self.name!r}, value={self.value!r})"


def cache_dir() -> str:
    """The directory the cache file lives in."""
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return explicit
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
        return os.path.join(base, "bidi", "cache")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Caches", "bidi")
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache"), "bidi")


def _paths() -> list[str]:
    """``sys.path`` with ``""`` (the current directory) made absolute."""
    return [entry or os.getcwd() for entry in sys.path]


def cache_file(group: str, paths: Iterable[str] | None = None) -> str:
    """The cache file of *group* for this interpreter and ``sys.path`` (or *paths*)."""
    key = "\0".join([sys.executable, sys.version, group, *(_paths() if paths is None else paths)])
    data = key.encode("utf-8", "surrogatepass")
    tag = f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"
    return os.path.join(cache_dir(), f"entry-points-{group}-{tag}.marshal")


def _stamp(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ino, st.st_size)


def _meta_stamps(folder: str, name: str) -> tuple[Any, ...]:
    base = os.path.join(folder, name)
    stamps: tuple[Any, ...] = (name, _stamp(os.path.join(base, "entry_points.txt")))
    if name.endswith(".egg-info"):  # its name may lack the version
        stamps += (_stamp(os.path.join(base, "PKG-INFO")),)
    return stamps


def _metas(entry: str) -> tuple[tuple[Any, ...], ...]:
    try:
        with os.scandir(entry) as scan:
            names = [i.name for i in scan if i.name.endswith((".dist-info", ".egg-info"))]
    except OSError:  # missing, or a zip file (its stamp says enough)
        names = []
    return tuple(_meta_stamps(entry, name) for name in sorted(names))


def fingerprint(paths: Iterable[str]) -> tuple[Any, ...]:
    """What the installed distributions on *paths* look like (see the module docs).

    Per entry: ``(entry, stamp, ((metadata dir, stamps...), ...))``. The stamp of a
    directory changed in the last two seconds is None: some file systems keep times
    to the second, so a change within the same second could keep it; such a
    directory is listed again by every check.
    """
    recent = time.time_ns() - _SETTLE_NS
    out: list[Any] = [sys.executable, sys.version]
    for entry in paths:
        stamp = _stamp(entry)
        if stamp is not None and stamp[0] > recent:
            stamp = None
        out.append((entry, stamp, _metas(entry)))
    return tuple(out)


def _still_valid(print_: tuple[Any, ...], paths: list[str]) -> bool:
    """Whether *print_* still describes *paths*.

    A directory's stamp changes when an entry is added to it, removed or renamed: if
    it is unchanged, the metadata directories in it are the ones in *print_* and only
    their files need a look. Otherwise it is listed again.
    """
    if print_[:2] != (sys.executable, sys.version) or len(print_) != len(paths) + 2:
        return False
    for (entry, stamp, metas), path in zip(print_[2:], paths, strict=True):
        if entry != path:
            return False
        if stamp is None or _stamp(path) != stamp:
            if _metas(path) != metas:
                return False
            continue
        for meta in metas:
            if _meta_stamps(path, meta[0]) != meta:
                return False
    return True


def _settled(print_: tuple[Any, ...]) -> bool:
    """Whether no metadata file changed in the last two seconds (see :func:`fingerprint`)."""
    recent = time.time_ns() - _SETTLE_NS
    for _, _, metas in print_[2:]:
        for meta in metas:
            if any(s is not None and s[0] > recent for s in meta[1:]):
                return False
    return True


def _custom_finders() -> bool:
    """Whether a finder other than the stdlib's lists distributions (its own answer)."""
    from importlib.machinery import PathFinder  # noqa: PLC0415 - already imported at start

    return any(
        hasattr(finder, "find_distributions") and finder is not PathFinder
        for finder in sys.meta_path
    )


def _read(path: str, paths: list[str]) -> list[CachedEntryPoint] | None:
    try:
        with open(path, "rb") as file:
            data = marshal.load(file)
    except (OSError, EOFError, ValueError, TypeError):
        return None
    try:
        if data[0] != _FORMAT or not _still_valid(data[1], paths):
            return None
        return [CachedEntryPoint(*row) for row in data[2]]
    except (IndexError, TypeError, ValueError):  # a file from elsewhere: scan
        return None


def _write(path: str, print_: tuple[Any, ...], rows: list[tuple[Any, ...]]) -> None:
    folder = os.path.dirname(path)
    tmp = f"{path}.{os.getpid()}.{id(rows):x}.tmp"
    try:
        os.makedirs(folder, exist_ok=True)
        with open(tmp, "wb") as file:
            marshal.dump((_FORMAT, print_, tuple(rows)), file)
        os.replace(tmp, path)  # atomic: readers see the old file or the new one
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def entry_points(group: str) -> list[Any]:
    """The entry points of *group*, in ``importlib.metadata.entry_points()`` order.

    Each has ``name``, ``value``, ``dist.name``, ``dist.version`` and ``load()``: a
    :class:`CachedEntryPoint` when the cache is valid, else the
    ``importlib.metadata.EntryPoint`` itself (and the cache is written).
    """
    use_cache = os.environ.get(NO_CACHE_ENV, "") in ("", "0") and not _custom_finders()
    if use_cache:
        paths = _paths()
        path = cache_file(group, paths)
        cached = _read(path, paths)
        if cached is not None:
            return cached
        print_ = fingerprint(paths)
    import importlib.metadata  # noqa: PLC0415 - the slow path: only when the cache is stale

    found = list(importlib.metadata.entry_points(group=group))
    if use_cache and _settled(print_):
        rows = []
        for ep in found:
            dist = ep.dist
            name = dist.name if dist is not None else None
            version = dist.version if dist is not None else None
            rows.append((ep.name, ep.value, name, version))
        # The metadata was read after the fingerprint: if something was installed
        # in between, the fingerprint is already stale and the next process rescans.
        _write(path, print_, rows)
    return found
