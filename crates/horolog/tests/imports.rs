//! One-way streets: the controller's modules import each other without cycles.
//!
//! The test reads the sources of `crates/horolog-operator/src/controller/`, collects every path a module
//! names (`use` trees, with their groups expanded, and paths written inline such as
//! `super::fire::fire(..)`), resolves `crate`, `self` and `super`, and finds the strongly
//! connected components of the module graph. A cycle that is not on the list below fails.
//! The list is what the code had when the check was written: it may only shrink (a listed
//! cycle that is gone fails too, so the list stays true). It is empty now.
//!
//! A second check keeps every file of the controller under [`MAX_LINES`] lines before its
//! tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Cycles that existed when this check was added, each as its sorted module names (relative
/// to `crate::controller`). Remove an entry when its cycle is broken.
const KNOWN_CYCLES: &[&[&str]] = &[];

/// The most lines a file under `controller/` may have before its `#[cfg(test)]` tests: a
/// longer one holds more than one responsibility, and is split by them.
const MAX_LINES: usize = 400;

fn source_root() -> PathBuf {
    // The library the `horolog` binary is built on: package horolog-operator, crate `horolog`.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../horolog-operator/src")
}

/// `controller/schedule/fire.rs` -> `["controller", "schedule", "fire"]`; `mod.rs` names its
/// folder.
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs").to_owned();
        if stem != "mod" && stem != "lib" {
            parts.push(stem);
        }
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without comments, and without `#[cfg(test)]` modules' bodies: tests may reach
/// anywhere.
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<usize> = None;
    let mut depth = 0usize;
    let mut pending_test = false;
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let trimmed = code.trim();
        if trimmed.starts_with("#[cfg(test)]") {
            pending_test = true;
            continue;
        }
        if pending_test && trimmed.starts_with("mod ") {
            if trimmed.ends_with(';') {
                pending_test = false;
                continue;
            }
            skip_depth = Some(depth);
        }
        pending_test = pending_test && trimmed.starts_with('#');
        for c in code.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        if let Some(at) = skip_depth {
            if depth == at && trimmed.ends_with('}') {
                skip_depth = None;
            }
            continue;
        }
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// Expands a `use` tree (`super::{a, b::{self, C}}`) into its paths.
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree];
    };
    let prefix = &tree[..open];
    let inner = tree[open + 1..].strip_suffix('}').unwrap_or(&tree[open + 1..]);
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand(p).into_iter().map(move |e| format!("{prefix}{e}")))
        .collect()
}

/// Every path the code names that starts with `crate`, `self` or `super`.
fn named_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for statement in code.split(';') {
        let statement = statement.trim();
        let tree = statement
            .strip_prefix("pub(crate) use ")
            .or_else(|| statement.strip_prefix("pub(super) use "))
            .or_else(|| statement.strip_prefix("pub use "))
            .or_else(|| statement.strip_prefix("use "));
        if let Some(tree) = tree {
            paths.extend(expand(tree));
        }
    }
    let bytes = code.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(start) {
            let begin = from + at;
            let boundary = begin == 0
                || !(bytes[begin - 1].is_ascii_alphanumeric()
                    || bytes[begin - 1] == b'_'
                    || bytes[begin - 1] == b':');
            let end = code[begin..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |e| begin + e);
            if boundary {
                paths.push(code[begin..end].trim_end_matches(':').to_owned());
            }
            from = end.max(begin + 1);
        }
    }
    paths
}

/// `path` resolved against the module `here`, as absolute module segments.
fn resolve(here: &[String], path: &str) -> Vec<String> {
    let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<String> = match segments.first() {
        Some(&"crate") => {
            segments.remove(0);
            Vec::new()
        }
        Some(&"self") => {
            segments.remove(0);
            here.to_vec()
        }
        Some(&"super") => here.to_vec(),
        _ => return Vec::new(),
    };
    while segments.first() == Some(&"super") {
        segments.remove(0);
        base.pop();
    }
    base.extend(segments.iter().map(|s| s.to_string()));
    base
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = source_root();
    let mut files = Vec::new();
    rust_files(&root.join("controller"), &mut files);
    let modules: BTreeMap<Vec<String>, PathBuf> = files
        .iter()
        .map(|f| (module_of(f.strip_prefix(&root).unwrap_or(f)), f.clone()))
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let from = module.join("::");
        let entry = edges.entry(from.clone()).or_default();
        for path in named_paths(&code_of(&text)) {
            let target = resolve(module, &path);
            // The longest prefix that is a module of the controller.
            let to = (1..=target.len())
                .rev()
                .map(|n| &target[..n])
                .find(|prefix| modules.contains_key(*prefix));
            if let Some(to) = to {
                let to = to.join("::");
                // A parent module's own items (a `mod.rs` re-export) count; a module naming
                // its own children or itself does not make a street backwards.
                if to != from && !to.starts_with(&format!("{from}::")) {
                    entry.insert(to);
                }
            }
        }
    }
    edges
}

