"""Benchmark runs, submissions and scores: GOT-10k, TrackingNet, LaSOT, DAVIS 2016/2017.

``runner`` tracks sequences resumably (and sharded under torchrun); ``box_measures`` and
``davis_measures`` implement the official measures; ``got10k``, ``trackingnet``, ``lasot``
and ``davis`` are the adapters (each with a ``main(argv)``); ``key_quality`` scores the
memory read alone (``samn eval keys``); ``run_record`` keeps what made each results folder,
so that a resumed run cannot mix settings; ``samn_tracker.reports`` makes the tables and plots. See
docs/evaluation.md for the commands on the real datasets.
"""
