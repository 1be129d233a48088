//! `--scenario soak`: a bounded run at a steady rate of every kind of traffic the gateway
//! takes, to find what leaks or hangs: memory, file descriptors, tasks, requests that are
//! never answered.
//!
//! The gateway (`server::serve`, reloading from a config file, with its admin listener)
//! runs on a tokio runtime of its own in this process, so that its alive tasks can be
//! counted apart from the load generator's; the simulator and the load generator share the
//! other runtime. Requests start on a fixed schedule (`--soak-rate` a second, open loop:
//! a slow answer does not slow the schedule down), cycling through [`Kind::ALL`]: whole
//! answers and streams on the gateway's API, the OpenAI-compatible API and the Bedrock
//! passthrough, embeddings and images; a model the simulator fails (a 5xx), one whose
//! stream breaks after two chunks (an `error` event), one it throttles (429 after the
//! retry), a target whose quota in the gateway refuses part of the load (429
//! `rate_limited`); a slow client that reads a stream 50 ms per read, and clients that go
//! away after the first event, on the gateway's and the passthrough's streams. The config
//! is rewritten and reloaded (`POST /-/reload`) `--soak-reloads` times, evenly spread.
//!
//! Every request is classified when it ends: the outcome its kind expects (a status, a
//! stream's terminal event), another outcome (**unexpected**), or **never answered**: no
//! status within the client's timeout, a connection that broke, a stream that ended
//! without its terminal event. A client that goes away on purpose counts as answered once
//! its first event came. Before the run (after a warm-up) and after it (once every request
//! has ended), the process's resident set (`VmRSS`), its open file descriptors
//! (`/proc/self/fd`), the gateway runtime's alive tasks, the gateway's
//! `gateway_requests_in_flight` and `gateway_active_streams` and the simulator's calls in
//! flight are read. The run fails (exit code 1) when a request was never answered or had
//! an unexpected outcome, a reload failed, something is left in flight, or the resident
//! set, descriptors or tasks grew past their bounds (`--soak-max-*`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bedrock_sim::{Behavior, ErrorKind, Fault, Simulator};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::memory::proc_status_kib;

/// The flags of this scenario.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Soak scenario (--scenario soak)")]
pub struct SoakArgs {
    /// Length of the measured run, in seconds.
    #[arg(long, default_value_t = 180)]
    pub soak_seconds: u64,
    /// Requests started per second.
    #[arg(long, default_value_t = 30.0)]
    pub soak_rate: f64,
    /// Config reloads during the run, evenly spread.
    #[arg(long, default_value_t = 2)]
    pub soak_reloads: usize,
    /// The most the resident set may grow over the run, in MiB.
    #[arg(long, default_value_t = 64)]
    pub soak_max_rss_growth_mib: u64,
    /// The most open file descriptors may grow over the run.
    #[arg(long, default_value_t = 32)]
    pub soak_max_fd_growth: usize,
    /// The most the gateway runtime's alive tasks may grow over the run.
    #[arg(long, default_value_t = 32)]
    pub soak_max_task_growth: usize,
}

/// One kind of request of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    GenerateRest,
    GenerateSse,
    ChatRest,
    ChatSse,
    CompletionsSse,
    Embed,
    Embeddings,
    Images,
    OpenAiImages,
    BedrockInvoke,
    BedrockStream,
    /// The simulator answers `InternalServerException`: a 5xx after the retry.
    UpstreamError,
    /// The stream breaks after two chunks: a 200, then an `error` event.
    StreamBreaks,
    /// The simulator throttles every call: a 429 after the retry.
    Throttled,
    /// A target with a small quota in the gateway: 200 or 429 `rate_limited`.
    RateLimited,
    /// A stream read 50 ms per read.
    SlowReader,
    /// A gateway stream left after its first `delta`.
    Disconnect,
    /// A passthrough stream left after its first frame.
    BedrockDisconnect,
}

