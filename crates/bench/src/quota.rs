//! `gateway-bench --scenario quota`: does admission keep Bedrock from throttling, and
//! at what cost?
//!
//! The simulator holds one text model ([`MODEL_ID`]) to a quota of Q tokens per minute
//! (`--quota-tpm`), a token bucket that starts full, like Bedrock's. An open-loop load
//! generator offers `--load-factor` × Q (3 by default) and the same load is sent, in
//! turn, through each of these gateways, each against a fresh simulator:
//!
//! - **(a) admission off**: the target has no quota in the gateway; Bedrock's throttles
//!   are retried (`max_attempts = 3`) and then passed through as `upstream_throttled`.
//! - **(b) admission on**: one gateway, the target's `tokens_per_minute = Q`, queueing
//!   up to 30 s (`max_queue_wait_ms = 30000`, `max_queue_len = 1000`).
//! - **(c) three `bedrock-gateway` processes** sharing one Redis (`backend = "redis"`),
//!   each configured with the whole Q, the load spread round-robin across them. The bench
//!   starts `redis-server` itself on a free port and kills it at the end.
//!
//! # Load
//!
//! Requests start on a Poisson schedule from a seeded xorshift generator, each in its own
//! task, so that a request waiting in a gateway queue shows as latency, not as less
//! offered load; at most `--max-in-flight` run at once (a request due when that many are
//! in flight is not sent, and counted as not sent). Prompts are 5 to 200 words (one word is
//! one token for the simulator), `max_tokens` 16 to 200, half the requests streamed. The
//! offered load counts what a request *reserves*: prompt words + `max_tokens` (what both
//! Bedrock and the gateway reserve when a request starts); the simulator's answers are
//! 16 to 47 tokens, so a request is charged less than it reserves.
//!
//! # Method
//!
//! The bucket starts full (a minute's worth of burst), so the run begins with a warm-up
//! at twice the window's rate, its own requests from its own generator, for at least
//! `--warmup-seconds` and until the simulator's bucket is provably empty: it has charged
//! (settled) its capacity plus its refill since the quota was set, less a slack of 5 % of
//! Q (refill lost while the bucket was full only empties it more). Then the measured
//! window of `--quota-seconds`, the same requests on the same schedule for every case.
//!
//! - Requests, successes, 429s and latencies count the requests *started* in the window;
//!   their outcomes are awaited after it (a queued request may end up to 30 s later).
//! - Goodput counts the tokens of the successful answers that *ended* in the window,
//!   whenever they started: it is the rate at which the quota was turned into answers,
//!   which a queue that is still filling or emptying would distort if counted by start.
//! - The simulator's counters (`stats()`) are read at the window's start and end, and
//!   the differences reported; its peak tokens per minute is a maximum since the quota
//!   was set, so it covers the warm-up's burst too.
//!
//! # Report
//!
//! For each gateway: caller 429s (`rate_limited`: the gateway's own refusal;
//! `upstream_throttled`: Bedrock's, passed through) as counts and fractions of the
//! requests, goodput (input + output tokens as the gateway's answers report them, per
//! minute of window, ÷ Q), upstream calls and throttles (the simulator's counters), what
//! the simulator charged in the window (per minute, ÷ Q), the latency of successes (time
//! to the first `delta` event for streams, to the whole answer otherwise, from the moment
//! the bench sent the request: any queue wait included), the simulator's peak tokens per
//! minute, and the gateway's admitted rate and learned input tokens per body byte at the
//! end of the window (`GET /v1/limits` of the first gateway). Then the targets for (b)
//! and (c): throttles under 0.1 % of upstream calls and goodput at least 95 % of Q, each
//! PASS or FAIL. The bench reports; it exits 0 either way.
//!
//! Cases (a) and (b) run `server::run` in this process; (c) runs the `bedrock-gateway`
//! binary (`cargo build --release -p server`; by default the one next to this binary).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow, bail};
use bedrock_sim::{Behavior, ModelStats, Quota, Simulator};
use futures_util::StreamExt;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::percentile;

/// The model the quota is on.
pub const MODEL_ID: &str = "amazon.titan-text-express-v1";
/// The alias callers use, and the gateway's target name when it has a quota.
const ALIAS: &str = "titan";
const TARGET: &str = "titan-quota";
/// The simulator's latency: before the first byte, and per output token.
const FIRST_BYTE_LATENCY: Duration = Duration::from_millis(30);
const TOKEN_LATENCY: Duration = Duration::from_millis(3);
/// Request shapes, inclusive ranges.
const PROMPT_WORDS: (u32, u32) = (5, 200);
const MAX_TOKENS: (u32, u32) = (16, 200);
/// The warm-up's rate, relative to the window's.
const WARMUP_RATE_FACTOR: f64 = 2.0;
/// The warm-up goes on until the simulator's bucket is empty, but not longer than this.
const MAX_WARMUP: Duration = Duration::from_secs(180);
/// The admitting gateways' queue.
const MAX_QUEUE_WAIT_MS: u64 = 30_000;
const MAX_QUEUE_LEN: usize = 1_000;
/// Gateway processes sharing Redis in case (c).
const N_REPLICAS: usize = 3;
/// A caller gives up on a request after this long (it bounds the drain after the window).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(150);
/// The targets checked for (b) and (c).
const MAX_THROTTLE_FRACTION: f64 = 0.001;
const MIN_GOODPUT: f64 = 0.95;

/// Words the prompts are made of (their length is what a body's bytes per token are).
#[rustfmt::skip]
const WORDS: [&str; 32] = [
    "please", "summarise", "the", "following", "report", "about", "quarterly", "sales",
    "in", "three", "short", "bullet", "points", "for", "a", "busy",
    "executive", "and", "mention", "risks", "customer", "growth", "margin", "regional",
    "team", "pipeline", "forecast", "product", "launch", "of", "support", "costs",
];

