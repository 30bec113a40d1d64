"""ModelBackend: mixture/count batches, real grad accumulation, proxy training (DoReMi, DoGE), resume."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch

from raymix.backend import ProxySignals, TrainingBackend
from raymix.errors import CheckpointError, ConfigError, DataError, MethodError, TokenizerMismatchError
from raymix.model.gpt import token_losses
from raymix.train import ModelBackend, from_shards, stratified_counts


def capture_grads(backend: ModelBackend) -> list[list[torch.Tensor]]:
    """Record every parameter's gradient (after clipping) right before each optimizer step."""
    seen: list[list[torch.Tensor]] = []
    original = backend.optimizer.step

    def step(*args, **kwargs):
        seen.append([p.grad.detach().clone() for p in backend._params])
        return original(*args, **kwargs)

    backend.optimizer.step = step
    return seen


def flat_params(backend: ModelBackend) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in backend.model.parameters()])


def group_mean_losses(model, batch, m: int) -> list[torch.Tensor]:
    """Per-group mean token loss of a batch, with graph (brute-force reference)."""
    ids = torch.as_tensor(batch.input_ids)
    losses = token_losses(model, ids)
    return [losses[torch.as_tensor(batch.groups == i)].mean() for i in range(m)]


def test_is_a_training_backend(make_backend):
    b = make_backend()
    assert isinstance(b, TrainingBackend)
    assert (b.m, b.step, b.total_steps, b.batch_size) == (3, 0, 20, 6)
    assert b.model.training


def test_train_with_mixture(make_backend):
    b = make_backend()
    before = flat_params(b)
    stats = b.train(3, np.array([0.5, 0.3, 0.2]))
    assert stats.steps == 3 and b.step == 3
    assert stats.group_examples.sum() == 18
    drawn = np.concatenate([batch.groups for batch in b.train_source.history])
    np.testing.assert_array_equal(stats.group_examples, np.bincount(drawn, minlength=3))
    assert np.all(np.isfinite(stats.group_train_loss[stats.group_examples > 0]))
    assert np.all(np.abs(stats.group_train_loss[stats.group_examples > 0] - np.log(96)) < 1.0)  # ~uniform at init
    assert not torch.equal(before, flat_params(b))
    with pytest.raises(Exception, match="sum"):  # Mixture validation: off the simplex
        b.train(1, np.array([0.5, 0.5, 0.5]))


def test_train_reports_exact_group_means(make_backend):
    b = make_backend()
    state = {k: v.clone() for k, v in b.model.state_dict().items()}
    stats = b.train(1, counts=np.array([1, 2, 3]))
    batch = b.train_source.history[0]
    ref = make_backend().model
    ref.load_state_dict(state)
    with torch.no_grad():
        manual = [float(x) for x in group_mean_losses(ref, batch, 3)]
    np.testing.assert_allclose(stats.group_train_loss, manual, rtol=1e-5)
    np.testing.assert_array_equal(stats.group_examples, [1, 2, 3])


def test_train_with_counts_and_missing_group(make_backend):
    b = make_backend()
    stats = b.train(2, counts=np.array([4, 2, 0]))
    np.testing.assert_array_equal(stats.group_examples, [8, 4, 0])
    assert np.isnan(stats.group_train_loss[2]) and np.isfinite(stats.group_train_loss[:2]).all()
    for batch in b.train_source.history:
        np.testing.assert_array_equal(np.bincount(batch.groups, minlength=3), [4, 2, 0])
    with pytest.raises(ConfigError, match=r"sum to batch_size=6, got \[4, 4, 0\]"):
        b.train(1, counts=np.array([4, 4, 0]))
    with pytest.raises(ConfigError, match="exactly one"):
        b.train(1, np.array([0.5, 0.5, 0.0]), counts=np.array([2, 2, 2]))
    with pytest.raises(ConfigError, match="exactly one"):
        b.train(1)


def test_cannot_train_past_total_steps(make_backend):
    b = make_backend(total_steps=4)
    b.train(3, counts=np.array([2, 2, 2]))
    with pytest.raises(ConfigError, match="from step 3 would reach 5, past total_steps=4"):
        b.train(2, counts=np.array([2, 2, 2]))
    assert b.step == 3
    b.train(1, counts=np.array([2, 2, 2]))
    assert b.step == 4


