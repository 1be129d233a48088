//! Rules about the crate itself, checked by reading its files: the translator depends
//! on serde, serde_json and thiserror only (and its tests on proptest besides), and every
//! Rust file opens with `//!`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The whole dependency list of the translator (ARCHITECTURE.md invariant). A new
/// entry here is a design change, not a convenience.
const ALLOWED_DEPENDENCIES: &[&str] = &["serde", "serde_json", "thiserror"];

/// The whole dev-dependency list: test-only crates, never linked into the gateway, so
/// they leave the library pure; still a short list, each entry a decision.
const ALLOWED_DEV_DEPENDENCIES: &[&str] = &["proptest"];

#[test]
fn dependencies_are_serde_serde_json_and_thiserror_only_and_tests_add_proptest() {
    let manifest_path = crate_dir().join("Cargo.toml");
    let manifest = fs::read_to_string(&manifest_path).unwrap();
    let mut problems = Vec::new();
    let mut section = String::new();
    for line in manifest.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            section = line.trim_matches(['[', ']']).trim().to_owned();
            let normalized = section.replace('_', "-");
            if normalized.starts_with("target.") || normalized.starts_with("build-dependencies") {
                problems.push(format!("section [{section}] is not allowed"));
            } else if let Some(name) = section.strip_prefix("dependencies.") {
                check_dependency_name(name, ALLOWED_DEPENDENCIES, &mut problems);
            } else if let Some(name) = normalized.strip_prefix("dev-dependencies.") {
                check_dependency_name(name, ALLOWED_DEV_DEPENDENCIES, &mut problems);
            }
            continue;
        }
        // `name = ...` or `name.workspace = true`.
        let name = line.split(['=', '.']).next().unwrap_or_default();
        match section.replace('_', "-").as_str() {
            "dependencies" => check_dependency_name(name, ALLOWED_DEPENDENCIES, &mut problems),
            "dev-dependencies" => {
                check_dependency_name(name, ALLOWED_DEV_DEPENDENCIES, &mut problems);
            }
            _ => {}
        }
    }
    assert!(problems.is_empty(), "{}:\n{}", manifest_path.display(), problems.join("\n"));
}

#[test]
fn every_rust_file_opens_with_a_module_doc_comment() {
    let mut missing = Vec::new();
    for dir in ["src", "tests"] {
        for path in rust_files(&crate_dir().join(dir)).unwrap() {
            let text = fs::read_to_string(&path).unwrap();
            if !text.starts_with("//!") {
                missing.push(path.display().to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "these files do not start with a `//!` line:\n{}",
        missing.join("\n")
    );
}

fn check_dependency_name(name: &str, allowed: &[&str], problems: &mut Vec<String>) {
    let name = name.trim().trim_matches('"');
    if !allowed.contains(&name) {
        problems.push(format!("dependency {name:?} is not one of {allowed:?}"));
    }
}

fn rust_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(rust_files(&path)?);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    Ok(files)
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
