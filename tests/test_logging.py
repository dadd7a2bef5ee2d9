"""Loggers passed as fit callbacks (JSON lines, CSV, TensorBoard event files), pandas views of histories and
sweeps, and the printed summary of a dataset."""
import csv
import json

import jax
import numpy as np
import optax
import pytest

import jaxnets as jn
from jaxnets import losses
from test_training_common import blobs, tiny_model

TRAIN, VAL = blobs(40), blobs(20, seed=1)


def _fit(**kw):
    return jn.fit(tiny_model(), losses.softmax_cross_entropy, optax.sgd(0.3), TRAIN, epochs=3, batch_size=8,
                  key=jax.random.key(0), val_data=VAL, progress=False, **kw)


def test_json_lines_and_csv_loggers_write_every_epoch(tmp_path):
    lines, table = jn.JSONLinesLogger(tmp_path / "m.jsonl"), jn.CSVLogger(tmp_path / "sub" / "m.csv")
    r = _fit(callbacks=[lines, table])
    lines.close()
    table.close()
    rows = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert [row["val_loss"] for row in rows] == pytest.approx(r.history["val_loss"])
    with open(tmp_path / "sub" / "m.csv", newline="") as f:
        got = list(csv.reader(f))
    assert got[0] == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "time"]
    assert [float(v) for v in got[3][1:5]] == pytest.approx([r.history[c][2] for c in got[0][1:5]])


def _read_events(directory):
    """{tag: [(step, value)]} from TensorBoard event files, read record by record (the TFRecord framing: uint64
    length, uint32 crc, payload, uint32 crc) and parsed with tensorboardX's Event protobuf."""
    import struct

    from tensorboardX.proto import event_pb2

    scalars = {}
    for path in sorted(directory.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def test_tensorboard_logger_writes_event_files_that_read_back(tmp_path):
    pytest.importorskip("tensorboardX")
    logger = jn.TensorBoardLogger(tmp_path / "tb")
    r = _fit(callbacks=[logger])
    logger.close()
    scalars = _read_events(tmp_path / "tb")
    assert {"train/loss", "val/loss", "train/accuracy", "val/accuracy", "time"} <= set(scalars)
    assert [step for step, _ in scalars["val/loss"]] == [1, 2, 3]
    assert [v for _, v in scalars["val/loss"]] == pytest.approx(r.history["val_loss"], rel=1e-6)


def test_history_and_sweep_results_to_pandas():
    pd = pytest.importorskip("pandas")
    r = _fit()
    frame = r.history.to_pandas()
    assert isinstance(frame, pd.DataFrame) and frame.index.name == "epoch" and list(frame.index) == [1, 2, 3]
    assert frame["val_loss"].tolist() == pytest.approx(r.history["val_loss"])
    sweep = jn.grid_search(tiny_model(), losses.softmax_cross_entropy, lambda hp: optax.sgd(hp["lr"]), TRAIN,
                           grid={"lr": [0.1, 0.3]}, epochs=2, batch_size=8, key=jax.random.key(0), val_data=VAL,
                           progress=False)
    table = sweep.to_pandas()
    assert table["lr"].tolist() == pytest.approx([0.1, 0.3]) and "val_loss" in table.columns
    assert sweep.result(1).history == sweep.histories[1]


def test_a_dataset_prints_a_summary_not_its_arrays():
    text = str(jn.data.load("digits"))
    assert text.startswith("Dataset(1437 train / 360 test examples of shape (64,) float32 in [0, 1], 10 classes")
    assert len(text) < 200 and repr(jn.data.load("sine")).endswith("regression)")
    assert np.asarray(jn.data.load("digits").x_train).shape == (1437, 64)   # still a NamedTuple of arrays


# ------------------------------------------------------------------------------------------ nothing dropped
def test_csv_logger_appending_to_an_earlier_runs_file_with_fewer_columns_is_an_error(tmp_path):
    path = tmp_path / "m.csv"
    earlier = jn.CSVLogger(path)
    earlier(1, {"epoch": 1, "train_loss": 0.5})          # a run without validation data
    earlier.close()
    later = jn.CSVLogger(path)
    with pytest.raises(ValueError, match=r"CSVLogger\(.*m\.csv\): the row of epoch 1 has columns \['val_loss'\] "
                                         r"that the header of the existing file.*append=False"):
        later(1, {"epoch": 1, "train_loss": 0.4, "val_loss": 0.6})
    later.close()
    assert path.read_text().splitlines() == ["epoch,train_loss", "1,0.5"]     # nothing half-written
    # the valid neighbours: the same columns continue the file; append=False starts it afresh
    same = jn.CSVLogger(path)
    same(2, {"epoch": 2, "train_loss": 0.25})
    same.close()
    assert path.read_text().splitlines() == ["epoch,train_loss", "1,0.5", "2,0.25"]
    fresh = jn.CSVLogger(path, append=False)
    fresh(1, {"epoch": 1, "train_loss": 0.4, "val_loss": 0.6})
    fresh.close()
    assert path.read_text().splitlines() == ["epoch,train_loss,val_loss", "1,0.4,0.6"]


def test_csv_logger_refuses_a_column_that_appears_after_the_first_row(tmp_path):
    logger = jn.CSVLogger(tmp_path / "m.csv")
    logger(1, {"epoch": 1, "train_loss": 0.5})
    with pytest.raises(ValueError, match=r"epoch 2 has columns \['lr'\] that the file's header"):
        logger(2, {"epoch": 2, "train_loss": 0.4, "lr": 0.1})
    logger.close()
    with pytest.raises(TypeError, match="append"):
        jn.CSVLogger(tmp_path / "n.csv", append="no")


def test_loggers_write_numpy_and_jax_scalars_and_name_a_column_that_is_not_one(tmp_path):
    row = {"epoch": 1, "train_loss": np.float32(0.5), "val_loss": jax.numpy.asarray(0.25),
           "val_accuracy": np.float32("nan")}
    lines, table = jn.JSONLinesLogger(tmp_path / "m.jsonl"), jn.CSVLogger(tmp_path / "m.csv")
    lines(1, row)
    table(1, row)
    lines.close()
    table.close()
    assert json.loads((tmp_path / "m.jsonl").read_text()) == {"epoch": 1, "train_loss": 0.5, "val_loss": 0.25,
                                                             "val_accuracy": None}
    assert (tmp_path / "m.csv").read_text().splitlines()[1] == "1,0.5,0.25,"
    bad = jn.JSONLinesLogger(tmp_path / "bad.jsonl")
    with pytest.raises(TypeError, match=r"column 'confusion' holds .* of shape \(2, 2\), not a scalar"):
        bad(1, {"epoch": 1, "confusion": np.eye(2)})
    bad.close()


def test_tensorboard_logger_keeps_numpy_scalars_and_custom_columns(tmp_path):
    pytest.importorskip("tensorboardX")
    logger = jn.TensorBoardLogger(tmp_path / "tb")
    logger(1, {"epoch": 1, "train_loss": np.float32(0.5), "lr": jax.numpy.asarray(0.1)})
    logger.close()
    scalars = _read_events(tmp_path / "tb")
    assert scalars["train/loss"] == [(1, 0.5)] and scalars["lr"] == [(1, pytest.approx(0.1))]
