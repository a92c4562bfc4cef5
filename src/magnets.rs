//! `shoal magnets` output: an image's blobs, as the seeder lists them, formatted for CI logs.
//!
//! Pure: the listing comes in as the seeder's `/v1/images` JSON, text goes out. The three
//! formats are stable (tests pin them), because CI logs get grepped.

use serde::{Deserialize, Serialize};

/// `GET`/`POST /v1/images` as the seeder answers it.
#[derive(Deserialize, Debug, Clone)]
pub struct ImageListing {
    pub reference: String,
    pub digest: String,
    pub manifests: Vec<ManifestListing>,
}

#[derive(Deserialize, Debug, Clone)]
pub struct ManifestListing {
    pub digest: String,
    pub platform: Option<String>,
    pub config: BlobListing,
    pub layers: Vec<BlobListing>,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq)]
pub struct BlobListing {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    /// None for blobs that are never swarmed (empty ones).
    pub info_hash: Option<String>,
    pub magnet: Option<String>,
}

/// How `shoal magnets` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One line per blob: media type, digest, size, magnet (`-` when there is none).
    Text,
    /// One JSON object with every blob.
    Json,
    /// A `::notice::` line per layer, plus a markdown step summary.
    Github,
}

/// One blob of the image with what it is in the image, in manifest order, each digest once.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct ListedBlob {
    pub kind: BlobKind,
    pub platform: Option<String>,
    #[serde(flatten)]
    pub blob: BlobListing,
}

#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BlobKind {
    Config,
    Layer,
}

impl ImageListing {
    /// Config then layers of each manifest, in order; a blob shared by platforms appears once.
    pub fn blobs(&self) -> Vec<ListedBlob> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for m in &self.manifests {
            let blobs =
                std::iter::once((BlobKind::Config, &m.config)).chain(m.layers.iter().map(|l| (BlobKind::Layer, l)));
            for (kind, blob) in blobs {
                if seen.insert(blob.digest.clone()) {
                    out.push(ListedBlob { kind, platform: m.platform.clone(), blob: blob.clone() });
                }
            }
        }
        out
    }
}

/// `text`: `<media type> <digest> <size> <magnet>` per blob, space-separated.
pub fn render_text(image: &ImageListing) -> String {
    image
        .blobs()
        .iter()
        .map(|b| {
            let magnet = b.blob.magnet.as_deref().unwrap_or("-");
            format!("{} {} {} {magnet}\n", b.blob.media_type, b.blob.digest, b.blob.size)
        })
        .collect()
}

/// `json`: `{"image", "digest", "blobs": [{kind, platform, digest, size, media_type, info_hash, magnet}]}`.
pub fn render_json(image: &ImageListing) -> String {
    #[derive(Serialize)]
    struct Out<'a> {
        image: &'a str,
        digest: &'a str,
        blobs: Vec<ListedBlob>,
    }
    let out = Out { image: &image.reference, digest: &image.digest, blobs: image.blobs() };
    serde_json::to_string_pretty(&out).expect("plain data serializes") + "\n"
}

/// `github`: the workflow-command lines for stdout and the markdown for `$GITHUB_STEP_SUMMARY`.
pub fn render_github(image: &ImageListing) -> (String, String) {
    let blobs = image.blobs();
    let layers: Vec<_> = blobs.iter().filter(|b| b.kind == BlobKind::Layer).collect();
    let mut log = String::new();
    for (i, b) in layers.iter().enumerate() {
        let title = format!("Layer {}/{} of {} ({})", i + 1, layers.len(), image.reference, human_size(b.blob.size));
        let message = format!("{} {}", b.blob.digest, b.blob.magnet.as_deref().unwrap_or("(no magnet: empty blob)"));
        log.push_str(&format!("::notice title={}::{}\n", escape_property(&title), escape_data(&message)));
    }
    let mut summary = format!("### Magnet links for `{}`\n\nManifest `{}`\n\n", image.reference, image.digest);
    summary.push_str("| Blob | Media type | Digest | Size | Magnet |\n|---|---|---|---|---|\n");
    for b in &blobs {
        let what = match (b.kind, &b.platform) {
            (BlobKind::Config, Some(p)) => format!("config ({p})"),
            (BlobKind::Config, None) => "config".to_owned(),
            (BlobKind::Layer, Some(p)) => format!("layer ({p})"),
            (BlobKind::Layer, None) => "layer".to_owned(),
        };
        let magnet = b.blob.magnet.as_deref().map(|m| format!("`{m}`")).unwrap_or_else(|| "-".into());
        summary.push_str(&format!(
            "| {what} | {} | `{}` | {} | {magnet} |\n",
            b.blob.media_type,
            b.blob.digest,
            human_size(b.blob.size)
        ));
    }
    (log, summary)
}

