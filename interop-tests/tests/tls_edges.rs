//! HTTPS on every HTTP edge, with certificates `openssl` makes for the test and `curl` as the
//! client: the shim, the tracker and the seeder serve TLS when given `--tls-cert`/`--tls-key`;
//! the seeder with `--tls-client-ca` lets in only clients holding a certificate that CA signed
//! (mTLS), refusing one without a certificate and one signed by another CA; plain HTTP to a TLS
//! port gets no answer; a client that never starts its handshake is dropped at the header-read
//! deadline; a certificate that cannot be read is an error at start, and half a pair a usage
//! error. `shoal magnets` and `shoal jobs` given the CA and a client certificate reach an mTLS
//! seeder, and a shim given them gets its torrents from it and the layer over the swarm.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shoal_interop_tests::registry::{push_image, PushedImage};
use shoal_interop_tests::{free_port, require_tool, sha256_file, shoal_binary, ChildGuard};

/// A CA, a server certificate for 127.0.0.1 it signed, and client certificates.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Self {
        let pki = Self { dir: dir.to_owned() };
        pki.ca("ca");
        pki.ca("stranger-ca");
        pki.leaf("server", "ca", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
        pki.leaf("client", "ca", "extendedKeyUsage=clientAuth\n");
        pki.leaf("stranger", "stranger-ca", "extendedKeyUsage=clientAuth\n");
        pki
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new(require_tool("openssl")).current_dir(&self.dir).args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn ca(&self, name: &str) {
        let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
        self.openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &key]);
        let subject = format!("/CN=shoal test {name}");
        self.openssl(&["req", "-x509", "-new", "-key", &key, "-subj", &subject, "-days", "2", "-out", &cert]);
    }

    fn leaf(&self, name: &str, ca: &str, extensions: &str) {
        let (key, csr, cert, ext) =
            (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}.ext"));
        std::fs::write(self.dir.join(&ext), extensions).unwrap();
        // PKCS#8, the form rustls reads besides PKCS#1 and SEC1.
        self.openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", &key]);
        let subject = format!("/CN={name}");
        self.openssl(&["req", "-new", "-key", &key, "-subj", &subject, "-out", &csr]);
        let (ca_cert, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_cert,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &cert,
        ]);
    }
}

/// Starts `shoal <args>` and waits for the line starting `prefix` on stdout or stderr; returns
/// the process and the rest of that line.
fn start(args: &[&str], prefix: &'static str) -> (ChildGuard, String) {
    let mut child = ChildGuard::spawn(
        Command::new(shoal_binary()).args(args).env("RUST_LOG", "warn").stdout(Stdio::piped()).stderr(Stdio::piped()),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let pipes: [Box<dyn Read + Send>; 2] =
        [Box::new(child.0.stdout.take().unwrap()), Box::new(child.0.stderr.take().unwrap())];
    for pipe in pipes {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix(prefix) {
                    let _ = tx.send(rest.to_owned());
                }
            }
        });
    }
    let rest = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("no {prefix:?} from {args:?}"));
    (child, rest)
}

/// (HTTP status, body, curl's exit code) of a GET with the given curl options.
fn curl(url: &str, options: &[&str]) -> (u16, String, i32) {
    let out = Command::new(require_tool("curl"))
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "20"])
        .args(options)
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.trim().parse().unwrap_or(0), body.to_owned(), out.status.code().unwrap_or(-1))
}

/// How long the server held a connection that never started its TLS handshake.
fn held_silent(addr: &str) -> Duration {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
    let started = Instant::now();
    let _ = stream.read_to_end(&mut Vec::new());
    started.elapsed()
}

