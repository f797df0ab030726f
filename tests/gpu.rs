//! GPU tests: every entry point of the libtorch shim (`helico::sys`) against the `math`
//! reference on fresh random inputs, gradients included, at bf16 tolerance; and the D3PM LM's
//! packed-equals-unpacked property with varlen FlashAttention on the GPU.
//!
//! Each test is `#[ignore]`d, so CPU CI skips them, and each asserts that a GPU is present, so
//! `cargo test --test tests gpu:: -- --ignored` fails rather than passes vacuously without one.
//! The recorded run: `bench/results/*-gpu-tests.md`.

use helico::data::packing::{PackedBatch, PackedRow, TokenSeq, pack};
use helico::data::seqs::Domain;
use helico::models::d3pm::diffusion::Schedule;
use helico::models::d3pm::model::D3pmLm;
use helico::models::d3pm::{D3pmLmConfig, DiffusionConfig};
use helico::registry::attention::Attention;
use helico::runtime::Runtime;
use helico::sys::{self, SdpaBackend, Varlen};
use tch::{Device, Kind, Tensor, nn};

/// ‖out − ref‖ / ‖ref‖ for bf16 operands against an fp64 reference (METHOD.md: 1e-3..1e-2).
const BF16_REL: f64 = 2e-2;

fn gpu() -> Device {
    assert!(tch::Cuda::is_available(), "no CUDA GPU is usable: these tests must run on a GPU machine");
    Device::Cuda(0)
}

/// Relative error of `x` against the reference `r`, in fp64; NaN never passes.
fn rel(x: &Tensor, r: &Tensor) -> f64 {
    let (x, r) = (x.to_kind(Kind::Double), r.to_kind(Kind::Double));
    let e = (&x - &r).norm().double_value(&[]) / r.norm().double_value(&[]).max(1e-30);
    if e.is_nan() { f64::INFINITY } else { e }
}

fn assert_close(what: &str, x: &Tensor, r: &Tensor, tol: f64) {
    assert_eq!(x.size(), r.size(), "{what}: shapes");
    let e = rel(x, r);
    assert!(e < tol, "{what}: relative error {e:.2e} ≥ {tol:.0e}");
}

/// A leaf copy in `kind` that records gradients.
fn leaf(x: &Tensor, kind: Kind) -> Tensor {
    x.to_kind(kind).detach().set_requires_grad(true)
}

/// The reference: softmax(q kᵀ·scale + bias) v in fp64, masked (false = no attention), with
/// gradients. q, k, v: [B, H, L, Dh].
fn reference(q: &Tensor, k: &Tensor, v: &Tensor, bias: Option<&Tensor>, mask: Option<&Tensor>, scale: f64) -> Tensor {
    let mut s = q.matmul(&k.transpose(-2, -1)) * scale;
    if let Some(b) = bias {
        s += b;
    }
    if let Some(m) = mask {
        s = s.masked_fill(&m.logical_not(), f64::NEG_INFINITY);
    }
    s.softmax(-1, Kind::Double).matmul(v)
}

/// Sequence lengths covering short, odd and longer-than-a-tile sequences.
const LENS: [i64; 7] = [1, 7, 64, 130, 3, 257, 33];

fn cu_seqlens(lens: &[i64], device: Device) -> Tensor {
    let mut cu = vec![0i32];
    for &n in lens {
        cu.push(cu.last().expect("starts at 0") + n as i32);
    }
    Tensor::from_slice(&cu).to_device(device)
}

/// [1, 1, T, T]: true where two packed tokens belong to the same sequence.
fn block_diagonal(lens: &[i64], device: Device) -> Tensor {
    let seg: Vec<i64> = lens.iter().enumerate().flat_map(|(i, &n)| std::iter::repeat_n(i as i64, n as usize)).collect();
    let seg = Tensor::from_slice(&seg).to_device(device);
    seg.unsqueeze(1).eq_tensor(&seg.unsqueeze(0)).unsqueeze(0).unsqueeze(0)
}