/// The flags of the quota scenario.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Quota scenario (--scenario quota)")]
pub struct QuotaArgs {
    /// The simulator's tokens-per-minute quota Q (and the admitting gateways').
    #[arg(long, default_value_t = 12_000)]
    pub quota_tpm: u64,
    /// The measured window, in seconds.
    #[arg(long, default_value_t = 60)]
    pub quota_seconds: u64,
    /// The shortest warm-up before the window, in seconds, at twice the window's rate; it
    /// goes on until the simulator's bucket is empty.
    #[arg(long, default_value_t = 20)]
    pub warmup_seconds: u64,
    /// Offered load in the window, as a multiple of Q (reserved tokens per minute).
    #[arg(long, default_value_t = 3.0)]
    pub load_factor: f64,
    /// Seed of the load's pseudo-random generator (same seed, same load).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Requests in flight at most; a request due beyond that is not sent (and counted).
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,
    /// The gateways to run, in order: off (a), local (b), redis (c).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Case::Off, Case::Local, Case::Redis])]
    pub cases: Vec<Case>,
    /// The `bedrock-gateway` binary for (c); default: next to this one (target/release).
    #[arg(long, value_name = "PATH")]
    pub gateway_bin: Option<PathBuf>,
    /// The `redis-server` binary for (c).
    #[arg(long, value_name = "PATH", default_value = "redis-server")]
    pub redis_server: PathBuf,
}

/// One gateway set-up under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Case {
    /// (a) No quota in the gateway; Bedrock's throttles retried, then passed through.
    Off,
    /// (b) One gateway admitting against the target's quota, local counters.
    Local,
    /// (c) Three gateway processes sharing the quota through Redis.
    Redis,
}

impl Case {
    fn letter(self) -> &'static str {
        match self {
            Case::Off => "(a)",
            Case::Local => "(b)",
            Case::Redis => "(c)",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Case::Off => "(a) admission off",
            Case::Local => "(b) admission on",
            Case::Redis => "(c) 3 gw + Redis",
        }
    }
}

/// Runs every case of `args.cases` and prints the report.
pub async fn run(args: QuotaArgs) -> anyhow::Result<()> {
    if args.quota_tpm == 0 || args.quota_seconds == 0 {
        bail!("--quota-tpm and --quota-seconds must be at least 1");
    }
    if !(args.load_factor.is_finite() && args.load_factor > 0.0) {
        bail!("--load-factor must be a positive number");
    }
    let gateway_bin =
        if args.cases.contains(&Case::Redis) { Some(check_prerequisites(&args)?) } else { None };
    let plan = window_plan(&args);
    let mut reports = Vec::new();
    for &case in &args.cases {
        eprintln!(
            "gateway-bench quota: {}: warm-up (at least {} s), {} s window, then the drain ...",
            case.label(),
            args.warmup_seconds,
            args.quota_seconds
        );
        let report = run_case(case, &args, &plan, gateway_bin.as_deref()).await?;
        reports.push(report);
    }
    print_report(&args, &plan, gateway_bin.as_deref(), &reports);
    Ok(())
}

// --- The load ---------------------------------------------------------------------------

/// xorshift64: tiny, deterministic, good enough to shape a load.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        // Zero is xorshift's one fixed point.
        XorShift((seed ^ 0x9E37_79B9_7F4A_7C15).max(1))
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, (lo, hi): (u32, u32)) -> u32 {
        let span = u64::from(hi - lo) + 1;
        lo + u32::try_from(self.next_u64() % span).unwrap_or(0)
    }
}

/// One request of the schedule.
#[derive(Debug, Clone)]
struct Planned {
    /// When it starts, from the start of the run.
    at: Duration,
    /// Started in the measured window (else in the warm-up).
    measured: bool,
    prompt: String,
    /// Prompt words + `max_tokens`: what it reserves.
    reserved: u64,
    max_tokens: u32,
    stream: bool,
}

/// The mean reservation of a request: the middles of the two ranges.
fn mean_reserved() -> f64 {
    f64::from(PROMPT_WORDS.0 + PROMPT_WORDS.1) / 2.0 + f64::from(MAX_TOKENS.0 + MAX_TOKENS.1) / 2.0
}

/// The window's request rate (per second) that offers `load_factor` × Q reserved tokens
/// per minute.
fn window_rate(args: &QuotaArgs) -> f64 {
    args.load_factor * args.quota_tpm as f64 / 60.0 / mean_reserved()
}

/// A Poisson stream of requests from one seeded generator; `at` counts from the start
/// of its phase.
struct Arrivals {
    rng: XorShift,
    /// Requests per second.
    rate: f64,
    /// Seconds since the phase started.
    t: f64,
    measured: bool,
}

impl Arrivals {
    /// The warm-up's arrivals: twice the window's rate, their own generator.
    fn warmup(args: &QuotaArgs) -> Arrivals {
        let rng = XorShift::new(args.seed.wrapping_add(0x5741_524D));
        Arrivals { rng, rate: window_rate(args) * WARMUP_RATE_FACTOR, t: 0.0, measured: false }
    }

    fn window(args: &QuotaArgs) -> Arrivals {
        Arrivals { rng: XorShift::new(args.seed), rate: window_rate(args), t: 0.0, measured: true }
    }

    fn next(&mut self) -> Planned {
        let rng = &mut self.rng;
        // Exponential inter-arrival; 1 - u is in (0, 1].
        self.t += -(1.0 - rng.unit()).ln() / self.rate;
        let n_words = rng.between(PROMPT_WORDS);
        let mut prompt = String::new();
        for i in 0..n_words {
            if i > 0 {
                prompt.push(' ');
            }
            let word = rng.next_u64() % WORDS.len() as u64;
            prompt.push_str(WORDS[usize::try_from(word).unwrap_or(0)]);
        }
        let max_tokens = rng.between(MAX_TOKENS);
        let stream = rng.next_u64() & 1 == 1;
        Planned {
            at: Duration::from_secs_f64(self.t),
            measured: self.measured,
            prompt,
            reserved: u64::from(n_words) + u64::from(max_tokens),
            max_tokens,
            stream,
        }
    }
}