#[test]
fn every_edge_serves_tls_and_the_seeder_lets_in_only_its_clients() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let (cert, key, ca) = (pki.path("server.pem"), pki.path("server.key"), pki.path("ca.pem"));
    let trust = ["--cacert", ca.as_str()];

    // The shim: HTTPS for anyone who trusts its certificate.
    let shim_data = tmp.path().join("shim");
    let shim_args = [
        "shim",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        shim_data.to_str().unwrap(),
        "--upstream",
        "127.0.0.1:1",
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
    ];
    let (_shim, shim) = start(&shim_args, "shoal shim: listening on ");
    assert!(shim.starts_with("https://127.0.0.1:"), "{shim}");
    let silent = {
        let addr = shim.trim_start_matches("https://").to_owned();
        std::thread::spawn(move || held_silent(&addr))
    };
    let (status, body, _) = curl(&format!("{shim}/v2/"), &trust);
    assert_eq!(status, 200, "{body}");
    let (status, _, code) = curl(&format!("{shim}/v2/"), &[]);
    assert_eq!((status, code), (0, 60), "a client that does not trust the certificate refuses it (curl 60)");
    let (status, _, code) = curl(&format!("{}/v2/", shim.replace("https://", "http://")), &[]);
    assert!(status == 0 && code != 0, "plain HTTP to the TLS port is not served: {status}, curl {code}");

    // The tracker: HTTPS announces, still bencoded.
    let tracker_listen = format!("127.0.0.1:{}", free_port());
    let tracker_args = ["tracker", "--listen", &tracker_listen, "--tls-cert", &cert, "--tls-key", &key];
    let (_tracker, announce) = start(&tracker_args, "shoal tracker: listening on ");
    assert_eq!(announce, format!("https://{tracker_listen}/announce"));
    let query = "?info_hash=%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A&peer_id=-qB4500-000000000001&port=6881&left=0";
    let (status, body, _) = curl(&format!("{announce}{query}"), &trust);
    assert_eq!(status, 200);
    assert!(body.starts_with("d8:complete") || body.contains("8:interval"), "not an announce reply: {body}");

    // The seeder with mTLS: its own clients only.
    let seeder_data = tmp.path().join("seeder");
    let bt = format!("127.0.0.1:{}", free_port());
    let client_ca = pki.path("ca.pem");
    let seeder_args = [
        "seeder",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        seeder_data.to_str().unwrap(),
        "--bt-listen",
        &bt,
        "--upstream",
        "127.0.0.1:1",
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--tls-client-ca",
        &client_ca,
    ];
    let (_seeder, seeder) = start(&seeder_args, "shoal seeder: listening on ");
    assert!(seeder.starts_with("https://"), "{seeder}");
    let (client_cert, client_key) = (pki.path("client.pem"), pki.path("client.key"));
    let mine = ["--cacert", &ca, "--cert", &client_cert, "--key", &client_key];
    let (status, body, _) = curl(&format!("{seeder}/v1/jobs"), &mine);
    assert_eq!(status, 200, "a client with a certificate of the CA is served: {body}");
    let (status, _, code) = curl(&format!("{seeder}/v1/jobs"), &trust);
    assert!(status == 0 && code != 0, "a client without a certificate is refused: {status}, curl {code}");
    let (stranger_cert, stranger_key) = (pki.path("stranger.pem"), pki.path("stranger.key"));
    let stranger = ["--cacert", &ca, "--cert", &stranger_cert, "--key", &stranger_key];
    let (status, _, code) = curl(&format!("{seeder}/v1/jobs"), &stranger);
    assert!(status == 0 && code != 0, "a certificate of another CA is refused: {status}, curl {code}");

    let held = silent.join().unwrap();
    eprintln!("a connection that never started its handshake was held {held:?}");
    assert!(held >= Duration::from_secs(9) && held < Duration::from_secs(15), "held {held:?} (deadline 10 s)");
}

