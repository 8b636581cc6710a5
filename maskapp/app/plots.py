"""Plotly figures and table rows for the metrics and video pages (no Streamlit import).

Figures are built from `maskapp.runs.Run` objects and from per-frame video counts. Missing values
(a NaN loss is stored as null) become gaps in a line, never an exception.
"""

from __future__ import annotations

import html
import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from maskapp.app.text import breakable, plain, short_source, shown_path
from maskapp.labels import CLASS_NAMES, WITH_MASK, WITHOUT_MASK, WORN_INCORRECTLY
from maskapp.training.runs import MODEL_FILE, EvalMetrics, PrecisionRecallCurve, Run
from maskapp.vision.draw import label_style

# One colour per run or per source, none a verdict's: plotly's own palette drew the second source (or run)
# red, the third green and the fifth orange, so a camera where everyone wore a mask read as "No mask".
# Hues from cyan to magenta (at least 40 degrees from the verdicts' red, amber and green) and a grey, each
# mid-light, to read on the light and the dark theme.
PALETTE = (
    "#1f77b4",  # blue
    "#9467bd",  # purple
    "#17becf",  # cyan
    "#8c8c8c",  # grey
    "#c04fc8",  # magenta
    "#5a5fd6",  # indigo
    "#6baed6",  # light blue
    "#b39ddb",  # lavender
)
COMPLIANCE_COLOR = "#1f77b4"


def _label(text: object) -> str:
    """Plotly renders a subset of HTML in labels: names that come from disk are shown as plain text."""
    return html.escape(str(text), quote=False)


def _number(value) -> float | None:
    """A finite float, or None (a gap in a line, a blank in a table)."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# One rule for every figure on the Metrics page (tables, bar values, hovers): a score reads to three
# decimals, always three (0.970, not 0.97 beside 0.9759). The third decimal is a face or two of a test split
# of about 2000 faces; a fourth is less than one face, so it only made two equal models look different.
# Thresholds read to two: the 0.01 steps they are chosen on.
SCORE_FORMAT = ".3f"
THRESHOLD_FORMAT = ".2f"
THRESHOLD_COLUMNS = frozenset({"threshold", "its own threshold"})


def threshold_text(threshold: float) -> str:
    """A threshold as every figure of the Metrics page reads it (0.50, not 0.5)."""
    return format(threshold, THRESHOLD_FORMAT)


def figure_text(column: str, value: object) -> str:
    """A table cell by the rule above: scores to three decimals, thresholds to two, counts and words as
    they are."""
    if not isinstance(value, float):
        return str(value)
    return threshold_text(value) if column in THRESHOLD_COLUMNS else score_text(value)


def cell_text(column: str, value: object) -> str:
    """A table cell as `figure_text` writes it, escaped for markdown: st.table reads every cell as
    markdown, so the served run's ROC AUC, >0.999, was drawn as a grey quote bar beside 0.999, and a run
    or data set named with * or _ around a word came out in italics."""
    return plain(figure_text(column, value))


def score_text(score: float) -> str:
    """A score to three decimals, but never a perfect 1.000 (or a 0.000) for one that is not: the
    served run's ROC AUC of 0.9996 read 1.000, as if it never ranked a face wrong; it reads >0.999."""
    text = format(score, SCORE_FORMAT)
    if text == format(1.0, SCORE_FORMAT) and score < 1:
        return ">0.999"
    if text == format(0.0, SCORE_FORMAT) and score > 0:
        return "<0.001"
    return text


def _hover_scores(scores: Sequence[float | None]) -> list[str]:
    """Scores as a chart's hover writes them, by `score_text`: plotly's own '.3f' hovered 1.000 over the
    served run's 0.9996, where its table and bar read >0.999."""
    return ["" if score is None else score_text(score) for score in scores]


def shown_name(name: str, served: str | None) -> str:
    """A run's name as every chart and table names it: the served run says so wherever it appears (it
    was marked in the comparison table alone, so a reader of the precision-recall chart or the threshold
    table could not tell which line the app flags people by)."""
    return f"{name} (served)" if name == served else name


def _color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _legend_below(figure: go.Figure, height: int) -> go.Figure:
    """A horizontal legend pinned to the figure's bottom edge: placed in plot fractions, as before, it
    ran into the x-axis title once many runs wrapped it onto more lines."""
    figure.update_layout(
        height=height,
        margin={"t": 40, "b": 20},
        legend={"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom"},
    )
    figure.update_xaxes(automargin=True)
    return figure


