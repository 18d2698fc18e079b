"""``rlm mlflow experiments|search|export|close``: the tracker's runs, from the terminal.

mlflow is imported inside the handlers only (``rlm --help`` imports this module, through the
tracker's ``register_commands`` hook). The store is
``--tracking-uri``, else ``[plugins.mlflow] tracking_uri``, else ``sqlite:///mlflow.db``; a
missing SQLite file or an unreachable server is a one-line error, exit code 2.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rlm_core.commands.options import EXIT_OK, EXIT_USAGE
from rlm_core.config import CliOptions, load_settings
from rlm_core.errors import RLMError
from rlm_plugins.mlflow.imports import load_mlflow
from rlm_plugins.mlflow.location import (
    DEFAULT_EXPERIMENT,
    DEFAULT_TRACKING_URI,
    check_reachable,
    is_server,
    quiet_mlflow_logging,
    resolve_tracking_uri,
    sqlite_path,
)
from rlm_plugins.mlflow.store import broken_store
from rlm_plugins.mlflow.writer import COMPLETE_TAG, HEALTH_TIMEOUT, RUN_ID_TAG

_PAGE_SIZE = 1000
_QUESTION_CHARS = 50


class MlflowCommandError(RLMError):
    """The store cannot be reached or refused the request."""


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "mlflow",
        help="list, search and export the runs logged to MLflow",
        description="Query the MLflow store the mlflow tracker writes to. Exit code 2 when the "
        "store cannot be reached or the request is wrong.",
    )
    parser.set_defaults(handler=_print_help(parser))
    subcommands = parser.add_subparsers(dest="mlflow_command", metavar="SUBCOMMAND")

    experiments = subcommands.add_parser(
        "experiments", help="the experiments in the store", description="One line per experiment."
    )
    _add_store_options(experiments)
    experiments.add_argument("--json", action="store_true", help="print JSON instead of a table")
    experiments.set_defaults(handler=run_experiments)

    search = subcommands.add_parser(
        "search",
        help="find runs by ontology, outcome or any MLflow filter",
        description="Runs of the experiment, newest first. Filters are combined with AND; "
        '--filter takes MLflow\'s search syntax, e.g. "metrics.iterations > 5".',
    )
    _add_store_options(search)
    _add_experiment_option(search)
    search.add_argument("--ontology", metavar="NAME", help="only runs over this ontology")
    outcome = search.add_mutually_exclusive_group()
    outcome.add_argument("--converged", action="store_true", help="only converged runs")
    outcome.add_argument("--failed", action="store_true", help="only runs that did not converge")
    search.add_argument("--filter", metavar="EXPR", help="an MLflow search filter")
    search.add_argument(
        "--order-by",
        action="append",
        metavar="EXPR",
        help='sort key, repeatable (default: "attributes.start_time DESC")',
    )
    search.add_argument(
        "--max-results", type=int, default=50, metavar="N", help="at most N runs (default: 50)"
    )
    search.add_argument("--json", action="store_true", help="print JSON instead of a table")
    search.set_defaults(handler=run_search)

    export = subcommands.add_parser(
        "export",
        help="every run of an experiment as CSV",
        description="One row per run: run id, name, status and times, then one column per "
        "param (params.*), metric (metrics.*, the last value) and tag (tags.*).",
    )
    _add_store_options(export)
    _add_experiment_option(export)
    export.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="the CSV file to write; - writes to stdout",
    )
    export.set_defaults(handler=run_export)
    _add_close(subcommands)


def _add_close(subcommands: Any) -> None:
    close = subcommands.add_parser(
        "close",
        help="mark runs left RUNNING by killed processes as KILLED",
        description="Runs still RUNNING without the tracker's completion tag that started more "
        "than --older-than minutes ago belong to processes that were killed: mark them KILLED "
        "(their data stays; rlm replay of their JSONL log fills them in later).",
    )
    _add_store_options(close)
    _add_experiment_option(close)
    close.add_argument(
        "--older-than",
        type=float,
        default=60.0,
        metavar="MINUTES",
        help="only runs started at least this long ago (default: 60)",
    )
    close.add_argument("--dry-run", action="store_true", help="list them, change nothing")
    close.set_defaults(handler=run_close)


def _print_help(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def show(args: argparse.Namespace) -> int:
        parser.print_help()
        return EXIT_USAGE

    return show


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tracking-uri",
        metavar="URI",
        help=f"MLflow store (default: [plugins.mlflow] tracking_uri, else {DEFAULT_TRACKING_URI})",
    )
    parser.add_argument("--config", metavar="PATH", help="config file (default: ./rlm.toml)")


def _add_experiment_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--experiment",
        metavar="NAME",
        help=f"experiment name (default: [plugins.mlflow] experiment, else {DEFAULT_EXPERIMENT})",
    )


def run_experiments(args: argparse.Namespace) -> int:
    client = _client(args)
    found = _call(lambda: list(client.search_experiments()))
    rows = [
        {
            "experiment_id": experiment.experiment_id,
            "name": experiment.name,
            "lifecycle_stage": experiment.lifecycle_stage,
            "artifact_location": experiment.artifact_location,
        }
        for experiment in found
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    _print_table(
        ["ID", "NAME", "STATE", "ARTIFACTS"],
        [[str(value) for value in row.values()] for row in rows],
    )
    return EXIT_OK


def run_search(args: argparse.Namespace) -> int:
    if args.max_results < 1:
        raise MlflowCommandError("--max-results must be at least 1")
    client = _client(args)
    experiment_id = _experiment_id(client, args)
    clauses = []
    if args.ontology is not None:
        clauses.append(f"params.ontology = {_quote(args.ontology)}")
    if args.converged:
        clauses.append("metrics.converged = 1")
    if args.failed:
        clauses.append("metrics.converged = 0")
    if args.filter:
        clauses.append(args.filter)
    runs = _call(
        lambda: list(
            client.search_runs(
                [experiment_id],
                filter_string=" and ".join(clauses),
                max_results=args.max_results,
                order_by=args.order_by or ["attributes.start_time DESC"],
            )
        )
    )
    if args.json:
        print(json.dumps([_run_dict(run) for run in runs], indent=2))
        return EXIT_OK
    rows = [
        [
            run.data.tags.get(RUN_ID_TAG, ""),
            run.info.run_id,
            run.info.status,
            _time(run.info.start_time),
            run.data.params.get("ontology", ""),
            _number(run.data.metrics.get("iterations")),
            _number(run.data.metrics.get("tokens")),
            _shorten(run.data.params.get("question", "")),
        ]
        for run in runs
    ]
    _print_table(
        ["RLM RUN", "MLFLOW RUN", "STATUS", "STARTED", "ONTOLOGY", "ITER", "TOKENS", "QUESTION"],
        rows,
    )
    return EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    client = _client(args)
    experiment_id = _experiment_id(client, args)
    runs = _call(lambda: list(_all_runs(client, experiment_id)))
    rows = [_flat(run) for run in runs]
    fixed = ["run_id", "run_name", "status", "start_time", "end_time"]
    extra = sorted({column for row in rows for column in row} - set(fixed))
    columns = fixed + [
        c for prefix in ("params.", "metrics.", "tags.") for c in extra if c.startswith(prefix)
    ]
    if args.output == "-":
        _write_csv(sys.stdout, columns, rows)
        return EXIT_OK
    try:
        with Path(args.output).open("w", newline="", encoding="utf-8") as handle:
            _write_csv(handle, columns, rows)
    except OSError as exc:
        raise MlflowCommandError(f"{args.output}: cannot write: {exc.strerror}") from None
    print(f"Exported {len(rows)} run(s) with {len(columns)} columns to {args.output}")
    return EXIT_OK


def _write_csv(handle: Any, columns: list[str], rows: list[dict[str, Any]]) -> None:
    writer = csv.DictWriter(handle, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)


def run_close(args: argparse.Namespace) -> int:
    if args.older_than < 0:
        raise MlflowCommandError("--older-than must be at least 0")
    client = _client(args)
    experiment_id = _experiment_id(client, args)
    cutoff = int((datetime.now(UTC).timestamp() - args.older_than * 60) * 1000)
    orphans = [
        run
        for run in _call(lambda: list(_all_runs(client, experiment_id)))
        if run.info.status == "RUNNING"
        and run.data.tags.get(COMPLETE_TAG) != "true"
        and run.info.start_time <= cutoff
    ]
    for run in orphans:
        if not args.dry_run:
            _call(functools.partial(client.set_terminated, run.info.run_id, status="KILLED"))
        print(
            f"{run.data.tags.get(RUN_ID_TAG, '')}  {run.info.run_id}  {_time(run.info.start_time)}"
        )
    verb = "would mark" if args.dry_run else "marked"
    print(f"{verb} {len(orphans)} orphaned run(s) KILLED")
    return EXIT_OK


def _tracking_uri(args: argparse.Namespace) -> str:
    """The store's URI, a SQLite path made absolute (MLflow caches stores by URI: a relative
    one would name whichever directory the process was in first)."""
    if args.tracking_uri:
        uri = str(args.tracking_uri)
    else:
        configured = load_settings(CliOptions(config=args.config)).plugin_config("mlflow")
        uri = str(configured.get("tracking_uri", DEFAULT_TRACKING_URI))
    return resolve_tracking_uri(uri, Path.cwd())


def _client(args: argparse.Namespace) -> Any:
    """A client for the store, once it is known to be there (MLflow would create an empty
    SQLite store, or retry a dead server for minutes)."""
    quiet_mlflow_logging()
    uri = _tracking_uri(args)
    database = sqlite_path(uri)
    if database is not None and not database.is_file():
        raise MlflowCommandError(
            f"no MLflow store at {database.resolve()} (nothing tracked there yet; "
            "pass --tracking-uri or set [plugins.mlflow] tracking_uri)"
        )
    if is_server(uri):
        try:
            check_reachable(uri, HEALTH_TIMEOUT)
        except ConnectionError as exc:
            raise MlflowCommandError(str(exc)) from None
    load_mlflow()
    from mlflow.tracking import MlflowClient

    try:
        return MlflowClient(tracking_uri=uri)  # opens the store
    except Exception as exc:
        damaged = broken_store(database, exc) if database is not None else None
        if damaged is None:
            raise
        raise MlflowCommandError(str(damaged)) from None


def _call(request: Callable[[], Any]) -> Any:
    """Run a client request; MLflow's errors become one-line user errors."""
    from mlflow.exceptions import MlflowException

    try:
        return request()
    except MlflowException as exc:
        lines = str(exc.message).strip().splitlines()
        raise MlflowCommandError(f"MLflow: {lines[0] if lines else exc.error_code}") from None


