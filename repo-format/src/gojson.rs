//! Go's string encodings as restic uses them in tree blobs.
//!
//! - [`write_json_string`]: `encoding/json` string output of Go 1.19 (HTML escaping on), which is
//!   what restic 0.14.0 writes; it decides the tree bytes and therefore the tree IDs.
//! - [`go_quote`] / [`go_unquote`]: `strconv.Quote` / `strconv.Unquote`, which restic applies to
//!   node names so that names which are not valid UTF-8 survive JSON.
//!
//! Printability follows Go's `unicode.IsPrint` (categories L, M, N, P, S and U+0020) using the
//! Unicode tables of the `unicode-general-category` crate. Go 1.19 uses Unicode 13.0, so a name
//! containing a character assigned in a later Unicode version is written raw here but escaped by
//! restic 0.14.0: such a tree reads back identically but gets a different ID.

use std::borrow::Cow;
use unicode_general_category::{get_general_category, GeneralCategory as Gc};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Error from [`go_unquote`]; `at` is a byte offset into the quoted contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnquoteError {
    #[error("unescaped '\"' at byte {at}")]
    BareQuote { at: usize },
    #[error("unescaped newline at byte {at}")]
    Newline { at: usize },
    #[error("'\\' at end of string")]
    TrailingBackslash,
    #[error("invalid escape sequence at byte {at}")]
    InvalidEscape { at: usize },
    #[error("escaped code point out of range at byte {at}")]
    InvalidCodePoint { at: usize },
}

/// Go's `unicode.IsPrint`.
pub fn is_go_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    matches!(
        get_general_category(c),
        Gc::UppercaseLetter
            | Gc::LowercaseLetter
            | Gc::TitlecaseLetter
            | Gc::ModifierLetter
            | Gc::OtherLetter
            | Gc::NonspacingMark
            | Gc::SpacingMark
            | Gc::EnclosingMark
            | Gc::DecimalNumber
            | Gc::LetterNumber
            | Gc::OtherNumber
            | Gc::ConnectorPunctuation
            | Gc::DashPunctuation
            | Gc::OpenPunctuation
            | Gc::ClosePunctuation
            | Gc::InitialPunctuation
            | Gc::FinalPunctuation
            | Gc::OtherPunctuation
            | Gc::MathSymbol
            | Gc::CurrencySymbol
            | Gc::ModifierSymbol
            | Gc::OtherSymbol
    )
}

/// Bytes Go's encoder copies unchanged (its `htmlSafeSet`): printable ASCII and DEL, except
/// `"` `\` `<` `>` `&`.
#[inline]
fn json_safe_ascii(b: u8) -> bool {
    (0x20..0x80).contains(&b) && !matches!(b, b'"' | b'\\' | b'<' | b'>' | b'&')
}

#[inline]
fn push_u00(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(b"\\u00");
    out.push(HEX[(b >> 4) as usize]);
    out.push(HEX[(b & 0xf) as usize]);
}