#[test]
fn a_certificate_that_cannot_be_used_stops_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("shim");
    let missing = tmp.path().join("missing.pem");
    let out = Command::new(shoal_binary())
        .args(["shim", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1", "--data-dir"])
        .arg(&data)
        .arg("--tls-cert")
        .arg(&missing)
        .arg("--tls-key")
        .arg(&missing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with a missing certificate");
    assert!(stderr.contains("cannot set up TLS") && stderr.contains("missing.pem"), "{stderr}");
    assert!(!data.exists(), "nothing was created before the certificate failed: {stderr}");
    let out = Command::new(shoal_binary()).args(["tracker", "--tls-cert", "x.pem"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "half a pair is a usage error");
}

#[test]
fn a_shim_pulls_over_the_swarm_through_a_seeder_that_requires_its_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let (cert, key, ca) = (pki.path("server.pem"), pki.path("server.key"), pki.path("ca.pem"));
    let (client_cert, client_key) = (pki.path("client.pem"), pki.path("client.key"));
    let PushedImage { registry: _registry, address, blobs, .. } =
        push_image(&tmp.path().join("up"), "team/app", &[3_000_000], 133);
    let tracker = shoal_tracker::spawn(shoal_tracker::TrackerConfig::loopback()).unwrap();
    let announce = tracker.announce_url();

    let seeder_data = tmp.path().join("seeder");
    let bt = format!("127.0.0.1:{}", free_port());
    let seeder_args = [
        "seeder",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        seeder_data.to_str().unwrap(),
        "--bt-listen",
        &bt,
        "--tracker",
        &announce,
        "--upstream",
        &address,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--tls-client-ca",
        &ca,
    ];
    let (_seeder, seeder) = start(&seeder_args, "shoal seeder: listening on ");
    // `shoal magnets` and `shoal jobs` reach it with the CA and a client certificate, and
    // without the certificate fail with the handshake's cause.
    let image = format!("{address}/team/app:v1");
    let identity = ["--seeder-client-cert", client_cert.as_str(), "--seeder-client-key", client_key.as_str()];
    let shoal =
        |args: &[&str]| Command::new(shoal_binary()).args(args).env_remove("GITHUB_STEP_SUMMARY").output().unwrap();
    let refused = shoal(&["magnets", "--seeder", &seeder, "--seeder-ca", &ca, &image]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot reach the seeder"), "{stderr}");
    let magnets = shoal(&[&["magnets", "--seeder", &seeder, "--seeder-ca", &ca][..], &identity, &[&image]].concat());
    let stdout = String::from_utf8_lossy(&magnets.stdout);
    assert!(magnets.status.success(), "{stdout} {}", String::from_utf8_lossy(&magnets.stderr));
    assert!(stdout.contains(&blobs[1].digest) && stdout.contains("magnet:?xt=urn:btih:"), "{stdout}");
    let jobs = shoal(&[&["jobs", "--seeder", &seeder, "--seeder-ca", &ca][..], &identity].concat());
    assert!(jobs.status.success(), "{}", String::from_utf8_lossy(&jobs.stderr));

    // The shim trusts the seeder's CA and presents a certificate that CA signed.
    let shim_data = tmp.path().join("shim");
    let shim_bt = format!("127.0.0.1:{}", free_port());
    let shim_args = [
        "shim",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        shim_data.to_str().unwrap(),
        "--upstream",
        &address,
        "--seeder",
        &seeder,
        "--seeder-ca",
        &ca,
        "--seeder-client-cert",
        &client_cert,
        "--seeder-client-key",
        &client_key,
        "--bt-listen",
        &shim_bt,
        "--tracker",
        &announce,
    ];
    let (_shim, shim) = start(&shim_args, "shoal shim: listening on ");
    let layer = &blobs[1];
    let out = tmp.path().join("layer");
    let pulled = Command::new(require_tool("curl"))
        .args(["-sf", "--max-time", "60", "-o"])
        .arg(&out)
        .arg(format!("{shim}/v2/team/app/blobs/{}", layer.digest))
        .status()
        .unwrap();
    assert!(pulled.success());
    assert_eq!(sha256_file(&out), layer.digest);
    let (_, metrics, _) = curl(&format!("{shim}/metrics"), &[]);
    let from = |source: &str| -> u64 {
        let prefix = format!("shoal_shim_blob_bytes_total{{source=\"{source}\"}} ");
        metrics.lines().find_map(|l| l.strip_prefix(prefix.as_str())).map_or(0, |v| v.parse().unwrap())
    };
    let (peers, webseed, upstream) = (from("peers"), from("webseed"), from("upstream"));
    eprintln!("layer bytes: peers {peers}, webseed {webseed}, upstream {upstream}");
    assert_eq!(upstream, 0, "the torrent came from the seeder over mTLS, the bytes from the swarm");
    assert_eq!(peers + webseed, layer.size);
}
