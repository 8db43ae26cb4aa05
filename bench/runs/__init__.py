"""Opening a run, once for load and accuracy: resolve the target, serve it if needed, identify it, record
provenance, start and finish the run in the store, and write its records in batches."""
