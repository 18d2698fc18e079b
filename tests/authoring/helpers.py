"""What the plugin-author tests share: a fresh venv with rlm-core, pip offline, a local webhook.

The ``test_auth_*`` modules import from here; ``test_auth_helpers.py`` checks the helpers.
"""

from __future__ import annotations

import contextlib
import json
import os
import site as site_module
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "docs" / "examples"
TIMEOUT = 300  # seconds for any one subprocess: pip builds, pytest runs


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without rlm settings, with pip offline and local HTTP direct.

    ``PIP_NO_BUILD_ISOLATION=0`` *disables* build isolation (pip reads the variable as the
    option's value): the build backend comes from the test environment, not from an index.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("RLM_")}
    env.update(
        PIP_NO_INDEX="1",
        PIP_NO_BUILD_ISOLATION="0",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        no_proxy="127.0.0.1,localhost",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra)
    return env


def run(
    command: Sequence[str | os.PathLike[str]], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run ``command``; the caller checks the outcome (and shows its output when it failed)."""
    return subprocess.run(
        [os.fspath(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def pip_install_target(package: Path, target: Path) -> None:
    """Install ``package`` into ``target`` alone; ``--no-deps`` so pip never looks for a
    distribution named rlm-core (the public one is an unrelated project)."""
    result = run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            target,
            package,
        ],
        cwd=package,
        env=clean_environment(),
    )
    assert result.returncode == 0, result.stdout + result.stderr


class FreshVenv:
    """A new virtual environment with rlm-core installed into it from this checkout.

    rlm-core's own dependencies (and pip, pytest, hatchling) are not downloaded: a ``.pth`` file
    puts the test environment's site-packages behind the venv's own, so they resolve as if they
    were installed there, while anything installed into the venv (rlm-core, the package under
    test, its ``rlm`` console script) lives in the venv only.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "bin"
        self.python = self.bin / "python"
        result = run(
            [sys.executable, "-m", "venv", "--without-pip", root], root.parent, os.environ.copy()
        )
        assert result.returncode == 0, result.stderr
        site = run(
            [self.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            root,
            os.environ.copy(),
        ).stdout.strip()
        # Every site directory of the test environment, the base interpreter's included when
        # the test environment is itself a venv with system site-packages.
        outer = dict.fromkeys(site_module.getsitepackages())
        lines = [f"import site; site.addsitedir({path!r})\n" for path in outer]
        Path(site, "_rlm_test_environment.pth").write_text("".join(lines), encoding="utf-8")
        self.pip_install(REPO)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a shell with this venv activated."""
        path = os.pathsep.join([str(self.bin), os.environ.get("PATH", "")])
        return clean_environment(VIRTUAL_ENV=str(self.root), PATH=path, **extra)

    def run(
        self, command: Sequence[str | os.PathLike[str]], cwd: Path, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        return run(command, cwd, self.env(**extra))

    def pip_install(self, package: Path) -> None:
        result = self.run(
            [
                self.python,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "--no-index",
                package,
            ],
            package,
        )
        assert result.returncode == 0, result.stdout + result.stderr


class Receiver:
    """The JSON bodies a local webhook received, in order."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.bodies: list[Any] = []
        self._arrived = threading.Condition()

    def add(self, body: Any) -> None:
        with self._arrived:
            self.bodies.append(body)
            self._arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Any]:
        """The bodies, once at least ``count`` arrived (or ``timeout`` seconds passed)."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.bodies) >= count, timeout)
            return list(self.bodies)


@contextlib.contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    """An HTTP server on 127.0.0.1 in a thread that records each POSTed JSON body."""
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.add(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Keep the test output clean."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
