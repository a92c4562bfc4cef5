//! House rules that check themselves (ARCHITECTURE.md, "Invariants"): every `.rs` file opens
//! with a `//!` line, none is over 600 lines, `anyhow` stays in the binary's command layer, and
//! no crate has an import circle between its modules.
//!
//! Plain text checks over the tree, no parser: a rule broken in a way they cannot see (a
//! `crate::` path built by a macro, say) is for review; what they do see, they see every run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;

/// Where `anyhow` may appear: the binary's commands, and the one place a library implements a
/// foreign trait that speaks `anyhow` (librqbit's `TorrentStorage`, in the read-only storage).
const ANYHOW_ALLOWED: &[&str] = &["src/commands.rs", "src/commands/", "store/src/seeding.rs"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every Shoal `.rs` file, relative to the workspace root (the vendored librqbit aside: it is
/// upstream's code, carried as a patch series).
fn rust_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let rel = rel.join(&*name);
            if name.starts_with('.') || name.starts_with("target") || rel == Path::new("vendor/librqbit") {
                continue;
            }
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                walk(&entry.path(), &rel, out);
            } else if name.ends_with(".rs") {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), Path::new(""), &mut out);
    out.sort();
    assert!(out.len() > 50, "found only {} .rs files under {}", out.len(), root().display());
    out
}

fn read(rel: &Path) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap()
}

#[test]
fn every_rust_file_opens_with_a_module_doc_line() {
    let missing: Vec<_> = rust_files().into_iter().filter(|f| !read(f).starts_with("//!")).collect();
    assert!(missing.is_empty(), "files without a leading `//!` line: {missing:?}");
}

#[test]
fn no_rust_file_is_over_600_lines() {
    let long: Vec<_> = rust_files()
        .into_iter()
        .map(|f| {
            let n = read(&f).lines().count();
            (f, n)
        })
        .filter(|(_, n)| *n > MAX_LINES)
        .collect();
    assert!(long.is_empty(), "files over {MAX_LINES} lines (split them along a seam): {long:?}");
}

#[test]
fn anyhow_stays_in_the_command_layer() {
    let allowed = |f: &Path| ANYHOW_ALLOWED.iter().any(|a| f.to_string_lossy().starts_with(a));
    let offenders: Vec<_> = rust_files()
        .into_iter()
        .filter(|f| f.starts_with("src") || f.components().nth(1).is_some_and(|c| c.as_os_str() == "src"))
        .filter(|f| !allowed(f) && read(f).contains("anyhow"))
        .collect();
    assert!(offenders.is_empty(), "`anyhow` outside the binary's commands (use a thiserror type): {offenders:?}");
}

/// Error variants (thiserror) whose message formats the same error their `source()` chains:
/// printed as a chain, such an error names its cause twice.
fn variants_that_format_and_chain(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let starts: Vec<usize> = text.match_indices("#[error(").map(|(at, _)| at + "#[error(".len()).collect();
    for (n, &at) in starts.iter().enumerate() {
        // The variant runs to the next `#[error(` or to the end of the enum.
        let variant = &text[at..starts.get(n + 1).copied().unwrap_or(text.len())];
        let Some(rest) = variant.strip_prefix('"') else { continue };
        let Some(end) = rest.find("\")]") else { continue };
        let message = &rest[..end];
        let decl = &rest[end..];
        let decl = decl.split("\n}").next().unwrap();
        let mut sources: Vec<String> = Vec::new();
        if decl.contains("source:") {
            sources.push("source".into());
        }
        if decl.contains("#[from]") || decl.contains("#[source]") {
            sources.push("0".into());
            // A named field after `#[source]`.
            for (i, _) in decl.match_indices("#[source]") {
                let field = decl[i + "#[source]".len()..].trim_start();
                let name: String = field.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                sources.push(name);
            }
        }
        if sources.iter().any(|f| message.contains(&format!("{{{f}}}")) || message.contains(&format!("{{{f}:"))) {
            out.push(message.to_owned());
        }
    }
    out
}

