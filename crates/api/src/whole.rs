//! Whole numbers in request bodies. JSON Schema counts `5.0` and `5e3` as the integers 5
//! and 5000, and so does the API: the number's text is read exactly (never through a
//! floating-point value, which would round 9007199254740993.0), and any spelling of a whole
//! number that fits is taken. Used with `#[serde(deserialize_with = "…")]`.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// The whole number a JSON number's text spells exactly, if it is one that fits 64 bits.
fn of(text: &str) -> Option<i64> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all(int) || !(frac.is_empty() || all(frac)) {
        return None; // not a number: a string, an object, `true`, `null`…
    }
    // The significant digits, and the power of ten they are multiplied by.
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    let significant = digits.trim_end_matches('0');
    if significant.is_empty() {
        return Some(0);
    }
    let trailing = i64::try_from(digits.len() - significant.len()).ok()?;
    let frac_len = i64::try_from(frac.len()).ok()?;
    let power = exponent.checked_add(trailing)?.checked_sub(frac_len)?;
    if !(0..=18).contains(&power) {
        return None; // a fraction is left, or it is far beyond 64 bits
    }
    let value = significant
        .parse::<i128>()
        .ok()?
        .checked_mul(10_i128.pow(u32::try_from(power).ok()?))?;
    i64::try_from(if negative { -value } else { value }).ok()
}

fn whole<'de, D: Deserializer<'de>>(raw: &RawValue, what: &str) -> Result<i64, D::Error> {
    of(raw.get()).ok_or_else(|| D::Error::custom(format!("{} is not {what}", raw.get())))
}

/// A whole number that fits 64 signed bits.
pub fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let raw = <&RawValue>::deserialize(d)?;
    whole::<D>(raw, "a whole number of 64 bits")
}

/// [`i64`], or `null`.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let raw = <&RawValue>::deserialize(d)?;
    if raw.get() == "null" {
        return Ok(None);
    }
    whole::<D>(raw, "a whole number of 64 bits").map(Some)
}

/// A whole number from 0 to 2^32 − 1, or `null`.
pub fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    const WHAT: &str = "a whole number from 0 to 4294967295";
    let raw = <&RawValue>::deserialize(d)?;
    if raw.get() == "null" {
        return Ok(None);
    }
    let n = whole::<D>(raw, WHAT)?;
    u32::try_from(n)
        .map(Some)
        .map_err(|_| D::Error::custom(format!("{} is not {WHAT}", raw.get())))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(deserialize_with = "super::i64")]
        amount: i64,
        #[serde(default, deserialize_with = "super::opt_u32")]
        count: Option<u32>,
    }

    fn amount(json: &str) -> Option<i64> {
        serde_json::from_str::<Body>(&format!("{{\"amount\": {json}}}"))
            .ok()
            .map(|b| b.amount)
    }

    #[test]
    fn whole_numbers_are_taken_in_any_spelling_and_fractions_are_refused() {
        assert_eq!(amount("5"), Some(5));
        assert_eq!(amount("-9957555.0"), Some(-9_957_555));
        assert_eq!(amount("1e3"), Some(1000));
        assert_eq!(amount("9223372036854775807"), Some(i64::MAX));
        assert_eq!(amount("9007199254740993.0"), Some(9_007_199_254_740_993));
        assert_eq!(amount("4093353750555110.0"), Some(4_093_353_750_555_110));
        assert_eq!(amount("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(amount("9.223372036854775807e18"), Some(i64::MAX));
        assert_eq!(amount("0.000e-99999999999"), Some(0));
        assert_eq!(amount("120e-1"), Some(12));
        assert_eq!(amount("9223372036854775808"), None);
        assert_eq!(amount("1e19"), None);
        assert_eq!(amount("1e99999999999999999999"), None);
        assert_eq!(amount("2.5"), None);
        assert_eq!(amount("125e-2"), None);
        assert_eq!(amount("true"), None);
        assert_eq!(amount("\"5\""), None);
        assert_eq!(amount("null"), None);
        let count = |json: &str| {
            serde_json::from_str::<Body>(&format!("{{\"amount\": 1, \"count\": {json}}}"))
                .ok()
                .map(|b| b.count)
        };
        assert_eq!(count("null"), Some(None));
        assert_eq!(count("7.0"), Some(Some(7)));
        assert_eq!(count("4294967295"), Some(Some(u32::MAX)));
        assert_eq!(count("4294967296"), None);
        assert_eq!(count("-1"), None);
    }
}
