"""What several command groups share: the progress display, ``--frames`` and the printed match estimates."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def _progress(enabled: bool = True) -> Iterator:
    """A rich progress display; yields ``update(stage, done, total)``."""
    if not enabled:
        yield lambda stage, done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn("[bold]{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), transient=False) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def _parse_frames(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    from gvfx.job import parse_frame_range

    return parse_frame_range(text, "--frames")


def _print_estimates(name: str, est) -> None:
    """The match stage's estimates as a ``match:`` block an artist can paste into a job to override them."""
    d = est.to_dict()
    print(f"match estimates for {name} (sources: {d.pop('sources')}):")
    for key, value in d.items():
        print(f"  {key}: {json.dumps(value)}")