def training_curves(runs: Sequence[Run], served: str | None = None) -> go.Figure:
    """Train (solid) vs validation (dashed) loss and accuracy per epoch, one colour per run and one legend
    entry per run (the page's caption tells solid from dashed); a run without epochs (weights averaged by
    `average-weights`) has no curve."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"))
    # A run's colour is its place among all the runs, as in the comparison and precision-recall charts:
    # counted among the runs with epochs, every run after averaged weights took its neighbour's colour.
    for index, run in enumerate(runs):
        if not run.history:
            continue
        epochs = [record.epoch for record in run.history]
        for column, metric in ((1, "loss"), (2, "accuracy")):
            for split, dash in (("train", "solid"), ("val", "dash")):
                values = [_number(getattr(record, f"{split}_{metric}")) for record in run.history]
                figure.add_trace(
                    go.Scatter(
                        x=epochs,
                        y=values,
                        customdata=_hover_scores(values),
                        mode="lines+markers",
                        name=_label(shown_name(run.name, served)),
                        legendgroup=_label(run.name),
                        showlegend=column == 1 and split == "train",
                        hovertemplate=f"{split} %{{customdata}}<br>epoch %{{x}}",
                        line={"color": _color(index), "dash": dash},
                    ),
                    row=1,
                    col=column,
                )
    figure.update_xaxes(title_text="epoch")
    figure.update_yaxes(title_text="cross-entropy", rangemode="tozero", row=1, col=1)
    # Zoomed, as good runs differ near 1.0, from a round value the title names: plotly's own range began
    # at an unnamed 0.82, so a validation dip of 0.06 fell to the foot of the chart, read as a collapse.
    floor = round_floor(
        [
            value
            for run in runs
            for record in run.history
            for value in map(_number, (record.train_accuracy, record.val_accuracy))
            if value is not None
        ]
    )
    figure.update_yaxes(
        title_text=f"accuracy{from_floor_words(floor)}", range=[floor, 1.0 + PR_AXIS_PAD], row=1, col=2
    )
    return _legend_below(figure, 420)


CONFUSION_CELL_PX = 110
CONFUSION_FRAME_PX = 150  # title, axis titles and tick labels around the cells


def _tick_label(name: str) -> str:
    """A long class name on two lines, broken after an underscore: level, mask_worn_incorrectly needed
    a column of its own, and tilted, it squeezed a 3x3 matrix to a strip."""
    words = _label(name).split("_")
    if len(words) < 3:
        return _label(name)
    half = (len(words) + 1) // 2
    return "_".join(words[:half]) + "_<br>" + "_".join(words[half:])


def share_text(share: float) -> str:
    """A share in whole per cent, but never a '0%' for faces that are there (2 of 1084 without a mask
    called masked read as none), nor a '100%' for a row with a face missed: there a tenth of a per cent,
    and '<0.1%' or '>99.9%' beyond it, as a score is never 1.000 when it is not."""
    if 0 < share < 0.005 or 0.995 <= share < 1:
        text = f"{share:.1%}"
        if text == f"{1:.1%}":
            return ">99.9%"
        return "<0.1%" if text == f"{0:.1%}" else text
    return f"{share:.0%}"


def confusion_matrix_figure(metrics: EvalMetrics, *, title: str = "") -> go.Figure:
    """Test faces by true class (rows) and predicted class: each cell's count and share of its row, the
    colour that share (recall), so small classes stay readable. Square cells of a fixed size: the figure
    grows with the number of classes, not with the width it is given."""
    labels = [_label(name) for name in metrics.labels]
    counts = metrics.confusion_matrix
    shares = []
    for row in counts:
        total = sum(row)
        shares.append([count / total if total else 0.0 for count in row])
    figure = go.Figure(
        go.Heatmap(
            z=shares,
            x=labels,
            y=labels,
            # The count and its share of the row in each cell: colour alone did not tell 98% from 90%,
            # and a reader had to divide 215 by its row's sum to see how often badly worn masks are caught.
            text=[
                [f"{count}<br>{share_text(share)}" for count, share in zip(row, row_shares, strict=True)]
                for row, row_shares in zip(counts, shares, strict=True)
            ],
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            showscale=False,  # the counts are printed; hover gives the row share
            customdata=[
                [[count, share_text(share)] for count, share in zip(row, row_shares, strict=True)]
                for row, row_shares in zip(counts, shares, strict=True)
            ],
            hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata[0]} faces, %{customdata[1]} of the "
            "true class<extra></extra>",
        )
    )
    class_ticks = {
        "tickvals": labels,
        "ticktext": [_tick_label(name) for name in metrics.labels],
        "automargin": True,
    }
    figure.update_xaxes(
        title_text="predicted class", type="category", tickangle=0, constrain="domain", **class_ticks
    )
    figure.update_yaxes(
        title_text="true class", type="category", autorange="reversed", scaleanchor="x", **class_ticks
    )
    height = CONFUSION_FRAME_PX + CONFUSION_CELL_PX * len(labels)
    figure.update_layout(title={"text": _label(title)}, height=height, margin={"t": 40, "b": 20})
    return figure


def per_class_rows(metrics: EvalMetrics) -> list[dict]:
    """One row per class: precision, recall, F1, support; then the macro average. Headers as the
    comparison writes them (words in small letters, F1 and ROC AUC in capitals): it read "f1" beside
    the comparison's "macro F1"."""
    rows = [
        {
            "class": name,
            "precision": _number(m.precision),
            "recall": _number(m.recall),
            "F1": _number(m.f1),
            "support": m.support,
        }
        for name, m in metrics.per_class.items()
    ]
    if metrics.per_class:
        count = len(metrics.per_class)
        rows.append(
            {
                "class": "macro average",
                "precision": _number(sum(m.precision for m in metrics.per_class.values()) / count),
                "recall": _number(sum(m.recall for m in metrics.per_class.values()) / count),
                "F1": _number(metrics.macro_f1),
                "support": sum(m.support for m in metrics.per_class.values()),
            }
        )
    return rows


def compliance_rows(metrics: EvalMetrics) -> list[dict]:
    """The view a site acts on: non-compliant faces (no mask or badly worn) flagged, masked ones let
    through; empty for figures written before it existed."""
    c = metrics.compliance
    if c is None:
        return []
    return [
        {
            "figure": "non-compliant recall",
            "value": _number(c.noncompliant_recall),
            "faces": c.noncompliant_support,
        },
        {"figure": "non-compliant precision", "value": _number(c.noncompliant_precision), "faces": None},
        {"figure": "with_mask recall", "value": _number(c.with_mask_recall), "faces": c.with_mask_support},
        {"figure": "balanced accuracy", "value": _number(c.balanced_accuracy), "faces": None},
    ]


