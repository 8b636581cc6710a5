"""Plotly figures from the shipped training runs, from odd runs written to disk, and from video counts."""

from __future__ import annotations

import colorsys
import itertools
import json
import math
import re
from datetime import UTC, datetime, timedelta

import plotly.graph_objects as go
import pytest

from maskapp import WEIGHTS_DIR
from maskapp.app import plots
from maskapp.app.run_groups import OWN_TEST_SPLIT, group_runs, measured_on, metrics_unrecorded
from maskapp.events.report import CompliancePoint, EventLog
from maskapp.events.store import Event, SqliteEventStore, iso_utc
from maskapp.training.runs import (
    CONFIG_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    SYSTEM_FILE,
    EpochRecord,
    SystemSample,
    append_jsonl,
    find_runs,
    load_run,
    write_json,
)

SHIPPED_RUNS = WEIGHTS_DIR / "runs"


@pytest.fixture(scope="module")
def shipped_runs():
    paths = find_runs(SHIPPED_RUNS)
    assert len(paths) >= 2, f"expected the MobileNetV2 and CNN runs under {SHIPPED_RUNS}, found {paths}"
    return [load_run(path) for path in paths]


def write_run(root, name, *, epochs=3, nan_epoch=None, metrics=True, system=True):
    """A run directory in the format training writes (for the odd cases the shipped runs lack)."""
    run_dir = root / name
    run_dir.mkdir()
    write_json(run_dir / CONFIG_FILE, {"model": "cnn", "epochs": epochs})
    for epoch in range(1, epochs + 1):
        loss = math.nan if epoch == nan_epoch else 1.0 / epoch
        append_jsonl(run_dir / HISTORY_FILE, EpochRecord(epoch, loss, 0.7, loss, 0.65, 1e-3, 12.0))
    if system:
        for second in range(3):
            append_jsonl(run_dir / SYSTEM_FILE, SystemSample(second * 30.0, 90.0, 40.0, 800.0 + second))
    if metrics:
        per_class = {"with_mask": {"precision": 0.9, "recall": 0.8, "f1": 0.85, "support": 50}}
        per_class["without_mask"] = {"precision": 0.82, "recall": 0.91, "f1": 0.86, "support": 45}
        write_json(
            run_dir / METRICS_FILE,
            {
                "accuracy": 0.85,
                "balanced_accuracy": 0.855,
                "labels": ["with_mask", "without_mask"],
                "per_class": per_class,
                "confusion_matrix": [[40, 10], [4, 41]],
            },
        )
    return load_run(run_dir)


def test_training_curves_show_train_and_val_of_each_shipped_run(shipped_runs):
    figure = plots.training_curves(shipped_runs)
    assert isinstance(figure, go.Figure)
    # loss and accuracy, train and val, per run that has epochs (the averaged shipped run has none)
    trained = [run for run in shipped_runs if run.history]
    assert 0 < len(trained) < len(shipped_runs)
    assert len(figure.data) == 4 * len(trained)
    for trace in figure.data:
        assert len(trace.x) == len(trace.y) >= 1
    names = {trace.name for trace in figure.data}
    assert {run.name for run in trained} == names
    json.loads(figure.to_json())  # serialisable, as st.plotly_chart needs


def test_the_training_accuracy_axis_says_where_it_starts(shipped_runs, tmp_path):
    """Plotly began the accuracy axis at an unnamed 0.82: cnn_3class's validation dip of 0.06 fell to
    the chart's foot, as if the run had collapsed. The axis starts at a round value below every point and
    its title says so; loss starts at 0."""
    figure = plots.training_curves(shipped_runs)
    accuracy = [v for trace in figure.data if trace.yaxis == "y2" for v in trace.y if v is not None]
    axis = figure.layout.yaxis2
    assert 0 < axis.range[0] <= min(accuracy) and axis.range[1] >= max(accuracy)
    assert axis.title.text == f"accuracy (axis from {axis.range[0]:g}, not 0)"
    assert figure.layout.yaxis.rangemode == "tozero"
    low = plots.training_curves([write_run(tmp_path, "low")])  # val accuracy 0.65
    assert low.layout.yaxis2.range[0] == 0.6 and "from 0.6, not 0" in low.layout.yaxis2.title.text


def assert_legend_at_the_bottom_edge(figure: go.Figure) -> None:
    """Placed at a fraction of the plot's height below it, a legend of many runs ran into the x-axis
    title (seen in a browser with the eight shipped runs); pinned to the figure's bottom edge, plotly
    makes room for it under the axis."""
    legend = figure.layout.legend
    assert (legend.orientation, legend.yref, legend.y, legend.yanchor) == ("h", "container", 0, "bottom")


def test_training_curves_have_one_legend_entry_per_run_below_the_axes(shipped_runs):
    """Two entries per run (train, val) made a legend of three wrapped lines for seven runs."""
    figure = plots.training_curves(shipped_runs)
    trained = [run.name for run in shipped_runs if run.history]
    assert [trace.name for trace in figure.data if trace.showlegend] == trained
    assert_legend_at_the_bottom_edge(figure)


