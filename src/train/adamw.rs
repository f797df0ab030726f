//! AdamW (Loshchilov & Hutter 2019) over a VarStore, with state that checkpoints can save:
//! tch's own optimizer cannot export its moments, so resumed runs would restart Adam.
//!
//! The update is libtorch's fused kernel (`at::_fused_adamw_` through `sys`, one launch per
//! weight-decay group instead of ~10 per parameter) and the gradient-norm clip uses foreach
//! kernels; neither synchronises with the host.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// AdamW with decoupled weight decay; norms and biases form a group without decay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AdamWConfig {
    /// Peak learning rate (the schedule scales it).
    #[schemars(range(min = 0.0))]
    pub lr: f64,
    /// (β1, β2), the decay rates of the first and second moment estimates.
    pub betas: [f64; 2],
    /// ε added to the second-moment root.
    pub eps: f64,
    /// Decoupled weight decay λ.
    #[schemars(range(min = 0.0))]
    pub weight_decay: f64,
    /// Also decay norm gains and biases (usually off).
    pub decay_norms_and_biases: bool,
}

impl Default for AdamWConfig {
    /// AtomWell's optimiser: lr 1e-5, β (0.9, 0.95), weight decay 0.1.
    fn default() -> Self {
        Self { lr: 1e-5, betas: [0.9, 0.95], eps: 1e-8, weight_decay: 0.1, decay_norms_and_biases: false }
    }
}

impl AdamWConfig {
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, b) in self.betas.iter().enumerate() {
            if !(0.0..1.0).contains(b) {
                out.push(("betas".into(), format!("betas[{i}] = {b} must lie in [0, 1)")));
            }
        }
        if self.eps <= 0.0 {
            out.push(("eps".into(), format!("eps = {} must be positive", self.eps)));
        }
        out
    }
}

use tch::{Kind, Tensor, nn};

/// One trained tensor with its moments.
struct Param {
    name: String,
    var: Tensor,
    /// First moment m, fp32.
    m: Tensor,
    /// Second moment v, fp32.
    v: Tensor,
    decay: bool,
}

/// AdamW over every trainable variable of a VarStore, in name order.
pub struct AdamW {
    cfg: AdamWConfig,
    params: Vec<Param>,
    /// Updates applied so far (t in the bias corrections).
    steps: u64,
    /// `steps` as the 0-d fp32 tensor on the parameters' device that the fused kernel reads.
    step_tensor: Tensor,
}

