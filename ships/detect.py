"""``ships detect``: the ship finder over full scenes, and its paste-in test bed (``--evaluate``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ships._common import JsonOpt, WorkspaceOpt, echo_json, open_workspace

app = typer.Typer()


ScenesArg = Annotated[list[Path], typer.Argument(
    help="Scene images: any format Pillow reads, sniffed by content (JPEG under a .png name is fine), "
         "or an (H, W, 3) uint8 .npy array (memory-mapped).")]
ModelOpt = Annotated[str, typer.Option(
    "--model", "-m",
    help="A baseline NAME (fitted now on the workspace's train data), a PATH written by "
         "`ships baseline run NAME --save PATH`, or an MLflow model URI (runs:/<run id>/model, models:/<name>/<version>).")]
StrideOpt = Annotated[int, typer.Option("--stride", help="Step in pixels between 80x80 windows (>= 1).")]
ThresholdOpt = Annotated[float, typer.Option(
    "--threshold", help="Probability of ship at which a window becomes a box, in [0, 1].")]
IouOpt = Annotated[float, typer.Option(
    "--iou", help="Non-maximum suppression: a box overlapping a better one with IoU above this is merged into it, in (0, 1].")]
BatchOpt = Annotated[int, typer.Option(
    "--batch-size", help="Windows scored per call to the model; memory is bounded by it, not by the scene.")]
OutOpt = Annotated[Path, typer.Option(
    "--out", "-o", help="Folder for SCENE.csv, SCENE.geojson, SCENE.heatmap.png and SCENE.boxes.png.")]
EvaluateOpt = Annotated[bool, typer.Option(
    "--evaluate",
    help="Measure recall and precision: paste ship and no-ship chips of the workspace's locked test part "
         "(public/test and the organiser's private/solution.csv) into each scene's water, detect, and match "
         "the boxes to them.")]
NShipsOpt = Annotated[int, typer.Option("--n-ships", min=0, help="With --evaluate: ship chips pasted per scene.")]
NNoShipsOpt = Annotated[int, typer.Option("--n-no-ships", min=0, help="With --evaluate: no-ship chips pasted per scene.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="With --evaluate: seed of the chips chosen and of where they go.")]
TrackingOpt = Annotated[Optional[str], typer.Option(
    "--tracking-uri", envvar="MLFLOW_TRACKING_URI", show_envvar=False,
    help="MLflow tracking URI of an MLflow --model (default: $MLFLOW_TRACKING_URI, else the workspace's mlflow.db).")]


@app.command()
def detect(
    scenes: ScenesArg,
    workspace: WorkspaceOpt,
    model: ModelOpt = "logreg",
    stride: StrideOpt = 10,
    threshold: ThresholdOpt = 0.9,
    iou: IouOpt = 0.3,
    batch_size: BatchOpt = 1024,
    out: OutOpt = Path("detections"),
    evaluate: EvaluateOpt = False,
    n_ships: NShipsOpt = 20,
    n_no_ships: NNoShipsOpt = 20,
    seed: SeedOpt = 0,
    tracking_uri: TrackingOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Find ships in full satellite scenes: slide the chip classifier, merge boxes, write tables and images."""
    from baselines.resolve import resolve_model
    from competition.detect import check_detect_params
    from competition.finder import find_ships
    from competition.scenes import check_scene_file, load_test_part, read_scene

    params = {"stride": stride, "threshold": threshold, "iou_threshold": iou, "batch_size": batch_size}
    check_detect_params(**params)  # every cheap check before a model is fitted or loaded
    for scene in scenes:
        check_scene_file(scene)
    ws = open_workspace(workspace) if evaluate else None  # the test bed needs the workspace: fail before fitting
    estimator, model_note = resolve_model(model, workspace=workspace, tracking_uri=tracking_uri, name="--model",
                                          notify=lambda text: typer.echo(text, err=True))
    test_part = load_test_part(ws) if evaluate else None
    out.mkdir(parents=True, exist_ok=True)
    results, stems = [], set()
    for k, scene in enumerate(scenes):
        image = read_scene(scene)
        stem = _unique_stem(scene, stems)
        bed = {"n_ships": n_ships, "n_no_ships": n_no_ships, "random_state": seed + k}  # other chips in each scene
        with _progress(scene.name, quiet=json_out) as progress:
            result = find_ships(image, estimator, scene=scene, out=out, stem=stem, params=params, test_part=test_part,
                                bed=bed, progress=progress)
        results.append({"scene": str(scene), "model": model, **result})
    if json_out:
        echo_json(results)
        return
    typer.echo(model_note)
    _print_summary(results, evaluate, out)
    if evaluate:
        typer.echo(f"Pasted chips: the locked test part of {ws.root} ({len(test_part.y)} chips); a model trained "
                   "on them would be measured on its own training data.")


