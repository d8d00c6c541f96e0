//! Stamps the binary with the commit it is built from (`faktura --version`).
//! Cargo runs this again when HEAD moves or the branch it names does (a
//! commit, a checkout, a reset), not only when `.git/HEAD` changes, so a
//! target folder reused across commits never reports a stale one.

use std::path::Path;
use std::process::Command;

fn main() {
    let git = Path::new(".git");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/packed-refs");
    if let Ok(head) = std::fs::read_to_string(git.join("HEAD"))
        && let Some(branch) = head.trim().strip_prefix("ref: ")
    {
        println!("cargo:rerun-if-changed=.git/{branch}");
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "unknown commit".to_string());
    println!("cargo:rustc-env=FAKTURA_COMMIT={commit}");
}
