//! OpenTelemetry traces: a real `waiaas serve` with `telemetry.otlp_endpoint` set exports
//! its spans over OTLP/HTTP to a receiver the test runs; a request carrying a W3C
//! `traceparent` continues the caller's trace, and that trace holds the posting and the
//! Redis calls the request made; the posting batch links to it; webhook deliveries have
//! spans of their own; what is buffered at SIGTERM is sent before the process exits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message as _;
use reqwest::StatusCode;

use crate::serve_binary::{free_port, serve_on_with, sigterm, until_ready};

/// One exported span, flattened.
#[derive(Debug, Clone)]
struct Span {
    trace: String,
    id: String,
    parent: String,
    name: String,
    attributes: HashMap<String, String>,
    /// The trace ids this span links to.
    links: Vec<String>,
    service: String,
}

fn text(kvs: &[KeyValue]) -> HashMap<String, String> {
    kvs.iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.clone(),
                Some(Value::IntValue(i)) => i.to_string(),
                Some(Value::BoolValue(b)) => b.to_string(),
                Some(Value::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

fn spans(bodies: &[Vec<u8>]) -> Vec<Span> {
    let mut out = Vec::new();
    for body in bodies {
        let req = ExportTraceServiceRequest::decode(body.as_slice()).expect("an OTLP request");
        for rs in req.resource_spans {
            let service = rs
                .resource
                .as_ref()
                .map(|r| text(&r.attributes))
                .and_then(|a| a.get("service.name").cloned())
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    out.push(Span {
                        trace: hex(&s.trace_id),
                        id: hex(&s.span_id),
                        parent: hex(&s.parent_span_id),
                        name: s.name.clone(),
                        attributes: text(&s.attributes),
                        links: s.links.iter().map(|l| hex(&l.trace_id)).collect(),
                        service: service.clone(),
                    });
                }
            }
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn spans_go_to_the_otlp_collector_and_a_request_continues_the_callers_trace() {
    let db = waiaas_testkit::TestDb::new().await;
    let prefix = waiaas_testkit::unique_prefix();
    let exported = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let hooks = Arc::new(Mutex::new(0_usize));
    let collector = {
        let (exported, hooks) = (exported.clone(), hooks.clone());
        axum::Router::new()
            .route(
                "/v1/traces",
                axum::routing::post(move |body: axum::body::Bytes| {
                    let exported = exported.clone();
                    async move {
                        exported.lock().unwrap().push(body.to_vec());
                        (
                            [(reqwest::header::CONTENT_TYPE, "application/x-protobuf")],
                            Vec::<u8>::new(),
                        )
                    }
                }),
            )
            .route(
                "/hook",
                axum::routing::post(move || {
                    let hooks = hooks.clone();
                    async move {
                        *hooks.lock().unwrap() += 1;
                        StatusCode::OK
                    }
                }),
            )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, collector).await });

    let client = reqwest::Client::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut serve = serve_on_with(
        &db.url,
        port,
        &prefix,
        &[
            ("WAIAAS__TELEMETRY__OTLP_ENDPOINT", format!("http://{addr}")),
            // The log says nothing: the spans are exported whatever the log filter.
            ("RUST_LOG", "error".to_owned()),
        ],
    );
    until_ready(&client, &base).await;
    let post = |path: &str, token: &str, body: serde_json::Value, headers: Vec<(&str, String)>| {
        let mut req = client
            .post(format!("{base}{path}"))
            .bearer_auth(token.to_owned())
            .json(&body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let path = path.to_owned();
        async move {
            let r = req.send().await.unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let key = || vec![("Idempotency-Key", uuid::Uuid::new_v4().to_string())];
    let owner = post(
        "/v1/owners",
        "boot",
        serde_json::json!({"name": "traced"}),
        vec![],
    )
    .await;
    let owner_key = owner["api_key"].as_str().unwrap().to_owned();
    post(
        "/v1/webhooks",
        &owner_key,
        serde_json::json!({"url": format!("http://{addr}/hook"), "events": ["transaction.completed"]}),
        vec![],
    )
    .await;
    let agent = post(
        "/v1/agents",
        &owner_key,
        serde_json::json!({"name": "a"}),
        vec![],
    )
    .await;
    let agent_id = agent["id"].as_str().unwrap().to_owned();
    let agent_key = post(
        &format!("/v1/agents/{agent_id}/keys"),
        &owner_key,
        serde_json::json!({}),
        vec![],
    )
    .await["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut wallets = Vec::new();
    for _ in 0..2 {
        let w = post(
            &format!("/v1/agents/{agent_id}/wallets"),
            &owner_key,
            serde_json::json!({"asset": "USD"}),
            vec![],
        )
        .await;
        wallets.push(w["id"].as_str().unwrap().to_owned());
    }
    post(
        &format!("/v1/wallets/{}/deposits", wallets[0]),
        &owner_key,
        serde_json::json!({"amount": 100}),
        key(),
    )
    .await;

    // The caller's trace: 16 random bytes, and the span it calls from.
    let trace = format!("{:032x}", uuid::Uuid::new_v4().as_u128());
    let caller = format!("{:016x}", rand_u64());
    let mut headers = key();
    headers.push(("traceparent", format!("00-{trace}-{caller}-01")));
    let transfer = post(
        &format!("/v1/wallets/{}/transfers", wallets[0]),
        &agent_key,
        serde_json::json!({"amount": 7, "to_wallet_id": wallets[1]}),
        headers,
    )
    .await;
    assert_eq!(transfer["status"], "completed");
    // Its webhook is delivered (the delivery has a span of its own).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while *hooks.lock().unwrap() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no webhook delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SIGTERM: what the exporter still holds is sent before the process ends.
    sigterm(&mut serve, Duration::from_secs(30), "stopped").await;

    let all = spans(&exported.lock().unwrap());
    let names = |spans: &[&Span]| {
        spans
            .iter()
            .map(|s| {
                format!(
                    "{} ({})",
                    s.name,
                    s.attributes
                        .get("code.module.name")
                        .map_or("", String::as_str)
                )
            })
            .collect::<Vec<_>>()
    };
    assert!(!all.is_empty(), "nothing was exported");
    assert!(
        all.iter().all(|s| s.service == "waiaas"),
        "service.name: {:?}",
        all.iter().map(|s| &s.service).collect::<Vec<_>>()
    );
    let in_trace: Vec<&Span> = all.iter().filter(|s| s.trace == trace).collect();
    let request = in_trace
        .iter()
        .find(|s| s.name == "http_request")
        .unwrap_or_else(|| {
            panic!(
                "no request span in the caller's trace: {:?}",
                names(&in_trace)
            )
        });
    assert_eq!(
        request.parent, caller,
        "the request's span is the caller's child"
    );
    assert_eq!(
        request.attributes.get("path").map(String::as_str),
        Some("/v1/wallets/{id}/transfers")
    );
    assert_eq!(
        request.attributes.get("status").map(String::as_str),
        Some("201")
    );
    // The posting, and the Redis calls the request made (credentials looked up, the new
    // balances written through), are in the same trace, under the request.
    assert!(
        in_trace.iter().any(|s| s.name == "post_spend"),
        "no posting span in the trace: {:?}",
        names(&in_trace)
    );
    assert!(
        in_trace.iter().any(|s| s
            .attributes
            .get("code.module.name")
            .is_some_and(|m| m.starts_with("waiaas_redis"))),
        "no Redis call in the trace: {:?}",
        names(&in_trace)
    );
    let ids: Vec<&str> = in_trace.iter().map(|s| s.id.as_str()).collect();
    assert!(
        in_trace
            .iter()
            .all(|s| s.id == request.id || ids.contains(&s.parent.as_str())),
        "every other span of the trace hangs under the request"
    );
    // The batch that posted it links to the request's trace.
    assert!(
        all.iter()
            .any(|s| s.name == "posting_batch" && s.links.contains(&trace)),
        "no posting batch links to the trace: {:?}",
        all.iter()
            .filter(|s| s.name == "posting_batch")
            .collect::<Vec<_>>()
    );
    // A webhook delivery, delivered.
    assert!(
        all.iter().any(|s| s.name == "webhook_delivery"
            && s.attributes.get("delivered").map(String::as_str) == Some("true")
            && s.attributes.get("event_type").map(String::as_str) == Some("transaction.completed")),
        "no delivered webhook span: {:?}",
        all.iter()
            .filter(|s| s.name == "webhook_delivery")
            .collect::<Vec<_>>()
    );
    // None of the libraries' own spans (the exporter's HTTP client above all) is exported.
    assert!(
        all.iter().all(|s| s
            .attributes
            .get("code.module.name")
            .is_none_or(|m| m.starts_with("waiaas"))),
        "{:?}",
        names(&all.iter().collect::<Vec<_>>())
    );
}

fn rand_u64() -> u64 {
    let id = uuid::Uuid::new_v4().as_u128();
    u64::try_from(id >> 64).unwrap_or(1) | 1
}