/// The measured window's schedule: the same for every case.
fn window_plan(args: &QuotaArgs) -> Vec<Planned> {
    let mut arrivals = Arrivals::window(args);
    let window = Duration::from_secs(args.quota_seconds);
    std::iter::from_fn(|| Some(arrivals.next())).take_while(|p| p.at < window).collect()
}

/// Whether the simulator's minute bucket is provably (nearly) empty: since its quota was
/// set, it has charged at least its capacity plus its refill, less a slack of the larger
/// of 5 % of Q and the largest reservation. (Refill lost while the bucket was full only
/// makes it emptier.)
fn bucket_drained(simulator: &Simulator, q: u64, quota_set_at: Instant) -> bool {
    let charged = model_stats(simulator).tokens_charged as f64;
    let refilled = q as f64 * quota_set_at.elapsed().as_secs_f64() / 60.0;
    let largest = f64::from(PROMPT_WORDS.1 + MAX_TOKENS.1);
    let slack = (q as f64 * 0.05).max(largest);
    charged + slack >= q as f64 + refilled
}

// --- One case ---------------------------------------------------------------------------

/// What one request came to.
#[derive(Debug)]
enum Outcome {
    /// A successful answer: its input + output tokens, and its latency (first `delta`
    /// for a stream, the whole answer otherwise).
    /// `finished`: when the last byte arrived.
    Served { tokens: u64, latency: Duration, finished: Instant },
    /// An error answer (HTTP or in-stream), by the gateway's error `type`, or a transport
    /// failure (`transport: ...`).
    Failed(String),
}

/// The figures of one case.
#[derive(Debug)]
struct CaseReport {
    case: Case,
    started: usize,
    shed: usize,
    /// How long the warm-up took, and whether it emptied the bucket.
    warmup: (Duration, bool),
    served: usize,
    /// Input + output tokens of the answers that ended in the window (whenever started).
    served_tokens: u64,
    rate_limited: usize,
    upstream_throttled: usize,
    /// Other failures, by type.
    other: BTreeMap<String, usize>,
    ttfb: Vec<Duration>,
    whole: Vec<Duration>,
    /// The simulator's counters over the window.
    upstream: ModelStats,
    /// Over the whole run (a maximum cannot be differenced).
    peak_tokens_per_minute: u64,
    /// The gateways' admitted tokens per minute ÷ Q at the window's end, and the learned
    /// input tokens per body byte (first gateway).
    admitted: Option<(f64, f64)>,
    /// Lines of the gateway processes' logs worth knowing about, counted over the run.
    log_notes: Vec<String>,
    window: Duration,
}

async fn run_case(
    case: Case,
    args: &QuotaArgs,
    plan: &[Planned],
    gateway_bin: Option<&Path>,
) -> anyhow::Result<CaseReport> {
    let simulator = Simulator::new();
    simulator.set_behavior(
        MODEL_ID,
        Behavior {
            first_byte_latency: FIRST_BYTE_LATENCY,
            token_latency: TOKEN_LATENCY,
            ..Behavior::default()
        },
    );
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim_addr = sim_listener.local_addr()?;
    let (stop_sim, sim_stopped) = oneshot::channel::<()>();
    let sim_task = tokio::spawn(simulator.clone().serve(sim_listener, async {
        let _ = sim_stopped.await;
    }));

    let gateways = match case {
        Case::Off | Case::Local => Gateways::in_process(&config_text(case, sim_addr, args, None))
            .await
            .with_context(|| format!("{}: starting the gateway", case.label()))?,
        Case::Redis => {
            let bin = gateway_bin.context("no bedrock-gateway binary")?;
            Gateways::processes(bin, &args.redis_server, sim_addr, args).await?
        }
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.max_in_flight)
        .timeout(CLIENT_TIMEOUT)
        .build()?;
    // Set now, when the gateways are up: the bucket starts full here.
    let quota = Quota { tokens_per_minute: Some(args.quota_tpm), ..Quota::default() };
    simulator.set_quota(MODEL_ID, quota).map_err(|e| anyhow!("simulator quota: {e}"))?;
    let quota_set_at = Instant::now();
    let driven = drive(&client, &gateways.urls, plan, &simulator, quota_set_at, args).await;
    let log_notes = gateways.log_notes();
    gateways.stop().await;
    let _ = stop_sim.send(());
    let _ = sim_task.await;
    let driven = driven?;

    let mut report = CaseReport {
        case,
        started: 0,
        shed: driven.shed,
        warmup: (driven.warmup_took, driven.warmup_drained),
        served: 0,
        served_tokens: 0,
        rate_limited: 0,
        upstream_throttled: 0,
        other: BTreeMap::new(),
        ttfb: Vec::new(),
        whole: Vec::new(),
        upstream: difference(&driven.window_end, &driven.window_start),
        peak_tokens_per_minute: driven.window_end.peak_tokens_per_minute,
        admitted: driven.admitted,
        log_notes,
        window: Duration::from_secs(args.quota_seconds),
    };
    let (window_start_at, window_end_at) = driven.window_at;
    for (planned, outcome) in driven.outcomes {
        // Goodput is what was served in the window, whenever the request started.
        if let Outcome::Served { tokens, finished, .. } = outcome
            && (window_start_at..window_end_at).contains(&finished)
        {
            report.served_tokens += tokens;
        }
        if !planned.measured {
            continue;
        }
        report.started += 1;
        match outcome {
            Outcome::Served { latency, .. } => {
                report.served += 1;
                let latencies = if planned.stream { &mut report.ttfb } else { &mut report.whole };
                latencies.push(latency);
            }
            Outcome::Failed(kind) if kind == "rate_limited" => report.rate_limited += 1,
            Outcome::Failed(kind) if kind == "upstream_throttled" => {
                report.upstream_throttled += 1;
            }
            Outcome::Failed(kind) => *report.other.entry(kind).or_default() += 1,
        }
    }
    report.ttfb.sort();
    report.whole.sort();
    Ok(report)
}

