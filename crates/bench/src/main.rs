//! `gateway-bench`: drives the Bedrock simulator directly and through the gateway
//! with the same load, in one run, and prints throughput, latency percentiles and
//! the gateway/direct ratios, for non-streamed calls and for streams' time to first
//! byte. Absolute figures depend on the machine; the ratios are the result.
//!
//! `--scenario quota` runs the quota benchmark instead (see [`quota`]): admission off,
//! on, and shared through Redis, against a simulator that enforces a token quota.
//! `--scenario observability` measures what metrics and the request log line cost (see
//! [`observe`]). `--scenario memory` measures a gateway process's peak memory per MiB of
//! request body, per route (see [`memory`]). `--scenario soak` runs every kind of traffic
//! at a steady rate with reloads, and checks that nothing leaks or hangs (see [`soak`]).
//! `--scenario transport` measures the gateway's CPU per request with each upstream
//! transport, the thin client and the SDK's (see [`transport`]). `--scenario hop` sets the
//! gateway's hop beside a bare nginx hop in front of the same simulator: CPU per request
//! of each process, a concurrency sweep, time to first token against direct, with the
//! gateway/nginx ratios and the performance targets (see [`hop`]). `--scenario streams`
//! measures the gateway's memory per open stream with 10,000 held open, and whether it is
//! given back after they close (see [`streams`]).

mod hop;
mod memory;
mod observe;
mod quota;
mod soak;
mod streams;
mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bedrock_sim::Simulator;
use clap::Parser;
use futures_util::StreamExt;
use tokio::sync::Semaphore;

/// Load benchmark: the simulator direct versus through the gateway (`latency`, the
/// default), or admission against a token quota (`quota`).
#[derive(Debug, Parser)]
#[command(name = "gateway-bench")]
struct Args {
    /// Which benchmark to run.
    #[arg(long, value_enum, default_value_t = Scenario::Latency)]
    scenario: Scenario,
    /// Requests per scenario (after warm-up).
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Output tokens per answer (the simulator's word count).
    #[arg(long, default_value_t = 16)]
    max_tokens: u32,
    #[command(flatten)]
    quota: quota::QuotaArgs,
    #[command(flatten)]
    observe: observe::ObserveArgs,
    #[command(flatten)]
    memory: memory::MemoryArgs,
    #[command(flatten)]
    soak: soak::SoakArgs,
    #[command(flatten)]
    transport: transport::TransportArgs,
    #[command(flatten)]
    hop: hop::HopArgs,
    #[command(flatten)]
    streams: streams::StreamsArgs,
}

/// The benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    /// The simulator direct versus through the gateway: throughput and latency ratios
    /// (flags `--requests`, `--concurrency`, `--max-tokens`).
    Latency,
    /// A token quota on the simulator, admission off / on / shared through Redis
    /// (flags `--quota-*` and the others below).
    Quota,
    /// Metrics and the request log line on versus off, two gateway processes, rounds
    /// alternating (flags `--observe-*`, `--requests`, `--concurrency`, `--max-tokens`).
    Observability,
    /// A gateway process's peak memory per MiB of request body, per route and body shape
    /// (flags `--memory-*`).
    Memory,
    /// Every kind of traffic at a steady rate (errors, throttles, slow and vanishing
    /// clients, reloads), then checks for leaks and requests never answered (flags
    /// `--soak-*`; exits 1 on a failed check).
    Soak,
    /// The upstream transport's cost: the thin client versus the SDK's, gateway processes
    /// with rounds alternating (flags `--transport-*`, `--requests`, `--concurrency`,
    /// `--max-tokens`).
    Transport,
    /// The gateway's hop beside a bare nginx hop to the same simulator: CPU per request,
    /// a concurrency sweep, time to first token, ratios and targets (flags `--hop-*`,
    /// `--requests`, `--max-tokens`).
    Hop,
    /// The gateway's memory per open stream with `--streams-count` held open, and its
    /// resident set a while after they close, against the idle one (flags `--streams-*`;
    /// exits 1 on a missed target).
    Streams,
}

/// One scenario's measurements.
struct Report {
    name: &'static str,
    requests_per_second: f64,
    p50: Duration,
    p99: Duration,
}

