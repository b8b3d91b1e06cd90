"""Training, calibration and staged export of early-exit students (models/early_exit.py)."""

from .calibrate import POLICIES, calibrate_threshold, exit_decisions
from .loss import ExitTraining

__all__ = ["POLICIES", "ExitTraining", "calibrate_threshold", "exit_decisions"]
