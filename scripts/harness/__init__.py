"""The ray-platform validation harness: render the chart with the real helm and check every object.

Used by the test suite (tests/) and by `make check` (harness.cli), so the checks a user runs on
their overlay are exactly the checks CI runs.
"""
