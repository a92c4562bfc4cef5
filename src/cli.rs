//! Command-line surface of `shoal`: every flag has an environment-variable twin.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub mod file;
mod groups;
mod node;

pub use groups::{
    BitTorrentFlags, SeederBitTorrent, SeederClientTls, SeederMirror, SeederStoreLimit, SeederTls, SeederUpstream,
    ShimBitTorrent, ShimStoreLimit, ShimTls, ShimUpstream, StoreLimitFlags, TrackerTls, UpMirror, UpShimStoreLimit,
    UpUpstream, UpstreamFlags,
};
pub use node::{NodeCommand, NodeDoctorArgs, NodeInstallArgs, NodeUninstallArgs, PullTool, Runtime};

#[derive(Parser, Debug)]
#[command(
    name = "shoal",
    version = shoal_telemetry::LONG_VERSION,
    about = "OCI image blobs over plain BitTorrent",
    after_help = "Logging: RUST_LOG picks what the services log to stderr, as tracing's EnvFilter reads it \
                  [default: info,librqbit=warn,librqbit_core=warn]; e.g. RUST_LOG=debug, or \
                  RUST_LOG=info,shoal_registry_shim=debug. Colours only on a terminal; \
                  --log-format json (SHOAL_LOG_FORMAT) for one JSON object per line."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// How the services log to stderr: `text` (colours only on a terminal) or `json` (one
    /// object per line, for log shippers).
    #[arg(long, global = true, env = "SHOAL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Make the profile's .torrent of a file; print its infohash and magnet.
    Torrent(TorrentArgs),
    /// Print the magnet link of an existing .torrent file.
    Magnet(MagnetArgs),
    /// Run the origin: mirror images from a registry, torrent and seed every blob, serve webseeds.
    Seeder(SeederArgs),
    /// Run the HTTP (and optionally UDP) BitTorrent tracker.
    Tracker(TrackerArgs),
    /// Run the per-host registry shim: `docker pull localhost:5000/...` with blobs from the swarm.
    Shim(ShimArgs),
    /// Run tracker, seeder and shim of one host in one process, in front of an upstream registry.
    Up(UpArgs),
    /// Have a seeder mirror an image, then print each blob's media type, digest, size and magnet.
    /// Exits with 3 when the upstream registry has no such image or tag, 1 on other failures.
    Magnets(MagnetsArgs),
    /// List a seeder's mirror jobs: running, or waiting to be tried again after a failure.
    Jobs(JobsArgs),
    /// The TOML config file (`--config shoal.toml`): every flag of tracker, seeder, shim and
    /// up is a key, its long name, in the command's section.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Point this host's containerd and Docker at the shim, undo it, or check it works.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Print a shell completion script for `shoal` to stdout, e.g.
    /// `shoal completions bash > /etc/bash_completion.d/shoal`.
    Completions(CompletionsArgs),
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to write the script for.
    #[arg(env = "SHOAL_COMPLETIONS_SHELL", value_enum)]
    pub shell: CompletionShell,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Args, Debug)]
