"""scripts/profile_groups.py: a py-spy raw profile grouped by the deepest selfparam frame."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SCRIPT = Path(__file__).parents[1] / "scripts" / "profile_groups.py"
_SPEC = importlib.util.spec_from_file_location("profile_groups", _SCRIPT)
profile_groups = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(profile_groups)


def test_samples_go_to_the_deepest_selfparam_frame():
    lines = [
        "<module> (selfparam/__main__.py:5);inject (/x/selfparam/methods/selfparam/method.py:80);"
        "forward (torch/nn/modules/module.py:1736) 30",
        "<module> (selfparam/__main__.py:5);inject (/x/selfparam/methods/selfparam/method.py:80);"
        "train (/x/selfparam/training/trainer.py:12);backward (torch/_tensor.py:5) 50",
        "<module> (selfparam/__main__.py:5);inject (/x/selfparam/methods/selfparam/method.py:91) 20",
        "_bootstrap (threading.py:1) 7",
        "",
    ]
    counts = profile_groups.group(lines)
    assert counts == {"inject (selfparam/methods/selfparam/method.py)": 50,
                      "train (selfparam/training/trainer.py)": 50, "outside selfparam": 7}


def test_a_line_without_a_count_is_refused():
    with pytest.raises(ValueError, match="no trailing sample count"):
        profile_groups.group(["main (selfparam/cli.py:1) many"])
