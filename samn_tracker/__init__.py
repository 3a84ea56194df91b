"""SAMN: a segmentation tracker with a spatio-appearance memory network."""
from samn_tracker.config import TrackerConfig, preset
from samn_tracker.errors import InputError

__version__ = "0.1.0"
__all__ = ["TrackerConfig", "preset", "InputError", "__version__"]
