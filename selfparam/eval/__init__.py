"""The evaluation harness: the papers' tasks run for every method through one protocol.

>>> from selfparam.eval import EvalSettings, evaluate
>>> result, paths = evaluate(EvalSettings("single", "../shared/data/squad_v1.1/dev-v1.1-public.json",
...                                       "runs/single", methods=("base", "base-cq", "rag-bm25"), n=20))
"""

from .loaders import ContextQA, DataError, QuestionAnswers, RecData, RecTurn, load_crs, load_qa
from .metrics import best_em, best_f1, exact_match, f1_score, normalize_answer, recall_at_k
from .run import EvalSettings, evaluate
from .tasks import MethodOutcome, TaskResult, run_batch, run_recommendation, run_sequential, run_single

__all__ = [
    "ContextQA", "DataError", "QuestionAnswers", "RecData", "RecTurn", "load_crs", "load_qa",
    "best_em", "best_f1", "exact_match", "f1_score", "normalize_answer", "recall_at_k",
    "EvalSettings", "evaluate",
    "MethodOutcome", "TaskResult", "run_batch", "run_recommendation", "run_sequential", "run_single",
]
