//! ARCHITECTURE.md stays true to the tree: every file or folder it names in backticks exists,
//! and so does every module it names (`horolog::controller::admission`, or an item of one).
//! A name may be given from the repository root (`crates/horolog-operator/src/pod.rs`) or, where the
//! text has said which crate or folder it is in, by its tail (`controller/wiring.rs`,
//! `fire.rs`); either way some path in the repository must end with it.

use std::path::{Path, PathBuf};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every file and folder below `dir`, as `/`-separated paths relative to the repository,
/// folders with a trailing `/`; build output and git's own files left out.
fn tree(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "target" || name == ".git" {
            continue;
        }
        let relative = path
            .strip_prefix(root)
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        if path.is_dir() {
            out.push(format!("{relative}/"));
            tree(root, &path, out);
        } else {
            out.push(relative);
        }
    }
}

/// The backticked words of `text` that name a file or a folder: a path of plain path
/// characters that ends in a known extension or in `/`.
fn named_paths(text: &str) -> Vec<String> {
    const EXTENSIONS: [&str; 7] = [".rs", ".md", ".yaml", ".toml", ".json", ".sh", ".txt"];
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| {
            !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
                && !word.starts_with('/')
                && (word.ends_with('/') || EXTENSIONS.iter().any(|ext| word.ends_with(ext)))
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_path_architecture_md_names_exists() {
    let root = repository();
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut paths = Vec::new();
    tree(&root, &root, &mut paths);
    let named = named_paths(&text);
    assert!(named.len() > 10, "the check finds the paths: {named:?}");
    let missing: Vec<&String> = named
        .iter()
        .filter(|name| {
            !paths
                .iter()
                .any(|path| path == *name || path.ends_with(&format!("/{name}")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names paths that do not exist (moved or renamed? update the map): {missing:?}"
    );
}

#[test]
fn the_path_check_tells_a_path_from_other_code() {
    let named = named_paths("`a/b.rs`, `x/`, `cargo run -- crds`, `*/n`, `/healthz`, `Trigger::compile`");
    assert_eq!(named, ["a/b.rs", "x/"]);
}

/// The backticked words of `text` that name a module of a crate of the workspace
/// (`horolog::controller::admission`, `horolog_core::plan::plan`): a path that starts with a
/// crate name.
fn named_modules(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| {
            word.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && [
                    "horolog::",
                    "horolog_core::",
                    "horolog_local::",
                    "horolog_kubectl::",
                    "horolog_memserver::",
                ]
                .iter()
                .any(|krate| word.starts_with(krate))
        })
        .map(str::to_owned)
        .collect()
}

/// True when `path` names a module of the workspace, or an item its module's file mentions:
/// every segment but the last must be a module (`a.rs` or `a/mod.rs`), and the last a module
/// or a word of the last module's source.
fn module_exists(root: &Path, path: &str) -> bool {
    let mut segments = path.split("::");
    let Some(krate) = segments.next() else {
        return false;
    };
    // The crate `horolog` is the library of package horolog-operator (package `horolog` is
    // the binary); every other crate's folder is its name with `-` for `_`.
    let folder = match krate {
        "horolog" => "horolog-operator".to_owned(),
        other => other.replace('_', "-"),
    };
    let mut dir = root.join("crates").join(folder).join("src");
    let mut file = dir.join("lib.rs");
    let segments: Vec<&str> = segments.collect();
    for (i, segment) in segments.iter().enumerate() {
        let (flat, nested) = (
            dir.join(format!("{segment}.rs")),
            dir.join(segment).join("mod.rs"),
        );
        if flat.is_file() {
            file = flat;
            dir = dir.join(segment);
        } else if nested.is_file() {
            file = nested;
            dir = dir.join(segment);
        } else {
            // Not a module: the last segment may be an item of the module before it.
            let last = i + 1 == segments.len();
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            return last && text.contains(segment);
        }
    }
    true
}

#[test]
fn every_module_architecture_md_names_exists() {
    let root = repository();
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let named = named_modules(&text);
    assert!(named.len() > 20, "the check finds the modules: {named:?}");
    let missing: Vec<&String> = named.iter().filter(|m| !module_exists(&root, m)).collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names modules that do not exist (moved or renamed? update the map): {missing:?}"
    );
}

#[test]
fn the_module_check_tells_a_module_from_a_missing_one() {
    let root = repository();
    assert!(module_exists(&root, "horolog::controller::admission"));
    assert!(module_exists(&root, "horolog_core::plan::plan"));
    assert!(module_exists(&root, "horolog_local::executor::PodRunner"));
    assert!(!module_exists(&root, "horolog::controller::nowhere"));
    assert!(!module_exists(&root, "horolog::controller::nowhere::thing"));
    assert_eq!(
        named_modules("`horolog::names`, `fire::fire`, `a/b.rs`"),
        ["horolog::names"]
    );
}

/// The workspace's members, from the root Cargo.toml's `members = [...]`.
fn workspace_members(manifest: &str) -> Vec<String> {
    let Some(start) = manifest.find("members = [") else {
        return Vec::new();
    };
    let list = &manifest[start + "members = [".len()..];
    let list = &list[..list.find(']').unwrap_or(list.len())];
    list.split(',')
        .map(|item| item.trim().trim_matches('"').to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

#[test]
fn architecture_md_describes_every_crate_of_the_workspace() {
    let root = repository();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let members = workspace_members(&manifest);
    assert!(
        members.iter().any(|m| m == "crates/horolog-kubectl"),
        "the members are read: {members:?}"
    );
    let missing: Vec<&String> = members
        .iter()
        .filter(|member| !text.contains(&format!("**`{member}`**")))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's crate list (a **`crates/NAME`** paragraph each) leaves out {missing:?}"
    );
}
