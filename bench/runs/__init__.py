"""Opening a run, once for load and accuracy: resolve the target, serve it if needed, identify it, record
provenance, start and finish the run in the store, and write its records in batches.

`run_load` and `run_accuracy` are the library functions behind `llmbench bench load` and `bench accuracy`
(`diff_runs` behind `bench diff`); the measuring itself (bench.loadgen, bench.accuracy) gets an injected
client and a sink from here, and prices nothing.
"""

from bench.runs.accuracy import diff_runs, run_accuracy
from bench.runs.load import SCHEMA, LoadResult, run_load

__all__ = ["SCHEMA", "LoadResult", "diff_runs", "run_accuracy", "run_load"]
