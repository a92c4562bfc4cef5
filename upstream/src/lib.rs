//! The upstream registries, through oci-client: references, credentials, manifests, blob streams.
//!
//! Anonymous access, HTTP basic auth and the bearer-token flow (a `WWW-Authenticate: Bearer
//! realm=..,service=..,scope=..` challenge answered with the basic credentials) are all
//! oci-client's: we hand it a [`RegistryAuth`] per registry. Loopback registries and those
//! listed as insecure are spoken to over plain HTTP. Credentials are kept in [`Credentials`],
//! whose `Debug` never shows the password, and are never logged.
//!
//! A registry shim may also pass on a client's own credentials for one call (`*_as` methods).
//! Which credentials a call uses: the client's when it sent any, else the configured ones of
//! that registry, else none. oci-client keeps the first credentials it sees per registry and
//! caches tokens, so a client's credentials get their own oci-client (kept in a small pool keyed
//! by a hash of the credentials): nothing learnt with them ever serves another client.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};
use oci_client::manifest::{
    OciDescriptor, IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use shoal_torrents::BlobDigest;

/// Manifest media types we ask for, indexes first.
pub const MANIFEST_MEDIA_TYPES: &[&str] =
    &[OCI_IMAGE_INDEX_MEDIA_TYPE, IMAGE_MANIFEST_LIST_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE];

mod error;
#[cfg(test)]
mod fuzz;
mod host;

pub use error::{causes, UpstreamError};
pub use host::is_registry_host;

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
    pub deadlines: Deadlines,
}

/// How long each stage of an upstream call may take, so a silent upstream is an error (and a
/// fallback) within these bounds instead of a hang.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// To open the TCP connection (and TLS).
    pub connect: Duration,
    /// From the request to the response's headers (a manifest's whole body), each call.
    pub first_byte: Duration,
    /// Between two reads of a body: a stream that stalls this long fails.
    pub idle: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self { connect: Duration::from_secs(2), first_byte: Duration::from_secs(10), idle: Duration::from_secs(30) }
    }
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

/// oci-clients of at most this many distinct client credentials are kept; the least recently
/// used goes first.
const CLIENT_POOL: usize = 64;

/// The upstream side: one oci-client per scheme, credentials per registry.
pub struct Upstream {
    https: Client,
    http: Client,
    config: UpstreamConfig,
    /// oci-clients for clients' own credentials, by a hash of scheme and credentials.
    per_client: Mutex<HashMap<[u8; 32], (Client, Instant)>>,
    /// Plain HTTP requests oci-client has no call for: `/v2/` pings and `WWW-Authenticate`.
    probe: reqwest::Client,
}

fn oci_client(protocol: ClientProtocol, deadlines: &Deadlines) -> Client {
    Client::new(ClientConfig {
        protocol,
        platform_resolver: None,
        connect_timeout: Some(deadlines.connect),
        // reqwest's read timeout is per read: the idle deadline of a body.
        read_timeout: Some(deadlines.idle),
        ..Default::default()
    })
}

/// `call`, or [`UpstreamError::TimedOut`] after `deadlines.first_byte`.
async fn within<T>(
    deadlines: &Deadlines,
    registry: &str,
    what: &'static str,
    call: impl std::future::Future<Output = Result<T, UpstreamError>>,
) -> Result<T, UpstreamError> {
    let after = deadlines.first_byte;
    tokio::time::timeout(after, call)
        .await
        .unwrap_or_else(|_| Err(UpstreamError::TimedOut { registry: registry.to_owned(), what, after }))
}

impl Upstream {
    pub fn new(config: UpstreamConfig) -> Self {
        let deadlines = config.deadlines;
        let probe = reqwest::Client::builder()
            .connect_timeout(deadlines.connect)
            .timeout(deadlines.first_byte)
            .build()
            .unwrap_or_default();
        Self {
            https: oci_client(ClientProtocol::Https, &deadlines),
            http: oci_client(ClientProtocol::Http, &deadlines),
            config,
            per_client: Mutex::default(),
            probe,
        }
    }

    /// True when credentials are configured for `registry`: its content is served to anyone
    /// the shim serves, under the operator's account.
    pub fn has_credentials(&self, registry: &str) -> bool {
        self.config.credentials.contains_key(registry)
    }