pub struct JobsArgs {
    /// The seeder's HTTP base URL (`shoal up` serves it on port 7000).
    #[arg(long, env = "SHOAL_SEEDER", default_value = "http://127.0.0.1:7000", value_parser = http_url)]
    pub seeder: String,
    /// Print the seeder's JSON as it is.
    #[arg(long, env = "SHOAL_JOBS_JSON")]
    pub json: bool,
    #[command(flatten)]
    pub tls: SeederClientTls,
}

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Data directory: seeder/ (store, redb index, BitTorrent state) and shim/.
    #[arg(long, env = "SHOAL_DATA_DIR", default_value = "shoal-data")]
    pub data_dir: PathBuf,
    /// Registry (`host[:port]`) to front; Docker Hub by default, as docker itself.
    #[arg(long, env = "SHOAL_UPSTREAM", default_value = "docker.io")]
    pub upstream: String,
    /// Host name or address other peers and clients reach this host by; goes into torrents'
    /// tracker and webseed URLs.
    #[arg(long, env = "SHOAL_PUBLIC_HOST", default_value = "127.0.0.1")]
    pub public_host: String,
    /// Registry shim (Distribution API) listen address; keep it on loopback.
    #[arg(long, env = "SHOAL_SHIM_LISTEN", default_value = "127.0.0.1:5000")]
    pub shim_listen: std::net::SocketAddr,
    /// Tracker (HTTP) listen address.
    #[arg(long, env = "SHOAL_TRACKER_LISTEN", default_value = "0.0.0.0:6969")]
    pub tracker_listen: std::net::SocketAddr,
    /// Seeder API and webseed listen address [default: 127.0.0.1:7000, or 0.0.0.0:7000 with
    /// --public].
    #[arg(long, env = "SHOAL_SEEDER_LISTEN")]
    pub seeder_listen: Option<std::net::SocketAddr>,
    /// Serve the seeder's API and webseeds to other hosts (0.0.0.0:7000), for hosts whose
    /// shims and peers fetch from this one; give --public-host too. The shim stays on
    /// loopback (--shim-listen to change it).
    #[arg(long, env = "SHOAL_PUBLIC")]
    pub public: bool,
    /// The seeder's BitTorrent (TCP) listen address.
    #[arg(long, env = "SHOAL_BT_LISTEN", default_value = "0.0.0.0:6881")]
    pub bt_listen: std::net::SocketAddr,
    /// The seeder shows every peer all pieces at once instead of super-seeding (see `shoal
    /// seeder --help`).
    #[arg(long, env = "SHOAL_NO_SUPER_SEED")]
    pub no_super_seed: bool,
    /// The shim's BitTorrent (TCP) listen address, for blobs it fetched and seeds onward.
    #[arg(long, env = "SHOAL_SHIM_BT_LISTEN", default_value = "0.0.0.0:6882")]
    pub shim_bt_listen: std::net::SocketAddr,
    /// More trackers to announce to, besides the embedded one (repeat or comma-separate).
    #[arg(long = "tracker", env = "SHOAL_TRACKERS", value_delimiter = ',')]
    pub trackers: Vec<String>,
    /// Image to mirror at start and print the magnets of (repeat or comma-separate).
    #[arg(long = "image", env = "SHOAL_IMAGES", value_delimiter = ',')]
    pub images: Vec<String>,
    /// Platforms of multi-platform images to mirror, `os/arch[/variant]` [default: all].
    #[arg(long = "platform", env = "SHOAL_PLATFORMS", value_delimiter = ',')]
    pub platforms: Vec<String>,
    /// Config file: `*.toml` sets any flag (its long name, in `[up]`; `shoal config
    /// print-default`); any other name is the JSON `shoal seeder --config` reads (images,
    /// platforms, insecure_registries, credentials).
    #[arg(long, env = "SHOAL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Largest size of the seeder's blob store (500MiB, 10GiB, ...; `auto`: what it holds plus
    /// 40% of the filesystem's free space at start, the shim getting another 40%; `none`: no
    /// limit); least recently used blobs not being served go first, between the seeder's
    /// default watermarks.
    #[arg(long, env = "SHOAL_MAX_STORE_BYTES", default_value = "auto")]
    pub max_store_bytes: shoal_store::eviction::StoreSize,
    #[command(flatten)]
    pub upstream_access: UpUpstream,
    #[command(flatten)]
    pub shim_store: UpShimStoreLimit,
    #[command(flatten)]
    pub mirror: UpMirror,
    /// A bearer token the seeder's `POST /v1/images` and `/v1/notifications` must present;
    /// set it with --public (`shoal magnets` sends it from SHOAL_SEEDER_TOKEN).
    #[arg(long, env = "SHOAL_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<Secret>,
    #[command(flatten)]
    pub timing: ShimTiming,
}