/// The simulator's counters of `b` minus those of `a` (the peak is `b`'s).
fn difference(b: &ModelStats, a: &ModelStats) -> ModelStats {
    ModelStats {
        requests: b.requests.saturating_sub(a.requests),
        throttled: b.throttled.saturating_sub(a.throttled),
        tokens_charged: b.tokens_charged.saturating_sub(a.tokens_charged),
        peak_tokens_per_minute: b.peak_tokens_per_minute,
    }
}

fn model_stats(simulator: &Simulator) -> ModelStats {
    simulator.stats().models.get(MODEL_ID).cloned().unwrap_or_default()
}

/// What the load generator saw.
struct Driven {
    /// Every request sent (warm-up ones too), with its outcome.
    outcomes: Vec<(Planned, Outcome)>,
    /// Requests of the window not sent: `max_in_flight` were in flight.
    shed: usize,
    warmup_took: Duration,
    /// The window's start and end.
    window_at: (Instant, Instant),
    /// Whether the warm-up ended because the bucket was empty (else: [`MAX_WARMUP`]).
    warmup_drained: bool,
    window_start: ModelStats,
    window_end: ModelStats,
    admitted: Option<(f64, f64)>,
}

/// Sends the warm-up until the simulator's bucket is empty (at least
/// `--warmup-seconds`, at most [`MAX_WARMUP`]), then `plan` on its schedule, round-robin
/// over `urls`, and awaits every outcome.
async fn drive(
    client: &reqwest::Client,
    urls: &[String],
    plan: &[Planned],
    simulator: &Simulator,
    quota_set_at: Instant,
    args: &QuotaArgs,
) -> anyhow::Result<Driven> {
    let permits = Arc::new(Semaphore::new(args.max_in_flight));
    let mut tasks: Vec<(Planned, JoinHandle<Outcome>)> = Vec::new();
    let mut n_sent = 0_usize;
    let mut send = |planned: &Planned| -> bool {
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            return false;
        };
        let url = urls.get(n_sent % urls.len().max(1)).cloned().unwrap_or_default();
        n_sent += 1;
        let request = client
            .post(url)
            .header("content-type", "application/json")
            .body(generate_body(planned).to_string());
        let stream = planned.stream;
        let task = tokio::spawn(async move {
            let _permit = permit;
            one_request(request, stream).await
        });
        tasks.push((planned.clone(), task));
        true
    };

    let start = Instant::now();
    let min_warmup = Duration::from_secs(args.warmup_seconds);
    let mut warmup = Arrivals::warmup(args);
    let warmup_drained = loop {
        let planned = warmup.next();
        tokio::time::sleep_until(start + planned.at).await;
        let elapsed = start.elapsed();
        if elapsed >= min_warmup {
            if bucket_drained(simulator, args.quota_tpm, quota_set_at) {
                break true;
            }
            if elapsed >= MAX_WARMUP {
                break false;
            }
        }
        send(&planned);
    };
    let window_start_at = Instant::now();
    let warmup_took = window_start_at - start;
    let window_start = model_stats(simulator);
    let mut shed = 0;
    for planned in plan {
        tokio::time::sleep_until(window_start_at + planned.at).await;
        if !send(planned) {
            shed += 1;
        }
    }
    let window_end_at = window_start_at + Duration::from_secs(args.quota_seconds);
    tokio::time::sleep_until(window_end_at).await;
    let window_end = model_stats(simulator);
    let admitted = match urls.first() {
        Some(url) => admitted_rate(client, url, args.quota_tpm).await,
        None => None,
    };
    let mut outcomes = Vec::with_capacity(tasks.len());
    for (planned, task) in tasks {
        let outcome = task.await.unwrap_or_else(|e| Outcome::Failed(format!("task: {e}")));
        outcomes.push((planned, outcome));
    }
    Ok(Driven {
        outcomes,
        shed,
        warmup_took,
        window_at: (window_start_at, window_end_at),
        warmup_drained,
        window_start,
        window_end,
        admitted,
    })
}

fn generate_body(planned: &Planned) -> serde_json::Value {
    serde_json::json!({
        "model": ALIAS,
        "prompt": planned.prompt,
        "max_tokens": planned.max_tokens,
        "stream": planned.stream,
    })
}

/// Sends one request and reads its answer to the end.
async fn one_request(request: reqwest::RequestBuilder, stream: bool) -> Outcome {
    let started = Instant::now();
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => return Outcome::Failed(transport(&error)),
    };
    let status = response.status();
    if !status.is_success() {
        let body = response.bytes().await.unwrap_or_default();
        return Outcome::Failed(error_type(&body).unwrap_or_else(|| format!("http {status}")));
    }
    if !stream {
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(error) => return Outcome::Failed(transport(&error)),
        };
        let latency = started.elapsed();
        return match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(answer) => {
                Outcome::Served { tokens: usage_tokens(&answer), latency, finished: Instant::now() }
            }
            Err(_) => Outcome::Failed("malformed answer".to_owned()),
        };
    }
    let mut body = response.bytes_stream();
    let mut buffer = Vec::new();
    let mut first_delta = None;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => buffer.extend_from_slice(&chunk),
            Err(error) => return Outcome::Failed(transport(&error)),
        }
        // Events end with a blank line.
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buffer.drain(..end + 2).collect();
            let (name, data) = parse_event(&event);
            match name.as_str() {
                "delta" => {
                    first_delta.get_or_insert_with(|| started.elapsed());
                }
                "done" => {
                    let done: serde_json::Value = serde_json::from_str(&data).unwrap_or_default();
                    let latency = first_delta.unwrap_or_else(|| started.elapsed());
                    return Outcome::Served {
                        tokens: usage_tokens(&done),
                        latency,
                        finished: Instant::now(),
                    };
                }
                "error" => {
                    return Outcome::Failed(
                        error_type(data.as_bytes()).unwrap_or_else(|| "stream error".to_owned()),
                    );
                }
                _ => {}
            }
        }
    }
    Outcome::Failed("stream ended without done".to_owned())
}

