//! Hostile input through every family of the registry, with proptest: arbitrary unified
//! requests (text, embedding, image, image edit) and mutations of the family's own request
//! fixtures are encoded; arbitrary bytes and mutations of the family's recorded answers
//! (`*.response.json`) and stream chunks (`*.stream.jsonl`) are decoded. Nothing panics
//! (the runner fails a case that does, and shrinks it); every result is a body or a
//! [`TranslateError`] of the side it came from: a request is refused as invalid or
//! unsupported, an answer as malformed or filtered, never the other way round.
//!
//! Each property runs [`CASES`] or [`MORE_CASES`] cases per family, with proptest's random seed
//! (`PROPTEST_RNG_SEED` replays one; a failure prints the shrunk input).

#![expect(clippy::panic, reason = "the runner's helpers fail the test that calls them")]

use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value};
use translator::{
    EmbedRequest, EmbeddingFamily, FAMILIES, FamilyRef, ImageEditRequest, ImageFamily,
    ImageRequest, ImageTask, InputType, Message, OutpaintingMode, Role, TextFamily,
    TextStreamDecoder, TranslateError, UnifiedRequest, base_model_id, family_for,
};

/// Cases per family and property of the text families (twenty of them): together with
/// [`MORE_CASES`] for the few embedding and image families, the file runs in seconds.
const CASES: u32 = 64;

/// Cases per family and property of the embedding and image families, and of the model
/// ids.
const MORE_CASES: u32 = 256;

#[test]
fn text_requests_encode_to_a_body_or_a_request_error() {
    for family in text_families() {
        let fixtures = Fixtures::of(family.id());
        let strategy = or_mutated(unified_request(&fixtures), &fixtures);
        run(family.id(), CASES, strategy, |request: UnifiedRequest| {
            check_encoded(family.id(), translator::encode_text_request(family, &request))
        });
    }
}

#[test]
fn text_answers_decode_to_an_answer_or_an_answer_error() {
    for family in text_families() {
        let fixtures = Fixtures::of(family.id());
        let strategy = (unified_request(&fixtures), answer_bytes(fixtures.responses.clone()));
        run(family.id(), CASES, strategy, |(request, body)| {
            let decoded = translator::decode_text_response(family, &request, &body);
            check_decoded(family.id(), decoded.map(|_| ()))
        });
    }
}

#[test]
fn text_streams_decode_chunk_by_chunk_to_events_or_an_answer_error() {
    for family in text_families() {
        let fixtures = Fixtures::of(family.id());
        let chunk = answer_bytes(fixtures.stream_chunks.clone());
        let strategy = (unified_request(&fixtures), proptest::collection::vec(chunk, 0..12));
        let streams = streams(family);
        run(family.id(), CASES, strategy, |(request, chunks)| {
            let mut decoder = TextStreamDecoder::new(family, &request);
            for chunk in &chunks {
                match decoder.push(chunk) {
                    Ok(decoded) if decoded.finished => break,
                    Ok(_) => {}
                    // A family without streaming (whose stream requests are refused) has no
                    // chunk to decode.
                    Err(TranslateError::Unsupported { feature, .. })
                        if !streams && feature == "streaming" =>
                    {
                        return Ok(());
                    }
                    // The server ends the stream at the first chunk that does not decode.
                    Err(error) => return check_decoded(family.id(), Err(error)),
                }
            }
            check_decoded(family.id(), decoder.finish().map(|_| ()))
        });
    }
}

#[test]
fn embedding_requests_encode_to_bodies_or_a_request_error() {
    for family in embedding_families() {
        let fixtures = Fixtures::of(family.id());
        let strategy = or_mutated(embed_request(&fixtures), &fixtures);
        run(family.id(), MORE_CASES, strategy, |request: EmbedRequest| {
            match translator::encode_embed_requests(family, &request) {
                Ok(bodies) => {
                    prop_assert!(!bodies.is_empty(), "{}: no body for {request:?}", family.id());
                    for body in bodies {
                        check_encoded(family.id(), Ok(body))?;
                    }
                    Ok(())
                }
                Err(error) => check_encoded(family.id(), Err(error)),
            }
        });
    }
}

