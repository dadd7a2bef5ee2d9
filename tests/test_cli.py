"""The `jaxnets` command line: train, evaluate, predict, gradcheck (built-in models and the user's own layer),
datasets (run in-process through `main`, plus the installed console script once)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import jaxnets
from jaxnets import losses
from jaxnets.cli import build_parser, main, output_unit
from jaxnets.cli.checks import check_gradcheck_args, check_train_args
from jaxnets.cli.build import build_optimizer, build_penalty


def test_train_two_epochs_writes_metrics_plot_and_gradcheck(tmp_path, capsys):
    metrics, plot = tmp_path / "m.json", tmp_path / "curves.png"
    code = main(["train", "--dataset", "digits", "--sizes", "64,8,10", "--epochs", "2", "--batch-size", "64",
                 "--optimizer", "adam", "--learning-rate", "0.01", "--metrics-out", str(metrics),
                 "--plot-out", str(plot), "--gradcheck", "--gradcheck-batch", "4", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    # the layer table comes before training
    assert out.index("total: 610") < out.index("trained 2 epochs") and "Dense(8)" in out
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
    assert "in place Sigmoid" in out   # check_model: every layer checked where it sits


def test_train_rejects_sizes_that_do_not_fit_the_data(capsys):
    with pytest.raises(SystemExit) as done:
        main(["train", "--dataset", "digits", "--sizes", "10,5,10", "--epochs", "1"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "use --sizes 64" in err and "usage: jaxnets train" in err


def test_gradcheck_exit_status(capsys):
    args = ["gradcheck", "--sizes", "4,5,3", "--activation", "tanh", "--loss", "quadratic", "--penalty", "l2",
            "--lmbda", "0.1", "--batch", "3"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "man~auto" in out and "PASSED" in out and "in place Tanh" in out
    # finite differences never agree exactly, so a zero tolerance must fail with exit status 1, naming a layer
    assert main(args + ["--fd-rtol", "0"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "gradient mismatch in" in out


@pytest.mark.parametrize("model, extra, layer", [
    ("cnn", ["--sizes", "64,3"], "in place Conv2D"),
    ("bn", ["--sizes", "4,5,3", "--eval", "--batch", "1"], "in place BatchNorm"),   # one example is fine in eval
])
def test_gradcheck_models_check_every_layer_in_place(capsys, model, extra, layer):
    assert main(["gradcheck", "--model", model, "--activation", "tanh", "--batch", "3"] + extra) == 0
    out = capsys.readouterr().out
    assert layer in out and "gradient check: PASSED" in out
    assert ("evaluation mode" if "--eval" in extra else "training mode") in out


TRAIN = ["train", "--epochs", "1", "--no-progress"]
GRADCHECK = ["gradcheck", "--sizes", "4,5,3", "--batch", "3"]
USAGE_ERRORS = [
    (TRAIN + ["--sizes", "64,,10"], "--sizes"),
    (TRAIN + ["--sizes", "64,30,10,"], "--sizes"),
    (TRAIN + ["--val-fraction", "-0.1"], "--val-fraction"),
    (TRAIN + ["--val-fraction", "1"], "--val-fraction"),
    (TRAIN + ["--early-stopping", "0"], "--early-stopping"),
    (TRAIN + ["--early-stopping", "3", "--val-fraction", "0"], "--early-stopping"),
    (TRAIN + ["--gradcheck", "--gradcheck-batch", "0"], "--gradcheck-batch"),
    (TRAIN + ["--seed", "-5"], "--seed"),
    (TRAIN + ["--epochs", "0"], "--epochs"),
    (TRAIN + ["--batch-size", "0"], "--batch-size"),
    (TRAIN + ["--checkpoint-every", "0"], "--checkpoint-every"),
    (TRAIN + ["--learning-rate", "inf"], "--learning-rate"),
    (TRAIN + ["--learning-rate", "nan"], "--learning-rate"),
    (TRAIN + ["--learning-rate", "0"], "--learning-rate"),
    (TRAIN + ["--lmbda", "-0.1"], "--lmbda"),
    (TRAIN + ["--lmbda", "nan"], "--lmbda"),
    (TRAIN + ["--momentum", "1"], "--momentum"),
    (TRAIN + ["--momentum", "-0.5"], "--momentum"),
    (TRAIN + ["--metrics-out", "{file}/x.json"], "--metrics-out"),
    (TRAIN + ["--metrics-out", "{dir}"], "--metrics-out"),
    (TRAIN + ["--plot-out", "{file}/sub/c.png"], "--plot-out"),
    (TRAIN + ["--metrics-out", ""], "--metrics-out"),
    (TRAIN + ["--checkpoint-dir", "{file}"], "--checkpoint-dir"),
    (TRAIN + ["--checkpoint-dir", "{file}/runs"], "--checkpoint-dir"),
    (TRAIN + ["--resume"], "--resume"),
    (TRAIN + ["--loss", "binary_cross_entropy", "--output", "identity"], "--output"),
    (GRADCHECK + ["--batch", "0"], "--batch"),
    (GRADCHECK + ["--rtol", "-1"], "--rtol"),
    (GRADCHECK + ["--rtol", "nan"], "--rtol"),
    (GRADCHECK + ["--fd-rtol", "nan"], "--fd-rtol"),
    (GRADCHECK + ["--fd-rtol", "-0.1"], "--fd-rtol"),
    (GRADCHECK + ["--loss", "binary_cross_entropy", "--output", "identity"], "--output"),
    (GRADCHECK + ["--loss", "binary_cross_entropy", "--output", "none"], "--output"),
    (GRADCHECK + ["--loss", "softmax_cross_entropy", "--sizes", "4,5,1"], "--loss"),
    (GRADCHECK + ["--model", "bn", "--batch", "1"], "--batch"),
    (TRAIN + ["--metrics-out", "{dir}/m.txt"], "--metrics-out"),
    # flags that would be ignored
    (TRAIN + ["--optimizer", "adam", "--momentum", "0.9"], "--momentum 0.9 would be ignored with --optimizer adam"),
    (TRAIN + ["--optimizer", "adagrad", "--momentum", "0.5"], "--momentum"),
    (TRAIN + ["--lmbda", "0.5"], "--lmbda 0.5 would be ignored with --penalty none"),
    (TRAIN + ["--penalty", "l2"], "--lmbda"),
    (TRAIN + ["--penalty", "l1", "--lmbda", "0"], "--lmbda"),
    (TRAIN + ["--b1", "0.8"], "--b1 0.8 would be ignored with --optimizer sgd"),
    (TRAIN + ["--optimizer", "rmsprop", "--b2", "0.99"], "--b2"),
    (TRAIN + ["--optimizer", "momentum", "--eps", "1e-06"], "--eps"),
    (TRAIN + ["--optimizer", "adam", "--decay", "0.5"], "--decay"),
    (TRAIN + ["--optimizer", "adam", "--weight-decay", "0.01"], "--weight-decay 0.01 would be ignored"),
    (TRAIN + ["--checkpoint-every", "2"], "--checkpoint-every 2 would be ignored with no --checkpoint-dir"),
    (TRAIN + ["--overwrite"], "--overwrite would be ignored"),
    (TRAIN + ["--gradcheck-batch", "4"], "--gradcheck-batch 4 would be ignored with no --gradcheck"),
    (TRAIN + ["--data-dir", "{dir}"], "would be ignored with --dataset digits"),
    (GRADCHECK + ["--lmbda", "0.1"], "--lmbda 0.1 would be ignored with --penalty none"),
    (GRADCHECK + ["--penalty", "l2"], "--lmbda"),
    (GRADCHECK + ["--eval"], "--eval would be ignored with --model mlp"),
]


@pytest.mark.parametrize("argv, flag", USAGE_ERRORS, ids=[" ".join(a[4 if a[0] == "train" else 5:])
                                                          for a, _ in USAGE_ERRORS])
def test_malformed_arguments_are_usage_errors_before_any_work(tmp_path, capsys, argv, flag):
    (tmp_path / "file").write_text("not a directory")
    argv = [a.format(file=tmp_path / "file", dir=tmp_path) for a in argv]
    with pytest.raises(SystemExit) as done:
        main(argv)
    captured = capsys.readouterr()
    assert done.value.code == 2
    assert f"usage: jaxnets {argv[0]}" in captured.err and flag in captured.err, captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""   # nothing was loaded, trained or checked
    assert sorted(os.listdir(tmp_path)) == ["file"]


@pytest.mark.parametrize("extra, expected", [
    (["--optimizer", "rmsprop", "--momentum", "0.5", "--decay", "0.8", "--eps", "1e-6"],
     "rmsprop(lr=0.001, decay=0.8)"),
    (["--optimizer", "adamw", "--b1", "0.8", "--b2", "0.99", "--weight-decay", "0.01"],
     "adamw(lr=0.001, weight_decay=0.01)"),
    (["--optimizer", "adam"], "adam(lr=0.001, b1=0.9, b2=0.999)"),
    (["--optimizer", "momentum", "--momentum", "0.5"], "sgd(lr=0.01, momentum=0.5)"),
    (["--optimizer", "sgd"], "sgd(lr=0.01)"),
    (["--optimizer", "adagrad"], "adagrad(lr=0.001)"),
    (["--optimizer", "adam", "--schedule", "piecewise", "--boundaries", "1:0.1"], "adam(lr=0.001, x0.1 after epoch 1"),
    (["--optimizer", "sgd", "--clip-norm", "1", "--clip-value", "0.5"],
     "clip(0.5) -> clip_by_global_norm(1.0) -> sgd(lr=0.01)"),
    (["--optimizer", "rmsprop"], "rmsprop(lr=0.001, decay=0.9)"),
])
def test_the_flags_an_optimizer_uses_are_accepted_and_defaults_fill_in(extra, expected):
    args = build_parser().parse_args(TRAIN + extra)
    check_train_args(args)
    assert build_optimizer(args)[1].startswith(expected)
    assert args.checkpoint_every == 1 and args.gradcheck_batch == 8 and build_penalty(args, 10) is None


def test_penalty_and_checkpoint_flags_are_accepted_with_what_they_need(tmp_path):
    args = build_parser().parse_args(TRAIN + ["--penalty", "l2", "--lmbda", "0.5", "--checkpoint-dir",
                                              str(tmp_path / "c"), "--checkpoint-every", "2", "--overwrite",
                                              "--gradcheck", "--gradcheck-batch", "3"])
    check_train_args(args)
    assert build_penalty(args, 10).name.startswith("l2") and args.checkpoint_every == 2 and args.gradcheck_batch == 3
    args = build_parser().parse_args(GRADCHECK + ["--model", "bn", "--eval", "--penalty", "l1", "--lmbda", "0.1"])
    check_gradcheck_args(args)


def test_ctrl_c_during_training_stops_cleanly_keeps_the_checkpoint_and_exits_130(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(jaxnets.__file__)))
    ckpt = tmp_path / "ckpt"
    cmd = [sys.executable, "-m", "jaxnets.cli", "train", "--sizes", "64,8,10", "--epochs", "100000", "--batch-size",
           "256", "--verbose", "--no-progress", "--checkpoint-dir", str(ckpt)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": root, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 120
        while not any(ckpt.glob("ckpt-*.npz")):     # the first epoch is done and checkpointed
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate(timeout=10)
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    last = [line for line in err.splitlines() if line.strip()][-1]
    assert last.startswith("jaxnets train: interrupted (Ctrl-C); the last checkpoint ") and "--resume" in last, err
    kept = sorted(ckpt.glob("ckpt-*.npz"))
    assert kept and str(kept[-1]) in last
    jaxnets.checkpoint.load(kept[-1])     # complete, loadable


def test_usage_error_from_the_command_line_has_no_traceback():
    root = os.path.dirname(os.path.dirname(os.path.abspath(jaxnets.__file__)))
    done = subprocess.run([sys.executable, "-m", "jaxnets.cli", "train", "--seed", "-5"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": root})
    assert done.returncode == 2 and done.stdout == ""
    assert "argument --seed:" in done.stderr and "Traceback" not in done.stderr


def test_help_shows_defaults_and_version_prints_it(capsys):
    for command, shown in (("train", ["(default: 30)", "(default: 64,30,10)", "(default: 0.1)"]),
                           ("gradcheck", ["(default: mlp)", "(default: 1e-06)"])):
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        out = capsys.readouterr().out
        assert done.value.code == 0 and all(s in out for s in shown), out
        assert "(default: None)" not in out and "(default: False)" not in out
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"jaxnets {jaxnets.__version__}\n"


def test_auto_output_follows_loss_on_logits():
    parser = build_parser()
    for name, loss in losses.LOSSES.items():
        args = parser.parse_args(["gradcheck", "--loss", name, "--activation", "tanh"])
        expected = None if loss.on_logits else ("sigmoid" if name == "binary_cross_entropy" else "tanh")
        assert output_unit(args) == expected, name


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


def test_default_learning_rates_are_the_apis_table():
    from jaxnets.optim.names import DEFAULT_LEARNING_RATES

    for name, lr in DEFAULT_LEARNING_RATES.items():
        args = build_parser().parse_args(TRAIN + ["--optimizer", name])
        check_train_args(args)
        assert f"(lr={lr}" in build_optimizer(args)[1], name


def test_model_defaults_are_the_factorys():
    from jaxnets.cli.build import model_recipe

    for model, activation in (("mlp", "sigmoid"), ("cnn", "sigmoid"), ("resnet_mlp", "relu"), ("resnet_cnn", "relu")):
        args = build_parser().parse_args(["train", "--model", model])
        check_train_args(args)
        name, kw = model_recipe(args, 64, 10)
        assert name == model and kw["activation"] == activation
        assert not {"kernel", "hidden", "features", "dropout", "batch_norm"} & set(kw)   # the factory decides


@pytest.mark.parametrize("argv, message", [
    (["--model", "cnn", "--sizes", "64,5,10"], "--sizes 64,5,10 would be ignored with --model cnn"),
    (["--model", "mlp", "--kernel", "3"], "--kernel 3 would be ignored with --model mlp"),
    (["--model", "resnet_cnn", "--dropout", "0.5"], "--dropout 0.5 would be ignored with --model resnet_cnn"),
    (["--warmup-epochs", "2"], "--warmup-epochs 2 would be ignored with --schedule constant"),
    (["--schedule", "piecewise"], "--schedule piecewise needs --boundaries"),
    (["--schedule", "warmup_cosine", "--epochs", "1"], "--warmup-epochs 1 leaves no epoch for the cosine decay with --epochs 1"),
    (["--boundaries", "x:1"], "argument --boundaries: entry 1 of 'x:1'"),
    (["--features", "4,0"], "argument --features: entry 2 of '4,0' is '0'"),
    (["--activation", "swish"], "argument --activation: invalid choice: 'swish'"),
    (["--dropout", "1"], "argument --dropout: must lie in [0, 1)"),
    (["--save", "run.pkl"], "--save run.pkl: a saved model is one .npz file; end the name with .npz"),
])
def test_train_option_errors_name_the_flag_and_the_fix(capsys, argv, message):
    with pytest.raises(SystemExit) as done:
        main(["train"] + argv)
    err = capsys.readouterr().err
    assert done.value.code == 2 and message in err, err


def test_every_activation_of_the_library_is_a_choice():
    from jaxnets import models

    for name in models.ACTIVATIONS:
        args = build_parser().parse_args(["train", "--activation", name])
        check_train_args(args)


def test_train_a_cnn_save_evaluate_and_predict_on_new_data(tmp_path, capsys, monkeypatch):
    import numpy as np

    monkeypatch.chdir(tmp_path)
    run = "run.npz"
    code = main(["train", "--model", "cnn", "--features", "4", "--kernel", "3", "--hidden", "16", "--activation",
                 "relu", "--dropout", "0.1", "--batch-norm", "--optimizer", "adam", "--learning-rate", "0.01",
                 "--schedule", "cosine", "--clip-norm", "5", "--epochs", "1", "--batch-size", "128",
                 "--no-progress", "--save", run])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "Conv2D(4, 3)" in out and "BatchNorm" in out and "Dropout(0.1)" in out and f"model saved to {run}" in out
    accuracy = float(out.split("test accuracy: ")[1].split()[0])

    # the saved file alone rebuilds the model: evaluate reproduces train's test accuracy
    model, params, state = jaxnets.checkpoint.load_model(run)
    assert model.name.startswith("cnn(")
    assert main(["evaluate", run]) == 0
    out = capsys.readouterr().out
    assert out.startswith("digits test split: 360 examples") and f"accuracy {accuracy:.4f}" in out, out

    # new data in several layouts: flat rows (.npy), images (.npz), one example per CSV row
    ds = jaxnets.data.load("digits", flatten=False)
    x_new = ds.x_test[:7]
    expected = np.asarray(jaxnets.predict(model, params, state, x_new)).argmax(-1)
    np.save("flat.npy", x_new.reshape(7, 64))
    np.savez("images.npz", x=x_new[..., 0])
    np.savetxt("rows.csv", x_new.reshape(7, 64), delimiter=",")
    assert main(["predict", run, "--input", "flat.npy"]) == 0
    assert capsys.readouterr().out.split() == [str(c) for c in expected]
    assert main(["predict", run, "--input", "images.npz", "--output", "classes.npy"]) == 0
    np.testing.assert_array_equal(np.load("classes.npy"), expected)
    assert main(["predict", run, "--input", "rows.csv", "--outputs", "probabilities", "--output", "p.csv"]) == 0
    p = np.loadtxt("p.csv", delimiter=",")
    assert p.shape == (7, 10) and np.allclose(p.sum(1), 1, atol=1e-4)
    np.testing.assert_array_equal(p.argmax(1), expected)

    # evaluate on the user's own labelled arrays
    np.savez("labelled.npz", x=x_new, y=ds.y_test[:7])
    assert main(["evaluate", run, "--data", "labelled.npz"]) == 0
    assert "labelled.npz: 7 examples" in capsys.readouterr().out

    # inputs that do not fit: the error names the flag, the shapes and the fix
    np.save("wrong.npy", np.zeros((3, 10), np.float32))
    with pytest.raises(SystemExit) as done:
        main(["predict", run, "--input", "wrong.npy"])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "--input wrong.npy: inputs of shape (3, 10) do not fit" in err
    assert "give an array (examples, 64) or (examples, 8, 8, 1)" in err


@pytest.mark.parametrize("argv, message", [
    (["predict", "missing.npz", "--input", "x.npy"], "RUN missing.npz: no such file"),
    (["predict", "run.npz", "--input", "x.txt"], "--input x.txt: no such file"),
    (["predict", "run.npz", "--input", "run.npz", "--output", "out.json"], "end it with .npy, .csv or .txt"),
    (["evaluate", "run.npz", "--data", "run.npz", "--dataset", "digits"], "--data FILE.npz replaces the dataset"),
])
def test_saved_run_commands_refuse_bad_paths_before_loading(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.npz").write_bytes(b"")
    with pytest.raises(SystemExit) as done:
        main(argv)
    err = capsys.readouterr().err
    assert done.value.code == 2 and message in err, err


def test_predict_on_a_file_that_is_not_a_saved_model(tmp_path, capsys, monkeypatch):
    import numpy as np

    monkeypatch.chdir(tmp_path)
    jaxnets.checkpoint.save("plain.npz", {"w": np.zeros(3)})
    np.save("x.npy", np.zeros((2, 3), np.float32))
    with pytest.raises(SystemExit) as done:
        main(["predict", "plain.npz", "--input", "x.npy"])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "RUN plain.npz: cannot load a model from it" in err and "holds no model recipe" in err
    assert "Traceback" not in err, err


USER_LAYERS = """
import jax.numpy as jnp
import jaxnets as jn
from jaxnets.layers import elementwise

