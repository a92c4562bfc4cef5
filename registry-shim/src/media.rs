//! Manifest media types and Accept negotiation between the client and the upstream.

pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Every manifest type the shim serves, in the order it asks upstream for them.
pub(crate) const ALL_MANIFESTS: [&str; 4] = [OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

/// The manifest types a client's `Accept` headers allow, in our preference order.
///
/// A client that sends no `Accept` (or `*/*`) gets every type: old clients without Accept only
/// understand schema 2 in practice, but refusing them would help no one.
pub(crate) fn accepted(accept_headers: &[&str]) -> Vec<&'static str> {
    let listed: Vec<&str> = accept_headers
        .iter()
        .flat_map(|h| h.split(','))
        .map(|item| item.split(';').next().unwrap_or("").trim())
        .filter(|m| !m.is_empty())
        .collect();
    if listed.is_empty() || listed.iter().any(|m| *m == "*/*" || *m == "application/*") {
        return ALL_MANIFESTS.to_vec();
    }
    ALL_MANIFESTS.into_iter().filter(|m| listed.iter().any(|l| l.eq_ignore_ascii_case(m))).collect()
}

/// Why a manifest of `media_type` is not served to a client that did not accept it, in
/// Distribution's words (it answers such requests 404 `MANIFEST_UNKNOWN` too).
pub(crate) fn not_accepted(reference: &str, media_type: &str) -> String {
    let kind = match media_type {
        OCI_INDEX => "OCI index",
        OCI_MANIFEST => "OCI manifest",
        DOCKER_MANIFEST_LIST => "Docker manifest list",
        DOCKER_MANIFEST => "Docker schema 2 manifest",
        other => other,
    };
    format!("{reference}: {kind} found, but the Accept header does not list {media_type}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_lists_are_split_and_filtered() {
        let docker = [
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json;q=0.9",
        ];
        assert_eq!(accepted(&docker), [OCI_INDEX, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST]);
        assert_eq!(accepted(&[]), ALL_MANIFESTS);
        assert_eq!(accepted(&["*/*"]), ALL_MANIFESTS);
        assert!(accepted(&["text/html"]).is_empty());
    }

    #[test]
    fn a_refusal_names_the_kind_found() {
        let m = not_accepted("a:1", OCI_INDEX);
        assert!(m.starts_with("a:1: OCI index found") && m.ends_with(OCI_INDEX), "{m}");
    }
}
