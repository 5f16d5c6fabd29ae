//! Transactions, their ledger entries and the cursor that pages through them.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Actor;
use crate::ids::{TransactionId, WalletId};
use crate::money::Money;
use crate::policy::Rule;
use crate::values::{AssetCode, Counterparty, Destination, IdempotencyKey, Memo};

/// What a transaction does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionKind {
    /// Money enters a wallet from outside (credited by its owner).
    Deposit,
    /// Money moves between two wallets of the platform.
    Transfer,
    /// Money leaves a wallet to an external destination.
    Payment,
    /// The owner moves the whole balance of one of its wallets (a closed one, typically) to
    /// another of its wallets of the same asset.
    Sweep,
    /// An agent reserves an amount of a wallet for a payment whose final amount it does not
    /// know yet; a capture (a transfer or payment pointing back at it) spends at most that.
    Hold,
}

impl TransactionKind {
    /// The stored text.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Deposit => "deposit",
            Self::Transfer => "transfer",
            Self::Payment => "payment",
            Self::Sweep => "sweep",
            Self::Hold => "hold",
        }
    }

    /// Parses the stored text.
    #[must_use]
    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "deposit" => Some(Self::Deposit),
            "transfer" => Some(Self::Transfer),
            "payment" => Some(Self::Payment),
            "sweep" => Some(Self::Sweep),
            "hold" => Some(Self::Hold),
            _ => None,
        }
    }
}

/// Where a transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionStatus {
    /// Waiting for the owner: no money has moved.
    PendingApproval,
    /// Posted: the ledger entries and balances are written.
    Completed,
    /// The owner rejected it: no money moved.
    Rejected,
    /// The wallet's policy denied it: no money moved.
    Denied,
    /// It could not be posted (insufficient funds): no money moved.
    Failed,
    /// A hold: its amount is reserved (counted in the wallet's `held`).
    Held,
    /// A hold that was captured (`captured` of its amount moved; the rest released).
    Captured,
    /// A hold voided by its agent or owner: everything released.
    Voided,
    /// A hold that reached its expiry uncaptured: everything released.
    Expired,
}

impl TransactionStatus {
    /// The stored text.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PendingApproval => "pending_approval",
            Self::Completed => "completed",
            Self::Rejected => "rejected",
            Self::Denied => "denied",
            Self::Failed => "failed",
            Self::Held => "held",
            Self::Captured => "captured",
            Self::Voided => "voided",
            Self::Expired => "expired",
        }
    }

    /// Parses the stored text.
    #[must_use]
    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "pending_approval" => Some(Self::PendingApproval),
            "completed" => Some(Self::Completed),
            "rejected" => Some(Self::Rejected),
            "denied" => Some(Self::Denied),
            "failed" => Some(Self::Failed),
            "held" => Some(Self::Held),
            "captured" => Some(Self::Captured),
            "voided" => Some(Self::Voided),
            "expired" => Some(Self::Expired),
            _ => None,
        }
    }
}

/// The owner's answer to a transaction that waited for approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerDecision {
    /// Approved: posted if funds and policy still allowed, else denied or failed.
    Approved,
    /// Rejected: no money moved.
    Rejected,
}

impl OwnerDecision {
    /// The stored text.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }

    /// Parses the stored text.
    #[must_use]
    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "approved" => Some(Self::Approved),
            "rejected" => Some(Self::Rejected),
            _ => None,
        }
    }
}

/// What is left of a wallet's budgets after a decision, and of its agent's and owner's.
/// `None` means the rule (or the budget) is not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Budget {
    /// Minor units that may still be spent today (UTC) under the daily limit.
    pub daily_remaining: Option<Money>,
    /// Transactions still allowed in the rolling hour.
    pub hourly_remaining: Option<u32>,
    /// Minor units that may still be spent this month (UTC) under the monthly limit.
    #[serde(default)]
    pub monthly_remaining: Option<Money>,
    /// What is left of the agent's budget in the asset, when it has one.
    #[serde(default)]
    pub agent: Option<LevelBudget>,
    /// What is left of the owner's budget in the asset, when it has one.
    #[serde(default)]
    pub owner: Option<LevelBudget>,
}

