"""Shared by the benchmark scripts: how much memory a task used."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_mb() -> float:
    """Peak resident memory of this process (VmHWM: reset on exec, unlike ru_maxrss)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> dict:
    """Reset this process's peak (VmHWM) to its current resident memory, so that ``peak_mb()``
    afterwards minus the returned ``rss_mb`` is what the code in between added; ``peak_mb`` is the
    peak before the reset. Where the kernel does not allow it, the peak is left as it is."""
    before = peak_mb()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    rss = None
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    except OSError:
        pass
    return {"peak_mb": before, "rss_mb": rss if rss is not None else before}


def best_run(script: str, task: str, workdir, repeat: int, env: dict | None = None) -> dict:
    """Run ``script --task TASK --workdir DIR`` in fresh processes; the fastest run's JSON result."""
    import json
    import os
    import subprocess
    import sys

    best = None
    for _ in range(repeat):
        out = subprocess.run([sys.executable, script, "--task", task, "--workdir", str(workdir)],
                             check=False, capture_output=True, text=True, env=env or dict(os.environ))
        if out.returncode != 0:
            raise SystemExit(f"task {task} failed:\n{out.stderr[-3000:]}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        best = r if best is None or r["seconds"] < best["seconds"] else best
    return best
