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
    /// A destination is empty, too long, or contains whitespace or invisible characters.
    #[error(
        "`{0}` is not a destination (1 to 128 visible characters without spaces or control, format or other invisible characters, not starting with `wallet:`)"
    )]
    Destination(String),
    /// A name is empty, too long, or holds an invisible character.
    #[error(
        "a name must have 1 to 100 characters and no control, format or other invisible characters"
    )]
    Name,
    /// A memo is too long or holds control characters.
    #[error("a memo must have at most 500 characters and no control or bidi characters")]
    Memo,
    /// An idempotency key is empty, too long, or not printable ASCII.
    #[error("an idempotency key must have 1 to 255 printable ASCII characters")]
    IdempotencyKey,
    /// An API key's lifetime is zero or longer than allowed.
    #[error("a key's lifetime (`expires_in_s`) must be 1 s to 10 years")]
    KeyLifetime,
    /// A counterparty text is neither `wallet:<uuid>` nor a destination.
    #[error("`{0}` is neither `wallet:<uuid>` nor a destination")]
    Counterparty(String),
}

/// A refused text as it may be shown back in an error: shortened, with every invisible
/// character written as its code point so the message shows what was wrong.
fn printable(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().take(64) {
        if crate::text::is_invisible(c) {
            out.push_str(&format!("<U+{:04X}>", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
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
            Err(ValueError::AssetCode(printable(s)))
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
///
/// Destinations are stored in Unicode NFKC form, so a fullwidth or otherwise look-alike
/// spelling becomes the text it looks like; characters that cannot be seen or that reorder
/// text (see [`crate::text::is_invisible`]) are refused. Case is kept (base58 addresses
/// depend on it); block-lists ignore it (see [`Destination::eq_ignoring_case`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Destination(String);

impl Destination {
    /// # Errors
    /// [`ValueError::Destination`] when the text, once NFKC-normalised, is empty, longer
    /// than 128 characters, holds whitespace or an invisible character, or starts with
    /// `wallet:` in any case (reserved for wallets).
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let n = crate::text::nfkc(s);
        let ok = !n.is_empty()
            && n.chars().count() <= 128
            && !n
                .chars()
                .any(|c| c.is_whitespace() || crate::text::is_invisible(c))
            && !n
                .get(..WALLET_PREFIX.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(WALLET_PREFIX));
        if ok {
            Ok(Self(n))
        } else {
            Err(ValueError::Destination(printable(s)))
        }
    }

    /// The destination as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether two destinations are the same once case is ignored: how block-lists match,
    /// since blocking too much is the safe side.
    #[must_use]
    pub fn eq_ignoring_case(&self, other: &Self) -> bool {
        crate::text::eq_ignoring_case(&self.0, &other.0)
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
                .map_err(|_| ValueError::Counterparty(printable(s)));
        }
        Destination::parse(s)
            .map(Self::External)
            .map_err(|_| ValueError::Counterparty(printable(s)))
    }
}

impl Counterparty {
    /// Whether a block-list entry covers this counterparty: the same wallet, or the same
    /// destination whatever its case.
    #[must_use]
    pub fn blocked_by(&self, entry: &Self) -> bool {
        match (self, entry) {
            (Self::Wallet(a), Self::Wallet(b)) => a == b,
            (Self::External(a), Self::External(b)) => a.eq_ignoring_case(b),
            _ => false,
        }
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
    ($(#[$meta:meta])* $name:ident, $max:expr, $min:expr, $err:expr, $extra:expr, $normalise:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// # Errors
            #[doc = concat!("[`", stringify!($err), "`] when the text is out of bounds.")]
            pub fn parse(s: &str) -> Result<Self, ValueError> {
                let normalise: fn(&str) -> String = $normalise;
                let s = normalise(s);
                let n = s.chars().count();
                let extra: fn(&str) -> bool = $extra;
                if ($min..=$max).contains(&n) && extra(&s) {
                    Ok(Self(s))
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
    /// The display name of an owner, agent or wallet, stored in NFKC form; invisible
    /// characters (see [`crate::text::is_invisible`]) are refused.
    Name,
    100,
    1,
    ValueError::Name,
    |s| !s.trim().is_empty() && !s.chars().any(crate::text::is_invisible),
    crate::text::nfkc
);
text_value!(
    /// A free-text note on a transfer, shown to the owner. Line breaks are allowed; other
    /// control characters and the bidi controls that reorder what the owner reads are not.
    Memo,
    500,
    0,
    ValueError::Memo,
    |s| !s
        .chars()
        .any(|c| c != '\n' && (c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))),
    str::to_owned
);
text_value!(
    /// The client's key that makes a money-moving request safe to retry.
    IdempotencyKey,
    255,
    1,
    ValueError::IdempotencyKey,
    |s| s.bytes().all(|b| b.is_ascii_graphic()),
    str::to_owned
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
    fn look_alike_destinations_are_normalised_or_refused() {
        let d = |s: &str| Destination::parse(s).map(|d| d.as_str().to_owned());
        assert_eq!(d("ｅｖｉｌ-corp"), Ok("evil-corp".to_owned()));
        for bad in [
            "evil-corp\u{200B}",
            "evil\u{202E}proc-",
            "\u{FEFF}evil-corp",
            "evil\u{2028}corp",
            "evil\u{0000}corp",
            "evil\u{00A0}corp",
            "WALLET:abc",
            "ｗａｌｌｅｔ:abc",
        ] {
            assert!(d(bad).is_err(), "{bad:?} was accepted");
        }
        let err = Destination::parse("evil-corp\u{200B}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("<U+200B>"), "{err}");
        assert!(
            Destination::parse("EVIL-CORP")
                .unwrap()
                .eq_ignoring_case(&Destination::parse("evil-corp").unwrap())
        );
    }

    #[test]
    fn names_are_normalised_and_invisible_characters_refused() {
        assert_eq!(Name::parse("ｂｏｔ　１").unwrap().as_str(), "bot 1");
        assert!(Name::parse("bot\u{200B}").is_err());
        assert!(Name::parse("bot\u{202E}").is_err());
        assert!(Name::parse("bot\u{2028}x").is_err());
        assert!(Memo::parse("line one\nline two").is_ok());
        assert!(Memo::parse("pay \u{202E}gnp.exe").is_err());
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
