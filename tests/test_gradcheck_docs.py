"""docs/custom-vjp.md runs as written, and its checks catch a broken rule (the guide's example, mutated)."""
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BROKEN = ("unit = x / jnp.where(n > 0, n, 1.0)[:, None]", "unit = x / jnp.where(n > 0, n * n, 1.0)[:, None]")


def _blocks():
    return re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "custom-vjp.md").read_text(encoding="utf-8"), re.S)


def _run(tmp_path, module, tests, *select):
    (tmp_path / "my_ops.py").write_text(module, encoding="utf-8")
    (tmp_path / "test_my_ops.py").write_text(tests, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path), *select],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)


def test_custom_vjp_guide_runs_as_written(tmp_path):
    module, tests = _blocks()
    done = _run(tmp_path, module, tests)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "5 passed" in done.stdout


def test_custom_vjp_guide_catches_a_broken_rule(tmp_path):
    module, tests = _blocks()
    assert BROKEN[0] in module
    done = _run(tmp_path, module.replace(*BROKEN), tests, "-k", "test_rule_matches_the_function")
    assert done.returncode == 1, done.stdout[-3000:]
    assert "AssertionError: gradient mismatch in the custom rule of safe_norm: argument x: rule~autodiff" in \
        done.stdout, done.stdout[-3000:]


def test_every_test_the_feature_table_cites_exists():
    text = (ROOT / "docs" / "custom-vjp.md").read_text(encoding="utf-8")
    table = text[text.index("## Feature by feature"):]
    cited = set(re.findall(r"\b(test_\w+)", table)) - {"test_util"}   # jax.test_util is a column, not a test
    sources = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").glob("test_*.py"))
    defined = set(re.findall(r"^def (test_\w+)", sources, re.M))
    files = {p.stem for p in (ROOT / "tests").glob("test_*.py")}
    assert len(cited) >= 15
    assert cited - defined - files == set()
