"""Training and evaluation commands: train (train-cnn, train-densenet), average, evaluate."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from aidentify.cli.app import (
    ConfigOption,
    set_option,
    VerboseOption,
    app,
    console,
    err_console,
    progress_bar,
    run_guarded,
    say_config,
)
from aidentify.config import TRAIN_CONFIGS, AverageConfig, EvaluateConfig, load_config
from aidentify.extras import require_extra

ResumeOption = Annotated[Path | None, typer.Option("--resume", help="Continue an interrupted run folder (its own config is used).",
                                                   show_default=False)]
NameOption = Annotated[str | None, typer.Option("--name", help="Run name; runs go to runs/<model>/<name>N [default: exp].",
                                                show_default=False)]
EpochsOption = Annotated[int | None, typer.Option("--epochs", help="Epochs (DenseNet: of the frozen-base phase).",
                                                  show_default=False)]
TrainSet = set_option("batch_size=32")
AverageSet = set_option("calibration_images=2000")
EvaluateSet = set_option("tta_flip=true")


def _train(model: str, config: Path | None, set_: list[str] | None, resume: Path | None, name: str | None,
           epochs: int | None, verbose: bool) -> None:
    from aidentify.train.fit import TrainEvents, TrainingInterrupted, train

    if model not in TRAIN_CONFIGS:
        err_console.print(f"[bold red]error:[/] unknown model '{model}'; choose cnn or densenet")
        raise typer.Exit(1)

    def work() -> None:
        require_extra("tensorflow")  # said before the config and the data are checked
        cfg, origin = load_config(TRAIN_CONFIGS[model], config, set_, {"name": name, "epochs": epochs},
                                  stage=f"train_{model}")
        if resume is None:
            say_config(origin)
        with progress_bar() as progress:
            # one bar, reused every epoch, for the batches of the epoch in progress; other work
            # before the epochs (the teachers' predictions when distilling) gets bars of its own
            events = TrainEvents(batch=lambda task, done, total: progress(
                                     "batches" if task.startswith("epoch") else task, done, total),
                                 epoch=_print_epoch, message=lambda t: console.print(f"[dim]{escape(t)}[/]"))
            try:
                result = train(cfg, events, resume=resume)
            except TrainingInterrupted as stop:
                err_console.print(f"[yellow]{stop}[/]")
                raise typer.Exit(130) from None
        best = result.best
        if not result.chief:
            console.print(f"[green]done[/]: worker {result.worker} of {result.workers}; "
                          "the run is saved by the chief (worker 0)")
            return
        console.print(f"[green]done[/]: {result.epochs_run} epochs, {result.parameters:,} parameters; best epoch "
                      f"{best.get('epoch')} val_accuracy {best.get('val_accuracy', float('nan')):.4f} "
                      f"-> {result.run_dir}/weights/best.keras")

    run_guarded(verbose, work)


def _print_epoch(info: dict[str, Any]) -> None:
    star = " [green]*best[/]" if info.get("best") else ""
    lr = info.get("learning_rate")
    console.print(
        f"epoch {info['epoch']:>3}/{info['epochs']} {escape('[' + info['phase'] + ']')} "
        f"loss {info.get('loss', float('nan')):.4f} acc {info.get('accuracy', float('nan')):.4f} | "
        f"val_loss {info.get('val_loss', float('nan')):.4f} val_acc {info.get('val_accuracy', float('nan')):.4f}"
        + (f" | lr {lr:.2g}" if lr is not None else "") + star
    )


@app.command("train")
def train_command(
    model: Annotated[str, typer.Option("--model", "-m", help="cnn or densenet.")] = "cnn",
    resume: ResumeOption = None,
    name: NameOption = None,
    epochs: EpochsOption = None,
    config: ConfigOption = None,
    set_: TrainSet = None,
    verbose: VerboseOption = False,
) -> None:
    """Train the custom CNN or the DenseNet169 transfer model on the prepared data."""
    _train(model, config, set_, resume, name, epochs, verbose)


@app.command("train-cnn")
def train_cnn(resume: ResumeOption = None, name: NameOption = None, epochs: EpochsOption = None,
              config: ConfigOption = None, set_: TrainSet = None, verbose: VerboseOption = False) -> None:
    """Same as `train --model cnn`."""
    _train("cnn", config, set_, resume, name, epochs, verbose)


@app.command("train-densenet")
def train_densenet(resume: ResumeOption = None, name: NameOption = None, epochs: EpochsOption = None,
                   config: ConfigOption = None, set_: TrainSet = None, verbose: VerboseOption = False) -> None:
    """Same as `train --model densenet`."""
    _train("densenet", config, set_, resume, name, epochs, verbose)


@app.command()
def average(
    model: Annotated[list[str] | None, typer.Option("--model", "-m", metavar="PATH", help="A run folder, .keras or .tflite file, or default (the shipped model); repeat for each model to average [default: the config's models].",
                                                    show_default=False)] = None,
    name: Annotated[str | None, typer.Option("--name", help="Run name; the average goes to runs/cnn/<name>N [default: average].",
                                             show_default=False)] = None,
    config: ConfigOption = None,
    set_: AverageSet = None,
    verbose: VerboseOption = False,
) -> None:
    """Average the weights of CNN runs fine-tuned from one start into one model (a model soup)."""
    from aidentify.train.average import average_runs

    def work() -> None:
        cfg, origin = load_config(AverageConfig, config, set_, {"name": name, "models": model}, stage="average")
        say_config(origin)
        with progress_bar() as progress:
            result = average_runs(cfg, progress=progress)
        table = Table(title=f"FER+ Valid accuracy, one view (n={result.val_images})")
        table.add_column("model")
        table.add_column("accuracy", justify="right")
        for ingredient in result.ingredients:
            table.add_row(escape(str(ingredient.source)), f"{ingredient.val_accuracy:.4f}")
        table.add_row("[bold]average[/]", f"[bold]{result.val_accuracy:.4f}[/]")
        console.print(table)
        console.print(f"[green]done[/]: {len(result.ingredients)} models averaged, BatchNorm statistics from "
                      f"{result.calibration_images} training images -> {result.run_dir}/weights/best.keras")

    run_guarded(verbose, work)


@app.command()
def evaluate(
    model: Annotated[list[Path] | None, typer.Option("--model", "-m", help="A .keras or .tflite file or a run folder; repeat to compare models [default: the shipped model].",
                                                     show_default=False)] = None,
    data: Annotated[str | None, typer.Option("--data", help="train, val, test (of data/prepared) or a folder/archive in any layout download knows [default: test].",
                                             show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder [default: runs/evaluate/expN].", show_default=False)] = None,
    config: ConfigOption = None,
    set_: EvaluateSet = None,
    verbose: VerboseOption = False,
) -> None:
    """Accuracy, macro-F1, per-class scores, confusion matrix and worst mistakes."""
    from aidentify.train.evaluate import evaluate as run
    from aidentify.train.runs import fresh_run_dir

    def work() -> None:
        cfg, origin = load_config(EvaluateConfig, config, set_, stage="evaluate")
        say_config(origin)
        # runs/evaluate/expN is removed again if the evaluation fails (bad --data, missing model...)
        with contextlib.nullcontext(out) if out else fresh_run_dir(Path("runs") / "evaluate", "exp") as target:
            with progress_bar() as progress:
                results = run(model, data, target, cfg, progress=progress)
        for result in results:
            console.print(_per_class_table(result.metrics))
            for what, count in result.metrics["excluded"].items():
                style = "yellow" if what.startswith("folder ") else "dim"  # a misnamed folder is the user's to fix
                console.print(f"[{style}]left out: {count} images ({escape(what)})[/]")
            if result.metrics["classes_missing_from_data"]:
                hint = (" (the folders left out above may hold them)"
                        if any(what.startswith("folder ") for what in result.metrics["excluded"]) else "")
                console.print(f"[dim]model classes absent from the data: "
                              f"{', '.join(result.metrics['classes_missing_from_data'])}{hint}[/]")
        if len(results) > 1:
            console.print(_comparison_table(results))
        console.print(f"reports -> {target}")

    run_guarded(verbose, work)


def _per_class_table(metrics: dict[str, Any]) -> Table:
    table = Table(title=f"{escape(metrics['name'])} on {escape(metrics['data'])}: accuracy {metrics['accuracy']:.4f}, "
                        f"macro-F1 {metrics['macro_f1']:.4f}, n={metrics['n']}"
                        + (f" ({metrics['n_left_out']} left out)" if metrics.get("n_left_out") else ""))
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, scores in metrics["per_class"].items():
        table.add_row(name, f"{scores['precision']:.3f}", f"{scores['recall']:.3f}", f"{scores['f1']:.3f}",
                      str(scores["support"]))
    return table


def _comparison_table(results) -> Table:
    table = Table(title="side by side")
    table.add_column("metric")
    for result in results:
        table.add_column(result.name, justify="right")
    table.add_row("accuracy", *(f"{r.metrics['accuracy']:.4f}" for r in results))
    table.add_row("macro-F1", *(f"{r.metrics['macro_f1']:.4f}" for r in results))
    classes = [c for c in results[0].metrics["per_class"]]
    for name in classes:
        table.add_row(f"F1 {name}", *(f"{r.metrics['per_class'].get(name, {}).get('f1', float('nan')):.3f}"
                                      for r in results))
    table.add_row("n", *(str(r.metrics["n"]) for r in results))
    return table
