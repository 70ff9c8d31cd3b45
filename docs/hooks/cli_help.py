"""mkdocs hook: the ``--help`` text of every ``jaxedit`` command, generated at build time.

``<!-- cli-help -->`` on a page is replaced by one section per command (subcommands of
``jaxedit panda`` / ``jaxedit eis`` included) holding its ``--help`` output, from the parser the
CLI itself uses (``jaxedit.cli.build_parser()``), so the page never goes stale.
"""

import argparse
import os

MARKER = "<!-- cli-help -->"


def _subcommands(parser: argparse.ArgumentParser, prefix: str):
    for action in parser._actions:  # argparse has no public accessor for its subparsers
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", sub
                yield from _subcommands(sub, f"{prefix} {name}")


def _help_sections() -> str:
    from jaxedit.cli import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        parser = build_parser()
        out = []
        for name, sub in _subcommands(parser, "jaxedit"):
            text = sub.format_help().rstrip()
            out.append(f"### `{name}`\n\n```text\n{text}\n```\n")
        return "\n".join(out)
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def on_page_markdown(markdown, page, config, files):
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, _help_sections())
    return markdown