#[test]
fn embedding_answers_decode_to_vectors_or_an_answer_error() {
    for family in embedding_families() {
        let fixtures = Fixtures::of(family.id());
        let strategy = (0_usize..5, answer_bytes(fixtures.responses.clone()));
        run(family.id(), MORE_CASES, strategy, |(n_texts, body)| {
            match translator::decode_embed_response(family, n_texts, &body) {
                Ok(embeddings) => {
                    prop_assert_eq!(embeddings.vectors.len(), n_texts, "{}", family.id());
                    Ok(())
                }
                Err(error) => check_decoded(family.id(), Err(error)),
            }
        });
    }
}

#[test]
fn image_requests_and_edits_encode_to_a_body_or_a_request_error() {
    for family in image_families() {
        let fixtures = Fixtures::of(family.id());
        let generations = or_mutated(image_request(&fixtures), &fixtures);
        run(family.id(), MORE_CASES, generations, |request: ImageRequest| {
            check_encoded(family.id(), translator::encode_image_request(family, &request))
        });
        let edits = or_mutated(image_edit_request(&fixtures), &fixtures);
        run(family.id(), MORE_CASES, edits, |request: ImageEditRequest| {
            check_encoded(family.id(), translator::encode_image_edit_request(family, &request))
        });
    }
}

#[test]
fn image_answers_decode_to_images_or_an_answer_error() {
    for family in image_families() {
        let fixtures = Fixtures::of(family.id());
        run(family.id(), MORE_CASES, answer_bytes(fixtures.responses.clone()), |body| {
            match translator::decode_image_response(family, &body) {
                Ok(images) => {
                    prop_assert!(!images.images.is_empty(), "{}", family.id());
                    Ok(())
                }
                Err(error) => check_decoded(family.id(), Err(error)),
            }
        });
    }
}

#[test]
fn any_model_id_and_any_body_are_read_without_panicking() {
    let known: Vec<String> = FAMILIES
        .iter()
        .flat_map(|family| Fixtures::of(family.id()).strings)
        .filter(|text| text.contains('.'))
        .collect();
    let model_id = prop_oneof![
        any::<String>(),
        "(arn:aws:bedrock:[a-z0-9-]{0,12}:[0-9]{0,12}:[a-z-]{0,24}/)?([a-z]{2}\\.)?[a-z0-9.:-]{0,40}",
        proptest::sample::select(known)
            .prop_flat_map(|id| (Just(id), 0_usize..8, any::<char>()))
            .prop_map(|(id, cut, c)| {
                let mut id: String =
                    id.chars().take(id.chars().count().saturating_sub(cut)).collect();
                id.push(c);
                id
            }),
    ];
    run("model ids", MORE_CASES, (model_id, json_value(&[])), |(model_id, body)| {
        let _ = base_model_id(&model_id);
        let _ = family_for(&model_id);
        let _ = translator::max_output_tokens_in_body(&body);
        Ok(())
    });
}

// ---------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------

/// An encoded request is a JSON object, or a refusal of the request.
fn check_encoded(family: &str, result: Result<Value, TranslateError>) -> Result<(), TestCaseError> {
    match result {
        Ok(body) => {
            prop_assert!(body.is_object(), "{family}: the body is not an object: {body}");
            Ok(())
        }
        Err(error @ (TranslateError::InvalidRequest(_) | TranslateError::Unsupported { .. })) => {
            prop_assert!(!error.to_string().is_empty(), "{family}: an empty message");
            Ok(())
        }
        Err(error) => Err(TestCaseError::fail(format!(
            "{family}: a request refused as an answer error: {error:?}"
        ))),
    }
}

