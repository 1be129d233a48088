//! `--scenario hop`: the gateway's hop against a bare reverse-proxy hop, nginx, in front
//! of the same simulator, side by side in one run.
//!
//! # What runs
//!
//! - One `bedrock-sim` process (the binary built next to this one, or
//!   `--hop-simulator-bin`), which verifies the SigV4 signature of every request, as
//!   Bedrock does, and answers at once.
//! - One `bedrock-gateway` process as it ships: metrics on, one JSON line per request at
//!   `info` (drained from a pipe), the default (thin) transport. Its hop is
//!   `POST /v1/generate`, whole (`stream: false`) and as SSE (`stream: true`).
//! - One nginx: a master and `worker_processes` workers, as many as the gateway's tokio
//!   runtime has workers (one per CPU, `std::thread::available_parallelism`; or
//!   `--hop-nginx-workers`), its config generated in a temp dir ([`nginx_config`]: daemon
//!   off, an upstream keepalive pool, `proxy_buffering off`, the error log in the temp
//!   dir). Its hop forwards Bedrock's own `POST /model/{id}/invoke` and
//!   `/invoke-with-response-stream` to the simulator. It is found with `--hop-nginx`, on
//!   `PATH` or at `/usr/sbin/nginx`, or else, as root with `apt-get`, installed from
//!   Debian's `nginx-light` without starting its service (a `policy-rc.d` that exits 101
//!   during the install); where none of that works its rows are skipped, with one line
//!   saying why, and the rest is still measured.
//!
//! # Keeping the comparison fair
//!
//! - **Access log on.** nginx writes one JSON line per request (`buffer=64k flush=1s`),
//!   as the gateway writes its JSON request line, batched by its log thread: a silent
//!   nginx would be compared with a logging gateway.
//! - **Signing in the load generator, once per round.** The simulator verifies SigV4 and
//!   nginx does not sign, so the bench signs the requests it sends through nginx (and
//!   those it sends direct) with the simulator's test key, once per round (the body
//!   never changes and a signature is good for 5 minutes): the simulator then does the
//!   same work behind both hops, verification included, and the load generator no
//!   per-request work on one side only. The gateway signs each request itself, as it
//!   ships: that is part of its hop. (A second simulator, unverified, for nginx would
//!   spare nginx's side the verification and make the two hops' simulators differ.)
//! - **The simulator in its own process,** not on the bench's tokio workers, where its
//!   work would queue behind the load generator's (and the reverse) and add to every
//!   latency; its CPU per request is printed beside each hop's (the same requests behind
//!   both, though cheaper per request at a higher rate, with fewer wake-ups each).
//! - **Rounds alternate** the order of the contenders (as the transport and observability
//!   scenarios do), so the drift of a shared machine falls on each alike; each round
//!   opens a fresh client (the round's signature) and warms it up first. The figures are
//!   medians over the rounds.
//!
//! # CPU per request
//!
//! Of each measured process: the gateway; nginx's master and workers summed. It is the
//! sum over the processes' threads of `/proc/<pid>/task/<tid>/schedstat` (nanoseconds on
//! a CPU, the total that utime + stime are drawn from: their 10 ms ticks in
//! `/proc/<pid>/stat` are too coarse for nginx's 30 to 100 ms of a 2,000-request round); where
//! a thread exited during the round, `/proc/<pid>/stat`'s utime + stime, which keep it.
//!
//! # Report
//!
//! 1. The concurrency sweep (`--hop-concurrency`, default 1, 16, 256), whole answers
//!    (`--max-tokens` tokens) and streams of exactly `--hop-chunks` chunks (32; a prompt
//!    that gives that many is searched for, as the transport scenario does): each hop's
//!    throughput, p50 and p99 (to the whole answer; for streams to the first `delta`
//!    event or event-stream frame, while throughput and CPU count whole streams) and CPU
//!    per request, and on each row the ratios gateway / nginx of CPU and throughput.
//! 2. Time to first token at `--hop-ttft-concurrency` (1) streams in flight: direct to
//!    the simulator (first event-stream frame), through the gateway (first `delta`) and
//!    through nginx; p50 and p99 and what each hop adds (the median over rounds of the
//!    round's difference to direct, which pairs neighbouring measurements).
//! 3. Resident memory with `--hop-open-streams` streams open at once (10,000), held by
//!    the simulator after their first chunk ([`streams::measure`], the streams
//!    scenario's measurement): of the gateway process, and of an nginx of one worker
//!    started for it (so that one process holds every stream, as the gateway does).
//!    Every process started here inherits the bench's descriptor limit, raised first: a
//!    proxy holds two descriptors per open stream, so where the hard limit cannot be
//!    raised (no `CAP_SYS_RESOURCE`) the streams are as many as it allows, and the report
//!    says so. The gateway's caps on connections and requests in flight are raised for
//!    them (counters, which cost the same at any value).
//! 4. The targets, each met or not met: REST CPU ≤ 2× nginx's and throughput
//!    ≥ 0.7× nginx's at 16 in flight, SSE CPU ≤ 3× nginx's at 16 in flight, added time
//!    to first token ≤ 0.3 ms at p50, memory ≤ 25 KiB per open stream.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use reqwest::header::{HeaderMap, HeaderValue};
use tokio::sync::oneshot;

use crate::observe::{Round, median};
use crate::quota::{ChildGuard, GatewayProcess, cpu_time_of, start_gateway};
use crate::streams::{
    self, SimControl, StreamsMemory, StreamsPlan, StreamsTarget, raise_descriptor_limit,
};
use crate::transport::chunks_per_stream;
use crate::{MODEL_ID, PROMPT, Until, measure, percentile};

/// The flags of this scenario.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Hop scenario (--scenario hop)")]
pub struct HopArgs {
    /// Rounds per contender and sweep point (each of `--requests` requests).
    #[arg(long, default_value_t = 5)]
    pub hop_rounds: usize,
    /// The concurrency sweep: requests in flight at once, one point each.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 256])]
    pub hop_concurrency: Vec<usize>,
    /// Chunks per streamed answer (a prompt whose answer has exactly that many is used).
    #[arg(long, default_value_t = 32)]
    pub hop_chunks: u32,
    /// Streams in flight at once while the time to first token is measured.
    #[arg(long, default_value_t = 1)]
    pub hop_ttft_concurrency: usize,
    /// Streams held open at once for the resident-memory figure.
    #[arg(long, default_value_t = 10_000)]
    pub hop_open_streams: usize,
    /// The `bedrock-gateway` binary; default: next to this one.
    #[arg(long, value_name = "PATH")]
    pub hop_gateway_bin: Option<PathBuf>,
    /// The `bedrock-sim` binary; default: next to this one.
    #[arg(long, value_name = "PATH")]
    pub hop_simulator_bin: Option<PathBuf>,
    /// The nginx binary; default: `nginx` on PATH, else /usr/sbin/nginx, else installed
    /// (as root, with apt-get).
    #[arg(long, value_name = "PATH")]
    pub hop_nginx: Option<PathBuf>,
    /// nginx's worker processes; default: the CPUs (the gateway's runtime workers).
    #[arg(long)]
    pub hop_nginx_workers: Option<usize>,
}

