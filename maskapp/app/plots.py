"""Plotly figures and table rows for the metrics and video pages (no Streamlit import).

Figures are built from `maskapp.runs.Run` objects and from per-frame video counts. Missing values
(a NaN loss is stored as null) become gaps in a line, never an exception.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from maskapp.training.runs import EvalMetrics, Run

PALETTE = qualitative.Plotly
MASKED_COLOR = "#2ca02c"
UNMASKED_COLOR = "#d62728"
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


def _color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def training_curves(runs: Sequence[Run]) -> go.Figure:
    """Train (solid) vs validation (dashed) loss and accuracy per epoch, one colour per run."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"))
    for index, run in enumerate(runs):
        epochs = [record.epoch for record in run.history]
        for column, metric in ((1, "loss"), (2, "accuracy")):
            for split, dash in (("train", "solid"), ("val", "dash")):
                figure.add_trace(
                    go.Scatter(
                        x=epochs,
                        y=[_number(getattr(record, f"{split}_{metric}")) for record in run.history],
                        mode="lines+markers",
                        name=f"{_label(run.name)} {split}",
                        legendgroup=_label(run.name),
                        showlegend=column == 1,
                        line={"color": _color(index), "dash": dash},
                    ),
                    row=1,
                    col=column,
                )
    figure.update_xaxes(title_text="epoch")
    figure.update_yaxes(title_text="cross-entropy", row=1, col=1)
    figure.update_yaxes(title_text="accuracy", row=1, col=2)  # autorange: good runs differ near 1.0
    figure.update_layout(height=380, margin={"t": 40, "b": 40}, legend={"orientation": "h", "y": -0.25})
    return figure


def confusion_matrix_figure(metrics: EvalMetrics, *, title: str = "") -> go.Figure:
    """Counts as text; colour is the row share (recall), so small classes stay readable."""
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
            text=[[str(count) for count in row] for row in counts],
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar={"title": {"text": "row share"}},
            hovertemplate="true %{y}<br>predicted %{x}<br>%{text} images<extra></extra>",
        )
    )
    figure.update_xaxes(title_text="predicted", type="category")
    figure.update_yaxes(title_text="true", type="category", autorange="reversed")
    figure.update_layout(title={"text": _label(title)}, height=360, margin={"t": 50, "b": 40})
    return figure


def per_class_rows(metrics: EvalMetrics) -> list[dict]:
    """One row per class: precision, recall, F1, support; then the macro average."""
    rows = [
        {
            "class": name,
            "precision": _number(m.precision),
            "recall": _number(m.recall),
            "f1": _number(m.f1),
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
                "f1": _number(metrics.macro_f1),
                "support": sum(m.support for m in metrics.per_class.values()),
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
    for row, name, attribute in series:
        values = [_number(getattr(sample, attribute)) for sample in run.system]
        if not any(value is not None for value in values):
            continue  # e.g. no GPU on the training machine
        figure.add_trace(go.Scatter(x=minutes, y=values, mode="lines", name=name), row=row, col=1)
    figure.update_xaxes(title_text="minutes since start", row=2, col=1)
    figure.update_yaxes(title_text="%", row=1, col=1)
    figure.update_yaxes(title_text="MB", row=2, col=1)
    figure.update_layout(height=460, margin={"t": 40, "b": 40})
    return figure


def _best(values) -> float | None:
    finite = [v for v in map(_number, values) if v is not None]
    return max(finite) if finite else None


def comparison_rows(runs: Sequence[Run]) -> list[dict]:
    """One row per run with the figures a side-by-side comparison needs."""
    rows = []
    for run in runs:
        metrics = run.metrics
        rows.append(
            {
                "run": run.name,
                "model": run.architecture,
                "epochs": len(run.history),
                "best val accuracy": _best(record.val_accuracy for record in run.history),
                "test accuracy": _number(metrics.accuracy) if metrics else None,
                "balanced accuracy": _number(metrics.balanced_accuracy) if metrics else None,
                "macro F1": _number(metrics.macro_f1) if metrics and metrics.per_class else None,
                "ROC AUC": _number(metrics.roc_auc) if metrics else None,
                "training minutes": round(sum(_number(r.seconds) or 0.0 for r in run.history) / 60, 1),
            }
        )
    return rows


COMPARED_FIGURES = ("best val accuracy", "test accuracy", "balanced accuracy", "macro F1", "ROC AUC")


def _score_floor(rows: list[dict]) -> float:
    """Bars start at a round value below the lowest score, so runs near 1.0 still look different."""
    scores = [row[key] for row in rows for key in COMPARED_FIGURES if row[key] is not None]
    return max(0.0, math.floor((min(scores, default=0.0) - 0.02) * 10) / 10)


def comparison_figure(runs: Sequence[Run]) -> go.Figure:
    """Grouped bars: each compared figure, one bar per run (values printed on the bars)."""
    figure = go.Figure()
    rows = comparison_rows(runs)
    for index, row in enumerate(rows):
        values = [row[key] for key in COMPARED_FIGURES]
        figure.add_trace(
            go.Bar(
                x=list(COMPARED_FIGURES),
                y=values,
                name=_label(f"{row['run']} ({row['model']})"),
                marker_color=_color(index),
                text=["" if value is None else f"{value:.3f}" for value in values],
                textposition="outside",
            )
        )
    figure.update_layout(
        barmode="group",
        yaxis={"range": [_score_floor(rows), 1.03], "title": {"text": "score"}},
        height=380,
        margin={"t": 30, "b": 40},
        legend={"orientation": "h", "y": -0.2},
    )
    return figure


@dataclass(frozen=True)
class CountSample:
    """Faces counted in one video frame."""

    seconds: float
    masked: int
    unmasked: int

    @property
    def compliance(self) -> float | None:
        total = self.masked + self.unmasked
        return self.masked / total if total else None


def counts_over_time_figure(samples: Sequence[CountSample]) -> go.Figure:
    """Masked and unmasked face counts (left axis) and compliance (right axis) over video time."""
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    seconds = [sample.seconds for sample in samples]
    series = (
        ("masked", {"color": MASKED_COLOR}, False),
        ("unmasked", {"color": UNMASKED_COLOR}, False),
        ("compliance", {"color": COMPLIANCE_COLOR, "dash": "dot"}, True),
    )
    for name, line, on_right_axis in series:
        values = [getattr(sample, name) for sample in samples]
        trace = go.Scatter(x=seconds, y=values, name=name, mode="lines", connectgaps=False, line=line)
        figure.add_trace(trace, secondary_y=on_right_axis)
    figure.update_xaxes(title_text="seconds")
    figure.update_yaxes(title_text="faces", rangemode="tozero", secondary_y=False)
    figure.update_yaxes(title_text="compliance", range=[0, 1.05], tickformat=".0%", secondary_y=True)
    figure.update_layout(height=340, margin={"t": 30, "b": 40}, legend={"orientation": "h", "y": -0.25})
    return figure