/// A decoded answer, or a refusal of Bedrock's answer.
fn check_decoded(family: &str, result: Result<(), TranslateError>) -> Result<(), TestCaseError> {
    match result {
        Ok(()) => Ok(()),
        Err(
            error @ (TranslateError::MalformedResponse { .. }
            | TranslateError::ContentFiltered { .. }),
        ) => {
            prop_assert!(!error.to_string().is_empty(), "{family}: an empty message");
            Ok(())
        }
        Err(error) => Err(TestCaseError::fail(format!(
            "{family}: an answer refused as a request error: {error:?}"
        ))),
    }
}

/// Runs `test` over `cases` inputs of `strategy`; a failure names `what`.
fn run<S: Strategy>(
    what: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let config = Config { failure_persistence: None, ..Config::with_cases(cases) };
    let mut runner = TestRunner::new(config);
    if let Err(failure) = runner.run(&strategy, test) {
        panic!("{what}: {failure}");
    }
}

/// Whether the family takes a stream request at all.
fn streams(family: &dyn TextFamily) -> bool {
    let request = UnifiedRequest {
        prompt: Some("Hello".to_owned()),
        stream: true,
        ..UnifiedRequest::default()
    };
    !matches!(
        translator::encode_text_request(family, &request),
        Err(TranslateError::Unsupported { feature, .. }) if feature == "streaming"
    )
}

fn text_families() -> impl Iterator<Item = &'static dyn TextFamily> {
    FAMILIES.iter().filter_map(|family| match family {
        FamilyRef::Text(family) => Some(*family),
        _ => None,
    })
}

fn embedding_families() -> impl Iterator<Item = &'static dyn EmbeddingFamily> {
    FAMILIES.iter().filter_map(|family| match family {
        FamilyRef::Embedding(family) => Some(*family),
        _ => None,
    })
}

fn image_families() -> impl Iterator<Item = &'static dyn ImageFamily> {
    FAMILIES.iter().filter_map(|family| match family {
        FamilyRef::Image(family) => Some(*family),
        _ => None,
    })
}

// ---------------------------------------------------------------------------------
// The family's own fixtures: the seeds of the mutations and the vocabulary of the inputs
// ---------------------------------------------------------------------------------

/// What a family's fixture folder holds: its requests, recorded answers and stream
/// chunks, and every object key and string in them (so that arbitrary values reach the
/// paths the family reads).
#[derive(Debug, Clone, Default)]
struct Fixtures {
    requests: Vec<Value>,
    responses: Vec<Value>,
    stream_chunks: Vec<Value>,
    keys: Vec<String>,
    strings: Vec<String>,
}

impl Fixtures {
    fn of(family_id: &str) -> Fixtures {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(family_id);
        let mut fixtures = Fixtures::default();
        let mut paths: Vec<PathBuf> = match fs::read_dir(&dir) {
            Ok(entries) => entries.filter_map(|entry| Some(entry.ok()?.path())).collect(),
            Err(error) => panic!("{}: {error}", dir.display()),
        };
        paths.sort();
        for path in paths {
            let name = file_name(&path);
            let text = fs::read_to_string(&path).unwrap_or_default();
            let values: Vec<Value> = if name.ends_with(".stream.jsonl") {
                text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
            } else {
                serde_json::from_str(&text).into_iter().collect()
            };
            for value in &values {
                collect_vocabulary(value, &mut fixtures.keys, &mut fixtures.strings);
            }
            if name.ends_with(".request.json") {
                fixtures.requests.extend(values);
            } else if name.ends_with(".response.json") {
                fixtures.responses.extend(values);
            } else if name.ends_with(".stream.jsonl") {
                fixtures.stream_chunks.extend(values);
            }
        }
        for list in [&mut fixtures.keys, &mut fixtures.strings] {
            list.sort();
            list.dedup();
        }
        // Some families have no recorded answers of a kind: an empty object stands in.
        for seeds in [&mut fixtures.requests, &mut fixtures.responses, &mut fixtures.stream_chunks]
        {
            if seeds.is_empty() {
                seeds.push(Value::Object(Map::new()));
            }
        }
        fixtures
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
}

fn collect_vocabulary(value: &Value, keys: &mut Vec<String>, strings: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                keys.push(key.clone());
                collect_vocabulary(value, keys, strings);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_vocabulary(item, keys, strings);
            }
        }
        // Long strings (base64 images) are kept whole: a valid image reaches the decoder.
        Value::String(text) => strings.push(text.clone()),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------

