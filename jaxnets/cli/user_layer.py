"""`jaxnets gradcheck MODULE:LAYER --input-shape ...`: check the user's own layer's hand-written backward.

MODULE is a module name imported with the current directory first on the path (`my_layers:MyLayer` for
./my_layers.py), or a file path (`path/to/my_layers.py:MyLayer`). LAYER is an attribute (dots allowed) holding a
Layer, or a zero-argument function returning one (`MyDense` with defaults, or a factory written for the check).
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys

__all__ = ["load_layer", "cmd_gradcheck_layer"]


def _import(module: str, target: str):
    if module.endswith(".py") or os.sep in module or "/" in module:
        path = os.path.abspath(module)
        if not os.path.isfile(path):
            raise ImportError(f"gradcheck {target}: no file {path}; give an existing .py file, or a module name "
                              "importable from the current directory")
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.path.insert(0, os.path.dirname(path))   # its own imports of neighbouring files work too
        previous = sys.modules.get(name)
        sys.modules[name] = mod   # as importlib's recipe does: dataclasses and pickling look the module up by name
        try:
            spec.loader.exec_module(mod)
        except BaseException:
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
            raise
        finally:
            sys.path.remove(os.path.dirname(path))
        return mod
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module.split(".")[0] and err.name != module:
            raise   # the module exists but imports something missing: that message is the useful one
        raise ImportError(f"gradcheck {target}: cannot import module {module!r} from {cwd} ({err}); run the command "
                          f"in the directory holding {module.replace('.', '/')}.py, or give its path: "
                          f"path/to/{module.split('.')[-1]}.py:{target.rpartition(':')[2]}") from None
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def load_layer(target: str):
    """The Layer named by MODULE:LAYER (calling a zero-argument factory when LAYER is one)."""
    from jaxnets.core import Layer

    module, _, attr = target.rpartition(":")
    obj = _import(module, target)
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = sorted(n for n in dir(obj) if not n.startswith("_"))
            raise ValueError(f"gradcheck {target}: {module} has no attribute {attr!r}; it defines "
                             f"{', '.join(names[:20]) or 'nothing public'}")
        obj = getattr(obj, part)
    if isinstance(obj, Layer):
        return obj
    if callable(obj):
        try:
            layer = obj()
        except TypeError as err:
            raise TypeError(f"gradcheck {target}: {attr} is neither a Layer nor callable without arguments ({err}); "
                            f"point at a Layer, e.g. add `layer = {attr}(...)` to {module} and check "
                            f"{module}:layer") from None
        if isinstance(layer, Layer):
            return layer
        raise TypeError(f"gradcheck {target}: {attr}() returned {type(layer).__name__}, not a jaxnets Layer; "
                        "point at a Layer or a function returning one")
    raise TypeError(f"gradcheck {target}: {attr} is a {type(obj).__name__}, not a jaxnets Layer or a function "
                    "returning one")


def cmd_gradcheck_layer(args) -> int:
    """Check the layer alone (check_layer: float64, dparams and dx against autodiff and finite differences)."""
    import jax

    from jaxnets import gradcheck
    from jaxnets.cli.commands import _verdict, check_failure

    layer = load_layer(args.target)
    mode = "evaluation" if args.eval else "training"
    if layer.meta.autodiff_backward and not args.allow_autodiff:
        raise ValueError(f"{args.target}: the backward of {layer.name} is jax.vjp of its forward (layers.from_function "
                         "or an interop adapter), not hand-written, so comparing it with autodiff proves nothing; "
                         "pass --allow-autodiff to check it anyway (against finite differences), or write its "
                         "backward by hand (docs/custom-layers.md)")
    report = gradcheck.check_layer(layer, args.input_shape, key=jax.random.key(args.seed), batch_size=args.batch,
                                   train=not args.eval, allow_autodiff=args.allow_autodiff)
    print(f"layer {layer.name} from {args.target}, input (batch {args.batch}, "
          f"{', '.join(map(str, args.input_shape))}), seed {args.seed}, {mode} mode")
    print(report)
    failure = check_failure(report, args.rtol, args.fd_rtol)
    print(_verdict([failure] if failure else [], "PASSED"))
    return 1 if failure else 0