/// What is left of an agent's or owner's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LevelBudget {
    /// Minor units that may still be spent today (UTC), over every wallet.
    pub daily_remaining: Option<Money>,
    /// Minor units that may still be spent this month (UTC), over every wallet.
    pub monthly_remaining: Option<Money>,
}

/// A deposit, transfer or payment, with the decision that was taken on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// Identity.
    pub id: TransactionId,
    /// What it does.
    pub kind: TransactionKind,
    /// Where it stands.
    pub status: TransactionStatus,
    /// The asset moved.
    pub asset: AssetCode,
    /// The amount moved, in minor units.
    pub amount: Money,
    /// The paying wallet (none for a deposit).
    pub from_wallet_id: Option<WalletId>,
    /// The receiving wallet (none for a payment).
    pub to_wallet_id: Option<WalletId>,
    /// The external destination of a payment.
    pub destination: Option<Destination>,
    /// The client's note.
    pub memo: Option<Memo>,
    /// Client metadata (a JSON object).
    pub metadata: serde_json::Value,
    /// Who asked for it.
    pub initiated_by: Actor,
    /// The idempotency key it was posted with.
    pub idempotency_key: Option<IdempotencyKey>,
    /// The rule that decided, when a policy rule did.
    pub rule: Option<Rule>,
    /// The level whose rule denied it (`wallet`, `agent` or `owner`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<crate::policy::Level>,
    /// Why it was denied, failed, held or rejected.
    pub reason: Option<String>,
    /// The budgets left after the decision.
    pub budget: Budget,
    /// The owner's answer, when it waited for approval and was decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<OwnerDecision>,
    /// The mandate that pre-approved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mandate_id: Option<crate::ids::MandateId>,
    /// When it stops waiting for the owner's approval (its wallet's `approval_timeout_s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_deadline: Option<DateTime<Utc>>,
    /// What only holds and captures have.
    #[serde(default, skip_serializing_if = "HoldFacts::is_empty")]
    pub hold: HoldFacts,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
    /// When its status last changed.
    pub updated_at: DateTime<Utc>,
}

/// The columns of a hold (`kind = hold`), and the hold a capture spends. Empty on every
/// other transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HoldFacts {
    /// A hold: when it expires if not captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// A hold: when its amount was reserved (it counts in that day's spend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_at: Option<DateTime<Utc>>,
    /// A hold: how much of it was captured, once it ended (0 when voided or expired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured: Option<Money>,
    /// A capture: the hold it spends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_id: Option<TransactionId>,
}

impl HoldFacts {
    /// No hold fact is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl Transaction {
    /// Where a transaction stands at `now`: a hold past its expiry, or a transaction past its
    /// approval deadline, is `expired` even before the sweeper got to it. Otherwise the
    /// status as stored.
    #[must_use]
    pub fn status_at(&self, now: DateTime<Utc>) -> TransactionStatus {
        match (self.status, self.hold.expires_at, self.approval_deadline) {
            (TransactionStatus::Held, Some(at), _)
            | (TransactionStatus::PendingApproval, _, Some(at))
                if at <= now =>
            {
                TransactionStatus::Expired
            }
            (status, _, _) => status,
        }
    }

    /// The receiving side as a counterparty (none for a deposit).
    #[must_use]
    pub fn counterparty(&self) -> Option<Counterparty> {
        match (&self.to_wallet_id, &self.destination) {
            (Some(w), _) => Some(Counterparty::Wallet(*w)),
            (None, Some(d)) => Some(Counterparty::External(d.clone())),
            (None, None) => None,
        }
    }

    /// The wallets this transaction touches.
    #[must_use]
    pub fn wallets(&self) -> Vec<WalletId> {
        self.from_wallet_id
            .into_iter()
            .chain(self.to_wallet_id)
            .collect()
    }
}

/// One side of a posted transaction. The entries of one transaction sum to zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The transaction.
    pub transaction_id: TransactionId,
    /// The wallet, or none for the outside world.
    pub wallet_id: Option<WalletId>,
    /// The account: `wallet:<id>`, `system:deposits` (money from outside) or
    /// `external:<destination>` (money paid out).
    pub account: String,
    /// Signed minor units: positive is a credit.
    pub amount: i64,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// A position in a wallet's transaction history, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxCursor {
    /// The creation time of the last item seen.
    pub created_at: DateTime<Utc>,
    /// Its id, breaking ties.
    pub id: TransactionId,
}

