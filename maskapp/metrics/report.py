"""The figures of `evaluate`, `evaluate-detection` and `bench` as text: a plain report for a classifier,
markdown tables for detection and speed (docs/detection.md quotes them)."""

from __future__ import annotations

from maskapp.config import LIVE_DETECTOR
from maskapp.labels import CLASS_NAMES
from maskapp.metrics.bench_results import LIVE_BUDGET_MS, LIVE_BUDGET_RATIO, BaselineComparison, BenchReport
from maskapp.metrics.detection import DetectionReport, DetectorRow, view_name
from maskapp.metrics.tracking import TARGETS, ClipsTrackingReport
from maskapp.results import MASK_LABEL, NO_MASK_LABEL
from maskapp.training.runs import EvalMetrics


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def format_compliance(metrics: EvalMetrics) -> str:
    """The decision rule, then masked vs non-compliant (no mask or badly worn, called either)."""
    rule = (
        "the likeliest class"
        if metrics.noncompliant_threshold is None
        else f"non-compliant once 1 - P(with_mask) >= {metrics.noncompliant_threshold:.2f}"
    )
    lines = [f"decision: {rule}"]
    c = metrics.compliance
    if c is not None:
        lines.append(
            f"compliance: non-compliant recall {_figure(c.noncompliant_recall)} (n={c.noncompliant_support})"
            f"  precision {_figure(c.noncompliant_precision)}"
            f"  with_mask recall {_figure(c.with_mask_recall)} (n={c.with_mask_support})"
            f"  balanced accuracy {_figure(c.balanced_accuracy)}"
        )
    for name, counts in metrics.outside_model.items():
        lines.append(
            f"  of which {name} (not a class of the model, counted as non-compliant): {counts['faces']} "
            f"faces, {counts['called_with_mask']} called with_mask"
        )
    return "\n".join(lines)


