//! The shim's errors, each with its OCI error code; the HTTP edge adds the status code. Also
//! how an upstream failure becomes one ([`upstream_error`]), and the cloneable failure of a
//! download shared by several clients ([`DownloadFailed`]).

use std::sync::Arc;

/// Everything a pull can fail with, as the Distribution spec names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid repository name {0:?}")]
    NameInvalid(String),
    #[error("ns={0:?} is not a registry host (host[:port])")]
    NamespaceInvalid(String),
    #[error("invalid digest {0:?}")]
    DigestInvalid(String),
    #[error("{0}")]
    ManifestInvalid(String),
    #[error("manifest unknown: {0}")]
    ManifestUnknown(String),
    #[error("blob unknown: {0}")]
    BlobUnknown(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("invalid pagination: {0}")]
    PaginationInvalid(String),
    #[error("authentication required")]
    Unauthorized { www_authenticate: Option<String> },
    #[error("access denied")]
    Denied,
    #[error("not found")]
    NotFound,
    #[error("the requested range cannot be satisfied")]
    RangeNotSatisfiable { size: u64 },
    /// Upstream failed or is unreachable and nothing cached can answer.
    #[error("upstream unavailable: {0}")]
    Unavailable(String),
}

impl RegistryError {
    /// The `code` field of the OCI error envelope.
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::NameInvalid(_) | RegistryError::NamespaceInvalid(_) => "NAME_INVALID",
            RegistryError::DigestInvalid(_) => "DIGEST_INVALID",
            RegistryError::ManifestInvalid(_) => "MANIFEST_INVALID",
            RegistryError::ManifestUnknown(_) => "MANIFEST_UNKNOWN",
            RegistryError::BlobUnknown(_) | RegistryError::RangeNotSatisfiable { .. } => "BLOB_UNKNOWN",
            RegistryError::Unsupported(_) => "UNSUPPORTED",
            RegistryError::PaginationInvalid(_) => "PAGINATION_NUMBER_INVALID",
            RegistryError::Unauthorized { .. } => "UNAUTHORIZED",
            RegistryError::Denied => "DENIED",
            RegistryError::NotFound => "NAME_UNKNOWN",
            RegistryError::Unavailable(_) => "UNAVAILABLE",
        }
    }

    /// The OCI JSON envelope: `{"errors":[{"code":..,"message":..}]}`.
    pub fn envelope(&self) -> String {
        serde_json::json!({ "errors": [{ "code": self.code(), "message": self.to_string() }] }).to_string()
    }
}

/// A shared download's failure, as every client waiting on it sees it: cheap to clone, and it
/// formats its cause (it does not chain it).
#[derive(Clone, Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct DownloadFailed(Arc<dyn std::error::Error + Send + Sync>);

impl DownloadFailed {
    pub(crate) fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(e))
    }

    /// The leader went away without an outcome (its task was cancelled at shutdown).
    pub(crate) fn lost() -> Self {
        Self::new(RegistryError::Unavailable("the shared download was lost".into()))
    }
}

/// What a request was after, so a 404 upstream becomes the right OCI code.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Subject {
    Blob,
    Manifest,
    /// A repository's tag list: upstream's 404 means the repository is unknown.
    Tags,
}

/// Maps an upstream failure to what the shim's client should hear.
pub(crate) fn upstream_error(subject: Subject, what: &str, e: shoal_upstream::UpstreamError) -> RegistryError {
    let unknown = || match subject {
        Subject::Blob => RegistryError::BlobUnknown(what.to_owned()),
        Subject::Manifest => RegistryError::ManifestUnknown(what.to_owned()),
        Subject::Tags => RegistryError::NotFound,
    };
    use oci_client::errors::{OciDistributionError as E, OciErrorCode as C};
    use shoal_upstream::UpstreamError as U;
    match &e {
        U::Registry { error, .. } => match error {
            E::ImageManifestNotFoundError(_) => unknown(),
            E::UnauthorizedError { .. } | E::AuthenticationFailure(_) => {
                RegistryError::Unauthorized { www_authenticate: None }
            }
            E::ServerError { code: 404, .. } => unknown(),
            E::ServerError { code: 401, .. } => RegistryError::Unauthorized { www_authenticate: None },
            E::ServerError { code: 403, .. } => RegistryError::Denied,
            E::RegistryError { envelope, .. } => match envelope.errors.first().map(|x| &x.code) {
                Some(C::BlobUnknown | C::ManifestUnknown | C::NotFound) => unknown(),
                Some(C::NameUnknown) => RegistryError::NotFound,
                Some(C::Unauthorized) => RegistryError::Unauthorized { www_authenticate: None },
                Some(C::Denied) => RegistryError::Denied,
                _ => RegistryError::Unavailable(e.to_string()),
            },
            _ => RegistryError::Unavailable(e.to_string()),
        },
        U::Reference { .. } => RegistryError::NameInvalid(what.to_owned()),
        _ => RegistryError::Unavailable(e.to_string()),
    }
}
