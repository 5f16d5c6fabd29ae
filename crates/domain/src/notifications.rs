//! Notifications: what owners are told (a transfer waits for approval or was denied, a hold
//! was placed, captured, voided or expired).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{NotificationId, OwnerId, TransactionId, WalletId};

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A transaction waits for the owner's approval.
    ApprovalRequested,
    /// The wallet's policy denied a transaction.
    TransferDenied,
    /// An agent reserved an amount of a wallet (a hold).
    HoldPlaced,
    /// An agent captured a hold.
    HoldCaptured,
    /// A hold was voided: its amount is released.
    HoldVoided,
    /// A hold expired uncaptured: its amount is released.
    HoldExpired,
    /// A transaction waited for approval longer than its wallet's `approval_timeout_s`.
    ApprovalExpired,
    /// A webhook endpoint did not accept an event for 24 hours: its delivery failed.
    WebhookFailed,
}

impl NotificationKind {
    /// The stored text.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ApprovalRequested => "approval_requested",
            Self::TransferDenied => "transfer_denied",
            Self::HoldPlaced => "hold_placed",
            Self::HoldCaptured => "hold_captured",
            Self::HoldVoided => "hold_voided",
            Self::HoldExpired => "hold_expired",
            Self::ApprovalExpired => "approval_expired",
            Self::WebhookFailed => "webhook_failed",
        }
    }

    /// Parses the stored text.
    #[must_use]
    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "approval_requested" => Some(Self::ApprovalRequested),
            "transfer_denied" => Some(Self::TransferDenied),
            "hold_placed" => Some(Self::HoldPlaced),
            "hold_captured" => Some(Self::HoldCaptured),
            "hold_voided" => Some(Self::HoldVoided),
            "hold_expired" => Some(Self::HoldExpired),
            "approval_expired" => Some(Self::ApprovalExpired),
            "webhook_failed" => Some(Self::WebhookFailed),
            _ => None,
        }
    }
}

/// One notification for an owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Identity.
    pub id: NotificationId,
    /// Who is told.
    pub owner_id: OwnerId,
    /// About what.
    pub kind: NotificationKind,
    /// The wallet concerned, if one is (a webhook that failed to deliver an agent's event
    /// concerns none).
    pub wallet_id: Option<WalletId>,
    /// The transaction concerned, if one is.
    pub transaction_id: Option<TransactionId>,
    /// A sentence for the owner.
    pub message: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// When the owner read it.
    pub read_at: Option<DateTime<Utc>>,
}

/// The number of unread notifications, with a version that grows with every change of the
/// owner's notifications (so a cached count can be versioned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadCount {
    /// Unread notifications.
    pub count: u64,
    /// Version of the owner's notifications.
    pub version: i64,
}

/// A page of notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationPage {
    /// Newest first.
    pub items: Vec<Notification>,
    /// Where the next page starts.
    pub next_cursor: Option<NotificationId>,
}
