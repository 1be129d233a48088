//! Models that Bedrock still serves but lists as legacy (end of support announced, or
//! superseded in the same family): the gateway keeps routing them, and `check-config`
//! warns about every alias that reaches one, naming what to move to.

use crate::families::base_model_id;

/// (base model id prefix, what to say).
const LEGACY: &[(&str, &str)] = &[
    (
        "anthropic.claude-v2",
        "Claude 2 is a legacy model on Bedrock; move to Claude Haiku 4.5 or Sonnet 4.x",
    ),
    (
        "anthropic.claude-instant-v1",
        "Claude Instant is a legacy model on Bedrock; move to Claude Haiku 4.5",
    ),
    ("ai21.j2-", "Jurassic-2 is a legacy model on Bedrock; move to Jamba 1.5"),
    ("meta.llama2-", "Llama 2 is a legacy model on Bedrock; move to Llama 3.x or Llama 4"),
    (
        "amazon.titan-image-generator-v1",
        "Titan Image Generator v1 is a legacy model on Bedrock; move to v2 or Nova Canvas",
    ),
    (
        "stability.stable-diffusion-xl-v1",
        "Stable Diffusion XL 1.0 is a legacy model on Bedrock; move to Stable Image Core, Ultra or SD3.5",
    ),
];

/// What to say about `model_id` (plain, profile or ARN) if it is a legacy model.
pub fn legacy_note(model_id: &str) -> Option<&'static str> {
    let base = base_model_id(model_id)?;
    LEGACY.iter().find(|(prefix, _)| base.starts_with(prefix)).map(|(_, note)| *note)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_models_are_known_in_every_form() {
        assert!(legacy_note("anthropic.claude-v2:1").is_some());
        assert!(legacy_note("us.anthropic.claude-instant-v1").is_some());
        assert!(
            legacy_note("arn:aws:bedrock:us-east-1::foundation-model/meta.llama2-13b-chat-v1")
                .is_some()
        );
        assert!(legacy_note("amazon.titan-image-generator-v1").is_some());
        assert!(legacy_note("amazon.titan-image-generator-v2:0").is_none());
        assert!(legacy_note("anthropic.claude-3-haiku-20240307-v1:0").is_none());
        assert!(legacy_note("stability.stable-diffusion-xl-v1").is_some());
        assert!(legacy_note("ai21.jamba-1-5-mini-v1:0").is_none());
    }
}
