//! The rest of the pull API through the shim, against a real `docker-registry` with an OCI
//! image, a Docker schema 2 image (skopeo `--format v2s2`) and an OCI index under five tags:
//! `tags/list` (sorted, `n`/`last` pages with `Link` headers, followed to the end, `skopeo
//! list-tags`, unknown repository, bad `n`), `_catalog` (the repositories the shim holds),
//! `ns` values that are no registry host (refused), and the Accept matrix: each Accept set
//! docker, containerd, podman/skopeo and narrower clients send, for each manifest type, served
//! exactly when the client listed the type (or sent no Accept), as upstream answers where
//! upstream refuses too.

use std::process::Command;
use std::time::Duration;

use shoal_interop_tests::registry::{skopeo_push, start_registry, write_oci_index, write_oci_layout};
use shoal_interop_tests::stack::start_shim;
use shoal_interop_tests::{require_tool, run_ok};

const DOCKER_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// (status, headers lowercased, body) of a GET with these extra curl arguments.
fn get(url: &str, extra: &[&str]) -> (u16, String, String) {
    let mut args = vec!["-D", "/dev/stderr"];
    args.extend_from_slice(extra);
    let curl_bin = require_tool("curl");
    let out = Command::new(curl_bin)
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "60"])
        .args(&args)
        .arg(url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = stdout.rsplit_once('\n').unwrap();
    (status.trim().parse().unwrap(), String::from_utf8_lossy(&out.stderr).to_ascii_lowercase(), body.to_owned())
}

fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).map(str::trim)
}

