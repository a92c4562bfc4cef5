//! `shoal magnets`: has a seeder mirror an image, then prints each blob's magnet for CI logs.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};

use shoal_registry_shim::SeederTrust;

use crate::cli::MagnetsArgs;
use crate::magnets::{render_github, render_json, render_text, ImageListing, OutputFormat};

pub(crate) fn run(args: MagnetsArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let token = args.seeder_token.as_ref().map(|t| t.0.as_str());
    let trust = SeederTrust::from(args.tls);
    let listing = runtime.block_on(mirror_at_any(&args.seeders, &args.image, token, &trust))?;
    let summary = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty());
    print(&listing, args.format, summary.as_deref().map(Path::new))
}

/// The upstream registry has no such image: `shoal` exits with 3 for it, so a CI step can tell
/// a typo in an image name from an outage (1).
#[derive(Debug)]
pub(crate) struct ImageUnknown(pub(crate) String);

impl std::fmt::Display for ImageUnknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "manifest unknown: {} (the upstream registry has no such image or tag)", self.0)
    }
}

impl std::error::Error for ImageUnknown {}

/// [`mirror`] at the first of `seeders` that can be reached (the seeders of a ring: any of them
/// has each blob mirrored by its owners); a seeder that answers, even with an error, ends it.
async fn mirror_at_any(
    seeders: &[String],
    image: &str,
    token: Option<&str>,
    trust: &SeederTrust,
) -> anyhow::Result<ImageListing> {
    let mut unreachable = Vec::new();
    for seeder in seeders {
        match mirror(seeder, image, token, trust).await {
            Err(e) if e.downcast_ref::<Unreachable>().is_some() => {
                eprintln!("shoal magnets: {e:#}; trying the next seeder");
                unreachable.push(format!("{e:#}"));
            }
            result => return result,
        }
    }
    bail!("no seeder could be reached: {}", unreachable.join("; "))
}

/// The seeder did not take the request at all (refused, no route, connect deadline).
#[derive(Debug)]
struct Unreachable(String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot reach the seeder at {}", self.0)
    }
}

/// `POST /v1/images`: the seeder mirrors the image (a no-op for blobs it holds; tags are
/// resolved again, so a re-pushed tag gets its new blobs) and lists it.
pub(crate) async fn mirror(
    seeder: &str,
    image: &str,
    token: Option<&str>,
    trust: &SeederTrust,
) -> anyhow::Result<ImageListing> {
    let url = format!("{}/v1/images", seeder.trim_end_matches('/'));
    // A connect deadline only: mirroring a large image takes as long as it takes, and the
    // seeder's own upstream deadlines bound each of its calls.
    let builder = reqwest::Client::builder().connect_timeout(std::time::Duration::from_secs(2));
    let client =
        trust.configure(builder).map_err(anyhow::Error::msg)?.build().context("cannot build an HTTP client")?;
    let mut request = client.post(&url).header(reqwest::header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.body(serde_json::json!({ "image": image }).to_string()).send().await.map_err(|e| {
        let unreachable = Unreachable(seeder.to_owned());
        if e.is_connect() {
            anyhow::Error::new(e).context(unreachable)
        } else {
            anyhow::Error::new(e).context(unreachable.to_string())
        }
    })?;
    let status = response.status();
    let body = response.bytes().await.with_context(|| format!("reading the seeder's answer from {url}"))?;
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(ImageUnknown(image.to_owned()).into());
    }
    if !status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        bail!("the seeder could not mirror {image} ({status}): {message}");
    }
    serde_json::from_slice(&body).with_context(|| format!("{url} did not answer with an image listing"))
}

/// Prints `listing` on stdout; `github` also appends its markdown to `summary` when given.
pub(crate) fn print(listing: &ImageListing, format: OutputFormat, summary: Option<&Path>) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match format {
        OutputFormat::Text => stdout.write_all(render_text(listing).as_bytes())?,
        OutputFormat::Json => stdout.write_all(render_json(listing).as_bytes())?,
        OutputFormat::Github => {
            let (log, markdown) = render_github(listing);
            stdout.write_all(log.as_bytes())?;
            if let Some(path) = summary {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .and_then(|mut f| f.write_all(markdown.as_bytes()))
                    .with_context(|| format!("cannot append the step summary to {}", path.display()))?;
            }
        }
    }
    stdout.flush()?;
    Ok(())
}
