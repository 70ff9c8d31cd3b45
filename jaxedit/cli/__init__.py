"""The ``jaxedit`` command line: convert, inspect, layers, regions, synth, jacobian, resefa, edit,
evaluate, sefa, spectrum, demo, panda, moments, moments-merge, eis.

Every error is one line on stderr with exit code 2 (``--debug`` adds the traceback); outputs
follow the `jaxedit._io` policy (existing files kept unless ``--force``, symlinks followed,
directories and special files refused).

Each command module provides ``register(subparsers)``, adding its parser(s) with
``set_defaults(fn=...)``; `COMMANDS` lists them in the order ``jaxedit --help`` shows them. The
shared pieces live below every command: `jaxedit.cli._common` (validators, parser class, output
options, error handling, the x64 switch) and `jaxedit.cli._generators` (checkpoint argument,
latents, classes, sampling options).
"""

from __future__ import annotations

from . import convert, demo, edit, eis, info, jacobian, moments, panda, resefa, sefa, synth
from ._common import ArgumentParser, add_global_flags, examples, run

#: The command modules, each with ``register(subparsers)``, in ``jaxedit --help`` order.
COMMANDS = (convert, info, synth, jacobian, resefa, edit, sefa, demo, panda, moments, eis)


def build_parser() -> ArgumentParser:
    """The ``jaxedit`` argument parser with every command of `COMMANDS`.

    Returns:
        The parser; each command's parser sets ``fn`` (the function that runs it).
    """
    import flax
    import jax

    from .. import __version__

    p = ArgumentParser(
        prog="jaxedit",
        description="Local semantic directions in GANs, in JAX.",
        epilog=examples(
            "jaxedit synth default --seeds 0-7              # the embedded default generator",
            "jaxedit convert network-snapshot.pkl ckpt/",
            "jaxedit jacobian ckpt/ --seeds 0-4 --out jacobian.npz",
            "jaxedit resefa --jacobian jacobian.npz --region eyes      # -> resefa_eyes.npz",
            "jaxedit edit ckpt/ --directions resefa_eyes.npz --alphas -10:10:7",
            "jaxedit regions | jaxedit layers ckpt/         # what can be named",
            "",
            "Every error is one line on stderr with exit code 2 (--debug shows the traceback).",
            "Outputs are never overwritten without --force.",
        ),
    )
    version = f"jaxedit {__version__} (jax {jax.__version__}, flax {flax.__version__})"
    p.add_argument("--version", action="version", version=version)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    add_global_flags(p)  # --debug on every command and subcommand
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: the arguments after the program name (None: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 ok, 2 any error (one line on stderr), 130 on Ctrl-C, 141 on a closed
        stdout pipe.
    """
    return run(build_parser(), argv)


__all__ = ["COMMANDS", "build_parser", "main"]
