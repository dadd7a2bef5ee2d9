"""JAX's persistent compilation cache, switched on for CPU-sized programs: a repeated script skips XLA compiles.

    jaxnets.enable_compilation_cache()            # ~/.cache/jaxnets/xla, or $JAXNETS_CACHE_DIR
    jaxnets.enable_compilation_cache("/scratch/xla")
    jaxnets.clear_compilation_cache()             # delete the cached executables

Within one process jaxnets already shares compiled programs between equal configurations (`jaxnets.memo`); this
cache keeps the compiled executables on disk so that the next process (the next run of a script, a test worker,
the CLI) loads them instead of compiling again. JAX ships the cache but by default stores only programs that took
over a second to compile, which on a CPU is almost none of a small network's; here the threshold is 0.

Where it lives: the directory given, else `$JAXNETS_CACHE_DIR`, else `~/.cache/jaxnets/xla`. Used by the CLI, the
experiments and the test suite (which keeps its own under `.cache/xla` in the repository); library users opt in.
What invalidates an entry: JAX keys each executable on the program itself (its StableHLO), the JAX and jaxlib
versions, the backend and device kind, and the compile options and XLA flags — a change to any of them compiles
afresh and stores a new entry; nothing stale is ever loaded. The directory grows with every distinct program;
delete it (or call `clear_compilation_cache`) at any time. The cache is trusted code: keep it in a directory only
you can write (JAX's own warning).
"""
from __future__ import annotations

import os
import shutil

import jax

__all__ = ["enable_compilation_cache", "clear_compilation_cache", "default_cache_dir"]


def default_cache_dir() -> str:
    """`$JAXNETS_CACHE_DIR`, else `~/.cache/jaxnets/xla`."""
    return os.environ.get("JAXNETS_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "jaxnets", "xla")


def enable_compilation_cache(path: str | os.PathLike | None = None, *, min_compile_time_secs: float = 0.0) -> str:
    """Store compiled XLA executables in `path` (default `default_cache_dir()`) and load them in later processes.

    min_compile_time_secs: only programs that took at least this long to compile are stored (JAX's default is
    1.0, which skips nearly every CPU program; 0 stores all). Returns the directory used. Call it before training;
    a call with another directory switches the cache over."""
    if isinstance(min_compile_time_secs, bool) or not isinstance(min_compile_time_secs, (int, float)) \
            or not min_compile_time_secs >= 0:
        raise ValueError(f"enable_compilation_cache(min_compile_time_secs): a number >= 0 (seconds), got "
                         f"{min_compile_time_secs!r}")
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"enable_compilation_cache(path): a directory path or None, got {type(path).__name__}")
    directory = os.path.abspath(os.fspath(path) if path is not None else default_cache_dir())
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ValueError(f"enable_compilation_cache(path): {directory} exists and is not a directory; give a "
                         "directory (it is created when missing)")
    os.makedirs(directory, exist_ok=True)
    previous = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_secs))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # -1: no size threshold at all
    jax.config.update("jax_compilation_cache_dir", directory)
    if previous and os.path.abspath(previous) != directory:
        from jax._src import compilation_cache  # the cache opens its directory once; reopen it at the new one

        compilation_cache.reset_cache()
    return directory


def clear_compilation_cache(path: str | os.PathLike | None = None) -> None:
    """Delete the cached executables in `path` (default: the directory in use, else `default_cache_dir()`)."""
    directory = os.fspath(path) if path is not None else (jax.config.jax_compilation_cache_dir or default_cache_dir())
    if os.path.isdir(directory):
        shutil.rmtree(directory)