MyTanh = elementwise("MyTanh", jnp.tanh, lambda z: 1 - jnp.tanh(z) ** 2)
WrongTanh = elementwise("WrongTanh", jnp.tanh, lambda z: 1 - jnp.tanh(z))     # forgot the square
Swish = jn.layers.from_function(lambda x: x * jnp.tanh(x), name="swishish")   # an autodiff backward


def block():
    return jn.serial(jn.Dense(4), MyTanh)
"""


@pytest.mark.parametrize("target, code, shown", [
    ("my_layers:MyTanh", 0, "gradient check: PASSED"),
    ("my_layers:block", 0, "gradient check: PASSED"),           # a zero-argument factory
    ("{path}:MyTanh", 0, "gradient check: PASSED"),             # a file path instead of a module name
    ("my_layers:WrongTanh", 1, "gradient mismatch in layer WrongTanh"),
])
def test_gradcheck_a_user_module(tmp_path, capsys, monkeypatch, target, code, shown):
    (tmp_path / "my_layers.py").write_text(USER_LAYERS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "my_layers", raising=False)
    target = target.format(path=tmp_path / "my_layers.py")
    assert main(["gradcheck", target, "--input-shape", "3", "--batch", "2"]) == code
    assert shown in capsys.readouterr().out


def test_gradcheck_user_module_in_a_subprocess_exits_nonzero_on_a_wrong_backward(tmp_path):
    (tmp_path / "my_layers.py").write_text(USER_LAYERS, encoding="utf-8")
    root = os.path.dirname(os.path.dirname(os.path.abspath(jaxnets.__file__)))
    env = {**os.environ, "PYTHONPATH": root}
    cmd = [sys.executable, "-m", "jaxnets.cli", "gradcheck", "--input-shape", "3", "--batch", "2"]
    done = subprocess.run(cmd + ["my_layers:WrongTanh"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1 and "gradient check: FAILED" in done.stdout, done.stdout + done.stderr


def test_gradcheck_of_an_autodiff_layer_needs_allow_autodiff(tmp_path, capsys, monkeypatch):
    (tmp_path / "my_layers.py").write_text(USER_LAYERS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "my_layers", raising=False)
    assert main(["gradcheck", "my_layers:Swish", "--input-shape", "3", "--batch", "2"]) == 2
    assert "proves nothing; pass --allow-autodiff" in capsys.readouterr().err
    assert main(["gradcheck", "my_layers:Swish", "--input-shape", "3", "--batch", "2", "--allow-autodiff"]) == 0
    assert "autodiff backward" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["missing_module:X", "--input-shape", "3"], "cannot import module 'missing_module'"),
    (["my_layers:Nope", "--input-shape", "3"], "my_layers has no attribute 'Nope'; it defines"),
    (["my_layers:jnp", "--input-shape", "3"], "jnp is a module, not a jaxnets Layer"),
])
def test_gradcheck_user_module_errors_say_what_to_do(tmp_path, capsys, monkeypatch, argv, message):
    (tmp_path / "my_layers.py").write_text(USER_LAYERS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "my_layers", raising=False)
    assert main(["gradcheck"] + argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


@pytest.mark.parametrize("argv, message", [
    (["my_layers:MyTanh"], "my_layers:MyTanh needs --input-shape"),
    (["my_layers", "--input-shape", "3"], "name the module and the layer separated by a colon"),
    (["my_layers:MyTanh", "--input-shape", "3", "--model", "cnn"], "--model cnn would be ignored with the layer"),
    (["--input-shape", "3"], "--input-shape 3 would be ignored with --model mlp"),
    (["my_layers:MyTanh", "--input-shape", "3x0"], "argument --input-shape: entry 2 of '3x0'"),
])
def test_gradcheck_user_module_usage_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as done:
        main(["gradcheck"] + argv)
    err = capsys.readouterr().err
    assert done.value.code == 2 and message in err, err
