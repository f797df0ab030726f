//! The D3PM LM against `bench/d3pm_torch.py`, an independent PyTorch implementation with the
//! same parameter names: our weights and inputs go through safetensors, the Python model runs
//! under `.venv/bin/python`, and the logits must agree in fp32.

use std::path::Path;
use std::process::Command;

use helico::data::packing::{PackedBatch, TokenSeq, pack};
use helico::data::seqs::Domain;
use helico::models::d3pm::diffusion::Schedule;
use helico::models::d3pm::model::D3pmLm;
use helico::models::d3pm::{D3pmLmConfig, DiffusionConfig};
use helico::registry::attention::Attention;
use helico::runtime::Runtime;
use tch::{Device, Kind, Tensor, nn};

const VOCAB_SIZE: i64 = 48;
const WINDOW: usize = 24;
/// fp32 parity: |rust − torch| ≤ ATOL + RTOL·|torch|.
const ATOL: f64 = 1e-5;
const RTOL: f64 = 1e-5;

#[test]
fn d3pm_logits_match_pytorch() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run `make setup`", python.display());
    let dir = tempfile::tempdir().unwrap();

    tch::manual_seed(0);
    let cfg = D3pmLmConfig {
        n_layers: 2,
        d_model: 32,
        n_heads: 4,
        ffn_mult: 2,
        dropout: 0.0,
        mask_embedding_dropout: 0.0,
        rope_theta: 500.0,
        norm_eps: 1e-5,
        diffusion: DiffusionConfig { timesteps: 10, beta_start: 0.05, beta_end: 0.4 },
    };
    let vs = nn::VarStore::new(Device::Cpu);
    let model = D3pmLm::new(vs.root(), &cfg, VOCAB_SIZE);
    // Redraw every parameter (biases and norms included) so none hides behind its init.
    tch::no_grad(|| {
        for (_, mut p) in vs.variables() {
            let value = p.randn_like() * 0.3 + p.detach();
            p.copy_(&value);
        }
    });

    // Several sequences per row, one cropped to the window, padding at the end of a row.
    let lens = [5, 3, 9, 40, 2, 7, 11, 1];
    let seqs: Vec<TokenSeq> = lens
        .iter()
        .enumerate()
        .map(|(i, &n)| TokenSeq {
            domain: Domain::ALL[i % 3],
            ids: Vec::<i64>::try_from(Tensor::randint_low(4, VOCAB_SIZE, [n], (Kind::Int64, Device::Cpu))).unwrap(),
        })
        .collect();
    let rows = pack(&seqs, WINDOW, 7);
    assert!(rows.iter().any(|r| r.seq_lens.len() >= 3));
    let batch = PackedBatch::new(&rows, WINDOW);
    let schedule = Schedule::new(&cfg.diffusion);
    let t = schedule.sample_t(&batch);
    let x_t = schedule.q_sample(&batch.tokens, &t, &batch.real()).x_t;

    let weights = dir.path().join("weights.safetensors");
    let inputs = dir.path().join("inputs.safetensors");
    let config = dir.path().join("config.json");
    vs.save(&weights).unwrap();
    Tensor::write_safetensors(
        &[
            ("x_t", &x_t),
            ("t", &t),
            ("positions", &batch.positions),
            ("domains", &batch.domains),
            ("segments", &batch.segments),
        ],
        &inputs,
    )
    .unwrap();
    let meta = serde_json::json!({ "model": cfg, "vocab_size": VOCAB_SIZE });
    std::fs::write(&config, meta.to_string()).unwrap();

    for torch_kernel in ["math", "sdpa"] {
        let out = dir.path().join(format!("logits_{torch_kernel}.safetensors"));
        let status = Command::new(&python)
            .arg(root.join("bench/d3pm_torch.py"))
            .args(["logits", "--attention", torch_kernel])
            .arg("--config")
            .arg(&config)
            .arg("--weights")
            .arg(&weights)
            .arg("--inputs")
            .arg(&inputs)
            .arg("--out")
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success(), "bench/d3pm_torch.py failed: {status}");
        let expected = Tensor::read_safetensors(&out).unwrap().remove(0).1;
        assert!(expected.abs().mean(Kind::Float).double_value(&[]) > 0.1, "logits should not be near zero");
        for attention in [Attention::Math(Default::default()), Attention::Sdpa(Default::default())] {
            let got = model.forward(&x_t, &t, &batch, &Runtime::cpu(attention.clone()), false);
            assert_eq!(got.size(), expected.size());
            let excess = ((&got - &expected).abs() - expected.abs() * RTOL - ATOL).max().double_value(&[]);
            let max_abs = (&got - &expected).abs().max().double_value(&[]);
            assert!(excess <= 0.0, "{attention:?} vs torch {torch_kernel}: max |diff| {max_abs}");
        }
    }
}