/// The shim's timing knobs, shared by `shoal shim` and `shoal up` (same flags, same env twins).
#[derive(Args, Debug)]
pub struct ShimTiming {
    /// Milliseconds in which the swarm delivers neither the next bytes of the stream nor any
    /// other verified piece, before the rest comes over HTTP (unless a peer that holds what is
    /// missing has just unchoked us or may still unchoke us: --unchoke-wait-ms).
    #[arg(long, env = "SHOAL_SHIM_STALL_TIMEOUT_MS",
          default_value_t = shoal_registry_shim::DEFAULT_STALL_TIMEOUT.as_millis() as u64)]
    pub stall_timeout_ms: u64,
    /// Milliseconds after connecting during which a peer that holds missing pieces but chokes
    /// us keeps a quiet download waiting for it (stock clients unchoke new peers at their next
    /// rechoke: Transmission every 10 s).
    #[arg(long, env = "SHOAL_SHIM_UNCHOKE_WAIT_MS",
          default_value_t = shoal_registry_shim::DEFAULT_UNCHOKE_WAIT.as_millis() as u64)]
    pub unchoke_wait_ms: u64,
    /// Milliseconds to wait for the seeder's answer about a blob's torrent before streaming
    /// from upstream instead (a seeder that must fetch the blob first says so at once).
    #[arg(long, env = "SHOAL_SHIM_TORRENT_TIMEOUT_MS",
          default_value_t = shoal_registry_shim::DEFAULT_TORRENT_TIMEOUT.as_millis() as u64)]
    pub torrent_timeout_ms: u64,
    /// Seconds a tag is trusted before it is resolved upstream again.
    #[arg(long, env = "SHOAL_SHIM_TAG_TTL_SECS", default_value_t = 30)]
    pub tag_ttl_secs: u64,
    /// Seconds after upstream last confirmed a tag during which the shim still serves it (with
    /// a `Warning` header) when upstream cannot be reached, also after a restart.
    #[arg(long, env = "SHOAL_SHIM_STALE_TAG_MAX_AGE_SECS",
          default_value_t = shoal_registry_shim::DEFAULT_STALE_TAG_MAX_AGE.as_secs())]
    pub stale_tag_max_age_secs: u64,
    /// Milliseconds a containerd mirror request (`?ns=`) may take before the shim answers 404,
    /// so containerd fetches from the registry itself; the shim's own fetch goes on.
    #[arg(long, env = "SHOAL_SHIM_MIRROR_MISS_TIMEOUT_MS", value_parser = clap::value_parser!(u64).range(1..),
          default_value_t = shoal_registry_shim::DEFAULT_MIRROR_MISS_TIMEOUT.as_millis() as u64)]
    pub mirror_miss_timeout_ms: u64,
    /// Most 16 KiB chunk requests the shim keeps outstanding at one peer (each peer's window
    /// follows its rate, 300 ms of it, at least 8, up to this).
    #[arg(long, env = "SHOAL_SHIM_PEER_REQUEST_WINDOW", default_value_t = shoal_registry_shim::DEFAULT_PEER_REQUEST_WINDOW)]
    pub peer_request_window: usize,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the commented default file: every key with its help and its default.
    PrintDefault,
}

#[derive(Args, Debug)]
pub struct MagnetsArgs {
    /// Image, named the docker way (`busybox`, `registry:5000/team/app:v1`, `repo@sha256:..`).
    #[arg(env = "SHOAL_MAGNETS_IMAGE")]
    pub image: String,
    /// The seeder's HTTP base URL (`shoal up` serves it on port 7000); repeat or comma-separate
    /// for the seeders of a ring: the next is asked when one cannot be reached.
    #[arg(long = "seeder", env = "SHOAL_SEEDER", default_value = "http://127.0.0.1:7000", value_parser = http_url,
          value_delimiter = ',')]
    pub seeders: Vec<String>,
    /// Output format; `github` also appends a markdown table to `$GITHUB_STEP_SUMMARY`.
    #[arg(long, env = "SHOAL_MAGNETS_FORMAT", value_enum, default_value_t = crate::magnets::OutputFormat::Text)]
    pub format: crate::magnets::OutputFormat,
    /// The seeder's `--api-token`, sent as a bearer token; prefer the environment variable.
    #[arg(long, env = "SHOAL_SEEDER_TOKEN", hide_env_values = true)]
    pub seeder_token: Option<Secret>,
    #[command(flatten)]
    pub tls: SeederClientTls,
}

