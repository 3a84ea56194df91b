"""Tables and plots (``samn report``): one module per kind of result, ``cli`` dispatches.

``evaluation``: GOT-10k / TrackingNet / LaSOT / OTB / DAVIS summaries side by side; ``vot``: EAO / A / R
from VOT toolkit analyses; ``speed``: ``samn bench`` tables and the long-video plot.
"""


def shortened(text: str, most: int) -> str:
    """``text`` cut to ``most`` characters with an ellipsis, for a plot's labels; here, where
    each kind's module can have it without the others' imports (pandas for ``evaluation``)."""
    return text if len(text) <= most else text[:most - 1] + "…"
