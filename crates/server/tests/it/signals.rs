//! The binary's shutdown as Kubernetes and a terminal drive it: SIGTERM (or Ctrl-C)
//! drains and exits 0, logging each step; a second signal exits at once.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `bedrock-gateway` on free ports with the embedded simulator; its log kept by line.
struct Gateway {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    dir: PathBuf,
}

impl Gateway {
    fn start(top_level: &str) -> Gateway {
        let dir = std::env::temp_dir().join(format!(
            "gw-signals-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("gateway.toml");
        let text = format!(
            "{top_level}\n[upstream]\nkind = \"simulator\"\n\n\
             [models.titan]\nmodel_id = \"amazon.titan-text-express-v1\"\n"
        );
        std::fs::write(&config, text).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_bedrock-gateway"))
            .arg("--config")
            .arg(&config)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        let gateway = Gateway { child, lines, dir };
        gateway.wait_for_line("bedrock-gateway listening");
        gateway
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    fn wait_for_line(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.text().contains(needle) {
            assert!(Instant::now() < deadline, "no {needle:?} in:\n{}", self.text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args([&format!("-{name}"), &pid]).status().unwrap().success());
    }

    /// Waits for the process to exit, at most `limit`.
    fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "still running after {limit:?}:\n{}", self.text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn sigterm_drains_and_exits_zero_with_one_line_per_step() {
    let mut gateway = Gateway::start("shutdown_delay_ms = 200\ndrain_timeout_ms = 2000");
    gateway.signal("TERM");
    let status = gateway.exit_within(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", gateway.text());
    // Each step once, in order.
    let text = gateway.text();
    let mut at = 0;
    for step in [
        "shutdown: signal received",
        "signal=\"SIGTERM\"",
        "shutdown: readiness off",
        "shutdown: listener closed",
        "shutdown: drained",
        "shutdown: done",
    ] {
        let found = text[at..].find(step).unwrap_or_else(|| panic!("no {step:?} after:\n{text}"));
        at += found + step.len();
    }
}

#[test]
fn a_second_signal_exits_at_once() {
    // The delay alone would keep the gateway up for ten minutes.
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let mut gateway = Gateway::start("shutdown_delay_ms = 300000");
        gateway.signal(signal);
        gateway.wait_for_line("shutdown: readiness off");
        gateway.signal(signal);
        let status = gateway.exit_within(Duration::from_secs(30));
        assert_eq!(status.code(), Some(code), "{}", gateway.text());
        assert!(gateway.text().contains("second signal"), "{}", gateway.text());
    }
}