pub(crate) const MODEL_ID: &str = "amazon.titan-text-express-v1";
pub(crate) const PROMPT: &str = "Summarise the plot of a short story about a lighthouse keeper";

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match args.scenario {
        Scenario::Latency => runtime.block_on(run(args)),
        Scenario::Quota => runtime.block_on(quota::run(args.quota)),
        Scenario::Observability => runtime.block_on(observe::run(
            &args.observe,
            args.requests,
            args.concurrency,
            args.max_tokens,
        )),
        Scenario::Memory => runtime.block_on(memory::run(&args.memory)),
        Scenario::Soak => runtime.block_on(soak::run(&args.soak)),
        Scenario::Transport => runtime.block_on(transport::run(
            &args.transport,
            args.requests,
            args.concurrency,
            args.max_tokens,
        )),
        Scenario::Hop => runtime.block_on(hop::run(&args.hop, args.requests, args.max_tokens)),
        Scenario::Streams => runtime.block_on(streams::run(&args.streams)),
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let (sim_addr, gateway_addr) = start_pair().await?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?;
    let direct_rest = format!("http://{sim_addr}/model/{MODEL_ID}/invoke");
    let direct_stream = format!("http://{sim_addr}/model/{MODEL_ID}/invoke-with-response-stream");
    let gateway = format!("http://{gateway_addr}/v1/generate");
    let titan_body = serde_json::json!({
        "inputText": PROMPT,
        "textGenerationConfig": {"maxTokenCount": args.max_tokens},
    })
    .to_string();
    let gateway_body = |stream: bool| {
        serde_json::json!({"model": "titan", "prompt": PROMPT, "max_tokens": args.max_tokens, "stream": stream})
            .to_string()
    };

    // The simulator verifies every signature, as Bedrock does: the direct requests are
    // signed with its test key, as a client of Bedrock signs its own.
    let signer = bedrock_sim::Signer::test();
    let direct = Some(&signer);
    let scenarios: [(&'static str, String, String, Until, Option<&bedrock_sim::Signer>); 4] = [
        ("rest: direct to simulator", direct_rest, titan_body.clone(), Until::End, direct),
        ("rest: through the gateway", gateway.clone(), gateway_body(false), Until::End, None),
        ("sse ttfb: direct to simulator", direct_stream, titan_body, Until::FirstByte, direct),
        ("sse ttfb: through the gateway", gateway, gateway_body(true), Until::FirstDelta, None),
    ];
    let mut reports = Vec::new();
    for (name, url, body, until, signer) in scenarios {
        // Warm-up: connections, allocator, caches.
        let warm_up = args.requests / 10 + 1;
        measure_signed(&client, &url, &body, until, warm_up, args.concurrency, signer).await?;
        let (elapsed, mut latencies) =
            measure_signed(&client, &url, &body, until, args.requests, args.concurrency, signer)
                .await?;
        latencies.sort();
        reports.push(Report {
            name,
            requests_per_second: args.requests as f64 / elapsed.as_secs_f64(),
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
        });
    }
    print_reports(&args, &reports);
    Ok(())
}

/// When a request counts as answered.
#[derive(Clone, Copy)]
pub(crate) enum Until {
    /// The whole body has arrived.
    End,
    /// The first body bytes have arrived (the first event-stream frame).
    FirstByte,
    /// The first SSE `delta` event has arrived.
    FirstDelta,
}

/// Sends `n` requests, `concurrency` at a time; returns the wall time and each latency.
pub(crate) async fn measure(
    client: &reqwest::Client,
    url: &str,
    body: &str,
    until: Until,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    measure_signed(client, url, body, until, n, concurrency, None).await
}

/// [`measure`], each request signed by `signer` (SigV4, as the simulator requires) when
/// given, just before it is sent.
async fn measure_signed(
    client: &reqwest::Client,
    url: &str,
    body: &str,
    until: Until,
    n: usize,
    concurrency: usize,
    signer: Option<&bedrock_sim::Signer>,
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    let permits = Arc::new(Semaphore::new(concurrency));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let permit = permits.clone().acquire_owned().await?;
        let content_type = ("content-type", "application/json");
        let mut request =
            client.post(url).header(content_type.0, content_type.1).body(body.to_owned());
        if let Some(signer) = signer {
            let now = std::time::SystemTime::now();
            for (name, value) in signer.sign("POST", url, &[content_type], body.as_bytes(), now)? {
                request = request.header(name, value);
            }
        }
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            one_request(request, until).await
        }));
    }
    let mut latencies = Vec::with_capacity(n);
    for task in tasks {
        latencies.push(task.await??);
    }
    Ok((start.elapsed(), latencies))
}

