"""Shared plumbing for the experiment scripts: arguments, timing, machine description, JSON, README rows, plots,
data loading; the training helpers of `experiments.trainers` are re-exported.

    run = start(1, "e01_first_network", CLAIM, argv)        # parses --quick/--out/--seed/--no-readme
    ...
    run.savefig(fig, "curves")                                 # <out>/e01_first_network_curves.png
    run.finish(results, measured="MLP 0.87 (test at best val)") # <out>/e01_first_network.json (+ README row)
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.transforms as mtransforms  # noqa: E402
import numpy as np  # noqa: E402
import jaxnets  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
QUICK_RESULTS = RESULTS / "quick"  # quick runs never overwrite the full results
README = HERE / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
HEADER = ("| # | claim | command | measured result | run time | machine |\n"
          "|---|---|---|---|---|---|")


# --- machine and timing ------------------------------------------------------------------------------------------
def machine() -> str:
    """One line: CPU model and count, OS, Python, jax version and backend."""
    import jax

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (f"{cpu} x{os.cpu_count()} cores, {platform.system()} {platform.machine()}, Python "
            f"{platform.python_version()}, jax {jax.__version__} ({jax.default_backend()})")


def fmt_time(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


# --- the run object --------------------------------------------------------------------------------------------
class Run:
    """One execution of one experiment: its options, output paths, clock, and the results writer."""

    def __init__(self, exp_id: int, name: str, claim: str, args: argparse.Namespace):
        self.exp_id, self.name, self.claim, self.args = exp_id, name, claim, args
        self.quick, self.seed = bool(args.quick), int(args.seed)
        self.out = Path(args.out) if args.out else (QUICK_RESULTS if self.quick else RESULTS)
        self.out.mkdir(parents=True, exist_ok=True)
        self.figures: list[str] = []
        self.t0 = time.perf_counter()

    def size(self, full, quick):
        """`quick` in --quick mode, else `full`."""
        return quick if self.quick else full

    def path(self, suffix: str) -> Path:
        return self.out / f"{self.name}_{suffix}"

    def log(self, *parts) -> None:
        print(f"[{self.name} {time.perf_counter() - self.t0:6.1f}s]", *parts, flush=True)

    def savefig(self, fig, suffix: str) -> Path:
        """Lay out, place the legends (`place_legends`) and write <out>/<name>_<suffix>.png; `bbox_inches="tight"`
        keeps legends below the axes in the picture."""
        path = self.path(f"{suffix}.png")
        place_legends(fig)
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        self.figures.append(path.name)
        return path

    @property
    def command(self) -> str:
        return f"python -m experiments.{self.name}" + (" --quick" if self.quick else "")

    def finish(self, results: dict, measured: str, notes: str = "") -> dict:
        """Write <out>/<name>.json; in full mode also (re)write this experiment's row of the README table."""
        elapsed = time.perf_counter() - self.t0
        payload = {"experiment": self.exp_id, "name": self.name, "claim": self.claim, "command": self.command,
                   "quick": self.quick, "seed": self.seed, "run_time_s": round(elapsed, 1), "machine": machine(),
                   "date": time.strftime("%Y-%m-%d %H:%M:%S"), "measured": measured, "notes": notes,
                   "figures": self.figures, "results": results}
        path = self.out / f"{self.name}.json"
        with open(path, "w", encoding="utf-8") as f:
            json.dump(_jsonable(payload), f, indent=1, allow_nan=False)
            f.write("\n")
        if not self.quick and not self.args.no_readme:
            update_readme(Path(self.args.readme), self.exp_id, self.claim, self.command, measured,
                          fmt_time(elapsed), machine_short())
        self.log(f"done in {fmt_time(elapsed)}: {measured}")
        self.log(f"wrote {path}")
        return payload


def machine_short() -> str:
    import jax

    return f"{os.cpu_count()}-core CPU (shared), jax {jax.__version__}"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="tiny sizes (a few hundred examples, 1-2 epochs): a smoke run")
    p.add_argument("--out", default=None, help=f"directory for the PNG/JSON outputs (default: {RESULTS}, or "
                                               f"{QUICK_RESULTS} with --quick)")
    p.add_argument("--seed", type=int, default=0, help="base PRNG seed (default: %(default)s)")
    p.add_argument("--readme", default=str(README), help="README whose results table gets this run's row")
    p.add_argument("--no-readme", action="store_true", help="do not touch the README table (quick runs never do)")
    return p


