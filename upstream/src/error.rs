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

/// `e` and its sources, joined by ": ", each once (layers often repeat their inner message).
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
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
