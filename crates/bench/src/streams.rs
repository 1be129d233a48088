//! `--scenario streams`: what an open stream holds of the gateway's memory, and whether the
//! memory is given back once the streams have closed.
//!
//! A `bedrock-gateway` process (or one already running: `--streams-url`, `--streams-pid` and
//! the control URL of the simulator behind it, `--streams-sim-url`) in front of a simulator
//! whose streams send their first chunk and then hold (the behavior `hold_after_chunks`)
//! until the simulator releases them. After a few warm-up streams run to their end, the
//! process's resident set (`VmRSS` of `/proc/<pid>/status`) is read: the idle baseline. Then
//! `--streams-count` streams are opened (`POST /v1/generate` with `"stream": true`, one
//! connection each); once every one has its first chunk, the resident set is read again; the
//! simulator releases them, each is read to its end and closed by the gateway (`Connection:
//! close`), and the resident set is read right away and `--streams-settle-secs` later.
//!
//! The report: KiB per open stream, (open − idle) / count, against ≤ 25 KiB; and the
//! resident set after the settle time over the idle one, against ≤ 2×. Each stream needs
//! two descriptors in the gateway (its caller's and its call to the simulator) and two in
//! this process (the client's and the simulator's): the descriptor limit is raised as far
//! as needed before the gateway starts (the hard limit too, which takes
//! `CAP_SYS_RESOURCE`), and the gateway inherits it; where it cannot be raised far enough,
//! the streams are as many as it allows, and the report says so.
//!
//! [`measure`] is the measurement alone, for any process that proxies streams (the `hop`
//! scenario's nginx): its pid, its address and the request to send.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bedrock_sim::{Behavior, EVERY_MODEL, Simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::memory::proc_status_kib;
use crate::quota::start_gateway;
use crate::{MODEL_ID, PROMPT};

/// The flags of this scenario.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Streams scenario (--scenario streams)")]
pub struct StreamsArgs {
    /// Streams held open at once.
    #[arg(long, default_value_t = 10_000)]
    pub streams_count: usize,
    /// How long after the streams have closed the resident set is read again.
    #[arg(long, default_value_t = 60)]
    pub streams_settle_secs: u64,
    /// Streams run to their end before the idle baseline is read.
    #[arg(long, default_value_t = 32)]
    pub streams_warm_up: usize,
    /// Streams connecting at once while they are opened.
    #[arg(long, default_value_t = 256)]
    pub streams_connecting: usize,
    /// The `bedrock-gateway` binary; default: next to this one.
    #[arg(long, value_name = "PATH")]
    pub streams_gateway_bin: Option<PathBuf>,
    /// A gateway already running (`http://HOST:PORT`), instead of one started here; with
    /// `--streams-pid` and `--streams-sim-url`. Its config needs an alias `titan` for
    /// `amazon.titan-text-express-v1`, `max_connections` and `max_in_flight` above the
    /// count, and `upstream.stream_idle_timeout_ms` longer than the streams are held.
    #[arg(long, value_name = "URL", requires_all = ["streams_pid", "streams_sim_url"])]
    pub streams_url: Option<String>,
    /// The process id of the gateway at `--streams-url`.
    #[arg(long, value_name = "PID")]
    pub streams_pid: Option<u32>,
    /// The simulator behind the gateway at `--streams-url` (`http://HOST:PORT`), steered
    /// through its control API.
    #[arg(long, value_name = "URL")]
    pub streams_sim_url: Option<String>,
}

/// The targets of issue 11.
const MAX_KIB_PER_STREAM: f64 = 25.0;
const MAX_SETTLED_OVER_IDLE: f64 = 2.0;

/// Descriptors a process needs besides two per open stream: listeners, logs, the pool's
/// idle connections.
const FD_RESERVE: u64 = 512;

/// The streams a descriptor limit of `limit` allows, two descriptors each.
fn streams_allowed(limit: u64) -> usize {
    usize::try_from(limit.saturating_sub(FD_RESERVE) / 2).unwrap_or(usize::MAX)
}