    pub fn default_registry(&self) -> Option<&str> {
        self.config.default_registry.as_deref()
    }

    /// The deadlines every call to upstream is held to.
    pub fn deadlines(&self) -> Deadlines {
        self.config.deadlines
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

    /// The oci-client and credentials one call uses: the client's own credentials when it
    /// sent any (with an oci-client of their own), else the registry's configured ones, else
    /// anonymous access.
    fn access(&self, reference: &Reference, client: Option<&RegistryAuth>) -> (Client, RegistryAuth) {
        let plain = self.is_plain_http(reference.registry());
        match client {
            Some(auth) if !matches!(auth, RegistryAuth::Anonymous) => {
                (self.client_for(plain, auth, Instant::now()), auth.clone())
            }
            _ => {
                let shared = if plain { &self.http } else { &self.https };
                let auth = match self.config.credentials.get(reference.registry()) {
                    Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
                    None => RegistryAuth::Anonymous,
                };
                (shared.clone(), auth)
            }
        }
    }

    fn client_for(&self, plain: bool, auth: &RegistryAuth, now: Instant) -> Client {
        let key = credentials_key(plain, auth);
        let mut pool = self.per_client.lock().expect("client pool lock");
        if let Some((client, used)) = pool.get_mut(&key) {
            *used = now;
            return client.clone();
        }
        if pool.len() >= CLIENT_POOL {
            if let Some(oldest) = pool.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| *k) {
                pool.remove(&oldest);
            }
        }
        let protocol = if plain { ClientProtocol::Http } else { ClientProtocol::Https };
        let client = oci_client(protocol, &self.config.deadlines);
        pool.insert(key, (client.clone(), now));
        client
    }

    /// `scheme://host` of a registry's API (Docker Hub's API is not at `docker.io`).
    fn api_base(&self, registry: &str) -> String {
        let scheme = if self.is_plain_http(registry) { "http" } else { "https" };
        let host =
            if registry == "docker.io" || registry == "index.docker.io" { "registry-1.docker.io" } else { registry };
        format!("{scheme}://{host}")
    }

    /// The `WWW-Authenticate` challenge the registry answers `path` (`/v2/...`) with when asked
    /// without credentials; `None` when it asks for none or cannot be reached.
    pub async fn challenge(&self, registry: &str, path: &str) -> Option<String> {
        let url = format!("{}{path}", self.api_base(registry));
        let response = self.probe.head(&url).send().await.ok()?;
        if response.status() != reqwest::StatusCode::UNAUTHORIZED {
            return None;
        }
        response.headers().get(reqwest::header::WWW_AUTHENTICATE)?.to_str().ok().map(str::to_owned)
    }

