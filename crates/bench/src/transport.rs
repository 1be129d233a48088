//! `--scenario transport`: what the upstream transport costs the gateway.
//!
//! `bedrock-gateway` processes in front of one simulator (in this process), with the same
//! config but for `upstream.transport`: `thin` (the gateway's own client), `sdk` (the
//! `aws-sdk-bedrockruntime` client, its orchestrator's optional parts off), and, with
//! `--transport-baseline-bin`, another build run with `transport = "sdk"` (a build without
//! those parts off measures what turning them off saves). Each runs as in production:
//! metrics on, one JSON line per request at `info`, drained from a pipe.
//!
//! Rounds alternate the order of the processes, so that the drift of a shared machine
//! falls on each alike. The report is each one's median throughput, p50, p99 and gateway
//! CPU time per request (user + system, from `/proc/<pid>/stat`, which a busy neighbour
//! does not change) over the rounds, for whole answers (`POST /v1/generate`) and for
//! streams of `--transport-chunks` chunks (latency to the first `delta` event; throughput
//! and CPU count whole streams), and the ratios to the SDK transport.

use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::observe::{Round, median};
use crate::quota::{GatewayProcess, start_gateway};
use crate::{MODEL_ID, PROMPT, Until, measure, percentile};

/// The flags of this scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct TransportArgs {
    /// Rounds per transport (each of `--requests` requests).
    #[arg(long, default_value_t = 5)]
    pub transport_rounds: usize,
    /// The `bedrock-gateway` binary; default: next to this one.
    #[arg(long, value_name = "PATH")]
    pub transport_gateway_bin: Option<PathBuf>,
    /// Another `bedrock-gateway` build to measure beside the two transports, run with
    /// `transport = "sdk"`.
    #[arg(long, value_name = "PATH")]
    pub transport_baseline_bin: Option<PathBuf>,
    /// Chunks per streamed answer (the simulator sends one per output token).
    #[arg(long, default_value_t = 32)]
    pub transport_chunks: u32,
}

/// A gateway under measurement.
struct Contender {
    name: &'static str,
    process: GatewayProcess,
    url: String,
}

pub async fn run(
    args: &TransportArgs,
    requests: usize,
    concurrency: usize,
    max_tokens: u32,
) -> anyhow::Result<()> {
    let bin = crate::gateway_bin(args.transport_gateway_bin.as_ref())?;
    for bin in std::iter::once(&bin).chain(&args.transport_baseline_bin) {
        crate::require_built(
            bin,
            "cargo build --release -p server",
            "--transport-gateway-bin PATH",
        )?;
    }
    let sim_addr = crate::serve_simulator().await?;

    let dir = std::env::temp_dir().join(format!("gateway-bench-transport-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut gateways = vec![("thin", bin.clone(), "thin"), ("sdk", bin, "sdk")];
    if let Some(baseline) = &args.transport_baseline_bin {
        gateways.push(("baseline", baseline.clone(), "sdk"));
    }
    let mut contenders = Vec::new();
    for (name, bin, transport) in gateways {
        let config = format!(
            "metrics = true\nlog_format = \"json\"\nlog_level = \"info\"\nshutdown_delay_ms = 0\n\
             [upstream]\nkind = \"simulator\"\nendpoint_url = \"http://{sim_addr}\"\n\
             transport = \"{transport}\"\nmax_attempts = 1\n\
             [models.titan]\nmodel_id = \"{MODEL_ID}\"\n"
        );
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config)?;
        let (process, addr) = start_gateway(&bin, &path, None, false)
            .await
            .with_context(|| format!("the {name} gateway ({})", bin.display()))?;
        contenders.push(Contender { name, process, url: format!("http://{addr}/v1/generate") });
    }
    let _ = std::fs::remove_dir_all(&dir);

    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    let body = |prompt: &str, stream: bool, tokens: u32| {
        serde_json::json!({"model": "titan", "prompt": prompt, "max_tokens": tokens, "stream": stream})
            .to_string()
    };
    // The simulator's answer to a prompt is 16 to 47 words long (one chunk each), cut at
    // `max_tokens`: a prompt whose answer is long enough gives streams of exactly
    // `--transport-chunks` chunks.
    let mut stream_prompt = None;
    for idx in 0..64 {
        let prompt = format!("{PROMPT} ({idx})");
        let probe = body(&prompt, true, args.transport_chunks);
        let n_chunks = chunks_per_stream(&client, &contenders[0].url, &probe)
            .await
            .context("a first stream")?;
        if n_chunks == usize::try_from(args.transport_chunks).unwrap_or(usize::MAX) {
            stream_prompt = Some(prompt);
            break;
        }
    }
    let stream_prompt = stream_prompt.with_context(|| {
        format!("no prompt tried gives streams of {} chunks", args.transport_chunks)
    })?;
    print_header(args, requests, concurrency, max_tokens);
    let cases = [
        ("rest", body(PROMPT, false, max_tokens), Until::End),
        ("sse", body(&stream_prompt, true, args.transport_chunks), Until::FirstDelta),
    ];
    for (case, body, until) in cases {
        for contender in &contenders {
            let warm_up = requests / 10 + 1;
            measure(&client, &contender.url, &body, until, warm_up, concurrency)
                .await
                .with_context(|| {
                    format!(
                        "the {} gateway's requests (a build whose simulator keys the simulator \
                         refuses answers 502)",
                        contender.name
                    )
                })?;
        }
        let mut rounds: Vec<Vec<Round>> = contenders.iter().map(|_| Vec::new()).collect();
        for round in 0..args.transport_rounds {
            let mut order: Vec<usize> = (0..contenders.len()).collect();
            order.rotate_left(round % contenders.len());
            for which in order {
                let contender = &contenders[which];
                let cpu_before = contender.process.cpu_time().unwrap_or_default();
                let (elapsed, mut latencies) =
                    measure(&client, &contender.url, &body, until, requests, concurrency).await?;
                let cpu = contender.process.cpu_time().unwrap_or_default() - cpu_before;
                latencies.sort();
                rounds[which].push(Round {
                    requests_per_second: requests as f64 / elapsed.as_secs_f64(),
                    p50: percentile(&latencies, 0.50),
                    p99: percentile(&latencies, 0.99),
                    cpu_per_request: cpu / u32::try_from(requests).unwrap_or(u32::MAX),
                });
            }
        }
        let medians: Vec<Round> = rounds.iter().map(|r| median(r)).collect();
        print_case(case, &contenders, &rounds, &medians);
    }
    Ok(())
}

/// The `delta` events of one stream (also the hop scenario's).
pub(crate) async fn chunks_per_stream(
    client: &reqwest::Client,
    url: &str,
    body: &str,
) -> anyhow::Result<usize> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("status {}", response.status());
    }
    let text = response.text().await?;
    Ok(text.matches("event: delta").count())
}

