"""Batch processing: many trading dates, local processes or a Dask cluster (see :mod:`spymaster.batch.run`).

``dates`` decides which dates run and why others are skipped; ``run`` holds the per-date unit
of work (:func:`~spymaster.batch.run.run_date`) and the executors.
"""