    /// Asks the registry's `/v2/` with a client's credentials (or none). `Ok(Some(challenge))`
    /// when it refuses them, `Ok(None)` when it accepts, `Err` when it cannot be reached.
    pub async fn ping(&self, registry: &str, client: Option<&RegistryAuth>) -> Result<Option<String>, UpstreamError> {
        let url = format!("{}/v2/", self.api_base(registry));
        let request = match client {
            Some(RegistryAuth::Basic(user, password)) => self.probe.get(&url).basic_auth(user, Some(password)),
            Some(RegistryAuth::Bearer(token)) => self.probe.get(&url).bearer_auth(token),
            _ => self.probe.get(&url),
        };
        let response = request
            .send()
            .await
            .map_err(|e| UpstreamError::Unreachable { registry: registry.to_owned(), message: e.to_string() })?;
        if response.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(None);
        }
        let challenge = response.headers().get(reqwest::header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok());
        Ok(Some(challenge.unwrap_or("").to_owned()))
    }

    fn registry_error(
        reference: &Reference,
    ) -> impl FnOnce(oci_client::errors::OciDistributionError) -> UpstreamError + '_ {
        move |error| UpstreamError::Registry { registry: reference.registry().to_owned(), error }
    }

    /// Pulls a manifest or index as raw bytes.
    pub async fn manifest(&self, reference: &Reference) -> Result<PulledManifest, UpstreamError> {
        self.manifest_as(reference, None).await
    }

    /// [`Self::manifest`] with a client's own credentials, if it sent any.
    pub async fn manifest_as(
        &self,
        reference: &Reference,
        client: Option<&RegistryAuth>,
    ) -> Result<PulledManifest, UpstreamError> {
        let (oci, auth) = self.access(reference, client);
        let pull = async {
            oci.pull_manifest_raw(reference, &auth, MANIFEST_MEDIA_TYPES).await.map_err(Self::registry_error(reference))
        };
        let (bytes, digest) = within(&self.config.deadlines, reference.registry(), "a manifest request", pull).await?;
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

    /// One page of `repository`'s tags at `registry`: at most `n` after `last`, as upstream
    /// lists them, with a client's own credentials if it sent any.
    pub async fn tags_as(
        &self,
        registry: &str,
        repository: &str,
        client: Option<&RegistryAuth>,
        n: Option<usize>,
        last: Option<&str>,
    ) -> Result<Vec<String>, UpstreamError> {
        // oci-client names a repository by a reference; the tag in it is not sent.
        let reference = Self::parse_reference(&format!("{registry}/{repository}:latest"))?;
        let (oci, auth) = self.access(&reference, client);
        let list = async { oci.list_tags(&reference, &auth, n, last).await.map_err(Self::registry_error(&reference)) };
        Ok(within(&self.config.deadlines, registry, "a tag list request", list).await?.tags)
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
        self.blob_from_as(reference, digest, size, offset, None).await
    }

    /// Whether the registry lets these credentials (a client's, or the configured ones) read
    /// the blob in `reference`'s repository: a `HEAD`, no body. `Ok(false)`: it has no such blob.
    pub async fn blob_readable(
        &self,
        reference: &Reference,
        digest: &BlobDigest,
        client: Option<&RegistryAuth>,
    ) -> Result<bool, UpstreamError> {
        let (oci, auth) = self.access(reference, client);
        oci.auth(reference, &auth, oci_client::RegistryOperation::Pull)
            .await
            .map_err(Self::registry_error(reference))?;
        oci.blob_exists(reference, &digest.to_string()).await.map_err(|e| {
            use oci_client::errors::OciDistributionError as E;
            let e = match e {
                E::RequestError(r) if r.status() == Some(reqwest::StatusCode::UNAUTHORIZED) => {
                    E::UnauthorizedError { url: r.url().map(|u| u.path().to_owned()).unwrap_or_default() }
                }
                other => other,
            };
            Self::registry_error(reference)(e)
        })
    }

    /// [`Self::blob_from`] with a client's own credentials, if it sent any.
    pub async fn blob_from_as(
        &self,
        reference: &Reference,
        digest: &BlobDigest,
        size: Option<u64>,
        offset: u64,
        client: Option<&RegistryAuth>,
    ) -> Result<BlobStream, UpstreamError> {
        let (client, auth) = self.access(reference, client);
        let descriptor =
            OciDescriptor { digest: digest.to_string(), size: size.unwrap_or(0) as i64, ..Default::default() };
        let open = async {
            client
                .auth(reference, &auth, oci_client::RegistryOperation::Pull)
                .await
                .map_err(Self::registry_error(reference))?;
            client
                .pull_blob_stream_partial(reference, &descriptor, offset, None)
                .await
                .map_err(Self::registry_error(reference))
        };
        let response = within(&self.config.deadlines, reference.registry(), "a blob request", open).await?;
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
        let (registry, idle) = (reference.registry().to_owned(), self.config.deadlines.idle);
        let chunks = stream.stream.map_err(move |e| error::body_error(e, &registry, idle)).boxed();
        Ok(BlobStream { size, chunks })
    }
}

