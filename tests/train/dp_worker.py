"""One rank of data-parallel runs for tests/train/test_data_parallel.py (started W times, gloo, env://).

    RANK=r WORLD_SIZE=W MASTER_ADDR=127.0.0.1 MASTER_PORT=p python dp_worker.py JOB.json OUT_DIR

``JOB.json``: {"backend": BackendSpec dict, "runs": [{"run": RunSpec dict, "handoff": path of a saved
driver state or null, "reference": path of a saved ``model_state()`` or null}, ...]}, trained one after
another.  Writes ``OUT_DIR/rank{r}.json`` ({run name: RunResult and a digest of the final weights}) and,
on rank 0, ``OUT_DIR/{run name}.pt`` (the driver's final state).  With WORLD_SIZE unset it runs alone.
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

    os.makedirs(out_dir, exist_ok=True)
    out, rank = {}, 0
    for item in job["runs"]:
        spec = RunSpec.from_dict(item["run"])
        backend = build_backend(BackendSpec.from_dict(job["backend"]), spec)
        handoff, reference = (torch.load(item[k], weights_only=False) if item.get(k) else None
                              for k in ("handoff", "reference"))
        driver = RunDriver(spec, backend, handoff_state=handoff, reference_state=reference)
        result = driver.run_to_end()
        rank = backend.collective.rank
        weights = torch.cat([p.detach().reshape(-1).double() for p in backend.model.parameters()])
        out[spec.name] = {"rank": rank, "world_size": backend.collective.world_size, "result": result.to_dict(),
                          "weights_head": weights[:64].tolist()}
        if rank == 0:
            torch.save(driver.state_dict(), os.path.join(out_dir, f"{spec.name}.pt"))
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(out, f)
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
