//! Mandates: an owner's pre-approval of what an agent may spend from one wallet without
//! asking each time (a payee, an amount per use, a number of uses, a total, an expiry).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{MandateId, OwnerId, WalletId};
use crate::money::Money;
use crate::values::{AssetCode, Counterparty};

/// A mandate as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mandate {
    /// Identity.
    pub id: MandateId,
    /// The wallet it lets the agent spend from.
    pub wallet_id: WalletId,
    /// The wallet's owner, who issued it.
    pub owner_id: OwnerId,
    /// The wallet's asset.
    pub asset: AssetCode,
    /// The most one use may move.
    pub max_amount: Money,
    /// The most all uses together may move; `None`: no total.
    pub total_amount: Option<Money>,
    /// What is left of the total.
    pub remaining: Option<Money>,
    /// How many uses it allows.
    pub max_uses: u32,
    /// How many are left.
    pub uses_left: u32,
    /// The only payee it covers; `None`: any payee the wallet's rules allow.
    pub payee: Option<Counterparty>,
    /// After this it covers nothing.
    pub expires_at: DateTime<Utc>,
    /// When the owner revoked it.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it last changed (a use, a revocation).
    pub updated_at: DateTime<Utc>,
}

/// Where a mandate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MandateStatus {
    /// It covers spends.
    Active,
    /// Its uses or its total are used up.
    Exhausted,
    /// Past its expiry.
    Expired,
    /// Revoked by the owner.
    Revoked,
}

impl MandateStatus {
    /// The reported name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Exhausted => "exhausted",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// Why a mandate does not cover a spend: the spend is refused (nothing is recorded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MandateRefusal {
    /// No such mandate for the paying wallet.
    #[error("no such mandate for this wallet")]
    NotFound,
    /// The owner revoked it.
    #[error("the mandate was revoked")]
    Revoked,
    /// Past its expiry.
    #[error("the mandate expired at {0}")]
    Expired(DateTime<Utc>),
    /// The spend goes to another payee than the one it names.
    #[error("the mandate covers payments to {0} only")]
    PayeeMismatch(Counterparty),
    /// The amount, the uses or the total are exceeded; names which.
    #[error("{0}")]
    Exceeded(String),
}

impl MandateRefusal {
    /// The stable code of the refusal.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "mandate_not_found",
            Self::Revoked => "mandate_revoked",
            Self::Expired(_) => "mandate_expired",
            Self::PayeeMismatch(_) => "mandate_payee_mismatch",
            Self::Exceeded(_) => "mandate_exceeded",
        }
    }
}

impl Mandate {
    /// Where it stands at `now`.
    #[must_use]
    pub fn status_at(&self, now: DateTime<Utc>) -> MandateStatus {
        if self.revoked_at.is_some() {
            MandateStatus::Revoked
        } else if self.expires_at <= now {
            MandateStatus::Expired
        } else if self.uses_left == 0 || self.remaining.is_some_and(Money::is_zero) {
            MandateStatus::Exhausted
        } else {
            MandateStatus::Active
        }
    }

    /// Whether it covers a spend of `amount` to `to` at `now`: the pure check, run under
    /// the mandate's row lock.
    ///
    /// # Errors
    /// The first reason it does not, in this order: revoked, expired, payee, uses, amount
    /// per use, total.
    pub fn covers(
        &self,
        amount: Money,
        to: &Counterparty,
        now: DateTime<Utc>,
    ) -> Result<(), MandateRefusal> {
        if self.revoked_at.is_some() {
            return Err(MandateRefusal::Revoked);
        }
        if self.expires_at <= now {
            return Err(MandateRefusal::Expired(self.expires_at));
        }
        if let Some(payee) = &self.payee
            && payee != to
        {
            return Err(MandateRefusal::PayeeMismatch(payee.clone()));
        }
        if self.uses_left == 0 {
            return Err(MandateRefusal::Exceeded(format!(
                "the mandate's {} uses are used up (max_uses)",
                self.max_uses
            )));
        }
        if amount > self.max_amount {
            return Err(MandateRefusal::Exceeded(format!(
                "{amount} is above the mandate's {} per use (max_amount)",
                self.max_amount
            )));
        }
        if let Some(left) = self.remaining
            && amount > left
        {
            return Err(MandateRefusal::Exceeded(format!(
                "{amount} is above the {left} left of the mandate's total (total_amount)"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::Destination;

    fn mandate() -> Mandate {
        let now = Utc::now();
        Mandate {
            id: MandateId::new(),
            wallet_id: WalletId::new(),
            owner_id: OwnerId::new(),
            asset: AssetCode::parse("USD").unwrap(),
            max_amount: Money::new(100).unwrap(),
            total_amount: Some(Money::new(250).unwrap()),
            remaining: Some(Money::new(150).unwrap()),
            max_uses: 5,
            uses_left: 2,
            payee: Some(Counterparty::External(Destination::parse("shop").unwrap())),
            expires_at: now + chrono::Duration::hours(1),
            revoked_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn a_mandate_covers_only_what_it_names_and_says_why_not() {
        let m = mandate();
        let shop = Counterparty::External(Destination::parse("shop").unwrap());
        let other = Counterparty::External(Destination::parse("other").unwrap());
        let now = Utc::now();
        let money = |v| Money::new(v).unwrap();
        assert_eq!(m.covers(money(100), &shop, now), Ok(()));
        assert_eq!(m.status_at(now), MandateStatus::Active);
        assert_eq!(
            m.covers(money(10), &other, now).unwrap_err().code(),
            "mandate_payee_mismatch"
        );
        let e = m.covers(money(101), &shop, now).unwrap_err();
        assert!(e.to_string().contains("max_amount"), "{e}");
        let low = Mandate {
            remaining: Some(money(40)),
            ..m.clone()
        };
        assert!(
            low.covers(money(41), &shop, now)
                .unwrap_err()
                .to_string()
                .contains("total_amount")
        );
        let used = Mandate {
            uses_left: 0,
            ..m.clone()
        };
        assert!(
            used.covers(money(1), &shop, now)
                .unwrap_err()
                .to_string()
                .contains("max_uses")
        );
        assert_eq!(used.status_at(now), MandateStatus::Exhausted);
        let late = now + chrono::Duration::hours(2);
        assert_eq!(
            m.covers(money(1), &shop, late).unwrap_err().code(),
            "mandate_expired"
        );
        assert_eq!(m.status_at(late), MandateStatus::Expired);
        let revoked = Mandate {
            revoked_at: Some(now),
            ..m
        };
        assert_eq!(
            revoked.covers(money(1), &shop, now).unwrap_err().code(),
            "mandate_revoked"
        );
        assert_eq!(revoked.status_at(now), MandateStatus::Revoked);
    }
}