def test_lr_follows_schedule(make_backend):
    b = make_backend(total_steps=20, warmup_steps=5)  # effective warmup = min(5, 10% of 20) = 2
    assert b.lr == pytest.approx(0.5e-3)
    b.train(1, counts=np.array([2, 2, 2]))
    assert b.optimizer.param_groups[0]["lr"] == pytest.approx(0.5e-3)
    b.train(1, counts=np.array([2, 2, 2]))
    assert b.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
    assert b.lr == b.schedule.lr_at(2) < 1e-3


def test_grad_accumulation_equals_full_batch(make_backend):
    full = make_backend(grad_accumulation=1, grad_clip=0.0)
    accum = make_backend(grad_accumulation=3, grad_clip=0.0)
    sizes: list[int] = []
    accum.model.register_forward_pre_hook(lambda mod, args, kwargs: sizes.append(kwargs["input_ids"].shape[0]),
                                          with_kwargs=True)
    g_full, g_accum = capture_grads(full), capture_grads(accum)
    s_full = full.train(2, counts=np.array([2, 3, 1]))
    s_accum = accum.train(2, counts=np.array([2, 3, 1]))
    assert sizes == [2, 2, 2, 2, 2, 2]  # three real micro-batches of 6/3 rows per step
    for step_full, step_accum in zip(g_full, g_accum, strict=True):
        for a, b in zip(step_full, step_accum, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(s_full.group_train_loss, s_accum.group_train_loss, rtol=1e-5)


def test_stratified_counts_rotate_remainder():
    np.testing.assert_array_equal(stratified_counts(8, 3, offset=0), [3, 3, 2])
    np.testing.assert_array_equal(stratified_counts(8, 3, offset=1), [2, 3, 3])
    np.testing.assert_array_equal(stratified_counts(6, 3, offset=5), [2, 2, 2])
    total = sum(stratified_counts(4, 3, offset=s) for s in range(3))
    np.testing.assert_array_equal(total, [4, 4, 4])


def test_proxy_train_doremi_like(make_backend):
    ref_backend = make_backend()
    proxy = make_backend()
    proxy.set_reference(ref_backend.model_state())  # same init as the proxy (same seed)
    seen: list[ProxySignals] = []
    log_w = np.zeros(3)

    def doremi(signals: ProxySignals) -> np.ndarray:
        nonlocal log_w
        seen.append(signals)
        excess = np.maximum(np.nan_to_num(signals.train_loss - signals.reference_loss), 0.0)
        log_w = log_w + 0.5 * excess
        w = np.exp(log_w - log_w.max())
        return w / w.sum()

    stats = proxy.proxy_train(3, doremi, reference=True)
    assert proxy.step == 3 and stats.steps == 3
    np.testing.assert_array_equal(stats.group_examples, [6, 6, 6])
    # Step 0: proxy and reference have the same weights, so the excess loss is exactly zero.
    np.testing.assert_allclose(seen[0].train_loss, seen[0].reference_loss, rtol=0, atol=1e-6)
    assert seen[0].step == 0 and seen[0].lr == pytest.approx(proxy.schedule.lr_at(0))
    # Later the proxy has moved while the frozen reference has not.
    assert not np.allclose(seen[2].train_loss, seen[2].reference_loss)
    assert seen[0].alignment is None and seen[0].grad_norm is None
    assert not any(p.requires_grad for p in proxy.reference.parameters()) and not proxy.reference.training
    # The reference losses are the reference model's on exactly this step's batch.
    batch = proxy.train_source.history[2]
    with torch.no_grad():
        manual = [float(x) for x in group_mean_losses(ref_backend.model, batch, 3)]
    np.testing.assert_allclose(seen[2].reference_loss, manual, rtol=1e-5)


def test_proxy_objective_is_weighted_group_loss(make_backend):
    """With w = (0.7, 0, 0.3) the update direction is ∇(0.7·L_0 + 0.3·L_2) on the step's batch."""
    for accumulation in (1, 2):
        b = make_backend(grad_clip=0.0, grad_accumulation=accumulation)
        start = {k: v.clone() for k, v in b.model.state_dict().items()}
        grads = capture_grads(b)
        b.proxy_train(1, lambda s: np.array([0.7, 0.0, 0.3]))
        batch = b.train_source.history[0]
        np.testing.assert_array_equal(np.bincount(batch.groups, minlength=3), [2, 2, 2])
        ref = make_backend().model
        ref.load_state_dict(start)
        losses = group_mean_losses(ref, batch, 3)
        (0.7 * losses[0] + 0.3 * losses[2]).backward()
        for got, p in zip(grads[0], ref.parameters(), strict=True):
            torch.testing.assert_close(got, p.grad, rtol=1e-4, atol=1e-7)


def test_proxy_train_alignment_matches_brute_force(make_backend):
    b = make_backend(grad_clip=0.0, batch_size=8)
    start = {k: v.clone() for k, v in b.model.state_dict().items()}
    grads = capture_grads(b)
    seen: list[ProxySignals] = []
    w = np.array([0.2, 0.5, 0.3])

    def doge(signals: ProxySignals) -> np.ndarray:
        seen.append(signals)
        return w

    b.proxy_train(1, doge, alignment=True, val_fraction=0.5)
    train_batch, val_batch = b.train_source.history[0], b.val_source.history[0]
    assert len(train_batch) == 4 and len(val_batch) == 4
    np.testing.assert_array_equal(np.bincount(val_batch.groups, minlength=3), [2, 1, 1])
    # Brute force on the CPU: flatten every per-group gradient and the validation gradient.
    ref = make_backend(batch_size=8).model
    ref.load_state_dict(start)
    params = list(ref.parameters())

    def flat_grad(loss: torch.Tensor) -> torch.Tensor:
        return torch.cat([g.flatten() for g in torch.autograd.grad(loss, params, retain_graph=True)])

    g = torch.stack([flat_grad(loss) for loss in group_mean_losses(ref, train_batch, 3)])
    g_val = flat_grad(token_losses(ref, torch.as_tensor(val_batch.input_ids)).mean())
    np.testing.assert_allclose(seen[0].alignment, (g @ g_val).numpy(), rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(seen[0].grad_norm, g.norm(dim=1).numpy(), rtol=1e-5)
    with torch.no_grad():
        np.testing.assert_allclose(seen[0].train_loss, [float(x) for x in group_mean_losses(ref, train_batch, 3)],
                                   rtol=1e-5)
    # The update reuses the per-group gradients: Σ_i w_i g_i.
    got = torch.cat([x.flatten() for x in grads[0]])
    torch.testing.assert_close(got, torch.as_tensor(w, dtype=torch.float32) @ g, rtol=1e-4, atol=1e-8)


def test_proxy_train_argument_errors(make_backend):
    b = make_backend()
    uniform = lambda s: np.full(3, 1 / 3)  # noqa: E731
    with pytest.raises(MethodError, match="set_reference"):
        b.proxy_train(1, uniform, reference=True)
    with pytest.raises(ConfigError, match="alignment=True needs a validation part"):
        b.proxy_train(1, uniform, alignment=True)
    with pytest.raises(ConfigError, match="only alignment=True uses"):
        b.proxy_train(1, uniform, val_fraction=0.5)
    with pytest.raises(ConfigError, match="val_fraction must lie in"):
        b.proxy_train(1, uniform, alignment=True, val_fraction=1.0)
    with pytest.raises(MethodError, match="finite non-negative"):
        b.proxy_train(1, lambda s: np.array([1.0, np.nan, 0.0]))
    with pytest.raises(ConfigError, match="needs a val_source"):
        make_backend(val=False).proxy_train(1, uniform, alignment=True, val_fraction=0.5)


def test_evaluate_per_group(make_backend):
    b = make_backend()
    val = b.evaluate("val")
    assert val.shape == (3,) and np.isfinite(val).all()
    np.testing.assert_array_equal(b.evaluator.sizes("val"), [8, 8, 8])  # capped at eval_examples
    assert not np.allclose(b.evaluate("val", max_examples=2), val)
    np.testing.assert_allclose(b.perplexity("test"), np.exp(b.evaluate("test")))
    assert b.model.training  # evaluation restores train mode
    b.train(5, counts=np.array([2, 2, 2]))
    assert b.evaluate("val").mean() < val.mean()  # it learns


def _run_mixed(b: ModelBackend) -> list[np.ndarray]:
    out = [b.train(2, np.array([0.6, 0.2, 0.2])).group_train_loss]
    out.append(b.proxy_train(1, lambda s: np.array([0.5, 0.25, 0.25]), alignment=True, val_fraction=0.5)
               .group_train_loss)
    out.append(b.train(1, counts=np.array([1, 2, 3])).group_train_loss)
    out.append(b.evaluate("val"))
    return out


def test_exact_resume(make_backend):
    a = make_backend(grad_accumulation=2)
    a.train(3, np.array([0.2, 0.3, 0.5]))
    a.set_reference(make_backend(seed=7).model_state())
    saved = a.state_dict()
    params_at_save = saved["model"]["gpt_neox.embed_in.weight"].clone()
    continued = _run_mixed(a)
    assert torch.equal(saved["model"]["gpt_neox.embed_in.weight"], params_at_save)  # save is a copy

    b = make_backend(grad_accumulation=2, source_seed=99, seed=5)  # different init and data position
    b.load_state_dict(saved)
    assert b.step == 3 and b.reference is not None
    resumed = _run_mixed(b)
    for x, y in zip(continued, resumed, strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)
    torch.testing.assert_close(flat_params(a), flat_params(b), rtol=0, atol=1e-6)
    assert a.step == b.step == 7


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.gpu
@needs_cuda
def test_cuda_bf16_run_resumes_where_it_stopped(make_backend):
    """The GPU path of exact resume: bf16 autocast over fp32 weights, the state saved as CPU copies and
    restored into a fresh backend with another init and data position.  The data drawn after the resume is
    identical; losses agree to GPU kernel nondeterminism (1e-3 on losses of ~4.5, far below the change a
    wrong data position, optimizer state or LR step makes)."""
    a = make_backend(grad_accumulation=2, device="cuda", precision="bf16")
    assert a.device.type == "cuda" and a.autocast_dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in a.model.parameters())  # fp32 master weights
    a.train(3, np.array([0.2, 0.3, 0.5]))
    a.set_reference(make_backend(seed=7, device="cuda", precision="bf16").model_state())
    saved = a.state_dict()
    assert all(t.device.type == "cpu" for t in saved["model"].values())  # checkpoints never pin GPU memory
    continued = _run_mixed(a)

    b = make_backend(grad_accumulation=2, source_seed=99, seed=5, device="cuda", precision="bf16")
    b.load_state_dict(saved)
    assert b.step == 3 and next(iter(b.optimizer.state.values()))["exp_avg"].device.type == "cuda"
    resumed = _run_mixed(b)
    for x, y in zip(a.train_source.history[-4:], b.train_source.history[-4:], strict=True):
        np.testing.assert_array_equal(x.input_ids, y.input_ids)
    for x, y in zip(continued, resumed, strict=True):
        assert np.isfinite(x).all()
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-3)
    assert a.step == b.step == 7