def start(exp_id: int, name: str, claim: str, argv=None, description: str | None = None) -> Run:
    args = parser(description or claim).parse_args(argv)
    run = Run(exp_id, name, claim, args)
    run.log("quick mode" if run.quick else "full mode", f"-> {run.out}")
    return run


# --- JSON and the README table ---------------------------------------------------------------------------------
def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.ndarray,)) or type(obj).__module__.startswith("jax"):
        return _jsonable(np.asarray(obj).tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def update_readme(path: Path, exp_id: int, claim: str, command: str, measured: str, run_time: str, mach: str):
    """Replace (or insert, in id order) the row `| exp_id | ... |` of the table between the markers."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n## Results\n\n{BEGIN}\n{HEADER}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    body, tail = rest.split(END, 1)
    rows = {}
    for line in body.strip().splitlines():
        cells = line.strip().strip("|").split("|")
        if cells and cells[0].strip().isdigit():
            rows[int(cells[0].strip())] = line.strip()
    rows[exp_id] = (f"| {exp_id} | {_cell(claim)} | `{command}` | {_cell(measured)} | {run_time} | "
                    f"{_cell(mach)} |")
    table = HEADER + "\n" + "\n".join(rows[k] for k in sorted(rows))
    path.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}", encoding="utf-8")


# --- data ------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _load(name: str, flatten: bool):
    from jaxnets import data

    return data.load(name, flatten=flatten, download=False)


def image_data(flatten: bool = True):
    """(dataset, name): Fashion-MNIST when its files are found offline, else the bundled digits (with a note)."""
    from jaxnets.data import DatasetNotFoundError

    try:
        return _load("fashion-mnist", flatten), "fashion-mnist"
    except DatasetNotFoundError:
        return _load("digits", flatten), "digits (fashion-mnist not found offline)"


def n_inputs(ds) -> int:
    """Features per example of a flat dataset (784 for Fashion-MNIST, 64 for the 8×8 digits): experiments build
    their models from the data they got, so the digits fallback runs the same code."""
    return int(ds.x_train.shape[1])


def digits(flatten: bool = True):
    return _load("digits", flatten)


def mnist_or_none(flatten: bool = True):
    """MNIST when its IDX files are present offline (they are not on the development machine), else None."""
    from jaxnets.data import DatasetNotFoundError

    try:
        return _load("mnist", flatten)
    except DatasetNotFoundError:
        return None


def splits(ds, *, n_train=None, n_val=None, n_test=None, seed=0):
    """(train, val, test) as (x, y) tuples: the last `n_val` of a seeded shuffle of the training set is the
    validation set, then the training part and the test set are cut to n_train / n_test examples."""
    from jaxnets.data import train_val_split

    if n_val is not None and n_val > len(ds.x_train) // 6:
        # the sizes are written for Fashion-MNIST's 60,000 training images (a 10,000-image validation set); a
        # smaller dataset (the digits fallback) keeps that proportion instead of failing
        n_val = max(1, len(ds.x_train) // 6)
    xt, yt, xv, yv = train_val_split(ds.x_train, ds.y_train, val_size=n_val, seed=seed)
    train = (xt[:n_train], yt[:n_train]) if n_train else (xt, yt)
    test = (ds.x_test[:n_test], ds.y_test[:n_test]) if n_test else (ds.x_test, ds.y_test)
    return train, (xv, yv), test


# --- training helpers live in experiments/trainers.py; re-exported here for the scripts -----------------------
from experiments.trainers import fit_tracked, protocols  # noqa: E402,F401


# --- gradient diagnostics ----------------------------------------------------------------------------------------
def hidden_rows(layers) -> list[int]:
    """Which rows of `jaxnets.diagnostics` output measure the hidden layers' ‖δˡ‖, given its "layers" names
    ("0: Dense(30)", "1: BatchNorm(0.9)", ...; input to output). Every measured layer but the last (the output
    Dense) is a row, except that a BatchNorm replaces the Dense just before it: that Dense's bias gradient is
    identically zero (the batch mean cancels it) or absent (NaN, Dense(use_bias=False)), and the BatchNorm's β
    plays the bias's part (‖∂C/∂βˡ‖). So mlp(..., batch_norm=True) gives its BatchNorm rows, a plain mlp or a
    resnet_mlp its hidden Dense rows."""
    def kind(name):
        return name.split(": ", 1)[-1]

    rows: list[int] = []
    for i, name in enumerate(layers[:-1]):
        if kind(name).startswith("BatchNorm") and rows and kind(layers[rows[-1]]).startswith("Dense"):
            rows[-1] = i
        else:
            rows.append(i)
    return rows


def pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


# --- plotting --------------------------------------------------------------------------------------------------
def figure(ncols=1, nrows=1, width=5.5, height=4.0):
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    return fig, axes


def integer_ticks(ax, axis: str = "x") -> None:
    """Integer major ticks on a linear axis (epochs, steps, layer numbers), so that no tick reads "2.5 epochs"
    (min_n_ticks=1: a one-epoch run gets the single tick 1, not fractions around it)."""
    scale, target = (ax.get_xscale(), ax.xaxis) if axis == "x" else (ax.get_yscale(), ax.yaxis)
    if scale == "linear":
        target.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def label(ax, title, xlabel, ylabel, legend=True, log=False, integer_x=None):
    """Title, axis labels, grid, log-scaled y with `log`, and the legend (placed by `place_legends` when the
    figure is saved: inside where it hides no curve, else below the axes). integer_x: integer ticks on the x
    axis (`integer_ticks`); by default when the x label starts with "epoch"."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    if integer_x if integer_x is not None else xlabel.lower().startswith("epoch"):
        integer_ticks(ax, "x")
    ax.grid(alpha=0.3)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(**LEGEND_STYLE)


LEGEND_STYLE = {"fontsize": 8}
LEGEND_SPOTS = ("upper right", "upper left", "lower left", "lower right", "center right", "center left",
                "upper center", "lower center")
LEGEND_MARGIN_PX = 4  # a curve closer than this to a legend's frame counts as hidden


def _drawn(ax, renderer):
    """What `ax` shows, in display pixels: (segments (n, 2, 2) of its lines, boxes (m, 4) of its bars and of
    its markers/scatter points as tiny boxes)."""
    segments, boxes = [], []
    for line in ax.get_lines():
        if not line.get_visible():
            continue
        xy = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
        if line.get_linestyle() not in ("None", "", " "):
            segments.append(np.stack([xy[:-1], xy[1:]], axis=1))
        if line.get_marker() not in (None, "None", "", " "):
            r = line.get_markersize() * ax.figure.dpi / 72 / 2
            boxes.append(np.column_stack([xy[:, 0] - r, xy[:, 1] - r, xy[:, 0] + r, xy[:, 1] + r]))
    for patch in ax.patches:
        if patch.get_visible():
            b = patch.get_window_extent(renderer)
            boxes.append(np.array([[b.x0, b.y0, b.x1, b.y1]]))
    for coll in ax.collections:
        offsets = np.asarray(coll.get_offsets(), dtype=float)
        if coll.get_visible() and offsets.size:
            xy = coll.get_offset_transform().transform(offsets)
            r = 5.0  # about a scatter marker's radius in pixels
            boxes.append(np.column_stack([xy[:, 0] - r, xy[:, 1] - r, xy[:, 0] + r, xy[:, 1] + r]))
    seg = np.concatenate(segments) if segments else np.zeros((0, 2, 2))
    box = np.concatenate(boxes) if boxes else np.zeros((0, 4))
    seg = seg[np.all(np.isfinite(seg), axis=(1, 2))]
    return seg, box[np.all(np.isfinite(box), axis=1)]


def _covers(rect, segments, boxes) -> bool:
    """Does the rectangle (x0, y0, x1, y1) touch any segment (Liang–Barsky clipping) or box?"""
    x0, y0, x1, y1 = rect
    if len(boxes) and np.any((boxes[:, 0] <= x1) & (boxes[:, 2] >= x0) & (boxes[:, 1] <= y1) & (boxes[:, 3] >= y0)):
        return True
    if not len(segments):
        return False
    p, d = segments[:, 0], segments[:, 1] - segments[:, 0]
    t_in, t_out = np.zeros(len(p)), np.ones(len(p))
    inside = np.ones(len(p), dtype=bool)
    # the segment p + t·d, t in [0, 1], lies in the rectangle where
    # dk·t ≥ lo − pk and dk·t ≤ hi − pk for k = x, y
    for k, (lo, hi) in enumerate(((x0, x1), (y0, y1))):
        for step, room in ((-d[:, k], p[:, k] - lo), (d[:, k], hi - p[:, k])):
            parallel = step == 0
            inside &= ~(parallel & (room < 0))
            with np.errstate(divide="ignore", invalid="ignore"):
                t = room / step
            t_in = np.where(~parallel & (step < 0), np.maximum(t_in, t), t_in)
            t_out = np.where(~parallel & (step > 0), np.minimum(t_out, t), t_out)
    return bool(np.any(inside & (t_in <= t_out)))


def _legend_free(ax, leg, renderer) -> bool:
    b = leg.get_window_extent(renderer)
    widest = max((line.get_linewidth() for line in ax.get_lines()), default=0.0)
    m = LEGEND_MARGIN_PX + widest * ax.figure.dpi / 72 / 2  # the margin plus half the thickest line
    return not _covers((b.x0 - m, b.y0 - m, b.x1 + m, b.y1 + m), *_drawn(ax, renderer))


def _inside(ax, renderer):
    """Put the legend of `ax` at the first spot inside the axes where it touches no curve, bar or point; returns
    False (legend removed) when there is none."""
    handles, labels = ax.get_legend_handles_labels()
    for spot in LEGEND_SPOTS:
        leg = ax.legend(handles, labels, loc=spot, **LEGEND_STYLE)
        if _legend_free(ax, leg, renderer):
            return True
    leg.remove()
    return False


def _below(ax, renderer) -> float:
    """Put the legend of `ax` under its x axis (below the tick labels and the x label), in as many columns as
    fit the axes' width; returns the legend's height in inches (space the figure has to grow by)."""
    fig = ax.figure
    handles, labels = ax.get_legend_handles_labels()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    gap = (ax.bbox.y0 - ax.get_tightbbox(renderer).y0) * 72 / fig.dpi + 4  # points from the axes to below the x label
    anchor = mtransforms.offset_copy(ax.transAxes, fig=fig, y=-gap, units="points")
    one = ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0), bbox_transform=anchor,
                    **LEGEND_STYLE)
    widest = one.get_window_extent(renderer).width
    ncol = max(1, min(len(labels), int(ax.bbox.width // max(widest, 1))))
    leg = ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0), bbox_transform=anchor, ncol=ncol,
                    **LEGEND_STYLE)
    return leg.get_window_extent(renderer).height / fig.dpi + gap / 72


def place_legends(fig, passes: int = 3) -> None:
    """Lay `fig` out (tight_layout) and move every axes' legend where it hides nothing it plots: the first free
    spot inside the axes, else below the axes (the figure grows by the legends' height, so the axes keep their
    size). Growing re-lays the figure out, so inside legends are checked again, up to `passes` times."""
    below: set = set()
    for _ in range(passes):
        fig.tight_layout()
        fig.draw_without_rendering()
        renderer = fig.canvas.get_renderer()
        moved = [ax for ax in fig.axes if ax.get_legend() is not None and ax not in below
                 and not _legend_free(ax, ax.get_legend(), renderer) and not _inside(ax, renderer)]
        if not moved:
            return
        grow: dict = {}  # grid row -> the tallest new legend below an axes of that row
        for ax in moved:
            spec = ax.get_subplotspec()
            row = spec.rowspan.start if spec is not None else id(ax)
            grow[row] = max(grow.get(row, 0.0), _below(ax, renderer))
            below.add(ax)
        w, h = fig.get_size_inches()
        fig.set_size_inches(w, h + sum(grow.values()))
    fig.tight_layout()


def epochs_axis(values):
    return list(range(1, len(values) + 1))


def main_guard(main):
    """`if __name__ == "__main__": main_guard(main)`: exit status 0 on success. Compiled programs are kept in the
    persistent compilation cache (`jaxnets.enable_compilation_cache`), so a rerun skips XLA compiles."""
    jaxnets.enable_compilation_cache()
    main(sys.argv[1:])