def per_dataset_rows(metrics: EvalMetrics) -> list[dict]:
    """One row per data set of a run's test split."""
    rows = []
    for name, figures in metrics.per_dataset.items():
        c = figures.compliance
        rows.append(
            {
                "data set": name,
                "faces": sum(m.support for m in figures.per_class.values()),
                "accuracy": _number(figures.accuracy),
                "balanced accuracy": _number(figures.balanced_accuracy),
                "non-compliant recall": _number(c.noncompliant_recall) if c else None,
                "with_mask recall": _number(c.with_mask_recall) if c else None,
            }
        )
    return rows


def decision_threshold(metrics: EvalMetrics) -> float | None:
    """The P(non-compliant) threshold the figures were decided with. A 2-class model without one picks
    the likelier class, which is the threshold 0.5; a 3-class one has no single threshold then."""
    if metrics.noncompliant_threshold is not None:
        return metrics.noncompliant_threshold
    return 0.5 if len(metrics.labels) == 2 else None


@dataclass(frozen=True)
class CurvePoint:
    threshold: float
    precision: float | None
    recall: float


def point_at(curve: PrecisionRecallCurve, threshold: float) -> CurvePoint:
    """The curve's point at the grid threshold nearest to `threshold`."""
    index = min(range(len(curve.thresholds)), key=lambda i: abs(curve.thresholds[i] - threshold))
    return CurvePoint(curve.thresholds[index], curve.precision[index], curve.recall[index])


PR_PLOT_PX = 320
LEGEND_ROW_PX = 20  # room for one legend line per run, should a narrow page stack them


def noncompliant_pr_figure(
    runs: Sequence[Run], served: str | None = None, zoom: PrZoom | None = None
) -> go.Figure:
    """Non-compliant precision against recall as the threshold on 1 - P(with_mask) moves, one line per
    run (hover: the threshold), each run's own threshold starred: a site that must not miss anyone
    picks a point further right. A star shares its run's legend entry and tells its threshold on hover:
    printed beside the stars, the thresholds piled up where the good runs meet near (1, 1), and with
    entries of their own the legend outgrew the figure. `zoom`: where the axes start (`pr_zoom`; by
    default every curve whole)."""
    zoom = zoom or pr_zoom(runs, served, whole=True)
    figure = go.Figure()
    for index, run in enumerate(runs):
        curve = run.metrics.noncompliant_pr if run.metrics else None
        if curve is None:
            continue
        name = _label(shown_name(run.name, served))
        off = f" (runs off below {zoom.floor:g})" if run.name in zoom.off_chart else ""
        figure.add_trace(
            go.Scatter(
                x=curve.recall,
                y=[_number(p) for p in curve.precision],
                customdata=[
                    [threshold_text(threshold), *_hover_scores([recall, _number(precision)])]
                    for threshold, recall, precision in zip(
                        curve.thresholds, curve.recall, curve.precision, strict=True
                    )
                ],
                mode="lines",
                name=name + off,
                legendgroup=name,
                line={"color": _color(index)},
                hovertemplate="threshold %{customdata[0]}<br>recall %{customdata[1]}"
                f"<br>precision %{{customdata[2]}}<extra>{name}</extra>",
            )
        )
        shipped = decision_threshold(run.metrics)
        if shipped is not None:
            point = point_at(curve, shipped)
            figure.add_trace(
                go.Scatter(
                    x=[point.recall],
                    y=[_number(point.precision)],
                    customdata=[_hover_scores([point.recall, _number(point.precision)])],
                    mode="markers",
                    marker={"symbol": "star", "size": 14, "color": _color(index)},
                    name=f"{name}: its threshold",
                    legendgroup=name,
                    showlegend=False,
                    hovertemplate=f"its threshold {threshold_text(shipped)}"
                    "<br>recall %{customdata[0]}<br>precision %{customdata[1]}"
                    f"<extra>{name}</extra>",
                )
            )
    floor = zoom.floor
    # Both axes from one round floor, the same ticks on each, and the titles say where they start: with
    # plotly's own ranges the curves, all in 0.8-1.0, filled the plot from odd values (0.78, 0.79) that
    # nothing named, so a gap of 0.02 looked like half the chart.
    from_floor = from_floor_words(floor)
    axis = {"range": [floor, 1.0 + PR_AXIS_PAD], "dtick": 0.05 if floor >= 0.7 else 0.1, "tick0": 0}
    figure.update_xaxes(
        title_text=f"non-compliant recall: people without a proper mask flagged{from_floor}", **axis
    )
    figure.update_yaxes(title_text=f"non-compliant precision{from_floor}", **axis)
    return _legend_below(figure, PR_PLOT_PX + LEGEND_ROW_PX * len(runs))


PR_AXIS_PAD = 0.01  # a curve or star at 1.0 is drawn whole, not cut by the frame


def pr_axis_floor(runs: Sequence[Run]) -> float:
    """Where the precision-recall chart's axes start: a round tenth below every point of every curve
    (0 when a curve reaches that low), so the runs' differences near 1.0 still show."""
    values = [
        value
        for run in runs
        if run.metrics and run.metrics.noncompliant_pr
        for value in (*run.metrics.noncompliant_pr.recall, *run.metrics.noncompliant_pr.precision)
        if _number(value) is not None
    ]
    return round_floor(values)


# How far behind the best run, at its own threshold, a run's curve may be and still set the zoom: further
# behind, it is no contender to serve, and its curve may run off the chart.
CONTENDER_MARGIN = 0.02


@dataclass(frozen=True)
class PrZoom:
    """Where the precision-recall chart's axes start, and the runs whose curves run off below it."""

    floor: float
    off_chart: tuple[str, ...] = ()


