//! Budgets of agents and owners: limits per asset over every wallet below them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;
#[cfg(feature = "domain")]
use waiaas_domain::policy::{BudgetLimits, Budgets};
#[cfg(feature = "domain")]
use waiaas_domain::{AssetCode, Money};

#[cfg(feature = "domain")]
use crate::Invalid;

/// One asset's limits; a limit left out does not restrict.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BudgetLimitsDto {
    /// No single transaction may move more than this (minor units).
    #[serde(default, deserialize_with = "crate::whole::opt_i64")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub max_per_transaction: Option<i64>,
    /// At most this much per UTC day over every wallet (minor units).
    #[serde(default, deserialize_with = "crate::whole::opt_i64")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub daily_limit: Option<i64>,
    /// At most this much per UTC calendar month over every wallet (minor units).
    #[serde(default, deserialize_with = "crate::whole::opt_i64")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub monthly_limit: Option<i64>,
}

/// A budget: the limits per asset code (`{"USD": {"daily_limit": 50000}}`). `PUT` replaces
/// the whole budget: an asset left out loses its limits.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(transparent)]
pub struct BudgetsDto(pub BTreeMap<String, BudgetLimitsDto>);

#[cfg(feature = "domain")]
impl TryFrom<BudgetsDto> for Budgets {
    type Error = Invalid;

    fn try_from(b: BudgetsDto) -> Result<Self, Invalid> {
        let bad = |m: String| Invalid::new("invalid_budget", m);
        b.0.into_iter()
            .map(|(asset, l)| {
                let code = AssetCode::parse(&asset).map_err(|e| bad(format!("`{asset}`: {e}")))?;
                let money = |field: &str, v: Option<i64>| {
                    v.map(Money::new)
                        .transpose()
                        .map_err(|e| bad(format!("`{asset}.{field}`: {e}")))
                };
                Ok((
                    code,
                    BudgetLimits {
                        max_per_transaction: money("max_per_transaction", l.max_per_transaction)?,
                        daily_limit: money("daily_limit", l.daily_limit)?,
                        monthly_limit: money("monthly_limit", l.monthly_limit)?,
                    },
                ))
            })
            .collect()
    }
}

#[cfg(feature = "domain")]
impl From<Budgets> for BudgetsDto {
    fn from(b: Budgets) -> Self {
        let minor = |m: Option<Money>| m.map(Money::minor_units);
        Self(
            b.into_iter()
                .map(|(asset, l)| {
                    (
                        asset.as_str().to_owned(),
                        BudgetLimitsDto {
                            max_per_transaction: minor(l.max_per_transaction),
                            daily_limit: minor(l.daily_limit),
                            monthly_limit: minor(l.monthly_limit),
                        },
                    )
                })
                .collect(),
        )
    }
}
