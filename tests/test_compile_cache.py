"""The persistent compilation cache: a second process loads what the first compiled, and bad arguments are refused."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

import jaxnets

SCRIPT = textwrap.dedent("""
    import json, sys, time
    import jax, jaxnets as jn
    jn.enable_compilation_cache(sys.argv[1])
    seen = {"compiled": 0, "loaded": 0, "compile_s": 0.0}
    def on_duration(name, seconds, **_):
        if name == "/jax/core/compile/backend_compile_duration":
            seen["compiled"] += 1; seen["compile_s"] += seconds
    def on_event(name, **_):
        if name == "/jax/compilation_cache/cache_hits":
            seen["loaded"] += 1
    jax.monitoring.register_event_duration_secs_listener(on_duration)
    jax.monitoring.register_event_listener(on_event)
    ds = jn.data.load("digits")
    t = time.perf_counter()
    r = jn.fit(jn.serial(jn.Dense(16), jn.Sigmoid, jn.Dense(10)), "softmax_cross_entropy", "adam",
               (ds.x_train[:200], ds.y_train[:200]), epochs=1, batch_size=32, key=jax.random.key(0), progress=False)
    seen["seconds"] = time.perf_counter() - t
    seen["loss"] = r.history.rows[-1]["train_loss"]
    print(json.dumps(seen))
""")


def _run(directory):
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(directory)], capture_output=True, text=True, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_process_loads_the_programs_the_first_compiled(tmp_path):
    cold = _run(tmp_path / "xla")
    assert cold["compiled"] > 0 and cold["loaded"] == 0
    assert any((tmp_path / "xla").iterdir()), "the first process stores its executables"
    warm = _run(tmp_path / "xla")
    # JAX times a load from the cache as a (short) backend compile, so every program shows in both counts
    assert warm["loaded"] == warm["compiled"] == cold["compiled"], warm
    assert warm["compile_s"] < cold["compile_s"] / 3
    assert warm["loss"] == cold["loss"]          # the loaded programs compute exactly what the compiled ones did


def test_bad_arguments_are_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is not a directory"):
        jaxnets.enable_compilation_cache(tmp_path / "file")
    with pytest.raises(ValueError, match="min_compile_time_secs"):
        jaxnets.enable_compilation_cache(tmp_path, min_compile_time_secs=-1)
    with pytest.raises(TypeError, match="path"):
        jaxnets.enable_compilation_cache(3)


def test_clear_removes_the_directory(tmp_path):
    directory = tmp_path / "xla"
    directory.mkdir()
    (directory / "entry").write_text("x")
    jaxnets.clear_compilation_cache(directory)
    assert not directory.exists()
