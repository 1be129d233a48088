//! The golden suite: every case under `tests/fixtures/<family_id>/` runs through the one
//! [`check`] helper and must match its expected file.
//!
//! A case is an input file and its expected file, both named `<case>.<kind>`; one case
//! name may have an input of each kind:
//!
//! | input | expected |
//! |---|---|
//! | `.request.json`: a `UnifiedRequest` (an `ImageEditRequest` when it has a `task`) | `.body.json` (InvokeModel body) or `.error.json` |
//! | `.response.json`: a Bedrock response body | `.answer.json`: `UnifiedResponse` or `{"error"}` |
//! | `.stream.jsonl`: one decoded chunk a line | `.stream-answer.json` |
//!
//! A `.response.json` or `.stream.jsonl` beside a `.request.json` of the same case name
//! is decoded for that request through the codec, as the server does (stop sequences
//! the gateway emulates cut the text; a cut stream is read no further).
//!
//! An error is `{"kind": "invalid_request", "message": "..."}`. A stream answer is
//! `{"events", "text", "stop_reason", "usage"}`, or `{"events", "text", "error"}` when a
//! chunk does not decode or the stream ends without a stop reason. `events` are what the
//! family decoded; `text` is what is forwarded, through the family's stream text filter.
//!
//! Run with `UPDATE_GOLDEN=1` to write the expected files instead of comparing them
//! (a stale `.body.json` or `.error.json` is removed), then review the diff.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use translator::{
    EmbedRequest, FamilyRef, ImageEditRequest, ImageRequest, StreamAccumulator, TextFamily,
    TextStreamDecoder, TranslateError, UnifiedRequest, family_by_id,
};

const REQUEST: &str = ".request.json";
const RESPONSE: &str = ".response.json";
const STREAM: &str = ".stream.jsonl";
const BODY: &str = ".body.json";
const ANSWER: &str = ".answer.json";
const ERROR: &str = ".error.json";
const STREAM_ANSWER: &str = ".stream-answer.json";

/// The file of a family folder that cites the source of every recorded shape.
const FIXTURE_README: &str = "README.md";

const INPUT_SUFFIXES: [&str; 3] = [REQUEST, RESPONSE, STREAM];
const EXPECTED_SUFFIXES: [&str; 4] = [BODY, ANSWER, ERROR, STREAM_ANSWER];

/// One fixture case: a folder, a case name and the kind of its input.
struct Case {
    dir: PathBuf,
    name: String,
    input_suffix: &'static str,
}