def test_comparison_values_each_have_a_line_of_their_own(shipped_runs):
    """Grouped upright bars put the values of good runs side by side near 1.0, where they overlapped
    (the browser test measures it). Each figure is now a panel of level bars, a run per line, each value
    at its bar's end, and the axis says where the bars start."""
    figure = plots.comparison_figure(shipped_runs, served="mobilenet_v2_3class_soup")
    assert len(figure.data) == len(plots.COMPARED_FIGURES)
    names = [name.replace(" (served)", "") for name in figure.data[0].y]
    assert (
        names == [run.name for run in shipped_runs]
        and "mobilenet_v2_3class_soup (served)" in figure.data[0].y
    )
    for bars in figure.data:
        assert bars.orientation == "h" and bars.textposition == "outside" and bars.cliponaxis is False
        assert all(re.fullmatch(r"\d\.\d{3}|>0\.999|", text) for text in bars.text)
    assert figure.layout.xaxis.range[1] == 1.0 and figure.layout.margin.r >= 40  # room right of a 1.0
    bottom = figure.layout[f"xaxis{len(plots.COMPARED_FIGURES)}"]
    assert f"bars start at {figure.layout.xaxis.range[0]:g}" in bottom.title.text


def test_a_3x3_confusion_matrix_is_drawn_larger_with_square_cells_and_level_labels(shipped_runs):
    """In a third of the page a 3x3 matrix was a strip some 50 px wide: its colour bar and the tilted
    mask_worn_incorrectly took the room. Now the figure's height grows with the classes, the cells stay
    square, and the long name is broken over two level lines."""
    two = next(r.metrics for r in shipped_runs if r.metrics and len(r.metrics.labels) == 2)
    three = next(r.metrics for r in shipped_runs if r.metrics and len(r.metrics.labels) == 3)
    small, large = plots.confusion_matrix_figure(two), plots.confusion_matrix_figure(three)
    assert large.layout.height - small.layout.height == plots.CONFUSION_CELL_PX >= 100
    layout = large.layout
    assert layout.yaxis.scaleanchor == "x" and layout.xaxis.tickangle == 0
    assert layout.xaxis.automargin and layout.yaxis.automargin
    assert large.data[0].showscale is False
    assert "mask_worn_<br>incorrectly" in layout.xaxis.ticktext and list(large.data[0].x) == three.labels


def test_confusion_matrix_cells_show_the_count_and_its_share_of_the_true_class(shipped_runs):
    """The cells showed counts alone, the share of the row only as a shade of blue (98% and 90% looked
    alike); the axes read 'true' and 'predicted' with no word of what."""
    for run in (r for r in shipped_runs if r.metrics is not None):
        figure = plots.confusion_matrix_figure(run.metrics, title=run.name)
        heatmap = figure.data[0]
        assert list(heatmap.x) == run.metrics.labels
        for counts, shares, texts in zip(run.metrics.confusion_matrix, heatmap.z, heatmap.text, strict=True):
            assert sum(shares) == pytest.approx(1.0) or sum(shares) == 0
            for n, share, text in zip(counts, shares, texts, strict=True):
                count, percent = text.split("<br>")
                assert int(count) == n and float(percent.rstrip("%")) == pytest.approx(100 * share, abs=0.5)
                assert (percent in ("0%", "0.0%")) == (n == 0)  # a face or two is never '0%'

        assert (figure.layout.xaxis.title.text, figure.layout.yaxis.title.text) == (
            "predicted class",
            "true class",
        )


def test_per_class_rows_end_with_macro_average(shipped_runs):
    run = next(r for r in shipped_runs if r.metrics is not None)
    rows = plots.per_class_rows(run.metrics)
    assert [row["class"] for row in rows] == [*run.metrics.per_class, "macro average"]
    assert rows[-1]["F1"] == pytest.approx(run.metrics.macro_f1)


def test_comparison_covers_mobilenet_and_cnn(shipped_runs):
    rows = plots.comparison_rows(shipped_runs, served="mobilenet_v2_3class_soup")
    assert {row["model"] for row in rows} >= {"mobilenet_v2", "cnn"}
    assert [row["run"] for row in rows if row["served"]] == ["mobilenet_v2_3class_soup"]
    for row in rows:
        assert 0.0 <= row["test accuracy"] <= 1.0
    figure = plots.comparison_figure(shipped_runs)
    assert [len(bars.y) for bars in figure.data] == [len(shipped_runs)] * len(plots.COMPARED_FIGURES)


def test_the_comparison_table_has_no_long_word(shipped_runs):
    """A table cell is as wide as its longest word: the run names, one word each, and 'accuracy' in four
    headers made the comparison too wide for a 1000 px window (the browser test measures it)."""
    table = plots.comparison_table(shipped_runs, served="mobilenet_v2_3class_soup")
    words = [
        w
        for row in table
        for text in (*row, *(plots.figure_text(k, v) for k, v in row.items()))
        for w in re.split(r"[\s\u200b]", text)
    ]
    assert max(map(len, words)) <= len("mobilenet_"), max(words, key=len)
    served = [row["run"] for row in table if row["run"].endswith(" (served)")]
    assert [name.replace("\u200b", "") for name in served] == ["mobilenet_v2_3class_soup (served)"]