def _unique_stem(scene: Path, seen: set[str]) -> str:
    stem, k = scene.stem, 2
    while stem in seen:
        stem, k = f"{scene.stem}-{k}", k + 1
    seen.add(stem)
    return stem


class _progress:
    """A rich progress bar on stderr, as a ``(n_done, n_total)`` callback; silent when ``quiet``."""

    def __init__(self, label: str, quiet: bool):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        console = Console(stderr=True)
        self._bar = Progress("{task.description}", BarColumn(), MofNCompleteColumn(), "windows",
                             TimeRemainingColumn(), console=console, transient=True,
                             disable=quiet or not console.is_terminal)
        self._task = self._bar.add_task(label, total=None)

    def __enter__(self):
        self._bar.start()
        return self

    def __exit__(self, *exc):
        self._bar.stop()

    def __call__(self, done: int, total: int) -> None:
        self._bar.update(self._task, completed=done, total=total)


def _print_summary(results: list[dict], evaluate: bool, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Ship finder")
    table.add_column("scene", overflow="fold")
    for col in ("pixels", "windows", "windows/s", "detections"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(Path(r["scene"]).name, f"{r['width']}x{r['height']}", f"{r['n_windows']:,}",
                      f"{r['windows_per_second']:,.0f}", str(r["n_detections"]))
    Console().print(table)
    typer.echo(f"Written to {out}/: SCENE.csv and SCENE.geojson (boxes, pixel coordinates), SCENE.heatmap.png, "
               "SCENE.boxes.png" + (" (SCENE = the scene's name + '.pasted')." if evaluate else "."))
    if evaluate:
        _print_evaluation(results)


def _print_evaluation(results: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Test bed: locked test-part chips pasted into the water")
    table.add_column("scene", overflow="fold")
    for col in ("ships found", "recall", "precision", "no-ship hit", "dup.", "elsewhere"):
        table.add_column(col, justify="right", no_wrap=True)
    tot = {"tp": 0, "ships": 0, "fp": 0, "fired": 0, "no": 0, "dup": 0, "else": 0}
    for r in results:
        e = r["evaluation"]
        table.add_row(Path(r["scene"]).name, f"{e['true_positives']}/{e['n_ships']}", f"{e['recall']:.2f}",
                      f"{e['precision']:.2f}", f"{e['no_ships_fired']}/{e['n_no_ships']}", str(e["duplicates"]),
                      str(e["elsewhere"]))
        for k, f in (("tp", "true_positives"), ("ships", "n_ships"), ("fp", "false_positives"),
                     ("fired", "no_ships_fired"), ("no", "n_no_ships"), ("dup", "duplicates"), ("else", "elsewhere")):
            tot[k] += e[f]
    if len(results) > 1:
        recall = tot["tp"] / tot["ships"] if tot["ships"] else 0.0
        precision = tot["tp"] / (tot["tp"] + tot["fp"]) if tot["tp"] + tot["fp"] else 0.0
        table.add_row("all", f"{tot['tp']}/{tot['ships']}", f"{recall:.2f}", f"{precision:.2f}",
                      f"{tot['fired']}/{tot['no']}", str(tot["dup"]), str(tot["else"]))
    Console().print(table)
    typer.echo("Boxes: green pasted ships, blue pasted no-ship chips, red detections. 'no-ship hit': pasted no-ship "
               "chips detected; 'dup.': second boxes on one ship; 'elsewhere': detections off the pasted chips "
               "(real ships of the scene or false alarms).")
