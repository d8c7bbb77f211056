"""The national estimate: simulate representative intersections, extrapolate to the Netherlands.

One module per step::

    parameters   the parameter file (TOML, every number with range and source) and its checks
    sweep        which runs: intersection types x day types x features x seeds
    cache        on-disk cache of run results, keyed by job, scenario content and software
    runs         the Dask fan-out (LocalCluster or a scheduler address) behind the cache
    effects      per-intersection effects per hour from the runs
    extrapolate  national effect per year, Monte Carlo and tornado
    report       report.md, national.json and plots
    cli          the ``ivri national`` command

See docs/national.md for the method.
"""
