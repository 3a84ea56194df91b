"""SAMN: a segmentation tracker with a spatio-appearance memory network."""
from samn_tracker.build import build_tracker
from samn_tracker.config import TrackerConfig, preset
from samn_tracker.errors import InputError, SettingError

__version__ = "0.1.0"
__all__ = ["build_tracker", "TrackerConfig", "preset", "InputError", "SettingError", "__version__"]
