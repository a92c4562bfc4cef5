//! Docker's `daemon.json`, edited so `registry-mirrors` names the shim first (Docker asks
//! mirrors for Docker Hub images only) and every other key keeps its value and its place
//! (pure: text in, text out).
//!
//! serde_json's `Value` sorts object keys unless its `preserve_order` feature is on, and that
//! feature is off in this workspace (turning it on would reorder what every crate's `json!`
//! prints). So objects here are [`OrderedJson`], a `Vec` of pairs kept in file order at every
//! depth; numbers are serde_json's `Number` (as u64, i64 or f64, what Docker's keys hold).

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

const MIRRORS: &str = "registry-mirrors";

/// A JSON value whose objects keep their keys in the order they were written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OrderedJson {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<OrderedJson>),
    Object(Vec<(String, OrderedJson)>),
}

/// Why a daemon.json cannot be edited.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DaemonJsonError {
    #[error("it is not valid JSON: {0}")]
    Unparsable(String),
    #[error("it is not a JSON object")]
    NotAnObject,
    #[error("its `registry-mirrors` is not a list of URLs")]
    MirrorsNotAList,
    #[error("it names the key {0:?} twice")]
    DuplicateKey(String),
}

/// What a daemon.json becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DaemonJsonEdit {
    /// The shim is in `registry-mirrors` already.
    AlreadyPresent,
    Write(String),
}

/// daemon.json with `mirror` (`http://127.0.0.1:5000`) first in `registry-mirrors`: added to
/// the list when there is one, the key added last when there is none; a missing or blank file
/// becomes an object with that key alone.
pub(crate) fn with_mirror_first(existing: Option<&str>, mirror: &str) -> Result<DaemonJsonEdit, DaemonJsonError> {
    let existing = existing.filter(|text| !text.trim().is_empty()).unwrap_or("{}");
    let parsed: OrderedJson = serde_json::from_str(existing).map_err(|e| DaemonJsonError::Unparsable(e.to_string()))?;
    let OrderedJson::Object(mut keys) = parsed else { return Err(DaemonJsonError::NotAnObject) };
    if let Some(dup) = duplicate_key(&keys) {
        return Err(DaemonJsonError::DuplicateKey(dup));
    }
    let same = |url: &str| url.trim_end_matches('/') == mirror.trim_end_matches('/');
    match keys.iter_mut().find(|(key, _)| key == MIRRORS) {
        Some((_, OrderedJson::Array(urls))) => {
            if !urls.iter().all(|u| matches!(u, OrderedJson::String(_))) {
                return Err(DaemonJsonError::MirrorsNotAList);
            }
            if urls.iter().any(|u| matches!(u, OrderedJson::String(s) if same(s))) {
                return Ok(DaemonJsonEdit::AlreadyPresent);
            }
            urls.insert(0, OrderedJson::String(mirror.to_owned()));
        }
        Some(_) => return Err(DaemonJsonError::MirrorsNotAList),
        None => keys.push((MIRRORS.to_owned(), OrderedJson::Array(vec![OrderedJson::String(mirror.to_owned())]))),
    }
    let mut text = serde_json::to_string_pretty(&OrderedJson::Object(keys)).expect("JSON values always serialize");
    text.push('\n');
    Ok(DaemonJsonEdit::Write(text))
}

/// The `registry-mirrors` of a daemon.json, in order (empty when there is none).
pub fn mirrors(text: &str) -> Result<Vec<String>, DaemonJsonError> {
    let parsed: OrderedJson = serde_json::from_str(text).map_err(|e| DaemonJsonError::Unparsable(e.to_string()))?;
    let OrderedJson::Object(keys) = parsed else { return Err(DaemonJsonError::NotAnObject) };
    match keys.into_iter().find(|(key, _)| key == MIRRORS).map(|(_, v)| v) {
        None => Ok(Vec::new()),
        Some(OrderedJson::Array(urls)) => urls
            .into_iter()
            .map(|u| match u {
                OrderedJson::String(s) => Ok(s),
                _ => Err(DaemonJsonError::MirrorsNotAList),
            })
            .collect(),
        Some(_) => Err(DaemonJsonError::MirrorsNotAList),
    }
}

fn duplicate_key(keys: &[(String, OrderedJson)]) -> Option<String> {
    let mut seen = std::collections::BTreeSet::new();
    keys.iter().find(|(k, _)| !seen.insert(k.as_str())).map(|(k, _)| k.clone())
}