def test_the_comparison_says_the_served_run_is_averaged_weights_not_zero_epochs(shipped_runs):
    """The served run, the mean of two runs' weights (`average-weights`), read '0 epochs, 0 min' in the
    comparison, as if the app served an untrained model; trained runs still read their epochs."""
    table = plots.comparison_table(shipped_runs, served="mobilenet_v2_3class_soup")
    training = {row["run"].replace("\u200b", ""): row["training"] for row in table}
    assert training["mobilenet_v2_3class_soup (served)"] == "mean of 2 runs' weights"
    assert re.fullmatch(r"3 epochs, [\d.]+ min on CPU", training["mobilenet_v2_3class_finetune_stage2"])


def test_the_comparison_says_where_each_run_trained(shipped_runs):
    """The GPU run's 2.2 minutes stood beside CPU runs' 20 to 70 with no word of the machine: a model
    far cheaper to train, as read."""
    table = plots.comparison_table(shipped_runs)
    training = {row["run"].replace("\u200b", ""): row["training"] for row in table}
    for run in shipped_runs:
        device = run.config.get("device")
        if device:
            assert training[run.name].endswith(" on GPU" if device.startswith("cuda") else " on CPU")
    assert training["mobilenet_v2_3class_gpu"].endswith(" min on GPU")


def test_system_usage_of_shipped_run(shipped_runs):
    run = next(r for r in shipped_runs if r.system)
    figure = plots.system_usage_figure(run)
    assert "CPU %" in {trace.name for trace in figure.data}


def test_the_system_charts_axes_begin_below_every_line(shipped_runs):
    """RAM at 8-17% beside CPU near 100%: plotly's own range began just under the RAM line and its lowest
    tick, 20, above it, so the line was drawn below the axis's figures. Both axes now start at 0."""
    for run in (run for run in shipped_runs if run.system):
        figure = plots.system_usage_figure(run)
        axis = figure.layout.yaxis
        assert axis.range is not None and axis.tickvals is not None
        low, high = axis.range
        assert low == 0 == min(axis.tickvals)
        for trace in figure.data:
            values = [value for value in trace.y if value is not None]
            if trace.yaxis == "y":
                assert min(values) >= 0 and max(values) <= high, (run.name, trace.name)
        assert figure.layout.yaxis2.rangemode == "tozero"


def test_nan_loss_becomes_a_gap_not_an_error(tmp_path):
    run = write_run(tmp_path, "nan-run", nan_epoch=2)
    figure = plots.training_curves([run])
    train_loss = next(t for t in figure.data if t.xaxis == "x" and t.line.dash == "solid")  # solid: training
    assert list(train_loss.y) == [1.0, None, pytest.approx(1 / 3)]
    json.loads(figure.to_json())


def test_run_without_metrics_or_system_still_compares(tmp_path):
    run = write_run(tmp_path, "bare", metrics=False, system=False)
    (row,) = plots.comparison_rows([run])
    assert row["test accuracy"] is None and row["epochs"] == 3
    assert plots.system_usage_figure(run).data == ()
    plots.comparison_figure([run]).to_json()


def test_run_names_are_escaped_in_figures(tmp_path):
    run = write_run(tmp_path, "<img src=x onerror=alert(1)>")
    figure = plots.training_curves([run])
    assert all("<img" not in trace.name for trace in figure.data)
    assert any("&lt;img src=x" in trace.name for trace in figure.data)


def test_counts_over_time_plots_three_counts_in_the_box_colours_and_compliance():
    samples = [
        plots.CountSample(0.0, 2, 0),
        plots.CountSample(0.5, 1, 3, incorrect=1),
        plots.CountSample(1.0, 0, 0),
    ]
    figure = plots.counts_over_time_figure(samples)
    by_name = {trace.name: trace for trace in figure.data}
    assert list(by_name["Mask"].y) == [2, 1, 0]
    assert list(by_name["Mask worn incorrectly"].y) == [0, 1, 0]
    assert list(by_name["No mask"].y) == [0, 2, 0]
    assert [by_name[name].line.color for name in ("Mask", "Mask worn incorrectly", "No mask")] == [
        "#00c800",
        "#ffbf00",
        "#ff0000",
    ]
    assert list(by_name["compliance"].y) == [1.0, 0.25, None]
    assert by_name["compliance"].yaxis == "y2"


def test_people_and_face_charts_count_in_whole_steps_and_compliance_in_quarters():
    """Two people in view read '0.5, 1, 1.5' people on the Live page, and the Video page's right axis
    followed the left one's steps: 22%, 44%, 67%, 89% for 9 faces."""
    from maskapp.app.live import PeoplePoint

    two = plots.people_over_time_figure([PeoplePoint(0.0, 0, 2), PeoplePoint(1.0, 1, 1)])
    nine = plots.counts_over_time_figure([plots.CountSample(0.0, 0, 0), plots.CountSample(1.0, 5, 4)])
    assert two.layout.yaxis.dtick == 1 and two.layout.yaxis.tick0 == 0
    assert nine.layout.yaxis.dtick is None  # plotly's own steps, whole ones from 5 up
    for figure in (two, nine):
        assert figure.layout.yaxis2.tickmode == "array"
        assert list(figure.layout.yaxis2.tickvals) == [0, 0.25, 0.5, 0.75, 1]


