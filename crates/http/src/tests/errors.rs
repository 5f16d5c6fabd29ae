//! Bad input and bad credentials get the contract's 4xx in the error format, never a 500;
//! unexpected failures get a 500 that hides their cause.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::json;
use waiaas_domain::errors::RepoError;

use super::*;

#[tokio::test]
async fn malformed_json_is_a_400() {
    let w = World::new();
    let req = Request::builder()
        .method("POST")
        .uri("/v1/agents")
        .header(header::AUTHORIZATION, format!("Bearer {OWNER_KEY}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"name\": "))
        .unwrap();
    let (status, _, body) = send(Mocks::new(&w).app(), req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "malformed_json");
}

#[tokio::test]
async fn a_wrong_type_is_a_400_not_axums_422() {
    let w = World::new();
    let req = request(
        "POST",
        "/v1/agents",
        Some(OWNER_KEY),
        Some(json!({"name": 42})),
    );
    let (status, _, body) = send(Mocks::new(&w).app(), req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "invalid_request");
    assert!(body["error"]["message"].as_str().unwrap().contains("name"));
}

#[tokio::test]
async fn an_unknown_field_is_a_400() {
    let w = World::new();
    let body = json!({"name": "bot", "admin": true});
    let req = request("POST", "/v1/agents", Some(OWNER_KEY), Some(body));
    let (status, _, body) = send(Mocks::new(&w).app(), req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "invalid_request");
    assert!(body["error"]["message"].as_str().unwrap().contains("admin"));
}

#[tokio::test]
async fn a_status_other_than_active_or_suspended_is_a_400() {
    let w = World::new();
    let uri = format!("/v1/agents/{}", w.agent);
    let req = request(
        "PATCH",
        &uri,
        Some(OWNER_KEY),
        Some(json!({"status": "revoked"})),
    );
    let (status, _, body) = send(Mocks::new(&w).app(), req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "invalid_request");
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    let w = World::new();
    let huge = json!({"name": "x".repeat(4096)});
    let req = request("POST", "/v1/agents", Some(OWNER_KEY), Some(huge));
    let (status, _, body) = send(Mocks::new(&w).app(), req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(&body), "payload_too_large");
}

