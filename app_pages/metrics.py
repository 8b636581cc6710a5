"""Metrics: the training runs under weights/runs/ and runs/, their curves, test figures and comparison."""

import streamlit as st

from maskapp.app import plots, ui
from maskapp.app.run_groups import group_runs
from maskapp.app.text import plain
from maskapp.errors import MaskappError
from maskapp.labels import WORN_INCORRECTLY
from maskapp.training.runs import load_runs, run_roots

st.title("Metrics")
st.caption("The training runs: how each model was trained and how it does on its test faces.")
listing = load_runs()

for problem in listing.problems:
    st.error(plain(f"Run {problem.name} could not be read: {problem.message}"), icon=":material/error:")
if not listing.runs:
    roots = ", ".join(plain(root) for root in run_roots())
    st.info(f"No training runs found under {roots}. Train one with `python -m maskapp train`.")
    st.stop()

try:
    served = ui.load_model_card().run_name
except MaskappError:  # no servable weights: the runs still compare
    served = None

groups = {group.label: group for group in group_runs(listing.runs, served)}
group = groups[
    ui.kept_radio(
        "Compare runs with",
        list(groups),
        "metrics_run_group",
        help="Only runs with the same classes, tested on the same faces, are compared: a 2-class run's "
        "accuracy is taken on other faces than a 3-class run's.",
    )
]
st.caption(plain(group.description()))
if note := group.unrecorded_note():
    st.info(note, icon=":material/help:")
# "No mask, or a mask worn badly" only where the runs know the badly worn class (a 2-class run does not).
noncompliant_faces = "no mask, or a mask worn badly" if WORN_INCORRECTLY in group.split.classes else "no mask"
by_name = {run.name: run for run in group.runs}
# Kept per group, as the group is (Streamlit forgets a widget's state on a page that does not draw it).
selected_names = ui.kept_multiselect(
    "Runs",
    list(by_name),
    f"metrics_runs_{group.label}",
    help="Pick runs to compare side by side.",
    format_func=lambda name: plots.shown_name(name, served),
)
selected = [by_name[name] for name in selected_names]
if not selected:
    st.info("Select at least one run.")
    st.stop()

for run in selected:
    for warning in run.warnings:
        st.warning(plain(f"{run.name}: {warning}"), icon=":material/warning:")

st.subheader("Comparison")
if served in by_name:
    st.caption(plain(f"The app serves the weights of run {served}, marked (served) below."))
elif served:
    st.caption(
        plain(f"The app serves the weights of run {served}, which is not in this group: none below is.")
    )
ui.figures_table(plots.comparison_table(selected, served))
st.plotly_chart(plots.comparison_figure(selected, served), key="comparison")

st.subheader("Training curves")
st.caption(
    "Solid: training; dashed: validation. A run of averaged weights (`average-weights`) trained no epochs "
    "of its own, so it has no curve."
)
st.plotly_chart(plots.training_curves(selected, served), key="curves")

st.subheader("Test set")
# One run at a time, as wide as the page (three side by side squeezed matrices and tables into a third
# of it), picked from pills that wrap onto a second line: a tab row of run names scrolled sideways.
inspected = ui.kept_pills(
    "Run",
    [run.name for run in selected],
    "metrics_test_set_run",
    plots.reference_run(selected, served).name,
    format_func=lambda name: plots.shown_name(name, served),
)
run = by_name.get(inspected)
if run is None:
    st.info("Pick a run to see its test figures.")
else:
    badge = " · served" if run.name == served else ""
    st.markdown(f"**{plain(run.name)}** ({plain(run.architecture)}){badge}")
    if run.metrics is None:
        st.info("No test metrics in this run.")
    else:
        st.caption("Test faces by true class (rows) and predicted class: count and share of the row.")
        st.plotly_chart(plots.confusion_matrix_figure(run.metrics), key="confusion")
        st.caption("Per class, on the test split:")
        ui.figures_table(plots.per_class_rows(run.metrics))
        if run.metrics.compliance is not None:
            st.caption(
                f"The compliance view: non-compliant faces ({noncompliant_faces}) flagged, "
                "masked ones let through:"
            )
            ui.figures_table(plots.compliance_rows(run.metrics))
        if run.metrics.per_dataset:
            st.caption("Per data set of the test split:")
            ui.figures_table(plots.per_dataset_rows(run.metrics))

st.subheader("Non-compliant precision and recall")
with_curves = [run for run in selected if run.metrics and run.metrics.noncompliant_pr]
if not with_curves:
    st.info(
        "No precision-recall curve in these runs' metrics.json. Write one from a run's checkpoint: "
        "`python -m maskapp evaluate --split test --weights RUN/model.pt --json RUN/metrics.json`."
    )
else:
    st.caption(
        f"A face is flagged non-compliant ({noncompliant_faces}) once 1 − P(with_mask) reaches the "
        "threshold. Lower thresholds flag more people (recall) at the cost of more false alarms "
        "(precision). Star: the threshold each model ships with, chosen on validation data."
    )
    whole = ui.kept_toggle(
        "Every curve whole",
        f"metrics_pr_whole_{group.label}",
        False,
        help="Off: the axes zoom to the runs in contention (the served run and those near the best where "
        "they ship); a weaker run's curve runs off below them. On: every curve whole.",
    )
    zoom = plots.pr_zoom(with_curves, served, whole=whole)
    if zoom.floor > 0:
        st.caption(
            f"Both axes start at {zoom.floor:g}, not 0: the chart shows the corner where these runs differ, "
            "so a gap between two lines looks wider than it is. Read the gap on the axes' figures."
        )
    if zoom.off_chart:
        st.caption(
            plain(plots.off_chart_note(zoom, served))
            + " Switch on *Every curve whole* to see the whole curve; the table below gives its figures."
        )
    st.plotly_chart(plots.noncompliant_pr_figure(with_curves, served, zoom), key="noncompliant_pr")
    reference = plots.threshold_run(with_curves, inspected, served)
    chosen = st.select_slider(
        "Threshold to consider",
        options=reference.metrics.noncompliant_pr.thresholds,
        format_func=plots.threshold_text,  # 0.50, as the table below it reads, not 0.5
        value=plots.point_at(
            reference.metrics.noncompliant_pr, plots.decision_threshold(reference.metrics) or 0.5
        ).threshold,
        help=plain(
            f"Starts at the threshold of {plots.shown_name(reference.name, served)}, the run picked under "
            "Test set: pick another there to start from its threshold and serve it."
        ),
    )
    ui.figures_table(plots.threshold_rows(with_curves, chosen, served))
    st.caption(
        f"Serve {plain(reference.name)} (picked under *Test set*) with it: "
        f"`{plots.serve_command(reference, served, chosen)}`."
    )

st.subheader("System usage during training")
# Opened: the served run's samples, else the first run that has any (an averaged run has none).
opened = next((run for run in [*(r for r in selected if r.name == served), *selected] if run.system), None)
for index, run in enumerate(selected):
    with st.expander(plain(plots.shown_name(run.name, served)), expanded=run is opened):
        if not run.system:
            st.info("No system samples in this run.")
            continue
        if note := plots.system_usage_note(run):
            st.caption(note)
        st.plotly_chart(plots.system_usage_figure(run), key=f"system_{index}")