#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn print_header(args: &TransportArgs, requests: usize, concurrency: usize, max_tokens: u32) {
    println!(
        "gateway-bench transport: {} rounds per gateway of {requests} requests, {concurrency} in \
         flight; whole answers of {max_tokens} tokens, streams of {} chunks; medians over the \
         rounds\n",
        args.transport_rounds, args.transport_chunks
    );
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>16}",
        "case", "req/s", "p50 ms", "p99 ms", "gateway CPU µs"
    );
}

#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn print_case(case: &str, contenders: &[Contender], rounds: &[Vec<Round>], medians: &[Round]) {
    for (contender, round) in contenders.iter().zip(medians) {
        println!(
            "{:<22} {:>10.0} {:>10.2} {:>10.2} {:>16.1}",
            format!("{case}: {}", contender.name),
            round.requests_per_second,
            round.p50.as_secs_f64() * 1e3,
            round.p99.as_secs_f64() * 1e3,
            round.cpu_per_request.as_secs_f64() * 1e6,
        );
    }
    for (contender, rounds) in contenders.iter().zip(rounds) {
        let all: Vec<String> = rounds
            .iter()
            .map(|r| format!("{:.1}", r.cpu_per_request.as_secs_f64() * 1e6))
            .collect();
        println!("{case} {:>8} CPU µs by round: {}", contender.name, all.join(" "));
    }
    let sdk = contenders.iter().position(|c| c.name == "sdk").and_then(|at| medians.get(at));
    if let Some(sdk) = sdk {
        for (contender, round) in contenders.iter().zip(medians).filter(|(c, _)| c.name != "sdk") {
            println!(
                "{case}: {} / sdk: gateway CPU per request {:.2}x, throughput {:.2}x, p50 {:.2}x, \
                 p99 {:.2}x",
                contender.name,
                round.cpu_per_request.as_secs_f64() / sdk.cpu_per_request.as_secs_f64(),
                round.requests_per_second / sdk.requests_per_second,
                round.p50.as_secs_f64() / sdk.p50.as_secs_f64(),
                round.p99.as_secs_f64() / sdk.p99.as_secs_f64(),
            );
        }
    }
    println!();
}