/// Where a contender's requests go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    Gateway,
    Nginx,
    /// Straight to the simulator (the time to first token's baseline).
    Direct,
}

impl Hop {
    fn name(self) -> &'static str {
        match self {
            Hop::Gateway => "gateway",
            Hop::Nginx => "nginx",
            Hop::Direct => "direct",
        }
    }
}

/// Whole answers or streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Rest,
    Sse,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Rest => "rest",
            Case::Sse => "sse",
        }
    }
}

/// One contender of a measurement: its hop, and the request it is sent.
struct Target {
    hop: Hop,
    url: String,
    body: String,
    until: Until,
}

/// One contender's round.
#[derive(Debug, Clone, Copy)]
struct Measured {
    round: Round,
    /// The simulator's CPU time per request meanwhile.
    simulator_cpu: Duration,
}

/// One point of the sweep: each hop's rounds (nginx's empty without nginx).
struct SweepPoint {
    case: Case,
    concurrency: usize,
    gateway: Vec<Measured>,
    nginx: Vec<Measured>,
}

/// The processes under measurement.
struct Lineup {
    simulator: SimulatorProcess,
    gateway: GatewayProcess,
    gateway_addr: String,
    nginx: Option<Nginx>,
}

/// Runs the scenario and prints its report.
/// Ctrl-C ends it early, its processes stopped and its temp dir removed.
pub async fn run(args: &HopArgs, requests: usize, max_tokens: u32) -> anyhow::Result<()> {
    if args.hop_rounds == 0
        || requests == 0
        || args.hop_ttft_concurrency == 0
        || args.hop_concurrency.contains(&0)
    {
        bail!(
            "--hop-rounds, --requests, --hop-ttft-concurrency and every --hop-concurrency must \
             be at least 1"
        );
    }
    tokio::select! {
        result = run_until_done(args, requests, max_tokens) => result,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    }
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn run_until_done(args: &HopArgs, requests: usize, max_tokens: u32) -> anyhow::Result<()> {
    let gateway_bin = crate::gateway_bin(args.hop_gateway_bin.as_ref())?;
    let simulator_bin = match &args.hop_simulator_bin {
        Some(bin) => bin.clone(),
        None => crate::gateway_bin(None)?.with_file_name("bedrock-sim"),
    };
    for bin in [&gateway_bin, &simulator_bin] {
        crate::require_built(
            bin,
            "cargo build --release -p server -p bench -p bedrock-sim",
            "--hop-gateway-bin / --hop-simulator-bin PATH",
        )?;
    }
    // A proxy holds two descriptors per open stream (caller and upstream); the processes
    // started below inherit the limit.
    let wanted = u64::try_from(args.hop_open_streams).unwrap_or(u64::MAX / 4) * 2 + FD_RESERVE;
    let fd_limit = FdLimit::raise(wanted)?;

    let dir =
        TempDir(std::env::temp_dir().join(format!("gateway-bench-hop-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0)?;
    // Dropped before `dir`: the processes stop before their files go.
    let lineup = start_lineup(args, &dir.0, &gateway_bin, &simulator_bin, &fd_limit).await?;
    measure_all(args, &lineup, &gateway_bin, &fd_limit, requests, max_tokens).await
}

/// Starts the simulator, the gateway in front of it and (where it can be had) nginx.
async fn start_lineup(
    args: &HopArgs,
    dir: &Path,
    gateway_bin: &Path,
    simulator_bin: &Path,
    fd_limit: &FdLimit,
) -> anyhow::Result<Lineup> {
    let simulator = start_simulator(simulator_bin).await?;
    // As it ships, but for the caps on connections and requests in flight, raised for the
    // open streams (counters, which cost the same at any value), and streams that may wait
    // on the simulator while the others open.
    let cap = fd_limit.streams_allowed().min(args.hop_open_streams) + 512;
    let config = format!(
        "metrics = true\nlog_format = \"json\"\nlog_level = \"info\"\nshutdown_delay_ms = 0\n\
         max_connections = {cap}\nmax_in_flight = {cap}\n\
         [upstream]\nkind = \"simulator\"\nendpoint_url = \"http://{}\"\n\
         stream_idle_timeout_ms = 3600000\n\
         [models.titan]\nmodel_id = \"{MODEL_ID}\"\n",
        simulator.addr
    );
    let config_path = dir.join("gateway.toml");
    std::fs::write(&config_path, config)?;
    let (gateway, gateway_addr) = start_gateway(gateway_bin, &config_path, None, false)
        .await
        .with_context(|| format!("the gateway ({})", gateway_bin.display()))?;
    let workers = args
        .hop_nginx_workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let keepalive = args.hop_concurrency.iter().copied().max().unwrap_or(16);
    let nginx = match find_nginx(args.hop_nginx.as_deref()) {
        Ok((bin, version)) => {
            let settings = NginxSettings {
                dir: dir.join("nginx"),
                listen: free_port()?,
                upstream: simulator.addr.clone(),
                workers,
                fd_limit: fd_limit.limit,
                keepalive,
                without_modules: without_modules(&bin),
            };
            Some(Nginx::start(&bin, version, settings).await?)
        }
        Err(why) => {
            eprintln!("gateway-bench hop: no nginx, its rows are skipped: {why:#}");
            None
        }
    };
    Ok(Lineup { simulator, gateway, gateway_addr, nginx })
}

/// The sweep, the time to first token, the open streams, then the targets.
async fn measure_all(
    args: &HopArgs,
    lineup: &Lineup,
    gateway_bin: &Path,
    fd_limit: &FdLimit,
    requests: usize,
    max_tokens: u32,
) -> anyhow::Result<()> {
    let stream_prompt = find_stream_prompt(lineup, args.hop_chunks).await?;
    print_header(args, lineup, gateway_bin, fd_limit, requests, max_tokens);

    let mut sweep = Vec::new();
    for case in [Case::Rest, Case::Sse] {
        for &concurrency in &args.hop_concurrency {
            let (prompt, tokens) = match case {
                Case::Rest => (PROMPT, max_tokens),
                Case::Sse => (stream_prompt.as_str(), args.hop_chunks),
            };
            let mut targets = vec![lineup.target(Hop::Gateway, case, prompt, tokens)];
            if lineup.nginx.is_some() {
                targets.push(lineup.target(Hop::Nginx, case, prompt, tokens));
            }
            let rounds =
                alternate(lineup, &targets, args.hop_rounds, requests, concurrency).await?;
            let mut rounds = rounds.into_iter();
            let gateway = rounds.next().unwrap_or_default();
            let nginx = rounds.next().unwrap_or_default();
            let point = SweepPoint { case, concurrency, gateway, nginx };
            print_point(&point);
            sweep.push(point);
        }
    }
    print_spread(&sweep);

    let mut hops = vec![Hop::Direct, Hop::Gateway];
    if lineup.nginx.is_some() {
        hops.push(Hop::Nginx);
    }
    let targets: Vec<Target> = hops
        .iter()
        .map(|&hop| lineup.target(hop, Case::Sse, &stream_prompt, args.hop_chunks))
        .collect();
    let ttft =
        alternate(lineup, &targets, args.hop_rounds, requests, args.hop_ttft_concurrency).await?;
    let added = print_ttft(args, &hops, &ttft);

    let memory = open_streams(args, lineup, fd_limit).await?;
    print_open_streams(args, fd_limit, &memory);
    print_targets(&sweep, added, &memory, lineup.nginx.is_some());
    Ok(())
}

/// The resident memory of a one-worker nginx (whose worker then holds every stream, as
/// the one gateway process does), then of the gateway, with streams held open
/// ([`streams::measure`]); the gateway's first in the result.
async fn open_streams(
    args: &HopArgs,
    lineup: &Lineup,
    fd_limit: &FdLimit,
) -> anyhow::Result<Vec<(&'static str, StreamsMemory)>> {
    let n_streams = args.hop_open_streams.min(fd_limit.streams_allowed());
    if n_streams == 0 {
        return Ok(Vec::new());
    }
    let plan = StreamsPlan { n_streams, warm_up: 32, connecting: 256, settle: STREAMS_SETTLE };
    let sim = SimControl::Remote {
        client: reqwest::Client::new(),
        url: format!("http://{}", lineup.simulator.addr),
    };
    // nginx first, stopped before the gateway's turn: the gateway keeps its idle upstream
    // connections after the streams close (nginx at most `keepalive` of them), and the
    // simulator's descriptors must hold the next run's streams too.
    let mut nginx_memory = None;
    if let Some(nginx) = &lineup.nginx {
        nginx_memory = Some(nginx_open_streams(nginx, &sim, &plan).await?);
    }
    let gateway_addr: SocketAddr = lineup.gateway_addr.parse().context("the gateway's address")?;
    let request = streams::generate_request(gateway_addr);
    let target = StreamsTarget {
        pid: lineup.gateway.pid(),
        addr: gateway_addr,
        request: &request,
        end_marker: Some(b"event: done"),
    };
    let memory =
        streams::measure(&sim, &target, &plan).await.context("the gateway's open streams")?;
    let mut results = vec![("gateway", memory)];
    results.extend(nginx_memory.map(|memory| ("nginx (1 worker)", memory)));
    Ok(results)
}

/// [`streams::measure`] on an nginx of one worker, started like `nginx` and stopped after.
async fn nginx_open_streams(
    nginx: &Nginx,
    sim: &SimControl,
    plan: &StreamsPlan,
) -> anyhow::Result<StreamsMemory> {
    let mut settings = nginx.settings.clone();
    settings.dir = settings.dir.with_file_name("nginx-one-worker");
    settings.listen = free_port()?;
    settings.workers = 1;
    let one = Nginx::start(&nginx.bin, nginx.version.clone(), settings).await?;
    let worker = children_of(one.master.id());
    let [worker] = worker.as_slice() else {
        bail!("the one-worker nginx has {} workers", worker.len());
    };
    let url =
        format!("http://{}/model/{MODEL_ID}/invoke-with-response-stream", one.settings.listen);
    let body = titan_body(PROMPT, 8);
    let signer = bedrock_sim::Signer::test();
    let content_type = ("content-type", "application/json");
    let request = || {
        let signed = signer.sign("POST", &url, &[content_type], body.as_bytes(), SystemTime::now());
        let mut head = format!(
            "POST /model/{MODEL_ID}/invoke-with-response-stream HTTP/1.1\r\nhost: {}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
            one.settings.listen,
            body.len()
        );
        // A request that cannot be signed goes unsigned, and its 403 ends the run.
        for (name, value) in signed.unwrap_or_default() {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head.push_str(&body);
        head.into_bytes()
    };
    let target = StreamsTarget {
        pid: *worker,
        addr: one.settings.listen,
        request: &request,
        end_marker: None,
    };
    streams::measure(sim, &target, plan)
        .await
        .with_context(|| format!("nginx's open streams; its logs: {}", one.logs().trim()))
}

/// How long after the open streams have closed the resident set is read again (the
/// streams scenario waits a minute, for the target on memory given back).
const STREAMS_SETTLE: Duration = Duration::from_secs(5);

impl Lineup {
    /// The request `hop` is sent for `case`: the gateway's own body, or Bedrock's Titan
    /// body for nginx and the simulator.
    fn target(&self, hop: Hop, case: Case, prompt: &str, tokens: u32) -> Target {
        let stream = case == Case::Sse;
        let base = match hop {
            Hop::Gateway => {
                let body = serde_json::json!({
                    "model": "titan", "prompt": prompt, "max_tokens": tokens, "stream": stream,
                });
                let until = if stream { Until::FirstDelta } else { Until::End };
                let url = format!("http://{}/v1/generate", self.gateway_addr);
                return Target { hop, url, body: body.to_string(), until };
            }
            Hop::Nginx => self.nginx.as_ref().map(|n| n.settings.listen.to_string()),
            Hop::Direct => Some(self.simulator.addr.clone()),
        };
        let base = base.unwrap_or_default();
        let operation = if stream { "invoke-with-response-stream" } else { "invoke" };
        Target {
            hop,
            url: format!("http://{base}/model/{MODEL_ID}/{operation}"),
            body: titan_body(prompt, tokens),
            until: if stream { Until::FirstByte } else { Until::End },
        }
    }

    /// The processes whose CPU counts for `hop`.
    fn measured_pids(&self, hop: Hop) -> Vec<u32> {
        match hop {
            Hop::Gateway => vec![self.gateway.pid()],
            Hop::Nginx => self.nginx.as_ref().map(Nginx::pids).unwrap_or_default(),
            Hop::Direct => Vec::new(),
        }
    }
}

/// Bedrock's InvokeModel body for Titan Text.
fn titan_body(prompt: &str, tokens: u32) -> String {
    serde_json::json!({"inputText": prompt, "textGenerationConfig": {"maxTokenCount": tokens}})
        .to_string()
}

/// A prompt whose answer streams in exactly `chunks` chunks both through the gateway
/// (`delta` events) and from the simulator (event-stream frames): the simulator's answer
/// to a prompt is 16 to 47 words, one chunk each, cut at `max_tokens`.
async fn find_stream_prompt(lineup: &Lineup, chunks: u32) -> anyhow::Result<String> {
    let wanted = usize::try_from(chunks).unwrap_or(usize::MAX);
    for idx in 0..64 {
        let prompt = format!("{PROMPT} ({idx})");
        let gateway = lineup.target(Hop::Gateway, Case::Sse, &prompt, chunks);
        let client = client_for(&gateway, 1)?;
        let through_gateway = chunks_per_stream(&client, &gateway.url, &gateway.body)
            .await
            .context("a first stream through the gateway")?;
        if through_gateway != wanted {
            continue;
        }
        let direct = lineup.target(Hop::Direct, Case::Sse, &prompt, chunks);
        let client = client_for(&direct, 1)?;
        if frames_per_stream(&client, &direct).await? == wanted {
            return Ok(prompt);
        }
    }
    bail!("no prompt tried gives streams of {chunks} chunks")
}

/// The event-stream frames of one stream from the simulator.
async fn frames_per_stream(client: &reqwest::Client, target: &Target) -> anyhow::Result<usize> {
    let response = client
        .post(&target.url)
        .header("content-type", "application/json")
        .body(target.body.clone())
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("a first stream direct to the simulator: status {}", response.status());
    }
    let bytes = response.bytes().await?;
    count_frames(&bytes).context("the simulator's stream is not whole event-stream frames")
}

/// The event-stream frames in `bytes`, walked by their total-length preludes; `None`
/// unless the bytes end where a frame ends.
fn count_frames(mut bytes: &[u8]) -> Option<usize> {
    let mut n_frames = 0;
    while !bytes.is_empty() {
        let prelude: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
        let total = usize::try_from(u32::from_be_bytes(prelude)).ok()?;
        // Prelude (12 bytes) and message CRC (4) at least.
        if total < 16 {
            return None;
        }
        bytes = bytes.get(total..)?;
        n_frames += 1;
    }
    Some(n_frames)
}

/// `rounds` rounds of each target, the order rotating from round to round; each
/// target's rounds, in the order of `targets`.
async fn alternate(
    lineup: &Lineup,
    targets: &[Target],
    rounds: usize,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<Vec<Measured>>> {
    let mut all: Vec<Vec<Measured>> = targets.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..targets.len()).collect();
        order.rotate_left(round % targets.len().max(1));
        for which in order {
            let measured =
                one_round(lineup, &targets[which], requests, concurrency).await.with_context(
                    || format!("{} at {concurrency} in flight", targets[which].hop.name()),
                )?;
            all[which].push(measured);
        }
    }
    Ok(all)
}

/// One contender's round: a fresh client (signed for the simulator where the hop does
/// not sign), a warm-up that opens its connections, then `requests` requests,
/// `concurrency` at a time, with the CPU the measured processes spent meanwhile.
async fn one_round(
    lineup: &Lineup,
    target: &Target,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<Measured> {
    let client = client_for(target, concurrency)?;
    let warm_up = (requests / 10 + 1).max(2 * concurrency);
    measure(&client, &target.url, &target.body, target.until, warm_up, concurrency).await?;
    let pids = lineup.measured_pids(target.hop);
    let simulator_pid = [lineup.simulator.pid()];
    let (cpu_before, simulator_before) = (CpuSample::of(&pids), CpuSample::of(&simulator_pid));
    let (elapsed, mut latencies) =
        measure(&client, &target.url, &target.body, target.until, requests, concurrency).await?;
    let (cpu_after, simulator_after) = (CpuSample::of(&pids), CpuSample::of(&simulator_pid));
    latencies.sort();
    let n = u32::try_from(requests).unwrap_or(u32::MAX);
    Ok(Measured {
        round: Round {
            requests_per_second: requests as f64 / elapsed.as_secs_f64(),
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
            cpu_per_request: cpu_before.until(&cpu_after) / n,
        },
        simulator_cpu: simulator_before.until(&simulator_after) / n,
    })
}

/// A client for `target`'s requests, `concurrency` connections kept. A request that
/// reaches the simulator unsigned by the gateway carries a signature made now with the
/// simulator's test key (the same body every time, so one signature serves the round).
fn client_for(target: &Target, concurrency: usize) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().pool_max_idle_per_host(concurrency);
    if target.hop != Hop::Gateway {
        let headers = bedrock_sim::Signer::test().sign(
            "POST",
            &target.url,
            &[("content-type", "application/json")],
            target.body.as_bytes(),
            SystemTime::now(),
        )?;
        let mut signed = HeaderMap::new();
        for (name, value) in headers {
            signed.insert(name, HeaderValue::from_str(&value)?);
        }
        builder = builder.default_headers(signed);
    }
    Ok(builder.build()?)
}

// --- CPU time from /proc --------------------------------------------------------------

/// What a set of processes has spent on a CPU so far: each thread's time from its
/// `schedstat` (nanoseconds), and the processes' utime + stime from their `stat` (10 ms
/// ticks, but the time of exited threads included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct CpuSample {
    by_thread: BTreeMap<u32, Duration>,
    ticks: Duration,
}

impl CpuSample {
    fn of(pids: &[u32]) -> CpuSample {
        let mut sample = CpuSample::default();
        for &pid in pids {
            sample.ticks += cpu_time_of(pid).unwrap_or_default();
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { continue };
            for task in tasks.flatten() {
                let Some(tid) = task.file_name().to_str().and_then(|t| t.parse::<u32>().ok())
                else {
                    continue;
                };
                let text = std::fs::read_to_string(task.path().join("schedstat"));
                if let Some(on_cpu) = text.ok().as_deref().and_then(schedstat_on_cpu) {
                    sample.by_thread.insert(tid, on_cpu);
                }
            }
        }
        sample
    }

    /// The CPU time spent from `self` to `later`: the threads' own times, or, where a
    /// thread of `self` is gone from `later` (its time since then is lost with it), the
    /// processes' ticks.
    fn until(&self, later: &CpuSample) -> Duration {
        if self.by_thread.keys().all(|tid| later.by_thread.contains_key(tid)) {
            later
                .by_thread
                .iter()
                .map(|(tid, &on_cpu)| {
                    on_cpu.saturating_sub(self.by_thread.get(tid).copied().unwrap_or_default())
                })
                .sum()
        } else {
            later.ticks.saturating_sub(self.ticks)
        }
    }
}

/// The time on a CPU in a `schedstat` line (`<ns on cpu> <ns waiting> <timeslices>`).
fn schedstat_on_cpu(text: &str) -> Option<Duration> {
    text.split_whitespace().next()?.parse::<u64>().ok().map(Duration::from_nanos)
}

/// The parent process id in a `/proc/<pid>/stat` line (the field after the state, which
/// follows the parenthesised command name).
fn parent_pid(stat: &str) -> Option<u32> {
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// The processes whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| parent_pid(&stat))
                == Some(pid)
        })
        .collect()
}