fn tags_of(body: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_catalog_and_accept_negotiation_work_like_a_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let (_registry, port) = start_registry(&tmp.path().join("registry"), "");
    let upstream = format!("127.0.0.1:{port}");
    let layout = tmp.path().join("layout");
    let (blobs, _) = write_oci_layout(&layout, "v1", &[50_000], 11);
    skopeo_push(&layout, "v1", port, "team/disc");
    let index_layout = tmp.path().join("index-layout");
    write_oci_index(&index_layout, "multi", &[("linux", "amd64"), ("linux", "arm64")], &[20_000], 12);
    skopeo_push(&index_layout, "multi", port, "team/disc");
    let skopeo = require_tool("skopeo");
    let copy = |args: &[&str]| {
        run_ok(
            Command::new(&skopeo).args(["copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false"]).args(args),
        );
    };
    copy(&[
        "--format",
        "v2s2",
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{upstream}/team/disc:docker"),
    ]);
    for tag in ["v2", "v3"] {
        copy(&[&format!("docker://{upstream}/team/disc:v1"), &format!("docker://{upstream}/team/disc:{tag}")]);
    }
    let shim = start_shim(&tmp.path().join("shim"), &upstream, None, &[]).await;
    let base = format!("http://{}", shim.addr);

    tokio::task::spawn_blocking(move || {
        // tags/list: all of them sorted, as upstream has them.
        let all = ["docker", "multi", "v1", "v2", "v3"].map(String::from).to_vec();
        let (status, _, body) = get(&format!("http://{upstream}/v2/team/disc/tags/list"), &[]);
        assert_eq!(status, 200);
        let mut upstream_tags = tags_of(&body);
        upstream_tags.sort();
        assert_eq!(upstream_tags, all);
        let (status, headers, body) = get(&format!("{base}/v2/team/disc/tags/list"), &[]);
        assert_eq!(status, 200, "{body}");
        assert_eq!(tags_of(&body), all);
        assert_eq!(header(&headers, "link"), None, "one page holds them all");

        // Pages of two, followed by their Link headers to the end.
        let (mut url, mut seen, mut pages) = (format!("{base}/v2/team/disc/tags/list?n=2"), Vec::new(), 0);
        loop {
            let (status, headers, body) = get(&url, &[]);
            assert_eq!(status, 200, "{url}: {body}");
            let page = tags_of(&body);
            assert!(page.len() <= 2, "{page:?}");
            seen.extend(page);
            pages += 1;
            let Some(link) = header(&headers, "link") else { break };
            let next = link.strip_prefix('<').and_then(|l| l.split_once(">; rel=\"next\"")).unwrap().0;
            url = format!("{base}{next}");
        }
        assert_eq!((seen, pages), (all.clone(), 3));

        // skopeo's own listing through the shim.
        let out = run_ok(
            Command::new(require_tool("skopeo"))
                .args(["list-tags", "--tls-verify=false"])
                .arg(format!("docker://{}/team/disc", base.trim_start_matches("http://"))),
        );
        let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut skopeo_tags: Vec<String> =
            listed["Tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()).collect();
        skopeo_tags.sort();
        assert_eq!(skopeo_tags, all);

        let (status, _, body) = get(&format!("{base}/v2/team/nothing/tags/list"), &[]);
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("NAME_UNKNOWN"), "{body}");
        // An `ns` that is not a registry host is refused before anything is asked of it.
        for ns in ["a/b", "x@evil.example", "127.0.0.1:99999", "http%3A%2F%2Fx"] {
            let (status, _, body) = get(&format!("{base}/v2/team/disc/manifests/v1?ns={ns}"), &[]);
            assert_eq!(status, 400, "ns={ns}: {body}");
            assert!(body.contains("NAME_INVALID") && body.contains("not a registry host"), "{body}");
        }
        let (status, _, body) = get(&format!("{base}/v2/team/disc/tags/list?n=many"), &[]);
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("PAGINATION_NUMBER_INVALID"), "{body}");

        // The Accept matrix: (client, Accept headers).
        let docker = [DOCKER_V2, DOCKER_LIST, OCI_INDEX, OCI_MANIFEST];
        let containerd = [DOCKER_V2, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX, "*/*"];
        let podman = [
            OCI_MANIFEST,
            OCI_INDEX,
            DOCKER_LIST,
            DOCKER_V2,
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            "application/vnd.docker.distribution.manifest.v1+json",
        ];
        let clients: [(&str, &[&str]); 6] = [
            ("docker", &docker),
            ("containerd", &containerd),
            ("podman/skopeo", &podman),
            ("docker-v2-only", &[DOCKER_V2]),
            ("oci-manifest-only", &[OCI_MANIFEST]),
            ("no-accept", &[]),
        ];
        let tags = [("v1", OCI_MANIFEST), ("multi", OCI_INDEX), ("docker", DOCKER_V2)];
        for (client, accept) in clients {
            let args: Vec<String> =
                if accept.is_empty() { vec![] } else { vec!["-H".into(), format!("Accept: {}", accept.join(", "))] };
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            for (tag, media_type) in tags {
                let served = accept.is_empty() || accept.contains(&media_type) || accept.contains(&"*/*");
                let (status, headers, body) = get(&format!("{base}/v2/team/disc/manifests/{tag}"), &args);
                let (up_status, up_headers, _) = get(&format!("http://{upstream}/v2/team/disc/manifests/{tag}"), &args);
                eprintln!("{client:>17} {tag:>6}: shim {status}, upstream {up_status}");
                if served {
                    assert_eq!(status, 200, "{client} {tag}: {body}");
                    assert_eq!(header(&headers, "content-type"), Some(media_type), "{client} {tag}");
                } else {
                    assert_eq!(status, 404, "{client} {tag} is a {media_type}: not served");
                    assert!(body.contains("MANIFEST_UNKNOWN") && body.contains(media_type), "{body}");
                }
                if up_status == 200 && status == 200 {
                    let digest = |h: &str| header(h, "docker-content-digest").map(str::to_owned);
                    assert_eq!(digest(&headers), digest(&up_headers), "{client} {tag}: the same manifest");
                }
                // Where upstream refuses an OCI type the client did not list, so does the shim.
                // (No Accept at all: Distribution serves Docker schema 2 only, the shim any
                // type, on purpose: every real client sends Accept; curl and scripts need not.)
                if media_type != DOCKER_V2 && up_status == 404 && !accept.is_empty() {
                    assert_eq!(status, 404, "{client} {tag}");
                }
            }
        }

        // _catalog: the repositories the shim holds blobs of, once it pulled one.
        let (status, _, body) = get(&format!("{base}/v2/_catalog"), &[]);
        assert_eq!((status, body.as_str()), (200, r#"{"repositories":[]}"#));
        let (status, _, _) = get(&format!("{base}/v2/team/disc/blobs/{}", blobs[1].digest), &[]);
        assert_eq!(status, 200);
        // The blob is indexed right after its last byte went out.
        shoal_interop_tests::wait_until("the pulled blob's repository in the catalog", Duration::from_secs(10), || {
            get(&format!("{base}/v2/_catalog"), &[]).2 == r#"{"repositories":["team/disc"]}"#
        });
    })
    .await
    .unwrap();
}
