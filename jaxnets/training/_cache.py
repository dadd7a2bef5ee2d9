"""Memoised compiled programs: repeated calls with the same model / loss / optimizer objects reuse one `jit`."""
from __future__ import annotations


def cached(fn, *config):
    """`fn(*config)` through its `functools.lru_cache`; a configuration that cannot be hashed (a model or
    optimizer holding a list, say) is simply not memoised."""
    try:
        return fn(*config)
    except TypeError as err:
        if "unhashable" not in str(err):
            raise
        return fn.__wrapped__(*config)
