"""Smoke test of benchmarks/device.py: `--quick --out <tmp>` runs on whatever device JAX sees and writes one JSON
file whose rows cover every part (mlp, cnn, ensemble, bf16, ceiling) and follow the timing rules (one round,
medians scaled from partial epochs and marked so, no compilation inside the timed rounds, ratios against the
row named as their base). The figures themselves are not checked: a quick run's numbers mean nothing. Like
tests/test_experiments_quick.py, the subprocess asks XLA for its cheapest backend optimisation level
(`--xla_backend_optimization_level=0`): the quick run compiles about 25 programs for a few mini-batches each, and
this cuts its time by about a third on a 2-core CPU (the flag is recorded in the JSON's `xla_flags`)."""
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import pytest

ROOT = Path(__file__).resolve().parents[1]
MLP_VARIANTS = ("jaxnets.fit manual", "jaxnets.fit autodiff", "plain JAX jit step", "Flax linen")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("device_bench")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "benchmarks/device.py", "--quick", "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"device.py --quick failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    files = sorted(out.glob("device-*.json"))
    assert len(files) == 1, files
    data = json.loads(files[0].read_text())
    print(f"device.py --quick took {time.perf_counter() - start:.0f} s")
    return files[0], data, proc.stdout


def rows_of(data, part, config=None):
    return [r for r in data["rows"] if r["part"] == part and (config is None or r["config"] == config)]


def test_metadata_and_file_name(quick):
    path, data, stdout = quick
    device = jax.devices()[0]
    assert path.name == f"device-{device.platform}.json" == f"device-{data['platform']}.json"
    assert data["device_kind"] == device.device_kind
    assert data["jax_version"] == jax.__version__
    assert isinstance(data["load_average"], float) and len(data["load_average_start"]) == 3
    assert data["quick"] is True and data["rounds"] == 1 and data["plan"] == "quick"
    assert "--xla_backend_optimization_level=0" in data["xla_flags"]
    assert set(data["parts"]) == {"mlp", "cnn", "ensemble", "bf16", "ceiling"}
    # the one printed table is the one stored
    assert data["table"][0].startswith("| part | config | variant |")
    assert "\n".join(data["table"]) in stdout
    assert len(data["table"]) == len(data["rows"]) + 2


def test_mlp_rows_and_flax(quick):
    _, data, _ = quick
    flax_installed = importlib.util.find_spec("flax") is not None
    for config in ("nielsen", "mid", "large"):
        rows = {r["variant"]: r for r in rows_of(data, "mlp", config)}
        assert set(rows) == set(MLP_VARIANTS), config
        for v in MLP_VARIANTS[:3]:
            assert rows[v]["status"] == "measured"
        linen = rows["Flax linen"]
        if not flax_installed:
            assert linen["status"] == "skipped" and "flax" in linen["note"]
            assert any(s["variant"] == "Flax linen" for s in data["skipped"])
        base = rows["jaxnets.fit manual"]
        assert base["ratio"] == 1.0 and base["ratio_base"] == "jaxnets.fit manual"


def test_cnn_ensemble_bf16_rows(quick):
    _, data, _ = quick
    for config in ("cnn", "cnn2"):
        variants = [r["variant"] for r in rows_of(data, "cnn", config)]
        assert len(variants) == 3 and variants[0].startswith("fit loop=auto (-> ")
        assert variants[0].rstrip(")").split("-> ")[1] in ("scan", "step")
        assert variants[1:] == ["fit loop=scan", "fit loop=step"]
    ens = rows_of(data, "ensemble")
    assert [r["variant"] for r in ens] == ["fit_ensemble (4 members)", "4 sequential fit"]
    assert ens[1]["ratio_base"] == ens[0]["variant"]
    assert ens[1]["max_w1_diff"] < 1e-3  # the same members
    bf16 = rows_of(data, "bf16", "large")
    assert [r["variant"] for r in bf16] == ["jaxnets.fit manual float32", "jaxnets.fit manual bfloat16"]
    assert bf16[1]["ratio_base"] == "jaxnets.fit manual float32"
    assert bf16[0]["times_s"] == next(r for r in rows_of(data, "mlp", "large")
                                      if r["variant"] == "jaxnets.fit manual")["times_s"]


def test_timing_rules(quick):
    _, data, _ = quick
    by_variant = {(r["part"], r["config"], r["variant"]): r for r in data["rows"]}
    timed = [r for r in data["rows"] if r["status"] == "measured" and r["unit"] == "s/epoch"]
    assert {r["part"] for r in timed} == {"mlp", "cnn", "ensemble", "bf16"}
    assert len(timed) == len([r for r in rows_of(data, "mlp") if r["status"] == "measured"]) + 2 * 3 + 2 + 2
    for r in timed:
        assert r["rounds"] == len(r["times_s"]) == 1
        assert all(t > 0 for t in r["times_s"])
        assert math.isclose(r["value"], r["median_s"] * r["scale"], rel_tol=1e-9)
        assert r["scaled"] is True and r["timed_batches"] < r["full_batches"]  # --quick times partial epochs
        assert r["warmup_s"] > 0 and r["compile_s"] >= 0
        assert r["compile_in_timed_s"] == 0, r  # no compilation inside the timed rounds
        base = next(b for (p, c, v), b in by_variant.items() if p == r["part"] and c == r["config"]
                    and v == r["ratio_base"])
        assert math.isclose(r["ratio"], r["value"] / base["value"], rel_tol=1e-9)


def test_ceiling_rows(quick):
    _, data, _ = quick
    rows = rows_of(data, "ceiling")
    mm = [r for r in rows if r["unit"] == "GFLOP/s"]
    assert {(r["config"], r["variant"]) for r in mm} == {
        (shape, f"jnp.matmul {dt}") for shape in ("(512x784)@(784x2048)", "(512x2048)@(2048x2048)")
        for dt in ("float32", "bfloat16")}
    for r in mm:
        assert r["value"] > 0 and r["best_gflops"] >= r["value"] and len(r["times_s"]) == r["samples"]
    shares = {r["variant"]: r for r in rows if r["unit"] == "%"}
    assert set(shares) == {"fit share of float32 ceiling", "fit share of bfloat16 ceiling"}
    large = {r["variant"]: r for r in rows_of(data, "bf16", "large")}
    for dtype in ("float32", "bfloat16"):
        s = shares[f"fit share of {dtype} ceiling"]
        assert s["fit_epoch_s"] == large[f"jaxnets.fit manual {dtype}"]["value"]
        assert math.isclose(s["value"], 100 * s["ceiling_epoch_s"] / s["fit_epoch_s"], rel_tol=1e-9)
        assert math.isclose(s["epoch_tflop"], 3 * 2 * 60000 * (784 * 2048 + 2048 * 2048 + 2048 * 10) / 1e12)
