#!/usr/bin/env python3
"""Checks that the Node and Python client suites share one conformance list.

Both suites name their conformance scenarios with a helper called
``conformance`` whose first argument is the scenario's name as a string
literal on the same line (comment lines are skipped), and the runners show
each as ``conformance: <name>``:

- Node (``clients/node/test/*.test.js``)::

      conformance("close returns exit details", async () => { ... });

- Python (``clients/python/tests/test_*.py``)::

      @conformance("close returns exit details")
      async def test_close_returns_exit_details(self) -> None: ...

This script (standard library only) collects the names from both, prints
the size of each list and any name found in one suite only (or twice in
one), and exits 1 if the lists differ, 0 if they are the same. The scenarios
and the naming table they cover are in ``clients/README.md``.

Usage: ``python3 clients/conformance.py [--list]`` (``--list`` prints the
shared names too).
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, List

HERE = Path(__file__).resolve().parent
SUITES: Dict[str, List[Path]] = {
    "node": sorted((HERE / "node" / "test").glob("*.test.js")),
    "python": sorted((HERE / "python" / "tests").glob("test_*.py")),
}

# `conformance(` followed by a single- or double-quoted literal: a call or a
# decorator, never the helper's own definition (whose argument is a name).
NAME = re.compile(r"""\bconformance\(\s*(?P<q>["'])(?P<name>(?:\\.|(?!(?P=q)).)+)(?P=q)""")


#: Lines that are comments in either language (an example in a comment is not a scenario).
COMMENT = re.compile(r"^\s*(//|#|\*|/\*)")


def names_in(files: List[Path]) -> Counter[str]:
    found: Counter[str] = Counter()
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if COMMENT.match(line):
                continue
            for match in NAME.finditer(line):
                found[match.group("name")] += 1
    return found


def main(argv: List[str]) -> int:
    lists = {suite: names_in(files) for suite, files in SUITES.items()}
    node, python = lists["node"], lists["python"]
    print(f"conformance scenarios: node {len(node)}, python {len(python)}")
    ok = True
    for suite, files in SUITES.items():
        if not files:
            print(f"no test files found for the {suite} suite")
            ok = False
        dups = sorted(name for name, count in lists[suite].items() if count > 1)
        for name in dups:
            print(f"  named twice in the {suite} suite: {name!r}")
            ok = False
    only_node = sorted(set(node) - set(python))
    only_python = sorted(set(python) - set(node))
    for name in only_node:
        print(f"  only in the node suite: {name!r}")
    for name in only_python:
        print(f"  only in the python suite: {name!r}")
    if only_node or only_python:
        ok = False
    if not node and not python:
        print("no conformance scenario in either suite")
        ok = False
    shared = sorted(set(node) & set(python))
    if "--list" in argv:
        for name in shared:
            print(f"  conformance: {name}")
    print(f"shared: {len(shared)} (node {len(node)}, python {len(python)}); {'OK' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
