//! The upstream registries, through oci-client: references, credentials, manifests, blob streams.
//!
//! Anonymous access, HTTP basic auth and the bearer-token flow (a `WWW-Authenticate: Bearer
//! realm=..,service=..,scope=..` challenge answered with the basic credentials) are all
//! oci-client's: we hand it a [`RegistryAuth`] per registry. Loopback registries and those
//! listed as insecure are spoken to over plain HTTP. Credentials are kept in [`Credentials`],
//! whose `Debug` never shows the password, and are never logged.

use std::collections::HashMap;
use std::fmt;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};
use oci_client::manifest::{
    OciDescriptor, IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Deserialize;
use shoal_torrents::BlobDigest;

/// Manifest media types we ask for, indexes first.
pub const MANIFEST_MEDIA_TYPES: &[&str] =
    &[OCI_IMAGE_INDEX_MEDIA_TYPE, IMAGE_MANIFEST_LIST_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE];

/// Why talking to an upstream registry failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("invalid image reference {reference:?}: {message}")]
    Reference { reference: String, message: String },
    #[error("upstream {registry}: {source}")]
    Registry {
        registry: String,
        #[source]
        source: oci_client::errors::OciDistributionError,
    },
    #[error("upstream {registry} sent no size for blob {digest}")]
    UnknownSize { registry: String, digest: BlobDigest },
    #[error("upstream {registry} ignored a range request from byte {offset}")]
    RangeIgnored { registry: String, offset: u64 },
    #[error("manifest {digest} from {registry} is not valid: {message}")]
    Manifest { registry: String, digest: String, message: String },
}

/// A username and password for one registry. `Debug` redacts the password.
#[derive(Clone, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// How to reach upstream registries.
#[derive(Clone, Debug, Default)]
pub struct UpstreamConfig {
    /// Registries (`host[:port]`) spoken to over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// Credentials per registry host, exactly as the reference names it (`ghcr.io`,
    /// `127.0.0.1:5000`); Docker Hub is `docker.io`.
    pub credentials: HashMap<String, Credentials>,
    /// Registry used when a torrent request names a repository but no `ns`.
    pub default_registry: Option<String>,
}

/// A manifest as pulled: raw bytes, their digest and media type.
#[derive(Clone, Debug)]
pub struct PulledManifest {
    pub bytes: Bytes,
    pub digest: String,
    pub media_type: String,
}

/// A blob body on its way from upstream.
pub struct BlobStream {
    pub size: u64,
    pub chunks: BoxStream<'static, Result<Bytes, std::io::Error>>,
}

/// The upstream side: one oci-client per scheme, credentials per registry.
pub struct Upstream {
    https: Client,
    http: Client,
    config: UpstreamConfig,
}

impl Upstream {
    pub fn new(config: UpstreamConfig) -> Self {
        let client = |protocol| Client::new(ClientConfig { protocol, platform_resolver: None, ..Default::default() });
        Self { https: client(ClientProtocol::Https), http: client(ClientProtocol::Http), config }
    }

    pub fn default_registry(&self) -> Option<&str> {
        self.config.default_registry.as_deref()
    }

    /// Parses an image reference the way docker does (`busybox` is
    /// `docker.io/library/busybox:latest`; `host:port/repo@sha256:..` pins a digest).
    pub fn parse_reference(reference: &str) -> Result<Reference, UpstreamError> {
        reference
            .parse::<Reference>()
            .map_err(|e| UpstreamError::Reference { reference: reference.to_owned(), message: e.to_string() })
    }

    /// A reference to `repo` (optionally `registry/repo`) at a digest. `registry` overrides
    /// what `repo` names; without either, the default registry, then Docker Hub.
    pub fn blob_reference(
        &self,
        registry: Option<&str>,
        repo: &str,
        digest: &BlobDigest,
    ) -> Result<Reference, UpstreamError> {
        let name = match registry.or(self.default_registry()) {
            Some(registry) => format!("{registry}/{repo}@{digest}"),
            None => format!("{repo}@{digest}"),
        };
        Self::parse_reference(&name)
    }

    /// True for registries we reach over plain HTTP: loopback ones and configured ones.
    pub fn is_plain_http(&self, registry: &str) -> bool {
        let host = match registry.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => registry,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        loopback || self.config.insecure_registries.iter().any(|r| r == registry)
    }

    fn client(&self, reference: &Reference) -> &Client {
        if self.is_plain_http(reference.registry()) {
            &self.http
        } else {
            &self.https
        }
    }

    fn auth(&self, reference: &Reference) -> RegistryAuth {
        match self.config.credentials.get(reference.registry()) {
            Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
            None => RegistryAuth::Anonymous,
        }
    }

