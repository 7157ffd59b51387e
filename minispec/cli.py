"""The `minispec` command: thin click commands that parse options, call the
library and print. Every user mistake arrives here as a MinispecError and
leaves as one located message with exit status 2, never a traceback."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from minispec.compiler import compile_file
from minispec.errors import MinispecError

SET_HELP = "Override a spec parameter or setting, e.g. --set epochs=5 --set lr=0.1 (repeatable)."


def _friendly(command):
    """Render MinispecError as `file:line:col: error: ...` and exit 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except MinispecError as error:
            click.echo(error.render(), err=True)
            sys.exit(2)

    return wrapper


def _set_option(command):
    command = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)(command)
    return click.option(
        "--include-root",
        "include_roots",
        multiple=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="Also allow `include` to read files under this folder.",
    )(command)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="minispec")
def main():
    """minispec: write a network in ten lines, see it drawn, train it over many
    trials, and trust the gradients.

    \b
    Examples:
      minispec check specs/*.mdl            validate specs, print layer tables
      minispec graph specs/caux.mdl -o caux.svg
      minispec compile specs/saux.mdl --emit ir
    """


@main.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--smoke", is_flag=True, help="Also build the model and run one training step on a tiny random batch.")
@_set_option
@_friendly
def check(specs, smoke, overrides, include_roots):
    """Validate specs and print a summary of each: every node with its output
    shape and parameters (shared weights counted once), the losses, and the
    total number of trainable parameters.

    \b
    Example:
      minispec check specs/*.mdl
      minispec check specs/resnet.mdl --set depth=3 --smoke
    """
    from minispec.render.summary import summary

    for index, spec in enumerate(specs):
        program = compile_file(spec, overrides, include_roots)
        if index:
            click.echo()
        click.echo(summary(program))
        if smoke:
            from minispec.backends.smoke import smoke_test

            losses = smoke_test(program)
            click.echo("smoke: one forward and backward step ran; losses " + ", ".join(f"{v:.4g}" for v in losses))


@main.command("compile")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--emit", type=click.Choice(["ir", "mdl", "torch"]), default="ir", show_default=True,
              help="ir: the graph IR as JSON; mdl: the resolved spec as one canonical .mdl; "
                   "torch: a standalone PyTorch nn.Module.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
@_set_option
@_friendly
def compile_command(spec, emit, output, overrides, include_roots):
    """Print what a spec compiles to.

    \b
    Examples:
      minispec compile specs/saux.mdl --emit ir
      minispec compile specs/sn_single.mdl --emit mdl > a.mdl   # diff two variants
      minispec compile specs/caux.mdl --emit torch -o caux_model.py
    """
    program = compile_file(spec, overrides, include_roots)
    if emit == "ir":
        text = program.model_dump_json(indent=2) + "\n"
    elif emit == "mdl":
        from minispec.lang.printer import format_merged
        from minispec.lang.resolve import apply_overrides, read

        text = format_merged(apply_overrides(read(spec, include_roots), list(overrides)), Path(spec).stem)
    else:
        from minispec.backends.torch_nn import emit_python

        text = emit_python(program)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The picture: .svg or .png (needs Graphviz's dot), .dot or .mmd (Mermaid) text.")
@click.option("--fold", is_flag=True, help="Draw each `repeat N { ... }` once, as a box marked xN.")
@_set_option
@_friendly
def graph(spec, output, fold, overrides, include_roots):
    """Draw the architecture of a spec: nodes with their output shapes, shared
    instances drawn once with every use pointing at them, residual edges,
    heads with their losses, and the training schedule as a legend.

    \b
    Example:
      minispec graph specs/caux.mdl -o caux.svg
      minispec graph specs/resnet.mdl -o resnet.png --fold
    """
    from minispec.render import render

    program = compile_file(spec, overrides, include_roots)
    if output.parent and not output.parent.exists():
        output.parent.mkdir(parents=True)
    render(program, output, fold=fold)
    click.echo(f"wrote {output}", err=True)


if __name__ == "__main__":
    main()
