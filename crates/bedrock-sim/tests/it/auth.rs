//! The simulator authenticates the real SDK's requests as Bedrock does: SigV4 with the right
//! secret (and session token) is served, the wrong one gets Bedrock's 403, and so do bearer
//! tokens it does not know.

use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::config::{BehaviorVersion, Region, Token};
use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::{Client, Config};
use bedrock_sim::{AccessKey, Auth, Simulator, TEST_ACCESS_KEY_ID, TEST_BEARER_TOKEN};
use serde_json::json;

use crate::support::{
    CLAUDE, StreamEnd, TITAN, TestSim, claude_body, collect_stream, start, start_with, titan_body,
    to_blob,
};

const MISMATCH: &str = "The request signature we calculated does not match the signature you \
    provided. Check your AWS Secret Access Key and signing method. Consult the service \
    documentation for details.";

/// The status, error code and message of a failed InvokeModel and of a failed stream start.
async fn refusals(sim: &TestSim) -> [(Option<u16>, Option<String>, Option<String>); 2] {
    let error = sim.invoke(TITAN, &titan_body("hi", json!({}))).await.unwrap_err();
    let status = error.raw_response().map(|response| response.status().as_u16());
    let error = error.into_service_error();
    let invoke = (status, error.code().map(str::to_owned), error.message().map(str::to_owned));
    let error = sim.start_stream(CLAUDE, &claude_body("hi", json!({}))).await.unwrap_err();
    let status = error.raw_response().map(|response| response.status().as_u16());
    let error = error.into_service_error();
    let stream = (status, error.code().map(str::to_owned), error.message().map(str::to_owned));
    [invoke, stream]
}

fn refused(code: &str, message: &str) -> [(Option<u16>, Option<String>, Option<String>); 2] {
    let one = (Some(403), Some(code.to_owned()), Some(message.to_owned()));
    [one.clone(), one]
}

#[tokio::test]
async fn the_sdks_signatures_verify_for_every_id_form_and_both_operations() {
    let sim = start().await;
    for model_id in [
        TITAN,
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-express-v1",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.titan-text-express-v1",
    ] {
        sim.invoke(model_id, &titan_body("hi", json!({}))).await.unwrap();
    }
    for model_id in [CLAUDE, "us.anthropic.claude-v2:1"] {
        let result = sim.stream(model_id, &claude_body("hi", json!({}))).await;
        assert!(matches!(result.end, StreamEnd::Clean), "{model_id}: {:?}", result.end);
    }
    // An empty body and a large one are hashed as sent.
    let empty = sim.invoke_raw(TITAN, aws_sdk_bedrockruntime::primitives::Blob::new("")).await;
    assert_eq!(empty.unwrap_err().into_service_error().code(), Some("ValidationException"));
    let long = titan_body(&"lighthouse ".repeat(500), json!({}));
    sim.invoke(TITAN, &long).await.unwrap();
    assert_eq!(sim.simulator.auth_refusals(), 0);
    assert_eq!(sim.simulator.request_count(), 7);
}

#[tokio::test]
async fn a_wrong_secret_is_bedrocks_invalid_signature_exception() {
    let sim = start_with(Simulator::new(), TEST_ACCESS_KEY_ID, "not-the-secret").await;
    assert_eq!(refusals(&sim).await, refused("InvalidSignatureException", MISMATCH));
    assert_eq!(sim.simulator.auth_refusals(), 2);
    assert_eq!(sim.simulator.request_count(), 2);
    assert_eq!(sim.simulator.stats().auth_refusals, 2);
}

#[tokio::test]
async fn an_unknown_access_key_is_bedrocks_unrecognized_client_exception() {
    let sim = start_with(Simulator::new(), "AKIDNOBODYKNOWS00000", "secret").await;
    let message = "The security token included in the request is invalid.";
    assert_eq!(refusals(&sim).await, refused("UnrecognizedClientException", message));
}

#[tokio::test]
async fn a_configured_key_of_its_own_and_a_temporary_key_with_its_token() {
    let mut auth = Auth::with_access_key("AKIDOWNKEY0000000000", "own-secret");
    let temporary = AccessKey {
        secret_access_key: "temporary-secret".to_owned(),
        session_token: Some("the-session-token".to_owned()),
    };
    auth.access_keys.insert("ASIDTEMPORARY0000000".to_owned(), temporary);
    let simulator = Simulator::with_auth(auth);
    let own = start_with(simulator.clone(), "AKIDOWNKEY0000000000", "own-secret").await;
    own.invoke(TITAN, &titan_body("hi", json!({}))).await.unwrap();
    // The test key is not one of this simulator's.
    let test_key = start_with(simulator.clone(), TEST_ACCESS_KEY_ID, "x").await;
    let message = "The security token included in the request is invalid.";
    assert_eq!(refusals(&test_key).await, refused("UnrecognizedClientException", message));

    let with_token = |token: Option<&str>| {
        let credentials = aws_sdk_bedrockruntime::config::Credentials::new(
            "ASIDTEMPORARY0000000",
            "temporary-secret",
            token.map(str::to_owned),
            None,
            "test",
        );
        Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-3"))
            .credentials_provider(credentials)
            .endpoint_url(&own.endpoint_url)
            .retry_config(RetryConfig::disabled())
            .build()
    };
    let body = to_blob(&titan_body("hi", json!({})));
    let call = |config: Config| {
        Client::from_conf(config)
            .invoke_model()
            .model_id(TITAN)
            .content_type("application/json")
            .body(body.clone())
            .send()
    };
    call(with_token(Some("the-session-token"))).await.unwrap();
    for token in [None, Some("another-token")] {
        let error = call(with_token(token)).await.unwrap_err().into_service_error();
        assert_eq!(error.code(), Some("UnrecognizedClientException"), "{token:?}");
    }
}

#[tokio::test]
async fn bedrock_api_keys_are_bearer_tokens_of_the_configured_list() {
    let sim = start().await;
    let bearer = |token: &str| {
        Client::from_conf(
            Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .bearer_token(Token::new(token, None))
                .endpoint_url(&sim.endpoint_url)
                .retry_config(RetryConfig::disabled())
                .build(),
        )
    };
    let body = to_blob(&claude_body("hi", json!({})));
    let good = bearer(TEST_BEARER_TOKEN);
    good.invoke_model().model_id(CLAUDE).body(body.clone()).send().await.unwrap();
    let stream =
        good.invoke_model_with_response_stream().model_id(CLAUDE).body(body.clone()).send();
    let result = collect_stream(stream.await.unwrap()).await;
    assert!(matches!(result.end, StreamEnd::Clean), "{:?}", result.end);

    let error = bearer("ABSK-not-a-key").invoke_model().model_id(CLAUDE).body(body).send().await;
    let error = error.unwrap_err();
    assert_eq!(error.raw_response().map(|response| response.status().as_u16()), Some(403));
    let error = error.into_service_error();
    assert!(error.is_access_denied_exception(), "{error:?}");
    assert_eq!(
        error.message(),
        Some("Authentication failed: Please make sure your API Key is valid.")
    );
    assert_eq!(sim.simulator.auth_refusals(), 1);
}

#[tokio::test]
async fn an_unverified_simulator_serves_any_signature() {
    let sim = start_with(Simulator::with_auth(Auth::unverified()), "anyone", "anything").await;
    sim.invoke(TITAN, &titan_body("hi", json!({}))).await.unwrap();
    assert_eq!(sim.simulator.auth_refusals(), 0);
}
