//! Runs the real `bedrock-gateway` binary.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

fn gateway() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bedrock-gateway"));
    command.current_dir(workspace_root());
    command
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn help_explains_every_flag() {
    let output = gateway().arg("--help").output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    for needle in ["--config", "--listen", "check-config", "HOST:PORT"] {
        assert!(text.contains(needle), "--help lacks {needle}:\n{text}");
    }
}

#[test]
fn shipped_configs_pass_check_config() {
    for file in ["config/gateway.toml", "config/bedrock.example.toml"] {
        let output = gateway().args(["check-config", file]).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{file}: {stderr}");
        assert!(stderr.contains("OK"), "{stderr}");
    }
    // The shipped config keeps one alias per family, legacy ones included: warned about.
    let output = gateway().args(["check-config", "config/gateway.toml"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    for alias in ["claude-v2", "claude-instant"] {
        assert!(stderr.contains(&format!("warning: `models.{alias}`")), "{stderr}");
    }
}

#[test]
fn check_config_names_every_bad_key() {
    let dir = std::env::temp_dir().join(format!("gateway-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[upstream]\nkind = \"bedrock\"\nmax_attempts = 0\n[models.x]\nmodel_id = \"acme.thing-v1\"\n").unwrap();
    let output = gateway().arg("check-config").arg(&path).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("upstream.max_attempts"), "{stderr}");
    assert!(stderr.contains("models.x.model_id"), "{stderr}");

    std::fs::write(&path, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let output = gateway().arg("check-config").arg(&path).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("lisen"));

    // Unknown keys in nested tables, an absurd timeout, a default the family cannot
    // honour and a contradicting family: all in one run, each by its key's path.
    let text = "[upstream]\nrequest_timeout_ms = 9223372036854775807\n\
                [models.x]\nmodel_id = \"amazon.titan-text-express-v1\"\n\
                defaults = { top_k = 3, max_tokenz = 4 }\n\
                bedrock = { servce_tier = \"flex\" }\n\
                [models.y]\nmodel_id = \"amazon.titan-text-lite-v1\"\nfamily = \"meta_llama3\"\n\
                [[auth.keys]]\nname = \"a\"\nsha256_env = \"A\"\nmodles = [\"x\"]\n";
    std::fs::write(&path, text).unwrap();
    let output = gateway().arg("check-config").arg(&path).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for key in [
        "models.x.defaults.max_tokenz",
        "models.x.bedrock.servce_tier",
        "auth.keys[0].modles",
        "upstream.request_timeout_ms",
        "models.x.defaults.top_k",
        "models.y.family",
        "auth.keys[0].sha256_env",
    ] {
        assert!(stderr.contains(key), "{key} in {stderr}");
    }

    let output = gateway().args(["check-config", "/nonexistent/gateway.toml"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read"));
}

#[tokio::test]
async fn quick_start_serves_the_shipped_config_and_prints_its_address() {
    let mut child = gateway()
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("http://127.0.0.1:")
                && line.contains("listening")
            {
                let address: String =
                    line[at..].chars().take_while(|c| !c.is_whitespace()).collect();
                let _ = tx.send(address);
            }
        }
    });
    let address = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    let client = reqwest::Client::new();
    let body: serde_json::Value = client
        .post(format!("{address}/v1/generate"))
        .body(r#"{"model":"titan-express","prompt":"Hello"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["stop_reason"], "end_turn", "{body}");
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn hash_key_prints_the_sha256_the_config_takes() {
    use std::io::Write;
    let mut child =
        gateway().arg("hash-key").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"abc\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().trim(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
