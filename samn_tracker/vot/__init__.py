"""VOT toolkit integration: TraX server, working experiment classes, stacks, local
VOT-layout sequences from DAVIS, and the EAO/A/R report (see docs/vot.md)."""
from pathlib import Path

STACKS_DIR = Path(__file__).resolve().parent / "stacks"