/// A pool key for a client's credentials: their hash, never the credentials themselves.
fn credentials_key(plain_http: bool, auth: &RegistryAuth) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(if plain_http { &b"http\0"[..] } else { &b"https\0"[..] });
    match auth {
        RegistryAuth::Anonymous => h.update(b"anonymous"),
        RegistryAuth::Basic(user, password) => {
            h.update(b"basic\0");
            h.update((user.len() as u64).to_be_bytes());
            h.update(user.as_bytes());
            h.update(password.as_bytes());
        }
        RegistryAuth::Bearer(token) => {
            h.update(b"bearer\0");
            h.update(token.as_bytes());
        }
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clients_credentials_decide_over_configured_ones_and_get_their_own_oci_client() {
        let mut credentials = HashMap::new();
        credentials.insert("127.0.0.1:5000".to_owned(), Credentials { username: "op".into(), password: "pw".into() });
        let up = Upstream::new(UpstreamConfig { credentials, ..Default::default() });
        let configured = Upstream::parse_reference("127.0.0.1:5000/app:1").unwrap();
        let open = Upstream::parse_reference("127.0.0.1:6000/app:1").unwrap();
        let alice = RegistryAuth::Basic("alice".into(), "a".into());
        assert!(matches!(up.access(&configured, None).1, RegistryAuth::Basic(u, _) if u == "op"));
        assert!(
            matches!(up.access(&configured, Some(&RegistryAuth::Anonymous)).1, RegistryAuth::Basic(u, _) if u == "op")
        );
        assert!(matches!(up.access(&configured, Some(&alice)).1, RegistryAuth::Basic(u, _) if u == "alice"));
        assert!(matches!(up.access(&open, None).1, RegistryAuth::Anonymous));
        assert!(matches!(up.access(&open, Some(&RegistryAuth::Bearer("t".into()))).1, RegistryAuth::Bearer(_)));
        // One oci-client per credentials (and scheme), reused, never the shared one.
        up.access(&open, Some(&alice));
        up.access(&configured, Some(&alice));
        up.access(&open, Some(&RegistryAuth::Basic("alice".into(), "b".into())));
        assert_eq!(up.per_client.lock().unwrap().len(), 3);
        assert!(up.has_credentials("127.0.0.1:5000") && !up.has_credentials("127.0.0.1:6000"));
    }

    #[test]
    fn the_client_pool_is_bounded_and_drops_the_least_recently_used() {
        let up = Upstream::new(UpstreamConfig::default());
        let start = Instant::now();
        for i in 0..CLIENT_POOL + 5 {
            let at = start + std::time::Duration::from_millis(i as u64);
            up.client_for(true, &RegistryAuth::Bearer(format!("token-{i}")), at);
        }
        let pool = up.per_client.lock().unwrap();
        assert_eq!(pool.len(), CLIENT_POOL);
        assert!(!pool.contains_key(&credentials_key(true, &RegistryAuth::Bearer("token-0".into()))));
        assert!(pool.contains_key(&credentials_key(true, &RegistryAuth::Bearer(format!("token-{}", CLIENT_POOL + 4)))));
        // A user name cannot run into its password.
        let a = credentials_key(true, &RegistryAuth::Basic("ab".into(), "c".into()));
        assert_ne!(a, credentials_key(true, &RegistryAuth::Basic("a".into(), "bc".into())));
        assert_ne!(a, credentials_key(false, &RegistryAuth::Basic("ab".into(), "c".into())));
    }

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

    #[tokio::test]
    async fn a_refused_connection_is_unreachable() {
        // A port nobody listens on (bound, then closed).
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let up = Upstream::new(UpstreamConfig::default());
        let reference = Upstream::parse_reference(&format!("{closed}/app:1")).unwrap();
        let error = up.manifest(&reference).await.unwrap_err();
        assert_eq!(error.reason(), "unreachable", "{error:?}");
    }

    #[tokio::test]
    async fn a_silent_upstream_is_a_timeout_within_the_first_byte_deadline() {
        // Accepts (the kernel's backlog does) and never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let deadlines = Deadlines { first_byte: std::time::Duration::from_millis(300), ..Default::default() };
        let up = Upstream::new(UpstreamConfig { deadlines, ..Default::default() });
        let reference = Upstream::parse_reference(&format!("{}/app:1", silent.local_addr().unwrap())).unwrap();
        let started = Instant::now();
        let error = up.manifest(&reference).await.unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(3), "{:?}", started.elapsed());
        assert_eq!(error.reason(), "timeout", "{error}");
        assert!(error.to_string().contains("did not answer a manifest request within 300ms"), "{error}");
        let digest = BlobDigest::from_bytes([0; 32]);
        let error = up.blob(&reference, &digest, Some(1)).await.err().unwrap();
        assert_eq!(error.reason(), "timeout", "{error}");
        let error = up.tags_as(reference.registry(), "app", None, None, None).await.unwrap_err();
        assert_eq!(error.reason(), "timeout", "{error}");
        drop(silent);
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
