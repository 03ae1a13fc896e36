"""`make bench` rewrites benchmarks/RESULTS.md without losing sections it did not rerun."""

from benchmarks.run_all import merged_sections

PREVIOUS = """# Benchmark results

Generated earlier.

## scan_bench  (10 s)

old scan table

## demo  (2026-12-03, measured by hand)

demo table
"""


def test_a_rerun_replaces_its_section_and_keeps_the_others_including_hand_measured_ones():
    body = merged_sections(PREVIOUS, ["## scan_bench  (12 s)\n\nnew scan table\n"], ["scan_bench"])
    assert "old scan table" not in body
    assert "new scan table" in body
    assert "## demo  (2026-12-03, measured by hand)\n\ndemo table" in body
    assert body.index("demo table") < body.index("new scan table")  # kept sections first, this run's after


def test_nothing_before_gives_just_this_runs_sections():
    assert merged_sections("", ["## a  (1 s)\n\nx\n"], ["a"]) == "## a  (1 s)\n\nx\n"