/// Tarjan's strongly connected components with more than one module.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(targets) = s.edges.get(v) {
            for w in targets {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let low = s.low[v].min(s.low[w]);
                    s.low.insert(v, low);
                } else if s.on_stack.contains(w) {
                    let low = s.low[v].min(s.index[w]);
                    s.low.insert(v, low);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out.sort();
    s.out
}

#[test]
fn the_controller_modules_import_without_new_cycles() {
    let edges = graph();
    assert!(
        edges.len() > 10 && edges.values().any(|e| !e.is_empty()),
        "the check reads the controller: {edges:?}"
    );
    let found = cycles(&edges);
    let known: Vec<Vec<String>> = KNOWN_CYCLES
        .iter()
        .map(|c| c.iter().map(|m| format!("controller::{m}")).collect())
        .collect();
    let new: Vec<&Vec<String>> = found
        .iter()
        .filter(|c| !known.iter().any(|k| c.iter().all(|m| k.contains(m))))
        .collect();
    assert!(
        new.is_empty(),
        "modules that import each other in a circle (move the shared piece down into a module \
         both use): {new:#?}\nedges: {edges:#?}"
    );
    let gone: Vec<&Vec<String>> = known
        .iter()
        .filter(|k| !found.iter().any(|c| k.iter().all(|m| c.contains(m))))
        .collect();
    assert!(
        gone.is_empty(),
        "these listed cycles are broken now; take them off KNOWN_CYCLES: {gone:?}"
    );
}

/// The lines of `text` before its first `#[cfg(test)]` (all of them when it has none).
fn lines_before_tests(text: &str) -> usize {
    text.lines()
        .take_while(|line| !line.trim_start().starts_with("#[cfg(test)]"))
        .count()
}

#[test]
fn no_controller_file_is_over_the_line_limit_before_its_tests() {
    let root = source_root();
    let mut files = Vec::new();
    rust_files(&root.join("controller"), &mut files);
    assert!(files.len() > 10, "the check reads the controller: {files:?}");
    let mut long: Vec<(String, usize)> = files
        .iter()
        // Files that are test modules themselves (`decide_tests.rs`, `test_support.rs`).
        .filter(|f| {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            !name.ends_with("_tests.rs") && name != "test_support.rs"
        })
        .map(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            let relative = f.strip_prefix(&root).unwrap_or(f).display().to_string();
            (relative, lines_before_tests(&text))
        })
        .filter(|(_, lines)| *lines > MAX_LINES)
        .collect();
    long.sort();
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines before their tests (split them by responsibility): {long:?}"
    );
}

#[test]
fn lines_before_tests_stop_at_the_test_module() {
    assert_eq!(lines_before_tests("a\nb\n#[cfg(test)]\nmod tests {}\n"), 2);
    assert_eq!(lines_before_tests("a\nb\n"), 2);
}

#[test]
fn use_trees_expand_and_resolve() {
    assert_eq!(
        expand("super::{a, b::{self, C}}"),
        ["super::a", "super::b::self", "super::b::C"]
    );
    let here = ["controller", "schedule", "fire"].map(String::from);
    assert_eq!(
        resolve(&here, "super::ready::gate"),
        ["controller", "schedule", "ready", "gate"]
    );
    assert_eq!(resolve(&here, "super::super::index"), ["controller", "index"]);
    assert_eq!(resolve(&here, "crate::pod::pod_for"), ["pod", "pod_for"]);
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(cycles(&edges), [["a", "b", "c"].map(String::from).to_vec()]);
}