/// The runtime workers of gateway process `pid`, by its threads' names: the main thread and
/// its `gateway-worker-N` threads (one single-threaded runtime each), or the
/// `tokio-rt-worker` threads (`tokio-runtime-worker` cut to 15 bytes by older tokio) of a
/// build on tokio's multi-thread runtime; 0 if the process is gone.
fn tokio_workers(pid: u32) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    let names: Vec<String> = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .map(|comm| comm.trim_end().to_owned())
        .collect();
    workers_by_thread_names(&names)
}

fn workers_by_thread_names(names: &[String]) -> usize {
    let multi_thread = names
        .iter()
        .filter(|n| ["tokio-rt-worker", "tokio-runtime-w"].contains(&n.as_str()))
        .count();
    if multi_thread > 0 || names.is_empty() {
        return multi_thread;
    }
    1 + names.iter().filter(|n| n.starts_with("gateway-worker-")).count()
}

// --- The descriptor limit --------------------------------------------------------------

/// `RLIMIT_NOFILE` once raised, against what the open streams want.
#[derive(Debug)]
struct FdLimit {
    /// The soft limit now in force, which every process started here inherits.
    limit: u64,
    /// The hard limit, past which only `CAP_SYS_RESOURCE` raises it.
    hard: u64,
    wanted: u64,
}

