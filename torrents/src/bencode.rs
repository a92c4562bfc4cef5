//! A small bencode encoder and a bounded, zero-copy decoder for untrusted input.
//!
//! Ours rather than serde_bencode's because the infohash is the SHA-1 of the info dictionary's
//! bytes *as they appear in the file*: the decoder must hand back each value's exact span, and
//! the encoder must always emit keys in sorted order for byte-identical output.

use std::collections::BTreeMap;
use std::fmt;

/// Nesting beyond this is refused: real torrents nest three or four deep, and recursion on
/// attacker-chosen depth would overflow the stack.
const MAX_DEPTH: usize = 32;

/// A decoded bencode value borrowing from the input.
#[derive(Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    List(Vec<Value<'a>>),
    /// Keys in input order, each with its value and the value's raw span in the input.
    Dict(Vec<(&'a [u8], Value<'a>, &'a [u8])>),
}

impl<'a> Value<'a> {
    /// The value under `key` of a dictionary, with its raw bytes.
    pub fn get(&self, key: &str) -> Option<(&Value<'a>, &'a [u8])> {
        match self {
            Value::Dict(entries) => entries.iter().find(|(k, _, _)| *k == key.as_bytes()).map(|(_, v, raw)| (v, *raw)),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::List(items) => Some(items),
            _ => None,
        }
    }
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Bytes(b) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Value::List(items) => f.debug_list().entries(items).finish(),
            Value::Dict(entries) => {
                f.debug_map().entries(entries.iter().map(|(k, v, _)| (String::from_utf8_lossy(k), v))).finish()
            }
        }
    }
}

/// Where and why bencode was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed bencode at byte {offset}: {reason}")]
pub struct DecodeError {
    pub offset: usize,
    pub reason: &'static str,
}

/// Decodes exactly one value that spans the whole input.
pub fn decode(input: &[u8]) -> Result<Value<'_>, DecodeError> {
    let mut decoder = Decoder { input, pos: 0 };
    let value = decoder.value(0)?;
    if decoder.pos != input.len() {
        return Err(decoder.error("trailing bytes after the top-level value"));
    }
    Ok(value)
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn error(&self, reason: &'static str) -> DecodeError {
        DecodeError { offset: self.pos, reason }
    }

    fn peek(&self) -> Result<u8, DecodeError> {
        self.input.get(self.pos).copied().ok_or_else(|| self.error("unexpected end of input"))
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                let digits = self.until(b'e')?;
                Ok(Value::Int(parse_int(digits).ok_or_else(|| self.error("invalid integer"))?))
            }
            b'0'..=b'9' => self.bytes().map(Value::Bytes),
            b'l' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                self.pos += 1;
                let mut entries: Vec<(&'a [u8], Value<'a>, &'a [u8])> = Vec::new();
                while self.peek()? != b'e' {
                    if !self.peek()?.is_ascii_digit() {
                        return Err(self.error("dictionary key is not a byte string"));
                    }
                    let key = self.bytes()?;
                    if entries.iter().any(|(k, _, _)| *k == key) {
                        return Err(self.error("duplicate dictionary key"));
                    }
                    let start = self.pos;
                    let value = self.value(depth + 1)?;
                    entries.push((key, value, &self.input[start..self.pos]));
                }
                self.pos += 1;
                Ok(Value::Dict(entries))
            }
            _ => Err(self.error("expected i, l, d or a length")),
        }
    }

    fn until(&mut self, end: u8) -> Result<&'a [u8], DecodeError> {
        let rest = &self.input[self.pos..];
        let len = rest.iter().position(|&b| b == end).ok_or_else(|| self.error("unterminated value"))?;
        self.pos += len + 1;
        Ok(&rest[..len])
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        let digits = self.until(b':')?;
        let len = parse_int(digits)
            .filter(|&n| n >= 0 && (digits == b"0" || digits[0] != b'-'))
            .ok_or(DecodeError { offset: start, reason: "invalid string length" })? as u64;
        if len > (self.input.len() - self.pos) as u64 {
            return Err(DecodeError { offset: start, reason: "string runs past the end of input" });
        }
        let bytes = &self.input[self.pos..self.pos + len as usize];
        self.pos += len as usize;
        Ok(bytes)
    }
}

/// Canonical bencode integers only: no leading zeros, no `-0`, no empty digits, fits i64.
fn parse_int(digits: &[u8]) -> Option<i64> {
    let body = digits.strip_prefix(b"-").unwrap_or(digits);
    if body.is_empty()
        || !body.iter().all(u8::is_ascii_digit)
        || (body[0] == b'0' && (body.len() > 1 || body.len() != digits.len()))
    {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A value to encode. Dictionaries are `BTreeMap`s so keys always come out sorted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Encode {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Encode>),
    Dict(BTreeMap<Vec<u8>, Encode>),
    /// Bytes that are already bencode (the info dictionary, embedded as hashed).
    Raw(Vec<u8>),
}

impl Encode {
    pub fn str(s: &str) -> Self {
        Encode::Bytes(s.as_bytes().to_vec())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Encode::Int(i) => {
                out.push(b'i');
                out.extend_from_slice(i.to_string().as_bytes());
                out.push(b'e');
            }
            Encode::Bytes(b) => write_bytes(out, b),
            Encode::List(items) => {
                out.push(b'l');
                items.iter().for_each(|item| item.write(out));
                out.push(b'e');
            }
            Encode::Dict(entries) => {
                out.push(b'd');
                for (k, v) in entries {
                    write_bytes(out, k);
                    v.write(out);
                }
                out.push(b'e');
            }
            Encode::Raw(raw) => out.extend_from_slice(raw),
        }
    }
}

fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_spans() {
        let input = b"d3:bari-12e3:fool1:a1:bee";
        let v = decode(input).unwrap();
        let (foo, raw) = v.get("foo").unwrap();
        assert_eq!(raw, b"l1:a1:be");
        assert_eq!(foo.as_list().unwrap().len(), 2);
        assert_eq!(v.get("bar").unwrap().0.as_int(), Some(-12));
    }

    #[test]
    fn encoder_sorts_keys() {
        let mut d = BTreeMap::new();
        d.insert(b"zeta".to_vec(), Encode::Int(1));
        d.insert(b"alpha".to_vec(), Encode::str("x"));
        assert_eq!(Encode::Dict(d).to_bytes(), b"d5:alpha1:x4:zetai1ee");
    }

    #[test]
    fn malformed_input_is_refused_not_panicked() {
        let cases: &[&[u8]] = &[
            b"",
            b"i",
            b"i-0e",
            b"i03e",
            b"ie",
            b"i99999999999999999999e",
            b"5:abc",
            b"-1:a",
            b"01:a",
            b"99999999999999999999999:a",
            b"l",
            b"d1:a",
            b"di1ei2ee",
            b"d1:ai1e1:ai2ee",
            b"le trailing",
            b"x",
        ];
        for case in cases {
            assert!(decode(case).is_err(), "{:?}", String::from_utf8_lossy(case));
        }
        let deep = [vec![b'l'; 10_000], vec![b'e'; 10_000]].concat();
        assert_eq!(decode(&deep).unwrap_err().reason, "nested too deeply");
    }

    #[test]
    fn integers_are_canonical() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-5"), Some(-5));
        assert_eq!(parse_int(b"-"), None);
        assert_eq!(parse_int(b"-05"), None);
        assert_eq!(parse_int(b"+5"), None);
    }
}
