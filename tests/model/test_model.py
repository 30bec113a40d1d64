"""Model presets, per-token/per-group losses, optimizer groups, LR schedule, evaluation, configs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from raymix.data.reader import spread_subset, window_documents
from raymix.errors import CheckpointError, ConfigError, DataError, SplitNotFoundError, TokenizerMismatchError
from raymix.model import (
    GroupEvaluator,
    ModelConfig,
    WarmupCosineSchedule,
    available_presets,
    average_perplexity,
    build_model,
    build_optimizer,
    count_parameters,
    decay_groups,
    neox_config,
    perplexity,
    resolve_attention,
    token_losses,
)
from raymix.model.gpt import check_token_ids
from raymix.train.config import TrainConfig

GROUPS = ("code", "books", "web")
VOCAB = 96


def make_windows(seed, n=4, seq_len=17):
    rng = np.random.default_rng(seed)
    return {g: rng.integers(0, VOCAB, size=(n, seq_len), dtype=np.int64) for g in GROUPS}


def analytic_neox_params(mc: ModelConfig) -> int:
    """GPT-NeoX parameter count from the architecture (untied embeddings, biases everywhere)."""
    d, f, v = mc.d_model, mc.ffn_width, mc.padded_vocab_size
    per_layer = 2 * 2 * d + (3 * d * d + 3 * d) + (d * d + d) + (f * d + f) + (d * f + d)
    return 2 * v * d + mc.n_layers * per_layer + 2 * d


@pytest.mark.parametrize("name", ["tiny", "small", "medium"])
def test_cpu_presets_build_and_count(name):
    mc = ModelConfig.from_preset(name, vocab_size=8192)
    model = build_model(mc, "cpu", seed=0)
    n = count_parameters(model)
    assert n == analytic_neox_params(mc)
    assert model.config.max_position_embeddings == mc.context_length
    assert all(p.dtype == torch.float32 for p in model.parameters())
    if name == "tiny":
        assert 1_000_000 < n < 5_000_000  # "a few M parameters with an 8k vocab"


def test_pythia_160m_preset_matches_published_size():
    from transformers import GPTNeoXForCausalLM

    mc = ModelConfig.from_preset("pythia-160m", vocab_size=50277)  # GPT-NeoX tokenizer
    cfg = neox_config(mc)
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size) == (12, 768, 12, 3072)
    assert cfg.max_position_embeddings == 2048 and cfg.use_parallel_residual and not cfg.tie_word_embeddings
    assert cfg.rope_parameters["partial_rotary_factor"] == 0.25
    assert cfg.vocab_size == 50304  # padded to a multiple of 128 like Pythia
    with torch.device("meta"):  # no memory, no init cost
        model = GPTNeoXForCausalLM(cfg)
    assert count_parameters(model) == 162_322_944  # EleutherAI/pythia-160m's parameter count
    assert count_parameters(model) == analytic_neox_params(mc)


def test_preset_list_and_unknown_name():
    assert {"tiny", "small", "medium", "pythia-160m"} <= set(available_presets())
    with pytest.raises(ConfigError, match="'huge'.*valid presets"):
        ModelConfig.from_preset("huge")


def test_same_seed_same_init_and_roundtrip(model_config):
    a, b = build_model(model_config, seed=3), build_model(model_config, seed=3)
    c = build_model(model_config, seed=4)
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    assert ModelConfig.from_dict(model_config.to_dict()) == model_config


@pytest.mark.parametrize("changes, pattern", [
    ({"d_model": 130, "n_heads": 4}, "d_model=130"),
    ({"n_layers": 0}, "n_layers must be a positive integer, got 0"),
    ({"attention": "flash3"}, "'flash3'"),
    ({"rotary_pct": 1.5}, "rotary_pct must lie in .*1.5"),
    ({"vocab_size": 1}, "vocab_size must be an integer >= 2.*got 1"),
])
def test_bad_model_config_raises_quoting_value(changes, pattern):
    with pytest.raises(ConfigError, match=pattern):
        ModelConfig.from_preset("tiny", **changes)


def test_vocab_mismatch_raises():
    assert ModelConfig.from_preset("tiny").with_vocab(500).vocab_size == 500
    with pytest.raises(TokenizerMismatchError, match="vocab_size=8192.*vocab_size=500"):
        ModelConfig.from_preset("tiny", vocab_size=8192).with_vocab(500)
    with pytest.raises(TokenizerMismatchError, match=r"\[0, 96\].*vocab_size is 96"):
        check_token_ids(np.array([[0, 96]]), 96)
    with pytest.raises(ConfigError, match="vocab_size is None"):
        build_model(ModelConfig.from_preset("tiny"))


def test_forward_backward_and_token_losses_match_manual(model_config):
    model = build_model(model_config, seed=0)
    ids = torch.as_tensor(make_windows(0, n=3)["code"])
    losses = token_losses(model, ids)
    assert losses.shape == (3, ids.shape[1] - 1) and losses.dtype == torch.float32
    # Manual: logits of position t score token t+1.
    logits = model(input_ids=ids).logits
    manual = torch.stack([F.cross_entropy(logits[b, :-1], ids[b, 1:], reduction="none") for b in range(3)])
    torch.testing.assert_close(losses, manual, rtol=1e-5, atol=1e-6)
    # And transformers' own (mean) loss agrees.
    hf = model(input_ids=ids, labels=ids).loss
    torch.testing.assert_close(losses.mean(), hf, rtol=1e-5, atol=1e-6)
    losses.mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_group_evaluator_matches_manual_per_group_mean(model_config):
    model = build_model(model_config, seed=0)
    sets = {"val": {g: w[: 3 + i] for i, (g, w) in enumerate(make_windows(5, n=6).items())}}
    ev = GroupEvaluator(GROUPS, sets, batch_size=4)  # batches cross group boundaries
    got = ev.evaluate(model, "val")
    for i, g in enumerate(GROUPS):
        ids = torch.as_tensor(sets["val"][g])
        with torch.no_grad():
            logits = model(input_ids=ids).logits
        manual = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1)).item()
        assert got[i] == pytest.approx(manual, rel=1e-5)
    # max_examples: the subset of N windows per group that ev.subset names.
    sub = ev.evaluate(model, "val", max_examples=2)
    picked = {g: sets["val"][g][idx] for g, idx in zip(GROUPS, ev.subset("val", 2))}
    ev2 = GroupEvaluator(GROUPS, {"val": picked}, batch_size=3)
    np.testing.assert_allclose(sub, ev2.evaluate(model, "val"), rtol=1e-6)
    assert not np.allclose(sub, got)
    np.testing.assert_array_equal(ev.sizes("val"), [3, 4, 5])
    # per-window losses (what eval-noise bootstraps resample) average to the same per-group losses
    per_window = ev.window_losses(model, "val")
    assert [len(v) for v, _ in per_window] == [3, 4, 5] and all(len(d) == len(v) for v, d in per_window)
    np.testing.assert_allclose([v.mean() for v, _ in per_window], got, rtol=1e-6)
    assert model.training  # mode restored


def test_window_documents_and_spread_subset_cover_documents_before_repeating():
    eos = 0
    w = np.ones((7, 5), dtype=np.int64)
    w[2, 4] = eos  # doc 0 = windows 0-2 (its EOS ends window 2), doc 1 = windows 3-5, doc 2 = window 6
    w[5, 1] = eos
    np.testing.assert_array_equal(window_documents(w, eos), [0, 0, 0, 1, 1, 1, 2])
    np.testing.assert_array_equal(window_documents(w, None), np.arange(7))
    docs = np.repeat(np.arange(5), [6, 1, 3, 2, 4])  # 16 windows, 5 documents of unequal length
    for seed in range(20):
        five, eight = (spread_subset(docs, n, np.random.default_rng(seed)) for n in (5, 8))
        assert sorted(docs[five]) == [0, 1, 2, 3, 4]  # one window of every document
        per_doc = np.bincount(docs[eight], minlength=5)
        assert per_doc.min() >= 1 and per_doc.max() <= 2  # second windows only after every document has one
        assert set(five) <= set(eight)  # a smaller subset is a prefix of a larger one
        np.testing.assert_array_equal(five, spread_subset(docs, 5, np.random.default_rng(seed)))  # fixed by the seed
    assert len({tuple(spread_subset(docs, 5, np.random.default_rng(s))) for s in range(20)}) > 1
    np.testing.assert_array_equal(spread_subset(docs, 99, np.random.default_rng(0)), np.arange(16))


def test_subset_evaluation_is_spread_over_documents_and_restorable(model_config):
    # Per group: 12 windows, the first 8 one long document, then 4 one-window documents (EOS = token 0).
    model = build_model(model_config, seed=0)
    rng = np.random.default_rng(0)
    sets = {g: rng.integers(1, VOCAB, size=(12, 17), dtype=np.int64) for g in GROUPS}
    for w in sets.values():
        w[7:, -1] = 0
    ev = GroupEvaluator(GROUPS, {"val": sets}, eos_id=0, subset_seed=3)
    for idx in ev.subset("val", 5):
        assert len(idx) == 5 and len(set(window_documents(sets["code"], 0)[idx])) == 5  # 5 documents, not 1
    picked = GroupEvaluator(GROUPS, {"val": {g: sets[g][i] for g, i in zip(GROUPS, ev.subset("val", 5))}})
    np.testing.assert_allclose(ev.evaluate(model, "val", max_examples=5), picked.evaluate(model, "val"), rtol=1e-6)
    # A run resumed with another seed evaluates the saved subset, not a fresh draw.
    other = GroupEvaluator(GROUPS, {"val": sets}, eos_id=0, subset_seed=4)
    assert any(not np.array_equal(a, b) for a, b in zip(other.subset("val", 5), ev.subset("val", 5)))
    other = GroupEvaluator(GROUPS, {"val": sets}, eos_id=0, subset_seed=4)
    other.load_subset_state(ev.subset_state())
    np.testing.assert_allclose(other.evaluate(model, "val", max_examples=5), ev.evaluate(model, "val", max_examples=5))
    with pytest.raises(DataError, match="one document id per window"):
        GroupEvaluator(GROUPS, {"val": sets}, documents={"val": {"code": np.arange(3)}})
    with pytest.raises(CheckpointError, match="subset"):
        GroupEvaluator(GROUPS, {"val": {g: w[:3] for g, w in sets.items()}}).load_subset_state(ev.subset_state())


def test_evaluator_restores_mode_handles_empty_group_and_missing_split(model_config):
    model = build_model(model_config, seed=0)
    windows = make_windows(5, n=4)
    windows["web"] = windows["web"][:0]
    ev = GroupEvaluator(GROUPS, {"val": windows}, max_examples=2)
    model.train()
    out = ev.evaluate(model, "val")
    assert model.training
    assert np.isfinite(out[:2]).all() and np.isnan(out[2])
    model.eval()
    ev.evaluate(model, "val")
    assert not model.training
    with pytest.raises(SplitNotFoundError, match="'test'"):
        ev.evaluate(model, "test")


def test_average_perplexity_is_mean_of_group_ppl():
    losses = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(perplexity(losses), np.exp(losses))
    assert average_perplexity(losses) == pytest.approx((math.e + math.e**2 + math.e**3) / 3)
    assert average_perplexity(losses) > math.exp(losses.mean())  # not exp of mean loss


def test_no_weight_decay_on_biases_and_layernorm(model_config):
    model = build_model(model_config, seed=0)
    decay, no_decay = decay_groups(model, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    decay_names = {names[id(p)] for p in decay["params"]}
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert all(n.endswith(".bias") or "layernorm" in n or "layer_norm" in n for n in no_decay_names)
    assert all(not n.endswith(".bias") and "norm" not in n for n in decay_names)
    assert "gpt_neox.final_layer_norm.weight" in no_decay_names
    assert "gpt_neox.layers.0.input_layernorm.weight" in no_decay_names
    assert {"gpt_neox.embed_in.weight", "lm_head.weight"} <= decay_names
    assert len(decay_names) + len(no_decay_names) == len(list(model.parameters()))
    opt = build_optimizer(model, lr=1e-3, weight_decay=0.01)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0]


def test_warmup_cosine_schedule_values_and_state():
    s = WarmupCosineSchedule(None, lr=1e-3, min_lr=1e-4, warmup_steps=10, total_steps=110)
    assert s.lr_at(0) == pytest.approx(1e-4)
    assert s.lr_at(4) == pytest.approx(5e-4)
    assert s.lr_at(9) == pytest.approx(1e-3)
    assert s.lr_at(59) == pytest.approx(1e-4 + 0.5 * 9e-4)  # halfway through the cosine
    assert s.lr_at(109) == pytest.approx(1e-4)  # last step runs at min_lr
    assert s.lr_at(500) == pytest.approx(1e-4)
    lrs = [s.lr_at(i) for i in range(9, 110)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.0)
    sched = WarmupCosineSchedule(opt, lr=1e-3, min_lr=1e-4, warmup_steps=10, total_steps=110)
    for _ in range(7):
        sched.apply()
        sched.step()
    other = WarmupCosineSchedule(opt, lr=1e-3, min_lr=1e-4, warmup_steps=10, total_steps=110)
    other.load_state_dict(sched.state_dict())
    assert other.apply() == pytest.approx(8e-4) and opt.param_groups[0]["lr"] == pytest.approx(8e-4)
    with pytest.raises(ConfigError, match="min_lr=0.1"):
        WarmupCosineSchedule(None, lr=1e-3, min_lr=0.1, warmup_steps=0, total_steps=5)


def test_train_config_warmup_scaling_and_validation():
    assert TrainConfig(total_steps=5000).effective_warmup_steps == 500  # paper App. D
    assert TrainConfig(total_steps=200).effective_warmup_steps == 20  # capped at 10% for short runs
    assert TrainConfig(total_steps=200, warmup_max_fraction=1.0).effective_warmup_steps == 200
    tc = TrainConfig(batch_size=4, total_steps=10)
    assert TrainConfig.from_dict(tc.to_dict()) == tc
    assert TrainConfig(threads=3).resolve_threads() == 3
    assert TrainConfig(precision="auto").autocast_dtype(torch.device("cpu")) is None
    assert TrainConfig(precision="bf16").autocast_dtype(torch.device("cpu")) == torch.bfloat16


@pytest.mark.parametrize("changes, pattern", [
    ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
    ({"batch_size": 8, "grad_accumulation": 3}, "grad_accumulation=3 must divide batch_size=8"),
    ({"lr": -1.0}, r"lr must lie in .*-1.0"),
    ({"min_lr": 1.0}, r"min_lr must lie in \[0.0, 0.0005\], got 1.0"),
    ({"precision": "fp16"}, "'fp16'"),
    ({"device": "tpu"}, "'tpu'"),
    ({"eval_examples": 0}, "eval_examples must be a positive integer or None, got 0"),
    ({"threads": 0}, "threads must be a positive integer or None, got 0"),
    ({"total_steps": 2.5}, "total_steps must be a positive integer, got 2.5"),
])
def test_bad_train_config_raises_quoting_value(changes, pattern):
    with pytest.raises(ConfigError, match=pattern):
        TrainConfig(**changes)
    with pytest.raises(ConfigError, match="no field"):
        TrainConfig.from_dict({"batchsize": 3})


def test_attention_resolves_to_sdpa_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("CPU-only expectation")
    assert resolve_attention("auto") == "sdpa"
    assert resolve_attention("auto", "cpu") == "sdpa"
    assert resolve_attention("eager") == "eager"
    with pytest.raises(ConfigError, match="flash-attn package and a CUDA device"):
        resolve_attention("flash_attention_2", "cpu")
    mc = ModelConfig.from_preset("tiny", vocab_size=VOCAB)
    assert build_model(mc).config._attn_implementation == "sdpa"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bf16_autocast_and_attention_choice():
    from raymix.model.gpt import flash_attention_available

    expected = "flash_attention_2" if flash_attention_available() else "sdpa"
    assert resolve_attention("auto", "cuda") == expected
    mc = ModelConfig.from_preset("small", vocab_size=VOCAB)
    model = build_model(mc, "cuda", seed=0)
    assert model.config._attn_implementation == expected
    assert all(p.dtype == torch.float32 for p in model.parameters())  # fp32 master weights
    ids = torch.as_tensor(make_windows(0, n=4, seq_len=65)["code"], device="cuda")
    losses = token_losses(model, ids, torch.bfloat16)
    assert losses.dtype == torch.float32 and torch.isfinite(losses).all()
    ref = token_losses(model, ids, None)
    torch.testing.assert_close(losses, ref, rtol=5e-2, atol=5e-2)  # bf16 compute, fp32 loss
    losses.mean().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters())
