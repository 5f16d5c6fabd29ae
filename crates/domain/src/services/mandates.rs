//! Mandates: an owner pre-approves what an agent may spend from one wallet.

use chrono::{DateTime, Duration, Utc};

use super::Services;
use crate::errors::AccessError;
use crate::ids::{MandateId, WalletId};
use crate::model::{AuditContext, Mandate, Principal};
use crate::money::Money;
use crate::values::{Counterparty, Destination};

/// The most uses one mandate may allow.
pub const MAX_MANDATE_USES: u32 = 10_000;
/// The latest a mandate may expire: a year ahead.
pub const MAX_MANDATE_LIFETIME_DAYS: i64 = 366;

/// An owner's mandate, as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MandateRequest {
    /// The wallet it lets the agent spend from.
    pub wallet_id: WalletId,
    /// The most one use may move (minor units, above zero).
    pub max_amount: i64,
    /// The most all uses together may move.
    pub total_amount: Option<i64>,
    /// How many uses (1 when absent).
    pub max_uses: Option<u32>,
    /// The only wallet it may pay.
    pub to_wallet_id: Option<WalletId>,
    /// The only destination it may pay.
    pub destination: Option<String>,
    /// When it stops covering anything.
    pub expires_at: DateTime<Utc>,
}

impl Services {
    /// Issues a mandate on one of the owner's wallets.
    ///
    /// # Errors
    /// `Forbidden` for an agent, `NotFound` for a wallet (or payee wallet) not the owner's,
    /// `Invalid` for amounts, uses, payee or expiry out of bounds.
    pub async fn create_mandate(
        &self,
        principal: &Principal,
        req: MandateRequest,
        audit: &AuditContext,
    ) -> Result<Mandate, AccessError> {
        let Principal::Owner { owner_id } = principal else {
            return Err(AccessError::Forbidden(
                "only the wallet's owner issues mandates",
            ));
        };
        let wallet = self.visible_wallet(principal, req.wallet_id).await?;
        let max_amount = Money::positive(req.max_amount)
            .map_err(|_| AccessError::Invalid("`max_amount` must be above zero"))?;
        let total_amount = req
            .total_amount
            .map(Money::positive)
            .transpose()
            .map_err(|_| AccessError::Invalid("`total_amount` must be above zero"))?;
        let max_uses = req.max_uses.unwrap_or(1);
        if !(1..=MAX_MANDATE_USES).contains(&max_uses) {
            return Err(AccessError::Invalid(
                "`max_uses` must be between 1 and 10000",
            ));
        }
        let payee = match (req.to_wallet_id, req.destination.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(AccessError::Invalid(
                    "give at most one of `to_wallet_id` and `destination`",
                ));
            }
            (Some(to), None) => {
                if to == req.wallet_id {
                    return Err(AccessError::Invalid("a mandate cannot pay its own wallet"));
                }
                let target = self.visible_wallet(principal, to).await?;
                if target.asset != wallet.asset {
                    return Err(AccessError::Invalid("the payee wallet holds another asset"));
                }
                Some(Counterparty::Wallet(to))
            }
            (None, Some(d)) => Some(Counterparty::External(Destination::parse(d).map_err(
                |_| AccessError::Invalid("`destination` is not a valid destination"),
            )?)),
            (None, None) => None,
        };
        let now = self.ports.clock.now();
        if req.expires_at <= now || req.expires_at > now + Duration::days(MAX_MANDATE_LIFETIME_DAYS)
        {
            return Err(AccessError::Invalid(
                "`expires_at` must be in the future and at most a year ahead",
            ));
        }
        let mandate = Mandate {
            id: MandateId::new(),
            wallet_id: req.wallet_id,
            owner_id: *owner_id,
            asset: wallet.asset,
            max_amount,
            total_amount,
            remaining: total_amount,
            max_uses,
            uses_left: max_uses,
            payee,
            expires_at: req.expires_at,
            revoked_at: None,
            created_at: now,
            updated_at: now,
        };
        self.ports.policies.create_mandate(&mandate, audit).await?;
        self.ports.feed.committed();
        Ok(mandate)
    }

    /// A mandate of a wallet the principal may see (its owner or the agent holding it).
    ///
    /// # Errors
    /// `NotFound` otherwise.
    pub async fn get_mandate(
        &self,
        principal: &Principal,
        id: MandateId,
    ) -> Result<Mandate, AccessError> {
        let mandate = self
            .ports
            .policies
            .mandate(id)
            .await?
            .ok_or(AccessError::NotFound)?;
        self.visible_wallet(principal, mandate.wallet_id).await?;
        Ok(mandate)
    }

    /// A wallet's mandates, newest first.
    ///
    /// # Errors
    /// `NotFound` when the wallet is not visible to the principal.
    pub async fn list_mandates(
        &self,
        principal: &Principal,
        wallet_id: WalletId,
        limit: Option<u32>,
    ) -> Result<Vec<Mandate>, AccessError> {
        self.visible_wallet(principal, wallet_id).await?;
        Ok(self
            .ports
            .policies
            .mandates(wallet_id, super::page_limit(limit))
            .await?)
    }

    /// Revokes a mandate (the owner): no spend uses it after this returns. Revoking it again
    /// answers it as it is.
    ///
    /// # Errors
    /// `Forbidden` for an agent, `NotFound` when it is not the owner's.
    pub async fn revoke_mandate(
        &self,
        principal: &Principal,
        id: MandateId,
        audit: &AuditContext,
    ) -> Result<Mandate, AccessError> {
        let Principal::Owner { owner_id } = principal else {
            return Err(AccessError::Forbidden(
                "only the wallet's owner revokes mandates",
            ));
        };
        let revoked = self
            .ports
            .policies
            .revoke_mandate(id, *owner_id, audit)
            .await?
            .ok_or(AccessError::NotFound)?;
        self.ports.feed.committed();
        Ok(revoked)
    }
}
