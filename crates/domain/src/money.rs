//! Money: an amount in integer minor units of one asset, never negative, never a float.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an amount was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The amount is below zero.
    #[error("amount must not be negative (got {0})")]
    Negative(i64),
    /// The amount is zero where a positive amount is required.
    #[error("amount must be greater than zero")]
    Zero,
    /// The result does not fit in 64-bit minor units.
    #[error("amount overflows 64-bit minor units")]
    Overflow,
    /// Subtracting would go below zero.
    #[error("amount would go below zero")]
    Underflow,
}

/// A non-negative amount in integer minor units (cents, satoshis, …).
///
/// Arithmetic is checked: an overflow or a result below zero is an error, never a wrap.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(try_from = "i64", into = "i64")]
pub struct Money(i64);

impl Money {
    /// Zero minor units.
    pub const ZERO: Self = Self(0);
    /// The largest representable amount.
    pub const MAX: Self = Self(i64::MAX);

    /// An amount of zero or more minor units.
    ///
    /// # Errors
    /// [`MoneyError::Negative`] below zero.
    pub const fn new(minor_units: i64) -> Result<Self, MoneyError> {
        if minor_units < 0 {
            Err(MoneyError::Negative(minor_units))
        } else {
            Ok(Self(minor_units))
        }
    }

    /// An amount that must move money: strictly greater than zero.
    ///
    /// # Errors
    /// [`MoneyError::Zero`] or [`MoneyError::Negative`].
    pub const fn positive(minor_units: i64) -> Result<Self, MoneyError> {
        if minor_units == 0 {
            Err(MoneyError::Zero)
        } else {
            Self::new(minor_units)
        }
    }

    /// The amount in minor units.
    #[must_use]
    pub const fn minor_units(self) -> i64 {
        self.0
    }

    /// Whether the amount is zero.
    #[must_use]
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self + other`.
    ///
    /// # Errors
    /// [`MoneyError::Overflow`] when the sum does not fit.
    pub const fn checked_add(self, other: Self) -> Result<Self, MoneyError> {
        match self.0.checked_add(other.0) {
            Some(v) => Ok(Self(v)),
            None => Err(MoneyError::Overflow),
        }
    }

    /// `self - other`.
    ///
    /// # Errors
    /// [`MoneyError::Underflow`] when the result would be below zero.
    pub const fn checked_sub(self, other: Self) -> Result<Self, MoneyError> {
        if other.0 > self.0 {
            Err(MoneyError::Underflow)
        } else {
            Ok(Self(self.0 - other.0))
        }
    }

    /// `self - other`, or zero when `other` is larger.
    #[must_use]
    pub const fn saturating_sub(self, other: Self) -> Self {
        if other.0 > self.0 {
            Self::ZERO
        } else {
            Self(self.0 - other.0)
        }
    }
}

impl TryFrom<i64> for Money {
    type Error = MoneyError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Money> for i64 {
    fn from(m: Money) -> i64 {
        m.0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn zero_is_not_a_positive_amount() {
        assert_eq!(Money::positive(0), Err(MoneyError::Zero));
    }

    #[test]
    fn a_negative_amount_is_rejected() {
        assert_eq!(Money::new(-1), Err(MoneyError::Negative(-1)));
        assert_eq!(Money::positive(-5), Err(MoneyError::Negative(-5)));
    }

    #[test]
    fn adding_past_the_maximum_is_an_overflow() {
        assert_eq!(
            Money::MAX.checked_add(Money::new(1).unwrap()),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn a_negative_amount_cannot_be_deserialized() {
        assert!(serde_json::from_str::<Money>("-3").is_err());
        assert_eq!(
            serde_json::from_str::<Money>("42").unwrap().minor_units(),
            42
        );
    }

    #[test]
    fn an_amount_beyond_i64_cannot_be_deserialized() {
        assert!(serde_json::from_str::<Money>("9223372036854775808").is_err());
        assert!(serde_json::from_str::<Money>("1.5").is_err());
    }

    proptest! {
        #[test]
        fn addition_is_exact_or_an_overflow(a in 0..=i64::MAX, b in 0..=i64::MAX) {
            let (x, y) = (Money::new(a).unwrap(), Money::new(b).unwrap());
            match x.checked_add(y) {
                Ok(sum) => prop_assert_eq!(i128::from(sum.minor_units()), i128::from(a) + i128::from(b)),
                Err(e) => {
                    prop_assert_eq!(e, MoneyError::Overflow);
                    prop_assert!(i128::from(a) + i128::from(b) > i128::from(i64::MAX));
                }
            }
        }

        #[test]
        fn subtraction_never_goes_below_zero(a in 0..=i64::MAX, b in 0..=i64::MAX) {
            let (x, y) = (Money::new(a).unwrap(), Money::new(b).unwrap());
            match x.checked_sub(y) {
                Ok(diff) => {
                    prop_assert!(diff.minor_units() >= 0);
                    prop_assert_eq!(diff.checked_add(y), Ok(x));
                }
                Err(e) => {
                    prop_assert_eq!(e, MoneyError::Underflow);
                    prop_assert!(b > a);
                }
            }
            prop_assert!(x.saturating_sub(y) <= x);
        }

        #[test]
        fn addition_commutes(a in 0..=i64::MAX / 2, b in 0..=i64::MAX / 2) {
            let (x, y) = (Money::new(a).unwrap(), Money::new(b).unwrap());
            prop_assert_eq!(x.checked_add(y), y.checked_add(x));
        }
    }
}