impl FdLimit {
    /// Raises the limit towards `wanted` ([`raise_descriptor_limit`]).
    fn raise(wanted: u64) -> anyhow::Result<FdLimit> {
        let limit = raise_descriptor_limit(wanted)?;
        let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
        Ok(FdLimit { limit, hard: hard.unwrap_or(u64::MAX), wanted })
    }

    /// The streams one proxy may hold open: two descriptors each (its caller's and its
    /// upstream's), [`FD_RESERVE`] kept for the rest.
    fn streams_allowed(&self) -> usize {
        usize::try_from(self.limit.saturating_sub(FD_RESERVE) / 2).unwrap_or(usize::MAX)
    }
}

/// Descriptors a proxy needs besides two per open stream: listeners, logs, its upstream
/// pool's idle connections.
const FD_RESERVE: u64 = 512;

// --- The simulator process ---------------------------------------------------------------

/// A `bedrock-sim` child process.
struct SimulatorProcess {
    child: ChildGuard,
    /// `host:port`.
    addr: String,
}

impl SimulatorProcess {
    fn pid(&self) -> u32 {
        self.child.0.id()
    }
}

/// Starts `bin --listen 127.0.0.1:0` (verifying signatures, the default) and waits for
/// its listening line; its log is drained afterwards.
async fn start_simulator(bin: &Path) -> anyhow::Result<SimulatorProcess> {
    let mut child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let child = ChildGuard(child);
    let (address_tx, address_rx) = oneshot::channel::<Result<String, String>>();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stderr);
        let mut seen = Vec::new();
        let mut line = String::new();
        while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
            if line.contains("bedrock-sim listening")
                && let Some(rest) = line.split("endpoint_url=http://").nth(1)
            {
                let address: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || ":.".contains(*c))
                    .collect();
                let _ = address_tx.send(Ok(address));
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
                return;
            }
            seen.push(std::mem::take(&mut line));
        }
        let _ = address_tx.send(Err(seen.concat()));
    });
    match tokio::time::timeout(Duration::from_secs(15), address_rx).await {
        Ok(Ok(Ok(addr))) => Ok(SimulatorProcess { child, addr }),
        Ok(Ok(Err(lines))) => bail!("{} exited at start-up: {lines}", bin.display()),
        _ => bail!("{} did not log its listening address within 15 s", bin.display()),
    }
}