/// The longest wait for one stream's first chunk, and for its end once released.
const STREAM_STEP_TIMEOUT: Duration = Duration::from_secs(120);

/// The simulator whose streams hold: in this process, or steered over its control API.
#[derive(Clone)]
pub(crate) enum SimControl {
    InProcess(Simulator),
    Remote { client: reqwest::Client, url: String },
}

/// What to measure: a process, where it listens, and one stream's request.
pub(crate) struct StreamsTarget<'a> {
    /// The process whose resident set is read.
    pub pid: u32,
    pub addr: SocketAddr,
    /// One stream's request, raw HTTP/1.1 with `Connection: close`, made afresh for each
    /// stream (a signed request carries its time).
    pub request: &'a (dyn Fn() -> Vec<u8> + Sync),
    /// Bytes the whole answer must contain (the last event's name, say), if any.
    pub end_marker: Option<&'static [u8]>,
}

/// How many streams, and how they are run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamsPlan {
    /// Streams held open at once.
    pub n_streams: usize,
    /// Streams run to their end before the idle baseline.
    pub warm_up: usize,
    /// Streams connecting at once.
    pub connecting: usize,
    /// How long after the streams have closed the resident set is read again.
    pub settle: Duration,
}

/// The resident sets of one run, in KiB.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamsMemory {
    pub n_streams: usize,
    pub idle_kib: u64,
    pub open_kib: u64,
    pub closed_kib: u64,
    pub settled_kib: u64,
    pub settle: Duration,
    /// From the first connection to the last first chunk.
    pub open_time: Duration,
}

impl StreamsMemory {
    /// What one open stream holds: the growth of the resident set over the idle one, per
    /// stream.
    pub(crate) fn kib_per_stream(&self) -> f64 {
        self.open_kib.saturating_sub(self.idle_kib) as f64 / self.n_streams.max(1) as f64
    }

    /// The resident set after the settle time over the idle one.
    pub(crate) fn settled_over_idle(&self) -> f64 {
        self.settled_kib as f64 / self.idle_kib.max(1) as f64
    }
}

