//! Flag groups several subcommands share: upstream access, store limits, BitTorrent listening,
//! what the seeder mirrors and how it retries, TLS on an HTTP edge.
//!
//! Each subcommand keeps its own environment names (`SHOAL_SEEDER_…`, `SHOAL_SHIM_…`, and
//! `SHOAL_…` for `shoal up`), which compose files and units already use, so a group is a macro
//! stamped out once per prefix; the fields and their meaning are written once, here, and each
//! group has one conversion into its library config (in `commands/common.rs`).

/// `--insecure-registry`, `--upstream-username`, `--upstream-password` and the three upstream
/// deadlines.
// Not rustfmt's: it indents the multi-line attributes further on every run.
#[rustfmt::skip]
macro_rules! upstream_flags {
    ($name:ident, $env:literal) => {
        #[derive(clap::Args, Debug, Clone)]
        pub struct $name {
            /// Registries reached over plain HTTP besides loopback ones (repeat or comma-separate).
            #[arg(long = "insecure-registry", env = concat!($env, "INSECURE_REGISTRIES"), value_delimiter = ',')]
            pub insecure_registries: Vec<String>,
            /// Username for --upstream (basic auth, or the bearer-token flow's credentials).
            #[arg(long, env = concat!($env, "UPSTREAM_USERNAME"))]
            pub upstream_username: Option<String>,
            /// Password for --upstream; prefer the environment variable to the flag.
            #[arg(long, env = concat!($env, "UPSTREAM_PASSWORD"), hide_env_values = true)]
            pub upstream_password: Option<super::Secret>,
            /// Milliseconds to connect to an upstream registry before the call fails.
            #[arg(long, env = concat!($env, "UPSTREAM_CONNECT_TIMEOUT_MS"), default_value_t = 2000,
                  value_parser = clap::value_parser!(u64).range(1..))]
            pub upstream_connect_timeout_ms: u64,
            /// Milliseconds from a request to upstream's answer (headers; a manifest's body).
            #[arg(long, env = concat!($env, "UPSTREAM_FIRST_BYTE_TIMEOUT_MS"), default_value_t = 10000,
                  value_parser = clap::value_parser!(u64).range(1..))]
            pub upstream_first_byte_timeout_ms: u64,
            /// Milliseconds a blob body from upstream may go without a byte before it fails.
            #[arg(long, env = concat!($env, "UPSTREAM_IDLE_TIMEOUT_MS"), default_value_t = 30000,
                  value_parser = clap::value_parser!(u64).range(1..))]
            pub upstream_idle_timeout_ms: u64,
        }

        impl From<$name> for UpstreamFlags {
            fn from(f: $name) -> Self {
                Self {
                    insecure_registries: f.insecure_registries,
                    username: f.upstream_username,
                    password: f.upstream_password,
                    deadlines: shoal_upstream::Deadlines {
                        connect: std::time::Duration::from_millis(f.upstream_connect_timeout_ms),
                        first_byte: std::time::Duration::from_millis(f.upstream_first_byte_timeout_ms),
                        idle: std::time::Duration::from_millis(f.upstream_idle_timeout_ms),
                    },
                }
            }
        }
    };
}

/// `--max-store-bytes` and its two watermarks (with a long-name prefix for `shoal up`'s shim).
// Not rustfmt's: it indents the multi-line attributes further on every run.
#[rustfmt::skip]
macro_rules! store_limit_flags {
    ($name:ident, $long:literal, $env:literal) => {
        #[derive(clap::Args, Debug, Clone)]
        pub struct $name {
            /// Largest size of the blob store: bytes, or with a unit (500MiB, 10GiB, 2TB);
            /// `auto`: what is stored plus 80% of the filesystem's free space at start (40% each
            /// for `shoal up`'s seeder and shim, which share it); `none`: no limit. Above the
            /// high watermark least-recently-used blobs not in use (served, seeded to a
            /// downloading peer, downloaded) are evicted.
            #[arg(
                id = concat!($long, "max-store-bytes"),
                long = concat!($long, "max-store-bytes"),
                env = concat!($env, "MAX_STORE_BYTES"),
                default_value = "auto"
            )]
            pub max_store_bytes: shoal_store::eviction::StoreSize,
            /// Fraction of the store limit above which eviction starts.
            #[arg(
                id = concat!($long, "store-high-watermark"),
                long = concat!($long, "store-high-watermark"),
                env = concat!($env, "STORE_HIGH_WATERMARK"),
                default_value_t = shoal_store::eviction::StoreLimit::DEFAULT_HIGH_WATERMARK
            )]
            pub store_high_watermark: f64,
            /// Fraction of the store limit eviction brings the store down to.
            #[arg(
                id = concat!($long, "store-low-watermark"),
                long = concat!($long, "store-low-watermark"),
                env = concat!($env, "STORE_LOW_WATERMARK"),
                default_value_t = shoal_store::eviction::StoreLimit::DEFAULT_LOW_WATERMARK
            )]
            pub store_low_watermark: f64,
        }

        impl From<$name> for StoreLimitFlags {
            fn from(f: $name) -> Self {
                Self { max_bytes: f.max_store_bytes, high: f.store_high_watermark, low: f.store_low_watermark }
            }
        }
    };
}

