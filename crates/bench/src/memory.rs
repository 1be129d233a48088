//! `--scenario memory`: what one large request body costs the gateway in memory, per route.
//!
//! For each case (a route and a shape of body: one long text, many items, base64 images),
//! a fresh `bedrock-gateway` process is started in front of a simulator that runs in this
//! process, so that the gateway's figures are its own. The case is warmed up with a small
//! body of the same shape; then the process's resident set (`VmRSS` of
//! `/proc/<pid>/status`) is read, `--memory-concurrency` copies of a body of about
//! `--memory-mb` MiB are sent at once, and once every answer is in, the process's peak
//! resident set (`VmHWM`). The report is the growth of the peak over the resident set
//! before, per MiB of body sent: the memory one request holds per MiB of its body.
//!
//! A case whose body is over one of the gateway's caps (messages, stop sequences, texts of
//! an embedding batch) is refused with a 400 as soon as the parse passes the cap; its
//! figure shows what the refusal costs. Bodies the simulator refuses (an input too long for
//! the model) have gone through the whole gateway by then: parsed, translated, signed,
//! sent.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::quota::start_gateway;

/// The flags of this scenario.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Memory scenario (--scenario memory)")]
pub struct MemoryArgs {
    /// The size of each case's body, in MiB (the gateway's default body limit is 10 MiB).
    #[arg(long, default_value_t = 8.0)]
    pub memory_mb: f64,
    /// Copies of the body sent at once.
    #[arg(long, default_value_t = 1)]
    pub memory_concurrency: usize,
    /// The cases to run (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub memory_cases: Vec<MemoryCase>,
    /// Exit non-zero when a case's peak per MiB of body is over this.
    #[arg(long, value_name = "MIB_PER_MIB")]
    pub memory_max_per_mb: Option<f64>,
    /// The `bedrock-gateway` binary; default: next to this one.
    #[arg(long, value_name = "PATH")]
    pub memory_gateway_bin: Option<PathBuf>,
}

/// A route and a shape of body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MemoryCase {
    /// `/v1/generate`, one long prompt.
    Generate,
    /// `/v1/generate`, 2,000 messages.
    GenerateMessages,
    /// `/v1/generate`, one stop sequence per 6 bytes: over the cap.
    GenerateTinyStops,
    /// `/v1/chat/completions`, one long message.
    Chat,
    /// `/v1/chat/completions`, 2,000 messages of text content parts.
    ChatMessages,
    /// `/v1/chat/completions`, one message per 40 bytes: over the cap.
    ChatTinyMessages,
    /// `/v1/completions`, one long prompt.
    Completions,
    /// `/v1/embeddings`, 2,048 texts.
    Embeddings,
    /// `/v1/embeddings`, one text per 6 bytes: over the cap.
    EmbeddingsTinyTexts,
    /// `/v1/embeddings`, 2,048 one-word texts whatever `--memory-mb`: a small body whose
    /// answer is 2,048 vectors (see the growth, not the figure per MiB).
    EmbeddingsVectors,
    /// `/v1/embed`, 2,048 texts.
    Embed,
    /// `/v1/images/edits`, one base64 image.
    ImageEdits,
    /// `/model/{id}/invoke`, one long message.
    BedrockInvoke,
    /// `/model/{id}/invoke`, one message per 40 bytes (Bedrock's caps, not the gateway's).
    BedrockInvokeTinyMessages,
    /// `/model/{id}/invoke-with-response-stream`, one long message.
    BedrockStream,
}

/// One case's figures.
struct Measured {
    case: MemoryCase,
    body_mib: f64,
    statuses: Vec<u16>,
    /// The start of the first refusal's body, if any.
    refusal: Option<String>,
    before_kib: u64,
    peak_kib: u64,
}

impl Measured {
    /// The peak's growth per MiB of body sent.
    fn per_mib(&self, concurrency: usize) -> f64 {
        let grown = self.peak_kib.saturating_sub(self.before_kib) as f64 / 1024.0;
        grown / (self.body_mib * concurrency as f64)
    }
}

const TEXT_MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";
const EMBED_MODEL: &str = "cohere.embed-english-v3";
const IMAGE_MODEL: &str = "amazon.titan-image-generator-v2:0";
const MIB: f64 = 1024.0 * 1024.0;
/// Items of the "many items" cases that stay within the gateway's caps.
const N_MESSAGES: usize = 2_000;
const N_TEXTS: usize = 2_048;

