"""The `jaxnets` command's argument types: each turns one command-line string into a value or raises
`argparse.ArgumentTypeError`, which argparse prints as "argument --flag: <message>" after the usage line."""
from __future__ import annotations

import argparse
import math

__all__ = ["positive_int", "seed", "positive_float", "non_negative_float", "fraction", "sizes", "int_list", "shape",
           "epoch_factors", "MAX_SEED"]

MAX_SEED = 2**63 - 1


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive_int(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (1 or more), got {text!r}")
    return value


def seed(text: str) -> int:
    value = _integer(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be an integer between 0 and 2**63 - 1, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1): validation fraction, momentum, dropout rate, Adam's b1/b2, RMSprop's decay."""
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1) (0 included, 1 excluded), got {text!r}")
    return value


def _positive_ints(text: str, separators: str, example: str) -> list[int]:
    entries = [text]
    for sep in separators:
        entries = [piece for entry in entries for piece in entry.split(sep)]
    entries = [s.strip() for s in entries]
    for i, entry in enumerate(entries, 1):
        if not entry:
            raise argparse.ArgumentTypeError(f"entry {i} of {text!r} is empty; write positive ints like {example}")
        if not entry.isdigit() or int(entry) < 1:
            raise argparse.ArgumentTypeError(f"entry {i} of {text!r} is {entry!r}, not a positive int; write "
                                             f"positive ints like {example}")
    return [int(s) for s in entries]


def sizes(text: str) -> list[int]:
    """Comma-separated layer sizes, at least two, every entry a positive int."""
    entries = _positive_ints(text, ",", "64,30,10")
    if len(entries) < 2:
        raise argparse.ArgumentTypeError(f"needs two or more sizes (inputs,...,outputs) like 64,30,10, got {text!r}")
    return entries


def int_list(text: str) -> tuple[int, ...]:
    """One positive int or several, comma-separated (feature maps per stage: "20" or "20,40")."""
    return tuple(_positive_ints(text, ",", "20 or 20,40"))


def shape(text: str) -> tuple[int, ...]:
    """A per-example shape without the batch axis: "6", "8,8,1" or "8x8x1"."""
    return tuple(_positive_ints(text, ",x", "6 or 8,8,1"))


def epoch_factors(text: str) -> dict[int, float]:
    """"EPOCH:FACTOR,..." for a piecewise-constant schedule: the learning rate is multiplied by FACTOR when EPOCH
    epochs are done, e.g. "20:0.1,40:0.1"."""
    out = {}
    for i, entry in enumerate(text.split(","), 1):
        epoch, sep, factor = entry.strip().partition(":")
        if not sep or not epoch.strip().isdigit() or int(epoch) < 1:
            raise argparse.ArgumentTypeError(f"entry {i} of {text!r} is {entry!r}; write EPOCH:FACTOR pairs with "
                                             "EPOCH a positive int, like 20:0.1,40:0.1")
        try:
            value = float(factor)
        except ValueError:
            value = float("nan")
        if not math.isfinite(value) or value < 0:
            raise argparse.ArgumentTypeError(f"entry {i} of {text!r}: the factor {factor!r} is not a finite number "
                                             ">= 0; write EPOCH:FACTOR pairs like 20:0.1,40:0.1")
        if int(epoch) in out:
            raise argparse.ArgumentTypeError(f"epoch {int(epoch)} appears twice in {text!r}; give each epoch once")
        out[int(epoch)] = value
    return out
