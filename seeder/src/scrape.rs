//! The swarms as the tracker sees them, for the live page: a scrape (BEP 48) of every stored
//! blob's infohash at the seeder's first HTTP tracker, every few seconds.
//!
//! Pure: [`scrape_urls`] (the announce URL's `announce` -> `scrape`, infohashes in batches) and
//! [`parse_scrape`] (the bencoded reply). [`scrape_loop`] does the I/O, each request under a
//! deadline; a tracker that fails leaves its last answer in place, marked with the error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use percent_encoding::{percent_encode, NON_ALPHANUMERIC};
use serde::Serialize;
use shoal_store::usage::now_ms;
use shoal_torrents::InfoHash;

/// Infohashes per scrape request: 50 keep the URL near 3 KB, under every server's limit.
const BATCH: usize = 50;
/// How often the page's tracker view is refreshed.
const INTERVAL: Duration = Duration::from_secs(5);
/// A scrape that takes longer is abandoned (the page keeps the previous answer).
const DEADLINE: Duration = Duration::from_secs(3);

/// What a tracker counts for one swarm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct TrackerCounts {
    /// Peers that announced they have the whole blob.
    pub seeders: u64,
    /// Peers still downloading.
    pub leechers: u64,
    /// Downloads the tracker saw complete.
    pub completed: u64,
}

/// The last scrape: when, from which tracker, and how it went.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct TrackerView {
    /// The scrape URL asked (without its infohashes); `None` when no tracker supports scrape.
    pub url: Option<String>,
    /// When the last scrape answered, milliseconds since the Unix epoch.
    pub at_ms: Option<u64>,
    /// Why the latest scrape failed, if it did.
    pub error: Option<String>,
    #[serde(skip)]
    pub swarms: HashMap<InfoHash, TrackerCounts>,
}

/// The view shared by the scrape loop and the API.
#[derive(Debug, Default)]
pub(crate) struct TrackerSwarms(Mutex<TrackerView>);

