"""SELF-PARAM context injection."""

from .config import SelfParamConfig, TargetConfig
from .method import SelfParam, make_generator, make_target_builder

__all__ = ["SelfParam", "SelfParamConfig", "TargetConfig", "make_generator", "make_target_builder"]