/// Appends `s` as a JSON string exactly as Go 1.19 `json.Marshal` writes it: `"` and `\`
/// backslash-escaped; `\n` `\r` `\t`; other controls and `<` `>` `&` as `\u00xx`; U+2028 and
/// U+2029 as `\u2028` / `\u2029`; each byte of invalid UTF-8 as `\ufffd`; the rest raw.
pub fn write_json_string(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    for chunk in s.utf8_chunks() {
        let v = chunk.valid().as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < v.len() {
            let b = v[i];
            if b < 0x80 {
                if json_safe_ascii(b) {
                    i += 1;
                    continue;
                }
                out.extend_from_slice(&v[start..i]);
                match b {
                    b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    _ => push_u00(out, b),
                }
                i += 1;
                start = i;
            } else if b == 0xe2 && v[i + 1] == 0x80 && (v[i + 2] == 0xa8 || v[i + 2] == 0xa9) {
                // U+2028 / U+2029 (valid UTF-8, so the two continuation bytes exist).
                out.extend_from_slice(&v[start..i]);
                out.extend_from_slice(b"\\u202");
                out.push(HEX[(v[i + 2] & 0xf) as usize]);
                i += 3;
                start = i;
            } else {
                i += 1;
            }
        }
        out.extend_from_slice(&v[start..]);
        for _ in chunk.invalid() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

/// Go's `string(bytes)` as seen through JSON: every byte that is not part of valid UTF-8
/// becomes U+FFFD (one per byte, unlike `String::from_utf8_lossy`).
pub fn go_lossy_utf8(s: &[u8]) -> Cow<'_, str> {
    if let Ok(v) = std::str::from_utf8(s) {
        return Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for chunk in s.utf8_chunks() {
        out.push_str(chunk.valid());
        for _ in chunk.invalid() {
            out.push('\u{fffd}');
        }
    }
    Cow::Owned(out)
}

/// How `strconv.Quote` writes one non-printable character (without the leading backslash).
fn quote_escape(c: char, buf: &mut [u8; 10]) -> &[u8] {
    let short = match c {
        '\x07' => Some(b'a'),
        '\x08' => Some(b'b'),
        '\x0c' => Some(b'f'),
        '\n' => Some(b'n'),
        '\r' => Some(b'r'),
        '\t' => Some(b't'),
        '\x0b' => Some(b'v'),
        _ => None,
    };
    if let Some(s) = short {
        buf[0] = s;
        return &buf[..1];
    }
    let (lead, digits) = match c as u32 {
        0..=0x1f | 0x7f => (b'x', 2),
        0x80..=0xffff => (b'u', 4),
        _ => (b'U', 8),
    };
    buf[0] = lead;
    let v = c as u32;
    for k in 0..digits {
        buf[1 + k] = HEX[((v >> (4 * (digits - 1 - k))) & 0xf) as usize];
    }
    &buf[..1 + digits]
}

/// Go `strconv.Quote(name)` without the surrounding quotes.
pub fn go_quote(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    go_quote_into(&mut out, name);
    out
}

/// [`go_quote`] appending to `out`.
pub fn go_quote_into(out: &mut String, name: &[u8]) {
    let mut buf = [0u8; 10];
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
                out.push(c);
            } else if is_go_print(c) {
                out.push(c);
            } else {
                out.push('\\');
                // quote_escape only produces ASCII
                out.extend(quote_escape(c, &mut buf).iter().map(|&b| b as char));
            }
        }
        for &b in chunk.invalid() {
            out.push_str("\\x");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        }
    }
}

/// Appends the JSON string restic stores for a node name: `write_json_string(go_quote(name))`
/// in one pass without the intermediate string.
pub fn write_json_go_quoted(out: &mut Vec<u8>, name: &[u8]) {
    out.reserve(name.len() + 2);
    out.push(b'"');
    let mut buf = [0u8; 10];
    for chunk in name.utf8_chunks() {
        let v = chunk.valid();
        let vb = v.as_bytes();
        let mut start = 0;
        for (i, c) in v.char_indices() {
            if c.is_ascii() {
                let b = c as u8;
                if json_safe_ascii(b) && b != 0x7f {
                    continue;
                }
                out.extend_from_slice(&vb[start..i]);
                start = i + 1;
                match b {
                    // Quote's `\"` / `\\`, then JSON escapes both characters.
                    b'"' => out.extend_from_slice(b"\\\\\\\""),
                    b'\\' => out.extend_from_slice(b"\\\\\\\\"),
                    b'<' | b'>' | b'&' => push_u00(out, b),
                    _ => {
                        out.extend_from_slice(b"\\\\");
                        out.extend_from_slice(quote_escape(c, &mut buf));
                    }
                }
            } else if !is_go_print(c) {
                // Non-printable runes (including U+2028/9) become `\uXXXX` in Quote.
                out.extend_from_slice(&vb[start..i]);
                start = i + c.len_utf8();
                out.extend_from_slice(b"\\\\");
                out.extend_from_slice(quote_escape(c, &mut buf));
            }
        }
        out.extend_from_slice(&vb[start..]);
        for &b in chunk.invalid() {
            out.extend_from_slice(b"\\\\x");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        }
    }
    out.push(b'"');
}