#[test]
#[ignore = "needs a CUDA GPU: run on the device with --ignored"]
fn flash_varlen_matches_math_with_gradients() {
    let dev = gpu();
    let (t, h, dh) = (LENS.iter().sum::<i64>(), 4, 64);
    let scale = 1.0 / (dh as f64).sqrt();
    let cu = cu_seqlens(&LENS, dev);
    let seqs = Varlen { cu_seqlens: &cu, max_seqlen: *LENS.iter().max().expect("lengths") };
    for kind in [Kind::BFloat16, Kind::Half] {
        let x = |_: u8| Tensor::randn([t, h, dh], (Kind::Float, dev));
        let (q0, k0, v0, w) = (x(0), x(1), x(2), x(3));
        let (q, k, v) = (leaf(&q0, kind), leaf(&k0, kind), leaf(&v0, kind));
        let fwd = sys::flash_varlen_fwd(&q, &k, &v, seqs, scale, false).expect("flash varlen on the GPU");
        (fwd.out.to_kind(Kind::Float) * &w).sum(Kind::Float).backward();
        // Reference from the same rounded inputs, as one row of T tokens with a block mask.
        // Leaves after the reshape, so their gradients are recorded.
        let row = |x: &Tensor| leaf(&x.to_kind(kind).unsqueeze(0).transpose(1, 2), Kind::Double); // [1, H, T, Dh]
        let (rq, rk, rv) = (row(&q0), row(&k0), row(&v0));
        let out = reference(&rq, &rk, &rv, None, Some(&block_diagonal(&LENS, dev)), scale);
        (&out * w.to_kind(Kind::Double).unsqueeze(0).transpose(1, 2)).sum(Kind::Double).backward();
        let back = |x: &Tensor| x.transpose(1, 2).squeeze_dim(0); // [T, H, Dh]
        assert_close(&format!("{kind:?} out"), &fwd.out, &back(&out), BF16_REL);
        for (name, ours, theirs) in [("dq", &q, &rq), ("dk", &k, &rk), ("dv", &v, &rv)] {
            assert_close(&format!("{kind:?} {name}"), &ours.grad(), &back(&theirs.grad()), BF16_REL);
        }
        // The explicit backward equals what autograd recorded.
        let (dq, dk, dv) = sys::flash_varlen_bwd(&w.to_kind(kind), &q, &k, &v, &fwd, seqs, scale, false)
            .expect("flash varlen backward");
        for (name, explicit, recorded) in [("dq", &dq, q.grad()), ("dk", &dk, k.grad()), ("dv", &dv, v.grad())] {
            assert_close(&format!("{kind:?} explicit {name}"), explicit, &recorded, 1e-3);
        }
        assert_eq!(fwd.lse.size(), [h, t], "lse: [H, T]");
    }
}

#[test]
#[ignore = "needs a CUDA GPU: run on the device with --ignored"]
fn efficient_attention_with_bias_matches_math_with_gradients() {
    let dev = gpu();
    let (b, s, h, dh) = (2, 128, 4, 64);
    let scale = 0.2;
    for kind in [Kind::BFloat16, Kind::Float] {
        let tol = if kind == Kind::Float { 1e-4 } else { BF16_REL };
        let x = || Tensor::randn([b, s, h, dh], (Kind::Float, dev));
        let (q0, k0, v0, w) = (x(), x(), x(), x());
        let bias0 = Tensor::randn([b, h, s, s], (Kind::Float, dev));
        let (q, k, v, bias) = (leaf(&q0, kind), leaf(&k0, kind), leaf(&v0, kind), leaf(&bias0, kind));
        let fwd =
            sys::efficient_attention_fwd(&q, &k, &v, Some(&bias), None, scale, true).expect("efficient attention");
        (fwd.out.to_kind(Kind::Float) * &w).sum(Kind::Float).backward();
        let heads = |x: &Tensor| leaf(&x.to_kind(kind).transpose(1, 2), Kind::Double); // [B, H, S, Dh]
        let (rq, rk, rv) = (heads(&q0), heads(&k0), heads(&v0));
        let rbias = leaf(&bias0.to_kind(kind), Kind::Double);
        let out = reference(&rq, &rk, &rv, Some(&rbias), None, scale);
        (&out * w.to_kind(Kind::Double).transpose(1, 2)).sum(Kind::Double).backward();
        let back = |x: &Tensor| x.transpose(1, 2); // [B, S, H, Dh]
        assert_close(&format!("{kind:?} out"), &fwd.out, &back(&out), tol);
        for (name, ours, theirs) in [("dq", &q, &rq), ("dk", &k, &rk), ("dv", &v, &rv)] {
            assert_close(&format!("{kind:?} {name}"), &ours.grad(), &back(&theirs.grad()), tol);
        }
        assert_close(&format!("{kind:?} dbias"), &bias.grad(), &rbias.grad(), tol);
        let (dq, dk, dv, dbias) =
            sys::efficient_attention_bwd(&w.to_kind(kind), &q, &k, &v, Some(&bias), &fwd, None, scale, true)
                .expect("efficient attention backward");
        for (name, explicit, recorded) in
            [("dq", &dq, q.grad()), ("dk", &dk, k.grad()), ("dv", &dv, v.grad()), ("dbias", &dbias, bias.grad())]
        {
            assert_close(&format!("{kind:?} explicit {name}"), explicit, &recorded, 1e-3);
        }
    }
}

