"""``callstream rebuild``: the warehouse again from ``call-events`` offset 0, re-rated, swapped in.

1. Hold the live warehouse's writer lock, so the sink cannot write it
   meanwhile (a running sink makes the rebuild refuse at once; ``--to`` leaves
   the live warehouse alone and takes no lock).
2. Replay the log into a hidden directory next to the target
   (replay_load.py); an error or Ctrl-C deletes it, and the live warehouse is
   as it was. After ``kill -9`` (or a crash) the directory stays: the next
   rebuild with the same settings and tariffs continues it (the partitions it
   had finished are kept, up to its snapshot) unless ``fresh``; any other
   rebuild deletes it.
3. Swap the complete generation in atomically (generations.py), or move it to
   ``--to``. A log whose oldest events were deleted by retention is never
   swapped in (the result would lack those calls); ``--to`` still writes it.
4. Compare every call's cost with the warehouse it replaces (rerating.py) and
   save the re-rating report as ``rerating-report-<UTC time>.{txt,csv}`` next
   to the warehouse (or in ``report_dir``).

Run the worker with the same tariffs afterwards: CDRs it sends for events
after the snapshot are rated by its own table.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from common.config import Settings
from warehouse import generations, rerating
from warehouse.layout import LOCK, MANIFEST
from warehouse.replay import ReplayConfig
from warehouse.replay_load import LoadOptions, Progress, RebuildStats, load, resumable
from warehouse.writer import WriterBusy, release_lock, take_lock


class RebuildError(RuntimeError):
    """The rebuild cannot go on (or cannot be swapped in); the live warehouse is untouched."""


@dataclass(frozen=True)
class RebuildOptions:
    """Where the result goes and where the report is saved."""

    to: Path | None = None  # write the rebuilt warehouse there instead of swapping it in
    report_dir: Path | None = None  # default: the directory holding the warehouse
    load: LoadOptions = field(default_factory=LoadOptions)
    fresh: bool = False  # start over even when an interrupted rebuild could be continued


@dataclass
class RebuildResult:
    """What a rebuild did: counts, where the warehouse is now, the re-rating report."""

    stats: RebuildStats
    location: Path  # the rebuilt warehouse (the live path after a swap)
    generation: Path | None = None  # the generation directory the live path now points to
    previous: Path | None = None  # the replaced generation, kept for comparison and roll-back
    compared_with: Path | None = None
    report: rerating.RatingReport | None = None
    report_files: tuple[Path, ...] = ()


def rebuild(settings: Settings, config: ReplayConfig, options: RebuildOptions = RebuildOptions(),
            progress: Progress | None = None, *, report_header: tuple[str, ...] = ()) -> RebuildResult:
    """Rebuild the warehouse of ``settings`` from its events topic (see the module docstring)."""
    live = Path(settings.warehouse)
    target = options.to or live
    progress = progress or Progress()
    if options.to is not None and (options.to.exists() or options.to.is_symlink()):
        raise RebuildError(f"--to {options.to} already exists; give a new path")
    lock = None if options.to is not None else lock_live(live)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        building = None if options.fresh else _interrupted(target, settings, config)
        generations.sweep_abandoned(target, keep=building)
        stamp = generations.new_stamp() if building is None else building.name.split(".rebuild-", 1)[1]
        building = building or generations.building_dir(target, stamp)
        result = _build_and_place(settings, config, options, building, live, stamp, progress)
    finally:
        if lock is not None:
            release_lock(lock)
    old = result.previous if options.to is None else live
    if old is not None and (old / MANIFEST).is_file():
        progress.phase("report")
        _report(result, old, options.report_dir or target.parent, report_header)
    return result


def _interrupted(target: Path, settings: Settings, config: ReplayConfig) -> Path | None:
    """The newest building directory of ``target`` that an interrupted rebuild of these
    settings and tariffs left (no process holds it), or None."""
    for path in sorted(target.parent.glob(f".{target.name}.rebuild-*"), reverse=True):
        if path.is_dir() and not path.is_symlink() and resumable(path, settings, config):
            try:
                release_lock(take_lock(path / LOCK))
            except (WriterBusy, OSError):
                continue  # another rebuild is writing it
            return path
    return None


def lock_live(live: Path) -> int | None:
    """The writer's lock of the live warehouse (None: no warehouse yet); RebuildError when a
    sink (or another rebuild or rerate) holds it."""
    if not live.is_dir():
        return None  # no warehouse yet
    try:
        return take_lock(live / LOCK)
    except WriterBusy:
        raise RebuildError(f"another process (the sink?) is writing the warehouse at {live}; "
                           "stop it first, or rebuild elsewhere with --to PATH") from None


def _build_and_place(settings: Settings, config: ReplayConfig, options: RebuildOptions,
                     building: Path, live: Path, stamp: str, progress: Progress) -> RebuildResult:
    try:
        stats = load(settings, config, building, options.load, progress)
        progress.check()
        if options.to is not None:
            generations.publish_at(building, options.to)
            return RebuildResult(stats, options.to)
        if stats.truncated:
            raise RebuildError(
                f"{settings.topic_events} partitions {stats.truncated} no longer start at offset 0 "
                "(retention deleted their oldest events): the rebuild would lose those calls, so "
                "it is not swapped in; use --to PATH to write it elsewhere")
        swap = generations.swap_in(building, live, stamp)
    except BaseException:
        generations.discard(building)  # after kill -9 nothing runs here: the directory stays
        raise
    return RebuildResult(stats, live, swap.current, swap.previous)


def _report(result: RebuildResult, old: Path, directory: Path, header: tuple[str, ...]) -> None:
    """Compare ``result.location`` with ``old``; save the report's text and CSV in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    moment = datetime.now(UTC)
    base = directory / f"rerating-report-{moment:%Y%m%dT%H%M%SZ}"
    csv_path, txt_path = base.with_suffix(".csv"), base.with_suffix(".txt")
    spill = directory / f".{base.name}.spill"
    try:
        report = rerating.compare(old, result.location, csv_path, spill_dir=spill)
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    lines = [f"Re-rating report, {moment:%Y-%m-%dT%H:%M:%SZ}", *header,
             f"rebuilt warehouse: {result.location}" + (f" ({result.generation.name})"
                                                        if result.generation else ""),
             f"compared with: {old}", f"changed calls: {csv_path.name}", ""]
    text = rerating.render(report, lines)
    tmp = txt_path.with_name(f".{txt_path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(txt_path)
    result.compared_with, result.report, result.report_files = old, report, (txt_path, csv_path)
