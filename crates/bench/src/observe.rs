//! `--scenario observability`: what observing costs the hot path.
//!
//! Two `bedrock-gateway` processes in front of one simulator (in this process), the same
//! config but for its telemetry:
//!
//! - **on**: `metrics = true` and the one JSON line per request at `info` (what a
//!   production replica runs), its log drained from a pipe in large reads, as a log
//!   shipper reads;
//! - **off**: `metrics = false` and `log_level = "warn,server=info"` (the start-up lines,
//!   no request lines).
//!
//! Rounds alternate between the two (which one goes first alternates too), so that the
//! drift of a shared machine falls on both. The report is each one's median throughput,
//! p50, p99 and gateway CPU time per request (from `/proc/<pid>/stat`, which a busy
//! neighbour does not change) over the rounds, and the on/off ratios, for whole answers
//! and for streams (whose latency is to the first `delta` event; throughput counts whole
//! streams).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::quota::{start_gateway, start_gateway_under};
use crate::{MODEL_ID, PROMPT, Until, measure, percentile};

/// The flags of this scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct ObserveArgs {
    /// Rounds per mode (each of `--requests` requests).
    #[arg(long, default_value_t = 5)]
    pub observe_rounds: usize,
    /// The `bedrock-gateway` binary; default: next to this one.
    #[arg(long, value_name = "PATH")]
    pub observe_gateway_bin: Option<PathBuf>,
    /// The telemetry keys of the "on" gateway's config (`;` separates lines).
    #[arg(long, default_value = "metrics = true; log_format = \"json\"; log_level = \"info\"")]
    pub observe_on: String,
    /// Also count the instructions each gateway executes for N whole answers and N/4
    /// streams, under `valgrind --tool=callgrind`: exact and repeatable, which timings
    /// on a shared machine are not.
    #[arg(long, value_name = "N")]
    pub observe_instructions: Option<usize>,
    /// The telemetry keys of the "off" gateway's config (`;` separates lines).
    #[arg(long, default_value = "metrics = false; log_level = \"warn,server=info\"")]
    pub observe_off: String,
}

/// One round's figures.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Round {
    pub(crate) requests_per_second: f64,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    /// The gateway process's own CPU time per request.
    pub(crate) cpu_per_request: Duration,
}

pub async fn run(
    args: &ObserveArgs,
    requests: usize,
    concurrency: usize,
    max_tokens: u32,
) -> anyhow::Result<()> {
    let bin = crate::gateway_bin(args.observe_gateway_bin.as_ref())?;
    crate::require_built(&bin, "cargo build --release -p server", "--observe-gateway-bin PATH")?;
    let sim_addr = crate::serve_simulator().await?;

    let dir = std::env::temp_dir().join(format!("gateway-bench-observe-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = |telemetry: &str| {
        format!(
            "{telemetry}\nshutdown_delay_ms = 0\n[upstream]\nkind = \"simulator\"\nendpoint_url = \"http://{sim_addr}\"\n\
             max_attempts = 1\n[models.titan]\nmodel_id = \"{MODEL_ID}\"\n"
        )
    };
    let on_path = dir.join("on.toml");
    let off_path = dir.join("off.toml");
    std::fs::write(&on_path, config(&args.observe_on.replace(';', "\n")))?;
    std::fs::write(&off_path, config(&args.observe_off.replace(';', "\n")))?;
    if let Some(n) = args.observe_instructions {
        let on = instructions_per_request(&bin, &on_path, &dir, n, max_tokens).await?;
        let off = instructions_per_request(&bin, &off_path, &dir, n, max_tokens).await?;
        print_instructions(n, on, off);
    }
    let (on_process, on_addr) = start_gateway(&bin, &on_path, None, false).await?;
    let (off_process, off_addr) = start_gateway(&bin, &off_path, None, false).await?;
    let processes = [&on_process, &off_process];
    let _ = std::fs::remove_dir_all(&dir);

    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    let body = |stream: bool| {
        serde_json::json!({"model": "titan", "prompt": PROMPT, "max_tokens": max_tokens, "stream": stream})
            .to_string()
    };
    print_header(args, requests, concurrency, max_tokens);
    for (name, stream, until) in [("rest", false, Until::End), ("sse", true, Until::FirstDelta)] {
        let body = body(stream);
        let urls =
            [format!("http://{on_addr}/v1/generate"), format!("http://{off_addr}/v1/generate")];
        for url in &urls {
            measure(&client, url, &body, until, requests / 10 + 1, concurrency).await?;
        }
        let mut rounds: [Vec<Round>; 2] = [Vec::new(), Vec::new()];
        for round in 0..args.observe_rounds {
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for which in order {
                let cpu_before = processes[which].cpu_time().unwrap_or_default();
                let (elapsed, mut latencies) =
                    measure(&client, &urls[which], &body, until, requests, concurrency).await?;
                let cpu = processes[which].cpu_time().unwrap_or_default() - cpu_before;
                latencies.sort();
                rounds[which].push(Round {
                    requests_per_second: requests as f64 / elapsed.as_secs_f64(),
                    p50: percentile(&latencies, 0.50),
                    p99: percentile(&latencies, 0.99),
                    cpu_per_request: cpu / u32::try_from(requests).unwrap_or(u32::MAX),
                });
            }
        }
        print_spread(name, &rounds);
        let [on, off] = rounds.map(|r| median(&r));
        print_pair(name, on, off);
    }
    Ok(())
}

/// The instructions the gateway of `config` executes per request, under callgrind: a
/// run with `n` whole answers and `n / 4` streams, less a run with none (start-up and
/// shutdown), divided by the requests.
async fn instructions_per_request(
    bin: &Path,
    config: &Path,
    dir: &Path,
    n: usize,
    max_tokens: u32,
) -> anyhow::Result<f64> {
    let mut totals = Vec::new();
    for requests in [0, n] {
        let name = config.file_stem().and_then(|s| s.to_str()).unwrap_or("gateway");
        let out = dir.join(format!("{name}.{requests}.callgrind"));
        let wrapper = [
            "valgrind".to_owned(),
            "--tool=callgrind".to_owned(),
            format!("--callgrind-out-file={}", out.display()),
            format!("--log-file={}", dir.join(format!("{name}.{requests}.valgrind")).display()),
        ];
        let (process, addr) = start_gateway_under(&wrapper, bin, config, None, false)
            .await
            .context("valgrind runs the gateway (apt-get install valgrind)")?;
        let client = reqwest::Client::builder().pool_max_idle_per_host(1).build()?;
        let url = format!("http://{addr}/v1/generate");
        for idx in 0..requests + requests / 4 {
            let stream = idx >= requests;
            let body = serde_json::json!({"model": "titan", "prompt": PROMPT, "max_tokens": max_tokens, "stream": stream});
            let response = client.post(&url).json(&body).send().await?;
            if !response.status().is_success() {
                bail!("status {}", response.status());
            }
            response.bytes().await?;
        }
        process.terminate()?;
        let text = std::fs::read_to_string(&out)?;
        let summary = text
            .lines()
            .find_map(|line| line.strip_prefix("summary: "))
            .context("no summary line in the callgrind output")?;
        totals.push(summary.trim().parse::<f64>()?);
    }
    let requests = (n + n / 4).max(1) as f64;
    Ok((totals[1] - totals[0]) / requests)
}

#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn print_instructions(n: usize, on: f64, off: f64) {
    println!(
        "instructions per request (callgrind, {n} whole answers + {} streams, start-up \
         subtracted):\n  on  {on:.0}\n  off {off:.0}\n  on/off {:.4} ({:+.2}%)\n",
        n / 4,
        on / off,
        (on / off - 1.0) * 100.0
    );
}

