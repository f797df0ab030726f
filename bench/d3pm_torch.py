"""An independent PyTorch implementation of helico's D3PM LM (src/models/d3pm/model.rs).

Same math and same parameter names as the Rust model, so a helico checkpoint (safetensors)
loads with ``load_state_dict(strict=True)`` and the logits agree in fp32 to ~1e-5. helico's
oracle test (tests/d3pm.rs) runs the ``logits`` command below; ``helico bench d3pm`` runs the
``bench`` command (training throughput, eager and torch.compile, on helico's own packed
batches); other benchmarks import the module:

    from d3pm_torch import D3pmConfig, D3pmLM
    model = D3pmLM(D3pmConfig(vocab_size=64)).cuda()
    logits = model(x_t, t, positions, domains, segments)       # all [B, L]

Shapes: B rows of L packed tokens, V vocabulary, D width, H heads of Dh = D / H.
Inputs: x_t, t, positions, domains, segments: [B, L] int64, where ``segments`` numbers the
packed sequences of a row from 1 (0 = padding) and ``positions`` restart at 0 per sequence.
With ``kernel="varlen"`` the inputs are the T real tokens end to end ([T] int64) and
``segments`` is ``(cu_seqlens, max_seqlen)``: FlashAttention-2 varlen, no padding work.
"""

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

MASK = 1  # helico's [MASK] token id (src/data/vocab.rs)
INIT_STD = 0.02  # GPT-2 init (nanoGPT model.py _init_weights)
TIME_MAX_PERIOD = 10_000.0  # guided-diffusion nn.py timestep_embedding
N_DOMAINS = 3  # SMILES 0, protein 1, RNA 2


@dataclass
class D3pmConfig:
    """helico's D3pmLmConfig (model section), flattened, plus the vocabulary size."""

    vocab_size: int
    n_layers: int = 12
    d_model: int = 1024
    n_heads: int = 16
    ffn_mult: int = 4
    dropout: float = 0.0
    mask_embedding_dropout: float = 0.1
    rope_theta: float = 10_000.0
    norm_eps: float = 1e-5
    timesteps: int = 100

    @classmethod
    def from_helico(cls, model: dict, vocab_size: int) -> "D3pmConfig":
        """From the JSON of a helico D3pmLmConfig (``diffusion`` nested)."""
        fields = {k: v for k, v in model.items() if k not in ("diffusion", "type")}
        return cls(vocab_size=vocab_size, timesteps=model["diffusion"]["timesteps"], **fields)


def segment_mask(segments: torch.Tensor) -> torch.Tensor:
    """[B, L] segment ids -> [B, 1, L, L] bool, True where query and key share a segment."""
    return (segments[:, :, None] == segments[:, None, :])[:, None]


