"""The `jaxnets` command line: train, gradcheck, datasets (run in-process through `main`, plus the installed
console script once)."""
import json
import os
import subprocess
import sys

import pytest

from jaxnets.cli import main


def test_train_two_epochs_writes_metrics_plot_and_gradcheck(tmp_path, capsys):
    metrics, plot = tmp_path / "m.json", tmp_path / "curves.png"
    code = main(["train", "--dataset", "digits", "--sizes", "64,8,10", "--epochs", "2", "--batch-size", "64",
                 "--optimizer", "adam", "--learning-rate", "0.01", "--metrics-out", str(metrics),
                 "--plot-out", str(plot), "--gradcheck", "--gradcheck-batch", "4", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    rows = json.loads(metrics.read_text())["rows"]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "time"} <= set(rows[0])
    assert plot.read_bytes()[:4] == b"\x89PNG"
    lines = out.splitlines()
    test_line = next(i for i, line in enumerate(lines) if line.startswith("test accuracy: "))
    accuracy = float(lines[test_line].split()[2])
    assert 0.0 <= accuracy <= 1.0
    # the gradcheck tables come after the accuracy line: float32 then float64
    assert "manual~autodiff in float32" in "\n".join(lines[test_line:])
    assert "manual~autodiff in float64" in out and "gradient check: PASSED" in out


def test_train_rejects_sizes_that_do_not_fit_the_data(capsys):
    assert main(["train", "--dataset", "digits", "--sizes", "10,5,10", "--epochs", "1"]) == 2
    assert "use --sizes 64" in capsys.readouterr().err


def test_gradcheck_exit_status(capsys):
    args = ["gradcheck", "--sizes", "4,5,3", "--activation", "tanh", "--loss", "quadratic", "--penalty", "l2",
            "--lmbda", "0.1", "--batch", "3"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "man~auto" in out and "PASSED" in out
    # finite differences never agree exactly, so a zero tolerance must fail with exit status 1
    assert main(args + ["--fd-rtol", "0"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_datasets_lists_offline_availability(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    digits = next(line for line in out.splitlines() if line.startswith("digits"))
    assert "yes" in digits.split()
    assert "mnist" in out


def test_console_script_is_installed():
    exe = os.path.join(os.path.dirname(sys.executable), "jaxnets")
    if not os.path.exists(exe):
        pytest.skip("the jaxnets console script is not installed in this environment")
    done = subprocess.run([exe, "datasets"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "digits" in done.stdout