/// Text: arbitrary, or one of the fixtures' strings, or one cut short.
fn text(fixtures: &Fixtures) -> BoxedStrategy<String> {
    let mut options = vec![any::<String>().boxed(), "[ -~]{0,12}".boxed()];
    if !fixtures.strings.is_empty() {
        let known = proptest::sample::select(fixtures.strings.clone());
        options.push(known.clone().boxed());
        options.push(
            (known, any::<prop::sample::Index>())
                .prop_map(|(text, cut)| {
                    let n_chars = text.chars().count();
                    text.chars().take(cut.index(n_chars + 1)).collect()
                })
                .boxed(),
        );
    }
    proptest::strategy::Union::new(options).boxed()
}

/// Any float, the edges weighted up: NaN, infinities, zero, negative, huge.
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        -2.0_f64..2.0,
        proptest::sample::select(vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            1.0,
            f64::MAX,
            f64::MIN_POSITIVE
        ]),
    ]
}

/// Any u32, the edges weighted up.
fn count() -> impl Strategy<Value = u32> {
    prop_oneof![any::<u32>(), 0_u32..5, proptest::sample::select(vec![u32::MAX, 1 << 31, 4096])]
}

/// An arbitrary JSON value, its object keys drawn from `keys` as often as not.
fn json_value(keys: &[String]) -> BoxedStrategy<Value> {
    let key = key(keys);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        float().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
    .boxed()
}

fn key(keys: &[String]) -> BoxedStrategy<String> {
    if keys.is_empty() {
        return any::<String>().boxed();
    }
    prop_oneof![any::<String>(), proptest::sample::select(keys.to_vec())].boxed()
}

/// An `extra` map: keys of the family's bodies, so that collisions with mapped fields and
/// nested merges are tried.
fn extra(fixtures: &Fixtures) -> BoxedStrategy<Map<String, Value>> {
    proptest::collection::btree_map(key(&fixtures.keys), json_value(&fixtures.keys), 0..4)
        .prop_map(|map| map.into_iter().collect())
        .boxed()
}

fn unified_request(fixtures: &Fixtures) -> BoxedStrategy<UnifiedRequest> {
    let role = proptest::sample::select(vec![Role::System, Role::User, Role::Assistant]);
    let message = (role, text(fixtures)).prop_map(|(role, content)| Message::text(role, content));
    (
        (
            proptest::option::of(text(fixtures)),
            proptest::collection::vec(message, 0..6),
            proptest::option::of(count()),
            proptest::option::of(float()),
            proptest::option::of(float()),
            proptest::option::of(count()),
        ),
        (
            proptest::collection::vec(text(fixtures), 0..5),
            proptest::option::of(any::<u64>()),
            extra(fixtures),
            any::<bool>(),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (prompt, messages, max_tokens, temperature, top_p, top_k),
                (stop, seed, extra, stream, cache_prompt),
            )| UnifiedRequest {
                prompt,
                messages,
                max_tokens,
                temperature,
                top_p,
                top_k,
                stop,
                seed,
                extra,
                stream,
                cache_prompt,
                ..UnifiedRequest::default()
            },
        )
        .boxed()
}

