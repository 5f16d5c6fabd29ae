//! Webhooks: an owner's HTTP endpoints that receive the outbox's events, signed the way
//! Stripe signs (`WAIaaS-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`), so
//! receivers know the scheme. Receivers verify with [`verify_signature`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use crate::ids::{DeliveryId, WebhookId};
use crate::ids::{OwnerId, TransactionId, WalletId};

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "WAIaaS-Signature";
/// The header that carries the event's id (receivers dedupe on it).
pub const EVENT_ID_HEADER: &str = "WAIaaS-Event-Id";
/// The prefix of every signing secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// The most event types one endpoint may list.
pub const MAX_EVENT_TYPES: usize = 50;
/// The longest URL.
pub const MAX_URL_LEN: usize = 2048;
/// The longest description.
pub const MAX_DESCRIPTION_LEN: usize = 500;

/// Every event type an endpoint may subscribe to (`*` is all of them).
pub const EVENT_TYPES: &[&str] = &[
    "transaction.completed",
    "transaction.pending_approval",
    "transaction.denied",
    "transaction.failed",
    "transaction.rejected",
    "transaction.expired",
    "hold.placed",
    "hold.pending_approval",
    "hold.denied",
    "hold.failed",
    "hold.rejected",
    "hold.captured",
    "hold.voided",
    "hold.expired",
    "agent.created",
    "agent.updated",
    "agent.suspended",
    "agent.activated",
    "agent.deleted",
    "api_key.created",
    "api_key.revoked",
    "session.revoked",
    "policy.updated",
    "budget.updated",
    "mandate.created",
    "mandate.revoked",
];

/// An owner's endpoint (its secret is shown once, when made or rotated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// Identity.
    pub id: WebhookId,
    /// Whose events it receives.
    pub owner_id: OwnerId,
    /// Where they are posted.
    pub url: String,
    /// The event types it receives (`["*"]` for all).
    pub events: Vec<String>,
    /// The owner's note.
    pub description: Option<String>,
    /// Whether new events are delivered to it.
    pub enabled: bool,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Webhook {
    /// Whether it receives events of type `kind`.
    #[must_use]
    pub fn wants(&self, kind: &str) -> bool {
        self.events.iter().any(|e| e == "*" || e == kind)
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not yet answered with a 2xx; tried again at `next_attempt_at`.
    Pending,
    /// A 2xx answered it.
    Delivered,
    /// Every attempt for 24 hours failed (the owner was notified); a retry starts again.
    Failed,
}

impl DeliveryStatus {
    /// The stored text.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// Parses the stored text.
    #[must_use]
    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One event's delivery to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Identity.
    pub id: DeliveryId,
    /// The endpoint.
    pub webhook_id: WebhookId,
    /// The event's id (its place in the stream).
    pub event_id: i64,
    /// The event's type.
    pub event_type: String,
    /// The wallet whose events go out in order (events about no wallet, such as an agent's,
    /// go out in order among themselves).
    pub wallet_id: Option<WalletId>,
    /// The transaction the event is about, if it is about one.
    pub transaction_id: Option<TransactionId>,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// The status code of the last answer, if there was one.
    pub last_status_code: Option<u16>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// When it is tried next (while pending).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the event was placed for it.
    pub created_at: DateTime<Utc>,
    /// When it was delivered or given up.
    pub finished_at: Option<DateTime<Utc>>,
}

/// Whether an address is one a webhook may be sent to: not loopback, private, link-local,
/// shared (CGNAT), documentation, benchmarking, multicast, broadcast or unspecified, in IPv4
/// or IPv6 (an IPv4-mapped IPv6 address is judged as its IPv4 address).
#[must_use]
pub fn is_public_ip(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_ip(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8))
        }
    }
}

/// Why a webhook URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not an absolute `https://` URL (or `http://` where private networks are allowed), too
    /// long, with spaces or control characters, credentials, or no host.
    #[error(
        "the URL must be an absolute https:// URL of at most 2048 characters, with a host and no credentials"
    )]
    Malformed,
    /// The host is a private, loopback or otherwise non-public address or name.
    #[error("the URL's host is not a public address (private networks are not allowed)")]
    NotPublic,
}

/// Checks a webhook URL as far as it can be checked without resolving it: its shape, and a
/// host that is an address or a local name must be public unless `allow_private`. (Names are
/// resolved, and their addresses checked, at every delivery.)
///
/// # Errors
/// [`UrlError`] says why it was refused.
pub fn check_url(url: &str, allow_private: bool) -> Result<(), UrlError> {
    if url.len() > MAX_URL_LEN || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlError::Malformed);
    }
    let rest = if let Some(r) = url.strip_prefix("https://") {
        r
    } else if allow_private && let Some(r) = url.strip_prefix("http://") {
        r
    } else {
        return Err(UrlError::Malformed);
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(UrlError::Malformed);
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        let (inside, after) = v6.split_once(']').ok_or(UrlError::Malformed)?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(valid_port)) {
            return Err(UrlError::Malformed);
        }
        let ip: std::net::Ipv6Addr = inside.parse().map_err(|_| UrlError::Malformed)?;
        return if allow_private || is_public_ip(ip.into()) {
            Ok(())
        } else {
            Err(UrlError::NotPublic)
        };
    } else {
        match authority.rsplit_once(':') {
            Some((h, port)) if valid_port(port) => h,
            Some(_) => return Err(UrlError::Malformed),
            None => authority,
        }
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(UrlError::Malformed);
    }
    if allow_private {
        return Ok(());
    }
    if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
        return if is_public_ip(ip.into()) {
            Ok(())
        } else {
            Err(UrlError::NotPublic)
        };
    }
    let local = host == "localhost"
        || [".localhost", ".local", ".internal", ".lan", ".home.arpa"]
            .iter()
            .any(|s| host.ends_with(s))
        || !host.contains('.');
    if local {
        Err(UrlError::NotPublic)
    } else {
        Ok(())
    }
}

