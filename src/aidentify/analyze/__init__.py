"""Studies: many recordings of people watching one stimulus, analysed in worker processes
(or on a Dask cluster) and aggregated on the stimulus clock into tables and a report.

Layers: ``inputs`` (recordings, respondents.csv, segments.csv, checked before work),
``task`` (one recording through the live pipeline in a worker, its timeline written as it goes),
``runner`` (local process slots or a Dask cluster behind one ``submit``), ``aggregate``
(per-respondent epochs and the statistics across respondents, streamed), ``report``
(the self-contained HTML page), ``study`` (the stage that ties them together).
"""
