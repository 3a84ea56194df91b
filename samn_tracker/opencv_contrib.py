"""Which OpenCV package provides ``cv2``, and the one fix when it lacks CSRT / KCF.

vot-toolkit requires ``opencv-python``; this project needs ``opencv-contrib-python-headless``
(CSRT, KCF). Both install the same ``cv2`` folder and the one installed last wins,
silently (``pip check`` stays clean). When ``opencv-python`` wins, the contrib trackers
vanish although the contrib package is listed as installed, so "install opencv-contrib"
is the wrong advice: reinstalling it, without touching its dependencies, is the fix.
"""
from __future__ import annotations

from importlib import metadata
from typing import Callable, Optional

CONTRIB_PACKAGE = "opencv-contrib-python-headless"
CONTRIB_FIX = f"pip install --force-reinstall --no-deps {CONTRIB_PACKAGE}"
CONTRIB_TRACKERS = {"csrt": "TrackerCSRT_create", "kcf": "TrackerKCF_create"}


def contrib_factory(name: str) -> Optional[Callable]:
    """``cv2.TrackerCSRT_create`` and friends (``cv2.legacy`` in some 4.x builds), or None."""
    import cv2

    attribute = CONTRIB_TRACKERS[name]
    return getattr(cv2, attribute, None) or getattr(getattr(cv2, "legacy", None), attribute, None)


def cv2_packages() -> list[str]:
    """Installed distributions that ship a ``cv2`` package (several means they overwrite
    each other)."""
    return sorted(set(metadata.packages_distributions().get("cv2", [])))


def missing_contrib(name: str = "csrt") -> str:
    """Why ``name`` is missing from ``cv2``; ``CONTRIB_FIX`` brings it back."""
    import cv2

    packages = cv2_packages()
    installed = ", ".join(packages) if packages else "no pip package"
    return (f"OpenCV {getattr(cv2, '__version__', '?')} has no {CONTRIB_TRACKERS[name]} (cv2 from "
            f"{installed}; when opencv-python is installed after {CONTRIB_PACKAGE} its cv2 "
            "replaces the contrib one)")