#[tokio::test]
async fn a_body_without_a_json_content_type_is_a_415() {
    let w = World::new();
    for content_type in [None, Some("text/plain")] {
        let mut b = Request::builder()
            .method("POST")
            .uri("/v1/agents")
            .header(header::AUTHORIZATION, format!("Bearer {OWNER_KEY}"));
        if let Some(ct) = content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        let req = b.body(Body::from(r#"{"name":"bot"}"#)).unwrap();
        let (status, _, body) = send(Mocks::new(&w).app(), req).await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        assert_eq!(code(&body), "unsupported_media_type");
    }
}

#[tokio::test]
async fn a_request_without_credentials_is_a_401_with_www_authenticate() {
    let w = World::new();
    let uri = format!("/v1/wallets/{}", w.wallet);
    let (status, headers, body) =
        send(Mocks::new(&w).app(), request("GET", &uri, None, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    assert_eq!(code(&body), "unauthenticated");
}

#[tokio::test]
async fn an_unknown_credential_is_a_401() {
    let w = World::new();
    for token in ["wak_nobody", "wst_nobody", "not-a-credential"] {
        let mut m = Mocks::new(&w);
        m.sessions.expect_find_session().returning(|_| Ok(None));
        let (status, headers, _) =
            send(m.app(), request("GET", "/v1/agents", Some(token), None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token}");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    }
}

#[tokio::test]
async fn a_malformed_id_in_the_path_is_a_400() {
    let w = World::new();
    let req = request("GET", "/v1/wallets/not-a-uuid", Some(OWNER_KEY), None);
    let (status, _, body) = send(Mocks::new(&w).app(), req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "invalid_path");
}

#[tokio::test]
async fn a_malformed_cursor_or_limit_is_a_400() {
    let w = World::new();
    for (query, expected) in [
        ("cursor=garbage", "invalid_cursor"),
        ("limit=-1", "invalid_query"),
        ("colour=blue", "invalid_query"),
    ] {
        let uri = format!("/v1/wallets/{}/transactions?{query}", w.wallet);
        let req = request("GET", &uri, Some(OWNER_KEY), None);
        let (status, _, body) = send(Mocks::new(&w).app(), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(code(&body), expected, "{query}");
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_error_format() {
    let w = World::new();
    let (status, _, body) = send(
        Mocks::new(&w).app(),
        request("GET", "/v2/nothing", None, None),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "not_found");
    let (status, _, body) = send(
        Mocks::new(&w).app(),
        request("DELETE", "/healthz", None, None),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(code(&body), "method_not_allowed");
}

#[tokio::test]
async fn a_storage_failure_is_a_500_that_hides_its_cause() {
    let w = World::new();
    let mut m = Mocks::new(&w);
    m.agents.expect_list().returning(|_| {
        Err(RepoError(anyhow::anyhow!(
            "connection to postgres://admin:hunter2@db refused"
        )))
    });
    let (status, _, body) =
        send(m.app(), request("GET", "/v1/agents", Some(OWNER_KEY), None)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(code(&body), "internal");
    assert!(!body.to_string().contains("hunter2"));
}

#[tokio::test]
async fn the_request_id_is_echoed_or_generated() {
    let w = World::new();
    let mut req = request("GET", "/healthz", None, None);
    req.headers_mut()
        .insert("x-request-id", "req-42".parse().unwrap());
    let (_, headers, _) = send(Mocks::new(&w).app(), req).await;
    assert_eq!(headers["x-request-id"], "req-42");
    let (_, headers, _) = send(Mocks::new(&w).app(), request("GET", "/healthz", None, None)).await;
    let generated = headers["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");
}

#[tokio::test]
async fn a_request_over_the_timeout_is_a_503_not_a_hang() {
    let w = World::new();
    let mut m = Mocks::new(&w);
    m.config.request_timeout = Duration::from_millis(50);
    m.readiness_delay = Duration::from_secs(30);
    let (status, headers, body) = send(m.app(), request("GET", "/readyz", None, None)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&body), "timeout");
    assert!(headers.contains_key("x-request-id"));
    assert_eq!(headers["retry-after"], "1", "every 503 says when to retry");
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_in_the_error_format() {
    let w = World::new();
    // No expectation on `agents.list`: the mock panics when the handler calls it.
    let (status, _, body) = send(
        Mocks::new(&w).app(),
        request("GET", "/v1/agents", Some(OWNER_KEY), None),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(code(&body), "internal");
}

/// The error codes written in this crate's source: the literal after `bad_request(`,
/// `conflict(` and `unprocessable(`, and the one after the status of `ApiError::new(` or
/// `Self::new(`.
fn codes_in_source() -> Vec<String> {
    fn literal_at(text: &str) -> Option<String> {
        let rest = text.trim_start().strip_prefix('"')?;
        let end = rest.find('"')?;
        let code = &rest[..end];
        let snake = !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        snake.then(|| code.to_owned())
    }
    let mut files = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    let mut codes = Vec::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for call in ["bad_request(", "conflict(", "unprocessable("] {
            codes.extend(
                text.match_indices(call)
                    .filter_map(|(at, _)| literal_at(&text[at + call.len()..])),
            );
        }
        for call in ["ApiError::new(", "Self::new("] {
            codes.extend(text.match_indices(call).filter_map(|(at, _)| {
                let args = &text[at + call.len()..];
                literal_at(&args[args.find(',')? + 1..])
            }));
        }
    }
    codes
}

#[test]
fn every_error_code_the_service_answers_with_is_one_the_shared_error_code_knows() {
    use waiaas_api::ErrorCode;
    use waiaas_domain::model::MandateRefusal;

    let mut codes = codes_in_source();
    assert!(
        codes.iter().any(|c| c == "policy_denied") && codes.len() > 30,
        "the scan finds the codes: {codes:?}"
    );
    codes.extend(
        [
            waiaas_domain::Fault::DatabaseUnavailable,
            waiaas_domain::Fault::Timeout,
            waiaas_domain::Fault::WalletBusy,
            waiaas_domain::Fault::OutcomeUnknown,
        ]
        .map(|f| f.code().to_owned()),
    );
    codes.extend(
        [
            MandateRefusal::Revoked,
            MandateRefusal::Expired(now()),
            MandateRefusal::Exceeded(String::new()),
            MandateRefusal::PayeeMismatch(waiaas_domain::Counterparty::parse("cloud-gpu").unwrap()),
        ]
        .map(|r| r.code().to_owned()),
    );
    for code in codes {
        assert!(
            !matches!(ErrorCode::parse(&code), ErrorCode::Other(_)),
            "`{code}` is answered by the service but missing from waiaas_api::ErrorCode"
        );
    }
}