impl Kind {
    const ALL: [Kind; 18] = [
        Kind::GenerateRest,
        Kind::GenerateSse,
        Kind::ChatRest,
        Kind::ChatSse,
        Kind::CompletionsSse,
        Kind::Embed,
        Kind::Embeddings,
        Kind::Images,
        Kind::OpenAiImages,
        Kind::BedrockInvoke,
        Kind::BedrockStream,
        Kind::UpstreamError,
        Kind::StreamBreaks,
        Kind::Throttled,
        Kind::RateLimited,
        Kind::SlowReader,
        Kind::Disconnect,
        Kind::BedrockDisconnect,
    ];

    /// The path and body of one request; `idx` varies the prompt.
    fn request(self, idx: usize) -> (&'static str, Value) {
        let prompt = format!("soak request {idx}: summarise the lighthouse keeper's log");
        let chat = |model: &str, stream: bool| {
            json!({"model": model, "stream": stream, "max_tokens": 12,
                   "stream_options": stream.then(|| json!({"include_usage": true})),
                   "messages": [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": prompt}]})
        };
        let generate = |model: &str, stream: bool, max_tokens: u32| {
            json!({"model": model, "prompt": prompt, "stream": stream,
                   "max_tokens": max_tokens})
        };
        let claude_body = json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 12,
                                 "messages": [{"role": "user", "content": prompt}]});
        match self {
            Kind::GenerateRest => ("/v1/generate", generate("titan", false, 12)),
            Kind::GenerateSse => ("/v1/generate", generate("claude", true, 12)),
            Kind::ChatRest => ("/v1/chat/completions", chat("claude", false)),
            Kind::ChatSse => ("/v1/chat/completions", chat("claude", true)),
            Kind::CompletionsSse => (
                "/v1/completions",
                json!({"model": "titan", "prompt": prompt, "stream": true, "max_tokens": 12}),
            ),
            Kind::Embed => ("/v1/embed", json!({"model": "embed", "input": [prompt, "second"]})),
            Kind::Embeddings => ("/v1/embeddings", json!({"model": "embed", "input": prompt})),
            Kind::Images => (
                "/v1/images",
                json!({"model": "image", "prompt": prompt, "width": 512, "height": 512}),
            ),
            Kind::OpenAiImages => (
                "/v1/images/generations",
                json!({"model": "image", "prompt": prompt, "size": "512x512"}),
            ),
            Kind::BedrockInvoke => ("/model/claude/invoke", claude_body),
            Kind::BedrockStream | Kind::BedrockDisconnect => {
                ("/model/claude/invoke-with-response-stream", claude_body)
            }
            Kind::UpstreamError => ("/v1/generate", generate("broken", false, 12)),
            Kind::StreamBreaks => ("/v1/generate", generate("breaks", true, 12)),
            Kind::Throttled => ("/v1/chat/completions", chat("throttled", false)),
            Kind::RateLimited => ("/v1/generate", generate("limited", false, 200)),
            Kind::SlowReader => ("/v1/generate", generate("claude", true, 24)),
            Kind::Disconnect => ("/v1/generate", generate("titan", true, 64)),
        }
    }

    /// How the answer is read and what it must be.
    fn expects(self) -> Expect {
        match self {
            Kind::GenerateSse | Kind::SlowReader => Expect::GatewayStream { error: false },
            Kind::StreamBreaks => Expect::GatewayStream { error: true },
            Kind::ChatSse | Kind::CompletionsSse => Expect::OpenAiStream,
            Kind::BedrockStream => Expect::EventStream,
            Kind::UpstreamError => Expect::Status(500..=599),
            Kind::Throttled => Expect::Status(429..=429),
            Kind::RateLimited => Expect::OkOrLimited,
            Kind::Disconnect | Kind::BedrockDisconnect => Expect::LeaveAfterFirstEvent,
            _ => Expect::Status(200..=200),
        }
    }
}

/// What a kind's answer must be.
#[derive(Debug, Clone)]
enum Expect {
    /// This status, the whole body read.
    Status(std::ops::RangeInclusive<u16>),
    /// 200 or 429 `rate_limited`.
    OkOrLimited,
    /// 200, then `delta` events and `done` (or, with `error`, an `error` event).
    GatewayStream { error: bool },
    /// 200, then chunks and `data: [DONE]`.
    OpenAiStream,
    /// 200, then event-stream frames, none an exception, to the body's end.
    EventStream,
    /// 200 and a first event; then the client goes away.
    LeaveAfterFirstEvent,
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// As its kind expects.
    Expected,
    /// Answered, but not as its kind expects (status, body).
    Unexpected(String),
    /// No status within the timeout, a broken connection, a stream without its end.
    NeverAnswered(String),
}

/// The counts of one kind.
#[derive(Debug, Default, Clone)]
struct Tally {
    sent: usize,
    expected: usize,
    unexpected: usize,
    never_answered: usize,
    /// Answers by status.
    statuses: BTreeMap<u16, usize>,
    /// A few examples of what went wrong.
    examples: Vec<String>,
}

/// The figures read before and after the run.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    rss_kib: u64,
    fds: usize,
    gateway_tasks: usize,
    requests_in_flight: f64,
    active_streams: f64,
    simulator_in_flight: u64,
}

