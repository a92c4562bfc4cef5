//! Why an upstream call failed ([`UpstreamError`]), and the one classification of failures
//! every metric label and error body uses ([`UpstreamError::reason`]).

use std::time::Duration;

use shoal_torrents::BlobDigest;

/// Why talking to an upstream registry failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("invalid image reference {reference:?}: {message}")]
    Reference { reference: String, message: String },
    /// Formats the whole cause chain (reqwest's own message stops at "error sending request",
    /// hiding the refused connection or DNS failure beneath), as logs and error bodies need.
    #[error("upstream {registry}: {}", causes(.error))]
    Registry { registry: String, error: oci_client::errors::OciDistributionError },
    #[error("upstream {registry} is unreachable: {message}")]
    Unreachable { registry: String, message: String },
    #[error("upstream {registry} sent no size for blob {digest}")]
    UnknownSize { registry: String, digest: BlobDigest },
    #[error("upstream {registry} ignored a range request from byte {offset}")]
    RangeIgnored { registry: String, offset: u64 },
    #[error("manifest {digest} from {registry} is not valid: {message}")]
    Manifest { registry: String, digest: String, message: String },
    #[error("upstream {registry} did not answer {what} within {after:?} (--upstream-first-byte-timeout-ms)")]
    TimedOut { registry: String, what: &'static str, after: Duration },
}

/// `e` and its sources, joined by ": ", each once (layers often repeat their inner message):
/// reqwest's own message stops at "error sending request", above the refused connection.
pub fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// A blob body's read error as its client should see it: the whole cause chain (reqwest says
/// only "error decoding response body"; a read timeout is a level down), and a stall named as
/// the idle deadline it ran into.
pub(crate) fn body_error(e: std::io::Error, registry: &str, idle: Duration) -> std::io::Error {
    let inner: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|i| i as _);
    let mut timed_out = e.kind() == std::io::ErrorKind::TimedOut;
    let mut level = inner;
    while let Some(cause) = level {
        // reqwest's read timeout is its private `TimedOut` ("operation timed out") under a
        // body error whose own `is_timeout` is false: known by its text.
        timed_out |= cause.downcast_ref::<reqwest::Error>().is_some_and(reqwest::Error::is_timeout)
            || cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            || cause.to_string() == "operation timed out";
        level = cause.source();
    }
    let kind = if timed_out { std::io::ErrorKind::TimedOut } else { e.kind() };
    let message = if timed_out {
        format!("upstream {registry} sent no byte of the body for {idle:?} (--upstream-idle-timeout-ms)")
    } else {
        format!("upstream {registry}: {}", inner.map_or_else(|| e.to_string(), causes))
    };
    std::io::Error::new(kind, message)
}

impl UpstreamError {
    /// Whether upstream said the thing asked for does not exist (no such manifest, tag, blob
    /// or repository), as opposed to failing.
    pub fn is_not_found(&self) -> bool {
        use oci_client::errors::{OciDistributionError as E, OciErrorCode as C};
        let Self::Registry { error, .. } = self else { return false };
        match error {
            E::ImageManifestNotFoundError(_) | E::ServerError { code: 404, .. } => true,
            E::RegistryError { envelope, .. } => envelope
                .errors
                .first()
                .is_some_and(|e| matches!(e.code, C::ManifestUnknown | C::BlobUnknown | C::NameUnknown | C::NotFound)),
            _ => false,
        }
    }