@pytest.mark.gpu
@needs_cuda
def test_a_cpu_checkpoint_continues_on_a_gpu(make_backend):
    """A trial checkpointed on a CPU node resumes on a GPU node (and evaluates the same within bf16's
    precision): the state dict carries no device."""
    cpu = make_backend()
    cpu.train(4, np.array([0.4, 0.3, 0.3]))
    gpu = make_backend(device="cuda", precision="bf16", seed=5)
    gpu.load_state_dict(cpu.state_dict())
    torch.testing.assert_close(flat_params(gpu).cpu(), flat_params(cpu), rtol=0, atol=0)
    np.testing.assert_allclose(gpu.evaluate("val"), cpu.evaluate("val"), rtol=2e-2)
    fp32 = make_backend(device="cuda", precision="fp32", seed=5)
    fp32.load_state_dict(cpu.state_dict())
    np.testing.assert_allclose(fp32.evaluate("val"), cpu.evaluate("val"), rtol=1e-4)
    assert np.isfinite(gpu.train(2, np.array([0.4, 0.3, 0.3])).group_train_loss).all()


def test_subset_evaluations_are_part_of_the_state(make_backend):
    a = make_backend()
    a.evaluate("val", max_examples=3)
    saved = a.state_dict()
    assert [len(i) for i in saved["eval_subsets"]["val/3"]] == [3, 3, 3]
    b = make_backend(seed=5)  # another seed draws another subset ...
    assert any(not np.array_equal(x, y) for x, y in zip(b.evaluator.subset("val", 3), a.evaluator.subset("val", 3)))
    b.load_state_dict(saved)  # ... until the run's state is restored
    for x, y in zip(b.evaluator.subset("val", 3), a.evaluator.subset("val", 3)):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_allclose(b.evaluate("val", max_examples=3), a.evaluate("val", max_examples=3), atol=1e-6)