/// A request that has no status (and a stream no next byte) in this long is never
/// answered.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// The warm-up's length, at the run's rate.
const WARMUP: Duration = Duration::from_secs(5);
/// How long the slow reader waits between two reads.
const SLOW_READ: Duration = Duration::from_millis(50);

const TITAN: &str = "amazon.titan-text-express-v1";
const CLAUDE: &str = "anthropic.claude-3-haiku-20240307-v1:0";
const BROKEN: &str = "amazon.titan-text-lite-v1";
const BREAKS: &str = "meta.llama3-8b-instruct-v1:0";
const THROTTLED: &str = "mistral.mistral-7b-instruct-v0:2";
const LIMITED: &str = "amazon.titan-text-premier-v1:0";
const EMBED: &str = "amazon.titan-embed-text-v2:0";
const IMAGE: &str = "amazon.titan-image-generator-v2:0";

pub async fn run(args: &SoakArgs) -> anyhow::Result<()> {
    if std::fs::read_dir("/proc/self/fd").is_err() {
        bail!("the soak scenario reads /proc/self: Linux only");
    }
    let sim = Simulator::new();
    let latency = Behavior {
        first_byte_latency: Duration::from_millis(20),
        token_latency: Duration::from_millis(5),
        ..Behavior::default()
    };
    for model in [TITAN, CLAUDE, LIMITED, EMBED, IMAGE] {
        sim.set_behavior(model, latency.clone());
    }
    let fault = |fault: Fault| Behavior { fault: Some(fault), ..latency.clone() };
    sim.set_behavior(BROKEN, fault(Fault::Error(ErrorKind::InternalServer)));
    sim.set_behavior(BREAKS, fault(Fault::ErrorAfterChunks(ErrorKind::ModelStreamError, 2)));
    sim.set_behavior(THROTTLED, fault(Fault::Error(ErrorKind::Throttling)));
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim_addr = sim_listener.local_addr()?;
    tokio::spawn(sim.clone().serve(sim_listener, std::future::pending()));

    let dir = std::env::temp_dir().join(format!("gateway-bench-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config_path = dir.join("gateway.toml");
    let sim_url = format!("http://{sim_addr}");
    std::fs::write(&config_path, config_text(&sim_url, 0))?;
    let gateway = Gateway::start(&config_path)?;
    let base = gateway.base_url.clone();
    let client = reqwest::Client::builder().timeout(CLIENT_TIMEOUT).build()?;

    print_header(args);
    // Warm-up: connections, pools, lazy statics, every route once.
    let warmup = drive(&client, &base, args.soak_rate, WARMUP, &[], &config_path, &sim_url).await?;
    let warmup_failures: usize =
        warmup.tallies.values().map(|t| t.unexpected + t.never_answered).sum();
    settle(&sim).await;
    let before = snapshot(&client, &gateway, &sim).await?;

    let duration = Duration::from_secs(args.soak_seconds);
    let reload_at: Vec<Duration> = (1..=args.soak_reloads)
        .map(|idx| duration.mul_f64(idx as f64 / (args.soak_reloads + 1) as f64))
        .collect();
    let started = Instant::now();
    let run =
        drive(&client, &base, args.soak_rate, duration, &reload_at, &config_path, &sim_url).await?;
    let elapsed = started.elapsed();
    settle(&sim).await;
    let after = snapshot(&client, &gateway, &sim).await?;
    gateway.stop().await?;
    let _ = std::fs::remove_dir_all(&dir);

    let verdicts = verdicts(args, &run, &before, &after, warmup_failures);
    print_report(&run, elapsed, &before, &after, &verdicts);
    if verdicts.iter().any(|(_, pass)| !pass) {
        bail!("the soak run failed (see the checks above)");
    }
    Ok(())
}

/// What a run counted.
#[derive(Debug, Default)]
struct Run {
    tallies: BTreeMap<Kind, Tally>,
    /// Reloads that answered 200 and whose change was then served.
    reloads_ok: usize,
    reload_failures: Vec<String>,
}

/// Sends requests at `rate` for `duration`, reloading the config at each `reload_at`;
/// returns once every request has ended.
async fn drive(
    client: &reqwest::Client,
    base: &str,
    rate: f64,
    duration: Duration,
    reload_at: &[Duration],
    config_path: &Path,
    sim_url: &str,
) -> anyhow::Result<Run> {
    let tallies: Arc<Mutex<BTreeMap<Kind, Tally>>> = Arc::default();
    let period = Duration::from_secs_f64(1.0 / rate.max(0.1));
    let started = Instant::now();
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    let mut run = Run::default();
    let mut reloads = reload_at.iter().copied().peekable();
    let mut n_reloads = 0;
    let mut idx = 0_usize;
    while started.elapsed() < duration {
        ticker.tick().await;
        if reloads.next_if(|at| started.elapsed() >= *at).is_some() {
            n_reloads += 1;
            match reload(client, base, config_path, sim_url, n_reloads).await {
                Ok(()) => run.reloads_ok += 1,
                Err(error) => run.reload_failures.push(format!("{error:#}")),
            }
        }
        let kind = Kind::ALL[idx % Kind::ALL.len()];
        let (path, body) = kind.request(idx);
        let request = client.post(format!("{base}{path}")).json(&body);
        let tallies = tallies.clone();
        tasks.push(tokio::spawn(async move {
            let (outcome, status) =
                one_request(request, kind.expects(), kind == Kind::SlowReader).await;
            let mut tallies = tallies.lock().await;
            let tally = tallies.entry(kind).or_default();
            tally.sent += 1;
            if let Some(status) = status {
                *tally.statuses.entry(status).or_default() += 1;
            }
            let example = match outcome {
                Outcome::Expected => {
                    tally.expected += 1;
                    None
                }
                Outcome::Unexpected(what) => {
                    tally.unexpected += 1;
                    Some(format!("unexpected: {what}"))
                }
                Outcome::NeverAnswered(what) => {
                    tally.never_answered += 1;
                    Some(format!("never answered: {what}"))
                }
            };
            if let Some(example) = example
                && tally.examples.len() < 3
            {
                tally.examples.push(example);
            }
        }));
        idx += 1;
        // Ended tasks are dropped as the run goes, so the list stays short.
        if tasks.len() >= 4096 {
            tasks.retain(|task: &tokio::task::JoinHandle<()>| !task.is_finished());
        }
    }
    for task in tasks {
        task.await?;
    }
    run.tallies = std::mem::take(&mut *tallies.lock().await);
    Ok(run)
}

/// Sends one request and reads its answer as `expect` says; the outcome and the status.
async fn one_request(
    request: reqwest::RequestBuilder,
    expect: Expect,
    slow: bool,
) -> (Outcome, Option<u16>) {
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => return (Outcome::NeverAnswered(format!("no answer: {error}")), None),
    };
    let status = response.status().as_u16();
    (read_answer(response, expect, slow).await, Some(status))
}

/// Reads an answer as `expect` says.
async fn read_answer(response: reqwest::Response, expect: Expect, slow: bool) -> Outcome {
    let status = response.status().as_u16();
    let streamed = matches!(
        expect,
        Expect::GatewayStream { .. }
            | Expect::OpenAiStream
            | Expect::EventStream
            | Expect::LeaveAfterFirstEvent
    );
    if streamed && status != 200 {
        let body = response.text().await.unwrap_or_default();
        return Outcome::Unexpected(format!("status {status}: {}", cut(&body)));
    }
    let mut body = response.bytes_stream();
    let mut seen: Vec<u8> = Vec::new();
    loop {
        let next = tokio::time::timeout(CLIENT_TIMEOUT, body.next()).await;
        match next {
            Err(_) => return Outcome::NeverAnswered("the body stalled".to_owned()),
            Ok(Some(Err(error))) => {
                return Outcome::NeverAnswered(format!("the body broke: {error}"));
            }
            Ok(Some(Ok(bytes))) => seen.extend_from_slice(&bytes),
            Ok(None) => break,
        }
        if let Expect::LeaveAfterFirstEvent = expect
            && (contains(&seen, b"event: delta") || contains(&seen, b":event-type"))
        {
            // Gone mid-stream: dropping the body closes the connection.
            return Outcome::Expected;
        }
        if slow {
            tokio::time::sleep(SLOW_READ).await;
        }
    }
    let text = String::from_utf8_lossy(&seen);
    match expect {
        Expect::Status(range) if range.contains(&status) => Outcome::Expected,
        Expect::OkOrLimited if status == 200 => Outcome::Expected,
        Expect::OkOrLimited if status == 429 && text.contains("rate_limited") => Outcome::Expected,
        Expect::Status(_) | Expect::OkOrLimited => {
            Outcome::Unexpected(format!("status {status}: {}", cut(&text)))
        }
        Expect::GatewayStream { error } => {
            let ended_done = text.contains("event: done");
            let ended_error = text.contains("event: error");
            match (error, ended_done, ended_error) {
                (false, true, false) | (true, false, true) => Outcome::Expected,
                (_, false, false) => Outcome::NeverAnswered(format!(
                    "the stream ended without `done` or `error`: {}",
                    cut(&text)
                )),
                _ => Outcome::Unexpected(format!("stream: {}", cut(&text))),
            }
        }
        Expect::OpenAiStream if text.contains("data: [DONE]") && !text.contains("\"error\"") => {
            Outcome::Expected
        }
        Expect::OpenAiStream => {
            Outcome::NeverAnswered(format!("the stream ended without `[DONE]`: {}", cut(&text)))
        }
        Expect::EventStream if contains(&seen, b"exception") => {
            Outcome::Unexpected(format!("an exception frame: {}", cut(&text)))
        }
        Expect::EventStream if contains(&seen, b":event-type") => Outcome::Expected,
        Expect::EventStream => Outcome::NeverAnswered("an event stream without frames".to_owned()),
        Expect::LeaveAfterFirstEvent => Outcome::NeverAnswered(format!(
            "the stream ended before its first event: {}",
            cut(&text)
        )),
    }
}

/// Rewrites the config (version `n`: an alias added, a default changed) and reloads it;
/// checks that the new alias is served.
async fn reload(
    client: &reqwest::Client,
    base: &str,
    config_path: &Path,
    sim_url: &str,
    n: usize,
) -> anyhow::Result<()> {
    std::fs::write(config_path, config_text(sim_url, n))?;
    let admin = ADMIN_URL.get().context("no admin listener")?;
    let response = client.post(format!("{admin}/-/reload")).send().await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("reload {n}: status {status}: {text}");
    }
    let body = json!({"model": format!("added-{n}"), "prompt": "hello", "max_tokens": 4});
    let response = client.post(format!("{base}/v1/generate")).json(&body).send().await?;
    if !response.status().is_success() {
        bail!("reload {n}: the added alias answered {}", response.status());
    }
    Ok(())
}

