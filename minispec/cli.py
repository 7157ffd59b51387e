"""The `minispec` command: thin click commands that parse options, call the
library and print. Every user mistake arrives here as a MinispecError and
leaves as one located message with exit status 2, never a traceback."""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
from pathlib import Path

import click

from minispec.compiler import compile_file
from minispec.errors import MinispecError
from minispec.threads import bound_idle_spin

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
      minispec examples my-specs            copy the shipped specs out to edit
    """
    bound_idle_spin()  # before any command imports torch


@main.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--smoke", is_flag=True, help="Also build the model and run one training step on a tiny random batch.")
@click.option("--data-root", type=click.Path(file_okay=False),
              help="Folder with full MNIST, as given to `run` (data sizes are checked against it).")
@_set_option
@_friendly
def check(specs, smoke, data_root, overrides, include_roots):
    """Validate specs and print a summary of each: every node with its output
    shape and parameters (shared weights counted once), the losses, and the
    total number of trainable parameters.

    \b
    Example:
      minispec check specs/*.mdl
      minispec check specs/resnet.mdl --set depth=3 --smoke
    """
    from minispec.data import check_sizes
    from minispec.render.summary import summary

    programs = _compile_each(specs, overrides, include_roots)
    for index, (spec, program) in enumerate(programs.items()):
        if program is None:
            continue
        try:
            check_sizes(program.data.name, dict(program.data.options), data_root)
        except MinispecError as error:
            click.echo(error.render(), err=True)
            programs[spec] = None
            continue
        if index:
            click.echo()
        click.echo(summary(program))
        if smoke:
            from minispec.backends.smoke import smoke_test

            losses = smoke_test(program)
            click.echo("smoke: one forward and backward step ran; losses " + ", ".join(f"{v:.4g}" for v in losses))
    _exit_if_any_failed(programs)


def _compile_each(specs, overrides, include_roots) -> dict:
    """spec -> its Program, or None where it has an error (printed, with the program's warnings)."""
    programs = {}
    for spec in specs:
        try:
            programs[spec] = compile_file(spec, overrides, include_roots)
        except MinispecError as error:
            click.echo(error.render(), err=True)
            programs[spec] = None
            continue
        _show_warnings(programs[spec])
    return programs


def _show_warnings(program) -> None:
    for warning in program.warnings:
        click.echo(MinispecError(warning.message, warning.span, warning.hint).render(level="warning"), err=True)


def _exit_if_any_failed(programs: dict) -> None:
    failed = [spec for spec, program in programs.items() if program is None]
    if failed:
        if len(programs) > 1:
            click.echo(f"{len(failed)} of {len(programs)} specs have errors: {', '.join(failed)}", err=True)
        sys.exit(2)


@main.command("compile")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--emit", type=click.Choice(["ir", "mdl", "torch", "onnx"]), default="ir", show_default=True,
              help="ir: the graph IR as JSON; mdl: the resolved spec as one canonical .mdl; "
                   "torch: a standalone PyTorch nn.Module; onnx: an ONNX model with the initial weights "
                   "(needs -o and the [onnx] extra).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
@_set_option
@_friendly
def compile_command(spec, emit, output, overrides, include_roots):
    """Print what a spec compiles to.

    \b
    Examples:
      minispec compile specs/saux.mdl --emit ir
      minispec compile specs/sn_single.mdl --emit mdl > a.mdl   # diff two variants
      minispec compile specs/caux.mdl --emit torch -o caux_model.py
      minispec compile specs/caux.mdl --emit onnx -o caux.onnx      # open it in Netron
    """
    if emit == "onnx" and output is None:
        raise MinispecError("--emit onnx writes a binary file: give it one with -o, e.g. -o model.onnx")
    program = compile_file(spec, overrides, include_roots)
    if emit == "onnx":
        from minispec.backends.onnx_graph import export_onnx
        from minispec.outputs import output_path

        click.echo(f"wrote {export_onnx(program, output_path(output, '-o'))}", err=True)
        return
    if emit == "ir":
        text = program.model_dump_json(indent=2) + "\n"
    elif emit == "mdl":
        from minispec.lang.printer import format_merged
        from minispec.lang.files import apply_overrides, read

        text = format_merged(apply_overrides(read(spec, include_roots), list(overrides)), Path(spec).stem)
    else:
        from minispec.backends.torch_nn import emit_python

        text = emit_python(program)
    if output is None:
        click.echo(text, nl=False)
    else:
        from minispec.outputs import output_path, write_output

        write_output(output_path(output, "-o"), text, "-o")
        click.echo(f"wrote {output}", err=True)


@main.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@_friendly
def examples(folder):
    """Copy the shipped spec library (every example spec, and lib/ with the
    files they include) into FOLDER, to read, edit and run.

    \b
    Example:
      minispec examples my-specs && minispec run my-specs/saux.mdl --trials 2 --epochs 3
    """
    from minispec.resources import copy_examples

    copied = copy_examples(folder)
    click.echo(f"copied {len(copied)} specs into {folder}")


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
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

    from minispec.outputs import make_folder, output_path

    output = output_path(output, "-o")
    program = compile_file(spec, overrides, include_roots)
    make_folder(output.parent, "-o")
    render(program, output, fold=fold)
    click.echo(f"wrote {output}", err=True)


def _run_options(command):
    """Options shared by `run`, `compare` and `sweep`."""
    options = [
        click.option("--trials", type=click.IntRange(min=1), help="Number of trials (default: the spec's `trials`)."),
        click.option("--epochs", type=click.IntRange(min=1), help="Epochs per trial (default: the spec's `epochs`)."),
        click.option("--device", default="cpu", show_default=True, metavar="cpu|cuda|auto",
                     help="Where to train; auto takes CUDA when present."),
        click.option("--backend", type=click.Choice(["torch", "scratch"]), default="torch", show_default=True,
                     help="torch: torch.nn + autograd; scratch: the hand-written framework (no autograd)."),
        click.option("--data-root", type=click.Path(file_okay=False),
                     help="Folder with full MNIST (MNIST/raw/...); default: the 5,000 embedded digits."),
        click.option("--vectorize/--no-vectorize", default=None,
                     help="Train trials together as replicas of one model (default: on a GPU always, on the CPU "
                          "for models under 2 GFLOP a step; see docs/performance.md)."),
        click.option("--max-memory", metavar="SIZE",
                     help="Memory budget, e.g. 8GiB (default: what the device has free); runs that do not "
                          "fit are refused, vectorized trials are chunked to fit."),
        click.option("--chunk", type=click.IntRange(min=1),
                     help="At most this many trials vectorized together (default: as many as fit, spread over "
                          "the Ray workers with --executor ray)."),
        click.option("--executor", type=click.Choice(["in-process", "ray"]), default="in-process", show_default=True,
                     help="Where the trials train: in this process, or as Ray tasks on a cluster (docs/cluster.md)."),
        click.option("--ray-address", metavar="HOST:PORT",
                     help="The Ray cluster to use with --executor ray (default: RAY_ADDRESS, else a local Ray)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _factory(backend: str):
    from minispec.backends import backend_factory

    return backend_factory(backend)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that a run stops the same way (its finished trials kept)."""


@contextlib.contextmanager
def _signals_interrupt():
    """While training: SIGTERM stops the command as Ctrl-C does (a clear message, exit 143)."""
    def terminate(signum, frame):
        raise _Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread (a notebook's worker): leave SIGTERM alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stopped(stop: KeyboardInterrupt) -> str:
    return "terminated (SIGTERM)" if isinstance(stop, _Terminated) else "interrupted"


def _stop_status(stop: KeyboardInterrupt) -> int:
    return 128 + signal.SIGTERM if isinstance(stop, _Terminated) else 130


def _executor(name: str, address: str | None):
    from minispec.experiment.executors import make_executor

    return make_executor(name, address)


def _device(name: str, executor: str):
    """The device; with Ray a CUDA device is the workers' concern, not this machine's."""
    from minispec.backends import resolve_device

    if executor == "ray" and name.startswith("cuda"):
        import torch

        return torch.device("cuda")
    return resolve_device(name)


def _print_workers(executor) -> None:
    from minispec.experiment.executors import format_workers

    table = format_workers(executor.workers())
    if table:
        click.echo(table)


def _max_memory(text: str | None) -> int | None:
    from minispec.ir.cost import parse_bytes

    return None if text is None else parse_bytes(text)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@_run_options
@click.option("--out", type=click.Path(file_okay=False),
              help="Run folder (default: runs/<spec>-<hash>, a new one each time).")
@click.option("--resume", is_flag=True, help="Go on with an interrupted run (its --out, or the latest default folder).")
@click.option("--export", "exports", multiple=True, type=click.Choice(["onnx"]),
              help="Also save each trial's trained model beside its weights: weights/trial_000.onnx "
                   "(needs the [onnx] extra).")
@click.option("--log", "logs", multiple=True, type=click.Choice(["tensorboard"]),
              help="Also log each trial's per-epoch errors and losses: <run folder>/tensorboard/ "
                   "(needs the [tensorboard] extra; view with `tensorboard --logdir runs`).")
@_set_option
@_friendly
def run(spec, trials, epochs, device, backend, data_root, vectorize, max_memory, chunk, executor, ray_address, out,
        resume, exports, logs, overrides, include_roots):
    """Train every trial of a spec and report mean ± std test error.

    Writes a run folder: the resolved spec and its hash, per-trial curves, final
    weights (safetensors), summary.json, curves.csv and curves.png (mean ± std
    bands). Each finished trial is saved at once: Ctrl-C loses nothing, and
    --resume goes on where the run stopped.

    \b
    Examples:
      minispec run specs/saux.mdl --trials 5 --epochs 10
      minispec run specs/disk.mdl --backend scratch
      minispec run specs/saux.mdl --device cuda --trials 150 --epochs 100
      minispec run specs/saux.mdl --trials 2 --export onnx --log tensorboard
      minispec run specs/saux.mdl --trials 150 --executor ray --ray-address 10.0.0.5:6379
    """
    from minispec.experiment.compare import default_run_folder
    from minispec.experiment.listeners import OnnxExport, TensorBoardLog, broadcast
    from minispec.experiment.progress import TqdmProgress
    from minispec.experiment.runner import run_experiment
    from minispec.experiment.tables import format_table, summary_table

    program = compile_file(spec, overrides, include_roots)
    torch_device = _device(device, executor)
    listeners = [OnnxExport(program) if "onnx" in exports else None, TensorBoardLog() if logs else None]
    folder = out if out is not None else default_run_folder(program, backend, epochs=epochs, resume=resume)
    workers = _executor(executor, ray_address)
    progress = TqdmProgress()
    try:
        with _signals_interrupt():
            result = run_experiment(
                program, backend_factory=_factory(backend), trials=trials, epochs=epochs, device=torch_device,
                out_dir=folder, data_root=data_root, resume=resume, progress=broadcast(progress, *listeners),
                vectorize=vectorize, chunk=chunk, max_memory=_max_memory(max_memory), executor=workers,
            )
    except KeyboardInterrupt as stop:
        progress.close()
        click.echo(f"\n{_stopped(stop)}: finished trials are saved in {folder}; "
                   f"go on with: minispec run {spec} --resume --out {folder}", err=True)
        sys.exit(_stop_status(stop))
    finally:
        progress.close()
        workers.close()
    click.echo(format_table(summary_table([result])))
    _print_workers(workers)
    if result.summary.trials_diverged:
        click.echo(result.summary.note)
    click.echo(f"run folder: {folder}  (curves.png, curves.csv, summary.json, weights/)")
    if logs:
        click.echo(f"tensorboard: tensorboard --logdir {Path(folder) / 'tensorboard'}")


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--grid", "grids", multiple=True, metavar="KEY=V1,V2,...",
              help="A key (as --set takes it) and its values; repeat for a grid of several keys.")
@click.option("--sample", type=int, metavar="N", help="Random search: N points drawn from the --range's.")
@click.option("--range", "ranges", multiple=True, metavar="KEY=LOW:HIGH",
              help="A range for --sample (log-uniform for rates such as lr and weight_decay).")
@_run_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Sweep folder (default: sweeps/<spec>-<keys>).")
@click.option("--resume", is_flag=True, help="Go on with an interrupted sweep (the same command and --out).")
@click.option("--yes", is_flag=True, help="Run a sweep even when it is very large (more than 1,000 points).")
@_set_option
@_friendly
def sweep(spec, grids, sample, ranges, trials, epochs, device, backend, data_root, vectorize, max_memory, chunk,
          executor, ray_address, out, resume, yes, overrides, include_roots):
    """Train every point of a grid (or of a random search) N trials each, and
    print one table: test error mean ± std per point, best/worst trial, and
    Welch's p against the best point.

    Points that differ only in values that change no shape (lr, momentum,
    weight decay, loss weights, dropout p, schedule, epochs) train together
    as ONE model of points x trials replicas; keys that change shapes train as
    separate models. Writes a run folder per point, sweep.json, sweep.csv and
    sweep.png (error against the value; a heatmap for two keys).

    \b
    Examples:
      minispec sweep specs/disk.mdl --grid lr=0.001,0.01,0.1 --trials 10
      minispec sweep specs/disk.mdl --grid lr=0.01,0.1 --grid momentum=0,0.9
      minispec sweep specs/disk.mdl --sample 20 --range lr=1e-4:1 --trials 5
      minispec sweep specs/disk.mdl --grid lr=0.001,0.01,0.1 --trials 50 --executor ray
    """
    from minispec.experiment.progress import TqdmProgress
    from minispec.experiment.sweep import Axis, plan_sweep, run_sweep

    axes = [Axis.parse(text) for text in grids] + [Axis.parse(text, "--range") for text in ranges]
    plan = plan_sweep(spec, axes, sample=sample, trials=trials, epochs=epochs, overrides=overrides,
                      include_roots=include_roots, vectorize=vectorize, yes=yes)
    folder = out or Path("sweeps") / f"{plan.name}-{'-'.join(plan.keys)}"
    click.echo(f"{len(plan.values)} point(s) x {plan.trials} trial(s), as {len(plan.groups)} model(s)", err=True)
    torch_device = _device(device, executor)
    workers = _executor(executor, ray_address)
    progress = TqdmProgress()
    try:
        result = run_sweep(plan, backend_factory=_factory(backend), out_dir=folder, device=torch_device,
                           data_root=data_root, resume=resume, progress=progress, vectorize=vectorize,
                           max_memory=_max_memory(max_memory), chunk=chunk, executor=workers)
    except KeyboardInterrupt:
        progress.close()
        click.echo(f"\ninterrupted: finished trials are saved in {folder}; go on with the same command "
                   f"and --resume --out {folder}", err=True)
        sys.exit(130)
    finally:
        workers.close()
    progress.close()
    click.echo(result.table())
    _print_workers(workers)
    click.echo(f"sweep folder: {folder}  (sweep.png, sweep.csv, sweep.json, points/)")


@main.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@_run_options
@click.option("--also-backend", "also", multiple=True, type=click.Choice(["torch", "scratch"]),
              help="Run every spec on this backend too (repeatable): one table of backends side by side.")
@click.option("--runs", "runs_root", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Where runs are kept and looked up.")
@click.option("--fresh", is_flag=True, help="Run every spec again instead of reusing finished runs.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Overlay plot of the test-error curves (default: <runs>/compare.png).")
@_set_option
@_friendly
def compare(specs, trials, epochs, device, backend, data_root, vectorize, max_memory, chunk, executor, ray_address,
            also, runs_root, fresh, plot, overrides, include_roots):
    """Run several specs (or reuse their finished runs) and print one table:
    mean ± std test error of each, and Welch's t-test p-value against the first.

    \b
    Examples:
      # does weight sharing help? do auxiliary losses?
      minispec compare specs/sn.mdl specs/wsn.mdl specs/saux.mdl specs/caux.mdl --trials 5 --epochs 10
      # do the hand-written framework and PyTorch agree?
      minispec compare specs/disk.mdl --backend torch --also-backend scratch
    """
    from minispec.experiment.compare import compare as compare_runs
    from minispec.experiment.progress import TqdmProgress

    programs = [compile_file(spec, overrides, include_roots) for spec in specs]
    torch_device = _device(device, executor)
    workers = _executor(executor, ray_address)
    progress = TqdmProgress()
    try:
        with _signals_interrupt():
            comparison = compare_runs(
                programs, backends={name: _factory(name) for name in dict.fromkeys((backend, *also))},
                runs_root=runs_root, trials=trials, epochs=epochs,
                device=torch_device, data_root=data_root, progress=progress, vectorize=vectorize, chunk=chunk,
                reuse=not fresh, plot_path=plot or Path(runs_root) / "compare.png",
                max_memory=_max_memory(max_memory), executor=workers,
            )
    except KeyboardInterrupt as stop:
        progress.close()
        click.echo(f"\n{_stopped(stop)}: finished trials are saved; run the same command again to go on", err=True)
        sys.exit(_stop_status(stop))
    finally:
        progress.close()
        workers.close()
    click.echo(comparison.table())
    _print_workers(workers)
    click.echo(f"plot: {comparison.plot}")


@main.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True,
              help="float64 compares to ~1e-10; float32 to ~1e-5 over one step.")
@click.option("--steps", type=click.IntRange(min=1), help="Optimizer steps to compare (default 3 in float64, 1 in float32).")
@click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True, help="Size of the random batch.")
@_set_option
@_friendly
def verify(specs, dtype, steps, batch, overrides, include_roots):
    """Check the hand-written backend against PyTorch autograd on a spec.

    Both backends get identical initial weights and the same random batch; the
    outputs, every loss, the gradient of every parameter and the parameters
    after a few optimizer steps are compared. Prints the worst absolute and
    relative error per tensor; exits 1 when any is above tolerance.

    \b
    Example:
      minispec verify specs/*.mdl
      minispec verify specs/caux.mdl --dtype float32
    """
    import torch

    from minispec.verify import format_report, verify as verify_program

    failed = []
    programs = _compile_each(specs, overrides, include_roots)
    for index, (spec, program) in enumerate(programs.items()):
        if program is None:
            continue
        report = verify_program(program, dtype=getattr(torch, dtype), steps=steps, batch=batch)
        if index:
            click.echo()
        click.echo(format_report(report))
        if not report.ok:
            failed.append(spec)
    if failed:
        click.echo(f"\nverify FAILED on {', '.join(failed)}", err=True)
    _exit_if_any_failed(programs)
    if failed:
        sys.exit(1)


@main.command("eval")
@click.argument("target", type=click.Path(exists=True))
@click.option("--weights", type=click.Path(dir_okay=False),
              help="With a SPEC: a .safetensors file (runs/<spec>/weights/trial_000.safetensors, or from elsewhere).")
@click.option("--backend", type=click.Choice(["torch", "scratch"]), default="torch", show_default=True)
@click.option("--device", default="cpu", show_default=True, metavar="cpu|cuda|auto")
@click.option("--data-root", type=click.Path(file_okay=False),
              help="Folder with full MNIST (default: the one the run recorded, else the embedded digits).")
@click.option("--trial", type=click.IntRange(min=0),
              help="The trial to evaluate (default: every finished trial of a RUN_DIR, the file's trial with --weights).")
@_set_option
@_friendly
def eval_command(target, weights, backend, device, data_root, trial, overrides, include_roots):
    """Load saved weights into either backend and report their errors on the
    data of their trial.

    With a run folder, every finished trial (or --trial K) is evaluated with
    the resolved spec, data options and overrides the run recorded, beside the
    test error the run reported. With a spec, --weights names the file.

    \b
    Examples:
      minispec eval runs/disk-1a2b3c4d
      minispec eval runs/disk-1a2b3c4d --trial 3 --backend scratch
      minispec eval specs/disk.mdl --weights runs/disk-1a2b3c4d/weights/trial_000.safetensors
    """
    from minispec.backends import resolve_device
    from minispec.experiment import evaluation

    if Path(target).is_dir():
        if weights is not None or overrides:
            raise MinispecError("a run folder is evaluated with what it recorded: --weights and --set do not apply",
                                hint=f"minispec eval {target} [--trial K], or minispec eval SPEC --weights FILE")
        results = evaluation.evaluate_run(target, trial, backend, resolve_device(device), data_root)
        click.echo(f"{target}, backend {backend}")
        for result in results:
            click.echo(f"  trial {result.trial:<3} test error {100 * result.test_error:6.2f}%   "
                       f"recorded {100 * result.recorded:6.2f}%" + ("" if result.test_error == result.recorded
                                                                  else "   (differs)"))
        return
    if weights is None:
        raise MinispecError("eval of a spec needs --weights FILE", hint=f"or evaluate a run folder: minispec eval RUN_DIR")
    program = compile_file(target, overrides, include_roots)
    result = evaluation.evaluate_weights(program, weights, backend, resolve_device(device), data_root, trial)
    note = evaluation.spec_note(program, weights, result.spec_hash)
    if note:
        click.echo(note, err=True)
    click.echo(f"{program.name}, trial {result.trial}, backend {backend}")
    for head in result.test_errors:
        mark = "  (reported)" if head == result.report else ""
        click.echo(f"  {head:<12} train error {100 * result.train_errors[head]:6.2f}%   "
                   f"test error {100 * result.test_errors[head]:6.2f}%{mark}")


@main.command()
@click.argument("study_file", type=click.Path(dir_okay=False, exists=True))
@click.option("--only", multiple=True, metavar="NAME", help="Run only this table (repeatable).")
@click.option("--tiny", is_flag=True, help="1 trial of 1 epoch per spec, under <runs>/tiny: checks that the study runs.")
@click.option("--runs", "runs_root", type=click.Path(file_okay=False), help="Runs root (default: the study's `runs`).")
@click.option("--device", default="cpu", show_default=True, metavar="cpu|cuda|auto")
@_friendly
def study(study_file, only, tiny, runs_root, device):
    """Run every table of a study file (a list of comparisons: specs, overrides,
    trials; or sweeps: a spec and a grid), reusing finished runs, and print
    each table under the `minispec compare` (or `sweep`) command that makes
    it. docs/results.md is made by studies/*.toml.

    \b
    Examples:
      minispec study studies/p2_disk.toml
      minispec study studies/p1_seed000.toml --only headline --device cuda
    """
    from minispec.backends import resolve_device
    from minispec.experiment.progress import TqdmProgress
    from minispec.experiment.readings import format_readings
    from minispec.experiment.study import load_study, run_study

    plan = load_study(study_file)
    progress = TqdmProgress()
    try:
        outcomes = run_study(plan, {name: _factory(name) for name in ("torch", "scratch")}, only=only, tiny=tiny,
                             runs_root=runs_root, device=resolve_device(device), progress=progress)
    except KeyboardInterrupt:
        progress.close()
        click.echo("\ninterrupted: finished trials are saved; run the same command again to go on", err=True)
        sys.exit(130)
    progress.close()
    click.echo(f"# {plan.title}")
    for outcome in outcomes:
        click.echo(f"\n## {outcome.table.name}" + (f": {outcome.table.title}" if outcome.table.title else ""))
        click.echo(f"$ {outcome.command}")
        click.echo(outcome.text())
        if outcome.readings:
            click.echo(format_readings(outcome.readings))
        for path in outcome.plots:
            click.echo(f"plot: {path}")


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--backend", type=click.Choice(["torch", "scratch"]), default="torch", show_default=True)
@click.option("--data-root", type=click.Path(file_okay=False), help="Folder with full MNIST, as given to `run`.")
@_friendly
def readings(run_dirs, backend, data_root):
    """Read trained digit-pair runs two ways: the learned head the spec reports,
    and the two digit heads compared directly (argmax a <= argmax b), on each
    trial's own train and test pairs, from the saved weights.

    \b
    Example:
      minispec compare specs/ws_aux_bn.mdl --trials 5 --runs runs/results
      minispec readings runs/results/ws_aux_bn-*
    """
    from minispec.experiment.readings import format_readings, read_runs

    click.echo(format_readings(read_runs(run_dirs, backend, data_root)))


@main.group()
def plot():
    """Redraw figures from run folders, without training.

    \b
    Examples:
      minispec plot curves runs/disk-1a2b3c4d
      minispec plot compare runs/sn-* runs/wsn-* -o pairs.png
      minispec plot decision runs/disk-1a2b3c4d --mean
    """


RUN_DIRS = click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True))
METRIC = click.option("--metric", type=click.Choice(["test_error", "train_error", "train_loss", "test_loss"]),
                      default="test_error", show_default=True, help="What the curves show.")


@plot.command("curves")
@RUN_DIRS
@METRIC
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Draw all runs overlaid here (default: each run's own curves.png).")
@_friendly
def plot_curves_command(run_dirs, metric, output):
    """Mean ± std curves of each run (test solid, train dashed), as `run` draws them."""
    from minispec.experiment.plots import redraw_curves

    for path in redraw_curves(run_dirs, metric, output):
        click.echo(f"wrote {path}", err=True)


@plot.command("compare")
@RUN_DIRS
@METRIC
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("compare.png"),
              show_default=True, help="The overlay plot.")
@_friendly
def plot_compare_command(run_dirs, metric, output):
    """One overlay of several runs and the table of `minispec compare` (Welch's p against the first)."""
    from minispec.experiment.plots import compare_folders

    comparison = compare_folders(run_dirs, output, metric)
    click.echo(comparison.table())
    click.echo(f"plot: {comparison.plot}")


@plot.command("decision")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Default: RUN_DIR/decision.png (decision_mean.png with --mean).")
@click.option("--trial", "trials", multiple=True, type=click.IntRange(min=0),
              help="Draw this trial (repeatable; default: every trained trial, one panel each).")
@click.option("--mean", is_flag=True, help="One panel: the mean output over the trials, each trial's boundary thin.")
@click.option("--resolution", type=click.IntRange(min=2), default=100, show_default=True,
              help="Grid points per side of the input square.")
@click.option("--backend", type=click.Choice(["torch", "scratch"]), default="torch", show_default=True)
@_friendly
def plot_decision_command(run_dir, output, trials, mean, resolution, backend):
    """The trained model's output over a grid of the input square (specs whose
    input is 2-D points), the decision boundary at the spec's threshold, and
    the test points coloured right (green) or wrong (red).

    \b
    Example:
      minispec run specs/disk_sigmoid.mdl --trials 4 --out runs/sig
      minispec plot decision runs/sig
    """
    from minispec.experiment.plots import draw_decision

    path, maps = draw_decision(run_dir, output, trials or None, mean, resolution, backend)
    for m in maps:
        click.echo(f"{m.title}: test error {100 * m.test_error:.2f}%")
    click.echo(f"wrote {path}", err=True)


if __name__ == "__main__":
    main()