pub async fn run(args: &MemoryArgs) -> anyhow::Result<()> {
    let bin = crate::gateway_bin(args.memory_gateway_bin.as_ref())?;
    crate::require_built(&bin, "cargo build -p server", "--memory-gateway-bin PATH")?;
    if std::fs::read_to_string("/proc/self/status").is_err() {
        bail!("the memory scenario reads /proc/<pid>/status: Linux only");
    }
    let sim_addr = crate::serve_simulator().await?;
    let dir = std::env::temp_dir().join(format!("gateway-bench-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config_path = dir.join("gateway.toml");
    std::fs::write(
        &config_path,
        format!(
            "log_level = \"warn,server=info\"\nshutdown_delay_ms = 0\n\
             [upstream]\nkind = \"simulator\"\nendpoint_url = \"http://{sim_addr}\"\n\
             max_attempts = 1\n\
             [models.text]\nmodel_id = \"{TEXT_MODEL}\"\n\
             [models.embed]\nmodel_id = \"{EMBED_MODEL}\"\n\
             [models.image]\nmodel_id = \"{IMAGE_MODEL}\"\n"
        ),
    )?;
    let cases: Vec<MemoryCase> = if args.memory_cases.is_empty() {
        <MemoryCase as clap::ValueEnum>::value_variants().to_vec()
    } else {
        args.memory_cases.clone()
    };
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a few MiB")]
    let size = (args.memory_mb * MIB) as usize;
    print_header(args);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(300)).build()?;
    let mut over = Vec::new();
    for case in cases {
        let measured = measure_case(&client, &bin, &config_path, case, size, args).await?;
        print_row(&measured, args.memory_concurrency);
        if args.memory_max_per_mb.is_some_and(|max| measured.per_mib(args.memory_concurrency) > max)
        {
            over.push(case);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    if let (Some(max), false) = (args.memory_max_per_mb, over.is_empty()) {
        bail!("over {max} MiB per MiB of body: {over:?}");
    }
    Ok(())
}

async fn measure_case(
    client: &reqwest::Client,
    bin: &std::path::Path,
    config: &std::path::Path,
    case: MemoryCase,
    size: usize,
    args: &MemoryArgs,
) -> anyhow::Result<Measured> {
    let (process, addr) = start_gateway(bin, config, None, false).await?;
    let pid = process.pid();
    let (path, small) = body(case, 16 * 1024);
    let url = format!("http://{addr}{path}");
    // Warm-up: connections to the simulator, the allocator's arenas, lazy statics.
    for _ in 0..3 {
        client
            .post(&url)
            .header("content-type", "application/json")
            .body(small.clone())
            .send()
            .await?
            .bytes()
            .await?;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before_kib = proc_status_kib(pid, "VmRSS")?;
    let (_, big) = body(case, size);
    let big = bytes::Bytes::from(big);
    let body_mib = big.len() as f64 / MIB;
    let sends = (0..args.memory_concurrency).map(|_| {
        let request =
            client.post(&url).header("content-type", "application/json").body(big.clone());
        async move {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let body = response.bytes().await?;
            let refusal = (status >= 400)
                .then(|| String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned());
            Ok::<_, anyhow::Error>((status, refusal))
        }
    });
    let answers = futures_util::future::try_join_all(sends).await?;
    let refusal = answers.iter().find_map(|(_, refusal)| refusal.clone());
    let statuses = answers.into_iter().map(|(status, _)| status).collect();
    let peak_kib = proc_status_kib(pid, "VmHWM")?;
    process.terminate()?;
    Ok(Measured { case, body_mib, statuses, refusal, before_kib, peak_kib })
}

/// A `kB` field of `/proc/<pid>/status`.
pub(crate) fn proc_status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// The case's path and a body of about `size` bytes.
fn body(case: MemoryCase, size: usize) -> (String, String) {
    let text = |bytes: usize| filler(bytes.max(1));
    let alternating = |n: usize, content: &dyn Fn(usize) -> Value| -> Vec<Value> {
        (0..n)
            .map(|idx| {
                let role = if idx % 2 == 0 { "user" } else { "assistant" };
                json!({"role": role, "content": content(idx)})
            })
            .collect()
    };
    let per_message = size / N_MESSAGES;
    let (path, body) = match case {
        MemoryCase::Generate => {
            ("/v1/generate", json!({"model": "text", "max_tokens": 8, "prompt": text(size)}))
        }
        MemoryCase::GenerateMessages => (
            "/v1/generate",
            json!({"model": "text", "max_tokens": 8,
                   "messages": alternating(N_MESSAGES, &|_| Value::from(text(per_message)))}),
        ),
        MemoryCase::GenerateTinyStops => (
            "/v1/generate",
            json!({"model": "text", "max_tokens": 8, "prompt": "hello",
                   "stop": vec!["ab"; size / 6]}),
        ),
        MemoryCase::Chat => (
            "/v1/chat/completions",
            json!({"model": "text", "max_tokens": 8,
                   "messages": [{"role": "user", "content": text(size)}]}),
        ),
        MemoryCase::ChatMessages => (
            "/v1/chat/completions",
            json!({"model": "text", "max_tokens": 8,
            "messages": alternating(N_MESSAGES, &|_| {
                json!([{"type": "text", "text": text(per_message)}])
            })}),
        ),
        MemoryCase::ChatTinyMessages => (
            "/v1/chat/completions",
            json!({"model": "text", "max_tokens": 8,
                   "messages": alternating(size / 40, &|_| Value::from("hi"))}),
        ),
        MemoryCase::Completions => {
            ("/v1/completions", json!({"model": "text", "max_tokens": 8, "prompt": text(size)}))
        }
        MemoryCase::Embeddings => (
            "/v1/embeddings",
            json!({"model": "embed", "input": vec![text(size / N_TEXTS); N_TEXTS]}),
        ),
        MemoryCase::EmbeddingsTinyTexts => {
            ("/v1/embeddings", json!({"model": "embed", "input": vec!["w"; size / 6]}))
        }
        MemoryCase::EmbeddingsVectors => {
            ("/v1/embeddings", json!({"model": "embed", "input": vec!["word"; N_TEXTS]}))
        }
        MemoryCase::Embed => {
            ("/v1/embed", json!({"model": "embed", "input": vec![text(size / N_TEXTS); N_TEXTS]}))
        }
        MemoryCase::ImageEdits => (
            "/v1/images/edits",
            json!({"model": "image", "task": "background_removal",
                   "images": [base64_noise(size * 3 / 4)]}),
        ),
        MemoryCase::BedrockInvoke | MemoryCase::BedrockStream => (
            if case == MemoryCase::BedrockInvoke {
                "/model/text/invoke"
            } else {
                "/model/text/invoke-with-response-stream"
            },
            json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 8,
                   "messages": [{"role": "user", "content": text(size)}]}),
        ),
        MemoryCase::BedrockInvokeTinyMessages => (
            "/model/text/invoke",
            json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 8,
                   "messages": alternating(size / 40, &|_| Value::from("hi"))}),
        ),
    };
    (path.to_owned(), body.to_string())
}