def test_equal_counts_of_two_verdicts_are_both_drawn():
    """Two people masked and two not, in view for a while (the Live page's chart of the Mixed group
    webcam): the red line was drawn over the green one at the same height, and the compliant people
    vanished from the chart. Each verdict is now a band stacked on the one before, the top at the total;
    the Video page's faces chart likewise."""
    from maskapp.app.live import PeoplePoint

    people = plots.people_over_time_figure([PeoplePoint(0.0, 2, 2), PeoplePoint(1.0, 2, 2)])
    faces = plots.counts_over_time_figure([plots.CountSample(0.0, 2, 2), plots.CountSample(1.0, 2, 2)])
    for figure in (people, faces):
        counts = [trace for trace in figure.data if trace.yaxis != "y2"]  # the left axis: counts
        assert len(counts) >= 2 and len({trace.stackgroup for trace in counts}) == 1
        assert all(trace.stackgroup for trace in counts)  # stacked: each band its own height, never hidden
    assert people.layout.yaxis.dtick == 1  # 4 people in view at the top: whole steps still


@pytest.mark.parametrize(
    ("last_second", "unit", "axis_end"),
    [(30.0, "seconds", 30.0), (3600.0, "minutes", 60.0), (3 * 3600.0, "hours", 3.0)],
)
def test_the_time_axis_reads_in_seconds_minutes_or_hours_as_the_run_is_long(last_second, unit, axis_end):
    """The Live page's chart of an hour's stream, and the Video page's of an hour's video, read 0 to 3600
    'seconds'; a short run still reads in seconds."""
    from maskapp.app.live import PeoplePoint

    people = plots.people_over_time_figure([PeoplePoint(0.0, 1, 0), PeoplePoint(last_second, 0, 1)])
    faces = plots.counts_over_time_figure(
        [plots.CountSample(0.0, 1, 0), plots.CountSample(last_second, 0, 1)]
    )
    for figure in (people, faces):
        assert figure.layout.xaxis.title.text == unit
        assert all(list(trace.x) == [0.0, axis_end] for trace in figure.data)


def test_counts_over_time_accepts_no_frames():
    figure = plots.counts_over_time_figure([])
    assert all(len(trace.x) == 0 for trace in figure.data)


# --- the compliance view and the non-compliant precision-recall curve -----------------------------------
def three_class_run(tmp_path, threshold: float | None = 0.3):
    """A run whose metrics.json is what training writes for a 3-class model (figures from real code)."""
    import numpy as np

    from maskapp.labels import CLASS_NAMES
    from maskapp.training.evaluate import compute_metrics

    probs = np.array(
        [[0.9, 0.05, 0.05], [0.65, 0.3, 0.05], [0.4, 0.5, 0.1], [0.7, 0.1, 0.2], [0.1, 0.2, 0.7]]
    )
    truth = np.array([0, 0, 1, 2, 2])
    datasets = np.array(["ilc", "ilc", "ilc", "12k", "12k"])
    run = write_run(tmp_path, "three", metrics=False)
    write_json(
        run.path / METRICS_FILE, compute_metrics(truth, probs, CLASS_NAMES, threshold, datasets).to_dict()
    )
    return load_run(run.path)


def test_compliance_and_per_dataset_rows(tmp_path):
    metrics = three_class_run(tmp_path).metrics
    rows = {row["figure"]: row for row in plots.compliance_rows(metrics)}
    assert rows["non-compliant recall"]["value"] == pytest.approx(1.0)  # 0.6, 0.3, 0.9 all >= 0.3
    assert rows["non-compliant recall"]["faces"] == 3 and rows["with_mask recall"]["faces"] == 2
    assert rows["with_mask recall"]["value"] == pytest.approx(0.5)  # 0.35 >= 0.3: flagged
    assert [row["data set"] for row in plots.per_dataset_rows(metrics)] == ["12k", "ilc"]
    assert [row["class"] for row in plots.per_class_rows(metrics)][:3] == [
        "with_mask",
        "mask_worn_incorrectly",
        "without_mask",
    ]


def test_the_precision_recall_figure_stars_each_runs_threshold(tmp_path):
    run = three_class_run(tmp_path)
    figure = plots.noncompliant_pr_figure([run])
    line, star = figure.data
    assert [row[0] for row in line.customdata] == list(
        map(plots.threshold_text, run.metrics.noncompliant_pr.thresholds)
    )
    # printed beside the star, the thresholds of the good runs piled up near (1, 1): hover tells it
    assert star.mode == "markers" and "its threshold 0.30" in star.hovertemplate
    point = plots.point_at(run.metrics.noncompliant_pr, 0.3)
    assert (star.x[0], star.y[0]) == (point.recall, point.precision) == (1.0, pytest.approx(3 / 4))
    (row,) = plots.threshold_rows([run], 0.6)
    assert row["threshold"] == 0.6 and row["its own threshold"] == 0.3
    assert row["non-compliant recall"] == pytest.approx(2 / 3)  # 0.6 and 0.9 of 0.6, 0.3, 0.9
    figure.to_json()


def test_the_precision_recall_legend_has_one_entry_per_run_and_room_for_it(shipped_runs):
    """With its own entry for each star, the legend of eight runs outgrew the figure: it scrolled, and
    hid the x-axis title."""
    figure = plots.noncompliant_pr_figure(shipped_runs)
    assert [trace.name for trace in figure.data if trace.showlegend is not False] == [
        run.name for run in shipped_runs
    ]
    stars = [trace for trace in figure.data if trace.showlegend is False]
    assert {star.legendgroup for star in stars} <= {run.name for run in shipped_runs} and len(stars) >= 8
    fewer = plots.noncompliant_pr_figure(shipped_runs[:2])
    assert figure.layout.height - fewer.layout.height == plots.LEGEND_ROW_PX * (len(shipped_runs) - 2)
    assert_legend_at_the_bottom_edge(figure)