#[derive(Args, Debug)]
pub struct TorrentArgs {
    /// The blob to torrent.
    #[arg(env = "SHOAL_TORRENT_FILE")]
    pub file: PathBuf,
    /// Tracker announce URL (repeat for several: each blob's torrent names its 3 owners among them,
    /// in rendezvous order of its infohash, one announce-list tier each).
    #[arg(long = "tracker", env = "SHOAL_TRACKERS", value_delimiter = ',')]
    pub trackers: Vec<String>,
    /// Webseed base URL for BEP 19 `url-list` (repeat for several); end it in `/`.
    #[arg(long = "webseed", env = "SHOAL_WEBSEEDS", value_delimiter = ',')]
    pub webseeds: Vec<String>,
    /// Where to write the .torrent [default: ./<name>.torrent].
    #[arg(short = 'o', long = "output", env = "SHOAL_TORRENT_OUTPUT")]
    pub output: Option<PathBuf>,
    /// Torrent name instead of the profile's `sha256-<hex>` (changes the infohash).
    #[arg(long, env = "SHOAL_TORRENT_NAME")]
    pub name: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long, env = "SHOAL_JSON")]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct MagnetArgs {
    /// The .torrent file to read (any tool's, not only Shoal's).
    #[arg(env = "SHOAL_MAGNET_TORRENT")]
    pub torrent: PathBuf,
}

#[derive(Args, Debug)]
pub struct SeederArgs {
    /// Data directory: blobs/sha256/<hex>, tmp/, index.redb, bittorrent/.
    #[arg(long, env = "SHOAL_SEEDER_DATA_DIR", default_value = "shoal-seeder-data")]
    pub data_dir: PathBuf,
    /// HTTP API and webseed listen address (port 0 picks one and prints it). Loopback by
    /// default: the API mirrors whatever it is asked to; serve other hosts' peers and shims
    /// with e.g. `0.0.0.0:7000` and `--public-url`.
    #[arg(long, env = "SHOAL_SEEDER_LISTEN", default_value = "127.0.0.1:7000")]
    pub listen: std::net::SocketAddr,
    /// Public base URL of the HTTP API, as clients reach it [default: http://<listen address>].
    #[arg(long, env = "SHOAL_SEEDER_PUBLIC_URL", value_parser = http_url)]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub bittorrent: SeederBitTorrent,
    /// Enable the DHT (off by default: trackers are the source of peers).
    #[arg(long, env = "SHOAL_SEEDER_DHT")]
    pub dht: bool,
    /// Enable local service discovery (off by default).
    #[arg(long, env = "SHOAL_SEEDER_LSD")]
    pub lsd: bool,
    /// Show every peer all pieces at once instead of super-seeding (BEP 16: each peer is shown
    /// a few pieces, the ones fewest peers hold, so hosts that start together make the seeder
    /// send each piece about once).
    #[arg(long, env = "SHOAL_SEEDER_NO_SUPER_SEED")]
    pub no_super_seed: bool,
    /// Image to mirror at start (repeat or comma-separate), named the docker way.
    #[arg(long = "image", env = "SHOAL_SEEDER_IMAGES", value_delimiter = ',')]
    pub images: Vec<String>,
    /// Platforms of multi-platform images to mirror, `os/arch[/variant]` [default: all].
    #[arg(long = "platform", env = "SHOAL_SEEDER_PLATFORMS", value_delimiter = ',')]
    pub platforms: Vec<String>,
    /// Registry (`host[:port]`) for torrent requests that name a repo but no `ns`.
    #[arg(long, env = "SHOAL_SEEDER_UPSTREAM")]
    pub upstream: Option<String>,
    #[command(flatten)]
    pub upstream_access: SeederUpstream,
    /// Config file: `*.toml` sets any flag (its long name, in `[seeder]`; `shoal config
    /// print-default`); any other name is JSON: {"images", "platforms", "insecure_registries",
    /// "credentials": {host: {username, password}}}.
    #[arg(long, env = "SHOAL_SEEDER_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub store: SeederStoreLimit,
    #[command(flatten)]
    pub mirror: SeederMirror,
    #[command(flatten)]
    pub tls: SeederTls,
    /// A bearer token `POST /v1/images` and `/v1/notifications` must present (the requests
    /// that make the seeder fetch); set it whenever the API listens beyond loopback. Prefer
    /// the environment variable.
    #[arg(long, env = "SHOAL_SEEDER_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<Secret>,
    #[command(flatten)]
    pub ring: SeederRingArgs,
}

/// The seeders' ring: who owns which blob (issue 19).
#[derive(Args, Debug)]
pub struct SeederRingArgs {
    /// Public URL of every seeder of the ring, this one's (--public-url) among them (repeat or
    /// comma-separate). Each blob is owned by --replicas of them, in rendezvous order of its
    /// digest: only its owners mirror it from upstream; the others forward to them.
    #[arg(long = "member", env = "SHOAL_SEEDER_MEMBERS", value_delimiter = ',', value_parser = http_url)]
    pub members: Vec<String>,
    /// How many seeders of the ring own (mirror, seed and serve as webseed) each blob.
    #[arg(long, env = "SHOAL_SEEDER_REPLICAS", default_value_t = shoal_torrents::DEFAULT_REPLICAS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub replicas: usize,
}

