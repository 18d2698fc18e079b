"""``rlm replay FILE... --to NAME``: emit logged runs again through chosen trackers.

For backfilling a tracker that was down or added later. Events go out with their original run
ids and sequence numbers, so a tracker can recognise a run it already has. Bad lines are reported
with file and line, and the good ones are replayed anyway.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rlm_core._flush import settle
from rlm_core.commands.options import EXIT_OK, EXIT_RUN_FAILED
from rlm_core.config import CliOptions, load_settings
from rlm_core.errors import RLMError
from rlm_core.events import Event, Iteration, LLMCall, RunInfo, RunResult
from rlm_core.hookspecs import RunLocation
from rlm_core.plugins import PluginManager, get_plugin_manager
from rlm_core.runlog import RunLog, iter_hook_calls, logged_run_ids, read_log


class ReplayRefused(RLMError):
    """Replaying would make a tracker duplicate what it already holds."""


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "replay",
        help="re-emit JSONL run logs through trackers (e.g. to backfill a tracker)",
        description="Read run logs written by the jsonl tracker and emit their events, in "
        "order, through the trackers named with --to only. Bad lines are reported (file:line) "
        "and skipped. The input files are only read. Exit code 0: everything replayed and "
        "delivered; 1: some lines or tracker calls failed, or some events did not reach a "
        "tracker (which says where they are kept); 2: usage error.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="JSONL run logs")
    parser.add_argument(
        "--to",
        action="append",
        required=True,
        metavar="NAME",
        help="tracker to replay into (repeatable); no other tracker is enabled",
    )
    parser.add_argument("--config", metavar="PATH", help="config file (default: ./rlm.toml)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    logs = [read_log(path) for path in args.files]
    settings = load_settings(CliOptions(config=args.config, trackers=tuple(args.to)))
    manager = get_plugin_manager(settings)
    _refuse_duplicates(manager, logs)

    runs: set[tuple[Path, str]] = set()
    events = 0
    incomplete = 0
    for log in logs:
        for hook, kwargs in iter_hook_calls(log):
            getattr(manager.hook, hook)(**kwargs)
            runs.add((log.path, kwargs["run"].run_id))
            events += 1
        for run_info, result in _unfinished(log):
            manager.hook.run_end(run=run_info, result=result)
            incomplete += 1

    plugins = [plugin for _, plugin in manager.list_name_plugin()]
    settle(plugins)
    undelivered = _undelivered(manager, logs)
    for name, run_id, where in undelivered:
        print(f"rlm: replay: run {run_id} did not reach {name!r}; kept in {where}", file=sys.stderr)

    problems = [problem for log in logs for problem in log.problems]
    for problem in problems:
        print(f"rlm: replay: {problem}", file=sys.stderr)
    failing = [status for status in manager.statuses() if status.errors]
    for status in failing:
        print(
            f"rlm: replay: tracker {status.name!r} raised {status.errors} error(s) "
            f"(logged above){f'; {status.reason}' if status.reason else ''}",
            file=sys.stderr,
        )
    truncated = sum(len(log.truncated_lines) for log in logs)
    print(
        f"Replayed {len(runs)} run(s), {events} event(s) from {len(logs)} file(s) into "
        f"{', '.join(dict.fromkeys(args.to))}; {len(problems)} problem(s)"
        + (f"; {len(undelivered)} run(s) not delivered" if undelivered else "")
        + (f"; {incomplete} run(s) without run_end replayed as failed" if incomplete else "")
        + (f"; {truncated} line(s) had fields cut when written" if truncated else "")
    )
    return EXIT_RUN_FAILED if problems or failing or undelivered else EXIT_OK


INCOMPLETE = (
    "RunIncomplete: the log ends before the run's run_end (the process was killed or crashed)"
)


def _unfinished(log: RunLog) -> list[tuple[RunInfo, RunResult]]:
    """A closing ``run_end`` for every run of ``log`` that has none, so a target does not keep
    it open forever: not converged, with :data:`INCOMPLETE` as its error, at its last event."""
    closing = []
    for run_id, run in log.runs.items():
        records = log.records_of(run_id)
        if any(record.hook == "run_end" for record in records):
            continue
        payloads = [record.payload for record in records if isinstance(record.payload, Event)]
        last = max((payload.timestamp for payload in payloads), default=run.timestamp)
        calls = [payload for payload in payloads if isinstance(payload, LLMCall)]
        result = RunResult(
            run_id=run_id,
            seq=max((payload.seq for payload in payloads), default=run.seq) + 1,
            span_id=run.span_id,
            parent_span_id=run.parent_span_id,
            started_at=run.started_at,
            timestamp=last,
            answer=None,
            sparql=None,
            evidence=None,
            converged=False,
            iterations=sum(isinstance(payload, Iteration) for payload in payloads),
            llm_calls=len(calls),
            prompt_tokens=sum(call.prompt_tokens or 0 for call in calls),
            completion_tokens=sum(call.completion_tokens or 0 for call in calls),
            duration=max(0.0, (last - run.started_at).total_seconds()),
            error=INCOMPLETE,
        )
        closing.append((run, result))
    return closing


def _undelivered(manager: PluginManager, logs: list[RunLog]) -> list[tuple[str, str, str]]:
    """``(tracker, run id, where the events are)`` for each run a tracker says it did not
    deliver (its ``run_location`` has ``delivered=False``)."""
    found = []
    for log in logs:
        for run in log.runs.values():
            for name, location in manager.collect("run_location", run=run):
                if isinstance(location, RunLocation) and not location.delivered:
                    found.append((name, run.run_id, location.where))
    return found


def _refuse_duplicates(manager: PluginManager, logs: list[RunLog]) -> None:
    """Refuse when a tracker that writes run logs (its ``run_location`` names a ``run_log``, as
    jsonl's does) would append a run to a file that already holds it, such as the very log being
    replayed."""
    held: dict[Path, set[str]] = {}
    for log in logs:
        for run in log.runs.values():
            for name, location in manager.collect("run_location", run=run):
                if not isinstance(location, RunLocation) or location.run_log is None:
                    continue
                target = Path(location.run_log).resolve()
                if target not in held:
                    held[target] = logged_run_ids(target) if target.is_file() else set()
                if run.run_id in held[target]:
                    same = target == log.path.resolve()
                    where = "is the log being replayed" if same else "already holds that run"
                    raise ReplayRefused(
                        f"refusing to replay run {run.run_id} of {log.path} into {name!r}: "
                        f"{target} {where}, and appending would duplicate it (set "
                        f"[plugins.{name}] path to write elsewhere)"
                    )
                held[target].add(run.run_id)
