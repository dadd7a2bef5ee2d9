"""Shared pytest fixtures, and the suite's persistent compilation cache.

`x64` turns on 64-bit JAX for one test and restores the previous setting afterwards, so that float64
gradient comparisons (tolerances ~1e-10) do not leak 64-bit defaults into float32 tests.

The suite stores compiled XLA executables in `.cache/xla` under the repository (`jaxnets.enable_compilation_cache`;
delete the directory to start cold, or set JAXNETS_TEST_CACHE=off to run without it): a program that another test,
another xdist worker or an earlier run compiled is loaded from disk. Tests that count compiled programs count
loaded ones too (`_compiles.counting_programs`).
"""
import os
import pathlib

import jax
import pytest

import jaxnets

ROOT = pathlib.Path(__file__).resolve().parent.parent


def pytest_configure(config):
    if os.environ.get("JAXNETS_TEST_CACHE", "on") != "off":
        directory = jaxnets.enable_compilation_cache(ROOT / ".cache" / "xla")
        os.environ["JAXNETS_CACHE_DIR"] = directory   # the CLI and experiments run in subprocesses use it too


@pytest.fixture
def x64():
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)