#[test]
fn golden_fixtures() {
    let update = update_golden();
    let fixtures_dir = fixtures_dir();
    let mut n_cases = 0;
    let mut failures = Vec::new();
    for family_dir in sorted_dir_entries(&fixtures_dir).unwrap() {
        if !family_dir.is_dir() {
            failures.push(format!("{}: not a family folder", family_dir.display()));
            continue;
        }
        let Some(family) = family_by_id(&file_name(&family_dir)) else {
            failures.push(format!("{}: the folder is not a family id", family_dir.display()));
            continue;
        };
        for case in collect_cases(&family_dir, &mut failures) {
            n_cases += 1;
            if let Err(failure) = check(family, &case, update) {
                failures.push(failure);
            }
        }
    }
    assert!(n_cases > 0, "no fixtures under {}", fixtures_dir.display());
    assert!(
        failures.is_empty(),
        "{} golden failure(s) (UPDATE_GOLDEN=1 rewrites the expected files):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Runs one case and compares the result with its expected file, or writes that file
/// when `update` is set.
fn check(family: FamilyRef, case: &Case, update: bool) -> Result<(), String> {
    let input_path = case.path(case.input_suffix);
    let input = fs::read(&input_path).map_err(|e| format!("{}: {e}", input_path.display()))?;
    let (expected_suffix, actual) = match (family, case.input_suffix) {
        (FamilyRef::Text(family), REQUEST) => run_encode(family, &input),
        (FamilyRef::Text(family), RESPONSE) => {
            case_request(case).map(|req| run_decode(family, req.as_ref(), &input))
        }
        (FamilyRef::Text(family), _) => {
            case_request(case).and_then(|req| run_stream(family, req.as_ref(), &input))
        }
        (FamilyRef::Embedding(family), REQUEST) => parse_input::<EmbedRequest>(&input).map(|req| {
            match translator::encode_embed_requests(family, &req) {
                Ok(bodies) => (BODY, json!(bodies)),
                Err(error) => (ERROR, error_json(&error)),
            }
        }),
        (FamilyRef::Embedding(family), RESPONSE) => Ok(match family.decode_response(&input) {
            Ok(answer) => (ANSWER, json!(answer)),
            Err(error) => (ANSWER, json!({"error": error_json(&error)})),
        }),
        // An image request with a `task` is an edit (`/v1/images/edits`).
        (FamilyRef::Image(family), REQUEST) if is_image_edit(&input) => parse_input::<
            ImageEditRequest,
        >(&input)
        .map(|req| match translator::encode_image_edit_request(family, &req) {
            Ok(body) => (BODY, body),
            Err(error) => (ERROR, error_json(&error)),
        }),
        (FamilyRef::Image(family), REQUEST) => parse_input::<ImageRequest>(&input).map(|req| {
            match translator::encode_image_request(family, &req) {
                Ok(body) => (BODY, body),
                Err(error) => (ERROR, error_json(&error)),
            }
        }),
        (FamilyRef::Image(family), RESPONSE) => Ok(match family.decode_response(&input) {
            Ok(answer) => (ANSWER, json!(answer)),
            Err(error) => (ANSWER, json!({"error": error_json(&error)})),
        }),
        (_, _) => Err(format!("{} families do not stream", family.kind().as_str())),
    }
    .map_err(|e| format!("{}: {e}", input_path.display()))?;
    let expected_path = case.path(expected_suffix);

    let other_suffixes =
        expected_suffixes(case.input_suffix).iter().filter(|&&s| s != expected_suffix);
    for &stale_suffix in other_suffixes {
        let stale_path = case.path(stale_suffix);
        if !stale_path.exists() {
            continue;
        }
        if !update {
            return Err(format!(
                "{}: stale, the case now produces {}",
                stale_path.display(),
                expected_path.display()
            ));
        }
        fs::remove_file(&stale_path).map_err(|e| format!("{}: {e}", stale_path.display()))?;
    }

    if update {
        let text = format!("{}\n", to_pretty(&actual));
        return fs::write(&expected_path, text)
            .map_err(|e| format!("{}: {e}", expected_path.display()));
    }
    let expected_text = fs::read_to_string(&expected_path)
        .map_err(|e| format!("{}: cannot read the expected file ({e})", expected_path.display()))?;
    let expected: Value = serde_json::from_str(&expected_text)
        .map_err(|e| format!("{}: not JSON: {e}", expected_path.display()))?;
    if expected != actual {
        return Err(format!(
            "{}: mismatch\n--- expected\n{}\n--- actual\n{}",
            expected_path.display(),
            to_pretty(&expected),
            to_pretty(&actual)
        ));
    }
    Ok(())
}

/// Whether an image request fixture is an edit: a JSON object with a `task`.
fn is_image_edit(input: &[u8]) -> bool {
    serde_json::from_slice::<Value>(input).is_ok_and(|request| request.get("task").is_some())
}

/// A request fixture; `Err` only when the fixture itself is broken.
fn parse_input<T: serde::de::DeserializeOwned>(input: &[u8]) -> Result<T, String> {
    serde_json::from_slice(input).map_err(|e| format!("not a {}: {e}", std::any::type_name::<T>()))
}

/// Through the codec, as the server does: parameter check, validation, `extra`.
fn run_encode(family: &dyn TextFamily, input: &[u8]) -> Result<(&'static str, Value), String> {
    let req: UnifiedRequest = parse_input(input)?;
    Ok(match translator::encode_text_request(family, &req) {
        Ok(body) => (BODY, body),
        Err(error) => (ERROR, error_json(&error)),
    })
}

/// The request of a case that has one, for decoding its response or stream.
fn case_request(case: &Case) -> Result<Option<UnifiedRequest>, String> {
    let path = case.path(REQUEST);
    if !path.exists() {
        return Ok(None);
    }
    let input = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_input(&input).map(Some)
}

fn run_decode(
    family: &dyn TextFamily,
    req: Option<&UnifiedRequest>,
    input: &[u8],
) -> (&'static str, Value) {
    let answer = match req {
        Some(req) => translator::decode_text_response(family, req, input),
        None => family.decode_response(input),
    };
    match answer {
        Ok(answer) => (ANSWER, json!(answer)),
        Err(error) => (ANSWER, json!({"error": error_json(&error)})),
    }
}

/// Feeds the chunks to the decoder and an accumulator, as the server does.
/// With a request, the codec's [`TextStreamDecoder`] gives the text, the stop reason and
/// the usage. `Err` only when the fixture itself is broken (not UTF-8).
fn run_stream(
    family: &'static dyn TextFamily,
    req: Option<&UnifiedRequest>,
    input: &[u8],
) -> Result<(&'static str, Value), String> {
    let input = std::str::from_utf8(input).map_err(|e| format!("not UTF-8: {e}"))?;
    if let Some(req) = req {
        return Ok(run_codec_stream(family, req, input));
    }
    let mut events = Vec::new();
    let mut text = String::new();
    let mut accumulator = StreamAccumulator::default();
    // The forwarded text goes through the family's text filter, as in the server's decoder.
    let mut filter = family.stream_text_filter();
    for line in input.lines().filter(|line| !line.trim().is_empty()) {
        match family.decode_stream_event(line.as_bytes()) {
            Ok(event) => {
                accumulator.push(&event);
                match &mut filter {
                    Some(filter) => text.push_str(&filter.push(&event.text)),
                    None => text.push_str(&event.text),
                }
                events.push(event);
            }
            Err(error) => {
                let answer = json!({"events": events, "text": text, "error": error_json(&error)});
                return Ok((STREAM_ANSWER, answer));
            }
        }
    }
    if let Some(filter) = &mut filter {
        text.push_str(&filter.finish());
    }
    let answer = match accumulator.finish() {
        Ok((stop_reason, usage)) => {
            json!({"events": events, "text": text, "stop_reason": stop_reason, "usage": usage})
        }
        Err(error) => json!({"events": events, "text": text, "error": error_json(&error)}),
    };
    Ok((STREAM_ANSWER, answer))
}

/// The lines of a stream fixture through a [`TextStreamDecoder`] for `req`, with the
/// family's own event of each chunk read.
fn run_codec_stream(
    family: &'static dyn TextFamily,
    req: &UnifiedRequest,
    input: &str,
) -> (&'static str, Value) {
    let mut events = Vec::new();
    let mut text = String::new();
    let mut decoder = TextStreamDecoder::new(family, req);
    for line in input.lines().filter(|line| !line.trim().is_empty()) {
        let decoded = family.decode_stream_event(line.as_bytes()).and_then(|event| {
            events.push(event);
            decoder.push(line.as_bytes())
        });
        match decoded {
            Ok(decoded) => {
                text.push_str(&decoded.text);
                if decoded.finished {
                    break;
                }
            }
            Err(error) => {
                let answer = json!({"events": events, "text": text, "error": error_json(&error)});
                return (STREAM_ANSWER, answer);
            }
        }
    }
    let answer = match decoder.finish() {
        Ok(finished) => {
            text.push_str(&finished.text);
            let (stop_reason, usage) = (finished.stop_reason, finished.usage);
            json!({"events": events, "text": text, "stop_reason": stop_reason, "usage": usage})
        }
        Err(error) => json!({"events": events, "text": text, "error": error_json(&error)}),
    };
    (STREAM_ANSWER, answer)
}

fn error_json(error: &TranslateError) -> Value {
    let kind = match error {
        TranslateError::InvalidRequest(_) => "invalid_request",
        TranslateError::Unsupported { .. } => "unsupported",
        TranslateError::MalformedResponse { .. } => "malformed_response",
        TranslateError::ContentFiltered { .. } => "content_filtered",
    };
    json!({"kind": kind, "message": error.to_string()})
}

/// The cases of a family folder. Every file must be an input or the expected file
/// of an input that exists.
fn collect_cases(family_dir: &Path, failures: &mut Vec<String>) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut expected_files = Vec::new();
    let paths = match sorted_dir_entries(family_dir) {
        Ok(paths) => paths,
        Err(error) => {
            failures.push(format!("{}: {error}", family_dir.display()));
            return Vec::new();
        }
    };
    for path in paths {
        let file_name = file_name(&path);
        if file_name == FIXTURE_README {
            continue;
        }
        if let Some((name, input_suffix)) = split_suffix(&file_name, &INPUT_SUFFIXES) {
            cases.push(Case { dir: family_dir.to_owned(), name, input_suffix });
        } else if let Some((name, expected_suffix)) = split_suffix(&file_name, &EXPECTED_SUFFIXES) {
            expected_files.push((path, name, expected_suffix));
        } else {
            failures.push(format!("{}: not a fixture file name", path.display()));
        }
    }
    let inputs: BTreeSet<(&str, &str)> =
        cases.iter().map(|case| (case.name.as_str(), case.input_suffix)).collect();
    for (path, name, expected_suffix) in expected_files {
        let has_input = INPUT_SUFFIXES.iter().any(|&input_suffix| {
            expected_suffixes(input_suffix).contains(&expected_suffix)
                && inputs.contains(&(name.as_str(), input_suffix))
        });
        if !has_input {
            failures.push(format!("{}: an expected file without its input", path.display()));
        }
    }
    cases
}

/// The names an input's expected file may have.
fn expected_suffixes(input_suffix: &str) -> &'static [&'static str] {
    match input_suffix {
        REQUEST => &[BODY, ERROR],
        RESPONSE => &[ANSWER],
        _ => &[STREAM_ANSWER],
    }
}

impl Case {
    fn path(&self, suffix: &str) -> PathBuf {
        self.dir.join(format!("{}{suffix}", self.name))
    }
}

/// `("minimal", ".request.json")` for `minimal.request.json`.
fn split_suffix(file_name: &str, suffixes: &[&'static str]) -> Option<(String, &'static str)> {
    suffixes.iter().find_map(|&suffix| {
        let case = file_name.strip_suffix(suffix)?;
        (!case.is_empty()).then(|| (case.to_owned(), suffix))
    })
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures")
}

fn sorted_dir_entries(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir)? {
        paths.push(entry?.path());
    }
    paths.sort();
    Ok(paths)
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap_or_default().to_string_lossy().into_owned()
}

/// What `serde_json::to_string_pretty` prints, without its (unreachable) error.
fn to_pretty(value: &Value) -> String {
    format!("{value:#}")
}

#[expect(clippy::disallowed_methods, reason = "a test-only switch, not service configuration")]
fn update_golden() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|value| value == "1")
}
