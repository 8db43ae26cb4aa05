"""Measure endpoints and tie it all together: clients, load, metrics, accuracy, store, cost, report, CLI."""

__version__ = "0.1.0"
