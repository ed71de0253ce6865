"""Run one of the project's scripts with the CPU stand-in for CUDA graphs installed
(tests/cuda_graphs.py), so that its `--compile graphs` runs on the CPU:

  python tests/cpu_graphs_run.py train_eval_cifar.py --device cpu --compile graphs ...

scripts/gpu_smoke.sh --rehearse runs its graphs parts this way (torchrun too: each rank is
this script). Processes the script spawns do not have the stand-in."""

import runpy
import sys

from tests.cuda_graphs import cpu_cuda_graphs

if __name__ == "__main__":
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    with cpu_cuda_graphs():
        runpy.run_path(script, run_name="__main__")
