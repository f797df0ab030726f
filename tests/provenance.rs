//! Run provenance against real repositories: git's CLI is the oracle for `run::git`
//! (`git rev-parse`, `git status`, and `git apply` of the recorded patch on a clean checkout),
//! plus secret redaction end to end and the data manifest's identity and hash cache.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use helico::data::manifest::DataManifest;
use helico::run::env::EnvInfo;
use helico::run::git::{self, DEFAULT_PATCH_CAP, ExcludeReason, MAX_HASHED_BYTES, RepoState};
use helico::run::secrets::Redactor;
use serde_json::json;

const HF_TOKEN: &str = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
const ENV_SECRET: &str = "plain-service-secret-42";

/// Runs git in `dir` isolated from the user's and system's config; panics with stderr on failure.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_cmd(dir, args).output().expect("git is installed");
    assert!(out.status.success(), "git {args:?} in {}: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("git output is UTF-8").trim().to_owned()
}

fn git_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .args(["-c", "init.defaultBranch=main", "-c", "core.autocrlf=false"])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "helico test")
        .env("GIT_AUTHOR_EMAIL", "test@helico.invalid")
        .env("GIT_COMMITTER_NAME", "helico test")
        .env("GIT_COMMITTER_EMAIL", "test@helico.invalid");
    cmd
}

fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().expect("file has a parent")).expect("create dirs");
    fs::write(path, content).expect("write file");
}

fn no_secrets() -> Redactor {
    Redactor::from_vars(Vec::<(String, String)>::new())
}

/// Every file under `root` (relative path -> (content, executable)), `.git` excluded.
fn tree_files(root: &Path) -> BTreeMap<String, (Vec<u8>, bool)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (Vec<u8>, bool)>) {
        for entry in fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("under root").to_string_lossy().into_owned();
                let exec = fs::metadata(&path).expect("stat").permissions().mode() & 0o111 != 0;
                out.insert(rel, (fs::read(&path).expect("read"), exec));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Applies `patch` with `git apply` to a fresh detached worktree of HEAD and returns its files.
fn apply_to_clean_checkout(repo: &Path, scratch: &Path, patch: &[u8]) -> BTreeMap<String, (Vec<u8>, bool)> {
    let checkout = scratch.join("checkout");
    git(repo, &["worktree", "add", "--detach", checkout.to_str().expect("UTF-8 temp path"), "HEAD"]);
    let patch_file = scratch.join("dirty.patch");
    fs::write(&patch_file, patch).expect("write patch");
    git(&checkout, &["apply", "--whitespace=nowarn", patch_file.to_str().expect("UTF-8 temp path")]);
    tree_files(&checkout)
}

/// A committed repository with an `origin` whose URL carries a token.
fn committed_repo(root: &Path) {
    git(root, &["init", "-q"]);
    git(root, &["remote", "add", "origin", &format!("https://bot:{HF_TOKEN}@github.com/helico/helico.git")]);
    git(root, &["remote", "add", "backup", "https://example.org/mirror.git"]);
    write(root, "a.txt", "one\ntwo\nthree\n");
    write(root, "b.txt", "bee\n");
    write(root, "c.txt", "sea\n");
    write(root, "d.txt", "to be deleted\n");
    write(root, "e.txt", (1..=20).map(|i| format!("line {i} of a file that will be renamed\n")).collect::<String>());
    write(root, "noeol.txt", "no newline at the end");
    write(root, "run.sh", "#!/bin/sh\necho hi\n");
    write(root, "sub/keep.txt", "kept\n");
    write(root, "tracked.bin", b"\x00\x01\x02binary\x00");
    write(root, ".gitignore", "*.log\nignored/\n");
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "initial"]);
}

#[test]
fn clean_repo_matches_git() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    committed_repo(root);
    let snap = git::capture(&root.join("sub"), &[], &no_secrets(), DEFAULT_PATCH_CAP).expect("capture");
    let info = &snap.info;
    assert_eq!(info.state, RepoState::Repo);
    assert_eq!(info.sha.as_deref(), Some(git(root, &["rev-parse", "HEAD"]).as_str()));
    assert_eq!(info.tree.as_deref(), Some(git(root, &["rev-parse", "HEAD^{tree}"]).as_str()));
    assert_eq!(info.branch.as_deref(), Some(git(root, &["rev-parse", "--abbrev-ref", "HEAD"]).as_str()));
    assert_eq!(info.remote_url.as_deref(), Some("https://github.com/helico/helico.git"));
    assert_eq!(git(root, &["status", "--porcelain"]), "");
    assert!(!info.dirty);
    assert_eq!(info.untracked, 0);
    assert!(snap.patch.is_empty());
    assert_eq!(info.patch_hash, blake3::hash(b"").to_hex().to_string());
}