/// An SSE event's name and data (data lines joined with newlines).
fn parse_event(event: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(event);
    let mut name = String::new();
    let mut data = Vec::new();
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            name = value.trim().to_owned();
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    (name, data.join("\n"))
}

fn usage_tokens(answer: &serde_json::Value) -> u64 {
    let usage = &answer["usage"];
    usage["input_tokens"].as_u64().unwrap_or(0) + usage["output_tokens"].as_u64().unwrap_or(0)
}

/// The `error.type` of a gateway error body.
fn error_type(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value["error"]["type"].as_str().map(str::to_owned)
}

fn transport(error: &reqwest::Error) -> String {
    if error.is_timeout() { "transport: timeout".to_owned() } else { "transport: error".to_owned() }
}

/// `GET /v1/limits` of the gateway at `generate_url`: the target's admitted tokens per
/// minute ÷ Q and its learned tokens per byte (`None` without a quota, or without the route).
async fn admitted_rate(client: &reqwest::Client, generate_url: &str, q: u64) -> Option<(f64, f64)> {
    let url = generate_url.replace("/v1/generate", "/v1/limits");
    let response = client.get(url).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let status: serde_json::Value = response.json().await.ok()?;
    let target = &status["targets"][TARGET];
    let admitted = target["admitted_tokens_per_minute"].as_f64()?;
    let tokens_per_byte = target["tokens_per_byte"].as_f64().unwrap_or(f64::NAN);
    Some((admitted / q as f64, tokens_per_byte))
}

// --- The gateways -------------------------------------------------------------------------

/// The configuration of one gateway of `case`; `redis_url` for (c).
fn config_text(
    case: Case,
    sim_addr: SocketAddr,
    args: &QuotaArgs,
    redis_url: Option<&str>,
) -> String {
    // No load balancer to wait for: each case's gateways stop at once.
    let mut text = format!(
        "shutdown_delay_ms = 0\n[upstream]\nkind = \"simulator\"\nendpoint_url = \"http://{sim_addr}\"\nmax_attempts = 3\n\n"
    );
    if case == Case::Off {
        let _ = write!(text, "[models.{ALIAS}]\nmodel_id = \"{MODEL_ID}\"\n");
        return text;
    }
    text.push_str("[limits]\n");
    if let Some(url) = redis_url {
        let _ = write!(
            text,
            "backend = \"redis\"\nredis_url = \"{url}\"\nexpected_replicas = {N_REPLICAS}\n"
        );
    }
    let _ = write!(
        text,
        "max_queue_len = {MAX_QUEUE_LEN}\nmax_queue_wait_ms = {MAX_QUEUE_WAIT_MS}\n\n\
         [targets.{TARGET}]\nmodel_id = \"{MODEL_ID}\"\ntokens_per_minute = {}\n\n\
         [models.{ALIAS}]\ntargets = [\"{TARGET}\"]\ndefaults = {{ max_tokens = {} }}\n",
        args.quota_tpm, MAX_TOKENS.1
    );
    text
}

/// A `server::run` in this process.
type GatewayTask = JoinHandle<Result<(), server::RunError>>;

/// The gateways of one case, and what must be stopped after it.
struct Gateways {
    /// Their `/v1/generate` URLs.
    urls: Vec<String>,
    /// Each in-process gateway's stop signal and task.
    in_process: Vec<(oneshot::Sender<()>, GatewayTask)>,
    processes: Vec<GatewayProcess>,
    /// Killed when dropped, after the gateways.
    redis: Option<ChildGuard>,
    config_files: Vec<PathBuf>,
}

/// A `bedrock-gateway` child process and what its log said.
pub(crate) struct GatewayProcess {
    /// Killed when the process is dropped.
    child: ChildGuard,
    log: Arc<Mutex<LogCounts>>,
}

/// Counts of log lines of a gateway process.
#[derive(Debug, Default)]
struct LogCounts {
    upstream_throttled: usize,
    redis_unavailable: usize,
    warnings: usize,
    /// The last lines, for an error message if it dies at start-up.
    last: Vec<String>,
}

/// A child process killed (and reaped) when dropped.
pub(crate) struct ChildGuard(pub(crate) Child);

