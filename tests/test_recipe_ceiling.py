"""scripts/recipe_prompt_ceiling.py on the tiny model: a prompt fitted to one edit makes its target likelier."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from test_lifelong import _write_data, recipe_ready  # noqa: F401  (the fixture: a tiny editor, found by default)

from selfparam.eval.editing_data import load_edits

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "recipe_prompt_ceiling.py"


def _script():
    spec = importlib.util.spec_from_file_location("recipe_prompt_ceiling", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_prompt_fitted_to_its_edit_raises_the_targets_logprob(tiny, tmp_path, recipe_ready):  # noqa: F811
    ceiling = _script()
    _write_data(tmp_path / "cf.json", n=3)
    records = load_edits(tmp_path / "cf.json")
    result = ceiling.run(tiny, records, steps=60, lr=0.1, extra_tokens=1, checkpoint=None, seed=0)
    figures = result["figures"]
    assert result["settings"]["prompt_tokens"] == 3 + 1 and len(result["rows"]) == 3
    # the random tiny model barely listens to its input, so fitting moves the target's log-probability only a
    # little, but for every edit it moves it up from the editor's prompt (the starting point)
    for row in result["rows"]:
        assert row["fitted_logprob"] > row["editor_logprob"] + 1e-3
        assert 0.0 <= row["fitted_reliability"] <= 1.0 and 0.0 <= row["fitted_generality"] <= 1.0
    assert figures["fitted_minus_editor_logprob"]["mean"] > 0 and len(figures["fitted_logprob"]["ci"]) == 2
    json.dumps(result)  # the result is plain JSON
    assert all(p.requires_grad for p in tiny.model.parameters())  # frozen while the prompt trained, then restored
