"""The `jaxnets` command: `jaxnets train|evaluate|predict|gradcheck|datasets`.

    jaxnets train --dataset digits --sizes 64,30,10 --activation sigmoid --loss softmax_cross_entropy \\
        --optimizer sgd --learning-rate 0.5 --momentum 0.9 --batch-size 32 --epochs 60 --gradcheck
    jaxnets train --model cnn --features 8 --kernel 3 --hidden 32 --activation relu --dropout 0.2 \\
        --optimizer adam --schedule cosine --clip-norm 1.0 --epochs 5 --save run.npz
    jaxnets evaluate run.npz                                    # on the test split of the dataset it was trained on
    jaxnets predict run.npz --input new.npy --output classes.csv
    jaxnets gradcheck --model cnn --activation tanh --loss quadratic --x64        # exit status 1 on a mismatch
    jaxnets gradcheck my_layers:MyDense --input-shape 6        # your own layer, from ./my_layers.py
    jaxnets datasets

Every argument is checked before anything runs: a malformed value, a combination that cannot work (a loss
whose cost is undefined on the chosen output unit, an output file inside a regular file, ...) and a flag that
would be ignored (--momentum with --optimizer adam, --lmbda without --penalty) are usage errors naming the flag.
Ctrl-C (SIGINT) stops cleanly: one line on stderr saying what was kept (the checkpoints in --checkpoint-dir
survive; continue with --resume). Exit status: 0 success, 1 a failed gradient check or diverged training, 2 bad
arguments or data, 130 interrupted (128 + SIGINT, as a shell reports it). Compiled programs are kept in the
persistent compilation cache (`jaxnets.enable_compilation_cache`: ~/.cache/jaxnets/xla or $JAXNETS_CACHE_DIR).
"""
from __future__ import annotations

import sys

import jax

from jaxnets.compile_cache import enable_compilation_cache
from jaxnets.cli.arguments import build_parser
from jaxnets.cli.build import output_unit
from jaxnets.cli.checks import check_evaluate_args, check_gradcheck_args, check_predict_args, check_train_args
from jaxnets.cli.commands import cmd_datasets, cmd_gradcheck, cmd_train, interrupted_message
from jaxnets.cli.saved import cmd_evaluate, cmd_predict

__all__ = ["main", "build_parser", "output_unit"]

EXIT_INTERRUPTED = 130   # 128 + SIGINT
COMMANDS = {"train": (check_train_args, cmd_train), "gradcheck": (check_gradcheck_args, cmd_gradcheck),
            "evaluate": (check_evaluate_args, cmd_evaluate), "predict": (check_predict_args, cmd_predict),
            "datasets": (lambda args: None, cmd_datasets)}


def main(argv=None) -> int:
    """Run the command; argument problems exit with status 2 through argparse (usage and the flag, no traceback)."""
    args = build_parser().parse_args(argv)
    check, command = COMMANDS[args.command]
    check(args)
    if args.command != "datasets" and not jax.config.jax_compilation_cache_dir:   # (a caller's own cache stays)
        enable_compilation_cache()   # a repeated command loads its compiled programs instead of compiling them
    try:
        return command(args)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as err:
        print(f"jaxnets {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        sys.stdout.flush()
        print(interrupted_message(args), file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