def test_the_precision_recall_axes_start_at_one_round_value_and_say_so(shipped_runs, tmp_path):
    """Plotly's own ranges began at odd values below the curves (all in 0.8-1.0) and nothing said the
    axes did not start at 0: a gap of 0.02 read as half the chart. Both axes now start at one round
    value below every point, and their titles say it; a curve that reaches 0 gets axes from 0."""
    for runs in ([run for run in shipped_runs if run.metrics and len(run.metrics.labels) == 2], shipped_runs):
        figure = plots.noncompliant_pr_figure(runs)
        floor = plots.pr_axis_floor(runs)
        points = [v for trace in figure.data for v in (*trace.x, *trace.y) if v is not None]
        assert 0 < floor <= min(points) and floor * 10 == round(floor * 10)
        for axis in (figure.layout.xaxis, figure.layout.yaxis):
            assert axis.range[0] == floor and axis.range[1] >= 1.0
            assert axis.title.text.endswith(f"(axis from {floor:g}, not 0)")
    low = three_class_run(tmp_path)  # its recall falls to 0 at the highest thresholds
    figure = plots.noncompliant_pr_figure([low])
    assert figure.layout.xaxis.range[0] == 0 and "not 0" not in figure.layout.xaxis.title.text


def test_runs_without_a_curve_or_threshold_are_drawn_without_one(tmp_path, shipped_runs):
    old = write_run(tmp_path, "old-format")  # metrics.json from before the compliance view
    assert plots.compliance_rows(old.metrics) == [] and plots.threshold_rows([old], 0.5) == []
    assert plots.noncompliant_pr_figure([old]).data == ()
    likeliest = three_class_run(tmp_path, None)
    assert plots.decision_threshold(likeliest.metrics) is None  # 3 classes: no single threshold
    assert len(plots.noncompliant_pr_figure([likeliest]).data) == 1  # the curve, no star
    two_class = next(run for run in shipped_runs if run.metrics and len(run.metrics.labels) == 2)
    assert plots.decision_threshold(two_class.metrics) == 0.5  # the likelier of two classes


# --- the event log's hourly charts -----------------------------------------------------------------
def one_hour_of_log(tmp_path):
    """A real event log with two people seen in one hour (the Compliance log page's charts read it)."""
    path = tmp_path / "hour.sqlite"
    when = iso_utc(datetime(2026, 11, 27, 12, 58, 3, tzinfo=UTC))
    with SqliteEventStore(path) as store:
        for person, label in ((1, "without_mask"), (2, "with_mask")):
            store.write_events(
                [
                    Event(when, "door", "run1", person, kind, label, 3)
                    for kind in ("person_seen", "person_left")
                ]
            )
    with EventLog(path) as log:
        return log.compliance_over_time(), log.people_per_hour()


def test_one_hour_of_log_is_drawn_across_its_hour_not_zoomed_onto_an_instant(tmp_path):
    points, hours = one_hour_of_log(tmp_path)
    noon, one = datetime(2026, 11, 27, 12, 0), datetime(2026, 11, 27, 13, 0)
    for figure in (plots.compliance_by_source_figure(points), plots.people_per_hour_figure(hours)):
        assert tuple(figure.layout.xaxis.range) == (noon, one)
        assert {x for trace in figure.data for x in trace.x} == {datetime(2026, 11, 27, 12, 30)}
    bars = plots.people_per_hour_figure(hours).data
    assert [trace.width[0] for trace in bars] == [0.9 * 3_600_000] * len(bars)  # ms on a date axis
    assert plots.compliance_by_source_figure(points).layout.yaxis.range[0] < 0  # a 0% point stays in view


def test_each_hour_of_the_log_charts_reads_as_its_hour_not_as_the_half_hour_its_point_is_drawn_at(tmp_path):
    """Each hour's point and bar sit at the hour's middle, and plotly's ticks over an hour fell on the
    half hours, the tooltip reading '12:00 UTC (one hour)': people seen from 12:00 to 13:00 read as an
    event at 12:30. The ticks now fall on whole hours and the tooltips and axis name the hour."""
    points, hours = one_hour_of_log(tmp_path)
    for figure in (plots.compliance_by_source_figure(points), plots.people_per_hour_figure(hours)):
        axis = figure.layout.xaxis
        assert axis.tickvals == (datetime(2026, 11, 27, 12, 0), datetime(2026, 11, 27, 13, 0))  # whole hours
        assert axis.ticktext == ("12:00", "13:00")
        assert axis.title.text == "hour (UTC), 2026-11-27"  # the day said once
        for trace in figure.data:
            hour = re.search(r"%\{customdata(\[\d\])?\} UTC<br>", trace.hovertemplate)
            assert hour and "one hour" not in trace.hovertemplate
            shown = [data[int(hour[1][1])] if hour[1] else data for data in trace.customdata]
            assert shown == ["2026-11-27 12:00–13:00"]