// --- nginx ----------------------------------------------------------------------------------

/// What [`nginx_config`] writes.
#[derive(Debug, Clone)]
struct NginxSettings {
    /// Its config, logs, pid file and temp paths.
    dir: PathBuf,
    listen: SocketAddr,
    /// The simulator, `host:port`.
    upstream: String,
    workers: usize,
    /// `worker_rlimit_nofile`: the descriptor limit, which is what binds;
    /// `worker_connections` is twice it, since nginx counts a connection taken a while
    /// after its socket is closed, and a worker short of them resets new callers.
    fd_limit: u64,
    /// Idle upstream connections each worker keeps.
    keepalive: usize,
    /// The modules the binary was built without (`fastcgi`, `uwsgi`, `scgi`), whose
    /// temp-path directives it would refuse.
    without_modules: Vec<&'static str>,
}

/// nginx's config: a plain reverse proxy to the simulator, nothing else.
fn nginx_config(settings: &NginxSettings) -> String {
    let dir = settings.dir.display();
    let mut temp_paths =
        format!("    client_body_temp_path {dir}/client_body;\n    proxy_temp_path {dir}/proxy;\n");
    for module in ["fastcgi", "uwsgi", "scgi"] {
        if !settings.without_modules.contains(&module) {
            temp_paths.push_str(&format!("    {module}_temp_path {dir}/{module};\n"));
        }
    }
    format!(
        "# Generated by gateway-bench --scenario hop.\n\
         daemon off;\n\
         master_process on;\n\
         worker_processes {workers};\n\
         worker_rlimit_nofile {fd_limit};\n\
         pid {dir}/nginx.pid;\n\
         error_log {dir}/error.log warn;\n\
         events {{\n    worker_connections {connections};\n}}\n\
         http {{\n\
         {temp_paths}\
         \x20   # One JSON line per request, buffered, as the gateway's request line.\n\
         \x20   log_format hop escape=json '{{\"time\":\"$time_iso8601\",\"method\":\"$request_method\",\
         \"path\":\"$request_uri\",\"status\":$status,\"bytes_sent\":$bytes_sent,\
         \"request_time\":$request_time,\"upstream_time\":\"$upstream_response_time\"}}';\n\
         \x20   access_log {dir}/access.log hop buffer=64k flush=1s;\n\
         \x20   keepalive_requests 1000000;\n\
         \x20   upstream simulator {{\n\
         \x20       server {upstream};\n\
         \x20       keepalive {keepalive};\n\
         \x20       keepalive_requests 1000000;\n\
         \x20   }}\n\
         \x20   server {{\n\
         \x20       listen {listen} backlog=4096;\n\
         \x20       location / {{\n\
         \x20           proxy_pass http://simulator;\n\
         \x20           proxy_http_version 1.1;\n\
         \x20           proxy_set_header Connection \"\";\n\
         \x20           # The signature covers the host the caller sent.\n\
         \x20           proxy_set_header Host $http_host;\n\
         \x20           # Streams go on chunk by chunk; a whole answer fits one buffer anyway.\n\
         \x20           proxy_buffering off;\n\
         \x20           proxy_read_timeout 1h;\n\
         \x20       }}\n\
         \x20   }}\n\
         }}\n",
        workers = settings.workers,
        fd_limit = settings.fd_limit,
        connections = settings.fd_limit.saturating_mul(2),
        upstream = settings.upstream,
        keepalive = settings.keepalive,
        listen = settings.listen,
    )
}

/// A running nginx, stopped (master and workers) when dropped.
struct Nginx {
    master: Child,
    bin: PathBuf,
    settings: NginxSettings,
    version: String,
}