def rope_tables(positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype):
    """cos, sin: [B, 1, L, Dh] for the rotate-half (GPT-NeoX) layout, angles in fp32."""
    half = head_dim // 2
    inv_freq = torch.exp(
        torch.arange(half, dtype=torch.float32, device=positions.device) * (-2.0 * math.log(theta) / head_dim)
    )
    angles = positions.float()[..., None] * inv_freq  # [B, L, Dh/2]
    angles = torch.cat([angles, angles], dim=-1)[:, None]  # [B, 1, L, Dh]
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def timestep_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """[...] int steps -> [..., dim] fp32 features cat(cos, sin)."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=t.device) * (-math.log(TIME_MAX_PERIOD) / half))
    args = t.float()[..., None] * freqs
    return torch.cat([args.cos(), args.sin()], dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: D3pmConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(self, x, cos, sin, mask, kernel: str):
        if kernel == "varlen":
            from torch.nn.attention.varlen import varlen_attn

            t, d = x.shape
            qkv = self.qkv(x).view(t, 3, self.n_heads, d // self.n_heads)  # [T, 3, H, Dh]
            v = qkv[:, 2]
            q, k = (apply_rope(qkv[:, i], cos, sin).to(v.dtype) for i in (0, 1))  # [T, H, Dh]
            cu_seqlens, max_seqlen = mask
            o = varlen_attn(q, k, v, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen)  # [T, H, Dh]
            return self.out(o.reshape(t, d))
        b, l, d = x.shape
        qkv = self.qkv(x).view(b, l, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        q, k, v = apply_rope(qkv[0], cos, sin), apply_rope(qkv[1], cos, sin), qkv[2]  # [B, H, L, Dh]
        if kernel == "math":
            scores = (q.float() @ k.float().transpose(-2, -1)) / math.sqrt(q.shape[-1])
            probs = scores.masked_fill(~mask, float("-inf")).softmax(-1)
            o = probs.to(v.dtype) @ v
        elif kernel == "sdpa":
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            raise ValueError(f"attention kernel {kernel!r} is not one of math, sdpa")
        return self.out(o.transpose(1, 2).reshape(b, l, d))


class FeedForward(nn.Module):
    def __init__(self, cfg: D3pmConfig):
        super().__init__()
        self.fc1 = nn.Linear(cfg.d_model, cfg.ffn_mult * cfg.d_model)
        self.fc2 = nn.Linear(cfg.ffn_mult * cfg.d_model, cfg.d_model)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, cfg: D3pmConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.attn = Attention(cfg)
        self.norm2 = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.ffn = FeedForward(cfg)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x, cos, sin, mask, kernel: str):
        x = x + self.dropout(self.attn(self.norm1(x), cos, sin, mask, kernel))
        return x + self.dropout(self.ffn(self.norm2(x)))


class D3pmLM(nn.Module):
    def __init__(self, cfg: D3pmConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.domain_emb = nn.Embedding(N_DOMAINS, cfg.d_model)
        self.time_mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_model), nn.SiLU(), nn.Linear(cfg.d_model, cfg.d_model))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.final_norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.reset_parameters()

    def reset_parameters(self):
        """helico's init: N(0, 0.02) weights, zero biases, LayerNorm 1/0, and the residual
        outputs (attn.out, ffn.fc2) at 0.02 / sqrt(2 n_layers)."""
        for name, p in self.named_parameters():
            if "norm" in name:
                nn.init.ones_(p) if name.endswith("weight") else nn.init.zeros_(p)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
            elif name.endswith(("attn.out.weight", "ffn.fc2.weight")):
                nn.init.normal_(p, 0.0, INIT_STD / math.sqrt(2 * self.cfg.n_layers))
            else:
                nn.init.normal_(p, 0.0, INIT_STD)

    def forward(self, x_t, t, positions, domains, segments, kernel: str = "sdpa"):
        """All inputs [B, L] int64 -> logits [B, L, V]. ``self.training`` enables dropout and
        mask-embedding dropout (a MASK position's token embedding zeroed with probability p)."""
        cfg = self.cfg
        tok = self.tok_emb(x_t)
        if self.training and cfg.mask_embedding_dropout > 0:
            drop = (x_t == MASK) & (torch.rand(x_t.shape, device=x_t.device) < cfg.mask_embedding_dropout)
            tok = tok.masked_fill(drop[..., None], 0.0)
        h = tok + self.domain_emb(domains) + self.time_mlp(timestep_features(t, cfg.d_model).to(tok.dtype))
        cos, sin = rope_tables(positions, cfg.d_model // cfg.n_heads, cfg.rope_theta, h.dtype)
        mask = segments if kernel == "varlen" else segment_mask(segments)
        for block in self.blocks:
            h = block(h, cos, sin, mask, kernel)
        return self.final_norm(h) @ self.tok_emb.weight.t()


def logits_command(args):
    from safetensors.torch import load_file, save_file

    with open(args.config) as f:
        meta = json.load(f)
    model = D3pmLM(D3pmConfig.from_helico(meta["model"], meta["vocab_size"]))
    model.load_state_dict(load_file(args.weights), strict=True)
    model.eval()
    inputs = load_file(args.inputs)
    with torch.no_grad():
        logits = model(
            inputs["x_t"], inputs["t"], inputs["positions"], inputs["domains"], inputs["segments"], kernel=args.attention
        )
    save_file({"logits": logits.contiguous()}, args.out)


def alpha_bar(timesteps: int, beta_start: float, beta_end: float) -> torch.Tensor:
    """helico's linear-beta absorbing schedule: alpha_bar[t] for t = 0..T (fp64)."""
    betas = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, 0)])


def d3pm_loss(model, batch, kernel: str, abar: torch.Tensor):
    """helico's training loss on one micro-batch: one t per sequence, absorbing noise on content
    tokens, fp32 cross-entropy over the masked ones."""
    tokens, segments = batch["tokens"], batch["segments"]
    if kernel == "varlen":
        real = batch["real"]
        tokens, seg_ids, positions, domains = (batch[k][real] for k in ("tokens", "segments", "positions", "domains"))
        # one t per sequence: segments are numbered per row, so offset them by row.
        row = torch.arange(segments.shape[0], device=tokens.device)[:, None].expand_as(segments)[real]
        seq = row * (segments.shape[1] + 1) + seg_ids
        layout = (batch["cu_seqlens"], batch["max_seqlen"])
    else:
        seq = torch.arange(segments.shape[0], device=tokens.device)[:, None] * (segments.shape[1] + 1) + segments
        positions, domains, layout = batch["positions"], batch["domains"], segments
    table = torch.randint(1, abar.numel(), (segments.numel() + segments.shape[0],), device=tokens.device)
    t = table[seq]
    maskable = (tokens > 3) if kernel == "varlen" else (tokens > 3) & (segments > 0)
    masked = (torch.rand(tokens.shape, device=tokens.device) < (1 - abar[t])) & maskable
    x_t = tokens.masked_fill(masked, MASK)
    logits = model(x_t, t, positions, domains, layout, kernel=kernel)
    nll = -logits.float().log_softmax(-1).gather(-1, tokens[..., None]).squeeze(-1)
    w = masked.float()
    return (nll * w).sum() / w.sum().clamp_min(1)