/// The error returned for a malformed cursor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the cursor is not one this service returned")]
pub struct InvalidCursor;

/// 0001-01-01T00:00:00Z in microseconds since the Unix epoch.
const MIN_CURSOR_MICROS: i64 = -62_135_596_800_000_000;
/// 9999-12-31T23:59:59.999999Z in microseconds since the Unix epoch.
const MAX_CURSOR_MICROS: i64 = 253_402_300_799_999_999;

impl TxCursor {
    /// Parses the opaque text returned as `next_cursor`: microseconds since the Unix epoch
    /// (at most 18 digits, so any value fits), `_`, and a hyphenated transaction id. A time
    /// outside the years 1 to 9999 (which no row has, and the database cannot compare
    /// against) is moved to the nearest end of that range: such a cursor starts before every
    /// transaction or after all of them. The OpenAPI document gives this very shape as the
    /// parameter's pattern, so whatever matches it is accepted.
    ///
    /// # Errors
    /// [`InvalidCursor`] when the text does not have that shape.
    pub fn parse(s: &str) -> Result<Self, InvalidCursor> {
        let (micros, id) = s.split_once('_').ok_or(InvalidCursor)?;
        let digits = micros.strip_prefix('-').unwrap_or(micros);
        if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidCursor);
        }
        let micros: i64 = micros.parse().map_err(|_| InvalidCursor)?;
        let micros = micros.clamp(MIN_CURSOR_MICROS, MAX_CURSOR_MICROS);
        let created_at = DateTime::from_timestamp_micros(micros).ok_or(InvalidCursor)?;
        // Only the hyphenated form this service writes (`Uuid` would also take others).
        if id.len() != 36 {
            return Err(InvalidCursor);
        }
        let id = TransactionId::parse(id).map_err(|_| InvalidCursor)?;
        Ok(Self { created_at, id })
    }
}

impl fmt::Display for TxCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.created_at.timestamp_micros(), self.id)
    }
}

/// What a list of transactions is narrowed to: every filter given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxFilter {
    /// Metadata entries the transaction's `metadata` must contain, each key holding this
    /// very string (JSONB containment, served by a GIN index).
    pub metadata: Vec<(String, String)>,
    /// Only transactions in this status.
    pub status: Option<TransactionStatus>,
    /// Only transactions of this kind.
    pub kind: Option<TransactionKind>,
    /// Created at or after this time (see [`clamp_time`]).
    pub from: Option<DateTime<Utc>>,
    /// Created before this time (see [`clamp_time`]).
    pub to: Option<DateTime<Utc>>,
    /// The time statuses are read at: a hold past its expiry is `expired` from then on,
    /// even before the sweeper released it (see [`Transaction::status_at`]).
    pub as_of: Option<DateTime<Utc>>,
}

/// A time moved into the years 1 to 9999: every timestamp this service writes lies there,
/// and the database can compare against all of them, so a bound beyond them selects the same
/// rows as the nearest end.
#[must_use]
pub fn clamp_time(t: DateTime<Utc>) -> DateTime<Utc> {
    let micros = t.timestamp_micros();
    let bound = if micros < MIN_CURSOR_MICROS {
        MIN_CURSOR_MICROS
    } else if micros > MAX_CURSOR_MICROS {
        MAX_CURSOR_MICROS
    } else {
        return t;
    };
    DateTime::from_timestamp_micros(bound).unwrap_or(t)
}

/// Why a filter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidFilter {
    /// Too many metadata entries.
    #[error("at most {MAX_METADATA_FILTERS} metadata filters")]
    TooManyMetadata,
    /// A metadata key or value out of bounds.
    #[error(
        "a metadata filter needs a key of 1 to 100 and a value of at most 500 characters, without control or invisible characters"
    )]
    Metadata,
}

/// The most metadata entries one filter may name.
pub const MAX_METADATA_FILTERS: usize = 10;