fn hex_val(b: u8) -> Option<u32> {
    match b {
        b'0'..=b'9' => Some((b - b'0') as u32),
        b'a'..=b'f' => Some((b - b'a' + 10) as u32),
        b'A'..=b'F' => Some((b - b'A' + 10) as u32),
        _ => None,
    }
}

/// Go `strconv.Unquote("\"" + s + "\"")`, returning the raw bytes (which need not be UTF-8:
/// `\xHH` and octal escapes produce single bytes).
pub fn go_unquote(s: &str) -> Result<Vec<u8>, UnquoteError> {
    let b = s.as_bytes();
    if !b.iter().any(|&c| matches!(c, b'\\' | b'"' | b'\n')) {
        return Ok(b.to_vec());
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => return Err(UnquoteError::BareQuote { at: i }),
            b'\n' => return Err(UnquoteError::Newline { at: i }),
            b'\\' => {}
            c => {
                out.push(c);
                i += 1;
                continue;
            }
        }
        let at = i;
        let Some(&e) = b.get(i + 1) else {
            return Err(UnquoteError::TrailingBackslash);
        };
        i += 2;
        let simple = match e {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' => Some(b'\\'),
            // Go rejects `\'` inside a double-quoted string.
            b'"' => Some(b'"'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            continue;
        }
        match e {
            b'x' | b'u' | b'U' => {
                let n = match e {
                    b'x' => 2,
                    b'u' => 4,
                    _ => 8,
                };
                let digits = b.get(i..i + n).ok_or(UnquoteError::InvalidEscape { at })?;
                let mut v: u32 = 0;
                for &d in digits {
                    v = (v << 4) | hex_val(d).ok_or(UnquoteError::InvalidEscape { at })?;
                }
                i += n;
                if e == b'x' {
                    out.push(v as u8);
                } else {
                    // char::from_u32 rejects surrogates and values above U+10FFFF, like
                    // Go's utf8.ValidRune.
                    let c = char::from_u32(v).ok_or(UnquoteError::InvalidCodePoint { at })?;
                    let mut tmp = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
            b'0'..=b'7' => {
                let digits = b.get(i..i + 2).ok_or(UnquoteError::InvalidEscape { at })?;
                let mut v = (e - b'0') as u32;
                for &d in digits {
                    if !(b'0'..=b'7').contains(&d) {
                        return Err(UnquoteError::InvalidEscape { at });
                    }
                    v = (v << 3) | (d - b'0') as u32;
                }
                i += 2;
                if v > 255 {
                    return Err(UnquoteError::InvalidCodePoint { at });
                }
                out.push(v as u8);
            }
            _ => return Err(UnquoteError::InvalidEscape { at }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &[u8]) -> String {
        let mut v = Vec::new();
        write_json_string(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    fn stored_name(s: &[u8]) -> String {
        let mut v = Vec::new();
        write_json_go_quoted(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn json_string_go119() {
        assert_eq!(json(b"plain"), r#""plain""#);
        assert_eq!(json(b"a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(json(b"\n\r\t"), r#""\n\r\t""#);
        assert_eq!(json(b"\x08\x0c\x00\x1f"), r#""\u0008\u000c\u0000\u001f""#);
        assert_eq!(json(b"<a>&"), r#""\u003ca\u003e\u0026""#);
        assert_eq!(json(b"\x7f"), "\"\x7f\"");
        assert_eq!(json("\u{2028}\u{2029}".as_bytes()), r#""\u2028\u2029""#);
        assert_eq!(json("ü😀\u{a0}".as_bytes()), "\"ü😀\u{a0}\"");
        assert_eq!(
            json(b"a\xffb\xf0\x9f\x98"),
            r#""a\ufffdb\ufffd\ufffd\ufffd""#
        );
        assert_eq!(json(b"\xed\xa0\x80"), r#""\ufffd\ufffd\ufffd""#);
    }

    #[test]
    fn quote_go() {
        assert_eq!(go_quote(b"a\"b"), r#"a\"b"#);
        assert_eq!(go_quote(b"back\\slash"), r#"back\\slash"#);
        assert_eq!(go_quote(b"\x07\x08\x0c\n\r\t\x0b"), r#"\a\b\f\n\r\t\v"#);
        assert_eq!(go_quote(b"\x00\x1b\x7f"), r#"\x00\x1b\x7f"#);
        assert_eq!(go_quote(b"bad\xff\xfeutf8"), r#"bad\xff\xfeutf8"#);
        assert_eq!(go_quote("nbsp\u{a0}x".as_bytes()), r#"nbsp\u00a0x"#);
        assert_eq!(
            go_quote("\u{ad}\u{200b}\u{feff}".as_bytes()),
            r#"\u00ad\u200b\ufeff"#
        );
        assert_eq!(
            go_quote("\u{e000}\u{10ffff}".as_bytes()),
            r#"\ue000\U0010ffff"#
        );
        assert_eq!(go_quote("ü-umlaut😀'".as_bytes()), "ü-umlaut😀'");
        assert_eq!(go_quote("\u{fffd}".as_bytes()), "\u{fffd}");
        assert_eq!(go_quote("<&>".as_bytes()), "<&>");
    }

    #[test]
    fn stored_name_matches_composition() {
        let cases: &[&[u8]] = &[
            b"a\"b",
            b"<tag>&amp",
            b"del\x7fx",
            b"bad\xff\xfeutf8",
            "ls\u{2028}x\u{2029}".as_bytes(),
            "zw\u{200b}x\u{a0}😀\u{10ffff}".as_bytes(),
            b"\x00\x07\n\t",
        ];
        for c in cases {
            assert_eq!(stored_name(c), json(go_quote(c).as_bytes()));
        }
    }

    #[test]
    fn unquote_go() {
        assert_eq!(go_unquote("plain").unwrap(), b"plain");
        assert_eq!(go_unquote(r#"a\"b"#).unwrap(), b"a\"b");
        assert_eq!(
            go_unquote(r#"\a\b\f\n\r\t\v\\"#).unwrap(),
            b"\x07\x08\x0c\n\r\t\x0b\\"
        );
        assert_eq!(go_unquote(r#"\xff\xFE\101\377"#).unwrap(), b"\xff\xfeA\xff");
        assert_eq!(go_unquote(r#"\u00e9\U0001F600"#).unwrap(), "é😀".as_bytes());
        assert_eq!(go_unquote("raw\ttab\r").unwrap(), b"raw\ttab\r");
        use UnquoteError::*;
        assert_eq!(go_unquote("a\"b"), Err(BareQuote { at: 1 }));
        assert_eq!(go_unquote("a\nb"), Err(Newline { at: 1 }));
        assert_eq!(go_unquote("a\\"), Err(TrailingBackslash));
        assert_eq!(go_unquote(r"\'"), Err(InvalidEscape { at: 0 }));
        assert_eq!(go_unquote(r"\q"), Err(InvalidEscape { at: 0 }));
        assert_eq!(go_unquote(r"\x4"), Err(InvalidEscape { at: 0 }));
        assert_eq!(go_unquote(r"\x4g"), Err(InvalidEscape { at: 0 }));
        assert_eq!(go_unquote(r"x\400"), Err(InvalidCodePoint { at: 1 }));
        assert_eq!(go_unquote(r"\18"), Err(InvalidEscape { at: 0 }));
        assert_eq!(go_unquote(r"\ud800"), Err(InvalidCodePoint { at: 0 }));
        assert_eq!(go_unquote(r"\U00110000"), Err(InvalidCodePoint { at: 0 }));
        assert_eq!(go_unquote(r"\u12"), Err(InvalidEscape { at: 0 }));
    }

    #[test]
    fn lossy_per_byte() {
        assert_eq!(go_lossy_utf8(b"ok"), "ok");
        assert_eq!(
            go_lossy_utf8(b"a\xf0\x9f\x98b"),
            "a\u{fffd}\u{fffd}\u{fffd}b"
        );
    }
}
