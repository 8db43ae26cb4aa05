"""Benchmark sweeps: `spec` (sweep.yaml), `plan` (points and estimates), `execute` (one point here),
`remote` (points on a Ray cluster), `driver` (a whole sweep, resumable)."""
