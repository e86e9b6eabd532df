"""CUDA paths of the tasks that the GPU kit proves (issue 15); they skip where CUDA is absent:
`pytest -m gpu`. (DIP placement, amp, channels_last and packed fits: tests/cluster/test_gpu_scheduling.py.)"""

from __future__ import annotations

import pytest

TINY = dict(size=32, width=8, depth=2, iterations=60, log_every=20, snapshots=[60])


def _cuda():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return torch


@pytest.mark.gpu
def test_compiled_dip_step_with_cuda_graphs_matches_the_eager_fit():
    _cuda()
    from priorlab.tasks.dip import DipParams, run
    from priorlab.tasks.sink import MemorySink

    eager = run(DipParams(**TINY, device="cuda"), MemorySink())
    graphs = run(DipParams(**TINY, device="cuda", compile=True), MemorySink())
    assert graphs["status"] == "done" and graphs["device"].startswith("cuda")
    assert abs(graphs["best_psnr"] - eager["best_psnr"]) < 0.5  # fused kernels: close, not bit-equal


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_stylegan_renders_on_cuda_as_on_the_cpu(precision):
    torch = _cuda()
    from priorlab.tasks.stylegan.jobs.common import Renderer
    from priorlab.tasks.stylegan.jobs.sample import SampleParams

    spec = dict(generator="random:16", n=4, seed=3, precision=precision)
    cpu, gpu = Renderer(SampleParams(**spec, device="cpu")), Renderer(SampleParams(**spec, device="cuda"))
    z = cpu.z(4, "test")  # the same numbers on every device
    assert torch.equal(z, gpu.z(4, "test").cpu())
    a, b = cpu.images_z(z), gpu.images_z(z).cpu()  # (4, 3, 16, 16) in [0, 1]
    assert b.shape == (4, 3, 16, 16)
    assert (a - b).abs().max() < (0.05 if precision == "bf16" else 1e-3)


@pytest.mark.gpu
def test_stylegan_sample_job_runs_on_cuda():
    _cuda()
    from priorlab.tasks.registry import KINDS
    from priorlab.tasks.sink import MemorySink

    kind = KINDS["stylegan-sample"]
    summary = kind.run(kind.params(generator="random:32", n=8, batch_size=8, device="cuda"), MemorySink())
    assert summary["status"] == "done" and summary["device"].startswith("cuda")
