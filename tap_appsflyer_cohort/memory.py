"""Keep the process's memory flat while worker threads parse answers.

glibc gives each thread that allocates its own malloc arena and keeps freed blocks there.
Answers are parsed in worker threads and freed by the main thread after emission, so with
the default (8 arenas per core) a long backfill's RSS grows to several times the memory
actually in use (measured: 210 MB for 49 MB of live objects). Two arenas keep it flat
(62 MB) at no measurable cost in speed. Only glibc is touched; elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_ARENA_MAX = -8  # from glibc's malloc.h


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas; True when applied. Call before threads start."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False
