"""Run SAMN on trackingnet: same as `samn eval trackingnet` (see docs/benchmarks.md)."""
import sys

from samn_tracker.benchmarks.trackingnet import main

if __name__ == "__main__":
    sys.exit(main())
