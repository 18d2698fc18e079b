"""Start-up time of the ``rlm`` command: ``rlm --help`` and ``rlm plugins``, in fresh processes.

Target (issue 9): ``rlm plugins`` starts in under 0.5 s. Run: ``python benchmarks/startup.py``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _rows import row

TARGET_S = 0.5
COMMANDS = (["--help"], ["plugins"], ["plugins", "--json"])


def rlm_command() -> list[str]:
    """The installed console script next to this Python, else the module."""
    script = Path(sys.executable).parent / "rlm"
    return [str(script)] if script.exists() else [sys.executable, "-m", "rlm_core.cli"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--json", type=Path, metavar="PATH")
    args = parser.parse_args()
    base = rlm_command()
    times: dict[str, list[float]] = {" ".join(command): [] for command in COMMANDS}
    with tempfile.TemporaryDirectory() as directory:
        for _ in range(args.repeat):
            for command in COMMANDS:
                started = time.perf_counter()
                subprocess.run([*base, *command], cwd=directory, capture_output=True, check=True)
                times[" ".join(command)].append(time.perf_counter() - started)
    print(f"{'command':<22} {'min s':>7} {'median s':>9} {'max s':>7}  ({args.repeat} runs)")
    rows = []
    for command, values in times.items():
        rows.append(row(f"start-up: rlm {command}", "s", values))
        print(f"rlm {command:<18} {min(values):7.3f} {rows[-1]['median']:9.3f} {max(values):7.3f}")
    plugins = rows[1]["median"]
    ok = plugins < TARGET_S
    text = f"rlm plugins starts in {plugins:.3f} s (median) < {TARGET_S} s"
    print(f"{'PASS' if ok else 'FAIL'}  {text}")
    if args.json:
        data = {"rows": rows, "targets": [{"check": text, "pass": ok}]}
        args.json.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
