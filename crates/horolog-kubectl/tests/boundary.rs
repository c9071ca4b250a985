//! The plugin is its own product: it uses the operator library's API types, manifests and
//! names, and the core's rules, but never the controller (what the plugin and the controller
//! both need lives in `horolog_core::progress`), and never local mode (crate `horolog-local`).
//! Cargo cannot say "not this module", so this test reads the sources, and the manifest for
//! the crates the plugin's build must not contain.

use std::path::{Path, PathBuf};

/// The operator's modules, and the local-mode crate, the plugin must not name.
const FORBIDDEN: [&str; 4] = [
    "horolog::controller",
    "horolog::operator",
    "horolog::local",
    "horolog_local",
];

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

/// The places in `text` that name a forbidden module, as `line: text`; comments skipped.
fn offences(text: &str) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter_map(|(at, line)| {
            let code = line.split("//").next().unwrap_or_default();
            let squeezed: String = code.chars().filter(|c| !c.is_whitespace()).collect();
            let named = FORBIDDEN.iter().any(|m| {
                squeezed.contains(&format!("{m}::"))
                    || squeezed.contains(&format!("{m};"))
                    || squeezed.contains(&format!("{m}}}"))
                    || squeezed.contains(&format!("{m},"))
            }) || (squeezed.contains("horolog::{")
                && ["controller", "operator", "local"]
                    .iter()
                    .any(|m| squeezed.contains(&format!("{{{m}")) || squeezed.contains(&format!(",{m}"))));
            named.then(|| format!("{}: {}", at + 1, line.trim()))
        })
        .collect()
}

#[test]
fn the_plugin_never_names_the_controller() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    assert!(files.len() > 10, "the check finds the sources: {files:?}");
    let mut found = Vec::new();
    for file in files.iter().filter(|f| !f.ends_with("boundary.rs")) {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for offence in offences(&text) {
            found.push(format!("{}:{offence}", file.display()));
        }
    }
    assert!(
        found.is_empty(),
        "the plugin names the operator's controller; move the rule it needs to horolog_core::progress (or the names to horolog::names):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_every_way_of_naming_the_controller() {
    for text in [
        "use horolog::controller::schedule::run_now_name;",
        "let x = horolog::controller::calendar::with_calendars(a);",
        "use horolog::{api::Schedule, controller::schedule};",
        "use horolog :: controller;",
        "use horolog::local::run;",
        "use horolog_local::LocalOptions;",
        "horolog_local::run_local(options)",
    ] {
        assert_eq!(offences(text).len(), 1, "{text}");
    }
    for text in [
        "use horolog::api::Schedule;",
        "// horolog::controller is off limits",
        "use horolog::names::run_now_name;",
        "use horolog::{api, names};",
    ] {
        assert!(offences(text).is_empty(), "{text}");
    }
}

/// The packages the plugin's build (its normal dependencies) must not contain: local mode, and
/// the in-memory API server, which only its tests may use.
const FORBIDDEN_PACKAGES: [&str; 2] = ["horolog-local", "horolog-memserver"];

/// The names of the `[dependencies]` table of a Cargo manifest (not dev- or build-).
fn normal_dependencies(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == "[dependencies]";
        } else if inside
            && !line.starts_with('#')
            && let Some((name, _)) = line.split_once('=')
        {
            names.push(name.trim().to_owned());
        }
    }
    names
}

#[test]
fn the_plugin_never_depends_on_local_mode() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap_or_default();
    let dependencies = normal_dependencies(&manifest);
    assert!(
        dependencies.iter().any(|d| d == "horolog-operator"),
        "the check reads the dependencies: {dependencies:?}"
    );
    let found: Vec<&String> = dependencies
        .iter()
        .filter(|d| FORBIDDEN_PACKAGES.contains(&d.as_str()))
        .collect();
    assert!(
        found.is_empty(),
        "the plugin depends on {found:?}: it is built on the operator library and horolog-core only"
    );
}

#[test]
fn the_dependency_check_reads_only_the_normal_dependencies() {
    let manifest = "[package]\nname = \"x\"\n\n[dependencies]\n# a = b\nhorolog-local = { path = \"a\" }\nkube = \"1\"\n\n[dev-dependencies]\nhorolog-memserver = { workspace = true }\n";
    assert_eq!(normal_dependencies(manifest), ["horolog-local", "kube"]);
}