/// The median of each figure over the rounds (also the transport scenario's).
pub(crate) fn median(rounds: &[Round]) -> Round {
    let mid = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or_default()
    };
    let rps = mid(rounds.iter().map(|r| r.requests_per_second).collect());
    let p50 = mid(rounds.iter().map(|r| r.p50.as_secs_f64()).collect());
    let p99 = mid(rounds.iter().map(|r| r.p99.as_secs_f64()).collect());
    let cpu = mid(rounds.iter().map(|r| r.cpu_per_request.as_secs_f64()).collect());
    Round {
        requests_per_second: rps,
        p50: Duration::from_secs_f64(p50),
        p99: Duration::from_secs_f64(p99),
        cpu_per_request: Duration::from_secs_f64(cpu),
    }
}

#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn print_header(args: &ObserveArgs, requests: usize, concurrency: usize, max_tokens: u32) {
    println!(
        "gateway-bench observability: {} rounds per mode of {requests} requests, {concurrency} \
         in flight, {max_tokens} output tokens; medians over the rounds\n",
        args.observe_rounds
    );
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>14}",
        "case", "req/s", "p50 ms", "p99 ms", "gateway CPU µs"
    );
}

/// Every round's throughput, in the order run, to show the spread behind the medians.
#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn print_spread(name: &str, rounds: &[Vec<Round>; 2]) {
    for (mode, rounds) in ["on", "off"].iter().zip(rounds) {
        let all: Vec<String> =
            rounds.iter().map(|r| format!("{:.0}", r.requests_per_second)).collect();
        println!("{name} {mode:>3} req/s by round: {}", all.join(" "));
    }
}

#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn print_pair(name: &str, on: Round, off: Round) {
    for (mode, round) in [("on", on), ("off", off)] {
        println!(
            "{:<28} {:>10.0} {:>10.2} {:>10.2} {:>14.1}",
            format!("{name}: observability {mode}"),
            round.requests_per_second,
            round.p50.as_secs_f64() * 1e3,
            round.p99.as_secs_f64() * 1e3,
            round.cpu_per_request.as_secs_f64() * 1e6,
        );
    }
    let ratio = on.requests_per_second / off.requests_per_second;
    println!(
        "{name}: throughput on/off {ratio:.3} ({:+.1}%), p50 {:.2}x, p99 {:.2}x, gateway CPU per \
         request {:.2}x\n",
        (ratio - 1.0) * 100.0,
        on.p50.as_secs_f64() / off.p50.as_secs_f64(),
        on.p99.as_secs_f64() / off.p99.as_secs_f64(),
        on.cpu_per_request.as_secs_f64() / off.cpu_per_request.as_secs_f64(),
    );
}