impl Nginx {
    async fn start(bin: &Path, version: String, settings: NginxSettings) -> anyhow::Result<Nginx> {
        std::fs::create_dir_all(&settings.dir)?;
        let config_path = settings.dir.join("nginx.conf");
        std::fs::write(&config_path, nginx_config(&settings))?;
        let stderr = std::fs::File::create(settings.dir.join("stderr.log"))?;
        let master = Command::new(bin)
            .arg("-p")
            .arg(&settings.dir)
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        let mut nginx = Nginx { master, bin: bin.to_owned(), settings, version };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = nginx.master.try_wait()? {
                bail!("nginx exited at start-up ({status}): {}", nginx.logs());
            }
            let workers = children_of(nginx.master.id()).len();
            let listening = tokio::net::TcpStream::connect(nginx.settings.listen).await.is_ok();
            if listening && workers >= nginx.settings.workers {
                return Ok(nginx);
            }
            if Instant::now() > deadline {
                bail!(
                    "nginx did not serve {} within 10 s: {}",
                    nginx.settings.listen,
                    nginx.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The master's and the workers' process ids.
    fn pids(&self) -> Vec<u32> {
        let master = self.master.id();
        std::iter::once(master).chain(children_of(master)).collect()
    }

    /// What nginx said on standard error and in its error log.
    fn logs(&self) -> String {
        ["stderr.log", "error.log"]
            .iter()
            .filter_map(|name| std::fs::read_to_string(self.settings.dir.join(name)).ok())
            .collect::<Vec<_>>()
            .join("")
    }
}

impl Drop for Nginx {
    /// SIGTERM to the master, which stops its workers; SIGKILL to all after 5 s.
    fn drop(&mut self) {
        let pids = self.pids();
        let signal = |pid: u32, signal| {
            let pid = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw);
            if let Some(pid) = pid {
                let _ = rustix::process::kill_process(pid, signal);
            }
        };
        signal(self.master.id(), rustix::process::Signal::Term);
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.master.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if matches!(self.master.try_wait(), Ok(None)) {
            for &pid in &pids {
                signal(pid, rustix::process::Signal::Kill);
            }
            let _ = self.master.wait();
        }
    }
}

/// A loopback address whose port was free a moment ago.
fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// `--hop-nginx`, else `nginx` on PATH, else /usr/sbin/nginx, else Debian's
/// `nginx-light` installed as root; with its version line.
fn find_nginx(given: Option<&Path>) -> anyhow::Result<(PathBuf, String)> {
    if let Some(bin) = given {
        let version =
            nginx_version(bin).with_context(|| format!("--hop-nginx {}", bin.display()))?;
        return Ok((bin.to_owned(), version));
    }
    for bin in ["nginx", "/usr/sbin/nginx"] {
        if let Ok(version) = nginx_version(Path::new(bin)) {
            return Ok((PathBuf::from(bin), version));
        }
    }
    install_nginx()?;
    let bin = PathBuf::from("/usr/sbin/nginx");
    let version = nginx_version(&bin).context("nginx after its install")?;
    Ok((bin, version))
}

/// `nginx -v`'s line (`nginx version: nginx/1.22.1`).
fn nginx_version(bin: &Path) -> anyhow::Result<String> {
    let output = Command::new(bin).arg("-v").stdin(Stdio::null()).output()?;
    if !output.status.success() {
        bail!("{} -v: {}", bin.display(), output.status);
    }
    Ok(String::from_utf8_lossy(&output.stderr).trim().to_owned())
}

/// The optional modules `nginx -V` says the binary was built without.
fn without_modules(bin: &Path) -> Vec<&'static str> {
    let output = Command::new(bin).arg("-V").stdin(Stdio::null()).output();
    let text = output.map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).unwrap_or_default();
    ["fastcgi", "uwsgi", "scgi"]
        .into_iter()
        .filter(|module| text.contains(&format!("--without-http_{module}_module")))
        .collect()
}

/// Installs Debian's `nginx-light` (`nginx` where the release has no `-light`) with
/// apt-get, as root, its service not started: `/usr/sbin/policy-rc.d` exits 101 during
/// the install (one already there is put back afterwards).
fn install_nginx() -> anyhow::Result<()> {
    if !rustix::process::geteuid().is_root() {
        bail!("nginx is not on PATH nor at /usr/sbin/nginx, and installing it needs root");
    }
    let apt = Command::new("apt-get").arg("--version").stdout(Stdio::null()).status();
    if !apt.is_ok_and(|status| status.success()) {
        bail!("nginx is not on PATH nor at /usr/sbin/nginx, and there is no apt-get");
    }
    eprintln!("gateway-bench hop: installing nginx-light with apt-get (its service not started)");
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let saved = Path::new("/usr/sbin/policy-rc.d.gateway-bench");
    let had_policy = policy.exists();
    if had_policy {
        std::fs::rename(policy, saved)?;
    }
    let result = write_policy(policy).and_then(|()| {
        let install = |package: &str| {
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", package])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        };
        if install("nginx-light") || install("nginx") {
            return Ok(());
        }
        // Stale package lists: refresh them once.
        let _ = Command::new("apt-get").arg("update").stdout(Stdio::null()).status();
        if install("nginx-light") || install("nginx") {
            Ok(())
        } else {
            bail!("apt-get install nginx-light (and nginx) failed")
        }
    });
    let _ = std::fs::remove_file(policy);
    if had_policy {
        std::fs::rename(saved, policy)?;
    }
    result
}

/// A `policy-rc.d` that forbids starting services (exit 101).
fn write_policy(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(
        path,
        "#!/bin/sh\n# gateway-bench: no service starts while it installs nginx.\nexit 101\n",
    )?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

// --- The report ------------------------------------------------------------------------------

/// The targets' concurrency.
const TARGET_CONCURRENCY: usize = 16;
const MAX_REST_CPU_RATIO: f64 = 2.0;
const MIN_REST_THROUGHPUT_RATIO: f64 = 0.7;
const MAX_SSE_CPU_RATIO: f64 = 3.0;
const MAX_ADDED_TTFT_MS: f64 = 0.3;
const MAX_KIB_PER_STREAM: f64 = 25.0;

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// The median of `values` (0 for none).
fn median_of(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn rounds_of(measured: &[Measured]) -> Vec<Round> {
    measured.iter().map(|m| m.round).collect()
}

fn median_simulator_cpu(measured: &[Measured]) -> f64 {
    median_of(measured.iter().map(|m| micros(m.simulator_cpu)).collect())
}

impl SweepPoint {
    /// (gateway / nginx CPU per request, gateway / nginx throughput), medians over the
    /// rounds; `None` without nginx.
    fn ratios(&self) -> Option<(f64, f64)> {
        if self.nginx.is_empty() {
            return None;
        }
        let gateway = median(&rounds_of(&self.gateway));
        let nginx = median(&rounds_of(&self.nginx));
        Some((
            gateway.cpu_per_request.as_secs_f64() / nginx.cpu_per_request.as_secs_f64(),
            gateway.requests_per_second / nginx.requests_per_second,
        ))
    }
}

#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn print_header(
    args: &HopArgs,
    lineup: &Lineup,
    gateway_bin: &Path,
    fd_limit: &FdLimit,
    requests: usize,
    max_tokens: u32,
) {
    println!(
        "gateway-bench hop: the gateway's hop against a bare nginx hop, in front of one \
         bedrock-sim process\n  (which verifies SigV4 on every request and answers at once)"
    );
    let workers = tokio_workers(lineup.gateway.pid());
    println!(
        "gateway: {}, {} runtime workers; metrics on, JSON request line at info; POST /v1/generate",
        gateway_bin.display(),
        if workers > 0 { workers.to_string() } else { "?".to_owned() }
    );
    match &lineup.nginx {
        Some(nginx) => println!(
            "nginx:   {}, {} workers; access log on (JSON, buffered 64k), upstream keepalive {}, \
             proxy_buffering off;\n         Bedrock's own /model/{{id}}/invoke and \
             /invoke-with-response-stream; signed by the bench once per round",
            nginx.version, nginx.settings.workers, nginx.settings.keepalive
        ),
        None => println!("nginx:   not available, its rows and ratios are skipped"),
    }
    println!(
        "load: rounds per contender and point: {}, of {requests} requests, order alternating, a \
         fresh client per round\n  warmed up; whole answers of {max_tokens} tokens, streams of {} \
         chunks (latency to the first chunk,\n  throughput and CPU of whole streams); medians over \
         the rounds",
        args.hop_rounds, args.hop_chunks
    );
    println!(
        "CPU: per request, from /proc (threads' schedstat; stat where a thread exited): the \
         gateway process;\n  nginx master + workers; sim: the simulator's behind each hop (the \
         same requests, cheaper per request\n  at a higher rate: fewer wake-ups each)"
    );
    let short = if fd_limit.limit < fd_limit.wanted {
        " (raising the hard limit needs CAP_SYS_RESOURCE, which this process lacks)"
    } else {
        ""
    };
    println!(
        "descriptors: RLIMIT_NOFILE {} of {} wanted, hard limit {}{short}\n",
        fd_limit.limit, fd_limit.wanted, fd_limit.hard
    );
    println!(
        "{:<5} {:>6} | {:>26} {:>8} | {:>26} {:>8} | {:>6} {:>6} | {:>15}",
        "",
        "",
        "gateway: req/s p50 p99 ms",
        "CPU µs",
        "nginx: req/s p50 p99 ms",
        "CPU µs",
        "CPU",
        "req/s",
        "sim CPU µs"
    );
    println!(
        "{:<5} {:>6} | {:>26} {:>8} | {:>26} {:>8} | {:>13} | {:>15}",
        "case", "in fl.", "", "", "", "", "gateway/nginx", "gw / nginx"
    );
}

/// One row: both hops' medians, and their ratios.
#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn print_point(point: &SweepPoint) {
    let cells = |measured: &[Measured]| {
        if measured.is_empty() {
            return (format!("{:>26}", "-"), format!("{:>8}", "-"));
        }
        let round = median(&rounds_of(measured));
        (
            format!(
                "{:>10.0} {:>7.2} {:>7.2}",
                round.requests_per_second,
                millis(round.p50),
                millis(round.p99)
            ),
            format!("{:>8.1}", micros(round.cpu_per_request)),
        )
    };
    let (gateway, gateway_cpu) = cells(&point.gateway);
    let (nginx, nginx_cpu) = cells(&point.nginx);
    let ratios = match point.ratios() {
        Some((cpu, throughput)) => format!("{:>5.2}x {:>5.2}x", cpu, throughput),
        None => format!("{:>6} {:>6}", "-", "-"),
    };
    let simulator = if point.nginx.is_empty() {
        format!("{:.1} / -", median_simulator_cpu(&point.gateway))
    } else {
        format!(
            "{:.1} / {:.1}",
            median_simulator_cpu(&point.gateway),
            median_simulator_cpu(&point.nginx)
        )
    };
    println!(
        "{:<5} {:>6} | {gateway} {gateway_cpu} | {nginx} {nginx_cpu} | {ratios} | {simulator:>15}",
        point.case.name(),
        point.concurrency,
    );
}

/// Every round's CPU per request, to show the spread behind the medians.
#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn print_spread(sweep: &[SweepPoint]) {
    println!("\nCPU µs per request by round:");
    for point in sweep {
        for (hop, measured) in [("gateway", &point.gateway), ("nginx", &point.nginx)] {
            if measured.is_empty() {
                continue;
            }
            let all: Vec<String> = measured
                .iter()
                .map(|m| format!("{:.1}", micros(m.round.cpu_per_request)))
                .collect();
            println!(
                "  {} {:>3} {hop:>7}: {}",
                point.case.name(),
                point.concurrency,
                all.join(" ")
            );
        }
    }
}