def pr_zoom(runs: Sequence[Run], served: str | None = None, *, whole: bool = False) -> PrZoom:
    """The precision-recall chart's axes from a round tenth below the curves of the runs a site chooses
    between: the served run and each run whose worse figure at its own threshold (recall or precision) is
    within CONTENDER_MARGIN of the best run's. A weaker run's curve runs off below the labelled axis, and
    is named (`off_chart`). With every curve in (cnn_3class down to 0.59) both axes began at 0.5 and the
    good runs, all above 0.94 where they ship, crowded one corner. `whole`: every curve whole."""
    curves = [run for run in runs if run.metrics and run.metrics.noncompliant_pr]
    levels = {run.name: _level_at_own_threshold(run) for run in curves}
    best = max(levels.values(), default=0.0)
    contenders = [
        run for run in curves if whole or run.name == served or levels[run.name] >= best - CONTENDER_MARGIN
    ]
    floor = pr_axis_floor(contenders)
    off = tuple(run.name for run in curves if min(_curve_values(run), default=1.0) < floor)
    return PrZoom(floor, off)


def off_chart_note(zoom: PrZoom, served: str | None = None) -> str:
    """Which runs' curves run off the zoomed chart, and why they may."""
    names = [shown_name(name, served) for name in zoom.off_chart]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    one = len(names) == 1
    return (
        f"The curve{'' if one else 's'} of {listed} run{'s' if one else ''} off below {zoom.floor:g}: at "
        f"{'its' if one else 'their'} own threshold {'it is' if one else 'each is'} more than "
        f"{CONTENDER_MARGIN:g} behind the best run (recall or precision), so the axes zoom to the others."
    )


def _curve_values(run: Run) -> list[float]:
    curve = run.metrics.noncompliant_pr
    return [v for v in map(_number, (*curve.recall, *curve.precision)) if v is not None]


def _level_at_own_threshold(run: Run) -> float:
    """The worse of a run's non-compliant recall and precision where it ships (0.5 without a threshold)."""
    point = point_at(run.metrics.noncompliant_pr, decision_threshold(run.metrics) or 0.5)
    return min(point.recall, _number(point.precision) or 0.0)


def round_floor(scores: Sequence[float]) -> float:
    """A round tenth below the lowest score (0 when none, or one reaches that low): where a zoomed
    score axis starts, so runs near 1.0 still look different; the axis then says it does not start at 0."""
    return max(0.0, math.floor((min(scores, default=0.0) - 0.02) * 10) / 10)


def from_floor_words(floor: float) -> str:
    """What a zoomed axis's title adds: where it starts, and that it is not 0."""
    return f" (axis from {floor:g}, not 0)" if floor > 0 else ""


def reference_run(runs: Sequence[Run], served: str | None) -> Run:
    """The run whose threshold the page starts from: the served one when it is among `runs` (the app
    flags with its threshold), else the first."""
    return next((run for run in runs if run.name == served), runs[0])


def threshold_run(runs: Sequence[Run], inspected: str | None, served: str | None) -> Run:
    """The run whose threshold the slider starts from and whose serve command the page writes: the one
    picked under Test set, else `reference_run`. The 2-class group's command always served its first
    run, cnn, the weaker model, as if the page proposed it, whichever run the reader was looking at."""
    return next((run for run in runs if run.name == inspected), reference_run(runs, served))


def serve_command(reference: Run, served: str | None, threshold: float) -> str:
    """The command that flags people at `threshold` with `reference`'s model: the app's own weights only
    when that run is the one served. Without --weights, the 2-class group's command ran the served 3-class
    model at a 2-class model's threshold."""
    weights = (
        ""
        if reference.name == served
        else f" --weights {shlex.quote(shown_path(reference.path / MODEL_FILE))}"
    )
    return f"python -m maskapp detect PHOTO{weights} --noncompliant-threshold {threshold:{THRESHOLD_FORMAT}}"


def threshold_rows(runs: Sequence[Run], threshold: float, served: str | None = None) -> list[dict]:
    """Each run's non-compliant recall and precision at a threshold a site considers."""
    rows = []
    for run in runs:
        curve = run.metrics.noncompliant_pr if run.metrics else None
        if curve is None:
            continue
        point = point_at(curve, threshold)
        shipped = decision_threshold(run.metrics)
        rows.append(
            {
                "run": shown_name(run.name, served),
                "threshold": point.threshold,
                "non-compliant recall": _number(point.recall),
                "non-compliant precision": _number(point.precision),
                "its own threshold": shipped,
            }
        )
    return rows


def system_usage_figure(run: Run) -> go.Figure:
    """CPU, RAM and GPU utilisation (%) above process RSS and GPU memory (MB), over run time."""
    figure = make_subplots(
        rows=2, cols=1, shared_xaxes=True, subplot_titles=("Utilisation", "Memory"), vertical_spacing=0.12
    )
    minutes = [sample.seconds / 60 for sample in run.system]
    series = (
        (1, "CPU %", "cpu_percent"),
        (1, "RAM %", "ram_percent"),
        (1, "GPU %", "gpu_util_percent"),
        (2, "process RSS MB", "rss_mb"),
        (2, "GPU memory MB", "gpu_memory_mb"),
    )
    for index, (row, name, attribute) in enumerate(series):
        values = [_number(getattr(sample, attribute)) for sample in run.system]
        if not any(value is not None for value in values):
            continue  # e.g. no GPU on the training machine
        # Coloured here: Streamlit's chart colours drew the GPU line red.
        line = {"color": _color(index)}
        figure.add_trace(go.Scatter(x=minutes, y=values, mode="lines", name=name, line=line), row=row, col=1)
    figure.update_xaxes(title_text="minutes since start", row=2, col=1)
    # From 0: plotly's own range began just under the lowest line and its first tick above it, so RAM at
    # 8-17% (CPU near 100%) was drawn below the axis's lowest figure, 20.
    figure.update_yaxes(title_text="%", range=[0, 105], tickvals=[0, 25, 50, 75, 100], row=1, col=1)
    figure.update_yaxes(title_text="MB", rangemode="tozero", row=2, col=1)
    figure.update_layout(height=460, margin={"t": 40, "b": 40})
    return figure