fn embed_request(fixtures: &Fixtures) -> BoxedStrategy<EmbedRequest> {
    let input_type = proptest::sample::select(vec![
        InputType::SearchDocument,
        InputType::SearchQuery,
        InputType::Classification,
        InputType::Clustering,
    ]);
    (
        proptest::collection::vec(text(fixtures), 0..5),
        proptest::collection::vec(image(fixtures), 0..3),
        proptest::option::of(count()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(input_type),
        extra(fixtures),
    )
        .prop_map(|(input, images, dimensions, normalize, input_type, extra)| EmbedRequest {
            input,
            images,
            dimensions,
            normalize,
            input_type,
            extra,
        })
        .boxed()
}

/// An input image: a fixture's string (a real base64 image where the family has one),
/// base64 of arbitrary bytes behind an image format's magic, or anything.
fn image(fixtures: &Fixtures) -> BoxedStrategy<String> {
    let magic = proptest::sample::select(vec![
        b"\x89PNG\r\n\x1a\n".to_vec(),
        b"\xff\xd8\xff".to_vec(),
        b"GIF89a".to_vec(),
        b"RIFF\0\0\0\0WEBP".to_vec(),
    ]);
    let headed = (magic, proptest::collection::vec(any::<u8>(), 0..64), any::<bool>()).prop_map(
        |(mut bytes, rest, data_uri)| {
            bytes.extend(rest);
            let encoded = base64(&bytes);
            if data_uri { format!("data:image/png;base64,{encoded}") } else { encoded }
        },
    );
    prop_oneof![text(fixtures), headed].boxed()
}

fn image_request(fixtures: &Fixtures) -> BoxedStrategy<ImageRequest> {
    (
        text(fixtures),
        proptest::option::of(text(fixtures)),
        proptest::option::of(count()),
        proptest::option::of(count()),
        proptest::option::of(count()),
        proptest::option::of(any::<u64>()),
        proptest::option::of(float()),
        extra(fixtures),
    )
        .prop_map(|(prompt, negative_prompt, n, width, height, seed, cfg_scale, extra)| {
            ImageRequest { prompt, negative_prompt, n, width, height, seed, cfg_scale, extra }
        })
        .boxed()
}

fn image_edit_request(fixtures: &Fixtures) -> BoxedStrategy<ImageEditRequest> {
    let task = proptest::sample::select(vec![
        ImageTask::Variation,
        ImageTask::Inpainting,
        ImageTask::Outpainting,
        ImageTask::BackgroundRemoval,
    ]);
    let mode = proptest::sample::select(vec![OutpaintingMode::Default, OutpaintingMode::Precise]);
    let optional_text = || proptest::option::of(text(fixtures));
    (
        (
            task,
            proptest::collection::vec(image(fixtures), 0..7),
            optional_text(),
            optional_text(),
            optional_text(),
            proptest::option::of(image(fixtures)),
            proptest::option::of(mode),
        ),
        (
            proptest::option::of(float()),
            proptest::option::of(count()),
            proptest::option::of(count()),
            proptest::option::of(count()),
            proptest::option::of(any::<u64>()),
            proptest::option::of(float()),
            extra(fixtures),
        ),
    )
        .prop_map(
            |(
                (task, images, prompt, negative_prompt, mask_prompt, mask_image, outpainting_mode),
                (similarity_strength, n, width, height, seed, cfg_scale, extra),
            )| ImageEditRequest {
                task,
                images,
                prompt,
                negative_prompt,
                mask_prompt,
                mask_image,
                outpainting_mode,
                similarity_strength,
                n,
                width,
                height,
                seed,
                cfg_scale,
                extra,
            },
        )
        .boxed()
}

/// `structured`, or as often one of the family's request fixtures of type `T`, mutated; a
/// mutation that makes it no `T` (an unknown field, a wrong type) gives the fixture as it
/// was: serde's refusals are the server's to test.
fn or_mutated<T>(structured: BoxedStrategy<T>, fixtures: &Fixtures) -> BoxedStrategy<T>
where
    T: serde::de::DeserializeOwned + Clone + std::fmt::Debug + 'static,
{
    let typed: Vec<(Value, T)> = fixtures
        .requests
        .iter()
        .filter_map(|value| Some((value.clone(), serde_json::from_value(value.clone()).ok()?)))
        .collect();
    if typed.is_empty() {
        return structured;
    }
    let keys = fixtures.keys.clone();
    let mutated = proptest::sample::select(typed).prop_flat_map(move |(value, request)| {
        mutated(vec![value], &keys).prop_map(move |value| {
            serde_json::from_value(value).unwrap_or_else(|_| request.clone())
        })
    });
    prop_oneof![structured, mutated].boxed()
}

/// One of `seeds` with up to four mutations at random places: a value replaced by an
/// arbitrary one (of another type, an edge number), removed, or given a new key.
fn mutated(seeds: Vec<Value>, keys: &[String]) -> BoxedStrategy<Value> {
    let mutation = prop_oneof![
        4 => json_value(keys).prop_map(Mutation::Replace),
        2 => Just(Mutation::Remove),
        2 => (key(keys), json_value(keys))
            .prop_map(|(key, value)| Mutation::Insert(key, value)),
        2 => proptest::sample::select(vec![
            Value::from(-1),
            Value::from(0),
            Value::from(u64::MAX),
            Value::from(i64::MIN),
            Value::from(1e300),
            Value::from(0.5),
            Value::from(""),
            Value::Array(Vec::new()),
            Value::Object(Map::new()),
        ])
        .prop_map(Mutation::Replace),
    ];
    let seed = proptest::sample::select(seeds);
    (seed, proptest::collection::vec((any::<prop::sample::Index>(), mutation), 0..5))
        .prop_map(|(mut value, mutations)| {
            for (at, mutation) in mutations {
                let n_nodes = count_nodes(&value);
                mutate(&mut value, at.index(n_nodes), mutation);
            }
            value
        })
        .boxed()
}

/// Bytes of an answer: a mutated seed as JSON, that JSON cut or with bytes flipped, or
/// arbitrary bytes.
fn answer_bytes(seeds: Vec<Value>) -> BoxedStrategy<Vec<u8>> {
    let (mut keys, mut strings) = (Vec::new(), Vec::new());
    for seed in &seeds {
        collect_vocabulary(seed, &mut keys, &mut strings);
    }
    keys.sort();
    keys.dedup();
    let json = mutated(seeds, &keys).prop_map(|value| value.to_string().into_bytes());
    let damaged = (
        json.clone(),
        any::<prop::sample::Index>(),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    )
        .prop_map(|(mut bytes, cut, flips)| {
            for (at, byte) in flips {
                if !bytes.is_empty() {
                    let at = at.index(bytes.len());
                    bytes[at] = byte;
                }
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            bytes
        });
    prop_oneof![
        4 => json,
        2 => damaged,
        1 => proptest::collection::vec(any::<u8>(), 0..64),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(Value),
    Remove,
    Insert(String, Value),
}

fn count_nodes(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(map) => map.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Applies `mutation` at the node numbered `at` in pre-order (the root is 0). Removing
/// the root, or a node that is not in a container, replaces it by null.
fn mutate(value: &mut Value, at: usize, mutation: Mutation) {
    fn walk(value: &mut Value, at: &mut usize, mutation: &mut Option<Mutation>) -> bool {
        if *at == 0 {
            match mutation.take() {
                Some(Mutation::Replace(new)) => *value = new,
                Some(Mutation::Insert(key, new)) => match value {
                    Value::Object(map) => {
                        map.insert(key, new);
                    }
                    Value::Array(items) => items.push(new),
                    other => *other = new,
                },
                Some(Mutation::Remove) => return true,
                None => {}
            }
            return false;
        }
        *at -= 1;
        match value {
            Value::Array(items) => {
                for index in 0..items.len() {
                    let remove = walk(&mut items[index], at, mutation);
                    if remove {
                        items.remove(index);
                    }
                    if mutation.is_none() {
                        return false;
                    }
                }
            }
            Value::Object(map) => {
                let keys: Vec<String> = map.keys().cloned().collect();
                for key in keys {
                    let remove = map.get_mut(&key).is_some_and(|child| walk(child, at, mutation));
                    if remove {
                        map.remove(&key);
                    }
                    if mutation.is_none() {
                        return false;
                    }
                }
            }
            _ => {}
        }
        false
    }
    let mut at = at;
    let mut mutation = Some(mutation);
    if walk(value, &mut at, &mut mutation) {
        *value = Value::Null;
    }
}

/// Standard base64 with padding (the translator's tests have no base64 crate).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0_u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn the_test_base64_is_standard() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"\x89PNG"), "iVBORw==");
}