def _experiment_id(client: Any, args: argparse.Namespace) -> str:
    name = args.experiment
    if name is None:
        configured = load_settings(CliOptions(config=args.config)).plugin_config("mlflow")
        name = str(configured.get("experiment", DEFAULT_EXPERIMENT))
    experiment = _call(lambda: client.get_experiment_by_name(name))
    if experiment is None:
        names = sorted(e.name for e in _call(lambda: list(client.search_experiments())))
        raise MlflowCommandError(
            f"no experiment {name!r} in the store (experiments: {', '.join(names) or 'none'})"
        )
    return str(experiment.experiment_id)


def _all_runs(client: Any, experiment_id: str) -> Iterator[Any]:
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            max_results=_PAGE_SIZE,
            order_by=["attributes.start_time ASC"],
            page_token=token,
        )
        yield from page
        token = page.token
        if not token:
            return


def _quote(value: str) -> str:
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise MlflowCommandError(f"cannot search for {value!r}: it contains both kinds of quotes")


def _run_dict(run: Any) -> dict[str, Any]:
    return {
        "rlm_run_id": run.data.tags.get(RUN_ID_TAG),
        "mlflow_run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "status": run.info.status,
        "start_time": _time(run.info.start_time),
        "end_time": _time(run.info.end_time),
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
        "tags": dict(run.data.tags),
    }


def _flat(run: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "status": run.info.status,
        "start_time": _time(run.info.start_time),
        "end_time": _time(run.info.end_time),
    }
    for prefix, values in (
        ("params.", run.data.params),
        ("metrics.", run.data.metrics),
        ("tags.", run.data.tags),
    ):
        row.update({prefix + key: value for key, value in values.items()})
    return row


def _time(millis: int | None) -> str:
    if millis is None:
        return ""
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="seconds")


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _QUESTION_CHARS else text[: _QUESTION_CHARS - 1] + "…"


def _print_table(headers: list[str], rows: list[list[str]]) -> None:
    if not rows:
        print("(none)")
        return
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        sys.stdout.write(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            + "\n"
        )