def format_classification(metrics: EvalMetrics) -> str:
    width = max(len(name) for name in [*metrics.labels, "class"]) + 2
    lines = [
        f"accuracy {metrics.accuracy:.4f}  balanced accuracy {metrics.balanced_accuracy:.4f}  "
        f"macro-F1 {metrics.macro_f1:.4f}" + (f"  ROC AUC {metrics.roc_auc:.4f}" if metrics.roc_auc else ""),
        format_compliance(metrics),
    ]
    lines.append(f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for name, m in metrics.per_class.items():
        lines.append(f"{name:<{width}}{m.precision:>10.4f}{m.recall:>10.4f}{m.f1:>10.4f}{m.support:>10}")
    lines.append("confusion matrix (rows: true, columns: predicted)")
    lines.append(" " * width + "".join(f"{name:>{width}}" for name in metrics.labels))
    lines.extend(
        f"{name:<{width}}" + "".join(f"{count:>{width}}" for count in row)
        for name, row in zip(metrics.labels, metrics.confusion_matrix, strict=True)
    )
    for name, figures in metrics.per_dataset.items():
        c = figures.compliance
        lines.append(
            f"{name}: accuracy {figures.accuracy:.4f}  balanced accuracy {figures.balanced_accuracy:.4f}"
            + (
                f"  non-compliant recall {_figure(c.noncompliant_recall)}"
                f"  with_mask recall {_figure(c.with_mask_recall)}"
                if c
                else ""
            )
        )
    return "\n".join(lines)


def format_occlusion(occlusion: dict) -> str:
    """`evaluate --occlude`: unmasked faces called with_mask, bare and covered (OcclusionReport.to_dict)."""
    lines = [
        f"covered faces (seed {occlusion['seed']}): of {occlusion['faces']} without_mask faces, "
        f"{occlusion['bare_called_with_mask']} called with_mask bare; with an occluder over the mouth "
        f"{occlusion['occluded_called_with_mask']} of {occlusion['occluded_faces']}"
    ]
    lines.extend(
        f"  {kind:<14}{row['called_with_mask']:>5} of {row['faces']} called with_mask"
        for kind, row in occlusion["per_kind"].items()
    )
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


THREE_CLASS_HEADER = (
    "| boxes | AP with_mask | AP mask_worn_incorrectly | AP without_mask | mAP "
    "| recall masked | recall worn incorrectly | recall unmasked |\n"
    "|---|---|---|---|---|---|---|---|"
)


def three_class_rows(report: DetectionReport) -> list[str]:
    """AP per class of the three and face recall per class (n: ground truths)."""
    rows = []
    for view in report.three_class_views:
        c, f = view.classes, view.face_by_class
        cells = [view_name(view.min_short_side)]
        cells += [f"{c[name].ap:.3f}" if c[name].ground_truths else "-" for name in CLASS_NAMES]
        cells.append(f"**{view.mean_ap:.3f}**")
        cells += [f"{f[name].recall:.3f} (n={f[name].ground_truths})" for name in CLASS_NAMES]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def format_detection(report: DetectionReport) -> str:
    lines = ["2-class compliance view (mask_worn_incorrectly counts as without_mask):", "", TABLE_HEADER]
    lines += table_rows(report)
    if report.three_class_views:
        lines += ["", "three-class view:", "", THREE_CLASS_HEADER, *three_class_rows(report)]
    return "\n".join(lines)


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
    if report.baseline is not None:
        lines += format_baseline(report.baseline)
    lines.append("")
    lines += [
        f"detector {name} alone: p50 {lat.p50_ms:.1f} ms per 640x480 frame"
        for name, lat in report.detectors.items()
    ]
    lines += [
        f"live detector ({LIVE_DETECTOR}) {row.looks}, int8 / float network: p50 {row.int8.p50_ms:.1f} / "
        f"{row.float32.p50_ms:.1f} ms, {row.speedup:.2f}x faster (in turns)"
        for row in report.int8
    ]
    lines += [
        f"classifier {name}: {ms:.2f} ms per face" for name, ms in report.classifier_ms_per_face.items()
    ]
    if report.tracked:
        lines += ["", format_tracked_bench(report)]
    return "\n".join(lines)


def format_baseline(comparison: BaselineComparison) -> list[str]:
    """The live pipeline's p50, shipped over baseline classifier, and whether the live budget holds."""
    lines = [
        f"live p50, shipped / baseline classifier ({comparison.weights}, {len(comparison.classes)} "
        f"classes), {frame}: {comparison.shipped_p50_ms[frame]:.1f} / {comparison.baseline_p50_ms[frame]:.1f}"
        f" ms = {ratio:.2f}x"
        for frame, ratio in comparison.p50_ratio.items()
    ]
    verdict = "met" if comparison.budget_met else "NOT met"
    lines.append(
        f"live budget (5 faces: p50 <= {LIVE_BUDGET_MS:g} ms and <= {LIVE_BUDGET_RATIO:.2f}x the "
        f"baseline's): {verdict}"
    )
    return lines


def format_tracked_bench(report: BenchReport) -> str:
    """`bench` tracked mode: untracked vs tracked, taking turns on the same slightly moving frames."""
    lines = [
        "| pipeline | frame | untracked p50 ms | tracked p50 ms | untracked FPS | tracked FPS | ratio "
        "| faces classified |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report.tracked:
        lines.append(
            f"| {row.pipeline} | 640x480, {row.faces_in_frame} faces, moving | {row.untracked.p50_ms:.1f} "
            f"| {row.tracked.p50_ms:.1f} | {row.untracked.fps:.1f} | {row.tracked.fps:.1f} "
            f"| **{row.ratio:.2f}x** | {row.classified_share:.0%} |"
        )
    if not report.pipelines:  # the tracked mode alone: say how busy the machine was
        load = ", ".join(f"{value:.1f}" for value in report.settings["load_average_1min"])
        lines += ["", f"load average (1 min) before, after: {load}"]
    return "\n".join(lines)


# --- tracking ----------------------------------------------------------------------------------------
TRACKING_FIGURES = (  # TrackingReport attribute, shown name, format
    ("coverage", "person-frames covered", "{:.1%}"),
    ("ids_per_person", "ids per person", "{:.3f}"),
    ("label_agreement", "shown label agrees with the person's majority", "{:.2%}"),
    ("verdict_accuracy", "per-person verdicts right (compliant or not)", "{:.1%}"),
    ("false_people_per_45", "false people per 45", "{:.1f}"),
)


def target_text(name: str, form: str) -> str:
    """An issue-9 target as shown: '>= 90.0%' for a figure to reach, '<= 1.100' for one to stay under."""
    target, higher = TARGETS[name]
    return f"{'>=' if higher else '<='} {form.format(target)}"


def second_look_line(looks: int, frames: int) -> str:
    return f"second look (the mirror image, while a face was in doubt) on {looks} of {frames} frames"


def format_tracking(report) -> str:
    """`evaluate-tracking`: the figures, each with its issue-9 target and whether it is met
    (report: maskapp.metrics.tracking.PipelineTrackingReport)."""
    t = report.tracking
    checks = t.checks()
    lines = [
        f"{t.frames} frames, {t.people} people, detector {report.detector}, "
        f"{report.settings.get('fps', 0):g} fps clip (seed {report.settings.get('clip_seed', 0)})",
        "",
        "| figure | value | target | met |",
        "|---|---|---|---|",
    ]
    for name, shown, form in TRACKING_FIGURES:
        value, met = form.format(getattr(t, name)), checks[name]
        lines.append(f"| {shown} | {value} | {target_text(name, form)} | {'yes' if met else 'NO'} |")
    share = "-" if report.classified_share is None else f"{report.classified_share:.1%}"
    lines += [
        "",
        f"ID switches {t.id_switches}, people never covered {t.people_never_covered}, false people "
        f"{t.false_people}, tracks holding two people {t.merged_tracks}, tracks {t.tracks}",
        f"faces classified {report.faces_classified} of {report.faces_detected} detected ({share}): "
        "the rest reused a settled verdict",
        second_look_line(report.second_looks, t.frames),
        f"speed: {t.fps:.1f} FPS end to end (detect, track, classify), {t.analyze_seconds:.1f} s"
        if t.fps
        else "speed: -",
        f"targets met: {sum(checks.values())} of {len(checks)}",
    ]
    return "\n".join(lines)


def format_tracking_clips(report: ClipsTrackingReport) -> str:
    """`evaluate-tracking --clip-seed A B ...`: a column per clip and one for all of them pooled, each
    figure with its issue-9 target; a value that misses its target is marked NO."""
    pooled = report.pooled
    columns = [clip.tracking for clip in report.clips] + [pooled]
    lines = [
        f"{len(report.clips)} clips, {pooled.frames} frames, {pooled.people} people, "
        f"detector {report.clips[0].detector}",
        "",
        "| figure | target | " + " | ".join(f"clip {seed}" for seed in report.seeds) + " | pooled |",
        "|---|---|" + "---|" * len(columns),
    ]
    checks = [t.checks() for t in columns]
    for name, shown, form in TRACKING_FIGURES:
        cells = [
            form.format(getattr(t, name)) + ("" if met[name] else " NO")
            for t, met in zip(columns, checks, strict=True)
        ]
        lines.append(f"| {shown} | {target_text(name, form)} | {' | '.join(cells)} |")
    for name in ("people_never_covered", "false_people", "id_switches"):
        counts = " | ".join(str(getattr(t, name)) for t in columns)
        lines.append(f"| {name.replace('_', ' ')} | | {counts} |")
    met = ", ".join(str(sum(clip_checks.values())) for clip_checks in checks[:-1])
    looks = sum(clip.second_looks for clip in report.clips)
    lines += [
        "",
        f"targets met per clip: {met} of {len(TARGETS)}; pooled: {sum(checks[-1].values())}",
        second_look_line(looks, pooled.frames),
    ]
    if pooled.fps:
        lines.append(f"speed: {pooled.fps:.1f} FPS end to end (detect, track, classify) over all clips")
    return "\n".join(lines)
