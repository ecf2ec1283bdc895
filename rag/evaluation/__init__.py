"""Eval harness: gold suites -> the same library calls users make -> metrics -> report -> thresholds."""
