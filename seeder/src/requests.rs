//! Parsing of what HTTP clients send, kept apart from the handlers: digests, webseed names,
//! repository names, and the Distribution registry's notification envelope.

use serde::Deserialize;
use shoal_torrents::BlobDigest;

/// A request the seeder refuses before doing anything (answered with a 4xx).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RequestError {
    #[error("{0:?} is not a blob digest: expected sha256:<64 lowercase hex>")]
    Digest(String),
    #[error("{0:?} is not a webseed file name: expected sha256-<64 lowercase hex>")]
    WebseedName(String),
    #[error("{0:?} is not a repository name")]
    Repository(String),
    #[error("{0:?} is not a registry host")]
    Registry(String),
    #[error("invalid request body: {0}")]
    Body(String),
}

/// A `sha256:<hex>` path segment.
pub(crate) fn blob_digest(segment: &str) -> Result<BlobDigest, RequestError> {
    segment.parse().map_err(|_| RequestError::Digest(segment.to_owned()))
}

/// A webseed file name, `sha256-<hex>`: nothing else maps to a file, so no path can escape.
pub(crate) fn webseed_name(name: &str) -> Result<BlobDigest, RequestError> {
    BlobDigest::from_torrent_name(name).map_err(|_| RequestError::WebseedName(name.to_owned()))
}

/// A repository path as the Distribution spec allows it (lowercase components separated by
/// `/`, with `.`, `_`, `__` and `-` inside components).
pub(crate) fn repository(name: &str) -> Result<&str, RequestError> {
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && c.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
    };
    if name.len() <= 255 && name.split('/').all(component_ok) {
        Ok(name)
    } else {
        Err(RequestError::Repository(name.to_owned()))
    }
}

/// A registry host as `?ns=` names it: `host[:port]`, no scheme, no path.
pub(crate) fn registry(host: &str) -> Result<&str, RequestError> {
    if shoal_upstream::is_registry_host(host) {
        Ok(host)
    } else {
        Err(RequestError::Registry(host.to_owned()))
    }
}

/// The token of an `Authorization: Bearer <token>` header, if that is what it is.
pub(crate) fn bearer_token(header: Option<&[u8]>) -> Option<&[u8]> {
    let value = header?;
    let (scheme, token) = value.split_at(value.iter().position(|&b| b == b' ')?);
    let token = token.trim_ascii();
    (scheme.eq_ignore_ascii_case(b"bearer") && !token.is_empty()).then_some(token)
}

/// `POST /v1/images` body.
#[derive(Debug, Deserialize)]
pub(crate) struct MirrorRequest {
    pub image: String,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    events: Vec<Event>,
}

#[derive(Debug, Deserialize)]
struct Event {
    action: String,
    target: Target,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Target {
    #[serde(default)]
    media_type: String,
    digest: Option<String>,
    repository: String,
    url: Option<String>,
    #[serde(default)]
    tag: Option<String>,
}

const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// The images a registry notification asks us to mirror: one `host/repo@digest` per push of
/// a manifest. The host comes from the event's target URL (how the registry was reached).
pub(crate) fn pushed_images(body: &[u8]) -> Result<Vec<String>, RequestError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| RequestError::Body(e.to_string()))?;
    let mut images = Vec::new();
    for event in envelope.events {
        let t = event.target;
        if event.action != "push" || !MANIFEST_TYPES.contains(&t.media_type.as_str()) {
            continue;
        }
        let Some(host) = t.url.as_deref().and_then(|u| url::Url::parse(u).ok()).and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            })
        }) else {
            continue;
        };
        let image = match (&t.digest, &t.tag) {
            (Some(d), _) => format!("{host}/{}@{d}", t.repository),
            (None, Some(tag)) => format!("{host}/{}:{tag}", t.repository),
            (None, None) => continue,
        };
        if !images.contains(&image) {
            images.push(image);
        }
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "4bd2a0a4f94b3fb26e3f1ce5bd0a1d5b6b0bba4b5d5e87b2e1e3e5f2c4a6b8d0";

    #[test]
    fn digests_and_webseed_names() {
        assert!(blob_digest(&format!("sha256:{HEX}")).is_ok());
        for bad in ["sha256:abc", "sha512:00", &format!("sha256:{}", HEX.to_uppercase()), "../etc/passwd", ""] {
            assert!(blob_digest(bad).is_err(), "{bad}");
        }
        assert!(webseed_name(&format!("sha256-{HEX}")).is_ok());
        for bad in ["..", "../../etc/passwd", &format!("sha256-{HEX}/x"), &format!("sha256:{HEX}"), HEX] {
            assert!(webseed_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repositories_and_registries() {
        for ok in ["app", "team/app", "a.b/c_d/e-f", "library/busybox"] {
            assert!(repository(ok).is_ok(), "{ok}");
        }
        for bad in ["", "App", "../x", "a//b", "a/", "-a", "a b"] {
            assert!(repository(bad).is_err(), "{bad}");
        }
        assert!(registry("127.0.0.1:5000").is_ok());
        assert!(registry("ghcr.io").is_ok());
        assert!(registry("http://x").is_err());
        assert!(registry("a/b").is_err());
    }

    #[test]
    fn notifications_yield_pushed_manifests_only() {
        let body = format!(
            r#"{{"events":[
              {{"action":"push","target":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{HEX}","repository":"team/app","url":"http://127.0.0.1:5000/v2/team/app/manifests/sha256:{HEX}","tag":"1.0"}}}},
              {{"action":"push","target":{{"mediaType":"application/octet-stream","digest":"sha256:{HEX}","repository":"team/app","url":"http://127.0.0.1:5000/v2/team/app/blobs/sha256:{HEX}"}}}},
              {{"action":"pull","target":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{HEX}","repository":"x","url":"http://h/v2/x/manifests/1"}}}}
            ]}}"#
        );
        assert_eq!(pushed_images(body.as_bytes()).unwrap(), vec![format!("127.0.0.1:5000/team/app@sha256:{HEX}")]);
        assert!(pushed_images(b"not json").is_err());
    }

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        assert_eq!(bearer_token(Some(b"Bearer s3cret")), Some(&b"s3cret"[..]));
        assert_eq!(bearer_token(Some(b"bearer  s3cret ")), Some(&b"s3cret"[..]));
        for not in [&b"Basic dTpw"[..], b"Bearer", b"Bearer ", b"s3cret", b""] {
            assert_eq!(bearer_token(Some(not)), None, "{:?}", String::from_utf8_lossy(not));
        }
        assert_eq!(bearer_token(None), None);
    }
}
