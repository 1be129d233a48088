//! The family registry: ids are unique snake_case names, each family has a fixture
//! folder, and every real model id, in every form Bedrock accepts, reaches at most
//! one family, the right one.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use translator::{FAMILIES, base_model_id, family_by_id, family_for};

/// Real Bedrock base model ids (wire reference §4) and the family each belongs to
/// today. `None` marks a model whose family is not written yet: it must match nothing,
/// so that a too-broad `matches` shows up here. Adding a family updates its rows.
const MODEL_IDS: &[(&str, Option<&str>)] = &[
    ("amazon.titan-text-express-v1", Some("titan_text")),
    ("amazon.titan-text-lite-v1", Some("titan_text")),
    ("amazon.titan-text-premier-v1:0", Some("titan_text")),
    ("anthropic.claude-instant-v1", Some("anthropic_claude_text")),
    ("anthropic.claude-v2", Some("anthropic_claude_text")),
    ("anthropic.claude-v2:1", Some("anthropic_claude_text")),
    // Provisioned-throughput variants of the same models.
    ("anthropic.claude-v2:1:200k", Some("anthropic_claude_text")),
    ("anthropic.claude-instant-v1:2:100k", Some("anthropic_claude_text")),
    ("amazon.titan-text-express-v1:0:8k", Some("titan_text")),
    // Titan and Nova models that are not Titan Text.
    ("amazon.titan-embed-text-v1", Some("titan_embed_g1")),
    ("amazon.titan-embed-text-v1:2:8k", Some("titan_embed_g1")),
    // Listed by public code with the G1 body, but not in the AWS parameter pages.
    ("amazon.titan-embed-g1-text-02", None),
    ("amazon.titan-embed-text-v2:0", Some("titan_embed_v2")),
    ("amazon.titan-embed-image-v1", Some("titan_embed_image")),
    ("amazon.nova-2-multimodal-embeddings-v1:0", Some("nova_embed")),
    ("amazon.titan-image-generator-v1", Some("titan_image")),
    ("amazon.titan-image-generator-v2:0", Some("titan_image")),
    ("amazon.nova-canvas-v1:0", Some("titan_image")),
    ("amazon.nova-reel-v1:0", None),
    ("amazon.nova-reel-v1:1", None),
    ("amazon.nova-sonic-v1:0", None),
    ("amazon.nova-2-sonic-v1:0", None),
    ("amazon.nova-micro-v1:0", Some("amazon_nova")),
    ("amazon.nova-lite-v1:0", Some("amazon_nova")),
    ("amazon.nova-pro-v1:0", Some("amazon_nova")),
    ("amazon.nova-premier-v1:0", Some("amazon_nova")),
    ("amazon.nova-2-lite-v1:0", Some("amazon_nova")),
    ("amazon.nova-lite-v1:0:300k", Some("amazon_nova")),
    // The other families of §4.
    ("meta.llama2-13b-chat-v1", Some("meta_llama2")),
    ("meta.llama2-70b-chat-v1", Some("meta_llama2")),
    ("meta.llama3-8b-instruct-v1:0", Some("meta_llama3")),
    ("meta.llama3-70b-instruct-v1:0", Some("meta_llama3")),
    ("meta.llama3-1-8b-instruct-v1:0", Some("meta_llama3")),
    ("meta.llama3-1-405b-instruct-v1:0", Some("meta_llama3")),
    ("meta.llama3-2-1b-instruct-v1:0", Some("meta_llama3")),
    ("meta.llama3-2-90b-instruct-v1:0", Some("meta_llama3")),
    ("meta.llama3-3-70b-instruct-v1:0", Some("meta_llama3")),
    ("meta.llama4-scout-17b-instruct-v1:0", Some("meta_llama4")),
    ("meta.llama4-maverick-17b-instruct-v1:0", Some("meta_llama4")),
    ("mistral.mistral-7b-instruct-v0:2", Some("mistral_text")),
    ("mistral.mixtral-8x7b-instruct-v0:1", Some("mistral_text")),
    ("mistral.mistral-large-2402-v1:0", Some("mistral_text")),
    ("mistral.mistral-small-2402-v1:0", Some("mistral_text")),
    ("mistral.mistral-large-2407-v1:0", Some("mistral_chat")),
    ("mistral.pixtral-large-2502-v1:0", Some("mistral_chat")),
    ("cohere.command-text-v14", Some("cohere_command")),
    ("cohere.command-light-text-v14", Some("cohere_command")),
    ("cohere.command-text-v14:7:4k", Some("cohere_command")),
    ("cohere.command-r-v1:0", Some("cohere_command_r")),
    ("cohere.command-r-plus-v1:0", Some("cohere_command_r")),
    ("cohere.embed-english-v3", Some("cohere_embed")),
    ("cohere.embed-multilingual-v3", Some("cohere_embed")),
    // Embed v4 takes another `truncate` and an `output_dimension`: not Embed v3.
    ("cohere.embed-v4:0", Some("cohere_embed_v4")),
    ("ai21.j2-mid-v1", Some("ai21_jurassic2")),
    ("ai21.j2-ultra-v1", Some("ai21_jurassic2")),
    ("ai21.jamba-instruct-v1:0", Some("ai21_jamba")),
    ("ai21.jamba-1-5-mini-v1:0", Some("ai21_jamba")),
    ("ai21.jamba-1-5-large-v1:0", Some("ai21_jamba")),
    ("deepseek.r1-v1:0", Some("deepseek_r1")),
    // DeepSeek-V3.1 takes the OpenAI chat body.
    ("deepseek.v3-v1:0", Some("openai_chat")),
    ("openai.gpt-oss-120b-1:0", Some("openai_gpt_oss")),
    ("openai.gpt-oss-20b-1:0", Some("openai_gpt_oss")),
    ("stability.stable-diffusion-xl-v1", Some("stability_sdxl")),
    ("stability.sd3-large-v1:0", Some("stability_image")),
    ("stability.sd3-5-large-v1:0", Some("stability_image")),
    ("stability.stable-image-ultra-v1:0", Some("stability_image")),
    ("stability.stable-image-ultra-v1:1", Some("stability_image")),
    ("stability.stable-image-core-v1:0", Some("stability_image")),
    ("stability.stable-image-core-v1:1", Some("stability_image")),
    // A Stability image service with another body.
    ("stability.stable-image-remove-background-v1:0", None),
];