def test_a_day_of_log_charts_has_ticks_at_whole_hours_not_under_the_hours_middles(tmp_path):
    """Over two days of a door (08:00 one day, 08:00 the next) plotly's own ticks under the bars read a
    lone '08:30': the ticks now step over whole hours from midnight, eight at most, each day named once
    (under its first tick) and the days in the axis's title."""
    path = tmp_path / "days.sqlite"
    with SqliteEventStore(path) as store:
        for day in (24, 25):
            when = iso_utc(datetime(2026, 11, day, 8, 7, tzinfo=UTC))
            store.write_events([Event(when, "door", f"run{day}", 1, "person_left", "with_mask", 3)])
    with EventLog(path) as log:
        points, hours = log.compliance_over_time(), log.people_per_hour()
    for figure in (plots.compliance_by_source_figure(points), plots.people_per_hour_figure(hours)):
        axis = figure.layout.xaxis
        steps = {later - earlier for earlier, later in itertools.pairwise(axis.tickvals)}
        assert len(steps) == 1 and steps.pop() % timedelta(hours=1) == timedelta(0)
        assert all(tick.minute == 0 and tick.hour % 3 == 0 for tick in axis.tickvals)  # from midnight
        assert len(axis.tickvals) <= plots.MAX_TICKS == 8
        assert [text for text in axis.ticktext if "<br>" in text] == ["12:00<br>Nov 24", "00:00<br>Nov 25"]
        assert axis.title.text == "hour (UTC), 2026-11-24 to 2026-11-25"


def test_a_sources_compliance_line_breaks_over_hours_nobody_was_seen(tmp_path):
    """A door seen at 08:00 on two days drew one line from the first morning to the next, which read as
    its compliance falling through the night with nobody there. The line now breaks between hours that
    are not consecutive; consecutive hours stay joined."""
    path = tmp_path / "days.sqlite"
    times = [(24, 8, "without_mask"), (24, 9, "with_mask"), (25, 8, "with_mask")]
    with SqliteEventStore(path) as store:
        for day, hour, label in times:
            when = iso_utc(datetime(2026, 11, day, hour, 7, tzinfo=UTC))
            store.write_events([Event(when, "door", f"run{day}{hour}", 1, "person_left", label, 3)])
    with EventLog(path) as log:
        (trace,) = plots.compliance_by_source_figure(log.compliance_over_time()).data
    assert trace.y == (0.0, 1.0, None, 1.0)
    assert trace.x[2] is None and trace.customdata[3][1] == "2026-11-25 08:00–09:00"


def test_sources_at_one_compliance_in_one_hour_each_stay_in_view(tmp_path):
    """Three cameras at 61% in the same hour (a real log of one clip under three names) drew one point,
    the last source's over the others': each source is now drawn smaller than the one before, a ring
    around the next, and its line thinner."""
    path = tmp_path / "three.sqlite"
    when = iso_utc(datetime(2026, 11, 27, 12, 58, 3, tzinfo=UTC))
    with SqliteEventStore(path) as store:
        for source in ("door", "gate", "hall"):
            store.write_events([Event(when, source, "run1", 1, "person_left", "with_mask", 3)])
    with EventLog(path) as log:
        traces = plots.compliance_by_source_figure(log.compliance_over_time()).data
    assert [trace.name for trace in traces] == ["door", "gate", "hall"]
    assert {(trace.x, trace.y) for trace in traces} == {((datetime(2026, 11, 27, 12, 30),), (1.0,))}
    sizes, widths = [trace.marker.size for trace in traces], [trace.line.width for trace in traces]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 3 and sizes[-1] >= 9
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == 3


def test_the_people_per_hour_legend_reads_in_the_classes_order_as_the_table_above(tmp_path):
    """The stacked chart's legend read No mask, Mask worn incorrectly, Mask (plotly's default for a stack:
    top bar first), the reverse of the Compliance log's table just above it (with_mask first)."""
    _, hours = one_hour_of_log(tmp_path)
    figure = plots.people_per_hour_figure(hours)
    assert [trace.marker.color for trace in figure.data] == [
        plots.label_style(name).hex for name in ("with_mask", "without_mask")
    ]
    assert figure.layout.legend.traceorder == "normal"  # the legend in the traces' order, not reversed


def test_runs_are_grouped_by_classes_and_test_split_the_served_group_first(shipped_runs, tmp_path):
    """2-class and 3-class runs were compared in one table, each on its own test faces."""
    groups = group_runs(shipped_runs, served="mobilenet_v2_3class_soup")
    assert "mobilenet_v2_3class_soup" in [run.name for run in groups[0].runs]
    for group in groups:
        assert len({tuple(run.config["class_names"]) for run in group.runs}) == 1
        assert len(group.test_faces) == 1  # every run's figures on the same number of faces
    two = next(group for group in groups if "cnn" in [run.name for run in group.runs])
    assert {run.name for run in two.runs} == {"cnn", "mobilenet_v2"} and two.label == "2 classes (2 runs)"
    assert f"{two.test_faces[0]} faces" in two.description()
    # the same classes on other data: a group of its own, its label naming the data
    other = tmp_path / "other"
    other.mkdir()
    write_json(other / CONFIG_FILE, {**shipped_runs[0].config, "data": ["../shared/datasets/face-mask-ilc"]})
    labels = [group.label for group in group_runs([*shipped_runs, load_run(other)])]
    assert len(labels) == len(set(labels)) == len(groups) + 1
    assert "2 classes, face-mask-ilc (1 run)" in labels


