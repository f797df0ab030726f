//! Secret redaction for everything a run snapshot records (dirty patch, env allowlist, argv,
//! remote URLs): a run directory gets copied, uploaded to W&B and attached to issues, so no
//! credential may reach it by accident.
//!
//! Two kinds of needle: the values of secret-looking environment variables of this process
//! (only values of at least [`MIN_SECRET_LEN`] bytes, so that `PASSWORD=x` does not redact every
//! `x`), and token formats with a distinctive prefix (Hugging Face, GitHub, AWS key ids, W&B
//! local keys). Bare 40-hex strings are deliberately not a pattern: git SHAs look the same.

use std::borrow::Cow;
use std::ffi::OsString;
use std::fmt;

use regex::bytes::{Captures, Regex};

/// Shorter values of secret-looking variables are not redacted: replacing every `true` or
/// `8080` in a patch would hide the code without protecting anything.
pub const MIN_SECRET_LEN: usize = 8;

/// Variables whose value is a credential although the name matches no generic rule below.
const SECRET_VARS: &[&str] = &[
    "WANDB_API_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HUGGINGFACE_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
];

/// Substrings of an upper-cased variable name that mark its value as secret.
const SECRET_NAME_PARTS: &[&str] = &["TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "PRIVATE", "API_KEY"];

/// Suffixes naming where a secret lives rather than the secret (`HF_TOKEN_PATH`,
/// `AWS_SHARED_CREDENTIALS_FILE`): their values are paths, and redacting a path would hide it
/// from the patch for nothing.
const LOCATION_SUFFIXES: &[&str] = &["_PATH", "_FILE", "_DIR"];

/// Token formats recognised by their prefix: (name used in the replacement, regex). ASCII word
/// boundaries keep `hf_` inside a longer identifier from matching.
const PATTERNS: &[(&str, &str)] = &[
    ("huggingface-token", r"(?-u)\bhf_[A-Za-z0-9]{30,}\b"),
    ("github-token", r"(?-u)\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    ("github-fine-grained-token", r"(?-u)\bgithub_pat_[A-Za-z0-9_]{22,}\b"),
    ("aws-access-key-id", r"(?-u)\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("wandb-local-key", r"(?-u)\blocal-[A-Za-z0-9]{40,}\b"),
];

/// Replaces secrets with `[REDACTED:<variable or pattern name>]`.
///
/// `Debug` prints only the names of the needles, never their values.
pub struct Redactor {
    /// One alternation, literals longest first then patterns: group `i + 1` matched means
    /// `names[i]` is the replacement label.
    regex: Regex,
    names: Vec<String>,
}

impl Redactor {
    /// Needles from this process's environment plus the built-in token patterns.
    pub fn from_env() -> Redactor {
        Redactor::from_vars(std::env::vars_os())
    }

    /// Needles from an explicit `(name, value)` list, filtered by the same name rules as
    /// [`Redactor::from_env`]; non-UTF-8 names or values are skipped. Each line of a multi-line
    /// value (a PEM key) is its own needle, so a redacted patch keeps its line count.
    pub fn from_vars<I, K, V>(vars: I) -> Redactor
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        let mut literals: Vec<(String, String)> = Vec::new();
        for (name, value) in vars {
            let (Ok(name), Ok(value)) = (name.into().into_string(), value.into().into_string()) else {
                continue;
            };
            if !is_secret_name(&name) {
                continue;
            }
            for line in value.lines().map(str::trim) {
                if line.len() >= MIN_SECRET_LEN && !literals.iter().any(|(_, v)| v == line) {
                    literals.push((name.clone(), line.to_owned()));
                }
            }
        }
        // Longest first: leftmost-first alternation would otherwise cut a secret that contains
        // another one and leave its tail in the output.
        literals.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));

        let mut alternatives = Vec::new();
        let mut names = Vec::new();
        for (name, value) in literals {
            alternatives.push(format!("({})", regex::escape(&value)));
            names.push(name);
        }
        for (name, pattern) in PATTERNS {
            alternatives.push(format!("({pattern})"));
            names.push((*name).to_owned());
        }
        let regex =
            Regex::new(&alternatives.join("|")).expect("escaped literals and fixed patterns form a valid regex");
        Redactor { regex, names }
    }

    /// `text` with every secret replaced; borrowed when nothing matched.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        match self.redact_bytes(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            Cow::Owned(bytes) => {
                Cow::Owned(String::from_utf8(bytes).expect("whole UTF-8 matches replaced by ASCII keep the text UTF-8"))
            }
        }
    }

    /// Byte version of [`Redactor::redact`], for patches of files that are not UTF-8.
    pub fn redact_bytes<'t>(&self, text: &'t [u8]) -> Cow<'t, [u8]> {
        self.regex.replace_all(text, |caps: &Captures| {
            let group = (1..caps.len())
                .find(|&i| caps.get(i).is_some())
                .expect("a match of the alternation matched one of its groups");
            format!("[REDACTED:{}]", self.names[group - 1]).into_bytes()
        })
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor").field("needles", &self.names).finish()
    }
}

