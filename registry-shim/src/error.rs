//! The shim's errors, each with its OCI error code; the HTTP edge adds the status code.

/// Everything a pull can fail with, as the Distribution spec names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid repository name {0:?}")]
    NameInvalid(String),
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
            RegistryError::NameInvalid(_) => "NAME_INVALID",
            RegistryError::DigestInvalid(_) => "DIGEST_INVALID",
            RegistryError::ManifestInvalid(_) => "MANIFEST_INVALID",
            RegistryError::ManifestUnknown(_) => "MANIFEST_UNKNOWN",
            RegistryError::BlobUnknown(_) | RegistryError::RangeNotSatisfiable { .. } => "BLOB_UNKNOWN",
            RegistryError::Unsupported(_) => "UNSUPPORTED",
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
