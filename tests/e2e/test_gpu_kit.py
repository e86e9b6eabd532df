"""The GPU proof kit runs its CPU parts in CI (issue 15): the report generator and every benchmark
in tiny mode on the CPU; its `pytest -m gpu` step skips cleanly without CUDA."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KIT = ROOT / "tests" / "benchmarks" / "gpu_kit.py"


def test_gpu_kit_writes_its_report_on_the_cpu_in_tiny_mode(tmp_path):
    out = tmp_path / "gpu-report.md"
    proc = subprocess.run([sys.executable, str(KIT), "--device", "cpu", "--tiny", "--out", str(out),
                           "--tests", "tests/tasks/test_gpu_paths.py"], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    text = out.read_text()
    for heading in ("# priorlab GPU report", "## pytest -m gpu", "## Numbers", "## Goals"):
        assert heading in text
    assert "0 passed, 0 failed, 4 skipped" in text  # no CUDA here: every gpu test skips, none fails
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    benches = {line.split(" | ")[0].strip("| ") for line in rows}
    assert benches == {"DIP it/s vs plain loop", "packed DIP vs sequential", "StyleGAN2 sampling"}
    assert any("compile=on" in line for line in rows)  # the compiled step is measured beside the eager one
    assert "priorlab's DIP loop >= 0.95 x the plain loop" in text


def test_gpu_kit_without_cuda_says_so_in_one_line():
    proc = subprocess.run([sys.executable, str(KIT), "--skip-tests"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and "no CUDA device here" in proc.stderr and "Traceback" not in proc.stderr
