//! Records the git commit the gateway is built from, for `gateway_build_info`.

use std::process::Command;

fn main() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    // A new commit or a branch switch changes HEAD or the ref it names.
    println!("cargo:rerun-if-changed={root}/.git/HEAD");
    println!("cargo:rerun-if-changed={root}/.git/refs/heads");
    println!("cargo:rerun-if-env-changed=GATEWAY_GIT_SHA");
    #[expect(clippy::disallowed_methods, reason = "a build script reads its own environment")]
    let sha = std::env::var("GATEWAY_GIT_SHA").ok().filter(|sha| !sha.is_empty()).or_else(|| {
        let output = Command::new("git")
            .args(["-C", root, "rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    });
    println!("cargo:rustc-env=GATEWAY_GIT_SHA={}", sha.unwrap_or_default());
}