def system_usage_note(run: Run) -> str | None:
    """What a run's system samples are of, where it is not training: an averaged run's 1.3 minutes at
    full CPU, under "System usage during training", read as a model trained in 1.3 minutes."""
    if not _averaged_from(run) or run.history:
        return None
    return (
        f"Averaged weights (mean of {_averaged_from(run)} runs'): no training of its own. These samples are "
        "of `average-weights`: preparing the validation and test faces, choosing the threshold, measuring."
    )


def _best(values) -> float | None:
    finite = [v for v in map(_number, values) if v is not None]
    return max(finite) if finite else None


def comparison_rows(runs: Sequence[Run], served: str | None = None) -> list[dict]:
    """One row per run with the figures a side-by-side comparison needs; `served`: the name of the run
    whose weights the app serves, marked in its own column."""
    rows = []
    for run in runs:
        metrics = run.metrics
        rows.append(
            {
                "run": run.name,
                "served": "yes" if run.name == served else "",
                "model": run.architecture,
                "epochs": len(run.history),
                "best val accuracy": _best(record.val_accuracy for record in run.history),
                "test accuracy": _number(metrics.accuracy) if metrics else None,
                "balanced accuracy": _number(metrics.balanced_accuracy) if metrics else None,
                "macro F1": _number(metrics.macro_f1) if metrics and metrics.per_class else None,
                "ROC AUC": _number(metrics.roc_auc) if metrics else None,
                "training minutes": round(sum(_number(r.seconds) or 0.0 for r in run.history) / 60, 1),
                "averaged from": _averaged_from(run),
                "trained on": _processor(run.config.get("device")),
            }
        )
    return rows


def _averaged_from(run: Run) -> int:
    """How many runs' weights `average-weights` took the mean of to make this run (0: a trained run)."""
    sources = run.config.get("averaged_from")
    return len(sources) if isinstance(sources, list) else 0


# The comparison table's headers: short words, so that each figure's column is as narrow as its value.
SHORT_HEADERS = {
    "best val accuracy": "best val acc.",
    "test accuracy": "test acc.",
    "balanced accuracy": "balanced acc.",
}


def comparison_table(runs: Sequence[Run], served: str | None = None) -> list[dict]:
    """comparison_rows as the page shows them, narrow enough for a 1000 px window beside the sidebar
    (ten columns of long run names, long headers and four-decimal figures ran 270 px past it): names
    that may break after each _, the served run marked under its name, short headers, three decimals
    (`figure_text`), epochs and minutes in one column."""
    table = []
    for row in comparison_rows(runs, served):
        figures = {SHORT_HEADERS.get(key, key): row[key] for key in COMPARED_FIGURES}
        table.append(
            {
                "run": breakable(row["run"]) + (" (served)" if row["served"] else ""),
                "model": breakable(row["model"]),
                **figures,
                "training": _training_text(row),
            }
        )
    return table


def _training_text(row: dict) -> str:
    """Epochs and minutes; for averaged weights, what they are: the served run read '0 epochs, 0 min',
    as if the app served an untrained model."""
    if row["averaged from"] and not row["epochs"]:
        return f"mean of {row['averaged from']} runs' weights"
    # Where the minutes were spent: a GPU run's 2 minutes beside CPU runs' 20 to 70 read as a far
    # cheaper model to train.
    where = f" on {row['trained on']}" if row["trained on"] else ""
    return f"{row['epochs']} epochs, {row['training minutes']:g} min{where}"


def _processor(device: object) -> str | None:
    """'GPU' or 'CPU' from the torch device a run recorded ('cuda:0', 'cpu', 'mps'); None if unrecorded."""
    if not isinstance(device, str) or not device:
        return None
    kind = device.split(":")[0].lower()
    return "CPU" if kind == "cpu" else "GPU" if kind in ("cuda", "mps", "xpu") else kind


COMPARED_FIGURES = ("best val accuracy", "test accuracy", "balanced accuracy", "macro F1", "ROC AUC")


def _score_floor(rows: list[dict]) -> float:
    """Bars start at a round value below the lowest score, so runs near 1.0 still look different."""
    scores = [row[key] for row in rows for key in COMPARED_FIGURES if row[key] is not None]
    return round_floor(scores)


COMPARISON_BAR_PX = 20
COMPARISON_GAP_PX = 40  # between panels: the next panel's title and air above it
COMPARISON_MARGINS = {"t": 40, "b": 50, "r": 50}  # top: the first title; bottom: the axis; right: a 1.0


