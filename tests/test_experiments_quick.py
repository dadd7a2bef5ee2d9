"""Smoke test of experiments/: every experiment's --quick mode runs and writes its JSON and PNG files.

One subprocess runs `python -m experiments.run_all --quick --out <tmp>` (JAX imported and the data loaded once,
as `make experiments-quick` does). Quick runs are compile-bound (a few hundred images, 1–2 epochs), so the
subprocess asks XLA for its cheapest backend optimisation level (`--xla_backend_optimization_level=0`), which
cuts compile time by about a third; results are not compared with anything. Each experiment's check then reads
its JSON (quick flag, claim, measured result, listed figures) and checks every listed PNG. Quick runs never write
a README row; that is checked on a README path inside the temporary directory (so that edits of
experiments/README.md made while the test runs cannot disturb it).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from experiments import common, run_all  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("experiments_quick")
    readme = out / "README.md"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()
    proc = subprocess.run([sys.executable, "-m", "experiments.run_all", "--quick", "--out", str(out), "--readme",
                           str(readme)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    return out, proc, readme


def test_run_all_quick_succeeds_and_writes_no_readme_row(quick_run):
    out, proc, readme = quick_run
    assert proc.returncode == 0, f"run_all --quick failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert "run_all summary (quick)" in proc.stdout
    assert not readme.exists(), "a --quick run wrote a README row"


@pytest.mark.parametrize("number", sorted(run_all.EXPERIMENTS))
def test_quick_mode_writes_json_and_png(number, quick_run):
    out, proc, _ = quick_run
    name = run_all.EXPERIMENTS[number]
    path = out / f"{name}.json"
    assert path.exists(), f"{name} wrote no JSON:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert payload["experiment"] == number and payload["name"] == name
    assert payload["quick"] is True
    assert payload["claim"] and payload["measured"] and payload["machine"]
    assert payload["run_time_s"] >= 0 and payload["results"]
    assert payload["figures"], f"{name} listed no figure"
    for fig in payload["figures"]:
        data = (out / fig).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 5000, f"{fig} is not a non-trivial PNG"


def test_readme_row_is_replaced_not_duplicated(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Experiments\n\nintro\n", encoding="utf-8")
    common.update_readme(readme, 3, "claim three", "cmd3", "0.80", "10 s", "cpu")
    common.update_readme(readme, 1, "claim one", "cmd1", "0.95", "5 s", "cpu")
    common.update_readme(readme, 3, "claim | three", "cmd3", "0.82", "11 s", "cpu")
    text = readme.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [r.split("|")[1].strip() for r in rows] == ["1", "3"]
    assert "0.82" in rows[1] and "0.80" not in text and "claim \\| three" in rows[1]
    assert text.startswith("# Experiments\n\nintro\n")
    assert text.count(common.BEGIN) == 1 and text.count(common.END) == 1
