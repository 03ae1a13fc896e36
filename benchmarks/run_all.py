"""Run every benchmark side by side with its baseline and write ``benchmarks/RESULTS.md``.

Each benchmark module exposes ``main(argv=None) -> str`` returning a markdown section. A benchmark that fails is
reported as failed in RESULTS.md (with its error) and makes this script exit non-zero; the others still run.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

BENCHMARKS = ("scan_bench", "probe_bench", "revs_bench", "audit_bench", "scale_bench", "incremental_bench",
              "demo_seeds", "perplexity_sample")
RESULTS = Path(__file__).with_name("RESULTS.md")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks named on the command line (default: all) and write RESULTS.md."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_all")
    parser.add_argument("names", nargs="*", default=list(BENCHMARKS), help=f"subset of {BENCHMARKS}")
    parser.add_argument("--quick", action="store_true", help="smaller inputs (smoke run, numbers not reportable)")
    args = parser.parse_args(argv)
    sections, failed = [], []
    for name in args.names:
        start = time.perf_counter()
        print(f"== {name}", flush=True)
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            body = module.main(["--quick"] if args.quick else [])
        except Exception:  # a benchmark's failure is reported, the others still run
            failed.append(name)
            body = "FAILED:\n\n```\n" + traceback.format_exc() + "```\n"
        sections.append(f"## {name}  ({time.perf_counter() - start:.0f} s)\n\n{body}\n")
        print(sections[-1], flush=True)
    header = (
        "# Benchmark results\n\n"
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `make bench` on {platform.machine()}, "
        f"{_cores()} cores, Python {platform.python_version()}{' (quick mode)' if args.quick else ''}. "
        "Every table compares against its baseline in the same run; ratios are ours / baseline.\n\n"
    )
    previous = RESULTS.read_text(encoding="utf-8") if RESULTS.is_file() else ""
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(header + merged_sections(previous, sections, args.names), encoding="utf-8")
    tmp.replace(RESULTS)
    return 1 if failed else 0


def merged_sections(previous: str, sections: list[str], rerun: list[str]) -> str:
    """Return the body of the new RESULTS.md: every section of ``previous`` not rerun (benchmarks not run this time
    and sections measured by hand, such as ``demo``), in their order, then this run's ``sections``."""
    kept = [body for name, body in _sections(previous) if name not in rerun]
    return "\n".join(kept + sections)


def _sections(text: str) -> list[tuple[str, str]]:
    """Return ``(name, text)`` of each ``## name`` section of an earlier RESULTS.md's text."""
    out: list[tuple[str, str]] = []
    for chunk in text.split("\n## ")[1:]:
        out.append((chunk.split()[0], "## " + chunk.rstrip("\n") + "\n"))
    return out


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main())