/// Claude 3 and later speak the Messages API: every form of these ids must reach
/// `anthropic_claude_messages`.
const CLAUDE_MESSAGES_MODEL_IDS: &[&str] = &[
    "anthropic.claude-3-haiku-20240307-v1:0",
    "anthropic.claude-3-sonnet-20240229-v1:0",
    "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "anthropic.claude-3-5-sonnet-20241022-v2:0",
    "anthropic.claude-3-5-haiku-20241022-v1:0",
    "anthropic.claude-3-7-sonnet-20250219-v1:0",
    "anthropic.claude-sonnet-4-20250514-v1:0",
    "anthropic.claude-opus-4-1-20250805-v1:0",
    "anthropic.claude-opus-4-20250514-v1:0",
    "anthropic.claude-sonnet-4-5-20250929-v1:0",
    "anthropic.claude-haiku-4-5-20251001-v1:0",
];

#[test]
fn family_ids_are_unique_and_snake_case() {
    let mut seen = BTreeSet::new();
    for family in FAMILIES {
        let id = family.id();
        assert!(is_snake_case(id), "family id {id:?} is not snake_case");
        assert!(seen.insert(id), "family id {id:?} is registered twice");
        assert_eq!(family_by_id(id).map(|f| f.id()), Some(id));
    }
    assert_eq!(family_by_id("no_such_family").map(|f| f.id()), None);
}

#[test]
fn fixture_folders_and_families_correspond() {
    let fixtures_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures");
    let folders: BTreeSet<String> = fs::read_dir(&fixtures_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let family_ids: BTreeSet<String> = FAMILIES.iter().map(|f| f.id().to_owned()).collect();
    assert_eq!(folders, family_ids, "tests/fixtures/ must hold one folder per family id");
}

#[test]
fn no_model_id_matches_two_families() {
    let all_ids =
        MODEL_IDS.iter().map(|&(id, _)| id).chain(CLAUDE_MESSAGES_MODEL_IDS.iter().copied());
    for model_id in all_ids.flat_map(model_id_forms) {
        let base = base_model_id(&model_id).unwrap();
        let matching: Vec<&str> =
            FAMILIES.iter().filter(|f| f.matches(base)).map(|f| f.id()).collect();
        assert!(matching.len() <= 1, "{model_id} matches {matching:?}");
    }
}

#[test]
fn family_for_answers_every_model_id_form() {
    for &(base, expected_family) in MODEL_IDS {
        for model_id in model_id_forms(base) {
            assert_eq!(family_for(&model_id).map(|f| f.id()), expected_family, "{model_id}");
        }
    }
}

#[test]
fn claude_3_and_later_reach_the_messages_family() {
    for model_id in CLAUDE_MESSAGES_MODEL_IDS.iter().copied().flat_map(model_id_forms) {
        assert_eq!(
            family_for(&model_id).map(|f| f.id()),
            Some("anthropic_claude_messages"),
            "{model_id}"
        );
    }
}

#[test]
fn base_model_id_strips_arns_and_geography_prefixes() {
    let cases = [
        ("anthropic.claude-v2:1", "anthropic.claude-v2:1"),
        ("us.anthropic.claude-v2:1", "anthropic.claude-v2:1"),
        ("us-gov.amazon.titan-text-express-v1", "amazon.titan-text-express-v1"),
        ("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2", "anthropic.claude-v2"),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-v2:1",
            "anthropic.claude-v2:1",
        ),
        (
            concat!(
                "arn:aws:bedrock:us-east-1:123456789012:custom-model/",
                "amazon.titan-text-express-v1:0:8k/abcdefghijkl"
            ),
            "amazon.titan-text-express-v1:0:8k",
        ),
    ];
    for (model_id, expected) in cases {
        assert_eq!(base_model_id(model_id), Some(expected), "{model_id}");
    }
}

#[test]
fn base_model_id_is_none_for_arns_without_a_model_id() {
    let model_ids = [
        "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdefghijkl",
        "arn:aws:bedrock:us-east-1:123456789012:imported-model/abcdefghijkl",
        "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abcdefghijkl",
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcdefghijkl",
        "arn:aws:sagemaker:us-east-1:767398002385:endpoint/endpoint-quick-start-idr7y",
        "arn:aws:bedrock:us-east-1:123456789012:provisioned-model",
    ];
    for model_id in model_ids {
        assert_eq!(base_model_id(model_id), None, "{model_id}");
        assert_eq!(family_for(model_id).map(|f| f.id()), None, "{model_id}");
    }
}

/// Every way a caller can name a base model: plain, cross-region profile ids, and ARNs.
fn model_id_forms(base: &str) -> Vec<String> {
    vec![
        base.to_owned(),
        format!("us.{base}"),
        format!("eu.{base}"),
        format!("apac.{base}"),
        format!("global.{base}"),
        format!("arn:aws:bedrock:us-east-1::foundation-model/{base}"),
        format!("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{base}"),
        format!(
            "arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:inference-profile/us-gov.{base}"
        ),
    ]
}

fn is_snake_case(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !id.ends_with('_')
        && !id.contains("__")
}
