//! The `e2e` crate has no library code: its tests live in `tests/it/`, one binary,
//! and drive the gateway and the simulator over real HTTP.
