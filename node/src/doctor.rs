//! `shoal node doctor`: is the shim up, does a real pull go through it, and does a miss come
//! back fast enough for containerd to move on to the registry. Blocking I/O (a plain HTTP/1.1
//! GET over a TCP socket, `ctr` or `docker` as child processes); what it reads is parsed by
//! pure functions.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How the doctor pulls a real image through the mirror configuration.
#[derive(Debug, Clone)]
pub enum PullCheck {
    /// `ctr --address SOCKET -n shoal-doctor images pull --hosts-dir DIR IMAGE`, then the
    /// image is removed again.
    Ctr { address: String, hosts_dir: String, image: String },
    /// `docker pull IMAGE` (a Docker Hub name: Docker mirrors nothing else), then `docker rmi`.
    Docker { image: String },
}

#[derive(Debug, Clone)]
pub struct DoctorRequest {
    /// `http://host:port` of the shim.
    pub shim_url: String,
    /// The registry a miss is asked about (`?ns=`), as containerd's mirror requests name it.
    pub miss_registry: String,
    /// How fast the miss must come back: containerd's dial/response budget for the mirror.
    pub dial_timeout: Duration,
    /// containerd's hosts.toml tree, checked for an entry that sends `miss_registry` (or every
    /// registry, `_default`) to the shim first; `None`: not checked (a Docker-only host).
    pub hosts_dir: Option<PathBuf>,
    pub pull: Option<PullCheck>,
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// A namespace for the doctor's pulls that no workload uses, so removing the image after is
/// safe.
const CTR_NAMESPACE: &str = "shoal-doctor";
/// A repository no registry has, for the miss.
const MISSING_REPOSITORY: &str = "shoal-doctor/no-such-image";

/// Runs every check, in order; a check that cannot run because an earlier one failed says so.
pub fn run(request: &DoctorRequest) -> Vec<Check> {
    let mut checks = Vec::new();
    let Some(authority) = request.shim_url.strip_prefix("http://").map(|a| a.trim_end_matches('/')) else {
        checks.push(Check {
            name: "shim answers",
            passed: false,
            detail: format!(
                "{} is not an http:// URL (the doctor speaks plain HTTP to a loopback shim)",
                request.shim_url
            ),
        });
        return checks;
    };
    let timeout = Duration::from_secs(5);
    let up = match get(authority, "/v2/", timeout) {
        Ok((200, _)) => {
            Check { name: "shim answers", passed: true, detail: format!("GET {}/v2/ answered 200", request.shim_url) }
        }
        Ok((status, _)) => Check {
            name: "shim answers",
            passed: false,
            detail: format!("GET {}/v2/ answered {status}, not 200", request.shim_url),
        },
        Err(e) => Check {
            name: "shim answers",
            passed: false,
            detail: format!("cannot reach the shim at {}: {e}", request.shim_url),
        },
    };
    let shim_up = up.passed;
    checks.push(up);
    if !shim_up {
        return checks;
    }
    checks.push(miss_check(authority, request));
    if let Some(dir) = &request.hosts_dir {
        checks.push(hosts_check(dir, &request.miss_registry, &request.shim_url));
    }
    if let Some(pull) = &request.pull {
        checks.push(pull_check(authority, pull));
    }
    checks
}

fn miss_check(authority: &str, request: &DoctorRequest) -> Check {
    let path = format!("/v2/{MISSING_REPOSITORY}/manifests/latest?ns={}", request.miss_registry);
    let started = Instant::now();
    let answer = get(authority, &path, request.dial_timeout + Duration::from_secs(5));
    let took = started.elapsed().as_millis();
    let budget = request.dial_timeout.as_millis();
    let name = "a miss answers 404 in time";
    let (passed, detail) = match answer {
        Ok((404, _)) if took <= budget => (true, format!("GET {path} answered 404 in {took} ms")),
        // containerd moves on to the next host on other 4xx answers too (after trying
        // credentials on a 401): upstream's answer passed through, fast enough.
        Ok((status @ 400..=499, _)) if took <= budget => {
            (true, format!("GET {path} answered {status} (upstream's answer, not the shim's 404) in {took} ms"))
        }
        Ok((status, _)) if took > budget => (
            false,
            format!("GET {path} answered {status} after {took} ms, over the {budget} ms budget: every pull of an image the shim lacks waits that long"),
        ),
        Ok((status, _)) => (false, format!("GET {path} answered {status}: containerd would not move on to {}", request.miss_registry)),
        Err(e) => (false, format!("GET {path}: {e}")),
    };
    Check { name, passed, detail }
}

/// The hosts.toml containerd reads for `registry` (its own directory, else `_default`) names
/// the shim first.
fn hosts_check(dir: &Path, registry: &str, shim_url: &str) -> Check {
    let name = "containerd's hosts.toml asks the shim first";
    let own = dir.join(registry).join("hosts.toml");
    let path = if own.exists() { own } else { dir.join("_default").join("hosts.toml") };
    let (passed, detail) = match std::fs::read_to_string(&path).map(|text| crate::host_order(&text)) {
        Err(e) => (false, format!("cannot read {} ({e}): run `shoal node install`", path.display())),
        Ok(Err(e)) => (false, format!("{}: {e}", path.display())),
        Ok(Ok(order)) if order.first().is_some_and(|first| first.trim_end_matches('/') == shim_url) => {
            (true, format!("{} asks {shim_url} first", path.display()))
        }
        Ok(Ok(order)) => (false, format!("{} asks {order:?} in that order, not {shim_url} first", path.display())),
    };
    Check { name, passed, detail }
}

fn pull_check(authority: &str, pull: &PullCheck) -> Check {
    let name = "a pull goes through the shim";
    let served = |detail: &mut String| match get(authority, "/metrics", Duration::from_secs(5)) {
        Ok((200, body)) => Some(manifests_served(&String::from_utf8_lossy(&body))),
        Ok((status, _)) => {
            *detail = format!("GET /metrics answered {status}");
            None
        }
        Err(e) => {
            *detail = format!("GET /metrics: {e}");
            None
        }
    };
    let mut detail = String::new();
    let Some(before) = served(&mut detail) else { return Check { name, passed: false, detail } };
    let (mut pull_cmd, mut remove_cmd, image) = match pull {
        PullCheck::Ctr { address, hosts_dir, image } => {
            let ctr = |args: &[&str]| {
                let mut cmd = Command::new("ctr");
                cmd.args(["--address", address, "-n", CTR_NAMESPACE, "images"]).args(args);
                cmd
            };
            (ctr(&["pull", "--hosts-dir", hosts_dir, image]), ctr(&["rm", image]), image)
        }
        PullCheck::Docker { image } => {
            let mut pull = Command::new("docker");
            pull.args(["pull", image]);
            let mut rm = Command::new("docker");
            rm.args(["rmi", image]);
            (pull, rm, image)
        }
    };
    let out = match pull_cmd.output() {
        Ok(out) => out,
        Err(e) => return Check { name, passed: false, detail: format!("cannot run {pull_cmd:?}: {e}") },
    };
    if !out.status.success() {
        return Check {
            name,
            passed: false,
            detail: format!("{pull_cmd:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()),
        };
    }
    let _ = remove_cmd.output();
    let Some(after) = served(&mut detail) else { return Check { name, passed: false, detail } };
    if after > before {
        Check {
            name,
            passed: true,
            detail: format!("pulled {image}; the shim served {} manifest request(s) for it", after - before),
        }
    } else {
        Check {
            name,
            passed: false,
            detail: format!("pulled {image}, but the shim's manifest count did not move: the pull went around the shim (is the mirror configured for its registry?)"),
        }
    }
}

/// The manifests the shim answered 200 for, summed over `shoal_shim_requests_total`'s series.
pub fn manifests_served(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("shoal_shim_requests_total{"))
        .filter(|l| l.contains("endpoint=\"manifests\"") && l.contains("status=\"200\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// `GET path` over plain HTTP/1.1 with `Connection: close`; the status and the body.
fn get(authority: &str, path: &str, timeout: Duration) -> std::io::Result<(u16, Vec<u8>)> {
    let addr = authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{authority} resolves to no address")))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nUser-Agent: shoal-node-doctor\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    parse_response(&response).ok_or_else(|| std::io::Error::other("the answer is not HTTP"))
}

/// The status and body of an HTTP/1.1 response (a chunked body is unchunked).
fn parse_response(response: &[u8]) -> Option<(u16, Vec<u8>)> {
    let head_end = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&response[..head_end]).ok()?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let body = &response[head_end + 4..];
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.to_ascii_lowercase().contains("chunked")
    });
    Some((status, if chunked { unchunk(body)? } else { body.to_vec() }))
}

fn unchunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_counted_across_series() {
        let metrics = "# HELP shoal_shim_requests_total x\n\
            shoal_shim_requests_total{endpoint=\"manifests\",status=\"200\"} 3\n\
            shoal_shim_requests_total{endpoint=\"manifests\",status=\"404\"} 9\n\
            shoal_shim_requests_total{endpoint=\"blobs\",status=\"200\"} 5\n";
        assert_eq!(manifests_served(metrics), 3);
        assert_eq!(manifests_served(""), 0);
    }