#[test]
fn dirty_patch_reproduces_worktree_with_git_apply() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (root, scratch) = (dir.path().join("repo"), dir.path().join("scratch"));
    fs::create_dir_all(&scratch).expect("scratch dir");
    fs::create_dir_all(&root).expect("repo dir");
    let root = root.as_path();
    committed_repo(root);

    write(root, "a.txt", "one\nTWO\nthree\n"); // unstaged
    write(root, "b.txt", "bee staged\n");
    git(root, &["add", "b.txt"]);
    write(root, "c.txt", "sea staged\n");
    git(root, &["add", "c.txt"]);
    write(root, "c.txt", "sea staged then edited\n"); // staged and unstaged
    git(root, &["rm", "-q", "d.txt"]); // staged deletion
    fs::remove_file(root.join("sub/keep.txt")).expect("unstaged deletion");
    fs::create_dir(root.join("moved")).expect("rename target dir");
    git(root, &["mv", "e.txt", "moved/e2.txt"]);
    fs::OpenOptions::new()
        .append(true)
        .open(root.join("moved/e2.txt"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"appended after the rename\n"))
        .expect("append");
    write(root, "noeol.txt", "still no newline, but changed");
    fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).expect("chmod");
    write(root, "tracked.bin", b"\x00\x01\x02binary, modified\x00");
    write(root, "new/deep/f.txt", "untracked, nested\n");
    write(root, "new/deep/g.txt", "another\n");
    write(root, "top.txt", "untracked at top\n");
    write(root, "empty.txt", "");
    write(root, "latin1.txt", b"caf\xe9 au lait\n");
    let image = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".repeat(10);
    write(root, "img.bin", &image);
    write(root, "debug.log", "ignored by pattern\n");
    write(root, "ignored/x.txt", "ignored by directory\n");
    write(root, "new/deep/h.log", "ignored, nested\n");

    let snap = git::capture(root, &[], &no_secrets(), DEFAULT_PATCH_CAP).expect("capture");
    let info = &snap.info;
    assert!(info.dirty);
    let porcelain = git(root, &["status", "--porcelain", "-uall"]);
    assert_eq!(info.untracked, porcelain.lines().filter(|l| l.starts_with("??")).count(), "{porcelain}");
    assert!(!info.patch_truncated);
    assert_eq!(info.patch_bytes, snap.patch.len() as u64);
    assert_eq!(info.patch_hash, blake3::hash(&snap.patch).to_hex().to_string());

    let text = String::from_utf8_lossy(&snap.patch);
    for ignored in ["debug.log", "ignored/x.txt", "h.log"] {
        assert!(!text.contains(ignored), "ignored file {ignored} in the patch:\n{text}");
    }
    assert!(text.contains("rename from e.txt"), "rename not detected:\n{text}");
    let excluded: BTreeMap<&str, _> = info.excluded.iter().map(|f| (f.path.as_str(), f)).collect();
    assert_eq!(excluded.keys().copied().collect::<Vec<_>>(), ["img.bin", "tracked.bin"]);
    let img = excluded["img.bin"];
    assert_eq!(img.reason, ExcludeReason::Binary);
    assert_eq!(img.size, Some(image.len() as u64));
    assert_eq!(img.blake3.as_deref(), Some(blake3::hash(&image).to_hex().as_str()));
    assert!(
        text.contains(&format!(
            "binary file img.bin (untracked, {} bytes, blake3 {})",
            image.len(),
            blake3::hash(&image).to_hex()
        )),
        "{text}"
    );

    let applied = apply_to_clean_checkout(root, &scratch, &snap.patch);
    let mut expected = tree_files(root);
    expected.retain(|path, _| {
        !matches!(path.as_str(), "debug.log" | "ignored/x.txt" | "new/deep/h.log" | "img.bin" | "tracked.bin")
    });
    let mut applied_text = applied.clone();
    applied_text.remove("tracked.bin");
    assert_eq!(applied_text.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
    for (path, want) in &expected {
        assert_eq!(&applied_text[path], want, "{path} differs after git apply");
    }
    assert_eq!(applied["tracked.bin"].0, b"\x00\x01\x02binary\x00", "binary files stay at HEAD");
}

