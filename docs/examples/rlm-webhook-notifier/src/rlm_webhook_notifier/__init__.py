"""An rlm-core tracker that posts a JSON summary of every finished run to a webhook.

The body has a Slack-style ``text`` line, so a Slack (or Mattermost) incoming webhook shows it as
a message, and the run's numbers for any other receiver.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from rlm_core import hookimpl
from rlm_core.config import CliOptions, load_settings
from rlm_core.delivery import BackgroundDelivery, DeliveryStats
from rlm_core.errors import ConfigError
from rlm_core.events import Judgment, RunInfo, RunResult

__all__ = ["WebhookNotifier", "send_test", "summary"]
__version__ = "0.1.0"


class WebhookNotifier:
    """Posts one JSON summary per finished run to ``url``, from a background thread.

    rlm-core passes the ``[plugins.webhook]`` section of ``rlm.toml`` as keyword arguments.

    :param url: where to POST (http or https); ``"$env:NAME"`` in the config file keeps a
        secret URL out of the file.
    :param timeout: seconds one POST may take before it counts as failed.
    :param only_failures: post only runs that failed or did not converge.
    :param headers: extra HTTP headers, e.g. ``Authorization`` for receivers that want a token.
    """

    name = "webhook"  # the name it is registered under when passed to rlm_core.run(plugins=...)

    @staticmethod
    @hookimpl
    def register_commands(commands: Any) -> None:
        """``rlm webhook test``: post one test message, to check the URL before a real run.

        A static method: rlm-core builds its command line without constructing any plugin.
        """
        parser = commands.add_parser(
            "webhook",
            help="the webhook notifier: check the webhook",
            description="Commands of the rlm-webhook-notifier plugin.",
        )
        subcommands = parser.add_subparsers(dest="webhook_command", metavar="SUBCOMMAND")
        test = subcommands.add_parser(
            "test",
            help="post a test message to the webhook",
            description="POST one test message to URL (default: [plugins.webhook] url).",
        )
        test.add_argument("--url", help="the webhook to post to")
        test.add_argument("--config", metavar="PATH", help="config file (default: ./rlm.toml)")
        test.set_defaults(handler=send_test)

    def __init__(
        self,
        url: str | None = None,
        timeout: float = 5.0,
        only_failures: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if url is None or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(
                f"webhook: url must be an http(s) URL, got {url!r}; "
                'set it in rlm.toml: [plugins.webhook] url = "$env:RLM_WEBHOOK_URL"'
            )
        if timeout <= 0:
            raise ValueError(f"webhook: timeout must be a positive number, got {timeout!r}")
        self.url = url
        self.timeout = float(timeout)
        self.only_failures = only_failures
        self.headers = {
            "Content-Type": "application/json",
            "User-Agent": f"rlm-webhook-notifier/{__version__}",
            **(headers or {}),
        }
        self._verdicts: dict[str, Judgment] = {}
        # Hooks run on the engine thread, so they only queue; the worker thread POSTs. At
        # process exit, rlm-core gives the queue one bounded flush (exit_timeout).
        self._delivery: BackgroundDelivery[dict[str, Any]] = BackgroundDelivery(
            self._post,
            name="rlm-webhook",
            max_queue=1000,
            batch_size=1,
            when_full="drop",
            exit_timeout=self.timeout + 1.0,
        )

    @hookimpl
    def judgment(self, run: RunInfo, verdict: Judgment) -> None:
        """Keep the verdict for the run's summary (``judgment`` comes before ``run_end``)."""
        self._verdicts[run.run_id] = verdict

    @hookimpl
    def run_end(self, run: RunInfo, result: RunResult) -> None:
        """Queue the summary and return at once; the POST happens on the delivery thread."""
        verdict = self._verdicts.pop(run.run_id, None)
        if self.only_failures and result.converged and result.error is None:
            return
        self._delivery.submit(summary(run, result, verdict))

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for queued summaries; False if some are still queued."""
        return self._delivery.flush(timeout)

    def close(self, timeout: float) -> bool:
        """Flush, then stop the delivery thread; what is left is counted as dropped."""
        return self._delivery.close(timeout)

    @property
    def stats(self) -> DeliveryStats:
        """Summaries submitted, delivered, failed (the POST raised) and dropped (queue full)."""
        return self._delivery.stats

    def _post(self, batch: list[dict[str, Any]]) -> None:
        for body in batch:
            request = urllib.request.Request(
                self.url, data=json.dumps(body).encode(), headers=self.headers, method="POST"
            )
            # urlopen raises for HTTP errors (4xx, 5xx) and timeouts: the delivery helper
            # counts those summaries as failed and logs the first failure.
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()


def send_test(args: argparse.Namespace) -> int:
    """``rlm webhook test``: 0 when the webhook took the message, 1 when it did not."""
    url = args.url
    if url is None:
        section = load_settings(CliOptions(config=args.config)).plugin_config("webhook")
        url = section.get("url")
    try:
        notifier = WebhookNotifier(url=url)
    except ValueError as exc:  # a missing or bad URL: a usage error, exit code 2
        raise ConfigError(str(exc)) from None
    body = {"text": "rlm-webhook-notifier test message", "test": True}
    try:
        notifier._post([body])
    except OSError as exc:
        print(f"rlm webhook test: {url} did not take the message: {exc}", file=sys.stderr)
        return 1
    print(f"posted a test message to {url}")
    return 0


def summary(run: RunInfo, result: RunResult, verdict: Judgment | None = None) -> dict[str, Any]:
    """The JSON body posted for one run."""
    if result.error is not None:
        status = "failed"
    elif result.converged:
        status = "converged"
    else:
        status = "did not converge"
    text = (
        f"rlm run {run.run_id} {status} after {result.iterations} iterations "
        f"({result.duration:.1f} s, {result.tokens} tokens): {run.question}"
    )
    return {
        "text": text,
        "run_id": run.run_id,
        "parent_run_id": run.parent_run_id,
        "status": status,
        "question": run.question,
        "ontology": run.ontology.name,
        "model": run.model,
        "answer": result.answer,
        "error": result.error,
        "iterations": result.iterations,
        "llm_calls": result.llm_calls,
        "tokens": result.tokens,
        "duration": round(result.duration, 3),
        "started_at": run.started_at.isoformat(),
        "tags": dict(run.tags),
        "judgment": None
        if verdict is None
        else {
            "success": verdict.success,
            "confidence": verdict.confidence,
            "reason": verdict.reason,
        },
    }
