"""Fine-tuning baselines FT(C) and FT(S)."""

from .config import FineTuneContextConfig, FineTuneTargetsConfig
from .method import FineTuneContext, FineTuneTargets

__all__ = ["FineTuneContext", "FineTuneContextConfig", "FineTuneTargets", "FineTuneTargetsConfig"]
