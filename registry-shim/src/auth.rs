//! A client's own credentials: its `Authorization` header, parsed for the upstream calls of that
//! one request. Pure.
//!
//! Precedence (applied in `shoal_upstream::Upstream`): a client's credentials, when it
//! sent any, are used for that request alone; without them the registry's configured
//! credentials; without those, anonymous access. A header the shim cannot read (another scheme,
//! bad base64, no `:`) counts as none. Credentials are held as oci-client's `RegistryAuth`,
//! whose `Debug` redacts passwords and tokens; nothing here logs them.

use base64::Engine;
use oci_client::secrets::RegistryAuth;

/// The credentials in an `Authorization` header value: `Basic <base64 user:password>` or
/// `Bearer <token>` (scheme names are case-insensitive, RFC 9110).
pub(crate) fn parse_authorization(value: &[u8]) -> Option<RegistryAuth> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if rest.is_empty() {
        return None;
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, password) = decoded.split_once(':')?;
        Some(RegistryAuth::Basic(user.to_owned(), password.to_owned()))
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(RegistryAuth::Bearer(rest.to_owned()))
    } else {
        None
    }
}

/// The credentials of a request, from its (first) `Authorization` header.
pub(crate) fn client_auth(headers: &axum::http::HeaderMap) -> Option<RegistryAuth> {
    parse_authorization(headers.get(axum::http::header::AUTHORIZATION)?.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(text: &str) -> Vec<u8> {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(text)).into_bytes()
    }

    #[test]
    fn basic_credentials_split_at_the_first_colon() {
        assert!(matches!(parse_authorization(&basic("alice:pa:ss")),
            Some(RegistryAuth::Basic(u, p)) if u == "alice" && p == "pa:ss"));
        assert!(matches!(parse_authorization(&basic("alice:")),
            Some(RegistryAuth::Basic(u, p)) if u == "alice" && p.is_empty()));
        let lower = format!("basic {}", base64::engine::general_purpose::STANDARD.encode("a:b"));
        assert!(matches!(parse_authorization(lower.as_bytes()), Some(RegistryAuth::Basic(..))));
    }

    #[test]
    fn bearer_tokens_are_taken_as_they_are() {
        assert!(
            matches!(parse_authorization(b"Bearer eyJ.abc.def"), Some(RegistryAuth::Bearer(t)) if t == "eyJ.abc.def")
        );
        assert!(matches!(parse_authorization(b"BEARER  tok "), Some(RegistryAuth::Bearer(t)) if t == "tok"));
    }

    #[test]
    fn anything_else_counts_as_no_credentials() {
        for bad in [&b"Basic"[..], b"Basic ", b"Basic !!!notbase64", b"Digest username=x", b"Bearer", b"", b"\xff\xfe"]
        {
            assert!(parse_authorization(bad).is_none(), "{:?}", String::from_utf8_lossy(bad));
        }
        // Base64 of text without a colon.
        assert!(parse_authorization(&basic("nocolon")).is_none());
    }

    #[test]
    fn parsed_credentials_never_show_in_debug() {
        let shown =
            format!("{:?} {:?}", parse_authorization(&basic("alice:hunter2")), parse_authorization(b"Bearer s3cr3t"));
        assert!(shown.contains("alice") && !shown.contains("hunter2") && !shown.contains("s3cr3t"), "{shown}");
    }

    #[test]
    fn the_header_is_read_from_a_request() {
        let mut headers = axum::http::HeaderMap::new();
        assert!(client_auth(&headers).is_none());
        headers.insert(axum::http::header::AUTHORIZATION, "Bearer t".parse().unwrap());
        assert!(matches!(client_auth(&headers), Some(RegistryAuth::Bearer(_))));
    }
}
