//! Invariants of the source tree that the compiler does not check.

use std::path::{Path, PathBuf};

#[expect(clippy::unwrap_used, reason = "a test helper fails loudly, like the test")]
fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// Whether `text` uses the transport: imports the type `Upstream` from `upstream.rs`
/// (not `UpstreamError` and the like), names `Upstream::…`, or calls its methods.
fn uses_upstream(text: &str) -> bool {
    let imports = text.match_indices("upstream::").any(|(at, _)| {
        let rest = &text[at..];
        let path = &rest[..rest.find(';').unwrap_or(rest.len())];
        is_word_in(path, "Upstream")
    });
    imports
        || text.contains("Upstream::")
        || text.contains(".invoke_raw(")
        || text.contains(".invoke_stream_raw(")
}

fn is_word_in(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        let part_of_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !part_of_word(before) && !part_of_word(after)
    })
}

/// ARCHITECTURE.md: only the pipeline reaches Bedrock; routes call the pipeline.
#[test]
fn only_the_pipeline_uses_the_upstream_transport() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let allowed = |path: &Path| {
        let relative = path.strip_prefix(&src).unwrap();
        relative.starts_with("pipeline") || relative == Path::new("upstream.rs")
    };
    let offenders: Vec<String> = files
        .iter()
        .filter(|path| !allowed(path))
        .filter(|path| uses_upstream(&std::fs::read_to_string(path).unwrap()))
        .map(|path| path.display().to_string())
        .collect();
    assert!(offenders.is_empty(), "files outside pipeline/ that use `Upstream`: {offenders:?}");
    // The check itself: what counts as a use, and what does not.
    assert!(uses_upstream("use crate::upstream::Upstream;"));
    assert!(uses_upstream("use crate::upstream::{RawRequest, Upstream};"));
    assert!(uses_upstream("state.upstream.invoke_raw(model, request)"));
    assert!(!uses_upstream("use crate::upstream::{UpstreamError, RawRequest};"));
    assert!(!uses_upstream("ApiError::Upstream(error) => BedrockApiError::Upstream(error)"));
}
