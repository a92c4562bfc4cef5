//! A unified-style line diff for `--dry-run` (pure): the files edited here are a few dozen
//! lines, so a plain longest-common-subsequence table is enough.

/// Lines of context around each change.
const CONTEXT: usize = 3;

/// `before` -> `after` as `--- a` / `+++ b` and `@@` hunks; `None` for a file that does not
/// exist on that side. Empty when nothing changes.
pub(crate) fn unified(path: &str, before: Option<&str>, after: Option<&str>) -> String {
    if before == after {
        return String::new();
    }
    let old: Vec<&str> = before.map(|t| t.lines().collect()).unwrap_or_default();
    let new: Vec<&str> = after.map(|t| t.lines().collect()).unwrap_or_default();
    let ops = line_ops(&old, &new);
    let mut out = format!(
        "--- {}\n+++ {}\n",
        if before.is_some() { format!("a{path}") } else { "/dev/null".into() },
        if after.is_some() { format!("b{path}") } else { "/dev/null".into() }
    );
    let changed: Vec<usize> =
        ops.iter().enumerate().filter(|(_, op)| !matches!(op, Op::Same(..))).map(|(i, _)| i).collect();
    let mut i = 0;
    while i < changed.len() {
        // Group changes whose contexts touch into one hunk.
        let start = changed[i].saturating_sub(CONTEXT);
        let mut end = changed[i];
        while i < changed.len() && changed[i] <= end + 2 * CONTEXT {
            end = changed[i];
            i += 1;
        }
        let end = (end + CONTEXT + 1).min(ops.len());
        let (old_start, new_start) = positions(&ops[..start]);
        let (old_len, new_len) = positions(&ops[start..end]);
        out.push_str(&format!("@@ -{},{old_len} +{},{new_len} @@\n", old_start + 1, new_start + 1));
        for op in &ops[start..end] {
            match op {
                Op::Same(line) => out.push_str(&format!(" {line}\n")),
                Op::Removed(line) => out.push_str(&format!("-{line}\n")),
                Op::Added(line) => out.push_str(&format!("+{line}\n")),
            }
        }
    }
    out
}

#[derive(Debug, PartialEq)]
enum Op<'a> {
    Same(&'a str),
    Removed(&'a str),
    Added(&'a str),
}

/// How many old and new lines `ops` cover.
fn positions(ops: &[Op<'_>]) -> (usize, usize) {
    ops.iter().fold((0, 0), |(o, n), op| match op {
        Op::Same(_) => (o + 1, n + 1),
        Op::Removed(_) => (o + 1, n),
        Op::Added(_) => (o, n + 1),
    })
}

fn line_ops<'a>(old: &[&'a str], new: &[&'a str]) -> Vec<Op<'a>> {
    // lcs[i][j]: the longest common subsequence of old[i..] and new[j..].
    let mut lcs = vec![vec![0usize; new.len() + 1]; old.len() + 1];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            lcs[i][j] = if old[i] == new[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut ops) = (0, 0, Vec::new());
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && old[i] == new[j] {
            ops.push(Op::Same(old[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < old.len() && (j == new.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(Op::Removed(old[i]));
            i += 1;
        } else {
            ops.push(Op::Added(new[j]));
            j += 1;
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_insertion_shows_with_its_context() {
        let before = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let after = "a\nb\nc\nd\nNEW\ne\nf\ng\nh\n";
        assert_eq!(
            unified("/etc/x", Some(before), Some(after)),
            "--- a/etc/x\n+++ b/etc/x\n@@ -2,6 +2,7 @@\n b\n c\n d\n+NEW\n e\n f\n g\n"
        );
    }

    #[test]
    fn new_and_removed_files_and_no_change() {
        assert_eq!(unified("/f", None, Some("x\n")), "--- /dev/null\n+++ b/f\n@@ -1,0 +1,1 @@\n+x\n");
        assert_eq!(unified("/f", Some("x\n"), None), "--- a/f\n+++ /dev/null\n@@ -1,1 +1,0 @@\n-x\n");
        assert_eq!(unified("/f", Some("x\n"), Some("x\n")), "");
    }

    #[test]
    fn far_apart_changes_are_separate_hunks() {
        let before: String = (0..20).map(|i| format!("{i}\n")).collect();
        let after = before.replace("2\n", "two\n").replace("17\n", "seventeen\n");
        let diff = unified("/f", Some(&before), Some(&after));
        assert_eq!(diff.matches("@@ -").count(), 2, "{diff}");
        assert!(diff.contains("-2\n+two\n") && diff.contains("-17\n+seventeen\n"), "{diff}");
    }
}