/// A value that never shows in `Debug` output or logs.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Args, Debug)]
pub struct TrackerArgs {
    /// TOML config file: any flag, its long name as the key, in `[tracker]` (`shoal config
    /// print-default`); the environment and the flags override it.
    #[arg(long, env = "SHOAL_TRACKER_CONFIG")]
    pub config: Option<PathBuf>,
    /// HTTP listen address (announce, scrape, metrics, healthz, admin).
    #[arg(long, env = "SHOAL_TRACKER_LISTEN", default_value = "0.0.0.0:6969")]
    pub listen: std::net::SocketAddr,
    /// UDP (BEP 15) listen address; off unless given.
    #[arg(long, env = "SHOAL_TRACKER_UDP_LISTEN")]
    pub udp_listen: Option<std::net::SocketAddr>,
    /// Seconds between a client's announces (`interval`).
    #[arg(long, env = "SHOAL_TRACKER_INTERVAL", default_value_t = 300)]
    pub interval: u32,
    /// Seconds a client must wait at least between announces (`min interval`).
    #[arg(long, env = "SHOAL_TRACKER_MIN_INTERVAL", default_value_t = 60)]
    pub min_interval: u32,
    /// A peer is dropped after this many intervals without an announce.
    #[arg(long, env = "SHOAL_TRACKER_PEER_TTL_INTERVALS", default_value_t = 2)]
    pub peer_ttl_intervals: u32,
    /// Peers handed out when a client does not send numwant.
    #[arg(long, env = "SHOAL_TRACKER_DEFAULT_NUMWANT", default_value_t = 50)]
    pub default_numwant: u32,
    /// Upper clamp on numwant.
    #[arg(long, env = "SHOAL_TRACKER_MAX_NUMWANT", default_value_t = 200)]
    pub max_numwant: u32,
    /// Peers remembered per torrent; newcomers beyond are served but not stored.
    #[arg(long, env = "SHOAL_TRACKER_MAX_PEERS_PER_SWARM", default_value_t = 50_000)]
    pub max_peers_per_swarm: usize,
    /// Peers remembered in total; newcomers beyond are served but not stored.
    #[arg(long, env = "SHOAL_TRACKER_MAX_PEERS", default_value_t = 4_000_000)]
    pub max_peers: usize,
    /// Torrents tracked at once; announces for new ones beyond get a failure reason.
    #[arg(long, env = "SHOAL_TRACKER_MAX_SWARMS", default_value_t = 1_000_000)]
    pub max_swarms: usize,
    /// New torrents one address (an IPv6 /64) may start at once; beyond, and beyond the rate
    /// below, its announces for unknown torrents get a failure reason (one client cannot fill
    /// --max-swarms). An origin announcing its whole store at start needs this many.
    #[arg(long, env = "SHOAL_TRACKER_NEW_SWARMS_PER_ADDRESS_BURST", default_value_t = 20_000)]
    pub new_swarms_per_address_burst: u32,
    /// New torrents per second one address may start once its burst is spent.
    #[arg(long, env = "SHOAL_TRACKER_NEW_SWARMS_PER_ADDRESS_PER_SEC", default_value_t = 100)]
    pub new_swarms_per_address_per_sec: u32,
    /// Serve only the infohashes in this file (40 hex per line); without it the tracker is open.
    #[arg(long, env = "SHOAL_TRACKER_ALLOW_LIST")]
    pub allow_list: Option<PathBuf>,
    /// Bearer token for PUT/DELETE /admin/torrents/<infohash>; unset disables the admin API.
    #[arg(long, env = "SHOAL_TRACKER_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Take the peer address from X-Forwarded-For (only behind a reverse proxy you run).
    #[arg(long, env = "SHOAL_TRACKER_TRUST_X_FORWARDED_FOR")]
    pub trust_x_forwarded_for: bool,
    /// Runtime worker threads [default: one per available core].
    #[arg(long, env = "SHOAL_TRACKER_THREADS")]
    pub threads: Option<usize>,
    /// Open HTTP connections one address may hold; more are closed at once (and counted in
    /// shoal_tracker_refused_connections_total), so one client cannot take every descriptor.
    #[arg(long, env = "SHOAL_TRACKER_MAX_CONNECTIONS_PER_ADDRESS", value_parser = clap::value_parser!(u32).range(1..),
          default_value_t = shoal_tracker::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS as u32)]
    pub max_connections_per_address: u32,
    #[command(flatten)]
    pub tls: TrackerTls,
    /// Announce URL of every tracker member, as the seeders' and shims' --trackers list them
    /// (repeat, or comma-separated); with --self-url, announces are counted as served as each
    /// torrent's owner, as a failover tier or outside its tiers.
    #[arg(long = "member", env = "SHOAL_TRACKER_MEMBERS", value_delimiter = ',', requires = "self_url")]
    pub members: Vec<String>,
    /// This tracker's announce URL among the --member list.
    #[arg(long, env = "SHOAL_TRACKER_SELF_URL", requires = "members")]
    pub self_url: Option<String>,
}