    #[test]
    fn responses_parse_plain_and_chunked() {
        assert_eq!(
            parse_response(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno"),
            Some((404, b"no".to_vec()))
        );
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked), Some((200, b"abcde".to_vec())));
        assert_eq!(parse_response(b"garbage"), None);
    }

    #[test]
    fn the_hosts_check_reads_the_registry_s_file_else_default() {
        let dir = tempfile::tempdir().unwrap();
        let shim = "http://127.0.0.1:5000";
        let missing = hosts_check(dir.path(), "ghcr.io", shim);
        assert!(!missing.passed && missing.detail.contains("_default/hosts.toml"), "{missing:?}");
        std::fs::create_dir_all(dir.path().join("_default")).unwrap();
        std::fs::write(dir.path().join("_default/hosts.toml"), format!("[host.\"{shim}\"]\n")).unwrap();
        assert!(hosts_check(dir.path(), "ghcr.io", shim).passed);
        std::fs::create_dir_all(dir.path().join("ghcr.io")).unwrap();
        std::fs::write(dir.path().join("ghcr.io/hosts.toml"), format!("[host.\"https://m\"]\n[host.\"{shim}\"]\n"))
            .unwrap();
        let behind = hosts_check(dir.path(), "ghcr.io", shim);
        assert!(!behind.passed && behind.detail.contains("not http://127.0.0.1:5000 first"), "{behind:?}");
    }

    #[test]
    fn a_shim_that_is_down_fails_the_first_check_and_stops() {
        let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", unused.local_addr().unwrap());
        drop(unused);
        let checks = run(&DoctorRequest {
            shim_url: url.clone(),
            miss_registry: "ghcr.io".into(),
            dial_timeout: Duration::from_secs(1),
            hosts_dir: None,
            pull: None,
        });
        assert_eq!(checks.len(), 1);
        assert!(!checks[0].passed && checks[0].detail.contains(&url), "{checks:?}");
    }
}