def comparison_figure(runs: Sequence[Run], served: str | None = None) -> go.Figure:
    """A panel per compared figure, a level bar per run in the table's order, its value at the bar's end.
    Grouped upright bars put the values of good runs side by side near 1.0, where they ran into each
    other (even turned on end); here each value has a line of its own, whatever the runs score."""
    rows = comparison_rows(runs, served)
    names = [_label(shown_name(row["run"], served)) for row in rows]
    panels = len(COMPARED_FIGURES)
    plot_px = panels * COMPARISON_BAR_PX * max(len(rows), 1) + (panels - 1) * COMPARISON_GAP_PX
    figure = make_subplots(
        rows=panels,
        cols=1,
        shared_xaxes=True,
        subplot_titles=COMPARED_FIGURES,
        # In pixels, not a share of the height: a share that left room with six runs put each title of
        # two runs' chart on the bar above it.
        vertical_spacing=COMPARISON_GAP_PX / plot_px,
    )
    for panel, key in enumerate(COMPARED_FIGURES, start=1):
        values = [row[key] for row in rows]
        figure.add_trace(
            go.Bar(
                x=values,
                y=names,
                orientation="h",
                marker_color=[_color(index) for index in range(len(rows))],
                text=["" if value is None else score_text(value) for value in values],
                textposition="outside",
                constraintext="none",
                cliponaxis=False,  # a value at 1.0 stands in the right margin
                showlegend=False,
                hovertemplate=f"%{{y}}<br>{key} %{{text}}<extra></extra>",  # the bar's value, as written
            ),
            row=panel,
            col=1,
        )
    floor = _score_floor(rows)
    _say_why_bars_are_missing(figure, rows, names, floor)
    figure.update_yaxes(autorange="reversed", automargin=True)  # the first run on top, as in the table
    figure.update_xaxes(range=[floor, 1.0], dtick=0.05 if floor >= 0.7 else None)
    # Say where the bars start: from 0.8 a run at 0.90 looks half as good as one at 1.0.
    figure.update_xaxes(
        title_text=f"score (bars start at {floor:g}, not 0)", row=len(COMPARED_FIGURES), col=1
    )
    height = plot_px + COMPARISON_MARGINS["t"] + COMPARISON_MARGINS["b"]
    figure.update_layout(height=height, margin=COMPARISON_MARGINS, bargap=0.25)
    return figure


def _say_why_bars_are_missing(figure: go.Figure, rows: list[dict], names: list[str], floor: float) -> None:
    """A run without a figure gets words where its bar would start: an empty line beside the served
    run's name (averaged weights have no validation epochs) read as a figure lost, or as zero."""
    for panel, key in enumerate(COMPARED_FIGURES, start=1):
        for row, name in zip(rows, names, strict=True):
            if row[key] is None:
                figure.add_annotation(
                    x=floor, y=name, text=_why_missing(row, key), showarrow=False, xanchor="left",
                    font={"size": 11, "color": "gray"}, row=panel, col=1,
                )  # fmt: skip


def _why_missing(row: dict, key: str) -> str:
    if key == "best val accuracy":
        return "none: averaged weights, no epochs" if row["averaged from"] else "none: no epochs recorded"
    return "none: no test figure in metrics.json"


@dataclass(frozen=True)
class CountSample:
    """Faces counted in one video frame."""

    seconds: float
    masked: int  # compliant
    unmasked: int  # not compliant: no mask or a badly worn one
    incorrect: int = 0  # of the unmasked: badly worn masks

    @property
    def label_counts(self) -> dict[str, int]:
        return {
            WITH_MASK: self.masked,
            WORN_INCORRECTLY: self.incorrect,
            WITHOUT_MASK: self.unmasked - self.incorrect,
        }

    @property
    def compliance(self) -> float | None:
        total = self.masked + self.unmasked
        return self.masked / total if total else None


def counts_over_time_figure(samples: Sequence[CountSample]) -> go.Figure:
    """Face counts per class (left axis, in the boxes' colours) and compliance (right axis) over video
    time."""
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    times, unit = in_time_unit([sample.seconds for sample in samples])
    for name in CLASS_NAMES:
        style = label_style(name)
        values = [sample.label_counts[name] for sample in samples]
        figure.add_trace(counts_band(times, values, style.caption, style.hex, "faces"))
    shares = [sample.compliance for sample in samples]
    return with_compliance_axis(figure, times, unit, shares, "compliance", "faces", 340)


@dataclass(frozen=True)
class TimeUnit:
    """The unit a chart's time axis is read in, and how many seconds make one."""

    name: str
    seconds: float


SECONDS, MINUTES, HOURS = TimeUnit("seconds", 1.0), TimeUnit("minutes", 60.0), TimeUnit("hours", 3600.0)


def time_unit(longest_seconds: float) -> TimeUnit:
    """Seconds for a short run, minutes up to two hours, then hours: an hour's run read 0 to 3600 on a
    seconds axis, which nobody reads as an hour at a glance."""
    if longest_seconds < 2 * MINUTES.seconds:
        return SECONDS
    return MINUTES if longest_seconds < 2 * HOURS.seconds else HOURS


def in_time_unit(seconds: Sequence[float]) -> tuple[list[float], TimeUnit]:
    """`seconds` in the unit that suits their span, with that unit (for the axis title)."""
    unit = time_unit(max(seconds, default=0.0))
    return [value / unit.seconds for value in seconds], unit


def counts_band(times, values, name: str, color: str, stack: str) -> go.Scatter:
    """One class's counts as a band stacked on the previous class's: as lines, equal counts (two people
    masked, two not) drew one line over the other, and the class below vanished from the chart. The top
    of the stack reads the total (faces, or people in view)."""
    return go.Scatter(x=times, y=values, name=name, mode="lines", line={"color": color}, stackgroup=stack)