/// A runs directory that no .gitignore covers is still not a change to the code: otherwise
/// every run would give the next one a new code hash and nothing would ever be recognised as
/// already run. Other untracked files still count; runs outside the tree change nothing.
#[test]
fn the_runs_directory_never_counts_as_a_change() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    committed_repo(root);
    write(root, "out/runs/demo/1/metrics.jsonl", "{}\n");
    write(root, "out/runs/_ablations/a/trials.json", "[]\n");
    let runs = root.join("out/runs");
    let snap = git::capture(root, &[&runs], &no_secrets(), DEFAULT_PATCH_CAP).expect("capture");
    assert!(!snap.info.dirty && snap.info.untracked == 0 && snap.patch.is_empty(), "{:?}", snap.info);
    let unexcluded = git::capture(root, &[], &no_secrets(), DEFAULT_PATCH_CAP).expect("capture");
    assert_eq!(unexcluded.info.untracked, 2, "without the exclusion git sees both files");

    write(root, "out/notes.txt", "mine\n");
    let snap = git::capture(&root.join("sub"), &[&runs], &no_secrets(), DEFAULT_PATCH_CAP).expect("capture");
    assert_eq!(snap.info.untracked, 1);
    let text = String::from_utf8_lossy(&snap.patch);
    assert!(text.contains("out/notes.txt") && !text.contains("metrics.jsonl"), "{text}");
    // The working tree itself, or a directory outside it, excludes nothing.
    for outputs in [vec![root.to_path_buf()], vec![std::env::temp_dir()]] {
        let outputs: Vec<&Path> = outputs.iter().map(PathBuf::as_path).collect();
        let snap = git::capture(root, &outputs, &no_secrets(), DEFAULT_PATCH_CAP).expect("capture");
        assert_eq!(snap.info.untracked, 3, "{outputs:?}");
    }
    assert_eq!(git(root, &["status", "--porcelain", "-uall"]).lines().count(), 3, "nothing written to the repository");
}

#[test]
fn unborn_branch_diffs_against_empty_tree() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (root, fresh) = (dir.path().join("repo"), dir.path().join("fresh"));
    fs::create_dir_all(&root).expect("repo dir");
    fs::create_dir_all(&fresh).expect("fresh dir");
    git(&root, &["init", "-q"]);
    write(&root, "staged.txt", "staged before the first commit\n");
    git(&root, &["add", "staged.txt"]);
    write(&root, "src/untracked.rs", "fn main() {}\n");
    write(&root, ".gitignore", "target/\n");
    write(&root, "target/out.o", "ignored\n");

    let snap = git::capture(&root, &[], &no_secrets(), DEFAULT_PATCH_CAP).expect("capture");
    assert_eq!(snap.info.state, RepoState::UnbornBranch);
    assert_eq!((snap.info.sha.as_deref(), snap.info.tree.as_deref()), (None, None));
    assert_eq!(snap.info.branch.as_deref(), Some("main"));
    assert!(snap.info.dirty);
    assert_eq!(snap.info.untracked, 2);

    git(&fresh, &["init", "-q"]);
    let patch_file = dir.path().join("dirty.patch");
    fs::write(&patch_file, &snap.patch).expect("write patch");
    git(&fresh, &["apply", patch_file.to_str().expect("UTF-8 temp path")]);
    let mut want = tree_files(&root);
    want.remove("target/out.o");
    assert_eq!(tree_files(&fresh), want);
}

#[test]
fn outside_a_repository_is_unknown_not_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let in_repo = git_cmd(dir.path(), &["rev-parse", "--git-dir"]).output().expect("git runs");
    assert!(!in_repo.status.success(), "the temp dir {} is inside a repository", dir.path().display());
    let snap = git::capture(dir.path(), &[], &no_secrets(), DEFAULT_PATCH_CAP).expect("capture");
    assert_eq!(snap.info.state, RepoState::Unknown);
    assert_eq!((snap.info.sha.as_deref(), snap.info.dirty), (None, false));
    assert!(snap.patch.is_empty());
    assert!(git::capture(&dir.path().join("missing"), &[], &no_secrets(), DEFAULT_PATCH_CAP).is_err());
}

