"""The code in the docs runs: docs/custom-layers.md's two layers and the pytest file it tells users to copy."""
import os
import re
import subprocess
import sys
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