/// The gateway's config, version `n`.
fn config_text(sim_url: &str, n: usize) -> String {
    let added: String =
        (1..=n).map(|idx| format!("[models.added-{idx}]\nmodel_id = \"{TITAN}\"\n")).collect();
    format!(
        "shutdown_delay_ms = 0\ndrain_timeout_ms = 2000\n\
         [upstream]\nkind = \"simulator\"\nendpoint_url = \"{sim_url}\"\nmax_attempts = 2\n\
         retry_base_ms = 10\nretry_cap_ms = 50\n\
         [targets.limited]\nmodel_id = \"{LIMITED}\"\ntokens_per_minute = 600\n\
         max_queue_wait_ms = 50\n\
         [models.titan]\nmodel_id = \"{TITAN}\"\ndefaults = {{ max_tokens = {} }}\n\
         [models.claude]\nmodel_id = \"{CLAUDE}\"\n\
         [models.broken]\nmodel_id = \"{BROKEN}\"\n\
         [models.breaks]\nmodel_id = \"{BREAKS}\"\n\
         [models.throttled]\nmodel_id = \"{THROTTLED}\"\n\
         [models.limited]\ntargets = [\"limited\"]\ndefaults = {{ max_tokens = 64 }}\n\
         [models.embed]\nmodel_id = \"{EMBED}\"\n\
         [models.image]\nmodel_id = \"{IMAGE}\"\n{added}",
        16 + n
    )
}

