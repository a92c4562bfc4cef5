//! A registry that wants bearer tokens, as Docker Hub and GHCR do: Debian's `docker-registry`
//! with `auth: token`, in front of `scripts/token_issuer.py` (a token issuer on PyJWT, run by
//! the system python with python3-jwt and python3-cryptography).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::registry::{start_registry, write_oci_layout, LayoutBlob};
use crate::{require_tool, run_ok, system_python, ChildGuard};

/// The issuer's users (see the script): `reader` pulls `private/*`, `admin` pushes.
pub const READER: (&str, &str) = ("reader", "readerpw");
pub const ADMIN: (&str, &str) = ("admin", "adminpw");

/// A token-auth registry and its issuer.
pub struct TokenRegistry {
    pub registry: ChildGuard,
    pub issuer: ChildGuard,
    /// `127.0.0.1:PORT` of the registry.
    pub address: String,
    /// One line per token request: the user (`-` for anonymous) and the scopes asked for.
    pub token_log: PathBuf,
}

impl TokenRegistry {
    /// Starts the issuer (tokens live `ttl_secs`) and the registry trusting it, under `dir`.
    pub fn start(dir: &Path, ttl_secs: u32) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let (cert, token_log) = (dir.join("issuer.pem"), dir.join("tokens.log"));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/token_issuer.py");
        let mut issuer = ChildGuard::spawn(
            Command::new(system_python())
                .arg(&script)
                .arg(&cert)
                .arg(&token_log)
                .arg(ttl_secs.to_string())
                .stdout(Stdio::piped()),
        );
        let mut line = String::new();
        BufReader::new(issuer.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("ready ").unwrap_or_else(|| {
            panic!("the token issuer did not start ({line:?}): apt-get install python3-jwt python3-cryptography")
        });
        let auth = format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{port}/token\n    service: shoal-test-registry\n    \
             issuer: shoal-test-issuer\n    rootcertbundle: {}\n",
            cert.display()
        );
        let (registry, registry_port) = start_registry(&dir.join("registry"), &auth);
        Self { registry, issuer, address: format!("127.0.0.1:{registry_port}"), token_log }
    }

    /// Pushes a fresh image of `layer_sizes` as `repo:v1` (as `admin`); its blobs (config first).
    pub fn push(&self, dir: &Path, repo: &str, layer_sizes: &[usize], seed: u64) -> Vec<LayoutBlob> {
        let layout = dir.join(format!("layout-{}", repo.replace('/', "-")));
        let (blobs, _) = write_oci_layout(&layout, "v1", layer_sizes, seed);
        run_ok(
            Command::new(require_tool("skopeo"))
                .args(["copy", "-q", "--dest-tls-verify=false", "--dest-creds", &format!("{}:{}", ADMIN.0, ADMIN.1)])
                .arg(format!("oci:{}:v1", layout.display()))
                .arg(format!("docker://{}/{repo}:v1", self.address)),
        );
        blobs
    }

    /// Token requests so far by `user` (`-`: anonymous) for a scope naming `repo`.
    pub fn tokens_issued(&self, user: &str, repo: &str) -> usize {
        let log = std::fs::read_to_string(&self.token_log).unwrap_or_default();
        let scope = format!("repository:{repo}:");
        log.lines().filter(|l| l.split(' ').next() == Some(user) && l.contains(&scope)).count()
    }
}

/// How long tests wait for a token to expire: its TTL and a second.
pub fn past(ttl_secs: u32) -> Duration {
    Duration::from_secs(u64::from(ttl_secs) + 1)
}
