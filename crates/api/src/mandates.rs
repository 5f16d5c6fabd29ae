//! Mandates: pre-approvals of an agent's spending.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
#[cfg(feature = "domain")]
use waiaas_domain::{Counterparty, Mandate, Money};

/// `POST /v1/wallets/{id}/mandates`: at most one of `to_wallet_id` and `destination`
/// (neither: any payee the wallet's rules allow).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MandateBody {
    /// The most one use may move (minor units, above zero).
    #[serde(deserialize_with = "crate::whole::i64")]
    pub max_amount: i64,
    /// The most all uses together may move (minor units, above zero); no total when absent.
    #[serde(default, deserialize_with = "crate::whole::opt_i64")]
    pub total_amount: Option<i64>,
    /// How many uses: 1 to 10000; 1 when absent.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10_000))]
    #[serde(default, deserialize_with = "crate::whole::opt_u32")]
    pub max_uses: Option<u32>,
    /// The only wallet it may pay (another wallet of the owner, same asset).
    pub to_wallet_id: Option<Uuid>,
    /// The only external destination it may pay.
    pub destination: Option<String>,
    /// When it stops covering anything: in the future, at most a year ahead (RFC 3339).
    pub expires_at: DateTime<Utc>,
}

/// `GET /v1/wallets/{id}/mandates` query.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct MandateQuery {
    /// At most this many mandates, newest first (clamped to 1–200; default 50).
    pub limit: Option<u32>,
}

/// A mandate as it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct MandateDto {
    /// Identity.
    pub id: Uuid,
    /// `active`, `exhausted` (uses or total used up), `expired` or `revoked`.
    #[cfg_attr(feature = "openapi", schema(example = "active"))]
    pub status: String,
    /// The wallet it lets the agent spend from.
    pub wallet_id: Uuid,
    /// Its asset.
    pub asset: String,
    /// The most one use may move.
    pub max_amount: i64,
    /// The most all uses together may move; `null`: no total.
    pub total_amount: Option<i64>,
    /// What is left of the total; `null`: no total.
    pub remaining: Option<i64>,
    /// How many uses it allows.
    pub max_uses: u32,
    /// How many are left.
    pub uses_left: u32,
    /// The only wallet it may pay, if it names one.
    pub to_wallet_id: Option<Uuid>,
    /// The only destination it may pay, if it names one.
    pub destination: Option<String>,
    /// When it stops covering anything.
    pub expires_at: DateTime<Utc>,
    /// When the owner revoked it.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

#[cfg(feature = "domain")]
impl MandateDto {
    /// The mandate as it stands at `now`.
    pub fn at(m: Mandate, now: DateTime<Utc>) -> Self {
        let (to_wallet_id, destination) = match &m.payee {
            Some(Counterparty::Wallet(w)) => (Some((*w).into()), None),
            Some(Counterparty::External(d)) => (None, Some(d.as_str().to_owned())),
            None => (None, None),
        };
        Self {
            id: m.id.into(),
            status: m.status_at(now).as_str().to_owned(),
            wallet_id: m.wallet_id.into(),
            asset: m.asset.as_str().to_owned(),
            max_amount: m.max_amount.minor_units(),
            total_amount: m.total_amount.map(Money::minor_units),
            remaining: m.remaining.map(Money::minor_units),
            max_uses: m.max_uses,
            uses_left: m.uses_left,
            to_wallet_id,
            destination,
            expires_at: m.expires_at,
            revoked_at: m.revoked_at,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}