/// The admin listener's URL, for [`reload`].
static ADMIN_URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The gateway, served on a runtime of its own.
struct Gateway {
    base_url: String,
    runtime: tokio::runtime::Runtime,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<Result<(), server::RunError>>,
}

impl Gateway {
    fn start(config_path: &Path) -> anyhow::Result<Gateway> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("gateway")
            .enable_all()
            .build()?;
        let text = std::fs::read_to_string(config_path)?;
        let config = server::Config::parse(&text, &config_path.display().to_string())
            .context("the soak config")?;
        // Bound here, registered with the gateway's runtime.
        let bind = || -> std::io::Result<tokio::net::TcpListener> {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            listener.set_nonblocking(true)?;
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)
        };
        let (listener, admin_listener) = (bind()?, bind()?);
        let base_url = format!("http://{}", listener.local_addr()?);
        let _ = ADMIN_URL.set(format!("http://{}", admin_listener.local_addr()?));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serve = server::Serve {
            listener,
            admin_listener: Some(admin_listener),
            config,
            config_file: Some((PathBuf::from(config_path), text)),
            overrides: server::Overrides::default(),
        };
        let served = runtime.spawn(server::serve(serve, async move {
            let _ = stopped.await;
        }));
        Ok(Gateway { base_url, runtime, stop, served })
    }

    fn alive_tasks(&self) -> usize {
        self.runtime.metrics().num_alive_tasks()
    }

    /// Shuts the gateway down (its own bounded shutdown) and its runtime.
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        let served = tokio::time::timeout(Duration::from_secs(30), self.served).await;
        self.runtime.shutdown_background();
        match served {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(error))) => bail!("the gateway stopped with an error: {error}"),
            Ok(Err(join_error)) => bail!("the gateway's task failed: {join_error}"),
            Err(_) => bail!("the gateway did not shut down within 30 s"),
        }
    }
}

