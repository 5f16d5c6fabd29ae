//! A wallet's live events (`GET /v1/wallets/{id}/events`, server-sent events) as a typed
//! stream that survives dropped connections: it reconnects and sends the id of the last
//! event it saw as `Last-Event-ID`, so the service replays what was missed, each event once.

use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt as _};
use reqwest::header::{ACCEPT, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use uuid::Uuid;
use waiaas_api::WalletEvent;

use crate::Client;
use crate::error::{self, Error};

/// A stream with no byte for this long is taken for a dead connection: the service sends a
/// comment every 15 s.
const IDLE: Duration = Duration::from_secs(45);

impl Client {
    /// The wallet's events, in order, as they are committed: those after event `after` first
    /// (replayed from the service's store), then the live ones. Without `after` the stream
    /// starts with the events placed after it opened.
    ///
    /// When the connection drops (the service restarts, a proxy cuts it) the stream
    /// reconnects, waiting as the [`crate::RetryPolicy`] says, and resumes after the last
    /// event it yielded: nothing is missed and nothing repeated. It ends with an error when
    /// the service refuses it for good (`401` — the credential was revoked — `404`, `410
    /// events_expired`) or the attempts to reconnect run out; an event whose data cannot be
    /// read is yielded as an error and the stream goes on.
    pub fn wallet_events(
        &self,
        wallet_id: Uuid,
        after: Option<i64>,
    ) -> impl Stream<Item = Result<WalletEvent, Error>> + Send + 'static {
        let reader = Reader {
            client: self.clone(),
            wallet_id,
            last_id: after,
            body: None,
            buffer: Vec::new(),
            frame: Frame::default(),
            failures: 0,
            done: false,
        };
        futures::stream::unfold(reader, |mut reader| async move {
            let item = reader.next().await?;
            Some((item, reader))
        })
    }
}

/// The fields of the event being read.
#[derive(Debug, Default)]
struct Frame {
    id: Option<i64>,
    data: Option<String>,
}

struct Reader {
    client: Client,
    wallet_id: Uuid,
    /// The id to resume after.
    last_id: Option<i64>,
    body: Option<BoxStream<'static, reqwest::Result<Vec<u8>>>>,
    buffer: Vec<u8>,
    frame: Frame,
    /// Connections in a row that failed or dropped before a line arrived.
    failures: u32,
    done: bool,
}

impl Reader {
    async fn next(&mut self) -> Option<Result<WalletEvent, Error>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(item) = self.take_buffered() {
                return Some(item);
            }
            let Some(body) = self.body.as_mut() else {
                if let Err((error, retry_after)) = self.connect().await
                    && let Some(error) = self.failed(error, retry_after).await
                {
                    return Some(Err(error));
                }
                continue;
            };
            let error = match tokio::time::timeout(IDLE, body.next()).await {
                Ok(Some(Ok(chunk))) => {
                    self.buffer.extend_from_slice(&chunk);
                    continue;
                }
                Ok(Some(Err(e))) => Error::Transport(e),
                Ok(None) => ended("the service ended the event stream"),
                Err(_) => ended("the event stream went silent"),
            };
            tracing::debug!(wallet_id = %self.wallet_id, last_id = ?self.last_id, error = %error, "Event stream dropped; resuming");
            if let Some(error) = self.failed(error, None).await {
                return Some(Err(error));
            }
        }
    }

    /// Opens the stream, after the last event seen if any.
    async fn connect(&mut self) -> Result<(), (Error, Option<Duration>)> {
        let path = format!("/v1/wallets/{}/events", self.wallet_id);
        let mut request = self
            .client
            .request(Method::GET, &path)
            .header(ACCEPT, "text/event-stream");
        if let Some(id) = self.last_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| (Error::Transport(e), None))?;
        if !response.status().is_success() {
            let after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok()?.trim().parse().ok())
                .map(Duration::from_secs);
            return Err((error::from_response(response).await, after));
        }
        let body = response
            .bytes_stream()
            .map(|chunk| chunk.map(|bytes| bytes.to_vec()));
        self.body = Some(body.boxed());
        Ok(())
    }

    /// Forgets the connection; answers the error to end the stream with, or waits before
    /// the next attempt and answers `None`.
    async fn failed(&mut self, error: Error, retry_after: Option<Duration>) -> Option<Error> {
        self.body = None;
        self.buffer.clear();
        self.frame = Frame::default();
        self.failures += 1;
        let retryable = match &error {
            Error::Api { status, .. } => {
                *status == StatusCode::SERVICE_UNAVAILABLE
                    || *status == StatusCode::TOO_MANY_REQUESTS
            }
            Error::Transport(_) | Error::Unexpected { .. } => true,
        };
        if !retryable || self.failures >= self.client.retry.max_attempts {
            self.done = true;
            return Some(error);
        }
        tokio::time::sleep(self.client.retry.delay(self.failures, retry_after)).await;
        None
    }

    /// Reads the complete lines buffered; answers the first event they complete.
    fn take_buffered(&mut self) -> Option<Result<WalletEvent, Error>> {
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            // The connection works: later drops start counting afresh.
            self.failures = 0;
            if line.is_empty() {
                if let Some(item) = self.dispatch() {
                    return Some(item);
                }
                continue;
            }
            if line.first() == Some(&b':') {
                continue; // a comment: the keep-alive
            }
            let line = String::from_utf8_lossy(&line);
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "data" => {
                    let data = self.frame.data.get_or_insert_with(String::new);
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(value);
                }
                "id" => self.frame.id = value.parse().ok(),
                _ => {} // `event` repeats the data's `type`; `retry` is ours to decide
            }
        }
        None
    }

    /// The event a blank line completes, if it had data.
    fn dispatch(&mut self) -> Option<Result<WalletEvent, Error>> {
        let frame = std::mem::take(&mut self.frame);
        if frame.id.is_some() {
            self.last_id = frame.id;
        }
        let data = frame.data?;
        Some(
            serde_json::from_str::<WalletEvent>(&data)
                .inspect(|event| self.last_id = Some(event.id))
                .map_err(|e| Error::Unexpected {
                    status: StatusCode::OK,
                    reason: format!("an event that is not the documented JSON ({e}): {data}"),
                }),
        )
    }
}

/// The error a stream that ended without one is counted as.
fn ended(reason: &str) -> Error {
    Error::Unexpected {
        status: StatusCode::OK,
        reason: reason.to_owned(),
    }
}