#[test]
fn no_error_variant_formats_and_chains_its_source() {
    let offenders: Vec<_> = rust_files()
        .into_iter()
        .flat_map(|f| variants_that_format_and_chain(&read(&f)).into_iter().map(move |m| (f.clone(), m)))
        .collect();
    assert!(offenders.is_empty(), "error variants that both format and chain their source: {offenders:?}");
}

#[test]
fn the_error_check_sees_both_forms() {
    let both = "enum E {\n    #[error(\"a: {0}\")]\n    A(#[from] io::Error),\n    #[error(\"b {path}: {source}\")]\n    B { path: P, source: io::Error },\n    #[error(\"c\")]\n    C(#[from] X),\n    #[error(\"d: {error}\")]\n    D { error: io::Error },\n}\n";
    assert_eq!(variants_that_format_and_chain(both), ["a: {0}", "b {path}: {source}"]);
}

/// The top-level module a source file belongs to: `src/a.rs` and `src/a/b.rs` are both `a`;
/// the crate roots (`lib.rs`, `main.rs`) are not modules of their own here.
fn top_module(src_rel: &Path) -> Option<String> {
    let first = src_rel.components().next()?.as_os_str().to_string_lossy().into_owned();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_owned();
    (name != "lib" && name != "main").then_some(name)
}

/// The modules of `crate::x` paths in `text`, `use crate::{x, y::z}` groups included.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    for (at, _) in text.match_indices("crate::") {
        if text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group only: split on commas outside nested braces.
            let mut depth = 0;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        start = false;
                        let name = ident(&group[i..]);
                        if !name.is_empty() {
                            out.insert(name);
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// A circle in `edges`, if any (depth-first, colouring nodes).
fn find_circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_owned(), 1);
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|n| n == next).unwrap();
                    let mut circle = stack[from..].to_vec();
                    circle.push(next.clone());
                    return Some(circle);
                }
                0 => {
                    if let Some(c) = visit(next, edges, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        if state.get(node.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(node, edges, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn no_crate_has_an_import_circle_between_its_modules() {
    let mut crates: BTreeMap<PathBuf, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in rust_files() {
        // `<crate>/src/...` or the binary's own `src/...`; tests, benches and examples are
        // crates of their own.
        let (crate_dir, src_rel) = if let Ok(rel) = file.strip_prefix("src") {
            (PathBuf::new(), rel.to_path_buf())
        } else {
            let mut parts = file.components();
            let dir = PathBuf::from(parts.next().unwrap().as_os_str());
            let rest = parts.as_path();
            match rest.strip_prefix("src") {
                Ok(rel) => (dir, rel.to_path_buf()),
                Err(_) => continue,
            }
        };
        let Some(module) = top_module(&src_rel) else { continue };
        let text = read(&file);
        // A module's own tests may use anything.
        let text = text.split("#[cfg(test)]").next().unwrap();
        let graph = crates.entry(crate_dir).or_default();
        let deps = graph.entry(module.clone()).or_default();
        deps.extend(crate_paths(text).into_iter().filter(|d| *d != module));
    }
    assert!(crates.len() >= 8, "expected every crate, found {:?}", crates.keys().collect::<Vec<_>>());
    let circles: Vec<_> =
        crates.iter().filter_map(|(dir, edges)| find_circle(edges).map(|c| (dir.clone(), c.join(" -> ")))).collect();
    assert!(circles.is_empty(), "module import circles (crate dir, circle): {circles:?}");
}

#[test]
fn the_circle_finder_sees_circles_and_groups() {
    let paths = crate_paths("use crate::{a::X, b::{Y, Z}, c};\nlet x = crate::d::f(); my_crate::e::g();");
    assert_eq!(paths, ["a", "b", "c", "d"].map(String::from).into_iter().collect());
    let mut edges = BTreeMap::new();
    edges.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    edges.insert("b".to_owned(), BTreeSet::from(["c".to_owned()]));
    edges.insert("c".to_owned(), BTreeSet::new());
    assert_eq!(find_circle(&edges), None);
    edges.get_mut("c").unwrap().insert("a".to_owned());
    assert_eq!(find_circle(&edges), Some(["a", "b", "c", "a"].map(String::from).to_vec()));
}