/// Waits until the simulator has no call in flight (at most 30 s), then a second more, so
/// that what a run left behind is what stays.
async fn settle(sim: &Simulator) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.in_flight() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
}

async fn snapshot(
    client: &reqwest::Client,
    gateway: &Gateway,
    sim: &Simulator,
) -> anyhow::Result<Snapshot> {
    let admin = ADMIN_URL.get().context("no admin listener")?;
    let metrics = client.get(format!("{admin}/metrics")).send().await?.text().await?;
    let gauge = |name: &str| -> f64 {
        metrics
            .lines()
            .filter(|line| line.starts_with(name) && !line.starts_with('#'))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    Ok(Snapshot {
        rss_kib: proc_status_kib(std::process::id(), "VmRSS")?,
        fds: std::fs::read_dir("/proc/self/fd")?.count(),
        gateway_tasks: gateway.alive_tasks(),
        requests_in_flight: gauge("gateway_requests_in_flight"),
        active_streams: gauge("gateway_active_streams"),
        simulator_in_flight: sim.in_flight(),
    })
}

/// Each check and whether it passed.
fn verdicts(
    args: &SoakArgs,
    run: &Run,
    before: &Snapshot,
    after: &Snapshot,
    warmup_failures: usize,
) -> Vec<(String, bool)> {
    let never: usize = run.tallies.values().map(|t| t.never_answered).sum();
    let unexpected: usize = run.tallies.values().map(|t| t.unexpected).sum();
    let rss_growth = after.rss_kib.saturating_sub(before.rss_kib) / 1024;
    let fd_growth = after.fds.saturating_sub(before.fds);
    let task_growth = after.gateway_tasks.saturating_sub(before.gateway_tasks);
    vec![
        (format!("requests never answered: {never} (must be 0)"), never == 0),
        (format!("unexpected outcomes: {unexpected} (must be 0)"), unexpected == 0),
        (format!("warm-up failures: {warmup_failures} (must be 0)"), warmup_failures == 0),
        (
            format!(
                "reloads: {} of {} served their change{}",
                run.reloads_ok,
                args.soak_reloads,
                if run.reload_failures.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", run.reload_failures.join("; "))
                }
            ),
            run.reloads_ok == args.soak_reloads,
        ),
        (
            format!(
                "left in flight: {} requests, {} streams, {} simulator calls (must be 0)",
                after.requests_in_flight, after.active_streams, after.simulator_in_flight
            ),
            after.requests_in_flight == 0.0
                && after.active_streams == 0.0
                && after.simulator_in_flight == 0,
        ),
        (
            format!("RSS growth: {rss_growth} MiB (at most {})", args.soak_max_rss_growth_mib),
            rss_growth <= args.soak_max_rss_growth_mib,
        ),
        (
            format!("open fd growth: {fd_growth} (at most {})", args.soak_max_fd_growth),
            fd_growth <= args.soak_max_fd_growth,
        ),
        (
            format!(
                "gateway alive task growth: {task_growth} (at most {})",
                args.soak_max_task_growth
            ),
            task_growth <= args.soak_max_task_growth,
        ),
    ]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// The start of a body, on one line, for a message.
fn cut(text: &str) -> String {
    text.chars().take(160).collect::<String>().replace('\n', "\\n")
}

#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn print_header(args: &SoakArgs) {
    println!(
        "gateway-bench soak: {} s at {} requests/s ({} kinds in turn), {} reloads, after a {} s \
         warm-up\n",
        args.soak_seconds,
        args.soak_rate,
        Kind::ALL.len(),
        args.soak_reloads,
        WARMUP.as_secs()
    );
}