def copy_of_run(root, run, name: str, source: dict | None):
    """A run with `run`'s config and test figures, its metrics.json's `source` replaced (None: none)."""
    copy = root / name
    copy.mkdir()
    write_json(copy / CONFIG_FILE, run.config)
    metrics = json.loads((run.path / METRICS_FILE).read_text())
    metrics.pop("source", None)
    write_json(copy / METRICS_FILE, metrics if source is None else {**metrics, "source": source})
    return load_run(copy)


def test_runs_are_grouped_by_the_faces_their_metrics_json_says_they_were_measured_on(shipped_runs, tmp_path):
    """Groups were made from config.json alone: a run measured on its validation split, another run's
    split or a folder of its own was compared as if on the group's test faces. metrics.json's `source`
    now parts them; a run whose metrics.json has none is grouped by its config and named in a note."""
    cnn = next(run for run in shipped_runs if run.name == "cnn")
    own = str(tmp_path / "own" / "model.pt")
    test = {"weights": own, "data": "all", "split": "test", "split_from": own}
    runs = [
        copy_of_run(tmp_path, cnn, "own", test),
        copy_of_run(tmp_path, cnn, "on_val", {**test, "split": "val"}),
        copy_of_run(tmp_path, cnn, "on_another_split", {**test, "split_from": "weights/runs/x/model.pt"}),
        copy_of_run(tmp_path, cnn, "on_a_folder", {"weights": own, "data": "/data/door"}),
        copy_of_run(tmp_path, cnn, "unsaid", None),
    ]
    groups = {group.runs[0].name: group for group in group_runs([cnn, *runs])}
    assert [run.name for run in groups["cnn"].runs] == ["cnn", "own", "unsaid"]
    assert [len(group.runs) for name, group in groups.items() if name != "cnn"] == [1, 1, 1]
    assert "the val split, not test" in groups["on_val"].label
    assert "measured on the split of weights/runs/x/model.pt" in groups["on_another_split"].description()
    assert "measured on the folder /data/door" in groups["on_a_folder"].description()
    assert len({group.label for group in groups.values()}) == 4
    assert "The test figures of unsaid do not say" in groups["cnn"].unrecorded_note()
    assert groups["on_val"].unrecorded_note() is None


def test_a_freshly_trained_run_says_its_figures_are_on_its_own_test_split(tiny_three_class_weights):
    """Training wrote metrics.json without `source`, so the Metrics page named every new run as one
    that did not say which faces it was measured on. It records its own test split now, as `evaluate
    --split test` does."""
    run = load_run(tiny_three_class_weights.parent)
    assert run.metrics_source["split"] == "test" and run.metrics_source["data"] == "all"
    assert run.metrics_source["split_from"] == str(tiny_three_class_weights)
    assert measured_on(run) == OWN_TEST_SPLIT and not metrics_unrecorded(run)


def test_a_score_just_below_1_never_reads_as_a_perfect_1(shipped_runs):
    """The served run's ROC AUC, 0.9996, read 1.000 in the comparison's table and chart, as if it never
    ranked a face wrong; it reads >0.999, and only a score of 1 reads 1.000."""
    assert plots.figure_text("ROC AUC", 0.99958) == ">0.999" and plots.figure_text("ROC AUC", 1.0) == "1.000"
    assert plots.figure_text("value", 0.0004) == "<0.001" and plots.figure_text("value", 0.0) == "0.000"
    assert plots.figure_text("threshold", 0.9999) == "1.00"  # thresholds: the grid's 0.01 steps
    near = [run for run in shipped_runs if run.metrics and 0.9995 <= run.metrics.roc_auc < 1]
    assert near, "expected a shipped run whose ROC AUC rounds to 1.000"
    roc = plots.comparison_figure(near).data[plots.COMPARED_FIGURES.index("ROC AUC")]
    assert list(roc.text) == [">0.999"] * len(near)


def test_table_cells_are_escaped_for_the_markdown_st_table_reads(shipped_runs):
    """st.table drew >0.999 as a quote and a name with * or _ around a word in italics."""
    assert plots.cell_text("ROC AUC", 0.99958) == "\\>0.999"
    assert plots.cell_text("run", "run_*best*") == "run\\_\\*best\\*"
    assert plots.cell_text("test acc.", 0.9759) == "0.976" and plots.cell_text("faces", 871) == "871"


def test_a_run_has_one_colour_in_every_chart_even_after_averaged_weights(shipped_runs):
    """The training curves counted colours among the runs with epochs: after the averaged run (no
    epochs) every run took its neighbour's colour, so a line and a bar of one colour were two runs."""
    averaged = next(run for run in shipped_runs if not run.history)
    trained = [run for run in shipped_runs if run.history and run.metrics and run.metrics.noncompliant_pr]
    runs = [averaged, *trained]
    bars = plots.comparison_figure(runs).data[0].marker.color
    curves = {t.name: t.line.color for t in plots.training_curves(runs).data}
    prs = {t.name: t.line.color for t in plots.noncompliant_pr_figure(runs).data if t.mode == "lines"}
    for index, run in enumerate(runs[1:], start=1):
        assert curves[run.name] == prs[run.name] == bars[index]


