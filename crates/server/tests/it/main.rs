//! The `bedrock-gateway` binary as a user runs it: flags, `check-config`, and the
//! quick start with the shipped config. One test binary (see ARCHITECTURE.md).

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers shared by #[test] functions fail loudly, like the tests themselves"
)]

/// `--help`, `check-config` on good and bad files, and serving the shipped config.
mod cli;
/// The thin transport against the SDK's: the same calls to the simulator, the same
/// outcomes; the same request on the wire.
mod conformance;
/// No AWS credentials: one loud line, unready, 502 on every API; Bedrock's echoing
/// messages logged once, at `info`, bounded.
mod credentials;
/// The logs (one JSON line per request, no prompts) and config reloads of the binary.
mod logs;
/// SIGTERM and Ctrl-C: the drain's steps and exit status; a second signal exits at once.
mod signals;
/// Source-tree invariants: only the pipeline uses the upstream transport.
mod tidy;