    fn registry_error(
        reference: &Reference,
    ) -> impl FnOnce(oci_client::errors::OciDistributionError) -> UpstreamError + '_ {
        move |source| UpstreamError::Registry { registry: reference.registry().to_owned(), source }
    }

    /// Pulls a manifest or index as raw bytes.
    pub async fn manifest(&self, reference: &Reference) -> Result<PulledManifest, UpstreamError> {
        let auth = self.auth(reference);
        let (bytes, digest) = self
            .client(reference)
            .pull_manifest_raw(reference, &auth, MANIFEST_MEDIA_TYPES)
            .await
            .map_err(Self::registry_error(reference))?;
        #[derive(Deserialize)]
        struct Probe {
            #[serde(rename = "mediaType")]
            media_type: Option<String>,
            manifests: Option<serde_json::Value>,
        }
        let probe: Probe = serde_json::from_slice(&bytes).map_err(|e| UpstreamError::Manifest {
            registry: reference.registry().to_owned(),
            digest: digest.clone(),
            message: e.to_string(),
        })?;
        let media_type = probe.media_type.unwrap_or_else(|| {
            if probe.manifests.is_some() { OCI_IMAGE_INDEX_MEDIA_TYPE } else { OCI_IMAGE_MEDIA_TYPE }.to_owned()
        });
        Ok(PulledManifest { bytes, digest, media_type })
    }

    /// Opens a blob's body. The bytes are not verified here: the store verifies them in the
    /// same pass that writes and torrents them (asking for `bytes=0-` keeps oci-client from
    /// hashing them a second time).
    pub async fn blob(
        &self,
        reference: &Reference,
        digest: &BlobDigest,
        size: Option<u64>,
    ) -> Result<BlobStream, UpstreamError> {
        self.blob_from(reference, digest, size, 0).await
    }

    /// Opens a blob's body from byte `offset` on (a shim resuming what the swarm did not
    /// deliver). `size` is the whole blob's; the stream holds `size - offset` bytes.
    pub async fn blob_from(
        &self,
        reference: &Reference,
        digest: &BlobDigest,
        size: Option<u64>,
        offset: u64,
    ) -> Result<BlobStream, UpstreamError> {
        let auth = self.auth(reference);
        let client = self.client(reference);
        client
            .auth(reference, &auth, oci_client::RegistryOperation::Pull)
            .await
            .map_err(Self::registry_error(reference))?;
        let descriptor =
            OciDescriptor { digest: digest.to_string(), size: size.unwrap_or(0) as i64, ..Default::default() };
        let response = client
            .pull_blob_stream_partial(reference, &descriptor, offset, None)
            .await
            .map_err(Self::registry_error(reference))?;
        let (stream, partial) = match response {
            BlobResponse::Full(s) => (s, false),
            BlobResponse::Partial(s) => (s, true),
        };
        if offset > 0 && !partial {
            return Err(UpstreamError::RangeIgnored { registry: reference.registry().to_owned(), offset });
        }
        let size = size
            .or(stream.content_length.map(|len| len + offset))
            .ok_or_else(|| UpstreamError::UnknownSize { registry: reference.registry().to_owned(), digest: *digest })?;
        Ok(BlobStream { size, chunks: stream.stream })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_the_docker_way() {
        let r = Upstream::parse_reference("busybox").unwrap();
        assert_eq!(r.whole(), "docker.io/library/busybox:latest");
        let r = Upstream::parse_reference("127.0.0.1:5000/team/app:1.0").unwrap();
        assert_eq!((r.registry(), r.repository(), r.tag()), ("127.0.0.1:5000", "team/app", Some("1.0")));
        let pinned = format!("localhost:5000/app@sha256:{}", "a".repeat(64));
        assert_eq!(Upstream::parse_reference(&pinned).unwrap().digest(), Some(&pinned[19..]));
        assert!(Upstream::parse_reference("not a reference").is_err());
    }

    #[test]
    fn loopback_and_listed_registries_are_plain_http() {
        let up =
            Upstream::new(UpstreamConfig { insecure_registries: vec!["reg.lan:5000".into()], ..Default::default() });
        for r in ["127.0.0.1:5000", "localhost:5000", "[::1]:5000", "localhost", "reg.lan:5000"] {
            assert!(up.is_plain_http(r), "{r}");
        }
        for r in ["ghcr.io", "docker.io", "reg.lan:5001", "10.0.0.1:5000"] {
            assert!(!up.is_plain_http(r), "{r}");
        }
    }

    #[test]
    fn credentials_never_show_their_password() {
        let c = Credentials { username: "alice".into(), password: "hunter2".into() };
        let shown = format!("{c:?}");
        assert!(shown.contains("alice") && !shown.contains("hunter2"));
    }

    #[test]
    fn blob_references_use_ns_then_the_default_registry() {
        let d: BlobDigest = format!("sha256:{}", "b".repeat(64)).parse().unwrap();
        let up =
            Upstream::new(UpstreamConfig { default_registry: Some("127.0.0.1:5000".into()), ..Default::default() });
        let r = up.blob_reference(None, "app", &d).unwrap();
        assert_eq!((r.registry(), r.repository()), ("127.0.0.1:5000", "app"));
        let r = up.blob_reference(Some("ghcr.io"), "org/app", &d).unwrap();
        assert_eq!((r.registry(), r.repository(), r.digest()), ("ghcr.io", "org/app", Some(d.to_string().as_str())));
    }
}