impl TrackerSwarms {
    pub(crate) fn view(&self) -> TrackerView {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, change: impl FnOnce(&mut TrackerView)) {
        change(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// The scrape convention (BEP 48): the announce URL's last path segment `announce` becomes
/// `scrape`; a tracker whose URL does not end so has no scrape. UDP trackers are skipped.
pub(crate) fn scrape_base(announce: &str) -> Option<String> {
    if !(announce.starts_with("http://") || announce.starts_with("https://")) {
        return None;
    }
    let (path, query) = announce.split_once('?').map_or((announce, None), |(p, q)| (p, Some(q)));
    let (dir, last) = path.rsplit_once('/')?;
    let rest = last.strip_prefix("announce")?;
    let base = format!("{dir}/scrape{rest}");
    Some(match query {
        Some(q) => format!("{base}?{q}"),
        None => base,
    })
}

/// The scrape requests for `hashes` at `base`, `BATCH` infohashes each.
pub(crate) fn scrape_urls(base: &str, hashes: &[InfoHash]) -> Vec<String> {
    let sep = if base.contains('?') { '&' } else { '?' };
    hashes
        .chunks(BATCH)
        .map(|batch| {
            let params: Vec<String> =
                batch.iter().map(|h| format!("info_hash={}", percent_encode(h.as_bytes(), NON_ALPHANUMERIC))).collect();
            format!("{base}{sep}{}", params.join("&"))
        })
        .collect()
}

/// A scrape reply: `d5:filesd20:<infohash>d8:completei..e10:downloadedi..e10:incompletei..eeee`,
/// or a tracker's `failure reason`.
pub(crate) fn parse_scrape(body: &[u8]) -> Result<HashMap<InfoHash, TrackerCounts>, String> {
    use serde_bencode::value::Value;
    let value: Value = serde_bencode::from_bytes(body).map_err(|e| format!("not bencode: {e}"))?;
    let Value::Dict(top) = value else { return Err("the reply is not a dictionary".into()) };
    if let Some(Value::Bytes(reason)) = top.get(b"failure reason".as_slice()) {
        return Err(format!("the tracker refused: {}", String::from_utf8_lossy(reason)));
    }
    let Some(Value::Dict(files)) = top.get(b"files".as_slice()) else {
        return Err("the reply has no files dictionary".into());
    };
    let count = |d: &HashMap<Vec<u8>, Value>, key: &str| match d.get(key.as_bytes()) {
        Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
        _ => 0,
    };
    let mut out = HashMap::new();
    for (key, stats) in files {
        let (Ok(hash), Value::Dict(stats)) = (<[u8; 20]>::try_from(key.as_slice()), stats) else {
            return Err(format!("a files entry is not a 20-byte infohash with counts ({} bytes)", key.len()));
        };
        let counts = TrackerCounts {
            seeders: count(stats, "complete"),
            leechers: count(stats, "incomplete"),
            completed: count(stats, "downloaded"),
        };
        out.insert(InfoHash::from_bytes(hash), counts);
    }
    Ok(out)
}

/// Scrapes the first tracker that supports it for every infohash `stored` lists (the stored
/// blobs), every [`INTERVAL`], until the task is cancelled.
pub(crate) async fn scrape_loop(
    trackers: Vec<String>,
    stored: impl Fn() -> Result<Vec<InfoHash>, String>,
    view: Arc<TrackerSwarms>,
) {
    let Some(base) = trackers.iter().find_map(|t| scrape_base(t)) else { return };
    view.update(|v| v.url = Some(base.clone()));
    let client = match reqwest::Client::builder().timeout(DEADLINE).connect_timeout(DEADLINE).build() {
        Ok(c) => c,
        Err(e) => return view.update(|v| v.error = Some(format!("no HTTP client: {e}"))),
    };
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let hashes = match stored() {
            Ok(hashes) => hashes,
            Err(e) => {
                view.update(|v| v.error = Some(e));
                continue;
            }
        };
        match scrape_all(&client, &base, &hashes).await {
            Ok(swarms) => view.update(|v| {
                v.swarms = swarms;
                v.at_ms = Some(now_ms());
                v.error = None;
            }),
            Err(e) => {
                tracing::debug!(tracker = %base, error = %e, "scrape failed");
                view.update(|v| v.error = Some(e));
            }
        }
    }
}

async fn scrape_all(
    client: &reqwest::Client,
    base: &str,
    hashes: &[InfoHash],
) -> Result<HashMap<InfoHash, TrackerCounts>, String> {
    let mut all = HashMap::new();
    for url in scrape_urls(base, hashes) {
        let response = client.get(&url).send().await.map_err(|e| format!("{base}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{base}: HTTP {}", response.status()));
        }
        let body = response.bytes().await.map_err(|e| format!("{base}: {e}"))?;
        all.extend(parse_scrape(&body).map_err(|e| format!("{base}: {e}"))?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scrape_url_follows_the_announce_url() {
        let cases = [
            ("http://t:6969/announce", Some("http://t:6969/scrape")),
            ("http://t/x/announce.php", Some("http://t/x/scrape.php")),
            ("https://t/announce?passkey=k", Some("https://t/scrape?passkey=k")),
            ("http://t/a", None),
            ("http://t/announce/extra", None),
            ("udp://t:6969/announce", None),
        ];
        for (announce, scrape) in cases {
            assert_eq!(scrape_base(announce).as_deref(), scrape, "{announce}");
        }
    }

    #[test]
    fn infohashes_go_in_batches_percent_encoded() {
        let hashes: Vec<InfoHash> = (0..120u8).map(|n| InfoHash::from_bytes([n; 20])).collect();
        let urls = scrape_urls("http://t/scrape", &hashes);
        assert_eq!(urls.len(), 3);
        assert_eq!(urls[0].matches("info_hash=").count(), 50);
        assert_eq!(urls[2].matches("info_hash=").count(), 20);
        assert!(urls[0].starts_with(&format!("http://t/scrape?info_hash={}&", "%00".repeat(20))), "{}", urls[0]);
        assert!(scrape_urls("http://t/scrape?k=1", &hashes[..1])[0].starts_with("http://t/scrape?k=1&info_hash="));
        assert!(scrape_urls("http://t/scrape", &[]).is_empty());
    }

    #[test]
    fn a_reply_gives_counts_per_infohash() {
        let mut body = b"d5:filesd20:".to_vec();
        body.extend([7u8; 20]);
        body.extend(b"d8:completei2e10:downloadedi5e10:incompletei1eeee");
        let swarms = parse_scrape(&body).unwrap();
        assert_eq!(swarms[&InfoHash::from_bytes([7; 20])], TrackerCounts { seeders: 2, leechers: 1, completed: 5 });
        assert_eq!(parse_scrape(b"d5:filesdee").unwrap().len(), 0);
    }

    #[test]
    fn bad_replies_are_errors_that_say_why() {
        let refused = parse_scrape(b"d14:failure reason6:nope!!e").unwrap_err();
        assert!(refused.contains("nope!!"), "{refused}");
        assert!(parse_scrape(b"<html>").unwrap_err().contains("not bencode"));
        assert!(parse_scrape(b"le").unwrap_err().contains("not a dictionary"));
        assert!(parse_scrape(b"de").unwrap_err().contains("no files"));
        assert!(parse_scrape(b"d5:filesd3:abcdeee").unwrap_err().contains("20-byte"));
    }
}
