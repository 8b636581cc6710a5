"""The figures of `evaluate`, `evaluate-detection` and `bench` as text: a plain report for a classifier,
markdown tables for detection and speed (docs/detection.md quotes them)."""

from __future__ import annotations

from maskapp.metrics.bench import BenchReport
from maskapp.metrics.detection import DetectionReport, DetectorRow, view_name
from maskapp.results import MASK_LABEL, NO_MASK_LABEL
from maskapp.training.runs import EvalMetrics


def format_classification(metrics: EvalMetrics) -> str:
    lines = [
        f"accuracy {metrics.accuracy:.4f}  balanced accuracy {metrics.balanced_accuracy:.4f}  "
        f"macro-F1 {metrics.macro_f1:.4f}" + (f"  ROC AUC {metrics.roc_auc:.4f}" if metrics.roc_auc else "")
    ]
    lines.append(f"{'class':<16}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for name, m in metrics.per_class.items():
        lines.append(f"{name:<16}{m.precision:>10.4f}{m.recall:>10.4f}{m.f1:>10.4f}{m.support:>10}")
    lines.append("confusion matrix (rows: true, columns: predicted) " + " ".join(metrics.labels))
    lines.extend("  " + " ".join(f"{c:>6}" for c in row) for row in metrics.confusion_matrix)
    return "\n".join(lines)


# --- detection ---------------------------------------------------------------------------------------
TABLE_HEADER = (
    "| boxes | AP with_mask | AP without_mask | mAP | face AP | face recall "
    "| recall masked | recall unmasked |\n"
    "|---|---|---|---|---|---|---|---|"
)


def table_rows(report: DetectionReport, prefix: str = "") -> list[str]:
    rows = []
    for view in report.views:
        c, f = view.classes, view.face_by_class
        cells = [
            f"{prefix}{view_name(view.min_short_side)}",
            f"{c[MASK_LABEL].ap:.3f}",
            f"{c[NO_MASK_LABEL].ap:.3f}",
            f"**{view.mean_ap:.3f}**",
            f"{view.face.ap:.3f}",
            f"{view.face.recall:.3f}",
            f"{f[MASK_LABEL].recall:.3f} (n={f[MASK_LABEL].ground_truths})",
            f"{f[NO_MASK_LABEL].recall:.3f} (n={f[NO_MASK_LABEL].ground_truths})",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def format_detection(report: DetectionReport) -> str:
    return "\n".join([TABLE_HEADER, *table_rows(report)])


def format_detector_rows(rows: list[DetectorRow]) -> str:
    lines = [
        "| detector | threshold | ms / 640x480 frame | boxes | face AP | recall | precision "
        "| recall masked | recall unmasked |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for view in row.views:
            f, by = view.face, view.face_by_class
            lines.append(
                f"| {row.detector} | {row.threshold:.1f} | {row.ms_per_frame:.1f} "
                f"| {view_name(view.min_short_side)} "
                f"| {f.ap:.3f} | {f.recall:.3f} | {f.precision:.3f} "
                f"| {by[MASK_LABEL].recall:.3f} | {by[NO_MASK_LABEL].recall:.3f} |"
            )
    return "\n".join(lines)


# --- speed -------------------------------------------------------------------------------------------
def format_bench(report: BenchReport) -> str:
    lines = [
        "| pipeline | frame | faces found | p50 ms | p95 ms | FPS |",
        "|---|---|---|---|---|---|",
    ]
    for row in report.pipelines:
        lat = row.latency
        lines.append(
            f"| {row.pipeline} | 640x480, {row.faces_in_frame} face(s) | {row.faces_found} "
            f"| {lat.p50_ms:.1f} | {lat.p95_ms:.1f} | {lat.fps:.1f} |"
        )
    load = ", ".join(f"{value:.1f}" for value in report.settings["load_average_1min"])
    lines += ["", f"load average (1 min) before, after: {load}"]
    lines += [
        f"speed-up over the source pipeline, {label}: {ratio:.2f}x" for label, ratio in report.speedup.items()
    ]
    lines.append("")
    lines += [
        f"detector {name} alone: p50 {lat.p50_ms:.1f} ms per 640x480 frame"
        for name, lat in report.detectors.items()
    ]
    lines += [
        f"classifier {name}: {ms:.2f} ms per face" for name, ms in report.classifier_ms_per_face.items()
    ]
    return "\n".join(lines)
