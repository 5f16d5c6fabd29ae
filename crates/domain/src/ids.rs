//! Typed identifiers: one newtype per entity so a wallet id can never be passed as an agent id.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The error returned when a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {kind} id (expected a UUID)")]
pub struct InvalidId {
    /// Which kind of id was expected.
    pub kind: &'static str,
    /// The rejected input, cut to a printable length.
    pub value: String,
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered (UUID v7) identifier.
            #[must_use]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an identifier read from storage.
            #[must_use]
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The underlying UUID.
            #[must_use]
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            /// Parses a UUID string.
            ///
            /// # Errors
            /// [`InvalidId`] when the text is not a UUID.
            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                Uuid::parse_str(s).map(Self).map_err(|_| InvalidId {
                    kind: $kind,
                    value: s.chars().take(64).collect(),
                })
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

id_type!(
    /// Identifies an owner: the person or company that registers agents.
    OwnerId,
    "owner"
);
id_type!(
    /// Identifies an AI agent.
    AgentId,
    "agent"
);
id_type!(
    /// Identifies a wallet.
    WalletId,
    "wallet"
);
id_type!(
    /// Identifies a transaction (deposit, transfer or payment).
    TransactionId,
    "transaction"
);
id_type!(
    /// Identifies an API key.
    ApiKeyId,
    "api key"
);
id_type!(
    /// Identifies a session.
    SessionId,
    "session"
);
id_type!(
    /// Identifies an audit entry.
    AuditId,
    "audit entry"
);
id_type!(
    /// Identifies a notification.
    NotificationId,
    "notification"
);
id_type!(
    /// Identifies a mandate: an owner's pre-approval of an agent's spending.
    MandateId,
    "mandate"
);
id_type!(
    /// Identifies a webhook endpoint.
    WebhookId,
    "webhook"
);
id_type!(
    /// Identifies one delivery of one event to one webhook endpoint.
    DeliveryId,
    "delivery"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_round_trips_through_its_text() {
        let id = WalletId::new();
        assert_eq!(WalletId::parse(&id.to_string()), Ok(id));
    }

    #[test]
    fn a_non_uuid_is_rejected_naming_the_kind() {
        let err = AgentId::parse("not-a-uuid").unwrap_err();
        assert_eq!(err.kind, "agent");
        assert!(err.to_string().contains("agent id"));
    }

    #[test]
    fn new_ids_are_time_ordered() {
        let a = TransactionId::new();
        let b = TransactionId::new();
        assert!(a < b);
    }
}
