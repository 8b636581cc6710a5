"""The Video page's analysis of a file against the `video` command's, on the same file, in turns
(`python -m maskapp bench-video-page FILE`; README, The Video page's pace). Users judge the page by how
long its result takes, so the page's time runs from the uploaded bytes to its browser MP4; the command's
from opening the file to its people. Both share one pipeline (models loaded once, outside the times)."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from maskapp.app.video import analyze_video
from maskapp.events.session import PeopleLog, watch_people
from maskapp.media.video import open_file


@dataclass(frozen=True)
class PaceRound:
    """One round: the page's analysis and the command's, one after the other."""

    page_s: float  # uploaded bytes -> the VideoRun with its browser MP4 (what a user waits for)
    page_fps: float  # the page's *Processing* figure
    cli_s: float  # the file opened -> the people, as `video FILE` (no --out, no --json)
    cli_fps: float  # the command's "frames at N FPS"
    # CPU seconds of the whole process (every thread): the work done, which a busy host's load moves
    # less than it moves the wall clock
    page_cpu_s: float
    cli_cpu_s: float

    @property
    def ratio(self) -> float:
        """The page's end-to-end rate over the command's (1: as fast)."""
        return self.cli_s / self.page_s


@dataclass(frozen=True)
class PaceComparison:
    source: str
    frames: int
    same_people: bool  # the page found the command's people and counts (a speed-up must not change them)
    rounds: tuple[PaceRound, ...]

    def median(self, figure: str) -> float:
        return statistics.median(getattr(one, figure) for one in self.rounds)

    @property
    def ratio(self) -> float:
        """The median of the rounds' ratios (each round's two runs saw the same load)."""
        return self.median("ratio")

    def to_dict(self) -> dict:
        figures = ("page_s", "page_fps", "cli_s", "cli_fps", "page_cpu_s", "cli_cpu_s", "ratio")
        return {
            "source": self.source,
            "frames": self.frames,
            "same_people": self.same_people,
            "rounds": [{**asdict(one), "ratio": one.ratio} for one in self.rounds],
            "medians": {figure: self.median(figure) for figure in figures},
        }

    def lines(self) -> list[str]:
        per_round = ", ".join(f"{one.ratio:.2f}" for one in self.rounds)
        end_to_end = self.frames / self.median("page_s"), self.frames / self.median("cli_s")
        return [
            f"{self.source}: {self.frames} frames, {len(self.rounds)} round(s) in turns, medians",
            f"page: {end_to_end[0]:.1f} FPS end to end (to its browser MP4), "
            f"its Processing figure {self.median('page_fps'):.1f} FPS",
            f"video command: {end_to_end[1]:.1f} FPS end to end, its figure {self.median('cli_fps'):.1f} FPS",
            f"page / command: {self.ratio:.2f} (per round: {per_round})",
            f"CPU seconds: page {self.median('page_cpu_s'):.1f}, command {self.median('cli_cpu_s'):.1f}",
            "same people and counts: " + ("yes" if self.same_people else "NO"),
        ]


def compare_page_with_cli(pipeline, path: Path, repeats: int = 3) -> PaceComparison:
    """`repeats` rounds, the page first in even rounds and the command first in odd ones, so that a load
    that grows or falls over the run weighs on both alike."""
    data, rounds, figures = path.read_bytes(), [], set()
    for index in range(repeats):
        runs = (_page, _command) if index % 2 == 0 else (_command, _page)
        timed = {run: run(pipeline, path, data) for run in runs}
        page, cli = timed[_page], timed[_command]
        rounds.append(PaceRound(page.wall_s, page.fps, cli.wall_s, cli.fps, page.cpu_s, cli.cpu_s))
        figures |= {repr(page.figures), repr(cli.figures)}
    frames = cli.figures[0]
    return PaceComparison(str(path), frames, len(figures) == 1, tuple(rounds))


@dataclass(frozen=True)
class _Timed:
    wall_s: float
    cpu_s: float
    fps: float  # the run's own FPS figure
    figures: tuple  # _figures: what it shows


def _page(pipeline, path: Path, data: bytes) -> _Timed:
    """The page's call as the page makes it, its progress callback drawing nothing."""
    return _timed(
        lambda: (
            analyze_video(
                pipeline, data, path.name, lambda fraction, preview: None, log=PeopleLog(None, path.name)
            ).people
        )
    )


def _command(pipeline, path: Path, data: bytes) -> _Timed:
    """`video FILE` as run_video runs it (no --out, no --json)."""

    def run():
        frames = open_file(path)
        return watch_people(frames, pipeline, keep_faces=False, log=PeopleLog(None, frames.source))

    return _timed(run)


def _timed(run) -> _Timed:
    start, cpu = time.perf_counter(), time.process_time()
    people = run()
    wall_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    return _Timed(wall_s, cpu_s, people.summary.processing_fps, _figures(people))


def _figures(run) -> tuple:
    """What both show: frames, people with their verdicts, each frame's counts (latency aside)."""
    counts = tuple(
        (c.faces, c.masked, c.unmasked, tuple(c.label_counts.values())) for c in run.summary.counts
    )
    return run.summary.frames, tuple(person.to_dict() for person in run.people), counts
