//! How text from clients is made safe to compare: Unicode NFKC normalisation (so a
//! fullwidth `ｅｖｉｌ` is the `evil` it looks like), refusal of characters that cannot be seen
//! or that change how the text around them is shown, and the case folding block-lists match
//! with.

use unicode_normalization::UnicodeNormalization as _;

/// The NFKC form of a text, the form every destination and name is stored and compared in.
#[must_use]
pub fn nfkc(s: &str) -> String {
    s.nfkc().collect()
}

/// Whether a character is invisible or reorders, hides or breaks the text around it:
/// control characters (Cc), format characters (Cf: zero-width spaces and joiners, bidi
/// embeddings, overrides and isolates, the BOM, soft hyphen, tags), line and paragraph
/// separators, variation selectors, blank fillers and noncharacters. A value that holds one
/// can look like another value while being different, so none is accepted.
#[must_use]
pub fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Format characters (general category Cf).
            '\u{00AD}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0001}'
                | '\u{E0020}'..='\u{E007F}'
                // Line and paragraph separators (Zl, Zp).
                | '\u{2028}'
                | '\u{2029}'
                // Combining grapheme joiner, fillers that render as nothing, the braille
                // blank, variation selectors.
                | '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180D}'
                | '\u{180F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FFA0}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{E0100}'..='\u{E01EF}'
                // Noncharacters.
                | '\u{FDD0}'..='\u{FDEF}'
        )
        || (u32::from(c) & 0xFFFE) == 0xFFFE
}

/// The characters of the Basic Multilingual Plane that [`is_invisible`] refuses, as the
/// body of a regular-expression character class with `\uXXXX` escapes (a syntax ECMAScript,
/// Python and Rust share): what the OpenAPI document's patterns are built from. Characters
/// beyond the BMP cannot be written this way in a JSON Schema pattern; the service still
/// refuses them.
pub const INVISIBLE_BMP_CLASS: &str = concat!(
    r"\u0000-\u001F\u007F-\u009F\u00AD\u034F\u0600-\u0605\u061C\u06DD\u070F",
    r"\u0890-\u0891\u08E2\u115F-\u1160\u17B4-\u17B5\u180B-\u180F\u200B-\u200F",
    r"\u2028-\u202E\u2060-\u2064\u2066-\u206F\u2800\u3164\uFDD0-\uFDEF\uFE00-\uFE0F",
    r"\uFEFF\uFFA0\uFFF9-\uFFFB\uFFFE-\uFFFF",
);

/// The characters a value is compared by when case must not matter: lower case, with the
/// few letters whose lower case is not their case-folded form folded by hand (`ß` and `ẞ`
/// as `ss`, final sigma as sigma). Two texts that differ only in case fold to the same
/// characters.
pub fn folded(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().flat_map(|c| {
        let mut buf = ['\0'; 3];
        let n = match c {
            'ß' | 'ẞ' => {
                buf = ['s', 's', '\0'];
                2
            }
            'ς' => {
                buf[0] = 'σ';
                1
            }
            c => {
                let mut n = 0;
                for l in c.to_lowercase() {
                    buf[n] = l;
                    n += 1;
                }
                n
            }
        };
        buf.into_iter().take(n)
    })
}

/// Whether two texts are equal once case is ignored (see [`folded`]).
#[must_use]
pub fn eq_ignoring_case(a: &str, b: &str) -> bool {
    folded(a).eq(folded(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alike_forms_normalise_to_the_same_text() {
        assert_eq!(nfkc("ｅｖｉｌ-corp"), "evil-corp");
        assert_eq!(nfkc("ﬁ"), "fi");
        assert_eq!(nfkc("e\u{0301}"), "é");
    }

    #[test]
    fn invisible_and_reordering_characters_are_recognised() {
        for c in [
            '\u{0000}',
            '\u{001B}',
            '\u{007F}',
            '\u{0085}',
            '\u{200B}',
            '\u{200D}',
            '\u{202E}',
            '\u{2066}',
            '\u{2028}',
            '\u{2029}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{E0041}',
            '\u{FE0F}',
            '\u{3164}',
            '\u{FFFF}',
            '\u{1FFFE}',
        ] {
            assert!(is_invisible(c), "U+{:04X}", u32::from(c));
        }
        for c in ['a', 'Z', '-', '_', ':', 'é', 'ж', '中', '€', ' '] {
            assert!(!is_invisible(c), "{c}");
        }
    }

    /// The class, read back: every `\uXXXX` and `\uXXXX-\uXXXX` it lists.
    fn class_ranges(class: &str) -> Vec<(u32, u32)> {
        let codes: Vec<&str> = class.split("\\u").skip(1).collect();
        let mut ranges = Vec::new();
        for code in codes {
            let (hex, rest) = code.split_at(4);
            let value = u32::from_str_radix(hex, 16).unwrap();
            match rest {
                "" => ranges.push((value, value)),
                "-" => ranges.push((value, u32::MAX)),
                other => panic!("unexpected `{other}` in the class"),
            }
        }
        // A `-` opens a range closed by the next code: fold the pairs.
        let mut folded: Vec<(u32, u32)> = Vec::new();
        let mut open: Option<u32> = None;
        for (lo, hi) in ranges {
            match open.take() {
                Some(start) => folded.push((start, lo)),
                None if hi == u32::MAX => open = Some(lo),
                None => folded.push((lo, hi)),
            }
        }
        assert!(open.is_none(), "a range is left open");
        folded
    }

    #[test]
    fn the_published_class_is_exactly_the_invisible_characters_of_the_bmp() {
        let ranges = class_ranges(INVISIBLE_BMP_CLASS);
        for code in 0..=0xFFFF_u32 {
            let Some(c) = char::from_u32(code) else {
                continue; // surrogates
            };
            let listed = ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&code));
            assert_eq!(listed, is_invisible(c), "U+{code:04X}");
        }
    }

    #[test]
    fn case_is_ignored_when_asked() {
        assert!(eq_ignoring_case("EVIL-CORP", "evil-corp"));
        assert!(eq_ignoring_case("Straße", "STRASSE"));
        assert!(eq_ignoring_case("ΣΟΦΟΣ", "σοφος"));
        assert!(!eq_ignoring_case("evil-corp", "evil-corp2"));
        assert!(!eq_ignoring_case("evil", "evi"));
    }
}
