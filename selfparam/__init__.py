"""selfparam: make language models self-updatable.

>>> from selfparam import SelfParam, Context, Query, load_lm
>>> method = SelfParam(load_lm("smollm2-135m"))
>>> method.inject([Context("doc", "The Zorblat Festival is held every May in Quenby.")])
>>> method.answer([Query("When is the Zorblat Festival held?")])
"""

from .lm import LM, load_lm
from .methods.base import Context, KnowledgeMethod, Query, Resources
from .methods.registry import build_method
from .methods.selfparam import SelfParam, SelfParamConfig, TargetConfig
from .training import AdapterConfig, TrainConfig

__all__ = ["LM", "load_lm", "Context", "KnowledgeMethod", "Query", "Resources", "build_method", "SelfParam",
           "SelfParamConfig", "TargetConfig", "AdapterConfig", "TrainConfig"]
__version__ = "0.1.0"