def bench_command(args):
    """Times training steps (forward, backward, clip, fused AdamW) of the model on a pool of
    helico's packed micro-batches, cycled, for each requested variant; writes JSON results."""
    from safetensors.torch import load_file

    with open(args.meta) as f:
        meta = json.load(f)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    pool_raw = load_file(args.pool)
    pool = []
    for i in range(meta["pool"]):
        batch = {k: pool_raw[f"{k}.{i}"].to(dev) for k in ("tokens", "positions", "domains", "segments", "cu_seqlens")}
        batch.update({k: batch[k].long() for k in ("tokens", "positions", "domains", "segments")})
        batch["real"] = batch["segments"] > 0
        # An upper bound keeps torch.compile from specialising on each batch's longest sequence.
        batch["max_seqlen"] = meta["window"]
        batch["n_real"] = int(batch["real"].sum())
        pool.append(batch)
    m = meta["model"]
    cfg = D3pmConfig.from_helico(m, meta["vocab_size"])
    abar = alpha_bar(cfg.timesteps, m["diffusion"]["beta_start"], m["diffusion"]["beta_end"]).float().to(dev)
    opt_cfg = meta["optimizer"]
    accum = meta["grad_accum"]
    results = []
    for variant in args.variants.split(","):
        mode, kernel = variant.split("-")
        torch.manual_seed(0)
        model = D3pmLM(cfg).to(dev).train()
        opt = torch.optim.AdamW(
            model.parameters(),
            lr=opt_cfg["lr"],
            betas=tuple(opt_cfg["betas"]),
            eps=opt_cfg["eps"],
            weight_decay=opt_cfg["weight_decay"],
            fused=dev.type == "cuda",
        )
        run = torch.compile(model, dynamic=kernel == "varlen") if mode == "compile" else model

        def step(s):
            total = 0
            for i in range(accum):
                batch = pool[(s * accum + i) % len(pool)]
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                    loss = d3pm_loss(run, batch, kernel, abar)
                (loss / accum).backward()
                total += batch["n_real"]
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), meta["clip_grad_norm"])
            ok = torch.isfinite(loss.detach() + norm).item()  # helico's one host sync per step
            opt.step()
            opt.zero_grad(set_to_none=True)
            return total, ok

        sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
        started = time.perf_counter()
        for s in range(args.warmup):
            step(s)
        sync()
        warmup_secs = time.perf_counter() - started
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times, tokens = [], []
        for s in range(args.warmup, args.warmup + args.steps):
            sync()
            t0 = time.perf_counter()
            n, ok = step(s)
            sync()
            times.append(time.perf_counter() - t0)
            tokens.append(n)
            assert ok, f"{variant}: non-finite loss at step {s}"
        results.append(
            {
                "implementation": "pytorch",
                "mode": mode,
                "kernel": kernel,
                "step_secs": times,
                "tokens": tokens,
                "warmup_secs": warmup_secs,
                "peak_allocated_bytes": torch.cuda.max_memory_allocated() if dev.type == "cuda" else None,
            }
        )
        print(f"pytorch {variant}: {sum(tokens) / sum(times):,.0f} tok/s", file=sys.stderr, flush=True)
        del model, opt, run
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    with open(args.out, "w") as f:
        json.dump({"torch": torch.__version__, "cuda": torch.version.cuda, "results": results}, f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("logits", help="evaluate a helico checkpoint on saved inputs")
    p.add_argument("--config", required=True, help='JSON {"model": D3pmLmConfig, "vocab_size": V}')
    p.add_argument("--weights", required=True, help="safetensors state dict (helico parameter names)")
    p.add_argument("--inputs", required=True, help="safetensors with x_t, t, positions, domains, segments")
    p.add_argument("--out", required=True, help="safetensors to write {logits}")
    p.add_argument("--attention", default="math", choices=["math", "sdpa"])
    p.set_defaults(run=logits_command)
    p = sub.add_parser("bench", help="time training steps on helico's packed batches (helico bench d3pm)")
    p.add_argument("--meta", required=True, help="JSON written by helico bench: model, optimizer, pool layout")
    p.add_argument("--pool", required=True, help="safetensors of the micro-batches (tokens, domains, segments)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--variants", default="eager-sdpa,eager-varlen,compile-sdpa,compile-varlen")
    p.add_argument("--out", required=True, help="JSON to write the results to")
    p.set_defaults(run=bench_command)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