#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn print_report(
    run: &Run,
    elapsed: Duration,
    before: &Snapshot,
    after: &Snapshot,
    verdicts: &[(String, bool)],
) {
    println!(
        "{:<20} {:>7} {:>9} {:>11} {:>15}  statuses",
        "kind", "sent", "expected", "unexpected", "never answered"
    );
    let mut sent = 0;
    for (kind, tally) in &run.tallies {
        sent += tally.sent;
        let statuses: Vec<String> =
            tally.statuses.iter().map(|(status, n)| format!("{status}×{n}")).collect();
        println!(
            "{:<20} {:>7} {:>9} {:>11} {:>15}  {}",
            format!("{kind:?}"),
            tally.sent,
            tally.expected,
            tally.unexpected,
            tally.never_answered,
            statuses.join(" ")
        );
        for example in &tally.examples {
            println!("    {example}");
        }
    }
    println!(
        "\n{sent} requests in {:.0} s ({:.1}/s)\n",
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64()
    );
    println!("{:<34} {:>12} {:>12}", "", "start", "end");
    println!(
        "{:<34} {:>12.1} {:>12.1}",
        "RSS MiB (this process)",
        before.rss_kib as f64 / 1024.0,
        after.rss_kib as f64 / 1024.0
    );
    println!("{:<34} {:>12} {:>12}", "open fds (this process)", before.fds, after.fds);
    println!(
        "{:<34} {:>12} {:>12}",
        "gateway runtime alive tasks", before.gateway_tasks, after.gateway_tasks
    );
    println!(
        "{:<34} {:>12} {:>12}",
        "gateway_requests_in_flight", before.requests_in_flight, after.requests_in_flight
    );
    println!(
        "{:<34} {:>12} {:>12}",
        "gateway_active_streams", before.active_streams, after.active_streams
    );
    println!(
        "{:<34} {:>12} {:>12}\n",
        "simulator calls in flight", before.simulator_in_flight, after.simulator_in_flight
    );
    for (check, pass) in verdicts {
        println!("{} {check}", if *pass { "PASS" } else { "FAIL" });
    }
}