/// The varlen memory-efficient kernel (`runtime.attention = @efficient_varlen`), gradients
/// through libtorch's autograd formula as the model takes them.
#[test]
#[ignore = "needs a CUDA GPU: run on the device with --ignored"]
fn efficient_attention_varlen_matches_math_with_gradients() {
    let dev = gpu();
    let (t, h, dh) = (LENS.iter().sum::<i64>(), 2, 64);
    let cu = cu_seqlens(&LENS, dev);
    let seqs = Varlen { cu_seqlens: &cu, max_seqlen: *LENS.iter().max().expect("lengths") };
    for kind in [Kind::BFloat16, Kind::Float] {
        let tol = if kind == Kind::Float { 1e-4 } else { BF16_REL };
        let x = || Tensor::randn([1, t, h, dh], (Kind::Float, dev));
        let (q0, k0, v0, w) = (x(), x(), x(), x());
        let (q, k, v) = (leaf(&q0, kind), leaf(&k0, kind), leaf(&v0, kind));
        let fwd =
            sys::efficient_attention_fwd(&q, &k, &v, None, Some(seqs), 0.3, true).expect("varlen efficient attention");
        (fwd.out.to_kind(Kind::Float) * &w).sum(Kind::Float).backward();
        let heads = |x: &Tensor| leaf(&x.to_kind(kind).transpose(1, 2), Kind::Double); // [1, H, T, Dh]
        let (rq, rk, rv) = (heads(&q0), heads(&k0), heads(&v0));
        let out = reference(&rq, &rk, &rv, None, Some(&block_diagonal(&LENS, dev)), 0.3);
        (&out * w.to_kind(Kind::Double).transpose(1, 2)).sum(Kind::Double).backward();
        let back = |x: &Tensor| x.transpose(1, 2); // [1, T, H, Dh]
        assert_close(&format!("{kind:?} out"), &fwd.out, &back(&out), tol);
        for (name, ours, theirs) in [("dq", &q, &rq), ("dk", &k, &rk), ("dv", &v, &rv)] {
            assert_close(&format!("{kind:?} {name}"), &ours.grad(), &back(&theirs.grad()), tol);
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU: run on the device with --ignored"]
fn every_sdpa_backend_matches_math_with_gradients() {
    let dev = gpu();
    let (b, h, l, dh) = (2, 4, 96, 64);
    let scale = 1.0 / 8.0;
    let segments = Tensor::from_slice(&[1i64, 1, 2, 3]).repeat([b * l / 4]).view([b, l]).to_device(dev);
    let mask = segments.unsqueeze(2).eq_tensor(&segments.unsqueeze(1)).unsqueeze(1); // [B, 1, L, L]
    let cases = [
        (SdpaBackend::Math, true),
        (SdpaBackend::Flash, false),
        (SdpaBackend::Efficient, true),
        (SdpaBackend::Efficient, false),
        (SdpaBackend::Cudnn, false),
    ];
    for (backend, masked) in cases {
        let x = || Tensor::randn([b, h, l, dh], (Kind::Float, dev));
        let (q0, k0, v0, w) = (x(), x(), x(), x());
        let kind = Kind::BFloat16;
        let (q, k, v) = (leaf(&q0, kind), leaf(&k0, kind), leaf(&v0, kind));
        let m = masked.then_some(&mask);
        let out = sys::sdpa(&q, &k, &v, m, scale, backend).unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        (out.to_kind(Kind::Float) * &w).sum(Kind::Float).backward();
        let r = |x: &Tensor| leaf(&x.to_kind(kind), Kind::Double);
        let (rq, rk, rv) = (r(&q0), r(&k0), r(&v0));
        let expected = reference(&rq, &rk, &rv, None, m, scale);
        (&expected * w.to_kind(Kind::Double)).sum(Kind::Double).backward();
        let what = format!("{backend:?} masked={masked}");
        assert_close(&format!("{what} out"), &out, &expected, BF16_REL);
        for (name, ours, theirs) in [("dq", &q, &rq), ("dk", &k, &rk), ("dv", &v, &rv)] {
            assert_close(&format!("{what} {name}"), &ours.grad(), &theirs.grad(), BF16_REL);
        }
    }
}

/// Rotary embedding (`sys::rope`, its fused NVRTC kernel) in bf16 on the GPU, on a strided
/// view as the model passes it, against the rotate-half definition in fp64, with its gradient
/// (the same kernel, rotating back).
#[test]
#[ignore = "needs a CUDA GPU: run on the device with --ignored"]
fn rope_matches_its_definition_with_gradients() {
    let dev = gpu();
    sys::rope_kernel(0).expect("the fused RoPE kernel compiles and loads on this GPU");
    let (t, h, dh) = (300, 4, 64);
    let qkv0 = Tensor::randn([t, 3 * h * dh], (Kind::Float, dev));
    let angles = Tensor::randn([t, 1, 1, dh / 2], (Kind::Float, dev)) * 100.0;
    let w = Tensor::randn([t, 2, h, dh], (Kind::Float, dev));
    let qkv = leaf(&qkv0, Kind::BFloat16);
    let x = qkv.narrow(1, 0, 2 * h * dh).view([t, 2, h, dh]); // strided rows, as in the model
    let (cos, sin) = (angles.cos().to_kind(Kind::BFloat16), angles.sin().to_kind(Kind::BFloat16));
    let out = sys::rope(&x, &cos, &sin).expect("rope on the GPU");
    (out.to_kind(Kind::Float) * &w).sum(Kind::Float).backward();
    let r = leaf(&qkv0.to_kind(Kind::BFloat16), Kind::Double);
    let rx = r.narrow(1, 0, 2 * h * dh).view([t, 2, h, dh]);
    let (c, s) = (cos.to_kind(Kind::Double), sin.to_kind(Kind::Double));
    let (x1, x2) = (rx.narrow(-1, 0, dh / 2), rx.narrow(-1, dh / 2, dh / 2));
    let expected = Tensor::cat(&[&x1 * &c - &x2 * &s, &x2 * &c + &x1 * &s], -1);
    (&expected * w.to_kind(Kind::Double)).sum(Kind::Double).backward();
    assert_close("rope", &out, &expected, BF16_REL);
    assert_close("rope gradient", &qkv.grad(), &r.grad(), BF16_REL);
}

#[test]
#[ignore = "needs a CUDA GPU: run on the device with --ignored"]
fn autocast_bf16_on_cuda_casts_matmuls_and_restores() {
    let dev = gpu();
    let a = Tensor::randn([64, 64], (Kind::Float, dev));
    assert!(!sys::Autocast::is_enabled(dev).expect("autocast state"));
    {
        let _guard = sys::Autocast::enter(dev, Kind::BFloat16).expect("autocast");
        let y = a.matmul(&a);
        assert_eq!(y.kind(), Kind::BFloat16, "matmul under bf16 autocast");
        assert_close("autocast matmul", &y, &a.matmul(&a), BF16_REL);
        // Precision-sensitive ops stay fp32: layer_norm of a bf16 input gives fp32.
        assert_eq!(y.layer_norm([64], None::<Tensor>, None::<Tensor>, 1e-5, true).kind(), Kind::Float);
    }
    assert!(!sys::Autocast::is_enabled(dev).expect("autocast state"));
    assert_eq!(a.matmul(&a).kind(), Kind::Float);
}

#[test]
#[ignore = "needs a CUDA GPU: run on the device with --ignored"]
fn memory_statistics_and_current_stream() {
    let dev = gpu();
    tch::Cuda::synchronize(0);
    sys::reset_peak_memory(0).expect("reset peak");
    let before = sys::memory_stats(0).expect("memory stats");
    let big = Tensor::ones([64 << 20], (Kind::Float, dev)); // 256 MiB
    let during = sys::memory_stats(0).expect("memory stats");
    assert!(during.allocated - before.allocated >= 256 << 20, "{before:?} → {during:?}");
    assert!(during.peak_allocated >= during.allocated && during.reserved >= during.allocated);
    drop(big);
    let after = sys::memory_stats(0).expect("memory stats");
    assert!(after.allocated < during.allocated && after.peak_allocated >= during.allocated, "{after:?}");
    // libtorch's current stream is the legacy default stream unless someone sets another.
    assert!(sys::current_stream(0).expect("current stream").is_null());
}

/// Fused AdamW and the foreach clip on the GPU equal the same on the CPU (where
/// `train::adamw`'s unit tests hold them to libtorch's `torch::optim::AdamW`), step after step,
/// given the same gradients: each step's CPU gradients are copied into the GPU's, since the
/// two devices' matrix products round differently and Adam's normalisation amplifies that in
/// parameters whose gradients are near zero (the bias before a LayerNorm).
#[test]
#[ignore = "needs a CUDA GPU: run on the device with --ignored"]
fn fused_adamw_and_clip_on_the_gpu_equal_the_cpu() {
    use tch::nn::Module;
    let dev = gpu();
    let cfg = helico::train::adamw::AdamWConfig { lr: 1e-2, weight_decay: 0.1, ..Default::default() };
    let build = |device: Device| {
        tch::manual_seed(11);
        let vs = nn::VarStore::new(device);
        let lin = nn::linear(vs.root() / "fc", 32, 16, Default::default());
        let norm = nn::layer_norm(vs.root() / "norm", vec![16], Default::default());
        (vs, lin, norm)
    };
    let (cpu_vs, cpu_lin, cpu_norm) = build(Device::Cpu);
    let (gpu_vs, gpu_lin, gpu_norm) = build(dev);
    // The same starting point: a GPU draws its init from its own generator.
    tch::no_grad(|| {
        let mut gpu_vars = gpu_vs.variables();
        for (name, value) in cpu_vs.variables() {
            gpu_vars.get_mut(&name).expect("same parameters").copy_(&value);
        }
    });
    let mut cpu_opt = helico::train::adamw::AdamW::new(&cpu_vs, &cfg);
    let mut gpu_opt = helico::train::adamw::AdamW::new(&gpu_vs, &cfg);
    tch::manual_seed(12);
    let x = Tensor::randn([64, 32], (Kind::Float, Device::Cpu));
    let sorted = |vs: &nn::VarStore| {
        let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    for step in 0..10 {
        cpu_opt.zero_grad();
        gpu_opt.zero_grad();
        cpu_norm.forward(&cpu_lin.forward(&x)).square().mean(Kind::Float).backward();
        gpu_norm.forward(&gpu_lin.forward(&x.to_device(dev))).square().mean(Kind::Float).backward();
        tch::no_grad(|| {
            for ((_, c), (_, g)) in sorted(&cpu_vs).iter().zip(sorted(&gpu_vs)) {
                g.grad().copy_(&c.grad());
            }
        });
        let (a, b) = (cpu_opt.clip_grad_norm(0.5).double_value(&[]), gpu_opt.clip_grad_norm(0.5).double_value(&[]));
        assert!((a - b).abs() < 1e-6 * a, "step {step}: gradient norms {a} vs {b}");
        cpu_opt.step(1e-2);
        gpu_opt.step(1e-2);
        for ((name, c), (_, g)) in sorted(&cpu_vs).iter().zip(sorted(&gpu_vs)) {
            assert_close(&format!("step {step}: {name}"), &g.to_device(Device::Cpu), c, 1e-5);
        }
    }
}

fn tiny_config() -> D3pmLmConfig {
    D3pmLmConfig {
        n_layers: 2,
        d_model: 128,
        n_heads: 2,
        ffn_mult: 2,
        dropout: 0.0,
        mask_embedding_dropout: 0.0,
        rope_theta: 10_000.0,
        norm_eps: 1e-5,
        diffusion: DiffusionConfig { timesteps: 10, beta_start: 0.05, beta_end: 0.3 },
    }
}

/// Every parameter redrawn so none hides behind its init (norm gains around 1).
fn randomize(vs: &nn::VarStore) {
    tch::no_grad(|| {
        for (name, mut p) in vs.variables() {
            let noise = p.randn_like() * 0.1;
            let value = if name.contains("norm") && name.ends_with("weight") { noise + 1.0 } else { noise };
            p.copy_(&value);
        }
    });
}

/// The packed-equals-unpacked test on the GPU, for each varlen kernel.
#[test]
#[ignore = "needs a CUDA GPU: run on the device with --ignored"]
fn d3pm_packed_equals_unpacked_with_flash_varlen() {
    packed_equals_unpacked(Attention::FlashVarlen(Default::default()));
}

#[test]
#[ignore = "needs a CUDA GPU: run on the device with --ignored"]
fn d3pm_packed_equals_unpacked_with_efficient_varlen() {
    packed_equals_unpacked(Attention::EfficientVarlen(Default::default()));
}

/// With a varlen kernel in bf16, each packed sequence's logits equal its logits alone, and the
/// packed model agrees with the fp32 `math` model on every real token, in logits and in
/// parameter gradients.
fn packed_equals_unpacked(attention: Attention) {
    let dev = gpu();
    tch::manual_seed(0);
    let cfg = tiny_config();
    let vs = nn::VarStore::new(dev);
    let model = D3pmLm::new(vs.root(), &cfg, 40);
    randomize(&vs);
    let lens = [3, 2, 1, 200, 5, 2, 90, 0, 1, 64, 17];
    let seqs: Vec<TokenSeq> = lens
        .iter()
        .enumerate()
        .map(|(i, &n)| TokenSeq {
            domain: Domain::ALL[i % 3],
            ids: Vec::<i64>::try_from(Tensor::randint_low(4, 40, [n], (Kind::Int64, Device::Cpu))).expect("ids"),
        })
        .collect();
    let window = 128;
    let rows = pack(&seqs, window, 3);
    let batch = PackedBatch::new(&rows, window);
    let schedule = Schedule::new(&cfg.diffusion);
    let t = schedule.sample_t(&batch);
    let x_t = schedule.q_sample(&batch.tokens, &t, &batch.real()).x_t;
    let on_gpu = batch.to_device(dev);
    let (x_t, t) = (x_t.to_device(dev), t.to_device(dev));
    let varlen = Runtime { device: dev, kind: Kind::BFloat16, attention: attention.clone() };
    let varlen = varlen.with_usable_attention(cfg.d_model / cfg.n_heads);
    assert_eq!(varlen.attention, attention, "the kernel must run on this GPU");
    let math = Runtime { device: dev, kind: Kind::Float, attention: Attention::Math(Default::default()) };
    let real = on_gpu.real().unsqueeze(-1); // [B, L, 1]

    let packed = model.forward(&x_t, &t, &on_gpu, &varlen, false); // [B, L, V]
    assert_eq!(packed.kind(), Kind::BFloat16);
    for (b, row) in rows.iter().enumerate() {
        let mut at = 0;
        for &len in &row.seq_lens {
            let alone_row = PackedRow {
                tokens: row.tokens[at..at + len].to_vec(),
                domains: row.domains[at..at + len].to_vec(),
                seq_lens: vec![len],
            };
            let alone = PackedBatch::new(&[alone_row], len).to_device(dev);
            let slice = |x: &Tensor| x.get(b as i64).narrow(0, at as i64, len as i64).unsqueeze(0);
            let logits = model.forward(&slice(&x_t), &slice(&t), &alone, &varlen, false);
            assert_close(&format!("row {b} offset {at} len {len}"), &logits, &slice(&packed), BF16_REL);
            at += len;
        }
    }

    let mut grads = Vec::new();
    for rt in [&varlen, &math] {
        for mut p in vs.variables().into_values() {
            p.zero_grad();
        }
        let logits =
            model.forward(&x_t, &t, &on_gpu, rt, true).to_kind(Kind::Float).masked_fill(&real.logical_not(), 0.0);
        logits.square().mean(Kind::Float).backward();
        let mut g: Vec<(String, Tensor)> = vs.variables().into_iter().map(|(n, p)| (n, p.grad().copy())).collect();
        g.sort_by(|a, b| a.0.cmp(&b.0));
        grads.push((logits.detach(), g));
    }
    let ((varlen_logits, varlen_grads), (math_logits, math_grads)) = (&grads[0], &grads[1]);
    assert_close("varlen bf16 vs math fp32 logits", varlen_logits, math_logits, 5e-2);
    for ((name, a), (_, b)) in varlen_grads.iter().zip(math_grads) {
        assert_close(&format!("gradient of {name}"), a, b, 1e-1);
    }
}

/// Bad input: `flash_varlen` where it cannot run (here the CPU) trains with `sdpa` and says
/// why, once.
#[test]
fn flash_varlen_where_it_cannot_run_falls_back_to_sdpa_once() {
    let w = crate::support::Workspace::new();
    let out = w
        .run(&[
            "run",
            "experiments/tiny.toml",
            "runtime.attention=@flash_varlen",
            "runtime.device=\"cpu\"",
            "train.steps=2",
        ])
        .expect_code(0);
    let note = "note: runtime.attention = @flash_varlen cannot run here: it needs a CUDA GPU and this run is on the CPU; using @sdpa";
    assert_eq!(out.stderr.matches(note).count(), 1, "{}", out.stderr);
}

/// Bad input for data parallelism, on any machine: more GPUs than there are, and a CPU rank.
#[test]
fn data_parallel_bad_input_is_named() {
    let w = crate::support::Workspace::new();
    let visible = if tch::Cuda::is_available() { tch::Cuda::device_count() } else { 0 };
    let many = (visible + 1).max(2).to_string();
    let out = w.run(&["run", "experiments/tiny.toml", "--gpus", &many]).expect_code(2);
    assert!(out.stderr.contains(&format!("--gpus {many} asks for more GPUs than the {visible}")), "{}", out.stderr);
    let out = run_with_env(
        &w,
        &["run", "experiments/tiny.toml", "runtime.device=\"cpu\""],
        &[("WORLD_SIZE", "2"), ("RANK", "0"), ("LOCAL_RANK", "0"), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "1")],
    )
    .expect_code(2);
    assert!(out.stderr.contains("one rank per GPU, but runtime.device = \"cpu\""), "{}", out.stderr);
}

fn run_with_env(w: &crate::support::Workspace, args: &[&str], env: &[(&str, &str)]) -> crate::support::Output {
    let mut cmd = w.helico(args);
    cmd.envs(env.iter().copied());
    crate::support::run(&mut cmd)
}

/// Train losses by step from a run's metrics.jsonl.
fn train_losses(run: &std::path::Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .expect("metrics.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .filter(|r| r["split"] == "train")
        .map(|r| (r["step"].as_u64().expect("step"), r["loss"].as_f64().expect("loss")))
        .collect()
}

/// The same experiment, hence the same global batch, on 1 and 2 GPUs gives the same loss
/// curve within bf16 noise; only rank 0 writes a run directory.
#[test]
#[ignore = "needs 2 CUDA GPUs: run on the device with --ignored"]
fn one_and_two_gpus_give_the_same_loss_curve() {
    gpu();
    assert!(tch::Cuda::device_count() >= 2, "this test needs 2 GPUs");
    let w = crate::support::Workspace::new();
    // Wide enough for several gradient buckets (~3M parameters: a small first one, then one).
    let args = ["run", "experiments/tiny.toml", "train.steps=12", "train.grad_accum=4", "model.d_model=256", "--force"];
    w.run(&args).expect_code(0);
    let two: Vec<&str> = args.iter().copied().chain(["--gpus", "2"]).collect();
    let out = w.run(&two).expect_code(0);
    // Overlapped: every bucket is summed while backward runs.
    let note = regex::Regex::new(
        r"gradients are summed in (\d+) buckets of at most 100 MB; (\d+) of them while backward runs",
    )
    .unwrap();
    let c = note.captures(&out.stderr).unwrap_or_else(|| panic!("no bucket note: {}", out.stderr));
    assert!(c[1] == c[2] && c[1].parse::<usize>().unwrap() >= 2, "{}", &c[0]);
    let after: Vec<&str> = two.iter().copied().chain(["runtime.overlap_grad_reduce=false"]).collect();
    let out = w.run(&after).expect_code(0);
    assert!(out.stderr.contains("; 0 of them while backward runs"), "{}", out.stderr);
    let runs = w.runs();
    assert_eq!(runs.len(), 3, "one run directory per run, none from rank 1: {runs:?}");
    let (one, two, after) = (train_losses(&runs[0]), train_losses(&runs[1]), train_losses(&runs[2]));
    assert_eq!(one.len(), 12);
    assert_eq!(one.iter().map(|x| x.0).collect::<Vec<_>>(), two.iter().map(|x| x.0).collect::<Vec<_>>());
    for ((step, a), (_, b)) in one.iter().zip(&two) {
        assert!((a - b).abs() <= 2e-2 * a.abs(), "step {step}: 1 GPU loss {a}, 2 GPUs {b}");
    }
    // Reduced during or after backward: the same sums, up to the GPU's run-to-run noise (the
    // backward kernels' atomics make no two GPU runs bitwise equal; seen: 3e-4 relative).
    for ((step, a), (_, b)) in two.iter().zip(&after) {
        assert!((a - b).abs() <= 5e-3 * a.abs(), "step {step}: overlapped {a}, after backward {b}");
    }
    let env = crate::support::json(&runs[1].join("env.json"));
    assert_eq!(env["env"]["WORLD_SIZE"], "2", "{env}");
}

/// Out of memory: the error names a micro-batch that fits (probed), and that batch trains.
#[test]
#[ignore = "needs a CUDA GPU: run on the device with --ignored"]
fn out_of_memory_names_a_batch_that_fits() {
    gpu();
    let runs = tempfile::tempdir().unwrap();
    let runs_dir = runs.path().to_str().unwrap();
    let run = |batch: &str| {
        let mut cmd = crate::support::helico();
        cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
            "run",
            "experiments/atomwell.toml",
            "--runs-dir",
            runs_dir,
            "train.steps=1",
            "schedule.warmup_steps=0",
            "train.grad_accum=1",
            "runtime.attention=@flash_varlen",
            &format!("train.batch_size={batch}"),
        ]);
        crate::support::run(&mut cmd)
    };
    // ~2M tokens a micro-batch: far beyond any single GPU's memory at AtomWell's size.
    let out = run("1024").expect_code(2);
    let said = regex::Regex::new(
        r"out of memory on Cuda\(0\) training train.batch_size = 1024 windows of data.window = 2048 tokens \(2097152 tokens per micro-batch\): train.batch_size = (\d+) fits \(one forward and backward tried\); set train.batch_size = (\d+) train.grad_accum = (\d+) to keep the global batch of 1024 windows",
    )
    .unwrap();
    let c = said.captures(&out.stderr).unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(!out.stderr.contains("panicked"), "libtorch's panic is not the message: {}", out.stderr);
    let n: usize = c[1].parse().unwrap();
    assert!(n < 1024 && c[2] == c[1] && c[3].parse::<usize>().unwrap() * n == 1024, "{}", &c[0]);
    run(&c[1]).expect_code(0);
}

/// A rank that dies makes the others stop within seconds instead of hanging on a collective.
#[test]
#[ignore = "needs 2 CUDA GPUs: run on the device with --ignored"]
fn a_dying_rank_stops_the_others() {
    gpu();
    assert!(tch::Cuda::device_count() >= 2, "this test needs 2 GPUs");
    let w = crate::support::Workspace::new();
    let mut cmd =
        w.helico(&["run", "experiments/tiny.toml", "train.steps=100000", "train.grad_accum=2", "--gpus", "2"]);
    cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
    let mut parent = cmd.spawn().expect("helico starts");
    // Wait for rank 1, then for training to be under way (rank 0's metrics).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let rank1 = loop {
        assert!(std::time::Instant::now() < deadline, "rank 1 never trained");
        let trained = w.runs().first().is_some_and(|r| r.join("metrics.jsonl").exists());
        if let Some(pid) = child_with_env(parent.id(), "RANK=1").filter(|_| trained) {
            break pid;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    // SAFETY: signalling a process this test's child started.
    unsafe { libc::kill(rank1, libc::SIGKILL) };
    let killed = std::time::Instant::now();
    let status = parent.wait().expect("helico exits");
    let waited = killed.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut parent.stderr.take().expect("stderr"), &mut stderr).expect("stderr");
    assert!(!status.success(), "{stderr}");
    assert!(waited < std::time::Duration::from_secs(30), "the other rank took {waited:?} to stop");
    assert!(stderr.contains("rank 1 exited"), "{stderr}");
}

/// A child of `parent` whose environment holds `entry` (e.g. "RANK=1"), from /proc.
fn child_with_env(parent: u32, entry: &str) -> Option<i32> {
    for proc in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = proc.file_name().to_string_lossy().parse::<i32>() else { continue };
        let stat = std::fs::read_to_string(proc.path().join("stat")).unwrap_or_default();
        // Field 4 of /proc/PID/stat, after the parenthesised command name, is the parent pid.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid != Some(parent) {
            continue;
        }
        let environ = std::fs::read(proc.path().join("environ")).unwrap_or_default();
        if environ.split(|&b| b == 0).any(|e| e == entry.as_bytes()) {
            return Some(pid);
        }
    }
    None
}
