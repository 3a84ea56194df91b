"""Tables and plots (``samn report``): one module per kind of result, ``cli`` dispatches.

``evaluation``: GOT-10k / TrackingNet / LaSOT / DAVIS summaries side by side; ``vot``: EAO / A / R
from VOT toolkit analyses; ``speed``: ``samn bench`` tables and the long-video plot.
"""
