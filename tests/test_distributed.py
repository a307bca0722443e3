"""Data-parallel training through `accelerate launch` with 2 CPU processes (gloo)."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil  # accelerate's own dependency
import pytest

SCRIPT = Path(__file__).parent / "scripts" / "ddp_inject.py"


@pytest.mark.long
@pytest.mark.skipif(shutil.which("accelerate") is None and not (Path(sys.executable).parent / "accelerate").exists(),
                    reason="accelerate CLI not installed")
def test_two_cpu_processes_train_in_lockstep(tmp_path):
    launcher = str(Path(sys.executable).parent / "accelerate")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # `--multi_gpu` makes accelerate spawn the processes with torchrun; with no GPU the trainer's
    # Accelerator(cpu=True) then joins them over gloo (`--cpu` alone would expect mpirun). Port 0: a free
    # port, not torchrun's fixed 29500, which another test run on the machine may hold.
    launch = subprocess.Popen([launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                               "--main_process_port", "0", "--mixed_precision", "no", "--dynamo_backend", "no",
                               str(SCRIPT), str(tmp_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                              start_new_session=True)
    try:
        _, stderr = launch.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        # the whole tree: torchrun starts each training process in a session of its own, so killing the
        # launcher's group alone would leave them running, holding the pipes `communicate` waits on
        for child in psutil.Process(launch.pid).children(recursive=True):
            child.kill()
        os.killpg(launch.pid, signal.SIGKILL)
        launch.communicate()
        raise
    assert launch.returncode == 0, stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 for r in ranks)
    # each process trained on its half (10 examples -> 5 each: 3 steps/epoch of batch 2, 2 epochs)
    assert all(r["examples"] == 10 for r in ranks)
    assert [r["steps"] for r in ranks] == [6, 6]
    # gradients were averaged: both replicas end with the same weights, which moved
    assert ranks[0]["digest"] == pytest.approx(ranks[1]["digest"], rel=1e-6)
    assert ranks[0]["last_loss"] < ranks[0]["first_loss"]
