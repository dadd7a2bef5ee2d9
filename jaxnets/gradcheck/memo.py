"""Compiled programs, memoised on their statics.

Every program of the checks is built from hashable statics (layers, losses, penalties, functions, the train
flag) and takes every array as an argument, so checking the same model again with the same shapes reuses its
compiled programs instead of compiling closures over the new call's arrays.
"""
from __future__ import annotations

import functools


@functools.lru_cache(maxsize=256)
def _memo(build, statics):
    return build(*statics)


def built(build, *statics):
    """build(*statics), memoised when the statics can be hashed (otherwise built afresh, as correct but slower)."""
    try:
        return _memo(build, statics)
    except TypeError:
        return build(*statics)