/// Workflow-command data: GitHub reads `%`, CR and LF specially.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Workflow-command property values: data escaping plus `:` and `,`.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// `1.5 MiB`, binary units, one decimal above bytes.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(digest: &str, size: u64, media_type: &str, magnet: Option<&str>) -> BlobListing {
        BlobListing {
            digest: digest.into(),
            size,
            media_type: media_type.into(),
            info_hash: magnet.map(|_| "ab".repeat(20)),
            magnet: magnet.map(Into::into),
        }
    }

    fn listing() -> ImageListing {
        let layer = "application/vnd.oci.image.layer.v1.tar+gzip";
        ImageListing {
            reference: "127.0.0.1:5001/team/app:v1".into(),
            digest: "sha256:00".into(),
            manifests: vec![
                ManifestListing {
                    digest: "sha256:m1".into(),
                    platform: Some("linux/amd64".into()),
                    config: blob(
                        "sha256:c1",
                        311,
                        "application/vnd.oci.image.config.v1+json",
                        Some("magnet:?xt=urn:btih:c1"),
                    ),
                    layers: vec![
                        blob("sha256:l1", 3 << 20, layer, Some("magnet:?xt=urn:btih:l1&tr=http%3A%2F%2Fh")),
                        blob("sha256:l0", 0, layer, None),
                    ],
                },
                ManifestListing {
                    digest: "sha256:m2".into(),
                    platform: Some("linux/arm64".into()),
                    config: blob(
                        "sha256:c2",
                        300,
                        "application/vnd.oci.image.config.v1+json",
                        Some("magnet:?xt=urn:btih:c2"),
                    ),
                    layers: vec![blob("sha256:l1", 3 << 20, layer, Some("magnet:?xt=urn:btih:l1&tr=http%3A%2F%2Fh"))],
                },
            ],
        }
    }

    #[test]
    fn text_is_one_line_per_distinct_blob_in_manifest_order() {
        assert_eq!(
            render_text(&listing()),
            "application/vnd.oci.image.config.v1+json sha256:c1 311 magnet:?xt=urn:btih:c1\n\
             application/vnd.oci.image.layer.v1.tar+gzip sha256:l1 3145728 magnet:?xt=urn:btih:l1&tr=http%3A%2F%2Fh\n\
             application/vnd.oci.image.layer.v1.tar+gzip sha256:l0 0 -\n\
             application/vnd.oci.image.config.v1+json sha256:c2 300 magnet:?xt=urn:btih:c2\n"
        );
    }

    #[test]
    fn json_lists_every_blob_with_kind_and_platform() {
        let v: serde_json::Value = serde_json::from_str(&render_json(&listing())).unwrap();
        assert_eq!(v["image"], "127.0.0.1:5001/team/app:v1");
        let blobs = v["blobs"].as_array().unwrap();
        assert_eq!(blobs.len(), 4);
        assert_eq!(blobs[0]["kind"], "config");
        assert_eq!(blobs[1]["kind"], "layer");
        assert_eq!(blobs[1]["platform"], "linux/amd64");
        assert_eq!(blobs[1]["size"], 3 << 20);
        assert_eq!(blobs[2]["magnet"], serde_json::Value::Null);
        assert_eq!(blobs[3]["digest"], "sha256:c2");
    }

    #[test]
    fn github_notices_escape_and_summarise() {
        let (log, summary) = render_github(&listing());
        assert_eq!(
            log,
            "::notice title=Layer 1/2 of 127.0.0.1%3A5001/team/app%3Av1 (3.0 MiB)::sha256:l1 magnet:?xt=urn:btih:l1&tr=http%253A%252F%252Fh\n\
             ::notice title=Layer 2/2 of 127.0.0.1%3A5001/team/app%3Av1 (0 B)::sha256:l0 (no magnet: empty blob)\n"
        );
        assert!(summary.starts_with("### Magnet links for `127.0.0.1:5001/team/app:v1`\n"));
        assert!(summary.contains("| layer (linux/amd64) | application/vnd.oci.image.layer.v1.tar+gzip | `sha256:l1` | 3.0 MiB | `magnet:?xt=urn:btih:l1&tr=http%3A%2F%2Fh` |\n"));
        assert!(summary.contains("| config (linux/arm64) |"));
        assert_eq!(summary.lines().filter(|l| l.starts_with("| ")).count(), 5, "header + 4 blobs");
    }

    #[test]
    fn sizes_read_like_humans_write_them() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(1 << 30), "1.0 GiB");
    }
}