async fn one_request(request: reqwest::RequestBuilder, until: Until) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let response = request.send().await?;
    if !response.status().is_success() {
        bail!("status {}", response.status());
    }
    let mut body = response.bytes_stream();
    let mut seen = Vec::new();
    let mut latency = None;
    while let Some(bytes) = body.next().await {
        let bytes = bytes?;
        seen.extend_from_slice(&bytes);
        let reached = match until {
            Until::End => false,
            Until::FirstByte => !seen.is_empty(),
            Until::FirstDelta => seen.windows(12).any(|w| w == b"event: delta"),
        };
        if reached && latency.is_none() {
            latency = Some(start.elapsed());
        }
    }
    // Streams are read to their end either way, so both sides do the same work.
    Ok(latency.unwrap_or_else(|| start.elapsed()))
}

/// The `bedrock-gateway` binary: `given`, else the one next to this program.
pub(crate) fn gateway_bin(
    given: Option<&std::path::PathBuf>,
) -> anyhow::Result<std::path::PathBuf> {
    match given {
        Some(bin) => Ok(bin.clone()),
        None => Ok(std::env::current_exe()?
            .parent()
            .context("the bench's own directory")?
            .join("bedrock-gateway")),
    }
}

/// A simulator with its defaults (verifying signatures) on loopback port 0, served on this
/// process's runtime until it exits.
pub(crate) async fn serve_simulator() -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(Simulator::new().serve(listener, std::future::pending()));
    Ok(addr)
}

/// Fails unless `bin` is a file, saying how to build it (`build`) or which flag names
/// another (`flag`).
pub(crate) fn require_built(bin: &std::path::Path, build: &str, flag: &str) -> anyhow::Result<()> {
    if !bin.is_file() {
        bail!("{} does not exist: build it with `{build}` (or pass {flag})", bin.display());
    }
    Ok(())
}

pub(crate) fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "index in range")]
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index]
}

#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn print_reports(args: &Args, reports: &[Report]) {
    println!(
        "gateway-bench: {} requests per scenario, {} in flight, {} output tokens\n",
        args.requests, args.concurrency, args.max_tokens
    );
    println!("{:<32} {:>10} {:>10} {:>10}", "scenario", "req/s", "p50 ms", "p99 ms");
    for report in reports {
        println!(
            "{:<32} {:>10.0} {:>10.2} {:>10.2}",
            report.name,
            report.requests_per_second,
            report.p50.as_secs_f64() * 1e3,
            report.p99.as_secs_f64() * 1e3
        );
    }
    println!();
    for pair in reports.chunks(2) {
        if let [direct, gateway] = pair {
            println!(
                "{:<32} throughput {:.2}x, p50 {:.2}x, p99 {:.2}x (gateway / direct)",
                gateway.name.split(':').next().unwrap_or_default(),
                gateway.requests_per_second / direct.requests_per_second,
                gateway.p50.as_secs_f64() / direct.p50.as_secs_f64(),
                gateway.p99.as_secs_f64() / direct.p99.as_secs_f64(),
            );
        }
    }
}

/// Starts the simulator and a gateway in front of it (SDK retries off), both on
/// loopback port 0, in this process.
async fn start_pair() -> anyhow::Result<(SocketAddr, SocketAddr)> {
    let sim_addr = serve_simulator().await?;
    let config_text = format!(
        "[upstream]\nkind = \"simulator\"\nendpoint_url = \"http://{sim_addr}\"\nmax_attempts = 1\n\
         [models.titan]\nmodel_id = \"{MODEL_ID}\"\n"
    );
    let config = server::Config::parse(&config_text, "bench").context("bench config")?;
    let gateway_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gateway_addr = gateway_listener.local_addr()?;
    tokio::spawn(server::run(gateway_listener, config, std::future::pending()));
    Ok((sim_addr, gateway_addr))
}