impl Serialize for OrderedJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => s.serialize_unit(),
            Self::Bool(b) => s.serialize_bool(*b),
            Self::Number(n) => n.serialize(s),
            Self::String(text) => s.serialize_str(text),
            Self::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Self::Object(pairs) => {
                let mut map = s.serialize_map(Some(pairs.len()))?;
                for (key, item) in pairs {
                    map.serialize_entry(key, item)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for OrderedJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OrderedVisitor)
    }
}

struct OrderedVisitor;

impl<'de> Visitor<'de> for OrderedVisitor {
    type Value = OrderedJson;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<OrderedJson, E> {
        Ok(OrderedJson::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<OrderedJson, E> {
        Ok(OrderedJson::Bool(b))
    }
    fn visit_u64<E>(self, n: u64) -> Result<OrderedJson, E> {
        Ok(OrderedJson::Number(n.into()))
    }
    fn visit_i64<E>(self, n: i64) -> Result<OrderedJson, E> {
        Ok(OrderedJson::Number(n.into()))
    }
    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<OrderedJson, E> {
        serde_json::Number::from_f64(n).map(OrderedJson::Number).ok_or_else(|| E::custom("a number JSON cannot hold"))
    }
    fn visit_str<E>(self, s: &str) -> Result<OrderedJson, E> {
        Ok(OrderedJson::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<OrderedJson, E> {
        Ok(OrderedJson::String(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OrderedJson, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(OrderedJson::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedJson, A::Error> {
        let mut pairs = Vec::new();
        while let Some((key, item)) = map.next_entry::<String, OrderedJson>()? {
            pairs.push((key, item));
        }
        Ok(OrderedJson::Object(pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIM: &str = "http://127.0.0.1:5000";

    fn written(edit: DaemonJsonEdit) -> String {
        match edit {
            DaemonJsonEdit::Write(text) => text,
            DaemonJsonEdit::AlreadyPresent => panic!("expected a write"),
        }
    }

    #[test]
    fn other_keys_keep_their_values_and_order() {
        let existing = r#"{"zeta": 1, "log-opts": {"max-size": "10m", "b": 2, "a": [1, -2, 0.5]}, "alpha": true, "data-root": null}"#;
        let text = written(with_mirror_first(Some(existing), SHIM).unwrap());
        let keys: Vec<_> = [
            "\"zeta\"",
            "\"log-opts\"",
            "\"max-size\"",
            "\"b\"",
            "\"a\"",
            "\"alpha\"",
            "\"data-root\"",
            "\"registry-mirrors\"",
        ]
        .iter()
        .map(|k| text.find(k).unwrap_or_else(|| panic!("{k} missing from {text}")))
        .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "keys out of order: {text}");
        let before: serde_json::Value = serde_json::from_str(existing).unwrap();
        let mut after: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(after["registry-mirrors"], serde_json::json!([SHIM]));
        after.as_object_mut().unwrap().remove("registry-mirrors");
        assert_eq!(after, before);
    }

    #[test]
    fn the_shim_goes_first_in_an_existing_list_once() {
        let text = written(with_mirror_first(Some(r#"{"registry-mirrors": ["https://m.corp"]}"#), SHIM).unwrap());
        assert_eq!(mirrors(&text).unwrap(), [SHIM, "https://m.corp"]);
        assert_eq!(with_mirror_first(Some(&text), SHIM), Ok(DaemonJsonEdit::AlreadyPresent));
        let slash = format!(r#"{{"registry-mirrors": ["{SHIM}/"]}}"#);
        assert_eq!(with_mirror_first(Some(&slash), SHIM), Ok(DaemonJsonEdit::AlreadyPresent));
    }

    #[test]
    fn a_missing_or_blank_file_gets_the_key_alone() {
        for existing in [None, Some(""), Some(" \n")] {
            let text = written(with_mirror_first(existing, SHIM).unwrap());
            assert_eq!(text, format!("{{\n  \"registry-mirrors\": [\n    \"{SHIM}\"\n  ]\n}}\n"));
        }
    }

    #[test]
    fn bad_files_are_errors() {
        assert!(matches!(with_mirror_first(Some("{"), SHIM), Err(DaemonJsonError::Unparsable(_))));
        assert_eq!(with_mirror_first(Some("[]"), SHIM), Err(DaemonJsonError::NotAnObject));
        assert_eq!(
            with_mirror_first(Some(r#"{"registry-mirrors": "x"}"#), SHIM),
            Err(DaemonJsonError::MirrorsNotAList)
        );
        assert_eq!(
            with_mirror_first(Some(r#"{"registry-mirrors": [1]}"#), SHIM),
            Err(DaemonJsonError::MirrorsNotAList)
        );
        assert_eq!(
            with_mirror_first(Some(r#"{"a": 1, "a": 2}"#), SHIM),
            Err(DaemonJsonError::DuplicateKey("a".into()))
        );
    }
}
