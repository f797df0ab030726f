//! Exponential moving average of the weights: θ̄ ← d·θ̄ + (1 − d)·θ after every update.

use std::collections::HashMap;

use tch::{Kind, Tensor, nn};

pub struct Ema {
    decay: f64,
    /// (name, variable, average), in name order; averages are fp32.
    shadow: Vec<(String, Tensor, Tensor)>,
}

impl Ema {
    pub fn new(vs: &nn::VarStore, decay: f64) -> Ema {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let shadow = vars.into_iter().map(|(n, v)| {
            let avg = v.detach().to_kind(Kind::Float).copy();
            (n, v, avg)
        });
        Ema { decay, shadow: shadow.collect() }
    }

    pub fn update(&mut self) {
        let d = self.decay;
        tch::no_grad(|| {
            for (_, var, avg) in &mut self.shadow {
                let _ = avg.g_mul_scalar_(d).g_add_(&(var.to_kind(Kind::Float) * (1.0 - d)));
            }
        });
    }

    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.shadow.iter().map(|(n, _, a)| (n.clone(), a.shallow_clone())).collect()
    }

    pub fn load_state(&mut self, mut tensors: HashMap<String, Tensor>) -> Result<(), String> {
        let mut missing = Vec::new();
        for (name, _, avg) in &mut self.shadow {
            match tensors.remove(name.as_str()) {
                Some(t) if t.size() == avg.size() => tch::no_grad(|| avg.copy_(&t)),
                _ => missing.push(name.clone()),
            }
        }
        if missing.is_empty() { Ok(()) } else { Err(format!("EMA state lacks or mis-shapes: {}", missing.join(", "))) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_follows_the_closed_form() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let mut w = vs.root().zeros("w", &[2]);
        let mut ema = Ema::new(&vs, 0.5);
        for _ in 0..3 {
            tch::no_grad(|| {
                let _ = w.g_add_scalar_(1.0);
            });
            ema.update();
        }
        // w = 1, 2, 3: avg = ((0·½ + 1·½)·½ + 2·½)·½ + 3·½ = 2.125
        let avg = ema.state()[0].1.double_value(&[0]);
        assert!((avg - 2.125).abs() < 1e-6, "{avg}");
    }
}
