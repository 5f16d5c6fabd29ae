//! A TCP proxy in front of a server, for tests that need a connection to break at a chosen
//! moment: the next connection that sends a chosen byte pattern (a `COMMIT`) gets that
//! message forwarded to the server, and is then cut before the server's answer can come
//! back, so the client cannot know whether the server acted on it. It can also cut off
//! its clients altogether for a while (a network partition between them and the server).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What an armed proxy waits for: `then`, on a connection that sent `first` before (any
/// connection when there is no `first`).
type Armed = (Option<Vec<u8>>, Vec<u8>);

#[derive(Debug, Default)]
struct State {
    /// When armed, what makes the next connection sending it break.
    cut_after: Mutex<Option<Armed>>,
    cuts: AtomicU64,
    /// While true, connections are refused.
    down: std::sync::atomic::AtomicBool,
    /// The relays in progress, to cut them all at once.
    relays: Mutex<Vec<JoinHandle<()>>>,
}

fn contains(chunk: &[u8], p: &[u8]) -> bool {
    chunk.windows(p.len()).any(|w| w == p)
}

impl State {
    /// Disarms and returns true when `chunk` holds the armed pattern (on a connection that
    /// sent the armed first pattern, if any; `seen_first` is that connection's memory).
    fn take_if_matches(&self, chunk: &[u8], seen_first: &mut bool) -> bool {
        let mut armed = self
            .cut_after
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some((first, then)) = armed.as_ref() else {
            return false;
        };
        if let Some(first) = first
            && contains(chunk, first)
        {
            *seen_first = true;
        }
        let hit = (first.is_none() || *seen_first) && contains(chunk, then);
        if hit {
            *armed = None;
            self.cuts.fetch_add(1, Ordering::SeqCst);
        }
        hit
    }
}

/// The proxy; it stops accepting when dropped.
#[derive(Debug)]
pub struct TcpProxy {
    port: u16,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on a free port of 127.0.0.1 and relays every connection to `target`.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start(target: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the proxy")?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(State::default());
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if shared.down.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let state = shared.clone();
                let handle = tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        relay(client, server, state).await;
                    }
                });
                let mut relays = shared
                    .relays
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                relays.retain(|h| !h.is_finished());
                relays.push(handle);
            }
        });
        Ok(Self {
            port,
            state,
            accept,
        })
    }

    /// The port clients connect to.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// Arms the proxy: the next connection whose client sends `pattern` has that message
    /// forwarded, then is cut in both directions before any answer reaches the client.
    pub fn cut_after(&self, pattern: &[u8]) {
        *self
            .state
            .cut_after
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((None, pattern.to_vec()));
    }

    /// As [`Self::cut_after`], but only on a connection that sent `first` before `then`: the
    /// `COMMIT` of one chosen transaction (sent `first`, say its idempotency key), not that of
    /// background work on another pooled connection.
    pub fn cut_after_both(&self, first: &[u8], then: &[u8]) {
        *self
            .state
            .cut_after
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((Some(first.to_vec()), then.to_vec()));
    }

    /// How many connections were cut.
    #[must_use]
    pub fn cuts(&self) -> u64 {
        self.state.cuts.load(Ordering::SeqCst)
    }

    /// Cuts every connection and refuses new ones (`true`), or lets them through again.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
        if down {
            for relay in self
                .state
                .relays
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .drain(..)
            {
                relay.abort();
            }
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn relay(client: TcpStream, server: TcpStream, state: Arc<State>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let answers = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    });
    let mut buf = vec![0_u8; 64 * 1024];
    let mut seen_first = false;
    loop {
        let n = match client_read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if state.take_if_matches(&buf[..n], &mut seen_first) {
            // No answer may reach the client any more; the message still reaches the server.
            answers.abort();
            let _ = server_write.write_all(&buf[..n]).await;
            let _ = server_write.flush().await;
            return;
        }
        if server_write.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = server_write.shutdown().await;
    let _ = answers.await;
}