    /// The failure's kind, as a metric label: `not_found`, `unauthorized`, `rate_limited`,
    /// `timeout`, `unreachable` (DNS, refused, reset), `http_status` (any other error status),
    /// `bad_reference`, `bad_manifest`, `protocol` (answers that break the spec) or `other`.
    pub fn reason(&self) -> &'static str {
        use oci_client::errors::{OciDistributionError as E, OciErrorCode as C};
        if self.is_not_found() {
            return "not_found";
        }
        match self {
            Self::Reference { .. } => "bad_reference",
            Self::Unreachable { .. } => "unreachable",
            Self::TimedOut { .. } => "timeout",
            Self::UnknownSize { .. } | Self::RangeIgnored { .. } => "protocol",
            Self::Manifest { .. } => "bad_manifest",
            Self::Registry { error, .. } => match error {
                E::AuthenticationFailure(_) | E::UnauthorizedError { .. } => "unauthorized",
                E::ServerError { code: 401 | 403, .. } => "unauthorized",
                E::ServerError { code: 429, .. } => "rate_limited",
                E::ServerError { .. } => "http_status",
                E::RegistryError { envelope, .. } => match envelope.errors.first().map(|e| &e.code) {
                    Some(C::Unauthorized | C::Denied) => "unauthorized",
                    Some(C::Toomanyrequests) => "rate_limited",
                    _ => "http_status",
                },
                E::RequestError(e) if e.is_timeout() => "timeout",
                E::RequestError(e) if e.is_connect() || e.is_request() => "unreachable",
                E::RequestError(e) if e.status().is_some() => "http_status",
                E::ManifestParsingError(_)
                | E::JsonError(_)
                | E::ManifestEncodingError(_)
                | E::UnsupportedMediaTypeError(_)
                | E::UnsupportedSchemaVersionError(_)
                | E::VersionedParsingError(_) => "bad_manifest",
                E::SpecViolationError(_) | E::DigestError(_) | E::RegistryNoDigestError => "protocol",
                E::UrlParseError(_) => "bad_reference",
                _ => "other",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Upstream;

    #[derive(Debug, thiserror::Error)]
    #[error("error decoding response body")]
    struct Decode(#[source] std::io::Error);

    #[test]
    fn a_body_error_names_its_causes_and_a_stall_its_deadline() {
        let idle = Duration::from_secs(30);
        let stalled = std::io::Error::other(Decode(std::io::Error::other("operation timed out")));
        let e = body_error(stalled, "r.example", idle);
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(e.to_string(), "upstream r.example sent no byte of the body for 30s (--upstream-idle-timeout-ms)");
        let reset = std::io::Error::other(Decode(std::io::Error::other("connection reset by peer")));
        let e = body_error(reset, "r.example", idle);
        assert_eq!(e.to_string(), "upstream r.example: error decoding response body: connection reset by peer");
    }

    #[test]
    fn failures_are_labelled_by_their_kind() {
        use oci_client::errors::OciDistributionError as E;
        let status = |code: u16| UpstreamError::Registry {
            registry: "r".into(),
            error: E::ServerError { code, url: "http://r/v2/".into(), message: String::new() },
        };
        let labels: Vec<_> = [404, 401, 403, 429, 500, 502].map(|c| status(c).reason()).into();
        assert_eq!(labels, ["not_found", "unauthorized", "unauthorized", "rate_limited", "http_status", "http_status"]);
        let unreachable = UpstreamError::Unreachable { registry: "r".into(), message: "refused".into() };
        assert_eq!(unreachable.reason(), "unreachable");
        assert_eq!(Upstream::parse_reference("not a reference").unwrap_err().reason(), "bad_reference");
        let manifest = UpstreamError::Manifest { registry: "r".into(), digest: "d".into(), message: "m".into() };
        assert_eq!(manifest.reason(), "bad_manifest");
        let ignored = UpstreamError::RangeIgnored { registry: "r".into(), offset: 1 };
        assert_eq!(ignored.reason(), "protocol");
    }

    #[test]
    fn a_registry_error_names_its_whole_cause_chain_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("error sending request")]
        struct Outer(#[source] std::io::Error);
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused (os error 111)");
        let chain = causes(&Outer(inner));
        assert_eq!(chain, "error sending request: Connection refused (os error 111)");
        let repeated = std::io::Error::other(Outer(std::io::Error::other("x")));
        assert_eq!(causes(&repeated), "error sending request: x");
    }
}
