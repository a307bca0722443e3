"""Fine-tuning baselines FT(C), FT(S) and FT(S) on teacher-written answers."""

from .config import FineTuneContextConfig, FineTuneTargetsConfig
from .method import FineTuneContext, FineTuneTargets, FineTuneTeacherTargets

__all__ = ["FineTuneContext", "FineTuneContextConfig", "FineTuneTargets", "FineTuneTargetsConfig",
           "FineTuneTeacherTargets"]