/// `--bt-listen`, `--announce-port`, `--tracker`.
macro_rules! bittorrent_flags {
    ($name:ident, $env:literal, $listen:literal) => {
        #[derive(clap::Args, Debug, Clone)]
        pub struct $name {
            /// BitTorrent (TCP) listen address.
            #[arg(long, env = concat!($env, "BT_LISTEN"), default_value = $listen)]
            pub bt_listen: std::net::SocketAddr,
            /// Port announced to trackers [default: the BitTorrent listen port].
            #[arg(long, env = concat!($env, "ANNOUNCE_PORT"))]
            pub announce_port: Option<u16>,
            /// Tracker announce URL (repeat or comma-separate): written into the torrents this
            /// process makes, and announced to for the blobs it seeds.
            #[arg(long = "tracker", env = concat!($env, "TRACKERS"), value_delimiter = ',')]
            pub trackers: Vec<String>,
            /// Most bytes per second sent to BitTorrent peers, over all torrents (500KiB,
            /// 10MiB, ...); no cap by default. Webseed and upstream HTTP are not capped.
            #[arg(long, env = concat!($env, "MAX_UPLOAD_RATE"), value_parser = byte_rate)]
            pub max_upload_rate: Option<std::num::NonZeroU32>,
            /// Most bytes per second received from BitTorrent peers, over all torrents; no cap
            /// by default.
            #[arg(long, env = concat!($env, "MAX_DOWNLOAD_RATE"), value_parser = byte_rate)]
            pub max_download_rate: Option<std::num::NonZeroU32>,
        }

        impl From<$name> for BitTorrentFlags {
            fn from(f: $name) -> Self {
                Self {
                    listen: f.bt_listen,
                    announce_port: f.announce_port,
                    trackers: f.trackers,
                    max_upload_rate: f.max_upload_rate,
                    max_download_rate: f.max_download_rate,
                }
            }
        }
    };
}

/// `--mirror-allow`, `--mirror-attempts` and `--mirror-retry-backoff-ms`: what the seeder
/// mirrors on request, and how often it retries.
// Not rustfmt's: it indents the multi-line attributes further on every run.
#[rustfmt::skip]
macro_rules! mirror_flags {
    ($name:ident, $env:literal) => {
        #[derive(clap::Args, Debug, Clone)]
        pub struct $name {
            /// What the seeder mirrors when asked (repeat or comma-separate): `*`, a registry
            /// (`ghcr.io`), a repository (`ghcr.io/org/app`) or a prefix (`ghcr.io/org/*`)
            /// [default: the upstream registry and those of the configured images].
            #[arg(long = "mirror-allow", env = concat!($env, "MIRROR_ALLOW"), value_delimiter = ',')]
            pub mirror_allow: Vec<String>,
            /// Attempts at mirroring an image before its job is dropped (a job left by a crash
            /// or an outage is resumed at start; upstream saying "no such image" ends it at once).
            #[arg(long, env = concat!($env, "MIRROR_ATTEMPTS"), default_value_t = 8,
                  value_parser = clap::value_parser!(u32).range(1..))]
            pub mirror_attempts: u32,
            /// Milliseconds before a failed mirror job's second attempt; doubles after each
            /// failure, up to 10 minutes.
            #[arg(long, env = concat!($env, "MIRROR_RETRY_BACKOFF_MS"), default_value_t = 10000,
                  value_parser = clap::value_parser!(u64).range(1..))]
            pub mirror_retry_backoff_ms: u64,
        }

        impl From<&$name> for shoal_seeder::RetryPolicy {
            fn from(f: &$name) -> Self {
                let first_backoff = std::time::Duration::from_millis(f.mirror_retry_backoff_ms);
                Self {
                    attempts: f.mirror_attempts,
                    first_backoff,
                    max_backoff: shoal_seeder::RetryPolicy::default().max_backoff.max(first_backoff),
                }
            }
        }
    };
}