def test_load_state_rejects_other_runs(make_backend, model_config):
    saved = make_backend().state_dict()
    other = make_backend(model_cfg=model_config.replace(n_layers=1))
    with pytest.raises(CheckpointError, match="model config"):
        other.load_state_dict(saved)
    with pytest.raises(CheckpointError, match="format"):
        other.load_state_dict({"model": {}})


def test_constructor_checks(make_backend, model_config, train_config, kit):
    with pytest.raises(ConfigError, match="seq_len=17.*context_length is 8"):
        make_backend(model_cfg=model_config.replace(context_length=8))
    with pytest.raises(ConfigError, match="vocab_size is None"):
        make_backend(model_cfg=model_config.replace(vocab_size=None))
    src = kit.ArraySource(kit.make_windows(0, groups=("a", "b")), 6)
    with pytest.raises(DataError, match=r"groups \['a', 'b'\]"):
        ModelBackend(kit.GROUPS, model_config, train_config, src, {})
    small_vocab = model_config.replace(vocab_size=50)  # data ids go up to 95
    with pytest.raises(TokenizerMismatchError, match="vocab_size is 50"):
        make_backend(model_cfg=small_vocab)


def test_from_shards_uses_data_modules(monkeypatch, model_config, train_config, kit):
    """from_shards wires manifest → vocab, samplers and eval sets (data modules faked here)."""
    calls: dict[str, list] = {"open": [], "eval": []}
    manifest = types.SimpleNamespace(groups=list(kit.GROUPS), seq_len=kit.SEQ_LEN, vocab_size=kit.VOCAB, eos_id=0)

    def open_sampler(shards_dir, split="train", batch_size=8, seed=0, streaming="local"):
        calls["open"].append((split, batch_size, seed, streaming))
        return kit.ArraySource(kit.make_windows(seed), batch_size, seed=seed)

    def load_eval_set(shards_dir, split, max_examples_per_group=None):
        calls["eval"].append((split, max_examples_per_group))
        return {g: w[:max_examples_per_group] for g, w in kit.make_windows(3).items()}

    def load_eval_documents(shards_dir, split, max_examples_per_group=None):
        return {g: np.arange(len(w[:max_examples_per_group])) for g, w in kit.make_windows(3).items()}

    for name, attrs in {"manifest": {"load_manifest": lambda d: manifest},
                        "sampler": {"open_sampler": open_sampler},
                        "reader": {"load_eval_set": load_eval_set, "load_eval_documents": load_eval_documents}}.items():
        monkeypatch.setitem(sys.modules, f"raymix.data.{name}", types.SimpleNamespace(**attrs))
    b = from_shards("/shards", model_config.replace(vocab_size=None), train_config)
    assert b.model_config.vocab_size == kit.VOCAB and b.groups == kit.GROUPS
    assert calls["open"] == [("train", 6, 0, "local"), ("val", 6, 1, "local")]
    assert calls["eval"] == [("val", 8), ("test", 8)]
    b.train(1, counts=np.array([2, 2, 2]))
    with pytest.raises(TokenizerMismatchError, match="vocab_size=200"):
        from_shards("/shards", model_config.replace(vocab_size=200), train_config)
    with pytest.raises(ConfigError, match="seq_len=17"):
        from_shards("/shards", model_config.replace(vocab_size=None, context_length=8), train_config.to_dict())