impl GatewayProcess {
    /// Stops the process the way Kubernetes does (SIGTERM), and waits for it to exit.
    pub(crate) fn terminate(mut self) -> anyhow::Result<()> {
        let pid = self.child.0.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status()?;
        if !status.success() {
            bail!("kill -TERM {pid} failed");
        }
        self.child.0.wait()?;
        Ok(())
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// The CPU time the process has used so far (user + system, every thread), from
    /// `/proc/<pid>/stat`; `None` where that cannot be read.
    pub(crate) fn cpu_time(&self) -> Option<Duration> {
        cpu_time_of(self.child.0.id())
    }
}

/// The CPU time process `pid` has used so far (user + system, every thread, those that
/// have exited too), from `/proc/<pid>/stat`; `None` where that cannot be read.
pub(crate) fn cpu_time_of(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // The kernel's USER_HZ, 100 on Linux.
    Some(Duration::from_millis(ticks * 10))
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Gateways {
    /// One `server::run` in this process.
    async fn in_process(config_text: &str) -> anyhow::Result<Gateways> {
        let config = server::Config::parse(config_text, "bench")?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::run(listener, config, async {
            let _ = stopped.await;
        }));
        Ok(Gateways {
            urls: vec![format!("http://{addr}/v1/generate")],
            in_process: vec![(stop, task)],
            processes: Vec::new(),
            redis: None,
            config_files: Vec::new(),
        })
    }

    /// A Redis on a free port and [`N_REPLICAS`] `bedrock-gateway` processes sharing it.
    async fn processes(
        bin: &Path,
        redis_server: &Path,
        sim_addr: SocketAddr,
        args: &QuotaArgs,
    ) -> anyhow::Result<Gateways> {
        let redis_server = redis_server.to_owned();
        let (redis, redis_port) =
            tokio::task::spawn_blocking(move || start_redis(&redis_server)).await??;
        let redis_url = format!("redis://127.0.0.1:{redis_port}");
        let mut gateways = Gateways {
            urls: Vec::new(),
            in_process: Vec::new(),
            processes: Vec::new(),
            redis: Some(redis),
            config_files: Vec::new(),
        };
        let text = config_text(Case::Redis, sim_addr, args, Some(&redis_url));
        server::Config::parse(&text, "bench").context("the (c) gateway configuration")?;
        for i in 0..N_REPLICAS {
            let path = std::env::temp_dir()
                .join(format!("gateway-bench-{}-replica{i}.toml", std::process::id()));
            std::fs::write(&path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            gateways.config_files.push(path.clone());
            let (process, addr) = start_gateway(bin, &path, Some("info"), true)
                .await
                .with_context(|| format!("starting gateway process {i} ({})", bin.display()))?;
            gateways.processes.push(process);
            gateways.urls.push(format!("http://{addr}/v1/generate"));
        }
        Ok(gateways)
    }

    /// What the processes' logs said, one line per process.
    fn log_notes(&self) -> Vec<String> {
        self.processes
            .iter()
            .enumerate()
            .map(|(i, process)| {
                let log = process.log.lock().unwrap_or_else(PoisonError::into_inner);
                format!(
                    "process {i} log: {} \"upstream throttled\", {} \"Redis is unavailable\", \
                     {} other WARN",
                    log.upstream_throttled, log.redis_unavailable, log.warnings
                )
            })
            .collect()
    }

    async fn stop(self) {
        for (stop, task) in self.in_process {
            let _ = stop.send(());
            let _ = task.await;
        }
        drop(self.processes);
        drop(self.redis);
        for path in self.config_files {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Starts `bin --config path --listen 127.0.0.1:0` and waits for its listening line.
/// `rust_log`: its `RUST_LOG` (`None`: the config's `log_level` applies). With
/// `count_lines`, the log is read line by line and its notable lines counted; without,
/// it is drained in large reads after the listening line, as a log shipper reads.
pub(crate) async fn start_gateway(
    bin: &Path,
    config: &Path,
    rust_log: Option<&str>,
    count_lines: bool,
) -> anyhow::Result<(GatewayProcess, String)> {
    start_gateway_under(&[], bin, config, rust_log, count_lines).await
}

/// [`start_gateway`], run by `wrapper` (`valgrind --tool=callgrind …`) when it is given.
pub(crate) async fn start_gateway_under(
    wrapper: &[String],
    bin: &Path,
    config: &Path,
    rust_log: Option<&str>,
    count_lines: bool,
) -> anyhow::Result<(GatewayProcess, String)> {
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(bin);
            command
        }
        None => Command::new(bin),
    };
    match rust_log {
        Some(filter) => command.env("RUST_LOG", filter),
        None => command.env_remove("RUST_LOG"),
    };
    let mut child = command
        .arg("--config")
        .arg(config)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let child = ChildGuard(child);
    let log = Arc::new(Mutex::new(LogCounts::default()));
    let (address_tx, address_rx) = oneshot::channel::<String>();
    let thread_log = log.clone();
    std::thread::spawn(move || read_gateway_log(stderr, &thread_log, address_tx, count_lines));
    let wait = if wrapper.is_empty() { 15 } else { 120 };
    match tokio::time::timeout(Duration::from_secs(wait), address_rx).await {
        Ok(Ok(address)) => Ok((GatewayProcess { child, log }, address)),
        _ => {
            let last = log.lock().unwrap_or_else(PoisonError::into_inner).last.join("\n    ");
            bail!(
                "it did not log its listening address within {wait} s; its last lines:\n    {last}"
            )
        }
    }
}

/// Reads a gateway's log to its end: sends the listening address, counts notable lines.
fn read_gateway_log(
    stderr: impl Read,
    log: &Mutex<LogCounts>,
    address_tx: oneshot::Sender<String>,
    count_lines: bool,
) {
    let mut address_tx = Some(address_tx);
    let mut reader = BufReader::with_capacity(1 << 16, stderr);
    let mut line = String::new();
    loop {
        if !count_lines && address_tx.is_none() {
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
            return;
        }
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = line.trim_end().to_owned();
        // `address=http://…` (human) or `"address":"http://…"` (JSON).
        if line.contains("bedrock-gateway listening")
            && let Some(rest) = line.split("http://").nth(1)
            && let Some(tx) = address_tx.take()
        {
            let address: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || ":.".contains(*c))
                .collect();
            let _ = tx.send(address);
        }
        let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
        log.upstream_throttled += usize::from(line.contains("upstream throttled"));
        log.redis_unavailable += usize::from(line.contains("Redis is unavailable"));
        // Every gateway without API keys warns about it once at start: not news.
        log.warnings += usize::from(line.contains(" WARN ") && !line.contains("no API keys"));
        if log.last.len() >= 20 {
            log.last.remove(0);
        }
        log.last.push(line);
    }
}

/// Starts `redis-server` without persistence on a free loopback port; waits for PONG.
fn start_redis(bin: &Path) -> anyhow::Result<(ChildGuard, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new(bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .args(["--appendonly", "no"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| redis_missing(bin, &e))?;
    let child = ChildGuard(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if ping(port).is_ok() {
            return Ok((child, port));
        }
        if std::time::Instant::now() > deadline {
            bail!("{} did not answer PING on port {port} within 5 s", bin.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ping(port: u16) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    stream.write_all(b"PING\r\n")?;
    let mut answer = [0_u8; 7];
    stream.read_exact(&mut answer)?;
    if &answer == b"+PONG\r\n" { Ok(()) } else { Err(std::io::Error::other("not PONG")) }
}

fn redis_missing(bin: &Path, error: &std::io::Error) -> anyhow::Error {
    anyhow!(
        "cannot run {} ({error}): case (c) needs Redis; install it (`apt-get install -y \
         redis-server`), pass --redis-server PATH, or leave redis out of --cases",
        bin.display()
    )
}

/// For (c): the gateway binary exists and `redis-server` runs. Returns the binary.
fn check_prerequisites(args: &QuotaArgs) -> anyhow::Result<PathBuf> {
    let bin = crate::gateway_bin(args.gateway_bin.as_ref())?;
    if !bin.is_file() {
        bail!(
            "case (c) runs real gateway processes, and {} does not exist: build it with \
             `cargo build --release -p server` (or pass --gateway-bin PATH, or leave redis out \
             of --cases)",
            bin.display()
        );
    }
    Command::new(&args.redis_server)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| redis_missing(&args.redis_server, &e))?;
    Ok(bin)
}

// --- The report ---------------------------------------------------------------------------

fn fraction(n: impl Into<f64>, of: impl Into<f64>) -> f64 {
    let of = of.into();
    if of > 0.0 { n.into() / of } else { 0.0 }
}

fn count_and_share(n: usize, of: usize) -> String {
    format!("{n} ({:.1}%)", 100.0 * fraction(n as f64, of as f64))
}

fn per_minute_of_q(tokens: u64, window: Duration, q: u64) -> f64 {
    fraction(tokens as f64 / (window.as_secs_f64() / 60.0), q as f64)
}

fn seconds_pair(sorted: &[Duration]) -> String {
    if sorted.is_empty() {
        return "-".to_owned();
    }
    format!(
        "{:.2} / {:.2}",
        percentile(sorted, 0.50).as_secs_f64(),
        percentile(sorted, 0.99).as_secs_f64()
    )
}

impl CaseReport {
    fn throttle_fraction(&self) -> f64 {
        fraction(self.upstream.throttled as f64, self.upstream.requests as f64)
    }

    fn goodput(&self, q: u64) -> f64 {
        per_minute_of_q(self.served_tokens, self.window, q)
    }
}

/// How old a file is, for the header ("built 3 min ago").
fn age(path: &Path) -> String {
    let modified = std::fs::metadata(path).and_then(|m| m.modified());
    match modified.ok().and_then(|m| SystemTime::now().duration_since(m).ok()) {
        Some(age) if age < Duration::from_secs(120) => format!("built {} s ago", age.as_secs()),
        Some(age) => format!("built {} min ago", age.as_secs() / 60),
        None => "age unknown".to_owned(),
    }
}

#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn print_report(
    args: &QuotaArgs,
    plan: &[Planned],
    gateway_bin: Option<&Path>,
    reports: &[CaseReport],
) {
    let q = args.quota_tpm;
    let window = Duration::from_secs(args.quota_seconds);
    let measured: Vec<&Planned> = plan.iter().filter(|p| p.measured).collect();
    let offered: u64 = measured.iter().map(|p| p.reserved).sum();
    let n_streams = measured.iter().filter(|p| p.stream).count();
    println!(
        "gateway-bench quota: {MODEL_ID} held to Q = {q} tokens/min by the simulator\n  \
         (a token bucket, full at start; {} ms to first byte, {} ms per output token; answers \
         16-47 tokens)",
        FIRST_BYTE_LATENCY.as_millis(),
        TOKEN_LATENCY.as_millis()
    );
    println!(
        "load: open loop, Poisson, seed {}; prompts {}-{} words, max_tokens {}-{}; {} of {} \
         streamed;\n  at most {} in flight; offered {:.2} x Q, counted as reserved (prompt \
         words + max_tokens), {:.2} req/s",
        args.seed,
        PROMPT_WORDS.0,
        PROMPT_WORDS.1,
        MAX_TOKENS.0,
        MAX_TOKENS.1,
        n_streams,
        measured.len(),
        args.max_in_flight,
        per_minute_of_q(offered, window, q),
        fraction(measured.len() as f64, window.as_secs_f64())
    );
    println!(
        "method: warm-up at {WARMUP_RATE_FACTOR} x that rate, at least {} s and until the \
         simulator's bucket is empty\n  (it has charged Q plus its refill, within 5%), then a \
         {} s window. Requests, 429s, latencies:\n  those started in the window, awaited to \
         their end. Goodput: tokens of the successful answers\n  that ended in the window. \
         Simulator figures: its counters' change over the window.",
        args.warmup_seconds, args.quota_seconds
    );
    println!(
        "gateways: (a) no quota in the gateway, max_attempts 3; (b) tokens_per_minute = Q, queue \
         {MAX_QUEUE_LEN}\n  long, {} s wait; (c) as (b), {N_REPLICAS} bedrock-gateway processes \
         sharing one redis-server, load round-robin",
        MAX_QUEUE_WAIT_MS / 1000
    );
    if let Some(bin) = gateway_bin {
        println!("gateway binary for (c): {} ({})", bin.display(), age(bin));
    }
    println!();

    let mut rows: Vec<(&str, Vec<String>)> = Vec::new();
    let mut row = |label: &'static str, f: &dyn Fn(&CaseReport) -> String| {
        rows.push((label, reports.iter().map(f).collect()));
    };
    row("warm-up until the bucket is empty", &|r| match r.warmup {
        (took, true) => format!("{:.1} s", took.as_secs_f64()),
        (took, false) => format!("NOT EMPTY {:.0} s", took.as_secs_f64()),
    });
    row("requests started in the window", &|r| r.started.to_string());
    row("  not sent (in-flight cap)", &|r| r.shed.to_string());
    row("  succeeded", &|r| count_and_share(r.served, r.started));
    row("  429 rate_limited (gateway)", &|r| count_and_share(r.rate_limited, r.started));
    row("  429 upstream_throttled", &|r| count_and_share(r.upstream_throttled, r.started));
    row("  other errors", &|r| {
        let n: usize = r.other.values().sum();
        count_and_share(n, r.started)
    });
    row("goodput: tokens served/min / Q", &|r| format!("{:.1}%", 100.0 * r.goodput(q)));
    row("upstream calls (simulator)", &|r| r.upstream.requests.to_string());
    row("upstream throttles", &|r| {
        format!("{} ({:.2}%)", r.upstream.throttled, 100.0 * r.throttle_fraction())
    });
    row("upstream charged tokens/min / Q", &|r| {
        format!("{:.1}%", 100.0 * per_minute_of_q(r.upstream.tokens_charged, r.window, q))
    });
    row("stream 1st delta p50 / p99 (s)", &|r| seconds_pair(&r.ttfb));
    row("whole answer p50 / p99 (s)", &|r| seconds_pair(&r.whole));
    row("simulator peak tokens/min (run)", &|r| {
        format!(
            "{} ({:.2} Q)",
            r.peak_tokens_per_minute,
            fraction(r.peak_tokens_per_minute as f64, q as f64)
        )
    });
    row("gateway admitted tpm / Q at end", &|r| match r.admitted {
        Some((admitted, _)) => format!("{:.1}%", 100.0 * admitted),
        None => "-".to_owned(),
    });
    row("learned input tokens/body byte", &|r| match r.admitted {
        Some((_, tokens_per_byte)) => format!("{tokens_per_byte:.3}"),
        None => "-".to_owned(),
    });
    print!("{:<34}", "");
    for report in reports {
        print!("{:>22}", report.case.label());
    }
    println!();
    for (label, cells) in &rows {
        print!("{label:<34}");
        for cell in cells {
            print!("{cell:>22}");
        }
        println!();
    }
    for report in reports {
        if !report.other.is_empty() {
            let kinds: Vec<String> =
                report.other.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            println!("{} other errors: {}", report.case.label(), kinds.join(", "));
        }
        for note in &report.log_notes {
            println!("{} {note} (whole run)", report.case.letter());
        }
    }
    println!(
        "\nlatencies run from the bench's send, so they include the gateway's queue wait \
         (unloaded: about {} ms\nto a stream's first delta); the peak covers the whole run, \
         where a full bucket plus a minute\nof refill can reach 2 Q",
        (FIRST_BYTE_LATENCY + TOKEN_LATENCY).as_millis()
    );
    if reports.iter().all(|r| r.case == Case::Off) {
        return;
    }
    println!(
        "\ntargets: upstream throttles < {}% of upstream calls, goodput >= {}% of Q",
        100.0 * MAX_THROTTLE_FRACTION,
        100.0 * MIN_GOODPUT
    );
    for report in reports.iter().filter(|r| r.case != Case::Off) {
        let throttles = report.throttle_fraction();
        let goodput = report.goodput(q);
        let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
        println!(
            "{}: upstream throttles {} of {} calls = {:.2}% {}; goodput {:.1}% of Q {}",
            report.case.label(),
            report.upstream.throttled,
            report.upstream.requests,
            100.0 * throttles,
            verdict(throttles < MAX_THROTTLE_FRACTION),
            100.0 * goodput,
            verdict(goodput >= MIN_GOODPUT)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> QuotaArgs {
        QuotaArgs {
            quota_tpm: 12_000,
            quota_seconds: 60,
            warmup_seconds: 20,
            load_factor: 3.0,
            seed: 1,
            max_in_flight: 256,
            cases: vec![Case::Off],
            gateway_bin: None,
            redis_server: PathBuf::from("redis-server"),
        }
    }

    #[test]
    fn plan_is_deterministic_and_offers_the_load() {
        let a = window_plan(&args());
        let b = window_plan(&args());
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| x.prompt == y.prompt && x.at == y.at));
        let measured: Vec<&Planned> = a.iter().filter(|p| p.measured).collect();
        let offered: u64 = measured.iter().map(|p| p.reserved).sum();
        let factor = offered as f64 / 12_000.0;
        assert!((2.4..3.6).contains(&factor), "offered {factor} x Q");
        let streams = measured.iter().filter(|p| p.stream).count();
        assert!(streams * 3 > measured.len() && streams * 3 < 2 * measured.len());
        for p in &a {
            let words = u32::try_from(p.prompt.split_whitespace().count()).unwrap();
            assert!((5..=200).contains(&words));
            assert!((16..=200).contains(&p.max_tokens));
            assert_eq!(p.reserved, u64::from(words + p.max_tokens));
        }
    }

    #[test]
    fn sse_events_parse() {
        let (name, data) = parse_event(b"event: done\ndata: {\"usage\":{\"input_tokens\":3}}\n\n");
        assert_eq!(name, "done");
        let done: serde_json::Value = serde_json::from_str(&data).unwrap();
        assert_eq!(usage_tokens(&done), 3);
        assert_eq!(
            error_type(br#"{"error":{"type":"rate_limited","message":"x"}}"#).as_deref(),
            Some("rate_limited")
        );
    }

    #[test]
    fn configs_parse() {
        let sim: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for case in [Case::Off, Case::Local] {
            server::Config::parse(&config_text(case, sim, &args(), None), "test").unwrap();
        }
        let text = config_text(Case::Redis, sim, &args(), Some("redis://127.0.0.1:6379"));
        let config = server::Config::parse(&text, "test").unwrap();
        assert_eq!(config.targets[TARGET].quota.tokens_per_minute, Some(12_000));
    }
}