/// `--tls-cert`, `--tls-key` and `--tls-client-ca`: HTTPS on a service's HTTP edge.
// Not rustfmt's: it indents the multi-line attributes further on every run.
#[rustfmt::skip]
macro_rules! tls_flags {
    ($name:ident, $env:literal) => {
        #[derive(clap::Args, Debug, Clone)]
        pub struct $name {
            /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key.
            #[arg(long, env = concat!($env, "TLS_CERT"), requires = "tls_key")]
            pub tls_cert: Option<std::path::PathBuf>,
            /// The PEM private key of --tls-cert.
            #[arg(long, env = concat!($env, "TLS_KEY"), requires = "tls_cert")]
            pub tls_key: Option<std::path::PathBuf>,
            /// Accept only clients presenting a certificate this PEM CA bundle signed (mTLS);
            /// needs --tls-cert.
            #[arg(long, env = concat!($env, "TLS_CLIENT_CA"), requires = "tls_cert")]
            pub tls_client_ca: Option<std::path::PathBuf>,
        }

        impl From<$name> for Option<shoal_http_edge::TlsFiles> {
            fn from(f: $name) -> Self {
                let (cert, key) = (f.tls_cert?, f.tls_key?);
                Some(shoal_http_edge::TlsFiles { cert, key, client_ca: f.tls_client_ca })
            }
        }
    };
}

/// `--seeder-ca`, `--seeder-client-cert` and `--seeder-client-key`: how a client of the seeder's
/// API (`shoal magnets`, `shoal jobs`) trusts an HTTPS seeder and is known to an mTLS one.
#[derive(clap::Args, Debug, Clone)]
pub struct SeederClientTls {
    /// PEM CA bundle an `https://` --seeder's certificate may chain to, besides the web roots.
    #[arg(long, env = "SHOAL_SEEDER_CA")]
    pub seeder_ca: Option<std::path::PathBuf>,
    /// PEM certificate presented to a seeder that requires client certificates; needs
    /// --seeder-client-key.
    #[arg(long, env = "SHOAL_SEEDER_CLIENT_CERT", requires = "seeder_client_key")]
    pub seeder_client_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --seeder-client-cert.
    #[arg(long, env = "SHOAL_SEEDER_CLIENT_KEY", requires = "seeder_client_cert")]
    pub seeder_client_key: Option<std::path::PathBuf>,
}

impl From<SeederClientTls> for shoal_registry_shim::SeederTrust {
    fn from(f: SeederClientTls) -> Self {
        Self { ca: f.seeder_ca, identity: f.seeder_client_cert.zip(f.seeder_client_key) }
    }
}

/// Upstream access as every subcommand gives it.
#[derive(Debug, Clone)]
pub struct UpstreamFlags {
    pub insecure_registries: Vec<String>,
    pub username: Option<String>,
    pub password: Option<super::Secret>,
    pub deadlines: shoal_upstream::Deadlines,
}

/// A store limit as every subcommand gives it.
#[derive(Debug, Clone, Copy)]
pub struct StoreLimitFlags {
    pub max_bytes: shoal_store::eviction::StoreSize,
    pub high: f64,
    pub low: f64,
}

/// BitTorrent listening and announcing as every subcommand gives it.
#[derive(Debug, Clone)]
pub struct BitTorrentFlags {
    pub listen: std::net::SocketAddr,
    pub announce_port: Option<u16>,
    pub trackers: Vec<String>,
    pub max_upload_rate: Option<std::num::NonZeroU32>,
    pub max_download_rate: Option<std::num::NonZeroU32>,
}

/// A rate in bytes per second (`500KiB`, `10MiB`, `1048576`): the store's size syntax, at
/// least 1 B/s and below 4 GiB/s (librqbit's bucket counts in `u32`).
fn byte_rate(text: &str) -> Result<std::num::NonZeroU32, String> {
    let bytes = shoal_store::eviction::parse_byte_size(text).map_err(|e| e.to_string())?;
    u32::try_from(bytes)
        .ok()
        .and_then(std::num::NonZeroU32::new)
        .ok_or_else(|| format!("{text}: a rate of 1 B/s to 4 GiB/s, per second (e.g. 10MiB)"))
}

upstream_flags!(SeederUpstream, "SHOAL_SEEDER_");
upstream_flags!(ShimUpstream, "SHOAL_SHIM_");
upstream_flags!(UpUpstream, "SHOAL_");
store_limit_flags!(SeederStoreLimit, "", "SHOAL_SEEDER_");
store_limit_flags!(ShimStoreLimit, "", "SHOAL_SHIM_");
store_limit_flags!(UpShimStoreLimit, "shim-", "SHOAL_SHIM_");
bittorrent_flags!(SeederBitTorrent, "SHOAL_SEEDER_", "0.0.0.0:6881");
mirror_flags!(SeederMirror, "SHOAL_SEEDER_");
mirror_flags!(UpMirror, "SHOAL_");
bittorrent_flags!(ShimBitTorrent, "SHOAL_SHIM_", "0.0.0.0:6882");
tls_flags!(SeederTls, "SHOAL_SEEDER_");
tls_flags!(ShimTls, "SHOAL_SHIM_");
tls_flags!(TrackerTls, "SHOAL_TRACKER_");
