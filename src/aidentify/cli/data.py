"""Data-stage commands: download, clean, prepare, augment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from aidentify.classes import CLASSES
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
from aidentify.config import AugmentConfig, CleanConfig, DownloadConfig, PrepareConfig, load_config

DownloadSet = set_option("raw_dir=/data/raw")
CleanSet = set_option("min_std=5")
PrepareSet = set_option("faces.margin=0.3")
AugmentSet = set_option("target=max")


@app.command()
def download(
    dataset: Annotated[str | None, typer.Argument(metavar="DATASET", show_default=False, help="ferplus, affectnet-hq, fer2013 or all (see configs/download.yaml); with --from, also a name of your own for a local dataset.")] = None,
    from_path: Annotated[Path | None, typer.Option("--from", help="Import a local .zip/.tar.gz, folder or .csv file (FER2013's fer2013.csv) instead of downloading from Kaggle.",
                                                   show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Download again even if this dataset is already here.")] = False,
    raw_dir: Annotated[Path | None, typer.Option("--raw-dir", help="Where datasets go [default: data/raw].", show_default=False)] = None,
    config: ConfigOption = None,
    set_: DownloadSet = None,
    verbose: VerboseOption = False,
) -> None:
    """Fetch a dataset from Kaggle (or import a local copy) and index its images."""
    from aidentify.data.download import download as run

    def work() -> None:
        cfg, origin = load_config(DownloadConfig, config, set_, {"raw_dir": raw_dir}, stage="download")
        say_config(origin)
        with progress_bar() as progress:
            results = run(cfg, dataset, from_path=from_path, force=force, progress=progress)
        for result in results:
            if result.skipped:
                console.print(f"[green]{result.dataset}[/]: {result.images} images in {result.folder} "
                              f"— {result.notes[0]}")
                continue
            splits = ", ".join(f"{k} {v}" for k, v in result.by_split.items())
            console.print(f"[green]{result.dataset}[/]: {result.images} images ({splits}), "
                          f"layout {result.layout} -> {result.folder}")
            for note in result.notes:
                console.print(f"  [dim]note: {note}[/]")

    run_guarded(verbose, work)


@app.command()
def clean(
    raw_dir: Annotated[Path | None, typer.Option("--raw-dir", help="Downloaded datasets [default: data/raw].", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder [default: data/clean].", show_default=False)] = None,
    config: ConfigOption = None,
    set_: CleanSet = None,
    verbose: VerboseOption = False,
) -> None:
    """Drop unreadable, blank, duplicate and unagreed images; record why; carve missing splits."""
    from aidentify.data.clean import clean as run

    def work() -> None:
        cfg, origin = load_config(CleanConfig, config, set_, {"raw_dir": raw_dir, "out_dir": out}, stage="clean")
        say_config(origin)
        with progress_bar() as progress:
            result = run(cfg, progress=progress)
        report = result.report
        console.print(counts_table("clean: images per class", report["before"], report["after"]))
        console.print(reasons_table(report["dropped_by_reason"], report["input_images"]))
        for source, splits in report["carved_splits"].items():
            carved = ", ".join(f"{n} to {s}" for s, n in splits.items())
            console.print(f"[dim]{source} had no such split: carved {carved} from train[/]")
        if report["ambiguous_train"]:
            console.print(f"[dim]kept {report['ambiguous_train']} training images without agreement "
                          "for their vote distributions (votes.ambiguous_train)[/]")
        for warning in report.get("warnings", []):
            err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
        console.print(f"kept {report['kept']} of {report['input_images']} images -> "
                      f"{result.out_dir}/manifest.csv (dropped list: {result.out_dir}/dropped.csv)")

    run_guarded(verbose, work)


@app.command()
def prepare(
    image_size: Annotated[int | None, typer.Option("--image-size", help="Side of the square crops in pixels [default: 96].", show_default=False)] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Processes to use; 0 = every core [default: 0].", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder [default: data/prepared].", show_default=False)] = None,
    config: ConfigOption = None,
    set_: PrepareSet = None,
    verbose: VerboseOption = False,
) -> None:
    """Detect faces (MTCNN by default), crop square with margin, level the eyes, grayscale, resize. Resumable."""
    from aidentify.data.prepare import prepare as run

    def work() -> None:
        options = {"image_size": image_size, "workers": workers, "out_dir": out}
        cfg, origin = load_config(PrepareConfig, config, set_, options, stage="prepare")
        say_config(origin)
        with progress_bar() as progress:
            result = run(cfg, progress=progress)
        report = result.report
        if report["resumed_from"]:
            console.print(f"[dim]resumed: {report['resumed_from']} images were already done[/]")
        table = Table(title="prepare: face detection outcome per source")
        outcomes = ["face", "whole", "fallback_whole", "no_face", "unreadable"]
        table.add_column("source")
        for outcome in outcomes:
            table.add_column(outcome, justify="right")
        for source, counts in report["outcomes_by_source"].items():
            table.add_row(source, *(str(counts.get(o, 0)) for o in outcomes))
        console.print(table)
        console.print(counts_table("prepare: images per class", None, report["after"]))
        console.print(f"kept {report['kept']} of {report['input_images']} images at "
                      f"{report['image_size']}x{report['image_size']} -> {result.out_dir}/manifest.csv")

    run_guarded(verbose, work)


@app.command()
def augment(
    out: Annotated[Path | None, typer.Option("--out", help="Output folder [default: data/augmented].", show_default=False)] = None,
    config: ConfigOption = None,
    set_: AugmentSet = None,
    verbose: VerboseOption = False,
) -> None:
    """Balance rare classes of the training split by mirroring and rotating."""
    from aidentify.data.augment import augment as run

    def work() -> None:
        cfg, origin = load_config(AugmentConfig, config, set_, {"out_dir": out}, stage="augment")
        say_config(origin)
        with progress_bar() as progress:
            result = run(cfg, progress=progress)
        report = result.report
        console.print(counts_table("augment: images per class", report["before"], report["after"]))
        console.print(f"added {report['added']} training images "
                      f"(variants: {', '.join(report['variants'])}) -> {result.out_dir}/manifest.csv")

    run_guarded(verbose, work)


def counts_table(title: str, before: dict | None, after: dict) -> Table:
    """Images per class (rows) and split (columns), before -> after."""
    table = Table(title=title)
    table.add_column("class")
    present = {*after, *(before or {})}
    splits = [s for s in ("train", "val", "test") if s in present] + sorted(present - {"train", "val", "test"})
    for split in splits:
        table.add_column(split, justify="right")
    extra = sorted({label for counts in [*(before or {}).values(), *after.values()] for label in counts}
                   - set(CLASSES))
    for label in [*CLASSES, *extra]:
        cells = [_cell(before, after, split, label) for split in splits]
        table.add_row(label, *cells)
    totals = [_cell(_totals(before) if before else None, _totals(after), split, "*") for split in splits]
    table.add_row("[bold]total[/]", *totals)
    return table


def _totals(counts: dict) -> dict:
    return {split: {"*": sum(by_class.values())} for split, by_class in counts.items()}


def _cell(before: dict | None, after: dict, split: str, label: str) -> str:
    new = after.get(split, {}).get(label, 0)
    if before is None:
        return str(new)
    old = before.get(split, {}).get(label, 0)
    return str(new) if old == new else f"{old} -> {new}"


def reasons_table(by_reason: dict, total: int) -> Table:
    table = Table(title="clean: dropped images by reason")
    table.add_column("reason")
    table.add_column("images", justify="right")
    table.add_column("share", justify="right")
    for reason, count in sorted(by_reason.items(), key=lambda kv: -kv[1]):
        table.add_row(reason, str(count), f"{count / max(total, 1):.1%}")
    if not by_reason:
        table.add_row("nothing dropped", "0", "0%")
    return table