/// The time to first token of each hop, and what the gateway and nginx add to direct;
/// returns the gateway's added p50 in ms.
#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn print_ttft(args: &HopArgs, hops: &[Hop], rounds: &[Vec<Measured>]) -> Option<f64> {
    println!(
        "\ntime to first token: streams of {} chunks, {} in flight; the first event-stream \
         frame (direct, nginx)\nor `delta` event (gateway); added: the median over rounds of the \
         round's difference to direct",
        args.hop_chunks, args.hop_ttft_concurrency
    );
    println!("{:<22} {:>8} {:>8} {:>12} {:>12}", "", "p50 ms", "p99 ms", "added p50", "added p99");
    let direct = hops.iter().position(|&hop| hop == Hop::Direct).and_then(|at| rounds.get(at));
    let mut gateway_added = None;
    for (&hop, measured) in hops.iter().zip(rounds) {
        let round = median(&rounds_of(measured));
        let label = match hop {
            Hop::Direct => "direct to simulator",
            Hop::Gateway => "through the gateway",
            Hop::Nginx => "through nginx",
        };
        let added = |of: fn(&Round) -> Duration| {
            let direct = direct?;
            let differences = measured
                .iter()
                .zip(direct)
                .map(|(m, d)| millis(of(&m.round)) - millis(of(&d.round)))
                .collect();
            Some(median_of(differences))
        };
        let (added_p50, added_p99) =
            if hop == Hop::Direct { (None, None) } else { (added(|r| r.p50), added(|r| r.p99)) };
        if hop == Hop::Gateway {
            gateway_added = added_p50;
        }
        let show = |ms: Option<f64>| ms.map_or_else(String::new, |ms| format!("{ms:+.3} ms"));
        println!(
            "{label:<22} {:>8.3} {:>8.3} {:>12} {:>12}",
            millis(round.p50),
            millis(round.p99),
            show(added_p50),
            show(added_p99)
        );
    }
    gateway_added
}

#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn print_open_streams(args: &HopArgs, fd_limit: &FdLimit, memory: &[(&str, StreamsMemory)]) {
    let Some((_, first)) = memory.first() else {
        println!("\nopen streams: none measured (the descriptor limit is {})", fd_limit.limit);
        return;
    };
    let n_streams = first.n_streams;
    let capped = if n_streams < args.hop_open_streams {
        format!(
            " ({} asked; a proxy holds two descriptors per stream, and the limit is {})",
            args.hop_open_streams, fd_limit.limit
        )
    } else {
        String::new()
    };
    println!(
        "\nresident memory (VmRSS) with {n_streams} streams open at once{capped}, held by the \
         simulator after their first chunk:"
    );
    println!(
        "{:<22} {:>10} {:>10} {:>12} {:>12} {:>12} {:>10}",
        "",
        "idle MiB",
        "open MiB",
        "KiB/stream",
        "closed MiB",
        format!("+{} s MiB", STREAMS_SETTLE.as_secs()),
        "opened in"
    );
    let mib = |kib: u64| kib as f64 / 1024.0;
    for (name, m) in memory {
        println!(
            "{name:<22} {:>10.1} {:>10.1} {:>12.1} {:>12.1} {:>12.1} {:>8.1} s",
            mib(m.idle_kib),
            mib(m.open_kib),
            m.kib_per_stream(),
            mib(m.closed_kib),
            mib(m.settled_kib),
            m.open_time.as_secs_f64()
        );
    }
    if let [(_, gateway), (_, nginx)] = memory {
        println!(
            "gateway / nginx: {:.2}x the memory per open stream",
            gateway.kib_per_stream() / nginx.kib_per_stream().max(f64::MIN_POSITIVE)
        );
    }
}

