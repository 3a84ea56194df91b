"""``python -m samn_tracker``: the ``samn`` command, where its script is not on PATH."""
import sys

from samn_tracker.cli import main

sys.exit(main())
