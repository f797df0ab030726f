//! Checkpoints: weights, optimiser moments and EMA as safetensors, plus the loop state (step,
//! data position) as JSON, in a directory per step. A checkpoint directory appears only when
//! complete (written under a temporary name, then renamed), so a crash never leaves half of one.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor, nn};

/// Where the loop stood when the checkpoint was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopState {
    /// Optimiser updates completed.
    pub step: u64,
    /// Data position: epoch and batches already consumed in it.
    pub epoch: u64,
    pub batch_in_epoch: u64,
    /// The run seed; per-step seeds derive from it and `step`, so no RNG state is needed.
    pub seed: u64,
    /// Training wall time so far, resumes included.
    pub elapsed_secs: f64,
}

/// One entry of `checkpoints/index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub step: u64,
    /// Directory relative to the checkpoints directory.
    pub path: String,
    /// blake3 of model.safetensors.
    pub model_hash: String,
}

const MODEL: &str = "model.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
const EMA: &str = "ema.safetensors";
const STATE: &str = "state.json";
const INDEX: &str = "index.json";

/// The checkpoints directory of a run.
pub struct Checkpoints {
    pub dir: PathBuf,
}

/// What a checkpoint holds, by reference, for saving.
pub struct Snapshot<'a> {
    pub model: &'a nn::VarStore,
    pub optimizer: Vec<(String, Tensor)>,
    pub ema: Option<Vec<(String, Tensor)>>,
    pub state: &'a LoopState,
}

/// A loaded checkpoint.
pub struct Loaded {
    pub model: HashMap<String, Tensor>,
    pub optimizer: HashMap<String, Tensor>,
    pub ema: Option<HashMap<String, Tensor>>,
    pub state: LoopState,
}

impl Checkpoints {
    pub fn new(dir: PathBuf) -> Checkpoints {
        Checkpoints { dir }
    }

    /// Writes `step-NNNNNNNN/` and records it in the index; keeps the newest `keep`.
    pub fn save(&self, snap: Snapshot<'_>, keep: u64, metadata: &BTreeMap<String, String>) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("cannot create {}", self.dir.display()))?;
        let name = format!("step-{:08}", snap.state.step);
        let final_dir = self.dir.join(&name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&tmp)?;
        let weights: Vec<(String, Tensor)> = snap.model.variables().into_iter().collect();
        save_tensors(&tmp.join(MODEL), &weights, metadata)?;
        save_tensors(&tmp.join(OPTIMIZER), &snap.optimizer, metadata)?;
        if let Some(ema) = &snap.ema {
            save_tensors(&tmp.join(EMA), ema, metadata)?;
        }
        crate::atomic::write(&tmp.join(STATE), serde_json::to_string_pretty(snap.state)?.as_bytes())?;
        if final_dir.exists() {
            std::fs::remove_dir_all(&final_dir)?;
        }
        std::fs::rename(&tmp, &final_dir)
            .with_context(|| format!("cannot move checkpoint into {}", final_dir.display()))?;

        let model_hash = blake3::hash(&std::fs::read(final_dir.join(MODEL))?).to_hex().to_string();
        let mut index = self.index()?;
        index.retain(|e| e.step != snap.state.step);
        index.push(IndexEntry { step: snap.state.step, path: name, model_hash });
        index.sort_by_key(|e| e.step);
        let excess = index.len().saturating_sub(keep.max(1) as usize);
        for old in index.drain(..excess) {
            let _ = std::fs::remove_dir_all(self.dir.join(&old.path));
        }
        crate::atomic::write(&self.dir.join(INDEX), serde_json::to_string_pretty(&index)?.as_bytes())?;
        Ok(final_dir)
    }

