"""Counting the programs a block of code obtains from XLA: compiled, or loaded from the persistent cache.

The test suite runs with the persistent compilation cache on (conftest.py), so a program compiled by an earlier
test (or an earlier run) may be loaded from disk instead of compiled. JAX reports both through the same
backend-compile event (a load is timed as a short compile), so a block that gets every program from memory
records nothing, and one that needs a program records it whether it was compiled or loaded.
"""
import contextlib

import jax

COMPILE = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def counting_programs():
    """Yields a list that receives the seconds of each program compiled or loaded from disk inside the block."""
    seen = []

    def on_duration(name, seconds, **_):
        if name == COMPILE:
            seen.append(seconds)

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(on_duration)