#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn print_targets(
    sweep: &[SweepPoint],
    added_ttft_ms: Option<f64>,
    memory: &[(&str, StreamsMemory)],
    have_nginx: bool,
) {
    println!("\ntargets (CPU and throughput at {TARGET_CONCURRENCY} in flight):");
    let verdict = |ok: bool| if ok { "met" } else { "not met" };
    let at =
        |case: Case| sweep.iter().find(|p| p.case == case && p.concurrency == TARGET_CONCURRENCY);
    let missing = if have_nginx {
        format!("not measured ({TARGET_CONCURRENCY} is not in --hop-concurrency)")
    } else {
        "not measured (no nginx)".to_owned()
    };
    let rest = at(Case::Rest).and_then(SweepPoint::ratios);
    let sse = at(Case::Sse).and_then(SweepPoint::ratios);
    let lines = [
        (
            format!("REST CPU per request <= {MAX_REST_CPU_RATIO}x nginx's"),
            rest.map(|r| (r.0, r.0 <= MAX_REST_CPU_RATIO)),
        ),
        (
            format!("REST throughput >= {MIN_REST_THROUGHPUT_RATIO}x nginx's"),
            rest.map(|r| (r.1, r.1 >= MIN_REST_THROUGHPUT_RATIO)),
        ),
        (
            format!("SSE CPU per stream <= {MAX_SSE_CPU_RATIO}x nginx's"),
            sse.map(|r| (r.0, r.0 <= MAX_SSE_CPU_RATIO)),
        ),
    ];
    for (label, result) in lines {
        match result {
            Some((ratio, ok)) => {
                println!("  {label:<42} {:>11}  {}", format!("{ratio:.2}x"), verdict(ok));
            }
            None => println!("  {label:<42} {missing}"),
        }
    }
    let label = format!("added time to first token <= {MAX_ADDED_TTFT_MS} ms p50");
    match added_ttft_ms {
        Some(ms) => {
            let verdict = verdict(ms <= MAX_ADDED_TTFT_MS);
            println!("  {label:<42} {:>11}  {verdict}", format!("{ms:+.3} ms"));
        }
        None => println!("  {label:<42} not measured"),
    }
    let label = format!("memory per open stream <= {MAX_KIB_PER_STREAM} KiB");
    match memory.first() {
        Some((_, gateway)) => {
            let per_stream = gateway.kib_per_stream();
            let at = format!("(at {} streams)", gateway.n_streams);
            let verdict = verdict(per_stream <= MAX_KIB_PER_STREAM);
            println!("  {label:<42} {:>11}  {verdict} {at}", format!("{per_stream:.1} KiB"));
        }
        None => println!("  {label:<42} not measured"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_are_counted_from_the_thread_names_of_either_runtime() {
        let names = |list: &[&str]| list.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        let single = names(&["bedrock-gatewa", "gateway-worker-", "gateway-worker-", "log"]);
        assert_eq!(workers_by_thread_names(&single), 3);
        assert_eq!(workers_by_thread_names(&names(&["bedrock-gatewa", "log"])), 1);
        let multi = names(&["bedrock-gatewa", "tokio-rt-worker", "tokio-rt-worker"]);
        assert_eq!(workers_by_thread_names(&multi), 2);
        assert_eq!(workers_by_thread_names(&[]), 0);
    }

    fn settings() -> NginxSettings {
        NginxSettings {
            dir: PathBuf::from("/tmp/hop-test"),
            listen: "127.0.0.1:8080".parse().unwrap(),
            upstream: "127.0.0.1:4500".to_owned(),
            workers: 2,
            fd_limit: 20_000,
            keepalive: 256,
            without_modules: vec!["uwsgi"],
        }
    }

    #[test]
    fn nginx_config_is_a_plain_keepalive_proxy_of_its_own_dir() {
        let config = nginx_config(&settings());
        for line in [
            "daemon off;",
            "master_process on;",
            "worker_processes 2;",
            "worker_connections 40000;",
            "worker_rlimit_nofile 20000;",
            "pid /tmp/hop-test/nginx.pid;",
            "error_log /tmp/hop-test/error.log warn;",
            "access_log /tmp/hop-test/access.log hop buffer=64k flush=1s;",
            "server 127.0.0.1:4500;",
            "keepalive 256;",
            "listen 127.0.0.1:8080 backlog=4096;",
            "proxy_pass http://simulator;",
            "proxy_http_version 1.1;",
            "proxy_set_header Connection \"\";",
            "proxy_set_header Host $http_host;",
            "proxy_buffering off;",
            "fastcgi_temp_path /tmp/hop-test/fastcgi;",
            "scgi_temp_path /tmp/hop-test/scgi;",
        ] {
            assert!(config.lines().any(|l| l.trim() == line), "no line `{line}` in:\n{config}");
        }
        assert!(!config.contains("uwsgi_temp_path"), "{config}");
        // Braces balance, and every directive line ends with `;`, `{` or `}`.
        assert_eq!(config.matches('{').count(), config.matches('}').count(), "{config}");
        for line in config.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            assert!(line.ends_with([';', '{', '}']), "`{line}`");
        }
    }

    #[test]
    fn proc_fields_parse() {
        // A command name with spaces and a parenthesis, as /proc allows.
        let stat = "4242 (nginx: worker) x) S 4241 4241 4241 0 -1 4194560 97 0 0 0 3 5 0 0 20 0 1";
        assert_eq!(parent_pid(stat), Some(4241));
        assert_eq!(
            schedstat_on_cpu("554814814 7338566 97\n"),
            Some(Duration::from_nanos(554_814_814))
        );
        assert_eq!(schedstat_on_cpu(""), None);
    }

    #[test]
    fn cpu_between_samples_counts_threads_or_falls_back_to_ticks() {
        let sample = |threads: &[(u32, u64)], ticks_ms: u64| CpuSample {
            by_thread: threads.iter().map(|&(tid, us)| (tid, Duration::from_micros(us))).collect(),
            ticks: Duration::from_millis(ticks_ms),
        };
        let before = sample(&[(1, 1_000), (2, 500)], 10);
        // A new thread counts whole; the others by their growth.
        let later = sample(&[(1, 1_250), (2, 500), (3, 40)], 10);
        assert_eq!(before.until(&later), Duration::from_micros(290));
        // A thread gone: its time since `before` is lost, so the ticks count instead.
        let later = sample(&[(1, 1_250)], 30);
        assert_eq!(before.until(&later), Duration::from_millis(20));
    }

    #[test]
    fn frames_are_counted_to_the_last_byte() {
        let frame = bedrock_sim::eventstream::encode_frame(&[(":event-type", "chunk")], b"{}");
        let mut stream = frame.repeat(3);
        assert_eq!(count_frames(&stream), Some(3));
        assert_eq!(count_frames(&[]), Some(0));
        stream.pop();
        assert_eq!(count_frames(&stream), None);
        assert_eq!(count_frames(&[0, 0, 0, 4, 0, 0, 0, 0]), None);
    }
}