impl TxFilter {
    /// Checks the filter's bounds: what can be stored can be asked for, nothing else.
    ///
    /// # Errors
    /// [`InvalidFilter`] naming what is out of bounds.
    pub fn validate(&self) -> Result<(), InvalidFilter> {
        if self.metadata.len() > MAX_METADATA_FILTERS {
            return Err(InvalidFilter::TooManyMetadata);
        }
        let visible = |s: &str| !s.chars().any(crate::text::is_invisible);
        for (key, value) in &self.metadata {
            let key_len = key.chars().count();
            if !(1..=100).contains(&key_len)
                || value.chars().count() > 500
                || !visible(key)
                || !visible(value)
            {
                return Err(InvalidFilter::Metadata);
            }
        }
        Ok(())
    }

    /// The metadata entries as the JSON object they must be contained in, if any are named.
    #[must_use]
    pub fn metadata_object(&self) -> Option<serde_json::Value> {
        (!self.metadata.is_empty()).then(|| {
            serde_json::Value::Object(
                self.metadata
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect(),
            )
        })
    }
}

/// One page of a wallet's transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionPage {
    /// Newest first.
    pub items: Vec<Transaction>,
    /// Where the next page starts, if there is one.
    pub next_cursor: Option<TxCursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let c = TxCursor {
            created_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: TransactionId::new(),
        };
        assert_eq!(TxCursor::parse(&c.to_string()), Ok(c));
        assert_eq!(TxCursor::parse("garbage"), Err(InvalidCursor));
        assert_eq!(TxCursor::parse("12_not-a-uuid"), Err(InvalidCursor));
        let id = TransactionId::new();
        // More digits than any i64 needs, no digits, a sign alone, other id forms.
        for text in [
            format!("-8000000000000000000_{id}"),
            format!("9000000000000000000_{id}"),
            format!("_{id}"),
            format!("-_{id}"),
            format!("+12_{id}"),
            format!("12_{}", id.as_uuid().simple()),
            format!("12_{{{id}}}"),
        ] {
            assert_eq!(TxCursor::parse(&text), Err(InvalidCursor), "{text}");
        }
        // Out of the years 1 to 9999: moved to the nearest end, never refused.
        let before = TxCursor::parse(&format!("-999999999999999999_{id}")).unwrap();
        assert_eq!(before.created_at.timestamp_micros(), MIN_CURSOR_MICROS);
        let after = TxCursor::parse(&format!("999999999999999999_{id}")).unwrap();
        assert_eq!(after.created_at.timestamp_micros(), MAX_CURSOR_MICROS);
        assert!(TxCursor::parse(&format!("-62135596800000000_{id}")).is_ok());
    }

    #[test]
    fn a_filter_is_refused_out_of_bounds_and_its_metadata_is_one_object() {
        let ok = TxFilter {
            metadata: vec![
                ("order".into(), "42".into()),
                ("shop".into(), "acme".into()),
            ],
            ..TxFilter::default()
        };
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(
            ok.metadata_object(),
            Some(serde_json::json!({"order": "42", "shop": "acme"}))
        );
        assert_eq!(TxFilter::default().metadata_object(), None);
        let nul = TxFilter {
            metadata: vec![("order".into(), "4\u{0}2".into())],
            ..TxFilter::default()
        };
        assert_eq!(nul.validate(), Err(InvalidFilter::Metadata));
        let empty_key = TxFilter {
            metadata: vec![(String::new(), "x".into())],
            ..TxFilter::default()
        };
        assert_eq!(empty_key.validate(), Err(InvalidFilter::Metadata));
        let many = TxFilter {
            metadata: (0..11).map(|i| (format!("k{i}"), "v".into())).collect(),
            ..TxFilter::default()
        };
        assert_eq!(many.validate(), Err(InvalidFilter::TooManyMetadata));
        let ancient = DateTime::from_timestamp_micros(MIN_CURSOR_MICROS - 1).unwrap();
        assert_eq!(clamp_time(ancient).timestamp_micros(), MIN_CURSOR_MICROS);
        let now = Utc::now();
        assert_eq!(clamp_time(now), now);
    }

    #[test]
    fn statuses_round_trip_through_their_stored_text() {
        for s in [
            TransactionStatus::PendingApproval,
            TransactionStatus::Completed,
            TransactionStatus::Rejected,
            TransactionStatus::Denied,
            TransactionStatus::Failed,
        ] {
            assert_eq!(TransactionStatus::from_db(s.as_str()), Some(s));
        }
    }
}
