//! Which upstream images the seeder mirrors when asked (`--mirror-allow`): the API mirrors
//! whatever it is asked to, so by default only the registry it fronts (`--upstream`, else
//! Docker Hub) and those of the images it is configured with; anything else is refused before
//! anything is fetched. Pure.
//!
//! A pattern is `*` (anything), `host[:port]` (a whole registry), `host/repo` (one repository)
//! or `host/prefix/*` (every repository under a prefix). Docker Hub's names (`docker.io`,
//! `index.docker.io`, `registry-1.docker.io`) are one registry.

/// One `--mirror-allow` pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    Any,
    Registry(String),
    Repository { registry: String, repository: String },
    Prefix { registry: String, prefix: String },
}

/// Docker Hub under one name.
fn canonical_registry(host: &str) -> String {
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        other => other.to_ascii_lowercase(),
    }
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a mirror-allow pattern: expected *, host[:port], host/repository or host/prefix/*")]
pub struct PatternError(String);

impl std::str::FromStr for Pattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, PatternError> {
        if s == "*" {
            return Ok(Pattern::Any);
        }
        let bad = || PatternError(s.to_owned());
        let (host, path) = s.split_once('/').map_or((s, None), |(h, p)| (h, Some(p)));
        if !shoal_upstream::is_registry_host(host) {
            return Err(bad());
        }
        let registry = canonical_registry(host);
        let Some(path) = path else { return Ok(Pattern::Registry(registry)) };
        let (rest, wildcard) = match path.strip_suffix("/*") {
            Some(prefix) => (prefix, true),
            None => (path, false),
        };
        let component_ok = |c: &str| !c.is_empty() && !c.contains('*') && c == c.to_ascii_lowercase();
        if !rest.split('/').all(component_ok) {
            return Err(bad());
        }
        Ok(if wildcard {
            Pattern::Prefix { registry, prefix: format!("{rest}/") }
        } else {
            Pattern::Repository { registry, repository: rest.to_owned() }
        })
    }
}

/// The upstream repositories the seeder may mirror.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorAllowList(Vec<Pattern>);

impl MirrorAllowList {
    /// From `--mirror-allow` patterns; when there are none, the registries of `defaults`
    /// (the fronted registry, the configured images' registries).
    pub fn new(patterns: &[String], defaults: &[String]) -> Result<Self, PatternError> {
        let parsed: Vec<Pattern> = patterns.iter().map(|p| p.parse()).collect::<Result<_, _>>()?;
        if !parsed.is_empty() {
            return Ok(Self(parsed));
        }
        let mut registries: Vec<Pattern> = defaults.iter().map(|r| Pattern::Registry(canonical_registry(r))).collect();
        registries.dedup();
        Ok(Self(registries))
    }

    /// Whether `registry`/`repository` may be mirrored.
    pub fn allows(&self, registry: &str, repository: &str) -> bool {
        let registry = canonical_registry(registry);
        self.0.iter().any(|p| match p {
            Pattern::Any => true,
            Pattern::Registry(r) => *r == registry,
            Pattern::Repository { registry: r, repository: repo } => *r == registry && repo == repository,
            Pattern::Prefix { registry: r, prefix } => *r == registry && repository.starts_with(prefix.as_str()),
        })
    }

    /// The patterns, as a log line or an error message names them.
    pub fn describe(&self) -> String {
        let names: Vec<String> = self
            .0
            .iter()
            .map(|p| match p {
                Pattern::Any => "*".to_owned(),
                Pattern::Registry(r) => r.clone(),
                Pattern::Repository { registry, repository } => format!("{registry}/{repository}"),
                Pattern::Prefix { registry, prefix } => format!("{registry}/{prefix}*"),
            })
            .collect();
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(patterns: &[&str]) -> MirrorAllowList {
        MirrorAllowList::new(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>(), &[]).unwrap()
    }

    #[test]
    fn patterns_allow_registries_repositories_and_prefixes() {
        let allow = list(&["registry.lan:5000", "ghcr.io/org/app", "quay.io/team/*", "docker.io"]);
        assert!(allow.allows("registry.lan:5000", "anything/at/all"));
        assert!(allow.allows("ghcr.io", "org/app") && !allow.allows("ghcr.io", "org/other"));
        assert!(
            allow.allows("quay.io", "team/a/b")
                && !allow.allows("quay.io", "team")
                && !allow.allows("quay.io", "teamx/a")
        );
        assert!(allow.allows("index.docker.io", "library/alpine"), "Docker Hub's names are one registry");
        assert!(!allow.allows("evil.example", "org/app"));
        assert!(list(&["*"]).allows("anywhere.example", "x"));
        assert_eq!(allow.describe(), "registry.lan:5000, ghcr.io/org/app, quay.io/team/*, docker.io");
    }

    #[test]
    fn without_patterns_the_fronted_registries_are_allowed() {
        let allow = MirrorAllowList::new(&[], &["127.0.0.1:5000".into(), "registry-1.docker.io".into()]).unwrap();
        assert!(allow.allows("127.0.0.1:5000", "team/app") && allow.allows("docker.io", "library/busybox"));
        assert!(!allow.allows("127.0.0.1:5001", "team/app"), "another port is another registry");
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["", "http://r", "r/a*b", "r/A", "r//x", "a b", "r/*x"] {
            assert!(bad.parse::<Pattern>().is_err(), "{bad:?} was accepted");
        }
    }
}
