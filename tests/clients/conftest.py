"""Fixtures for the client suite: the real `bedrock-sim` and `bedrock-gateway` binaries,
each on a free loopback port, driven by the official OpenAI and AWS Python clients.

The binaries come from cargo's target directory (`target/debug/`, or `$CARGO_TARGET_DIR`),
built before pytest runs (`tests/run` does it). One simulator and one gateway serve the
whole session; the simulator's behaviors are cleared after every test.
"""

from __future__ import annotations

import json
import os
import re
import select
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import boto3
import openai
import pytest
from botocore.config import Config as BotoConfig

ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"
START_TIMEOUT_SECONDS = 60

# Alias -> Bedrock model id, the gateway's test configuration.
MODELS = {
    "titan": "amazon.titan-text-express-v1",
    "claude-v2": "anthropic.claude-v2:1",
    "claude-3": "anthropic.claude-3-haiku-20240307-v1:0",
    "llama3": "meta.llama3-8b-instruct-v1:0",
    "nova-lite": "amazon.nova-lite-v1:0",
    "titan-arn": "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-express-v1",
    "titan-embed": "amazon.titan-embed-text-v2:0",
    "titan-image": "amazon.titan-image-generator-v2:0",
}


@dataclass
class Simulator:
    """The `bedrock-sim` process: its URL and its control API (`/_sim`)."""

    url: str

    def set_behavior(self, model_id: str, behavior: dict) -> None:
        """`PUT /_sim/behavior/{model_id}`; `model_id` is the id the simulator receives."""
        path = "/_sim/behavior/" + urllib.parse.quote(model_id, safe="")
        self._send("PUT", path, json.dumps(behavior).encode())

    def clear_behaviors(self) -> None:
        self._send("DELETE", "/_sim/behavior", None)

    def _send(self, method: str, path: str, body: bytes | None) -> None:
        request = urllib.request.Request(self.url + path, data=body, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 204, f"{method} {path}: {response.status}"


def _start(command: list[str], log_path: Path, address_pattern: str):
    """Starts `command` with stderr in `log_path` and returns it with the first capture of
    `address_pattern` in its log (the address it bound, as printed at start-up)."""
    log = open(log_path, "wb")
    env = dict(os.environ, RUST_LOG="info", NO_COLOR="1")
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
    )
    log.close()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        found = re.search(address_pattern, text)
        if found:
            return process, found.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    _stop(process)
    pytest.fail(f"{command[0]} did not print its address:\n{log_path.read_text(errors='replace')}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM (the gateway drains and exits), then SIGKILL if it is still there."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _binary(name: str) -> str:
    path = BIN_DIR / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `cargo build -p server -p bedrock-sim --bins` first")
    return str(path)


def _wait_ready(base_url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            with urllib.request.urlopen(base_url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{base_url}/readyz never answered 200")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def simulator(tmp_path_factory) -> Simulator:
    logs = tmp_path_factory.mktemp("logs")
    process, url = _start(
        [_binary("bedrock-sim"), "--listen", "127.0.0.1:0"],
        logs / "bedrock-sim.log",
        r"endpoint_url=(http://127\.0\.0\.1:\d+)",
    )
    yield Simulator(url)
    _stop(process)


@pytest.fixture(scope="session")
def gateway(simulator, tmp_path_factory) -> str:
    """The gateway's base URL, `http://127.0.0.1:PORT`."""
    directory = tmp_path_factory.mktemp("gateway")
    lines = [
        # Stop at once at the end of the session: no load balancer to wait for.
        "shutdown_delay_ms = 0",
        # The Responses API's store, so that `previous_response_id`, `responses.retrieve`
        # and `responses.delete` are exercised (test_openai_responses.py).
        "[responses]",
        "store_max_entries = 100",
        "[upstream]",
        'kind = "simulator"',
        f'endpoint_url = "{simulator.url}"',
        "max_attempts = 1",
        "request_timeout_ms = 30000",
    ]
    for alias, model_id in MODELS.items():
        lines += ["", f"[models.{alias}]", f'model_id = "{model_id}"']
    config = directory / "gateway.toml"
    config.write_text("\n".join(lines) + "\n")
    process, base_url = _start(
        [
            _binary("bedrock-gateway"),
            "--config",
            str(config),
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ],
        directory / "bedrock-gateway.log",
        r"bedrock-gateway listening address=(http://127\.0\.0\.1:\d+)",
    )
    try:
        _wait_ready(base_url)
        yield base_url
    finally:
        _stop(process)


@dataclass
class TlsFront:
    """A TLS terminator on a loopback port that forwards bytes to the gateway, for the
    clients that send credentials only over HTTPS (boto3's bearer token)."""

    url: str
    ca_file: str


def _relay(client: socket.socket, context: ssl.SSLContext, backend: tuple[str, int]) -> None:
    """One connection: the TLS handshake, then bytes both ways until either side closes.
    One thread per connection, so the TLS object is never used by two threads at once."""
    try:
        with context.wrap_socket(client, server_side=True) as front, socket.create_connection(
            backend, timeout=10
        ) as back:
            while True:
                ready = [front] if front.pending() else select.select([front, back], [], [], 60)[0]
                if not ready:
                    return
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        return
                    (back if source is front else front).sendall(data)
    except OSError:
        pass  # a failed handshake or a reset ends this connection only


def _serve_tls(listener: socket.socket, context: ssl.SSLContext, backend: tuple[str, int]):
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return  # the listener was closed
        threading.Thread(target=_relay, args=(client, context, backend), daemon=True).start()


@pytest.fixture(scope="session")
def gateway_tls(gateway, tmp_path_factory) -> TlsFront:
    """`https://127.0.0.1:PORT` in front of the gateway, with a self-signed certificate."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    host, port = re.match(r"http://([\d.]+):(\d+)", gateway).groups()
    threading.Thread(
        target=_serve_tls, args=(listener, context, (host, int(port))), daemon=True
    ).start()
    yield TlsFront(f"https://127.0.0.1:{listener.getsockname()[1]}", str(cert))
    listener.close()


@pytest.fixture(autouse=True)
def client_environment(monkeypatch):
    """Keeps the caller's AWS and proxy settings out of the clients: no profile, no config
    file, no bearer token unless a test sets one, no proxy for loopback."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_BEARER_TOKEN_BEDROCK",
                 "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(autouse=True)
def reset_simulator(simulator):
    """Every test starts and ends with a simulator that behaves normally."""
    yield
    simulator.clear_behaviors()


@pytest.fixture
def openai_client(gateway) -> openai.OpenAI:
    """The OpenAI SDK pointed at the gateway; no retries, so errors surface at once."""
    client = openai.OpenAI(base_url=gateway + "/v1", api_key="sk-test", max_retries=0, timeout=30)
    yield client
    client.close()


def bedrock_client(gateway: str, verify: str | None = None):
    """boto3's `bedrock-runtime` pointed at the gateway, with static credentials (the
    gateway does not verify signatures) and one attempt per call; `verify` is the CA file
    of an https endpoint."""
    return boto3.session.Session().client(
        "bedrock-runtime",
        endpoint_url=gateway,
        verify=verify,
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        config=BotoConfig(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=30),
    )


@pytest.fixture
def bedrock(gateway):
    return bedrock_client(gateway)
