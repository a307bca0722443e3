"""selfparam: make language models self-updatable.

>>> from selfparam import SelfParam, Context, Query, load_lm
>>> method = SelfParam(load_lm("smollm2-135m"))
>>> method.inject([Context("doc", "The Zorblat Festival is held every May in Quenby.")])
>>> method.answer([Query("When is the Zorblat Festival held?")])

The names below are imported on first use (PEP 562), so that `import selfparam.store` or `selfparam.atomic`
(a lock holder, a store listing) does not pay for torch and transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_names

_WHERE = {"LM": ".lm", "load_lm": ".lm", "Context": ".methods.base", "KnowledgeMethod": ".methods.base",
          "Query": ".methods.base", "Resources": ".methods.base", "build_method": ".methods.registry",
          "SelfParam": ".methods.selfparam", "SelfParamConfig": ".methods.selfparam",
          "TargetConfig": ".methods.selfparam", "AdapterConfig": ".training", "TrainConfig": ".training"}

__all__ = ["LM", "load_lm", "Context", "KnowledgeMethod", "Query", "Resources", "build_method", "SelfParam",
           "SelfParamConfig", "TargetConfig", "AdapterConfig", "TrainConfig"]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from .lm import LM, load_lm
    from .methods.base import Context, KnowledgeMethod, Query, Resources
    from .methods.registry import build_method
    from .methods.selfparam import SelfParam, SelfParamConfig, TargetConfig
    from .training import AdapterConfig, TrainConfig


__getattr__, __dir__ = lazy_names(__name__, _WHERE)
