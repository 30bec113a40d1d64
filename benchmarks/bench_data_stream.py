"""Benchmark: can the data path feed training? Tokens/s of the mixture sampler (local reader and Ray Data
streams), time to first batch, peak memory — against what the tiny CPU model consumes.

    .venv/bin/python benchmarks/bench_data_stream.py                 # builds shards from the embedded corpus
    .venv/bin/python benchmarks/bench_data_stream.py --shards DIR    # an existing shard directory
    .venv/bin/python benchmarks/bench_data_stream.py --trainer-tokens-per-s 15000   # skip timing the model

The trainer rate is measured by timing forward+backward+AdamW of a GPT-NeoX (2 layers, d=128) from
``transformers`` on the same batch shape (DATA_SOURCES.md: ≈11–20k tokens/s on 2 cores).  The stream must
sustain ≥ 20× that rate.  The mixture changes every batch (as online methods do between rounds).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REQUIRED_RATIO = 20.0


def rss_mib() -> float:
    """Current resident set size of this process in MiB (from /proc; falls back to peak)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mib()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(out: Path, seq_len: int, vocab_size: int, max_docs: int | None) -> Path:
    from raymix.data.shards import build_shards

    try:
        from raymix.data.embedded import EmbeddedSource

        source = EmbeddedSource()
    except ImportError:
        sys.exit("raymix.data.embedded is not available; pass --shards DIR")
    t0 = time.perf_counter()
    build_shards(source, out, vocab_size=vocab_size, seq_len=seq_len, max_docs_per_group=max_docs,
                 progress=lambda m: print(f"  build: {m}", file=sys.stderr))
    print(f"built shards in {time.perf_counter() - t0:.1f}s -> {out}")
    return out


def measure_sampler(shards: Path, streaming: str, batch_size: int, batches: int, seed: int) -> dict[str, float]:
    from raymix.data.sampler import open_sampler

    rng = np.random.default_rng(seed)
    rss0 = rss_mib()
    t0 = time.perf_counter()
    sampler = open_sampler(shards, "train", batch_size=batch_size, seed=seed, streaming=streaming,
                           shuffle_window=2048)
    m = sampler.m
    first = sampler.next_batch(rng.dirichlet(np.ones(m)))
    ttfb = time.perf_counter() - t0
    tokens = first.input_ids.size
    t1 = time.perf_counter()
    for _ in range(batches):
        tokens += sampler.next_batch(rng.dirichlet(np.ones(m))).input_ids.size
    steady = (tokens - first.input_ids.size) / (time.perf_counter() - t1)
    sampler.close()
    return {"time_to_first_batch_s": ttfb, "tokens_per_s": steady, "rss_delta_mib": rss_mib() - rss0,
            "peak_rss_mib": peak_rss_mib()}


def measure_trainer(vocab_size: int, seq_len: int, batch_size: int, steps: int) -> float:
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(0)
    cfg = GPTNeoXConfig(vocab_size=vocab_size, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=512, max_position_embeddings=seq_len, attn_implementation="sdpa")
    model = GPTNeoXForCausalLM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4)
    x = torch.randint(0, vocab_size, (batch_size, seq_len))

    def step() -> None:
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(2):  # warm-up (allocator, kernels)
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size * seq_len / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", type=Path, default=None, help="existing shard directory (default: build one)")
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument("--max-docs-per-group", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--batches", type=int, default=2000, help="batches timed per reader after the first")
    ap.add_argument("--trainer-tokens-per-s", type=float, default=None,
                    help="trainer consumption rate; default: time the tiny GPT-NeoX here")
    ap.add_argument("--trainer-steps", type=int, default=10)
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="raymix-bench-") as tmp:
        import ray

        from raymix.data import streaming  # noqa: F401  (guard before Ray Data runs)
        from raymix.logs import setup_logging, tame_ray_loggers

        setup_logging(None)  # Ray's and Ray Data's INFO lines would bury the figures
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, configure_logging=False)
        tame_ray_loggers()
        shards = args.shards or build(Path(tmp) / "shards", args.seq_len, args.vocab_size, args.max_docs_per_group)
        from raymix.data.manifest import load_manifest

        man = load_manifest(shards)
        print(f"shards: {len(man.groups)} groups, seq_len {man.seq_len}, "
              f"{sum(s.sequences for s in man.stats['train'].values()):,} train windows")
        results = {}
        for streaming_kind in ("local", "ray"):
            results[streaming_kind] = r = measure_sampler(shards, streaming_kind, args.batch_size, args.batches, 0)
            print(f"{streaming_kind:>5} reader: {r['tokens_per_s']:>14,.0f} tokens/s   first batch "
                  f"{r['time_to_first_batch_s']:6.2f} s   RSS +{r['rss_delta_mib']:.0f} MiB (peak {r['peak_rss_mib']:.0f} MiB)")
        ray.shutdown()
        if args.trainer_tokens_per_s is None:
            trainer = measure_trainer(man.vocab_size, man.seq_len, args.batch_size, args.trainer_steps)
            print(f"trainer (GPT-NeoX 2x128, batch {args.batch_size}x{man.seq_len}, fwd+bwd+AdamW): "
                  f"{trainer:,.0f} tokens/s (measured)")
        else:
            trainer = args.trainer_tokens_per_s
            print(f"trainer: {trainer:,.0f} tokens/s (given)")
        ok = True
        for kind, r in results.items():
            ratio = r["tokens_per_s"] / trainer
            ok &= ratio >= REQUIRED_RATIO
            print(f"{kind:>5} reader / trainer = {ratio:,.0f}x  ({'OK' if ratio >= REQUIRED_RATIO else 'TOO SLOW'}, "
                  f"need >= {REQUIRED_RATIO:.0f}x)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