#[test]
fn patch_cap_truncates_at_file_boundaries() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    committed_repo(root);
    for i in 0..6 {
        write(root, &format!("notes/{i}.txt"), format!("note {i}\n").repeat(8));
    }
    let big = "a text file larger than the cap\n".repeat(40);
    write(root, "big.txt", &big);
    // Sparse, so the test costs no disk; a deleted file makes rename detection look at it.
    let huge = fs::File::create(root.join("huge.bin")).expect("create");
    huge.set_len(MAX_HASHED_BYTES + 1).expect("grow sparse file");
    fs::remove_file(root.join("d.txt")).expect("delete");

    let full = git::capture(root, &[], &no_secrets(), DEFAULT_PATCH_CAP).expect("capture");
    assert!(!full.info.patch_truncated);
    let cap = 700;
    let capped = git::capture(root, &[], &no_secrets(), cap).expect("capture");
    let info = &capped.info;
    assert!(info.patch_truncated);
    assert!(!info.omitted.is_empty());
    let big_entry = info.excluded.iter().find(|f| f.path == "big.txt").expect("big.txt listed");
    assert_eq!(big_entry.reason, ExcludeReason::TooLarge);
    assert_eq!(big_entry.blake3.as_deref(), Some(blake3::hash(big.as_bytes()).to_hex().as_str()));
    let huge_entry = info.excluded.iter().find(|f| f.path == "huge.bin").expect("huge.bin listed");
    assert_eq!((huge_entry.size, huge_entry.blake3.as_deref()), (Some(MAX_HASHED_BYTES + 1), None));

    let trailer_at = capped.patch.iter().rposition(|&b| b == b'#').expect("truncation trailer");
    assert!(trailer_at <= cap && info.patch_bytes > trailer_at as u64);
    let stored = String::from_utf8_lossy(&capped.patch[..trailer_at]);
    for path in &info.omitted {
        assert!(!stored.contains(&format!("diff --git a/{path} ")), "omitted {path} is in the patch");
    }
    let tail = String::from_utf8_lossy(&capped.patch);
    assert!(tail.trim_end().ends_with(&info.patch_hash), "{tail}");
    let patch_file = dir.path().join("capped.patch");
    fs::write(&patch_file, &capped.patch).expect("write patch");
    git(root, &["apply", "--check", "-R", patch_file.to_str().expect("UTF-8 temp path")]);
}

#[test]
fn secrets_never_reach_patch_or_env_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    committed_repo(root);
    let sha = git(root, &["rev-parse", "HEAD"]);
    write(root, "config/local.toml", format!("hf = \"{HF_TOKEN}\"\nservice = \"{ENV_SECRET}\"\nbase = \"{sha}\"\n"));
    let redactor = Redactor::from_vars([("MY_SERVICE_TOKEN", ENV_SECRET)]);

    let snap = git::capture(root, &[], &redactor, DEFAULT_PATCH_CAP).expect("capture");
    let text = String::from_utf8(snap.patch.clone()).expect("UTF-8 patch");
    assert!(!text.contains(HF_TOKEN) && !text.contains(ENV_SECRET), "{text}");
    assert!(text.contains("[REDACTED:huggingface-token]") && text.contains("[REDACTED:MY_SERVICE_TOKEN]"), "{text}");
    assert!(text.contains(&sha), "git SHAs must survive redaction:\n{text}");
    let git_json = serde_json::to_string(&snap.info).expect("serialize");
    assert!(!git_json.contains(HF_TOKEN), "{git_json}");
    assert!(git_json.contains(&sha));

    let vars = [
        ("HELICO__TRACK__WANDB_API_KEY", ENV_SECRET),
        ("NCCL_SOCKET_IFNAME", HF_TOKEN),
        ("NCCL_DEBUG", "WARN"),
        ("UNLISTED_VARIABLE", "not recorded"),
    ]
    .map(|(k, v)| (OsString::from(k), OsString::from(v)));
    let args = ["helico", "run", "exp.toml", &format!("track.key={ENV_SECRET}"), &format!("hub.token={HF_TOKEN}")]
        .map(OsString::from);
    let env = EnvInfo::collect_from(vars, args, &redactor);
    let env_json = serde_json::to_string(&env).expect("serialize");
    assert!(!env_json.contains(HF_TOKEN) && !env_json.contains(ENV_SECRET), "{env_json}");
    assert!(!env_json.contains("UNLISTED_VARIABLE"));
    assert_eq!(env.env.get("NCCL_DEBUG").map(String::as_str), Some("WARN"));
    assert_eq!(env.process.command_line[3], "track.key=[REDACTED:MY_SERVICE_TOKEN]");
    assert_eq!(env.build.helico_version, env!("CARGO_PKG_VERSION"));
    assert!(env.build.rustc.starts_with("rustc "), "{}", env.build.rustc);
    assert!(env.libtorch.intra_op_threads >= 1);
}