fn valid_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok_and(|n| n > 0)
}

/// HMAC-SHA256 (RFC 2104), the signature's primitive.
#[must_use]
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0_u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The `WAIaaS-Signature` header for `body` sent at `timestamp` (Unix seconds).
#[must_use]
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &message))
    )
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header is not `t=<unix>,v1=<hex>[,v1=<hex>…]`.
    #[error("the signature header is malformed")]
    Malformed,
    /// The timestamp is further from now than the tolerance (a replayed request).
    #[error("the signature's timestamp is outside the tolerance")]
    Expired,
    /// No `v1` signature matches the body.
    #[error("no signature matches the body")]
    Mismatch,
}

/// Verifies a `WAIaaS-Signature` header: its timestamp within `tolerance` of `now`, and one
/// of its `v1` signatures the HMAC-SHA256 of `"<t>.<body>"` under `secret` (several `v1`
/// appear while a secret is being rotated). Compares in constant time.
///
/// ```
/// use waiaas_domain::webhooks::{sign, verify_signature};
/// let body = br#"{"id":1,"type":"transaction.completed"}"#;
/// let header = sign("whsec_test", 1_700_000_000, body);
/// let now = chrono::DateTime::from_timestamp(1_700_000_010, 0).unwrap();
/// assert!(verify_signature("whsec_test", &header, body, std::time::Duration::from_secs(300), now).is_ok());
/// assert!(verify_signature("whsec_other", &header, body, std::time::Duration::from_secs(300), now).is_err());
/// ```
///
/// # Errors
/// [`SignatureError`] says why it was refused.
pub fn verify_signature(
    secret: &str,
    header: &str,
    body: &[u8],
    tolerance: std::time::Duration,
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match k {
            "t" => timestamp = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            "v1" => signatures.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let age = now.timestamp().abs_diff(timestamp);
    if age > tolerance.as_secs() {
        return Err(SignatureError::Expired);
    }
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    let expected = hmac_sha256(secret.as_bytes(), &message);
    let matches = signatures.iter().any(|s| {
        s.len() == expected.len()
            && s.iter().zip(expected).fold(0, |acc, (a, b)| acc | (a ^ b)) == 0
    });
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_https_urls_pass_unless_private_networks_are_allowed() {
        for ok in [
            "https://hooks.example.com/waiaas",
            "https://hooks.example.com:8443/x?y=1",
            "https://93.184.216.34/hook",
            "https://[2606:2800:220:1:248:1893:25c8:1946]/",
        ] {
            assert_eq!(check_url(ok, false), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("http://hooks.example.com/", UrlError::Malformed),
            ("https://", UrlError::Malformed),
            ("https://user:pw@hooks.example.com/", UrlError::Malformed),
            ("https://hooks.example.com:99999/", UrlError::Malformed),
            ("https://hooks example.com/", UrlError::Malformed),
            ("ftp://hooks.example.com/", UrlError::Malformed),
            ("https://127.0.0.1/", UrlError::NotPublic),
            ("https://10.1.2.3:8080/", UrlError::NotPublic),
            (
                "https://169.254.169.254/latest/meta-data",
                UrlError::NotPublic,
            ),
            ("https://100.64.0.1/", UrlError::NotPublic),
            ("https://[::1]/", UrlError::NotPublic),
            ("https://[fd00::1]/", UrlError::NotPublic),
            ("https://[::ffff:192.168.0.1]/", UrlError::NotPublic),
            ("https://localhost/", UrlError::NotPublic),
            ("https://metadata.google.internal/", UrlError::NotPublic),
            ("https://intranet/", UrlError::NotPublic),
        ] {
            assert_eq!(check_url(bad, false), Err(why), "{bad}");
        }
        assert_eq!(check_url("http://127.0.0.1:9000/hook", true), Ok(()));
        assert_eq!(check_url("http://localhost:9000/hook", true), Ok(()));
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn a_signature_verifies_only_with_its_secret_body_and_time() {
        let body = b"{\"id\":7}";
        let header = sign("whsec_a", 1_000, body);
        let at = |s| DateTime::from_timestamp(s, 0).unwrap();
        let five = std::time::Duration::from_secs(300);
        assert_eq!(
            verify_signature("whsec_a", &header, body, five, at(1_100)),
            Ok(())
        );
        assert_eq!(
            verify_signature("whsec_b", &header, body, five, at(1_100)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature("whsec_a", &header, b"{\"id\":8}", five, at(1_100)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature("whsec_a", &header, body, five, at(2_000)),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            verify_signature("whsec_a", "v1=zz", body, five, at(1_000)),
            Err(SignatureError::Malformed)
        );
        // During a rotation both signatures are sent; either secret verifies.
        let other = sign("whsec_b", 1_000, body);
        let both = format!("{header},v1={}", other.split_once("v1=").unwrap().1);
        assert_eq!(
            verify_signature("whsec_b", &both, body, five, at(1_000)),
            Ok(())
        );
    }
}
