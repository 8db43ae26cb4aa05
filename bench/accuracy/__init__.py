"""Task accuracy: suites, scorers, statistics, the runner, and lm-eval integration."""
