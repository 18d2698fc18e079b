"""The HTML report in a real headless Chromium: the tables and the figure render, and the page
loads nothing from the network (its Content-Security-Policy blocks any load, shown by a probe)."""

from __future__ import annotations

import base64
import html.parser
import http.server
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlm_core.cli import main
from rlm_core.eval.html import CSP

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def render(page: Path, profile: Path) -> str:
    """The DOM after Chromium loaded ``page``."""
    if CHROMIUM is None:
        missing = "chromium is not installed (.ci/run installs it: apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(missing)  # CI installs it: a skip there would hide the check
        pytest.skip(missing)
    result = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--no-first-run",
            f"--user-data-dir={profile}", "--virtual-time-budget=2000", "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


class _Elements(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.loads: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "poster") and value is not None:
                self.loads.append((tag, name, value))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("html")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        for variable in ("RLM_TRACKERS", "RLM_DISABLE", "RLM_CONFIG"):
            patch.delenv(variable, raising=False)
        assert main(["eval", "demo", "-t", "jsonl", "--no-report"]) == 0
        assert main(["eval", "report", "eval-demo", "--format", "html", "-o", "report.html"]) == 0
    return cwd / "report.html"


def test_chromium_renders_the_conditions_the_figure_and_the_runs(
    report: Path, tmp_path: Path
) -> None:
    dom = render(report, tmp_path / "profile")
    parsed = _Elements()
    parsed.feed(dom)
    text = " ".join(" ".join(parsed.text).split())
    assert "Conditions" in text
    assert "memory=on 6 66.7% 30.0%-90.3% 0.667 0.667" in text
    assert "memory=off 6 66.7% 30.0%-90.3% 0.667 0.667" in text
    assert "Paired comparison" in text
    assert text.count("farm-altitude memory=") == 6  # 2 cells + 4 runs
    (image,) = [value for tag, _, value in parsed.loads if tag == "img"]
    assert image.startswith("data:image/png;base64,")
    assert base64.b64decode(image.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    # Each run links its JSONL log, by a path relative to the page.
    logs = [value for tag, _, value in parsed.loads if tag == "a"]
    assert len(logs) == 12
    assert all((report.parent / link).is_file() for link in logs)


def test_the_page_refers_to_nothing_on_the_network(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in page
    parsed = _Elements()
    parsed.feed(page)
    assert parsed.loads, "the page has an image and links"
    assert not [load for load in parsed.loads if re.match(r"(?i)\s*(https?:)?//", load[2])]


@pytest.fixture
def probe() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that records the paths asked of it."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_policy_blocks_any_load_a_page_would_make(
    report: Path, tmp_path: Path, probe: tuple[str, list[str]]
) -> None:
    """The report with remote resources added loads none of them; without its policy, the same
    page does (so the probe would have seen a load)."""
    base, asked = probe
    extra = (
        f'<img src="{base}/image.png"><link rel="stylesheet" href="{base}/style.css">'
        f'<script src="{base}/script.js"></script></body>'
    )
    page = report.read_text(encoding="utf-8").replace("</body>", extra)
    guarded = tmp_path / "guarded.html"
    guarded.write_text(page, encoding="utf-8")
    render(guarded, tmp_path / "profile-1")
    assert asked == []
    open_page = tmp_path / "open.html"
    open_page.write_text(re.sub(r"<meta http-equiv=\"Content-Security-Policy\"[^>]*>", "", page))
    render(open_page, tmp_path / "profile-2")
    assert sorted(asked) == ["/image.png", "/script.js", "/style.css"]