def with_compliance_axis(
    figure: go.Figure, times, unit: TimeUnit, shares, name: str, count_title: str, height: int
):
    """Adds the dotted compliance line on the right axis (0-100%) and lays out a counts-over-time chart;
    `times` and `unit` from `in_time_unit`."""
    line = {"color": COMPLIANCE_COLOR, "dash": "dot"}
    trace = go.Scatter(x=times, y=shares, name=name, mode="lines", connectgaps=False, line=line)
    figure.add_trace(trace, secondary_y=True)
    figure.update_xaxes(title_text=unit.name)
    totals = [sum(counts) for counts in zip(*(trace.y or () for trace in figure.data[:-1]), strict=True)]
    # Whole people and faces: below 5, plotly's own steps were halves ('1.5 people in view').
    step = {"dtick": 1} if max(totals, default=0) < 5 else {}
    figure.update_yaxes(title_text=count_title, rangemode="tozero", tick0=0, secondary_y=False, **step)
    # Quarters, never the left axis's steps carried over: with 9 faces the right axis read 22%, 44%, 67%,
    # 89%, and a line at 100% ran above its last tick.
    figure.update_yaxes(
        title_text="compliance",
        range=[0, 1.05],
        tickmode="array",
        tickvals=[0, 0.25, 0.5, 0.75, 1],
        tickformat=".0%",
        showgrid=False,
        secondary_y=True,
    )
    # Plotly lists stacked bands' legend from the top band down (traceorder "reversed"): read across the
    # page it ran No mask first, the reverse of the stack from the bottom and of the other charts.
    legend = {"orientation": "h", "y": -0.25, "traceorder": "normal"}
    figure.update_layout(height=height, margin={"t": 30, "b": 40}, legend=legend)
    return figure


# --- people (tracked video, live sessions, the event log) ---------------------------------------------
NONCOMPLIANT_COLOR = label_style(WITHOUT_MASK).hex
COMPLIANT_COLOR = label_style(WITH_MASK).hex


def people_over_time_figure(points: Sequence) -> go.Figure:
    """People in view, compliant and not (left axis), and their compliance (right axis) over time.
    `points`: objects with seconds, compliant, noncompliant (a live PeoplePoint, a video's PeopleSample
    with seconds added)."""
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    times, unit = in_time_unit([point.seconds for point in points])
    for name, attribute, color in (
        ("compliant people", "compliant", COMPLIANT_COLOR),
        ("non-compliant people", "noncompliant", NONCOMPLIANT_COLOR),
    ):
        values = [getattr(point, attribute) for point in points]
        figure.add_trace(counts_band(times, values, name, color, "people"))
    shares = [
        p.compliant / (p.compliant + p.noncompliant) if p.compliant + p.noncompliant else None for p in points
    ]
    return with_compliance_axis(
        figure, times, unit, shares, "compliance of people in view", "people in view", 320
    )


# The event log's charts count people per hour: an hour is their unit on the time axis.
HOUR = timedelta(hours=1)


def _wall_clock(iso: str) -> datetime:
    """A bucket start (ISO-8601 with the offset of the zone it was cut in) as that zone's naive wall
    clock: plotly.js drops offsets, and the axes name the zone."""
    return datetime.fromisoformat(iso).replace(tzinfo=None)


def _hour_text(start: str) -> str:
    """The hour a bucket summarises, '2026-11-27 12:00–13:00': its point, drawn at the hour's middle, read
    in the tooltip as 12:30 or as '12:00 (one hour)', like an event at that moment."""
    hour = _wall_clock(start)
    return f"{hour:%Y-%m-%d %H:%M}–{hour + HOUR:%H:%M}"


# Ticks at whole hours, every 1, 2, 3, 6 or 12 hours or every 1, 2 or 7 days, the first step that keeps
# to MAX_TICKS: plotly's own ticks fell on the half hours, right under the points and bars at each hour's
# middle (a lone '08:30' under a day of bars), as if each hour's people were an event at 08:30.
TICK_HOURS = (1, 2, 3, 6, 12, 24, 48, 168)
# Eight short labels ('08:00', the day under a day's first tick alone): a dozen ticks each headed
# 'Nov 27, 2026' on a new day left plotly too little room at 1000 px, so it turned every label 90 degrees.
MAX_TICKS = 8
HOUR_AXIS_RIGHT_PX = 24  # half a tick label ('14:00'), and more than a ring's radius


@dataclass(frozen=True)
class HourTicks:
    values: list[datetime]  # wall-clock times of the zone the hours were cut in
    texts: list[str]
    days: str  # the day or days the axis spans, said once in its title


def hour_ticks(first: datetime, end: datetime, step_hours: int) -> HourTicks:
    """Ticks every `step_hours` from midnight within [first, end]: '08:00' (or 'Nov 27' for steps of a
    day or more), the day under the first tick and under each midnight when the axis spans days."""
    last_day = (end - timedelta(microseconds=1)).date()
    several_days = last_day > first.date()
    values, tick = [], first.replace(hour=0, minute=0, second=0, microsecond=0)
    while tick <= end:
        if tick >= first:
            values.append(tick)
        tick += step_hours * HOUR
    texts = []
    for index, tick in enumerate(values):
        if step_hours >= 24:
            texts.append(f"{tick:%b %d}")
        elif several_days and (index == 0 or tick.hour == 0):
            texts.append(f"{tick:%H:%M}<br>{tick:%b %d}")
        else:
            texts.append(f"{tick:%H:%M}")
    days = f"{first:%Y-%m-%d} to {last_day:%Y-%m-%d}" if several_days else f"{first:%Y-%m-%d}"
    return HourTicks(values, texts, days)


def _hours_axis(figure: go.Figure, starts: Sequence[str], title: str) -> None:
    """The whole hours from the first bucket to the end of the last: one hour of data fills the plot as an
    hour, where plotly alone would zoom a single point onto a sub-millisecond axis."""
    # Room right of the plot for the closing tick's label: with none (Streamlit's theme), plotly hid the
    # '14:00' that ends the last hour, so the last bar had a start and no end.
    figure.update_layout(margin={"r": HOUR_AXIS_RIGHT_PX})
    figure.update_xaxes(title_text=title)
    if not starts:
        return
    hours = [_wall_clock(start) for start in starts]
    first, end = min(hours), max(hours) + HOUR
    figure.update_xaxes(range=[first, end])
    step = next((h for h in TICK_HOURS if (end - first) / (h * HOUR) <= MAX_TICKS), None)
    if step is not None:  # over 8 weeks plotly's ticks are days or months
        ticks = hour_ticks(first, end, step)
        figure.update_xaxes(
            title_text=f"{title}, {ticks.days}", tickmode="array", tickvals=ticks.values, ticktext=ticks.texts
        )


