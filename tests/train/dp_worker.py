"""One rank of a data-parallel run for tests/train/test_data_parallel.py (started W times, gloo, env://).

    RANK=r WORLD_SIZE=W MASTER_ADDR=127.0.0.1 MASTER_PORT=p python dp_worker.py JOB.json OUT_DIR

``JOB.json``: {"backend": BackendSpec dict, "run": RunSpec dict, "handoff": path of a state.pt or null}.
Writes ``OUT_DIR/rank{r}.json`` (the RunResult and a digest of the final weights) and, on rank 0,
``OUT_DIR/state.pt`` (the driver's final state).  With WORLD_SIZE unset it runs alone (the reference).
"""

from __future__ import annotations

import json
import os
import sys

import torch
import torch.distributed as dist


def run(job: dict, out_dir: str) -> dict:
    from raymix.methods.driver import BackendSpec, RunDriver, build_backend
    from raymix.methods.runs import RunSpec

    spec = RunSpec.from_dict(job["run"])
    backend = build_backend(BackendSpec.from_dict(job["backend"]), spec)
    handoff = torch.load(job["handoff"], weights_only=False) if job.get("handoff") else None
    driver = RunDriver(spec, backend, handoff_state=handoff)
    result = driver.run_to_end()
    rank = backend.collective.rank
    weights = torch.cat([p.detach().reshape(-1).double() for p in backend.model.parameters()])
    out = {"rank": rank, "world_size": backend.collective.world_size, "result": result.to_dict(),
           "weights_sum": float(weights.sum()), "weights_abs_sum": float(weights.abs().sum()),
           "weights_head": weights[:64].tolist()}
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(out, f)
    if rank == 0:
        torch.save(driver.state_dict(), os.path.join(out_dir, "state.pt"))
    return out


def main() -> None:
    job_path, out_dir = sys.argv[1], sys.argv[2]
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("gloo", rank=int(os.environ["RANK"]), world_size=world)
    with open(job_path) as f:
        job = json.load(f)
    try:
        run(job, out_dir)
    finally:
        if world > 1:
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
