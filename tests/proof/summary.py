# ruff: noqa: T201  (a command that prints)
"""Add up the figures the proof tests wrote (tests/proof/figures.py) and print them; exit 1 if any says harm.

python -m tests.proof.summary var/proof
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

FIRST = (
    "operations fuzzed",
    "fuzz runs",
    "examples tried",
    "hostile cases tried",
    "faults injected",
    "faults survived",
)
HARM = ("acknowledged votes lost", "messages doubled")


def totals(folder: Path) -> Counter[str]:
    found: Counter[str] = Counter()
    for path in sorted(folder.glob("*.json")):
        found.update(json.loads(path.read_text()))
    return found


def figure(found: Counter[str], name: str) -> str:
    return f"{found[name]:,}" if name in found else "not measured"


def main(argv: list[str]) -> int:
    found = totals(Path(argv[1] if len(argv) > 1 else "var/proof"))
    print("== proof")
    runs = found["fuzz runs"]
    operations = f"{found['operations fuzzed'] // runs} in each of {runs} runs" if runs else "not measured"
    print(f"operations fuzzed: {operations}, examples tried: {figure(found, 'examples tried')}")
    print(f"hostile cases tried: {figure(found, 'hostile cases tried')}")
    print(f"faults injected: {figure(found, 'faults injected')}, survived: {figure(found, 'faults survived')}")
    for name in sorted(set(found) - set(FIRST) - set(HARM)):
        print(f"{name}: {found[name]:,}")
    print(", ".join(f"{name}: {figure(found, name)}" for name in HARM))
    return 1 if any(found[name] for name in HARM) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
