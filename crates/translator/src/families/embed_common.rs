//! Helpers shared by the embedding families: model-id matching, batch and `dimensions`
//! checks, image inputs and the Titan text answer.

use serde::Deserialize;

use crate::embed::{Embeddings, ImageInput, parse_image};
use crate::error::TranslateError;
use crate::families::{de_count, parse_body};

/// Whether `base_model_id` is `model_id` or one of its provisioned-throughput variants
/// (`model_id:...`).
pub(crate) fn matches_model_id(base_model_id: &str, model_id: &str) -> bool {
    base_model_id
        .strip_prefix(model_id)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
}

/// Refuses a call of more than `max_batch` `what` (`texts`, `images`).
pub(crate) fn check_batch(
    family: &'static str,
    what: &str,
    n: usize,
    max_batch: usize,
) -> Result<(), TranslateError> {
    if n > max_batch {
        return Err(TranslateError::InvalidRequest(format!(
            "the {family} model family embeds at most {max_batch} {what} per call, got {n}"
        )));
    }
    Ok(())
}

/// The request's `dimensions`, checked against the vector sizes the model produces.
pub(crate) fn check_dimensions(
    family: &'static str,
    allowed: &[u32],
    dimensions: Option<u32>,
) -> Result<Option<u32>, TranslateError> {
    match dimensions {
        Some(dimensions) if !allowed.contains(&dimensions) => {
            Err(TranslateError::InvalidRequest(format!(
                "`dimensions` must be one of {} for the {family} model family, got {dimensions}",
                one_of(allowed)
            )))
        }
        dimensions => Ok(dimensions),
    }
}

/// `256, 512 or 1024`.
fn one_of(allowed: &[u32]) -> String {
    let names: Vec<String> = allowed.iter().map(u32::to_string).collect();
    match names.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// One image of an embedding call, read by [`parse_image`].
pub(crate) fn image_input(image: &str) -> Result<ImageInput<'_>, TranslateError> {
    parse_image(image)
        .map_err(|detail| TranslateError::InvalidRequest(format!("an image {detail}")))
}

/// The one image of an embedding call, for families that embed one image per call.
pub(crate) fn single_image<'a>(
    family: &'static str,
    images: &'a [String],
) -> Result<ImageInput<'a>, TranslateError> {
    let [image] = images else {
        return Err(TranslateError::InvalidRequest(format!(
            "the {family} model family embeds one image per call, got {}",
            images.len()
        )));
    };
    image_input(image)
}

/// The answer of the Titan text embedding models: `embedding` with `inputTextTokenCount`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TitanEmbeddingResponse {
    embedding: Vec<f32>,
    #[serde(default, deserialize_with = "de_count")]
    input_text_token_count: Option<u32>,
}

/// Reads a Titan text embedding answer; the error names `family`.
pub(crate) fn decode_titan_embedding(
    family: &'static str,
    body: &[u8],
) -> Result<Embeddings, TranslateError> {
    let res: TitanEmbeddingResponse = parse_body(family, body)?;
    Ok(Embeddings { vectors: vec![res.embedding], input_tokens: res.input_text_token_count })
}

#[cfg(test)]
mod tests {
    use super::one_of;

    #[test]
    fn allowed_values_read_as_a_list() {
        assert_eq!(one_of(&[256, 384, 1024]), "256, 384 or 1024");
        assert_eq!(one_of(&[256, 512, 1024, 1536]), "256, 512, 1024 or 1536");
        assert_eq!(one_of(&[7]), "7");
    }
}
