//! Running the real binary from the repository root, and snapshot settings.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `helico` binary, run from the repository root with no `HELICO__*` variables inherited.
pub fn helico() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_helico"));
    cmd.current_dir(root());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("HELICO")) {
        cmd.env_remove(k);
    }
    cmd
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics with both streams when the exit code is not `code`.
    pub fn expect_code(self, code: i32) -> Output {
        assert_eq!(self.code, code, "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("the helico binary runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn helico_run(args: &[&str]) -> Output {
    run(helico().args(args))
}

/// A file the set-up step makes; fails with the fix when it is missing.
pub fn setup_file(relative: &str) -> PathBuf {
    let p = root().join(relative);
    assert!(p.exists(), "{} is missing: run `make setup` first", p.display());
    p
}

/// Snapshots live in `snapshots/` at the repository root.
#[macro_export]
macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

/// A git repository with a tiny experiment and its data, committed.
pub struct Workspace {
    dir: tempfile::TempDir,
}

pub const EXPERIMENT: &str = r#"#:schema ../helico.schema.json
name = "tiny"

[model]
n_layers = 1
d_model = 16
n_heads = 2

[model.diffusion]
timesteps = 20

[optimizer]
lr = 3e-3

[schedule]
type = "warmup_cosine"
warmup_steps = 2

[data]
window = 32
holdout_fraction = 0.1
files = [
    { path = "data/p.fasta", domain = "protein" },
    { path = "data/r.fasta", domain = "rna" },
    { path = "data/s.smi", domain = "smiles" },
]

[train]
steps = 12
batch_size = 2
grad_accum = 2
log_every = 1
eval_every = 4
eval_batches = 2
checkpoint_every = 4
keep_checkpoints = 2
ema_decay = 0.9
"#;

fn pseudo_sequence(alphabet: &[u8], seed: usize, len: usize) -> String {
    (0..len).map(|i| alphabet[(seed * 7919 + i * 104_729 + i * i * 31) % alphabet.len()] as char).collect()
}

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = Workspace { dir };
        std::fs::create_dir_all(w.path().join("experiments")).expect("mkdir");
        std::fs::create_dir_all(w.path().join("data")).expect("mkdir");
        w.write("experiments/tiny.toml", EXPERIMENT);
        let protein: String =
            (0..60).map(|i| format!(">p{i}\n{}\n", pseudo_sequence(b"ACDEFGHIKLMNPQRSTVWY", i, 8 + i % 30))).collect();
        let rna: String = (0..30).map(|i| format!(">r{i}\n{}\n", pseudo_sequence(b"ACGU", i, 10 + i % 20))).collect();
        let smiles = [
            "CCO",
            "c1ccccc1",
            "CC(=O)O",
            "C1CCCCC1N",
            "OC(=O)c1ccccc1",
            "[NH4+]",
            "CC(C)Cl",
            "O=C=O",
            "C#N",
            "CCN(CC)CC",
        ];
        let smi: String = (0..40).map(|i| format!("{}\tm{i}\n", smiles[i % smiles.len()].repeat(1 + i / 10))).collect();
        w.write("data/p.fasta", &protein);
        w.write("data/r.fasta", &rna);
        w.write("data/s.smi", &smi);
        w.write(".gitignore", "/runs\n");
        w.git(&["init", "-q", "-b", "main"]);
        w.git(&["add", "-A"]);
        w.git(&["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "init"]);
        w
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.path().join(rel), text).expect("write");
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git").args(args).current_dir(self.path()).output().expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    pub fn helico(&self, args: &[&str]) -> Command {
        let mut cmd = helico();
        cmd.current_dir(self.path()).args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run(&mut self.helico(args))
    }

    /// The run directories under runs/, oldest first.
    pub fn runs(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(self.path().join("runs/tiny"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        out.sort();
        out
    }
}

pub fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).expect("json")
}