pub async fn run(args: &StreamsArgs) -> anyhow::Result<()> {
    if args.streams_count == 0 {
        bail!("--streams-count must be at least 1");
    }
    // Two descriptors per stream in the gateway (its caller's and its call's), and two here
    // (the client's and the simulator's).
    let wanted = 2 * args.streams_count as u64 + FD_RESERVE;
    let limit = raise_descriptor_limit(wanted)?;
    let n_streams = args.streams_count.min(streams_allowed(limit));
    if n_streams == 0 {
        bail!("the descriptor limit, {limit}, leaves no room for a stream");
    }
    if n_streams < args.streams_count {
        print_limited(args.streams_count, n_streams, limit);
    }
    let needed = 2 * n_streams as u64 + FD_RESERVE;
    let plan = StreamsPlan {
        n_streams,
        warm_up: args.streams_warm_up,
        connecting: args.streams_connecting,
        settle: Duration::from_secs(args.streams_settle_secs),
    };
    let (sim, addr, pid, _gateway) = match &args.streams_url {
        Some(url) => {
            let pid = args.streams_pid.context("--streams-url needs --streams-pid")?;
            let sim_url =
                args.streams_sim_url.clone().context("--streams-url needs --streams-sim-url")?;
            let addr = url.trim_start_matches("http://").trim_end_matches('/');
            let addr: SocketAddr =
                addr.parse().with_context(|| format!("--streams-url {url}: not http://IP:PORT"))?;
            check_process_limit(pid, needed)?;
            let sim = SimControl::Remote { client: reqwest::Client::new(), url: sim_url };
            (sim, addr, pid, None)
        }
        None => {
            let bin = crate::gateway_bin(args.streams_gateway_bin.as_ref())?;
            crate::require_built(
                &bin,
                "cargo build --release -p server",
                "--streams-gateway-bin PATH",
            )?;
            let simulator = Simulator::new();
            let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let sim_addr = sim_listener.local_addr()?;
            tokio::spawn(simulator.clone().serve(sim_listener, std::future::pending()));
            let dir =
                std::env::temp_dir().join(format!("gateway-bench-streams-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let config = dir.join("gateway.toml");
            std::fs::write(&config, gateway_config(sim_addr, n_streams))?;
            let started = start_gateway(&bin, &config, None, false).await;
            let _ = std::fs::remove_dir_all(&dir);
            let (process, addr) = started.context("the gateway")?;
            let addr: SocketAddr = addr.parse().context("the gateway's address")?;
            let pid = process.pid();
            (SimControl::InProcess(simulator), addr, pid, Some(process))
        }
    };
    let request = generate_request(addr);
    let target = StreamsTarget { pid, addr, request: &request, end_marker: Some(b"event: done") };
    print_header(n_streams, plan.settle);
    let memory = measure(&sim, &target, &plan).await?;
    let passed = print_report(&memory);
    if !passed {
        bail!("a target was missed");
    }
    Ok(())
}

/// The config of the gateway started here: every stream admitted, none cut for its wait.
fn gateway_config(sim_addr: SocketAddr, n_streams: usize) -> String {
    let cap = n_streams + 256;
    format!(
        "metrics = true\nlog_format = \"json\"\nlog_level = \"info\"\nshutdown_delay_ms = 0\n\
         max_connections = {cap}\nmax_in_flight = {cap}\n\
         [upstream]\nkind = \"simulator\"\nendpoint_url = \"http://{sim_addr}\"\n\
         max_attempts = 1\nstream_idle_timeout_ms = 3600000\n\
         [models.titan]\nmodel_id = \"{MODEL_ID}\"\n"
    )
}

/// A `/v1/generate` stream of the alias `titan`, whose answer is a few chunks long.
pub(crate) fn generate_request(addr: SocketAddr) -> impl Fn() -> Vec<u8> + Sync {
    let body =
        serde_json::json!({"model": "titan", "prompt": PROMPT, "max_tokens": 8, "stream": true})
            .to_string();
    let request = format!(
        "POST /v1/generate HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         accept: text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes();
    move || request.clone()
}

/// The run on `target`: warm-up, idle, `plan.n_streams` open and held, released and closed,
/// then settled. The simulator's streams hold only while this runs (its behavior for every
/// model is reset after it).
pub(crate) async fn measure(
    sim: &SimControl,
    target: &StreamsTarget<'_>,
    plan: &StreamsPlan,
) -> anyhow::Result<StreamsMemory> {
    let StreamsPlan { n_streams, warm_up, connecting, settle } = *plan;
    sim.hold(None).await?;
    run_streams(target, warm_up, connecting.min(16), None).await.context("the warm-up streams")?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_kib = proc_status_kib(target.pid, "VmRSS")?;

    sim.hold(Some(1)).await?;
    let started = Instant::now();
    let opened = Arc::new(AtomicUsize::new(0));
    let streams = run_streams(target, n_streams, connecting, Some(opened.clone()));
    let mut streams = std::pin::pin!(streams);
    // Every stream has its first chunk (or one failed, which ends the run).
    let open_time = loop {
        tokio::select! {
            ended = &mut streams => {
                sim.hold(None).await?;
                ended.context("the streams")?;
                bail!("the streams ended before the simulator released them");
            }
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        if opened.load(Ordering::Relaxed) == n_streams {
            break started.elapsed();
        }
    };
    // What was freed while opening is back in the allocator; nothing runs now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let open_kib = proc_status_kib(target.pid, "VmRSS")?;
    sim.release().await?;
    let ended = streams.await;
    sim.hold(None).await?;
    ended.context("the released streams")?;
    let closed_kib = proc_status_kib(target.pid, "VmRSS")?;
    tokio::time::sleep(settle).await;
    let settled_kib = proc_status_kib(target.pid, "VmRSS")?;
    Ok(StreamsMemory { n_streams, idle_kib, open_kib, closed_kib, settled_kib, settle, open_time })
}

/// Runs `n_streams` streams, `connecting` at a time until each has its first chunk, then all
/// at once to their ends; `opened` counts those that have their first chunk. The first
/// failure ends the run.
async fn run_streams(
    target: &StreamsTarget<'_>,
    n_streams: usize,
    connecting: usize,
    opened: Option<Arc<AtomicUsize>>,
) -> anyhow::Result<()> {
    let permits = Arc::new(Semaphore::new(connecting.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n_streams {
        let permit = permits.clone().acquire_owned().await?;
        let (addr, request, end_marker) = (target.addr, (target.request)(), target.end_marker);
        let opened = opened.clone();
        tasks.spawn(async move {
            let step = tokio::time::timeout(STREAM_STEP_TIMEOUT, open_stream(addr, &request));
            let (tcp, head) = step.await.context("no first chunk within 120 s")??;
            drop(permit);
            if let Some(opened) = &opened {
                opened.fetch_add(1, Ordering::Relaxed);
            }
            let step = tokio::time::timeout(STREAM_STEP_TIMEOUT, read_to_end(tcp, head));
            let answer = step.await.context("the stream did not end within 120 s")??;
            if let Some(marker) = end_marker
                && !answer.windows(marker.len()).any(|w| w == marker)
            {
                bail!(
                    "the stream ended without {:?}: {}",
                    String::from_utf8_lossy(marker),
                    String::from_utf8_lossy(&answer[answer.len().saturating_sub(400)..])
                );
            }
            anyhow::Ok(())
        });
        // A failure ends the run at once, not after the rest have opened.
        while let Some(done) = tasks.try_join_next() {
            done??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// Connects, sends `request`, and reads until a 2xx head and the first bytes of its body
/// have arrived: the stream's first chunk. Returns the socket and what was read.
async fn open_stream(addr: SocketAddr, request: &[u8]) -> anyhow::Result<(TcpStream, Vec<u8>)> {
    let mut tcp = TcpStream::connect(addr).await.context("connect")?;
    let _ = tcp.set_nodelay(true);
    tcp.write_all(request).await?;
    let mut read = Vec::with_capacity(2048);
    loop {
        if let Some(head_end) = read.windows(4).position(|w| w == b"\r\n\r\n") {
            let status_ok = read.starts_with(b"HTTP/1.1 2");
            if !status_ok {
                let head = String::from_utf8_lossy(&read[..head_end]).into_owned();
                bail!("not a 2xx answer: {head}");
            }
            if read.len() > head_end + 4 {
                return Ok((tcp, read));
            }
        }
        if read.len() > 64 * 1024 {
            bail!("no end of the head in 64 KiB");
        }
        let mut buffer = [0_u8; 2048];
        let n = tcp.read(&mut buffer).await?;
        if n == 0 {
            bail!("closed before the first chunk: {}", String::from_utf8_lossy(&read));
        }
        read.extend_from_slice(&buffer[..n]);
    }
}

/// Reads the rest of the answer until the server closes the connection.
async fn read_to_end(mut tcp: TcpStream, mut read: Vec<u8>) -> anyhow::Result<Vec<u8>> {
    tcp.read_to_end(&mut read).await.context("reading the stream")?;
    Ok(read)
}

impl SimControl {
    /// The streams of every model hold after `after_chunks` chunks (`None`: they do not).
    async fn hold(&self, after_chunks: Option<u32>) -> anyhow::Result<()> {
        let behavior = Behavior { hold_after_chunks: after_chunks, ..Behavior::default() };
        match self {
            SimControl::InProcess(simulator) => {
                simulator.set_behavior(EVERY_MODEL, behavior);
                Ok(())
            }
            SimControl::Remote { client, url } => {
                let response = client
                    .put(format!("{url}/_sim/behavior/*"))
                    .body(serde_json::to_string(&behavior)?)
                    .send()
                    .await?;
                if !response.status().is_success() {
                    bail!("the simulator refused the behavior: {}", response.status());
                }
                Ok(())
            }
        }
    }

    /// Releases the streams that hold.
    async fn release(&self) -> anyhow::Result<()> {
        match self {
            SimControl::InProcess(simulator) => {
                simulator.release_held();
                Ok(())
            }
            SimControl::Remote { client, url } => {
                let response = client.post(format!("{url}/_sim/release")).send().await?;
                if !response.status().is_success() {
                    bail!("the simulator refused the release: {}", response.status());
                }
                Ok(())
            }
        }
    }
}

/// Raises this process's descriptor limit to `needed` (the hard limit too, which takes
/// root); processes started afterwards inherit it. Returns the limit now in force, which
/// is lower than `needed` where it could not be raised.
pub(crate) fn raise_descriptor_limit(needed: u64) -> anyhow::Result<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= needed {
        return Ok(current);
    }
    let hard = limit.maximum.unwrap_or(u64::MAX);
    let raised = Rlimit { current: Some(needed), maximum: Some(hard.max(needed)) };
    if setrlimit(Resource::Nofile, raised).is_ok() {
        return Ok(needed);
    }
    // Not root: as far as the hard limit goes.
    let soft = Rlimit { current: Some(hard.min(needed)), maximum: limit.maximum };
    setrlimit(Resource::Nofile, soft).context("setrlimit(RLIMIT_NOFILE)")?;
    Ok(hard.min(needed))
}

/// Warns when the running process `pid` may not open `needed` descriptors.
fn check_process_limit(pid: u32, needed: u64) -> anyhow::Result<()> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .with_context(|| format!("no process {pid}"))?;
    let soft = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|soft| soft.parse::<u64>().ok());
    if let Some(soft) = soft
        && soft < needed
    {
        bail!("process {pid} may open {soft} files; the streams need {needed}");
    }
    Ok(())
}

#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn print_header(n_streams: usize, settle: Duration) {
    println!(
        "gateway-bench streams: {n_streams} streams held open after their first chunk, one \
         connection each; then released, read to their end and closed; the gateway's resident \
         set (VmRSS), read again {} s after they closed\n",
        settle.as_secs()
    );
}

#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn print_limited(asked: usize, allowed: usize, limit: u64) {
    println!(
        "{asked} streams need {} file descriptors in the gateway and here; the limit is {limit} \
         and cannot be raised further (no CAP_SYS_RESOURCE): measuring {allowed} streams\n",
        2 * asked as u64 + FD_RESERVE
    );
}

/// Prints the figures and the targets; whether both are met.
#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn print_report(memory: &StreamsMemory) -> bool {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let per_stream = memory.kib_per_stream();
    let ratio = memory.settled_over_idle();
    let verdict = |pass: bool| if pass { "pass" } else { "FAIL" };
    let per_stream_pass = per_stream <= MAX_KIB_PER_STREAM;
    let ratio_pass = ratio <= MAX_SETTLED_OVER_IDLE;
    println!("{:<36} {:>10.1} MiB", "idle (after the warm-up)", mib(memory.idle_kib));
    println!(
        "{:<36} {:>10.1} MiB   (opened in {:.1} s)",
        format!("{} streams open", memory.n_streams),
        mib(memory.open_kib),
        memory.open_time.as_secs_f64()
    );
    println!("{:<36} {:>10.1} MiB", "right after they closed", mib(memory.closed_kib));
    println!(
        "{:<36} {:>10.1} MiB",
        format!("{} s after they closed", memory.settle.as_secs()),
        mib(memory.settled_kib)
    );
    println!();
    println!(
        "per open stream (open - idle) / n: {per_stream:>8.1} KiB   target <= {MAX_KIB_PER_STREAM} \
         KiB: {}",
        verdict(per_stream_pass)
    );
    println!(
        "after / idle:                      {ratio:>8.2}x      target <= {MAX_SETTLED_OVER_IDLE}x: \
         {}",
        verdict(ratio_pass)
    );
    per_stream_pass && ratio_pass
}
