"""Start-up time of the CLI against `import torch` (issue 14: `symtrans --help` and
`symtrans models` at most 0.3x the time of `import torch`).

Each command runs in a fresh process, `--repeat` times after one warm-up run (the files are in
the page cache for every run), in turn so that a machine whose speed drifts affects every
command alike; the script prints the best and median wall time of each, its ratio to
`import torch`, and whether the target is met. Not a test: times are the machine's.

    python benchmarks/startup.py [--repeat 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
COMMANDS = {
    "import torch": [sys.executable, "-c", "import torch"],
    "import symtrans": [sys.executable, "-c", "import symtrans"],
    "symtrans --help": [str(BIN / "symtrans"), "--help"],
    "symtrans models": [str(BIN / "symtrans"), "models"],
}
TARGET = 0.3  # of `import torch`


def run(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for command in COMMANDS.values():  # warm-up: page cache, .pyc files
        run(command)
    for _ in range(args.repeat):
        for name, command in COMMANDS.items():
            times[name].append(run(command))
    base = min(times["import torch"])
    print(f"{'command':<18} {'best s':>8} {'median s':>9} {'best / import torch':>20}  target")
    failed = False
    for name, values in times.items():
        ratio = min(values) / base
        verdict = ""
        if name.startswith("symtrans "):
            met = ratio <= TARGET
            failed |= not met
            verdict = f"<= {TARGET}: {'MET' if met else 'NOT MET'}"
        print(
            f"{name:<18} {min(values):>8.3f} {statistics.median(values):>9.3f} "
            f"{ratio:>19.2f}x  {verdict}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
