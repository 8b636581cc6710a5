"""The package layout holds: no import cycle inside maskapp, imports point one way between its folders,
light modules stay light (no torch for results and drawing, nothing heavy for `--help`), and Streamlit is
imported only by the Streamlit glue."""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from maskapp import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "maskapp"
BASICS = ("maskapp", "maskapp.results", "maskapp.config", "maskapp.errors")
# Folder -> the folders it must never import (what sits above it). Imports point one way:
# app -> metrics/events -> training/media/vision -> results/config/errors; metrics and training use vision
# and media.
EVERY_FOLDER = (
    "maskapp.vision",
    "maskapp.media",
    "maskapp.training",
    "maskapp.metrics",
    "maskapp.events",
    "maskapp.app",
)
NEVER_IMPORTS = {
    "maskapp.results": EVERY_FOLDER,
    "maskapp.config": EVERY_FOLDER,
    "maskapp.errors": EVERY_FOLDER,
    "maskapp.outputs": EVERY_FOLDER,
    "maskapp.vision": (
        "maskapp.media",
        "maskapp.training",
        "maskapp.metrics",
        "maskapp.events",
        "maskapp.app",
    ),
    "maskapp.media": ("maskapp.training", "maskapp.metrics", "maskapp.events", "maskapp.app"),
    "maskapp.training": ("maskapp.metrics", "maskapp.events", "maskapp.app"),
    "maskapp.metrics": ("maskapp.app",),
    # The event log sits beside metrics: it uses media and vision (a stream's people), never the app.
    "maskapp.events": ("maskapp.app",),
}
STREAMLIT_GLUE = {"maskapp.app.ui"}  # besides app_pages/*.py and streamlit_app.py, outside the package


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def library_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_names(path: Path) -> set[str]:
    """Every module an `import` or `from ... import` anywhere in the file names (functions included);
    `from maskapp.x import y` counts maskapp.x.y when that is a module, else maskapp.x."""
    modules = library_modules()
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                names.add(candidate if candidate in modules else node.module)
    return names


def import_graph() -> dict[str, set[str]]:
    modules = library_modules()
    return {name: imported_names(path) & set(modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search, colouring the modules)."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once fully explored
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def in_folder(module: str, folder: str) -> bool:
    return module == folder or module.startswith(folder + ".")


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_inside_maskapp():
    graph = import_graph()
    assert len(graph) > 30 and "maskapp.vision.pipeline" in graph
    assert find_cycle(graph) is None


def test_imports_point_one_way_between_the_folders():
    wrong = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        for folder, forbidden in NEVER_IMPORTS.items()
        if in_folder(module, folder)
        for target in targets
        if any(in_folder(target, above) for above in forbidden)
    ]
    assert not wrong


def test_only_the_command_line_entry_imports_the_command_line():
    importers = {module for module, targets in import_graph().items() if "maskapp.cli" in targets}
    assert importers == {"maskapp.__main__"}


def test_streamlit_is_imported_only_by_the_streamlit_glue():
    importers = {
        name
        for name, path in library_modules().items()
        if any(
            imported.split(".")[0] in ("streamlit", "streamlit_webrtc") for imported in imported_names(path)
        )
    }
    assert importers == STREAMLIT_GLUE


def loaded_after_import(*modules: str) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after importing `modules`."""
    code = f"import sys\nfor m in {modules!r}: __import__(m)\nprint(' '.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return {name.split(".")[0] for name in done.stdout.split()}


@pytest.mark.parametrize(
    "module", ["maskapp.results", "maskapp.vision.draw", "maskapp.config", "maskapp.metrics.report"]
)
def test_results_and_drawing_do_not_import_torch(module):
    assert "torch" not in loaded_after_import(module)


def test_the_command_line_imports_nothing_heavy_before_a_command_runs():
    loaded = loaded_after_import("maskapp.cli")
    assert not loaded & {"torch", "cv2", "onnxruntime", "onnx", "av", "numpy", "streamlit"}
    done = subprocess.run(
        [sys.executable, "-m", "maskapp", "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0 and "evaluate-detection" in done.stdout


def test_the_readme_layout_names_every_module_of_each_folder():
    """The README's Layout left out `training/occlude`, `media/sources` and `media/opencv_paths`: a reader
    looking there for where the occluders are drawn, or a stream's password is cut, found no module."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme.split("## Layout", 1)[1].split("```")[1]
    lines = layout.splitlines()
    for folder in sorted(path for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()):
        start = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{folder.name}/"))
        # A folder's entry runs on over the indented lines that name no other folder or file.
        end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" " * 23)), len(lines))
        words = set(re.findall(r"\w+", " ".join(lines[start:end])))
        modules = {path.stem for path in folder.glob("*.py") if path.stem != "__init__"}
        assert modules <= words, f"{folder.name}/: {sorted(modules - words)} not in the README's Layout"


def test_every_flag_with_a_default_names_it_in_its_help():
    """`bench --repeats` (the README's "50 repeats"), `bench-video-page --repeats` and `video --timeout`
    said nothing of their defaults, while every other flag's help does."""
    from maskapp.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    unnamed = [
        f"{name} {action.option_strings[0]}"
        for name, parser in commands.items()
        for action in parser._actions
        if action.option_strings
        and action.default not in (None, False, argparse.SUPPRESS)
        and "default" not in (action.help or "")
    ]
    assert unnamed == []
