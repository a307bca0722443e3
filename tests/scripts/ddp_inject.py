"""Run by `accelerate launch --cpu --num_processes 2` in tests/test_distributed.py: one SELF-PARAM update
of the tiny model, data-parallel, then each process writes a digest of its weights and its share."""

import json
import sys

from accelerate import PartialState

from selfparam.methods.base import Context, Resources
from selfparam.methods.selfparam import SelfParam, SelfParamConfig, TargetConfig
from selfparam.targets.types import QAPair, TargetSet
from selfparam.testing import tiny_lm
from selfparam.training import TrainConfig


def targets(context: str) -> TargetSet:
    pairs = [QAPair(f"Question number {i} about the festival?", f"Answer {i}.") for i in range(8)]
    return TargetSet(context, pairs, unrelated=["The cat sat on the mat.", "Rivers flow to the sea."])


state = PartialState(cpu=True)  # as the trainer asks for on a CPU-only machine
config = SelfParamConfig(targets=TargetConfig(answers="generator"), train=TrainConfig(epochs=2, batch_size=2, lr=1e-2),
                         rehearsal=0,  # rehearsal (on by default) runs in one process only
                         context_copies=0)  # the 10 examples the test counts: pairs and unrelated sentences
method = SelfParam(tiny_lm(seed=0, initializer_range=0.3), config, Resources(target_builder=targets), progress=False)
method.inject([Context("c", "Quenby hosts the Zorblat festival every May.")])
digest = float(sum(p.double().sum() for p in method.lm.model.parameters()))
with open(f"{sys.argv[1]}/rank{state.process_index}.json", "w") as f:
    json.dump({"world": state.num_processes, "digest": digest, "examples": method.last_stats.examples,
               "steps": method.last_stats.steps, "first_loss": method.last_stats.first_loss,
               "last_loss": method.last_stats.last_loss}, f)
