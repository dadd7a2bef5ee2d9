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
