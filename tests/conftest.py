"""Shared pytest fixtures.

`x64` turns on 64-bit JAX for one test and restores the previous setting afterwards, so that float64
gradient comparisons (tolerances ~1e-10) do not leak 64-bit defaults into float32 tests.
"""
import jax
import pytest


@pytest.fixture
def x64():
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)
