//! The crate's error, fred's errors sorted into it, and its translation into the ports' errors.

use fred::error::{Error as FredError, ErrorKind};
use waiaas_domain::ports::{CacheError, EventBusError, LockError, RateLimitError};

/// A Redis call failed.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// No answer within the command timeout. The command may still run later on the server
    /// if it had already been written to the connection.
    #[error("redis timed out")]
    Timeout,
    /// Redis is unreachable, disconnected, loading, or the cluster cannot route the key.
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    /// Redis answered with an error (a script error, a wrong type, an unexpected reply).
    #[error("redis command failed: {0}")]
    Command(String),
    /// The call was refused before reaching Redis (for example a zero TTL).
    #[error("{0}")]
    Invalid(String),
}

/// Server replies that mean "not now" rather than "wrong".
const TRANSIENT_REPLIES: &[&str] = &[
    "LOADING",
    "BUSY",
    "MASTERDOWN",
    "READONLY",
    "TRYAGAIN",
    "CLUSTERDOWN",
    "MISCONF",
    "NOREPLICAS",
];

impl From<FredError> for RedisError {
    fn from(e: FredError) -> Self {
        let details = e.details();
        match e.kind() {
            ErrorKind::Timeout => Self::Timeout,
            ErrorKind::IO
            | ErrorKind::Canceled
            | ErrorKind::Routing
            | ErrorKind::Cluster
            | ErrorKind::Backpressure
            | ErrorKind::Sentinel
            | ErrorKind::Auth => Self::Unavailable(details.to_owned()),
            ErrorKind::Unknown
                if TRANSIENT_REPLIES.iter().any(|p| details.starts_with(p))
                    // fred's own words when a command cannot be written to any connection.
                    || details.contains("write attempts")
                    || details.contains("not initialized")
                    || details.contains("Failed to route")
                    || details.contains("Connection") =>
            {
                Self::Unavailable(details.to_owned())
            }
            _ => Self::Command(format!("{:?}: {details}", e.kind())),
        }
    }
}

impl From<RedisError> for CacheError {
    fn from(e: RedisError) -> Self {
        match e {
            RedisError::Timeout => Self::Timeout,
            RedisError::Unavailable(msg) => Self::Unavailable(msg),
            other @ (RedisError::Command(_) | RedisError::Invalid(_)) => {
                Self::Unknown(anyhow::Error::new(other))
            }
        }
    }
}

impl From<RedisError> for RateLimitError {
    fn from(e: RedisError) -> Self {
        Self(e.to_string())
    }
}

impl From<RedisError> for LockError {
    fn from(e: RedisError) -> Self {
        Self(e.to_string())
    }
}

impl From<RedisError> for EventBusError {
    fn from(e: RedisError) -> Self {
        Self(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fred_errors_are_sorted_by_what_the_caller_can_do() {
        let timeout = RedisError::from(FredError::new(ErrorKind::Timeout, "Request timed out."));
        assert!(matches!(timeout, RedisError::Timeout));
        let closed = RedisError::from(FredError::new(ErrorKind::Canceled, "closed"));
        assert!(matches!(closed, RedisError::Unavailable(_)));
        let loading = RedisError::from(FredError::new(ErrorKind::Unknown, "LOADING wait"));
        assert!(matches!(loading, RedisError::Unavailable(_)));
        let script = RedisError::from(FredError::new(ErrorKind::Unknown, "ERR bad script"));
        assert!(matches!(script, RedisError::Command(_)));
    }

    #[test]
    fn a_timeout_stays_a_timeout_for_the_cache() {
        assert!(matches!(
            CacheError::from(RedisError::Timeout),
            CacheError::Timeout
        ));
        assert!(matches!(
            CacheError::from(RedisError::Unavailable("down".into())),
            CacheError::Unavailable(_)
        ));
    }
}