def _with_gaps(points: Sequence) -> list:
    """A source's hourly points with None between two that are not consecutive hours: plotly breaks the
    line there. A line from 08:00 one day to 08:00 the next read as compliance falling through the night,
    with nobody seen."""
    gapped = []
    for before, point in zip([None, *points], points, strict=False):
        if before is not None and _moment(point.start) - _moment(before.start) > HOUR:
            gapped.append(None)
        gapped.append(point)
    return gapped


def _moment(iso: str) -> datetime:
    return datetime.fromisoformat(iso)  # with its offset: a day's hours across a clock change stay an hour


def compliance_by_source_figure(points: Sequence, zone: str = "UTC") -> go.Figure:
    """Compliance of people per source over time (maskapp.events.report.CompliancePoint), one line each,
    each hour's point at the middle of its hour, between ticks at whole hours, its tooltip naming the hour
    (12:00–13:00); `zone` names the time zone the hours were cut in."""
    figure = go.Figure()
    sources = sorted({point.source for point in points})
    names = legend_names(sources)
    for index, source in enumerate(sources):
        mine = _with_gaps([point for point in points if point.source == source])
        # Two cameras at one compliance in one hour (both 100%, say) drew one point and one line, the later
        # over the earlier: each source is drawn as an open ring larger than the next, its line a little
        # wider, so every one shows around the next. Filled dots growing 6 px a source (27 px, lines 8 px
        # wide, for the first of four) buried the other cameras' lines under the first one's.
        rings_inside = min(len(sources) - 1 - index, 3)  # a site's few cameras; beyond, the same ring
        figure.add_trace(
            go.Scatter(
                x=[None if p is None else _wall_clock(p.start) + HOUR / 2 for p in mine],
                y=[None if p is None else p.compliance for p in mine],
                customdata=[[None, None] if p is None else [p.people, _hour_text(p.start)] for p in mine],
                # The full name on hover: the legend's may be cut.
                hovertemplate=f"%{{customdata[1]}} {zone}<br>%{{y:.0%}} of %{{customdata[0]}} people"
                f"<extra>{_label(source)}</extra>",
                name=_label(names[source]),
                mode="lines+markers",
                # One hour of data is one point: a ring of 9 px at least, so it is seen. Rings 4 px apart
                # and 1.5 px wide leave a gap between two sources at one point.
                marker={"symbol": "circle-open", "size": 9 + 4 * rings_inside, "line": {"width": 1.5}},
                line={"color": _color(index), "width": 1.5 + 0.5 * rings_inside},
                # Drawn whole at the frame: the first and last hours' rings, half an hour from it, were
                # cut in half over two days at 1000 px, and a 100% ring lost its top.
                cliponaxis=False,
            )
        )
    # Below 0 and above 1 a little, so that a 0% or 100% marker is not cut by the frame.
    figure.update_yaxes(title_text="compliance of people", range=[-0.05, 1.05], tickformat=".0%")
    _hours_axis(figure, [point.start for point in points], f"hour ({zone})")
    # Four cameras' names (two long stream URLs) wrap the legend onto several lines: placed in plot
    # fractions it covered the hour axis's title.
    figure.update_layout(hoverlabel={"namelength": -1})  # plotly cut a hover's name at 15 characters
    return _legend_below(figure, 420)


def legend_names(sources: Sequence[str]) -> dict[str, str]:
    """Each source's name in a legend, long ones cut (`text.short_source`) unless that makes two alike:
    two long RTSP names each took a legend line of their own, and four lines left the chart a strip."""
    short = {source: short_source(source) for source in sources}
    taken = list(short.values())
    return {source: name if taken.count(name) == 1 else source for source, name in short.items()}


def people_per_hour_figure(periods: Sequence, zone: str = "UTC") -> go.Figure:
    """People by verdict per hour, stacked, all sources together (maskapp.events.report.PeriodCounts):
    one bar across each hour; `zone` names the time zone the hours were cut in."""
    hours = sorted({period.start for period in periods})
    labels = [name for name in CLASS_NAMES if any(period.by_verdict.get(name) for period in periods)]
    labels += sorted({name for p in periods for name in p.by_verdict} - set(CLASS_NAMES))
    middles = [_wall_clock(hour) + HOUR / 2 for hour in hours]
    bar_ms = 0.9 * HOUR.total_seconds() * 1000  # plotly sizes bars on a date axis in milliseconds
    figure = go.Figure()
    for name in labels:
        per_hour = dict.fromkeys(hours, 0)
        for period in periods:
            per_hour[period.start] += period.by_verdict.get(name, 0)
        style = label_style(name)
        figure.add_trace(
            go.Bar(
                x=middles,
                y=list(per_hour.values()),
                width=[bar_ms] * len(middles),
                customdata=[_hour_text(hour) for hour in hours],
                hovertemplate=f"%{{customdata}} {zone}<br>%{{y}} people",  # not the hour's middle, 12:30
                name=_label(style.caption),
                marker_color=style.hex,
            )
        )
    # Plotly lists a stack's legend from its top bar down; read across the page, that put No mask first,
    # the reverse of the table above it (with_mask first).
    legend = {"orientation": "h", "y": -0.3, "traceorder": "normal"}
    figure.update_layout(barmode="stack", height=340, margin={"t": 30, "b": 40}, legend=legend)
    figure.update_yaxes(title_text="people")
    _hours_axis(figure, hours, f"hour ({zone})")
    return figure
