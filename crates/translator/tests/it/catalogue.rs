//! Today's text catalogue: every model id Bedrock lists for text InvokeModel reaches its
//! family in every form a caller can name it (plain, `us.` / `eu.` / `apac.` / `global.`
//! profile, foundation-model and inference-profile ARN).

use translator::family_for;

/// Base model ids and their family.
const CATALOGUE: &[(&str, &str)] = &[
    // Claude 4.x.
    ("anthropic.claude-opus-4-20250514-v1:0", "anthropic_claude_messages"),
    ("anthropic.claude-opus-4-1-20250805-v1:0", "anthropic_claude_messages"),
    ("anthropic.claude-opus-4-5-20251101-v1:0", "anthropic_claude_messages"),
    ("anthropic.claude-sonnet-4-20250514-v1:0", "anthropic_claude_messages"),
    ("anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic_claude_messages"),
    ("anthropic.claude-haiku-4-5-20251001-v1:0", "anthropic_claude_messages"),
    // Nova 2 and Nova Premier (Nova 2 Sonic is speech-to-speech, not text InvokeModel).
    ("amazon.nova-2-lite-v1:0", "amazon_nova"),
    ("amazon.nova-2-pro-v1:0", "amazon_nova"),
    ("amazon.nova-2-pro-preview-20251202-v1:0", "amazon_nova"),
    ("amazon.nova-premier-v1:0", "amazon_nova"),
    // Llama 3.1, 3.2, 3.3 and 4.
    ("meta.llama3-1-8b-instruct-v1:0", "meta_llama3"),
    ("meta.llama3-1-70b-instruct-v1:0", "meta_llama3"),
    ("meta.llama3-1-405b-instruct-v1:0", "meta_llama3"),
    ("meta.llama3-2-1b-instruct-v1:0", "meta_llama3"),
    ("meta.llama3-2-3b-instruct-v1:0", "meta_llama3"),
    ("meta.llama3-2-11b-instruct-v1:0", "meta_llama3"),
    ("meta.llama3-2-90b-instruct-v1:0", "meta_llama3"),
    ("meta.llama3-3-70b-instruct-v1:0", "meta_llama3"),
    ("meta.llama4-scout-17b-instruct-v1:0", "meta_llama4"),
    ("meta.llama4-maverick-17b-instruct-v1:0", "meta_llama4"),
    // Mistral Large 2 (24.07, 24.11) and Pixtral Large: the chat-completion body.
    ("mistral.mistral-large-2407-v1:0", "mistral_chat"),
    ("mistral.mistral-large-2411-v1:0", "mistral_chat"),
    ("mistral.pixtral-large-2502-v1:0", "mistral_chat"),
    // The OpenAI-chat-shaped open-weight models.
    ("qwen.qwen3-32b-v1:0", "openai_chat"),
    ("qwen.qwen3-235b-a22b-2507-v1:0", "openai_chat"),
    ("qwen.qwen3-coder-30b-a3b-v1:0", "openai_chat"),
    ("qwen.qwen3-coder-480b-a35b-v1:0", "openai_chat"),
    ("qwen.qwen3-next-80b-a3b", "openai_chat"),
    ("qwen.qwen3-vl-235b-a22b", "openai_chat"),
    ("qwen.qwen3-coder-next", "openai_chat"),
    ("deepseek.v3-v1:0", "openai_chat"),
    ("deepseek.v3.2", "openai_chat"),
    ("moonshot.kimi-k2-thinking", "openai_chat"),
    ("moonshotai.kimi-k2.5", "openai_chat"),
    ("minimax.minimax-m2", "openai_chat"),
    ("minimax.minimax-m2.1", "openai_chat"),
    ("google.gemma-3-4b-it", "openai_chat"),
    ("google.gemma-3-12b-it", "openai_chat"),
    ("google.gemma-3-27b-it", "openai_chat"),
    ("nvidia.nemotron-nano-9b-v2", "openai_chat"),
    ("nvidia.nemotron-nano-12b-v2", "openai_chat"),
    ("nvidia.nemotron-nano-3-30b", "openai_chat"),
    ("nvidia.nemotron-super-3-120b", "openai_chat"),
    ("mistral.ministral-3-3b-instruct", "openai_chat"),
    ("mistral.ministral-3-8b-instruct", "openai_chat"),
    ("mistral.ministral-3-14b-instruct", "openai_chat"),
    ("mistral.magistral-small-2509", "openai_chat"),
    ("mistral.mistral-large-3-675b-instruct", "openai_chat"),
    ("mistral.devstral-2-123b", "openai_chat"),
    ("mistral.voxtral-mini-3b-2507", "openai_chat"),
    ("mistral.voxtral-small-24b-2507", "openai_chat"),
    // Neighbours that stay in their own families.
    ("deepseek.r1-v1:0", "deepseek_r1"),
    ("openai.gpt-oss-120b-1:0", "openai_gpt_oss"),
    ("openai.gpt-oss-20b-1:0", "openai_gpt_oss"),
    // Writer Palmyra X4 and X5 (on Bedrock only through their `us.` profiles).
    ("writer.palmyra-x4-v1:0", "writer_palmyra"),
    ("writer.palmyra-x5-v1:0", "writer_palmyra"),
];

/// Models whose InvokeModel body no family speaks yet: they must reach none.
const UNROUTED: &[&str] = &["amazon.nova-2-sonic-v1:0", "writer.palmyra-vision-7b"];

/// Every way a caller names a base model.
fn forms(base: &str) -> Vec<String> {
    let mut forms = vec![base.to_owned()];
    for geography in ["us", "eu", "apac", "global"] {
        forms.push(format!("{geography}.{base}"));
        forms.push(format!(
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/{geography}.{base}"
        ));
    }
    forms.push(format!("arn:aws:bedrock:us-east-1::foundation-model/{base}"));
    forms
}

#[test]
fn every_catalogue_id_reaches_its_family_in_every_form() {
    let mut wrong = Vec::new();
    for &(base, expected) in CATALOGUE {
        for model_id in forms(base) {
            let got = family_for(&model_id).map(|family| family.id());
            if got != Some(expected) {
                wrong.push(format!("{model_id}: {got:?}, expected {expected}"));
            }
        }
    }
    assert!(wrong.is_empty(), "mis-routed:\n{}", wrong.join("\n"));
}

#[test]
fn models_without_a_family_reach_none() {
    for model_id in UNROUTED.iter().copied().flat_map(forms) {
        assert_eq!(family_for(&model_id).map(|family| family.id()), None, "{model_id}");
    }
}