impl AdamW {
    /// Norm gains and biases (by the naming contract: a path containing `norm`, or a final
    /// `bias` segment) are not decayed unless `decay_norms_and_biases`.
    pub fn new(vs: &nn::VarStore, cfg: &AdamWConfig) -> AdamW {
        let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let params = named
            .into_iter()
            .map(|(name, var)| {
                let exempt = name.contains("norm") || name.rsplit('.').next() == Some("bias");
                let m = var.zeros_like().to_kind(Kind::Float);
                let v = var.zeros_like().to_kind(Kind::Float);
                Param { decay: cfg.decay_norms_and_biases || !exempt, name, var, m, v }
            })
            .collect::<Vec<Param>>();
        let device = params.first().map_or(tch::Device::Cpu, |p| p.var.device());
        AdamW { cfg: cfg.clone(), params, steps: 0, step_tensor: Tensor::zeros([], (Kind::Float, device)) }
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Names of the parameters that are weight-decayed.
    pub fn decayed(&self) -> impl Iterator<Item = &str> {
        self.params.iter().filter(|p| p.decay).map(|p| p.name.as_str())
    }

    /// The defined gradients, in parameter order (for an all-reduce).
    pub fn grads(&self) -> Vec<Tensor> {
        self.params.iter().map(|p| p.var.grad()).filter(Tensor::defined).collect()
    }

    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.var.zero_grad();
        }
    }

    /// Scales gradients so their global L2 norm is at most `max` (no host sync); returns the
    /// norm before clipping as a 0-d fp32 tensor.
    pub fn clip_grad_norm(&self, max: f64) -> Tensor {
        let grads: Vec<Tensor> = self.params.iter().map(|p| p.var.grad()).filter(Tensor::defined).collect();
        if grads.is_empty() {
            return Tensor::zeros([], (Kind::Float, self.step_tensor.device()));
        }
        let refs: Vec<&Tensor> = grads.iter().collect();
        tch::no_grad(|| crate::sys::clip_grad_norm(&refs, max))
            .expect("foreach norm and scaling take fp32 gradients on one device")
    }

    /// One update with learning rate `lr` (decoupled decay: p ← p − lr·λ·p, then the Adam
    /// step), as libtorch's fused AdamW computes it for `torch.optim.AdamW(fused=True)`.
    pub fn step(&mut self, lr: f64) {
        self.steps += 1;
        let _ = self.step_tensor.fill_(self.steps as f64);
        let grads: Vec<Tensor> = self.params.iter().map(|p| p.var.grad()).collect();
        for decay in [true, false] {
            let group: Vec<(&Param, &Tensor)> =
                self.params.iter().zip(&grads).filter(|(p, g)| p.decay == decay && g.defined()).collect();
            if group.is_empty() {
                continue;
            }
            let column = |f: fn(&Param) -> &Tensor| group.iter().map(|(p, _)| f(p)).collect::<Vec<_>>();
            let g: Vec<&Tensor> = group.iter().map(|(_, g)| *g).collect();
            let wd = if decay { self.cfg.weight_decay } else { 0.0 };
            tch::no_grad(|| {
                crate::sys::fused_adamw(
                    &column(|p| &p.var),
                    &g,
                    &column(|p| &p.m),
                    &column(|p| &p.v),
                    &self.step_tensor,
                    lr,
                    self.cfg.betas,
                    wd,
                    self.cfg.eps,
                )
            })
            .expect("fused AdamW takes fp32 parameters, gradients and moments on one device");
        }
    }

    /// The moments as named tensors (`m.<param>`, `v.<param>`) for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.params
            .iter()
            .flat_map(|p| {
                [(format!("m.{}", p.name), p.m.shallow_clone()), (format!("v.{}", p.name), p.v.shallow_clone())]
            })
            .collect()
    }

    /// Restores moments and the update count; every moment must be present with its shape.
    pub fn load_state(
        &mut self,
        mut tensors: std::collections::HashMap<String, Tensor>,
        steps: u64,
    ) -> Result<(), String> {
        let mut problems = Vec::new();
        for p in &mut self.params {
            for (prefix, slot) in [("m", &mut p.m), ("v", &mut p.v)] {
                let key = format!("{prefix}.{}", p.name);
                match tensors.remove(&key) {
                    Some(t) if t.size() == slot.size() => tch::no_grad(|| slot.copy_(&t)),
                    Some(t) => problems.push(format!(
                        "{key}: shape {:?} in the checkpoint, {:?} in the model",
                        t.size(),
                        slot.size()
                    )),
                    None => problems.push(format!("{key}: missing from the checkpoint")),
                }
            }
        }
        problems.extend(tensors.keys().map(|k| format!("{k}: in the checkpoint but not in the model")));
        if !problems.is_empty() {
            problems.sort();
            return Err(problems.join("; "));
        }
        self.steps = steps;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::OptimizerConfig;

    /// A small model with a weight, a bias and a norm gain.
    fn model(vs: &nn::VarStore) -> (nn::Linear, nn::LayerNorm) {
        let root = vs.root();
        let lin = nn::linear(&root / "fc", 4, 3, Default::default());
        let norm = nn::layer_norm(&root / "norm", vec![3], Default::default());
        (lin, norm)
    }

    fn loss(m: &(nn::Linear, nn::LayerNorm), x: &Tensor) -> Tensor {
        use tch::nn::Module;
        m.1.forward(&m.0.forward(x)).square().mean(Kind::Float)
    }

    /// Our AdamW equals libtorch's torch::optim::AdamW (tch's `nn::AdamW`) step for step.
    #[test]
    fn matches_libtorch_adamw() {
        tch::manual_seed(0);
        let cfg =
            AdamWConfig { lr: 1e-2, betas: [0.9, 0.95], eps: 1e-8, weight_decay: 0.1, decay_norms_and_biases: true };
        let ours = nn::VarStore::new(tch::Device::Cpu);
        let theirs = nn::VarStore::new(tch::Device::Cpu);
        let (m1, m2) = (model(&ours), model(&theirs));
        let mut theirs_vs = theirs;
        theirs_vs.copy(&ours).expect("same variables");
        let mut a = AdamW::new(&ours, &cfg);
        let mut b =
            nn::AdamW::default().beta1(0.9).beta2(0.95).wd(0.1).eps(1e-8).build(&theirs_vs, 1e-2).expect("adamw");
        let x = Tensor::randn([8, 4], (Kind::Float, tch::Device::Cpu));
        for _ in 0..20 {
            a.zero_grad();
            loss(&m1, &x).backward();
            a.step(1e-2);
            b.zero_grad();
            loss(&m2, &x).backward();
            b.step();
        }
        let (va, vb) = (ours.variables(), theirs_vs.variables());
        for (name, t) in &va {
            let diff = (t - &vb[name]).abs().max().double_value(&[]);
            let scale = t.abs().max().double_value(&[]);
            assert!(diff <= 1e-5 * scale, "{name} differs by {diff} (scale {scale})");
        }
    }

    #[test]
    fn norms_and_biases_are_not_decayed_and_state_round_trips() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let m = model(&vs);
        let mut opt = AdamW::new(&vs, &AdamWConfig::default());
        assert_eq!(opt.decayed().collect::<Vec<_>>(), ["fc.weight"]);
        loss(&m, &Tensor::ones([2, 4], (Kind::Float, tch::Device::Cpu))).backward();
        opt.step(1e-3);
        let state = || -> std::collections::HashMap<String, Tensor> {
            opt.state().into_iter().map(|(k, t)| (k, t.copy())).collect()
        };
        let mut fresh = AdamW::new(&vs, &AdamWConfig::default());
        fresh.load_state(state(), 1).expect("loads");
        assert_eq!(fresh.steps(), 1);
        let mut missing = state();
        missing.remove("m.fc.bias");
        missing.insert("m.extra".into(), Tensor::zeros([1], (Kind::Float, tch::Device::Cpu)));
        let err = AdamW::new(&vs, &AdamWConfig::default()).load_state(missing, 1).unwrap_err();
        assert!(
            err.contains("m.fc.bias: missing") && err.contains("m.extra: in the checkpoint but not in the model"),
            "{err}"
        );
    }
}