    /// Checkpoints recorded in the index, oldest first.
    pub fn index(&self) -> anyhow::Result<Vec<IndexEntry>> {
        let path = self.dir.join(INDEX);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("{} is corrupt", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn latest(&self) -> anyhow::Result<Option<IndexEntry>> {
        Ok(self.index()?.pop())
    }

    pub fn load(&self, entry: &IndexEntry, device: Device) -> anyhow::Result<Loaded> {
        let dir = self.dir.join(&entry.path);
        let ema_path = dir.join(EMA);
        let state_path = dir.join(STATE);
        let state = serde_json::from_slice(
            &std::fs::read(&state_path).with_context(|| format!("cannot read {}", state_path.display()))?,
        )
        .with_context(|| format!("{} is corrupt", state_path.display()))?;
        Ok(Loaded {
            model: load_tensors(&dir.join(MODEL), device)?,
            optimizer: load_tensors(&dir.join(OPTIMIZER), device)?,
            ema: if ema_path.exists() { Some(load_tensors(&ema_path, device)?) } else { None },
            state,
        })
    }
}

fn dtype_of(kind: Kind) -> anyhow::Result<safetensors::Dtype> {
    use safetensors::Dtype;
    Ok(match kind {
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Half => Dtype::F16,
        Kind::Int64 => Dtype::I64,
        Kind::Int => Dtype::I32,
        Kind::Uint8 => Dtype::U8,
        Kind::Bool => Dtype::BOOL,
        other => bail!("cannot store a {other:?} tensor in safetensors"),
    })
}

fn kind_of(dtype: safetensors::Dtype) -> anyhow::Result<Kind> {
    use safetensors::Dtype;
    Ok(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::F16 => Kind::Half,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::U8 => Kind::Uint8,
        Dtype::BOOL => Kind::Bool,
        other => bail!("unsupported safetensors dtype {other:?}"),
    })
}

/// Writes named tensors (any device) as one safetensors file, atomically.
pub fn save_tensors(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let mut blobs = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let t = t.detach().to_device(Device::Cpu).contiguous();
        let numel = t.numel();
        let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
        t.copy_data_u8(&mut bytes, numel);
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        blobs.push((name.clone(), dtype_of(t.kind())?, shape, bytes));
    }
    let views = blobs
        .iter()
        .map(|(n, d, s, b)| Ok((n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let meta: HashMap<String, String> = metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let bytes = safetensors::serialize(views, Some(meta))?;
    crate::atomic::write(path, &bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Reads every tensor of a safetensors file onto `device`.
pub fn load_tensors(path: &Path, device: Device) -> anyhow::Result<HashMap<String, Tensor>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{} is not a valid safetensors file", path.display()))?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(view.data(), &shape, kind_of(view.dtype())?)?;
        out.insert(name, t.to_device(device));
    }
    Ok(out)
}

/// Copies `tensors` into the VarStore's variables, checking names and shapes both ways and
/// reporting every mismatch at once (STYLE H14); values are cast to each variable's dtype.
pub fn load_into(vs: &nn::VarStore, mut tensors: HashMap<String, Tensor>, what: &str) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, mut var) in vars {
        match tensors.remove(&name) {
            Some(t) if t.size() == var.size() => tch::no_grad(|| {
                var.copy_(&t.to_kind(var.kind()));
            }),
            Some(t) => problems.push(format!("{name}: shape {:?} in {what}, {:?} in the model", t.size(), var.size())),
            None => problems.push(format!("{name}: missing from {what}")),
        }
    }
    let mut extra: Vec<String> = tensors.into_keys().collect();
    extra.sort();
    problems.extend(extra.into_iter().map(|k| format!("{k}: in {what} but not in the model")));
    if problems.is_empty() {
        Ok(())
    } else {
        bail!("{what} does not fit the model ({} problem(s)):\n  {}", problems.len(), problems.join("\n  "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(seed: i64) -> nn::VarStore {
        tch::manual_seed(seed);
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = nn::linear(vs.root() / "fc", 3, 2, Default::default());
        vs
    }

    #[test]
    fn save_load_round_trip_and_index_keeps_the_newest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ck = Checkpoints::new(dir.path().join("checkpoints"));
        let vs = store(1);
        for step in [10, 20, 30] {
            let state = LoopState { step, epoch: 1, batch_in_epoch: step, seed: 7, elapsed_secs: 0.5 };
            let opt = vec![("m.fc.weight".to_owned(), Tensor::ones([2, 3], (Kind::Float, Device::Cpu)))];
            ck.save(Snapshot { model: &vs, optimizer: opt, ema: None, state: &state }, 2, &BTreeMap::new())
                .expect("save");
        }
        let index = ck.index().expect("index");
        assert_eq!(index.iter().map(|e| e.step).collect::<Vec<_>>(), [20, 30]);
        assert!(!dir.path().join("checkpoints/step-00000010").exists(), "pruned");
        let loaded = ck.load(&index[1], Device::Cpu).expect("load");
        assert_eq!(loaded.state.batch_in_epoch, 30);
        let other = store(2);
        load_into(&other, loaded.model, "the checkpoint").expect("fits");
        for (name, t) in vs.variables() {
            assert!(t.equal(&other.variables()[&name]), "{name} restored exactly");
        }
    }

    #[test]
    fn mismatches_are_all_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.safetensors");
        let tensors = vec![
            ("fc.weight".to_owned(), Tensor::zeros([4, 3], (Kind::Float, Device::Cpu))),
            ("fc.extra".to_owned(), Tensor::zeros([1], (Kind::Float, Device::Cpu))),
        ];
        save_tensors(&path, &tensors, &BTreeMap::new()).expect("save");
        let err = load_into(&store(0), load_tensors(&path, Device::Cpu).expect("load"), "w.safetensors")
            .unwrap_err()
            .to_string();
        assert!(err.contains("fc.bias: missing from w.safetensors"), "{err}");
        assert!(err.contains("fc.weight: shape [4, 3] in w.safetensors, [2, 3] in the model"), "{err}");
        assert!(err.contains("fc.extra: in w.safetensors but not in the model"), "{err}");
    }
}
