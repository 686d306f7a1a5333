"""The one pipeline: a RunSpec turned into a run on disk by stages that ask the run's task what differs."""

from .build import build_run, refresh_metrics
from .stages import PIPELINE, PIPELINE_STAGES
from .state import BuildState

__all__ = ["build_run", "refresh_metrics", "BuildState", "PIPELINE", "PIPELINE_STAGES"]
