"""Compiled programs, memoised on the values of their statics (`jaxnets.memo`).

Every program of the checks is built from statics (layers, losses, penalties, functions, the train flag) and
takes every array as an argument, so checking the same model again — or an equal one built afresh — with the same
shapes reuses its compiled programs instead of compiling closures over the new call's arrays. A changed backward
is another value, so it is never checked with an old program.
"""
from __future__ import annotations

from jaxnets.memo import memoised


@memoised(maxsize=256)
def _memo(build, statics):
    return build(*statics)


def built(build, *statics):
    """build(*statics), memoised on their values (a static that cannot be keyed is built afresh)."""
    return _memo(build, statics)