/// Whether a variable's value is treated as a credential (see the module doc).
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if SECRET_VARS.contains(&upper.as_str()) {
        return true;
    }
    if LOCATION_SUFFIXES.iter().any(|s| upper.ends_with(s)) {
        return false;
    }
    SECRET_NAME_PARTS.iter().any(|p| upper.contains(p)) || upper.ends_with("_KEY") || upper.contains("_KEY_")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HF: &str = "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH";
    const SHA: &str = "2c4d960b1f0e8a7c3d5e6f708192a3b4c5d6e7f8";

    #[test]
    fn secret_names() {
        for name in ["HF_TOKEN", "wandb_api_key", "MY_SERVICE_SECRET", "DB_PASSWORD", "SSH_KEY", "A_KEY_ID"] {
            assert!(is_secret_name(name), "{name} should be secret");
        }
        for name in ["PATH", "HOME", "HF_TOKEN_PATH", "AWS_SHARED_CREDENTIALS_FILE", "KEYBOARD", "MONKEY"] {
            assert!(!is_secret_name(name), "{name} should not be secret");
        }
    }

    #[test]
    fn env_values_are_redacted_by_name() {
        let r =
            Redactor::from_vars([("MY_TOKEN", "s3cr3t-value-123"), ("PASSWORD", "short"), ("USER", "alice-the-admin")]);
        assert_eq!(r.redact("x=s3cr3t-value-123;"), "x=[REDACTED:MY_TOKEN];");
        assert_eq!(r.redact("short alice-the-admin"), "short alice-the-admin");
    }

    #[test]
    fn patterns_redact_but_shas_survive() {
        let r = Redactor::from_vars(Vec::<(String, String)>::new());
        let text = format!("token = \"{HF}\"\ncommit {SHA}\nkey AKIAIOSFODNN7EXAMPLE\n");
        let out = r.redact(&text);
        assert_eq!(
            out,
            format!("token = \"[REDACTED:huggingface-token]\"\ncommit {SHA}\nkey [REDACTED:aws-access-key-id]\n")
        );
        let gh = format!("ghp_{}", "a1B2".repeat(9));
        assert_eq!(r.redact(&gh), "[REDACTED:github-token]");
        let pat = format!("github_pat_{}", "x_Y9".repeat(10));
        assert_eq!(r.redact(&pat), "[REDACTED:github-fine-grained-token]");
        let wandb = format!("local-{}", "0a".repeat(20));
        assert_eq!(r.redact(&wandb), "[REDACTED:wandb-local-key]");
        assert_eq!(
            r.redact("self.hf_model_name_with_a_long_suffix_0123456789"),
            "self.hf_model_name_with_a_long_suffix_0123456789"
        );
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn longest_secret_wins_and_multiline_values_split() {
        let r = Redactor::from_vars([
            ("A_TOKEN", "abcdefgh"),
            ("B_TOKEN", "abcdefgh-and-more"),
            ("PEM_PRIVATE", "line-one-xyz\nline-two-xyz\n"),
        ]);
        assert_eq!(r.redact("abcdefgh-and-more abcdefgh"), "[REDACTED:B_TOKEN] [REDACTED:A_TOKEN]");
        assert_eq!(r.redact("line-one-xyz\nline-two-xyz\n"), "[REDACTED:PEM_PRIVATE]\n[REDACTED:PEM_PRIVATE]\n");
    }

    #[test]
    fn bytes_and_debug() {
        let r = Redactor::from_vars([("X_SECRET", "topsecret!")]);
        assert_eq!(&*r.redact_bytes(b"\xff topsecret! \xfe"), b"\xff [REDACTED:X_SECRET] \xfe");
        let shown = format!("{r:?}");
        assert!(shown.contains("X_SECRET") && !shown.contains("topsecret"), "{shown}");
    }
}