/// `bytes` bytes of words.
fn filler(bytes: usize) -> String {
    const WORDS: &str = "the quick brown fox jumps over the lazy dog and keeps on running ";
    WORDS.repeat(bytes / WORDS.len() + 1)[..bytes].to_owned()
}

/// The base64 of `n` pseudo-random bytes (xorshift: the same every run).
fn base64_noise(n: usize) -> String {
    use base64::Engine;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let bytes: Vec<u8> = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn print_header(args: &MemoryArgs) {
    println!(
        "gateway-bench memory: one fresh gateway process per case, {} MiB bodies, {} at once; \
         peak RSS growth (VmHWM - VmRSS before) per MiB of body sent\n",
        args.memory_mb, args.memory_concurrency
    );
    println!(
        "{:<30} {:>8} {:>10} {:>10} {:>10} {:>12}  status",
        "case", "body MiB", "RSS MiB", "peak MiB", "grew MiB", "MiB per MiB"
    );
}

#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn print_row(measured: &Measured, concurrency: usize) {
    let name = <MemoryCase as clap::ValueEnum>::to_possible_value(&measured.case)
        .map(|value| value.get_name().to_owned())
        .unwrap_or_default();
    let mut statuses = measured.statuses.clone();
    statuses.sort_unstable();
    statuses.dedup();
    let statuses: Vec<String> = statuses.iter().map(u16::to_string).collect();
    println!(
        "{:<30} {:>8.2} {:>10.1} {:>10.1} {:>10.1} {:>12.2}  {}",
        name,
        measured.body_mib,
        measured.before_kib as f64 / 1024.0,
        measured.peak_kib as f64 / 1024.0,
        measured.peak_kib.saturating_sub(measured.before_kib) as f64 / 1024.0,
        measured.per_mib(concurrency),
        statuses.join(","),
    );
    if let Some(refusal) = &measured.refusal {
        println!("{:<30} {refusal}", "");
    }
}
