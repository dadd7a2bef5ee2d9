"""The package ships `py.typed`, and the README's quick start type-checks cleanly with mypy against jaxnets'
annotations; the same script with a wrongly typed argument must not (so the check can fail)."""
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _quick_start() -> str:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)[0]


def _mypy(tmp_path, source: str):
    pytest.importorskip("mypy", reason="mypy is in the test extra: pip install -e '.[test]'")
    script = tmp_path / "quick_start.py"
    script.write_text(source)
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    cache = ROOT / ".cache" / "mypy"
    return subprocess.run([sys.executable, "-m", "mypy", "--follow-imports=silent", "--cache-dir", str(cache),
                           "--no-error-summary", str(script)], capture_output=True, text=True, env=env, cwd=tmp_path)


def test_package_is_marked_typed():
    assert (ROOT / "jaxnets" / "py.typed").exists()


def test_readme_quick_start_type_checks(tmp_path):
    source = _quick_start()
    assert "jn.fit(" in source
    done = _mypy(tmp_path, source)
    assert done.returncode == 0, done.stdout + done.stderr
    wrong = _mypy(tmp_path, source.replace("epochs=30", 'epochs="30"'))
    assert wrong.returncode != 0 and "epochs" in wrong.stdout, wrong.stdout
