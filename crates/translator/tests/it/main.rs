//! The translator's only integration test binary: one binary links once and runs
//! every suite in parallel.

// Golden fixtures under `tests/fixtures/<family_id>/`, checked through one helper.
mod golden;
// The family registry: ids, model-id dispatch, one fixture folder per family.
mod registry;
// Rules about the crate itself: its dependency list and the `//!` line of every file.
mod tidy;
// README.md's model-family table against each family's `params()`.
mod readme;
// Hostile input through every family (proptest): arbitrary requests, answers, chunks.
mod hostile;
// Today's text catalogue, routed in every id form.
mod catalogue;
