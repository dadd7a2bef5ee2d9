"""The layers' and losses' backward passes are written by hand: their source must not call JAX's differentiation
transforms (jax.vjp, jax.grad, jax.linearize, jax.jvp and relatives). The scan parses each module with `ast`, so
comments and docstrings that merely mention these names do not count."""
import ast
import pathlib

import pytest

import jaxnets

PACKAGE = pathlib.Path(jaxnets.__file__).parent
FORBIDDEN = {"vjp", "grad", "value_and_grad", "linearize", "jvp", "jacrev", "jacfwd", "jacobian", "hessian",
             "linear_transpose"}
# layers/from_function.py and losses/names.py (from_function) build layers and losses whose backward IS autodiff, by
# design and marked so (test_autodiff_pieces_are_marked below); every other layer and loss module is scanned.
AUTODIFF_BY_DESIGN = {"layers/from_function.py", "losses/names.py"}
SCANNED = [p for p in sorted(PACKAGE.glob("layers/*.py")) + sorted(PACKAGE.glob("losses/*.py"))
           if p.relative_to(PACKAGE).as_posix() not in AUTODIFF_BY_DESIGN]


def autodiff_calls(source: str) -> list[str]:
    """Every use of a forbidden transform: `jax.vjp` / `jax.lax.linear_transpose`-style attributes of a module
    named jax or lax (or an alias of it), and `from jax import vjp`-style imports."""
    tree = ast.parse(source)
    jax_aliases = {"jax"}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "jax":
                    jax_aliases.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "jax":
            for alias in node.names:
                if alias.name in FORBIDDEN:
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
                else:
                    jax_aliases.add(alias.asname or alias.name)   # e.g. `from jax import lax`
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN:
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in jax_aliases:
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("path", SCANNED, ids=[p.relative_to(PACKAGE).as_posix() for p in SCANNED])
def test_no_autodiff_in_hand_written_backward_passes(path):
    assert autodiff_calls(path.read_text()) == [], f"{path.name} uses JAX autodiff; write the backward by hand"


def test_the_scan_covers_the_new_layers():
    names = {p.relative_to(PACKAGE).as_posix() for p in SCANNED}
    assert {"layers/conv.py", "layers/pool.py", "layers/dropout.py", "layers/batchnorm.py", "layers/reshape.py",
            "layers/dense.py", "losses/costs.py", "losses/more.py", "losses/penalties.py"} <= names


def test_autodiff_pieces_are_marked():
    """What the scan leaves out uses autodiff on purpose, and says so to summary and the checker."""
    import jax.numpy as jnp

    from jaxnets import layers, losses

    for rel in AUTODIFF_BY_DESIGN:
        assert autodiff_calls((PACKAGE / rel).read_text()) != []   # (else it belongs in the scan)
    assert layers.from_function(jnp.tanh).meta.autodiff_backward
    assert losses.from_function(lambda out, y: jnp.mean((out - y) ** 2)).autodiff_grad
    assert not any(layer.meta.autodiff_backward for layer in (layers.Dense(3), layers.Relu(), layers.Conv2D(2, 3)))


@pytest.mark.parametrize("snippet", [
    "import jax\ndef backward(f, x):\n    return jax.vjp(f, x)[1]",
    "import jax as j\ng = j.grad(lambda x: x * x)",
    "from jax import linearize\n",
    "from jax import vjp as v\n",
    "import jax\nt = jax.jvp",
    "from jax import lax\nlax.linear_transpose",
])
def test_the_scan_flags_autodiff(snippet):
    assert autodiff_calls(snippet), snippet


def test_the_scan_ignores_docstrings_and_grad_attributes_of_other_objects():
    source = ('"""cross-checked against jax.grad and jax.vjp"""\nimport jax\ndef f(loss, a, y):\n'
              '    return loss.grad(a, y)')
    assert autodiff_calls(source) == []