#[derive(Args, Debug)]
pub struct ShimArgs {
    /// TOML config file: any flag, its long name as the key, in `[shim]` (`shoal config
    /// print-default`); the environment and the flags override it.
    #[arg(long, env = "SHOAL_SHIM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Distribution API listen address (keep it on loopback: it serves anyone who can reach it).
    #[arg(long, env = "SHOAL_SHIM_LISTEN", default_value = "127.0.0.1:5000")]
    pub listen: std::net::SocketAddr,
    /// Data directory: blobs/sha256/<hex>, index.redb, tmp/, partial/, private/, bittorrent/.
    #[arg(long, env = "SHOAL_SHIM_DATA_DIR", default_value = "shoal-shim-data")]
    pub data_dir: PathBuf,
    /// Registry (`host[:port]`) behind `localhost:5000/<repo>` (direct mode); mirror-mode
    /// requests name theirs with `?ns=`.
    #[arg(long, env = "SHOAL_SHIM_UPSTREAM", default_value = "docker.io")]
    pub upstream: String,
    /// Seeder HTTP base URL (`http://host:port`); repeat or comma-separate for the seeders of a
    /// ring (each blob's torrent is asked of its owners first, the next seeder when one fails).
    /// Without one, blobs come from upstream only.
    #[arg(long = "seeder", env = "SHOAL_SHIM_SEEDER", value_parser = http_url, value_delimiter = ',')]
    pub seeders: Vec<String>,
    /// PEM CA bundle an `https://` --seeder's certificate may chain to, besides the web roots.
    #[arg(long, env = "SHOAL_SHIM_SEEDER_CA", requires = "seeders")]
    pub seeder_ca: Option<PathBuf>,
    /// PEM certificate this shim presents to a seeder that requires client certificates
    /// (its --tls-client-ca); needs --seeder-client-key.
    #[arg(long, env = "SHOAL_SHIM_SEEDER_CLIENT_CERT", requires_all = ["seeders", "seeder_client_key"])]
    pub seeder_client_cert: Option<PathBuf>,
    /// The PEM private key of --seeder-client-cert.
    #[arg(long, env = "SHOAL_SHIM_SEEDER_CLIENT_KEY", requires = "seeder_client_cert")]
    pub seeder_client_key: Option<PathBuf>,
    #[command(flatten)]
    pub bittorrent: ShimBitTorrent,
    #[command(flatten)]
    pub timing: ShimTiming,
    #[command(flatten)]
    pub store: ShimStoreLimit,
    #[command(flatten)]
    pub upstream_access: ShimUpstream,
    #[command(flatten)]
    pub tls: ShimTls,
}

/// An `http://` or `https://` base URL with a host, checked when the flags are parsed (a bad one
/// is clap's usage error, exit 2, not a failure once the service runs); kept as given, without a
/// trailing slash.
fn http_url(s: &str) -> Result<String, String> {
    let url = url::Url::parse(s).map_err(|e| format!("not a URL ({e}); expected e.g. http://127.0.0.1:7000"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err("expected an http:// or https:// URL with a host, e.g. http://127.0.0.1:7000".to_owned());
    }
    Ok(s.trim_end_matches('/').to_owned())
}
