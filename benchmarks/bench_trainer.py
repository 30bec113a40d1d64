"""Trainer throughput: ModelBackend.train vs a plain PyTorch loop, and per-call evaluate() cost.

Both sides train the same preset from the same initialization on the same pre-built batches (an
in-memory replay source), with the same AdamW parameter groups, gradient clipping and warmup/cosine
schedule.  Repeats alternate between the two sides so machine load drifts hit both equally; the
reported figure is the ratio of median throughputs (issue 4 target: >= 0.95).

    .venv/bin/python benchmarks/bench_trainer.py                 # tiny preset, CPU
    .venv/bin/python benchmarks/bench_trainer.py --preset pythia-160m --batch-size 8 --device cuda
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from raymix.data.batch import Batch
from raymix.model import ModelConfig, build_model, build_optimizer
from raymix.model.optim import WarmupCosineSchedule
from raymix.train import ModelBackend, TrainConfig

GROUPS = ("code", "books", "web")


class ReplaySource:
    """A BatchSource that replays a fixed list of batches in order (ignores the mixture)."""

    def __init__(self, batches: list[Batch], seq_len: int) -> None:
        self.groups = GROUPS
        self.batch_size = len(batches[0])
        self.seq_len = seq_len
        self.batches = batches
        self.position = 0

    def next_batch(self, mixture=None, *, counts=None, batch_size=None) -> Batch:
        batch = self.batches[self.position % len(self.batches)]
        self.position += 1
        if counts is not None:  # proxy training asks for per-group counts: relabel the replayed rows
            counts = np.asarray(counts, dtype=np.int64)
            return Batch(input_ids=batch.input_ids[: int(counts.sum())],
                         groups=np.repeat(np.arange(len(counts)), counts))
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.position = int(state["position"])


def make_batches(n: int, batch_size: int, seq_len: int, vocab: int, seed: int = 0) -> list[Batch]:
    rng = np.random.default_rng(seed)
    return [Batch(input_ids=rng.integers(0, vocab, size=(batch_size, seq_len), dtype=np.int64),
                  groups=rng.integers(0, len(GROUPS), size=batch_size, dtype=np.int64)) for _ in range(n)]


def plain_loop(model, optimizer, schedule, batches: list[Batch], device: torch.device,
               autocast_dtype: torch.dtype | None, grad_clip: float) -> None:
    """The reference: the textbook PyTorch training step with the library's mean cross-entropy."""
    for batch in batches:
        ids = torch.as_tensor(batch.input_ids).to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            logits = model(input_ids=ids[:, :-1], use_cache=False).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        schedule.apply()
        optimizer.step()
        schedule.step()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=None, help="window length; default context + 1")
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--eval-repeats", type=int, default=5)
    parser.add_argument("--proxy", type=int, default=0, metavar="STEPS",
                        help="also time STEPS proxy-training steps of DoReMi (reference forward) and DoGE "
                             "(per-group gradients, val_fraction 0.5) against as many plain steps")
    args = parser.parse_args()

    mc = ModelConfig.from_preset(args.preset, vocab_size=args.vocab)
    seq_len = args.seq_len or mc.context_length + 1
    total = args.steps * (args.repeats + 1) + 10 + 4 * args.proxy
    tc = TrainConfig(batch_size=args.batch_size, total_steps=total, device=args.device, threads=args.threads,
                     eval_examples=64, eval_batch_size=16)
    batches = make_batches(args.steps, args.batch_size, seq_len, args.vocab)
    eval_rng = np.random.default_rng(1)
    eval_sets = {"val": {g: eval_rng.integers(0, args.vocab, size=(64, seq_len)) for g in GROUPS}}
    backend = ModelBackend(GROUPS, mc, tc, ReplaySource(batches, seq_len), eval_sets,
                           val_source=ReplaySource(make_batches(4, args.batch_size, seq_len, args.vocab, seed=2), seq_len))
    device, autocast_dtype = backend.device, backend.autocast_dtype

    model = build_model(mc, device, seed=tc.seed)
    optimizer = build_optimizer(model, lr=tc.lr, weight_decay=tc.weight_decay, betas=(tc.adam_beta1, tc.adam_beta2),
                                eps=tc.adam_eps)
    schedule = WarmupCosineSchedule(optimizer, lr=tc.lr, min_lr=tc.min_lr, warmup_steps=tc.effective_warmup_steps,
                                    total_steps=total)
    uniform = np.full(len(GROUPS), 1 / len(GROUPS))

    # Warm-up (allocator, kernels, autocast caches) on both sides, untimed.
    backend.train(min(3, args.steps), uniform)
    plain_loop(model, optimizer, schedule, batches[:3], device, autocast_dtype, tc.grad_clip)
    tokens = args.steps * args.batch_size * (seq_len - 1)

    def time_ours() -> float:
        sync(device)
        t0 = time.perf_counter()
        backend.train(args.steps, uniform)
        sync(device)
        return tokens / (time.perf_counter() - t0)

    def time_plain() -> float:
        sync(device)
        t0 = time.perf_counter()
        plain_loop(model, optimizer, schedule, batches, device, autocast_dtype, tc.grad_clip)
        sync(device)
        return tokens / (time.perf_counter() - t0)

    # ABBA order within each pair, and the median of per-pair ratios: on a shared, loaded machine the
    # load changes between pairs far more than within one.
    ours, plain, ratios = [], [], []
    for r in range(args.repeats):
        if r % 2 == 0:
            a, b = time_ours(), time_plain()
        else:
            b, a = time_plain(), time_ours()
        ours.append(a)
        plain.append(b)
        ratios.append(a / b)

    eval_ms = {}
    for n in (8, 16, 32, 64):
        backend.evaluate("val", max_examples=n)  # builds and caches the selection
        times = []
        for _ in range(args.eval_repeats):
            sync(device)
            t0 = time.perf_counter()
            backend.evaluate("val", max_examples=n)
            sync(device)
            times.append(1000 * (time.perf_counter() - t0))
        eval_ms[n] = statistics.median(times)

    proxy_ms = {}
    if args.proxy:
        backend.set_reference(backend.model_state())
        uniform_rule = lambda signals: uniform  # noqa: E731  (the weights do not change the work done)
        kinds = {"train": lambda: backend.train(args.proxy, uniform),
                 "doremi": lambda: backend.proxy_train(args.proxy, uniform_rule, reference=True),
                 "doge": lambda: backend.proxy_train(args.proxy, uniform_rule, alignment=True, val_fraction=0.5)}
        backend.proxy_train(1, uniform_rule, reference=True)  # untimed warm-up of both proxy paths
        backend.proxy_train(1, uniform_rule, alignment=True, val_fraction=0.5)
        for _ in range(2):  # one timed pass of each kind, twice, interleaved; the faster pass is reported
            for name, fn in kinds.items():
                sync(device)
                t0 = time.perf_counter()
                fn()
                sync(device)
                proxy_ms.setdefault(name, []).append(1000 * (time.perf_counter() - t0) / args.proxy)

    ratio = statistics.median(ratios)
    print(f"device={device} threads={torch.get_num_threads()} preset={args.preset} vocab={args.vocab} "
          f"batch={args.batch_size}x{seq_len} steps/repeat={args.steps} repeats={args.repeats} "
          f"precision={'bf16' if autocast_dtype else 'fp32'}")
    print(f"ModelBackend.train  median {statistics.median(ours):10.0f} tokens/s  (runs: "
          f"{', '.join(f'{x:.0f}' for x in ours)})")
    print(f"plain PyTorch loop  median {statistics.median(plain):10.0f} tokens/s  (runs: "
          f"{', '.join(f'{x:.0f}' for x in plain)})")
    print(f"ratio ModelBackend / plain = {ratio:.3f} (median of per-pair ratios: "
          f"{', '.join(f'{x:.3f}' for x in ratios)}; target >= 0.95)")
    print(f"one optimizer step (one training batch of {args.batch_size} windows): "
          f"{1000 * args.batch_size * (seq_len - 1) / statistics.median(ours):.1f} ms")
    for n, ms in eval_ms.items():
        print(f"evaluate(max_examples={n:2d}) over {len(GROUPS)} groups: {ms:8.1f} ms per call")
    for name, ms in proxy_ms.items():
        print(f"{name:6s} step: {min(ms):7.1f} ms (passes: {', '.join(f'{x:.1f}' for x in ms)}; "
              f"x{min(ms) / min(proxy_ms['train']):.2f} of a training step)")
    print(json.dumps({"proxy_ms": proxy_ms, "tokens_per_s_backend": statistics.median(ours), "tokens_per_s_plain": statistics.median(plain),
                      "ratio": ratio, "pair_ratios": ratios, "eval_ms": eval_ms, "device": str(device)}))


if __name__ == "__main__":
    main()