/// Sets a file's mtime `age` in the past, so the cache does not treat it as racily clean.
fn age(path: &Path, age: Duration) {
    let file = fs::File::options().write(true).open(path).expect("open");
    file.set_modified(SystemTime::now() - age).expect("set mtime");
}

#[test]
fn manifest_hash_is_content_and_params_not_paths() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("cache/file-hashes.json");
    let (a, b) = (dir.path().join("one/1abc.cif"), dir.path().join("elsewhere/renamed.cif"));
    write(dir.path(), "one/1abc.cif", "data_1ABC\n_cell.length_a 10.0\n");
    write(dir.path(), "one/2xyz.cif", "data_2XYZ\n");
    write(dir.path(), "elsewhere/renamed.cif", "data_1ABC\n_cell.length_a 10.0\n");
    let other = dir.path().join("one/2xyz.cif");
    let params = json!({"max_resolution": 9.0, "release_cutoff": "2021-09-30"});

    let build = |files: &[&PathBuf], params: serde_json::Value| {
        DataManifest::build(files, params, Some(&cache)).expect("build manifest").0
    };
    let base = build(&[&a, &other], params.clone());
    assert_eq!(base.hash, build(&[&b, &other], params.clone()).hash, "moving a file keeps the hash");
    assert_ne!(base.hash, build(&[&other, &a], params.clone()).hash, "order is part of the hash");
    let reordered_keys = json!({"release_cutoff": "2021-09-30", "max_resolution": 9.0});
    assert_eq!(base.hash, build(&[&a, &other], reordered_keys).hash, "params are canonical JSON");
    assert_ne!(base.hash, build(&[&a, &other], json!({"max_resolution": 4.5, "release_cutoff": "2021-09-30"})).hash);
    assert_eq!(base.files[0].blake3, blake3::hash(&fs::read(&a).expect("read")).to_hex().to_string());

    write(dir.path(), "elsewhere/renamed.cif", "data_1ABC\n_cell.length_a 10.1\n");
    assert_ne!(base.hash, build(&[&b, &other], params).hash, "one changed byte changes the hash");
}

#[test]
fn manifest_cache_hits_invalidates_and_survives_corruption() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("cache/file-hashes.json");
    write(dir.path(), "a.cif", "data_A\n");
    write(dir.path(), "b.cif", "data_B\n");
    let (a, b) = (dir.path().join("a.cif"), dir.path().join("b.cif"));
    age(&a, Duration::from_secs(3600));
    age(&b, Duration::from_secs(3600));
    let files = [&a, &b];
    let build = || DataManifest::build(&files, json!({}), Some(&cache)).expect("build manifest");

    let (first, stats) = build();
    assert_eq!((stats.hashed, stats.cache_hits, stats.cache_discarded), (2, 0, false));
    let cached: serde_json::Value =
        serde_json::from_slice(&fs::read(&cache).expect("cache written")).expect("cache is JSON");
    let key = fs::canonicalize(&a).expect("canonical").to_string_lossy().into_owned();
    assert_eq!(cached["entries"][&key]["blake3"], first.files[0].blake3.as_str());

    let (second, stats) = build();
    assert_eq!((stats.hashed, stats.cache_hits), (0, 2));
    assert_eq!(second, first);

    age(&a, Duration::from_secs(7200)); // same content, other mtime
    let (third, stats) = build();
    assert_eq!((stats.hashed, stats.cache_hits), (1, 1));
    assert_eq!(third.hash, first.hash);

    let mtime = fs::metadata(&b).expect("stat").modified().expect("mtime");
    write(dir.path(), "b.cif", "data_B, now longer\n"); // other size, mtime restored
    fs::File::options().write(true).open(&b).expect("open").set_modified(mtime).expect("set mtime");
    let (fourth, stats) = build();
    assert_eq!((stats.hashed, stats.cache_hits), (1, 1));
    assert_ne!(fourth.hash, first.hash);

    fs::write(&cache, b"{ not json").expect("corrupt the cache");
    let (fifth, stats) = build();
    assert!(stats.cache_discarded);
    assert_eq!((fifth.hash, stats.hashed), (fourth.hash, 2));
    let (_, stats) = build();
    assert_eq!((stats.cache_discarded, stats.cache_hits), (false, 2), "the corrupt cache was rewritten");
}
