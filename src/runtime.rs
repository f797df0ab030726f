//! Runtime choices: device, precision, attention kernel, threads and gradient-reduce overlap. They change speed, not
//! results beyond the parity tolerance, so they never enter the config hash (STYLE H5).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::registry::attention::Attention;

/// Where and how the run executes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(extend("x-nonsemantic" = true))]
pub struct RuntimeConfig {
    /// `auto` (first GPU if one is usable, else CPU), `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// Compute precision: `auto` (bf16 on GPU, fp32 on CPU), `fp32` or `bf16`.
    pub precision: Precision,
    /// The attention kernel.
    pub attention: Attention,
    /// libtorch intra-op threads (0 keeps libtorch's default).
    #[schemars(range(min = 0))]
    pub threads: i64,
    /// Under data parallelism, sum gradient buckets while backward still runs (true), or all
    /// of them after it (false: for comparison; same result).
    pub overlap_grad_reduce: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            device: "auto".into(),
            precision: Precision::Auto,
            attention: Attention::default(),
            threads: 0,
            overlap_grad_reduce: true,
        }
    }
}

/// Compute precision of activations; master weights and optimiser state stay fp32.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// bf16 on GPU, fp32 on CPU.
    #[default]
    Auto,
    /// fp32 throughout.
    Fp32,
    /// bf16 activations with fp32 master weights, losses and softmax statistics.
    Bf16,
}

impl RuntimeConfig {
    pub fn problems(&self) -> Vec<(String, String)> {
        let ok = matches!(self.device.as_str(), "auto" | "cpu" | "cuda")
            || self.device.strip_prefix("cuda:").is_some_and(|n| n.parse::<usize>().is_ok());
        if ok {
            Vec::new()
        } else {
            vec![("device".into(), format!("device \"{}\" is not one of auto, cpu, cuda, cuda:N", self.device))]
        }
    }
}

/// The resolved runtime: what model code receives (never part of any `XConfig`).
#[derive(Debug, Clone)]
pub struct Runtime {
    pub device: tch::Device,
    /// Activation dtype: `Float` or `BFloat16`. Parameters stay fp32.
    pub kind: tch::Kind,
    pub attention: Attention,
}

impl Runtime {
    /// The device and dtype a run uses. A GPU that was asked for but is not usable is not an
    /// error: the run says so once and uses the CPU.
    pub fn resolve(cfg: &RuntimeConfig) -> Runtime {
        if cfg.threads > 0 {
            tch::set_num_threads(cfg.threads as i32);
        }
        let cuda = tch::Cuda::is_available();
        let device = match cfg.device.as_str() {
            "cpu" => tch::Device::Cpu,
            "auto" if cuda => tch::Device::Cuda(0),
            "auto" => tch::Device::Cpu,
            d => {
                let index = d.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()).unwrap_or(0);
                if cuda && index < tch::Cuda::device_count() as usize {
                    tch::Device::Cuda(index)
                } else {
                    eprintln!(
                        "note: runtime.device = \"{d}\" but no such GPU is usable ({} visible): running on the CPU",
                        if cuda { tch::Cuda::device_count() } else { 0 }
                    );
                    tch::Device::Cpu
                }
            }
        };
        let kind = match (cfg.precision, device) {
            (Precision::Fp32, _) | (Precision::Auto, tch::Device::Cpu) => tch::Kind::Float,
            (Precision::Bf16, _) | (Precision::Auto, _) => tch::Kind::BFloat16,
        };
        Runtime { device, kind, attention: cfg.attention.clone() }
    }

    /// This runtime with an attention kernel that can run here for heads of width `head_dim`:
    /// where the configured kernel cannot (`nn::attention::unsupported`: no GPU, fp32, an old
    /// GPU), `sdpa` computes the same function, and a note says why, once, at start.
    pub fn with_usable_attention(mut self, head_dim: i64) -> Runtime {
        if let Some(why) = crate::nn::attention::unsupported(&self.attention, self.device, self.kind, head_dim) {
            let name = crate::nn::attention::name(&self.attention);
            eprintln!("note: runtime.attention = @{name} cannot run here: {why}; using @sdpa");
            self.attention = Attention::Sdpa(Default::default());
        }
        self
    }

    /// fp32 on the CPU with the given kernel: what tests and `helico check` use.
    pub fn cpu(attention: Attention) -> Runtime {
        Runtime { device: tch::Device::Cpu, kind: tch::Kind::Float, attention }
    }
}
