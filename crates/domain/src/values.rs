//! Validated value types: asset codes, destinations, names, memos and idempotency keys.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::WalletId;

/// Why a value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// An asset code is not 2–12 upper-case letters or digits starting with a letter.
    #[error(
        "`{0}` is not an asset code (2 to 12 upper-case letters or digits, starting with a letter)"
    )]
    AssetCode(String),
    /// A destination is empty, too long, or contains whitespace or control characters.
    #[error(
        "`{0}` is not a destination (1 to 128 printable characters without spaces, not starting with `wallet:`)"
    )]
    Destination(String),
    /// A name is empty or too long.
    #[error("a name must have 1 to 100 characters and no control characters")]
    Name,
    /// A memo is too long.
    #[error("a memo must have at most 500 characters and no control characters")]
    Memo,
    /// An idempotency key is empty, too long, or not printable ASCII.
    #[error("an idempotency key must have 1 to 255 printable ASCII characters")]
    IdempotencyKey,
    /// A counterparty text is neither `wallet:<uuid>` nor a destination.
    #[error("`{0}` is neither `wallet:<uuid>` nor a destination")]
    Counterparty(String),
}

fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}

/// The code of an asset, such as `USD` or `USDC`. Whether the asset is supported is decided
/// against the asset table, not here.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AssetCode(String);

impl AssetCode {
    /// # Errors
    /// [`ValueError::AssetCode`] when the text is not an asset code.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let ok = (2..=12).contains(&s.len())
            && s.as_bytes()[0].is_ascii_uppercase()
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValueError::AssetCode(shorten(s)))
        }
    }

    /// The code as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AssetCode {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<AssetCode> for String {
    fn from(a: AssetCode) -> String {
        a.0
    }
}

impl fmt::Display for AssetCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the platform knows about an asset. Asset metadata never changes once written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    /// The code, for example `USD`.
    pub code: AssetCode,
    /// A human name, for example `US dollar`.
    pub name: String,
    /// How many decimal places one major unit has in minor units (2 for cents).
    pub decimals: u8,
}

/// An external destination of a payment: an address, an account or a merchant id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Destination(String);

impl Destination {
    /// # Errors
    /// [`ValueError::Destination`] when the text is empty, longer than 128 characters, holds
    /// whitespace or control characters, or starts with `wallet:` (reserved for wallets).
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let ok = !s.is_empty()
            && s.chars().count() <= 128
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            && !s.starts_with(WALLET_PREFIX);
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValueError::Destination(shorten(s)))
        }
    }

    /// The destination as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Destination {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Destination> for String {
    fn from(d: Destination) -> String {
        d.0
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const WALLET_PREFIX: &str = "wallet:";

/// Where money goes: another wallet of the platform or an external destination. Policies
/// list counterparties as text: `wallet:<uuid>` for a wallet, the destination itself otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Counterparty {
    /// A wallet on this platform.
    Wallet(WalletId),
    /// An address outside the platform.
    External(Destination),
}

impl Counterparty {
    /// Parses `wallet:<uuid>` or a destination.
    ///
    /// # Errors
    /// [`ValueError::Counterparty`] when it is neither.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        if let Some(id) = s.strip_prefix(WALLET_PREFIX) {
            return WalletId::parse(id)
                .map(Self::Wallet)
                .map_err(|_| ValueError::Counterparty(shorten(s)));
        }
        Destination::parse(s)
            .map(Self::External)
            .map_err(|_| ValueError::Counterparty(shorten(s)))
    }
}

impl fmt::Display for Counterparty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Wallet(id) => write!(f, "{WALLET_PREFIX}{id}"),
            Self::External(d) => f.write_str(d.as_str()),
        }
    }
}

impl TryFrom<String> for Counterparty {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Counterparty> for String {
    fn from(c: Counterparty) -> String {
        c.to_string()
    }
}

macro_rules! text_value {
    ($(#[$meta:meta])* $name:ident, $max:expr, $min:expr, $err:expr, $extra:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// # Errors
            #[doc = concat!("[`", stringify!($err), "`] when the text is out of bounds.")]
            pub fn parse(s: &str) -> Result<Self, ValueError> {
                let n = s.chars().count();
                let extra: fn(&str) -> bool = $extra;
                if ($min..=$max).contains(&n) && extra(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err($err)
                }
            }

            /// The text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValueError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_value!(
    /// The display name of an owner, agent or wallet.
    Name,
    100,
    1,
    ValueError::Name,
    |s| !s.trim().is_empty() && !s.chars().any(char::is_control)
);
text_value!(
    /// A free-text note on a transfer, shown to the owner.
    Memo,
    500,
    0,
    ValueError::Memo,
    |s| !s.chars().any(|c| c.is_control() && c != '\n')
);
text_value!(
    /// The client's key that makes a money-moving request safe to retry.
    IdempotencyKey,
    255,
    1,
    ValueError::IdempotencyKey,
    |s| s.bytes().all(|b| b.is_ascii_graphic())
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_codes_are_upper_case_letters_and_digits() {
        assert!(AssetCode::parse("USDC").is_ok());
        assert!(AssetCode::parse("usd").is_err());
        assert!(AssetCode::parse("1USD").is_err());
        assert!(AssetCode::parse("U").is_err());
    }

    #[test]
    fn a_destination_cannot_impersonate_a_wallet() {
        assert!(Destination::parse("wallet:abc").is_err());
        assert!(Destination::parse("iban:DE89370400440532013000").is_ok());
        assert!(Destination::parse("has space").is_err());
        assert!(Destination::parse("").is_err());
    }

    #[test]
    fn counterparties_round_trip_through_text() {
        let w = Counterparty::Wallet(WalletId::new());
        assert_eq!(Counterparty::parse(&w.to_string()), Ok(w));
        let d = Counterparty::parse("0xabc").unwrap();
        assert_eq!(
            d,
            Counterparty::External(Destination::parse("0xabc").unwrap())
        );
        assert!(Counterparty::parse("wallet:nope").is_err());
    }

    #[test]
    fn names_and_keys_are_bounded() {
        assert!(Name::parse("").is_err());
        assert!(Name::parse("   ").is_err());
        assert!(Name::parse(&"x".repeat(101)).is_err());
        assert!(Name::parse("trading bot").is_ok());
        assert!(IdempotencyKey::parse("abc-123").is_ok());
        assert!(IdempotencyKey::parse("with space").is_err());
        assert!(Memo::parse("").is_ok());
    }
}
