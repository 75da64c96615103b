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