@pytest.mark.parametrize("count", [1, 2, 8])
def test_each_comparison_panel_leaves_room_for_the_next_ones_title(shipped_runs, count):
    """Spaced by a share of the height, the panels of a two-run chart stood about 20 px apart: each figure's
    title lay on the last bar of the panel above (seen in a browser at 1000 px)."""
    figure = plots.comparison_figure(shipped_runs[:count])
    layout = figure.layout
    plot_px = layout.height - layout.margin.t - layout.margin.b
    for upper in range(1, len(plots.COMPARED_FIGURES)):
        lower = upper + 1
        above = layout[f"yaxis{'' if upper == 1 else upper}"].domain[0]
        below = layout[f"yaxis{lower}"].domain[1]
        assert (above - below) * plot_px >= 35  # a title's line (about 17 px) and air around it


def test_a_missing_bar_in_the_comparison_says_why(shipped_runs, tmp_path):
    """The served run (averaged weights) had an empty line in the best val accuracy panel, read as a
    figure lost or as zero; a run without metrics.json had five."""
    bare = write_run(tmp_path, "bare", metrics=False)
    figure = plots.comparison_figure([*shipped_runs, bare], served="mobilenet_v2_3class_soup")
    notes = [(note.y, note.text) for note in figure.layout.annotations if note.text.startswith("none")]
    assert ("mobilenet_v2_3class_soup (served)", "none: averaged weights, no epochs") in notes
    assert [y for y, text in notes if text == "none: no test figure in metrics.json"] == ["bare"] * 4


def trace_colors(figure: go.Figure) -> list[str | None]:
    """Each trace's colour as drawn: its line's, else its markers' (one colour, or one per bar)."""
    colors = []
    for trace in figure.data:
        line = getattr(trace, "line", None)
        marker = getattr(trace, "marker", None)
        color = (line.color if line is not None else None) or (marker.color if marker is not None else None)
        colors.extend(color if isinstance(color, tuple | list) else [color])
    return colors


def test_sources_and_runs_are_drawn_in_no_verdicts_colour(shipped_runs):
    """Plotly's palette drew the Compliance log's second source red and its third green (a hall where
    everyone wore a mask read as "No mask"), and the Metrics page's runs likewise; Streamlit's own chart
    colours, where a trace had none, drew the system chart's GPU line red. Every source and run now has a
    colour of its own, and no saturated one is a verdict's."""
    from tests.test_theme import verdict_too_near

    sources = [f"camera {i}" for i in range(len(plots.PALETTE) + 1)]  # and round again
    points = [CompliancePoint("2026-11-24T08:00:00.000+00:00", source, 2, 0.5) for source in sources]
    figures = [
        plots.compliance_by_source_figure(points),
        plots.training_curves(shipped_runs),
        plots.noncompliant_pr_figure(shipped_runs),
        plots.comparison_figure(shipped_runs),
        *(plots.system_usage_figure(run) for run in shipped_runs if run.system),
    ]
    for figure in figures:
        colors = trace_colors(figure)
        assert None not in colors  # left to Streamlit's colours, red among them
        assert [c for c in colors if saturated(c) and verdict_too_near(c)] == []
    assert len(set(plots.PALETTE)) == len(plots.PALETTE)


def saturated(hex_color: str) -> bool:
    """A colour with a hue to speak of (a grey's hue is 0, red's, and means nothing)."""
    from tests.test_theme import rgb

    return colorsys.rgb_to_hsv(*rgb(hex_color))[1] >= 0.25


def test_long_source_names_are_cut_in_the_legend_and_whole_on_hover(tmp_path):
    """Two long RTSP names each took a legend line of their own: the legend names a stream by its host's
    name and its last part, a file by its name; short names stay, and names cut alike stay whole."""
    from maskapp.app.text import short_source

    north = "rtsp://cam-entrance-north.site.local:554/Streaming/Channels/101"
    assert short_source(north) == "cam-entrance-north/…/101"
    assert short_source("rtsp://admin:secret@10.0.0.12:554/Streaming/Channels/101") == "10.0.0.12/…/101"
    assert short_source("/data/videos/2026-11-24/entrance_north_door_camera.mp4").endswith("door_camera.mp4")
    assert short_source("lobby") == "lobby"
    twin = "rtsp://cam-entrance-north.other-site.local:554/Streaming/Channels/101"
    assert plots.legend_names([north, twin, "lobby"]) == {north: north, twin: twin, "lobby": "lobby"}
    path = tmp_path / "two.sqlite"
    when = iso_utc(datetime(2026, 11, 27, 12, 58, 3, tzinfo=UTC))
    with SqliteEventStore(path) as store:
        for source in (north, "lobby"):
            store.write_events([Event(when, source, "run1", 1, "person_left", "with_mask", 3)])
    with EventLog(path) as log:
        figure = plots.compliance_by_source_figure(log.compliance_over_time())
    assert [trace.name for trace in figure.data] == ["lobby", "cam-entrance-north/…/101"]
    assert figure.data[1].hovertemplate.endswith(f"<extra>{north}</extra>")  # the whole name on hover
    assert figure.layout.hoverlabel.namelength == -1
