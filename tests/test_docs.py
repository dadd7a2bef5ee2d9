"""The code in the docs runs: docs/custom-layers.md's two layers and the pytest file it tells users to copy; the site
builds strict (every example of every page runs in test_docs_examples.py)."""
import os
import re
import subprocess
import sys

import pytest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(name):
    return re.findall(r"```python\n(.*?)```", (ROOT / "docs" / name).read_text(encoding="utf-8"), re.S)


def test_custom_layers_guide_runs_as_written(tmp_path):
    leaky, dense, test_file = python_blocks("custom-layers.md")
    (tmp_path / "my_layers.py").write_text(leaky + "\n" + dense, encoding="utf-8")
    (tmp_path / "test_my_layers.py").write_text(test_file, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "5 passed" in done.stdout


def test_custom_layers_guide_catches_the_wrong_slope(tmp_path):
    leaky, dense, test_file = python_blocks("custom-layers.md")
    wrong = leaky.replace("jnp.where(z > 0, 1.0, 0.01)", "jnp.where(z > 0, 1.0, 0.02)")
    assert wrong != leaky
    (tmp_path / "my_layers.py").write_text(wrong + "\n" + dense, encoding="utf-8")
    (tmp_path / "test_my_layers.py").write_text(test_file, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1
    assert "gradient mismatch in layer MyLeakyRelu (at 1 of the model, checked in place)" in done.stdout


def test_the_site_builds_strict(tmp_path):
    """`mkdocs build --strict` (what `make docs` runs): no broken link, nav entry or docstring cross-reference."""
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[docs]')")
    pytest.importorskip("mkdocstrings", reason="mkdocstrings is not installed (pip install -e '.[docs]')")
    pytest.importorskip("material", reason="mkdocs-material is not installed (pip install -e '.[docs]')")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "site" / "api" / "layers" / "index.html").exists()
    assert (tmp_path / "site" / "experiments" / "index.html").read_text(encoding="utf-8").count("<img") >= 1
