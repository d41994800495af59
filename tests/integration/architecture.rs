//! Dependency rules from ARCHITECTURE.md, checked against the manifests so they cannot erode.

use std::collections::BTreeSet;

use cria_tests::workspace_root;

/// Names of the workspace crates (and `tauri*`) a manifest depends on, in any section.
fn dependencies_of(manifest_dir: &str) -> BTreeSet<String> {
    let path = workspace_root().join(manifest_dir).join("Cargo.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let manifest: toml::Table = text.parse().unwrap();
    let mut names = BTreeSet::new();
    for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
        if let Some(table) = manifest.get(section).and_then(toml::Value::as_table) {
            names.extend(table.keys().cloned());
        }
    }
    if let Some(targets) = manifest.get("target").and_then(toml::Value::as_table) {
        for target in targets.values() {
            for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
                if let Some(table) = target.get(section).and_then(toml::Value::as_table) {
                    names.extend(table.keys().cloned());
                }
            }
        }
    }
    names
}

fn core_crates() -> Vec<String> {
    let mut crates: Vec<String> = std::fs::read_dir(workspace_root().join("crates"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("cria-"))
        .collect();
    crates.sort();
    crates
}

#[test]
fn no_core_crate_depends_on_tauri() {
    let crates = core_crates();
    assert!(
        crates.len() >= 6,
        "expected the six core crates, found {crates:?}"
    );
    for name in crates {
        let tauri_deps: Vec<_> = dependencies_of(&format!("crates/{name}"))
            .into_iter()
            .filter(|dep| dep.starts_with("tauri"))
            .collect();
        assert!(
            tauri_deps.is_empty(),
            "{name} depends on {tauri_deps:?}; only src-tauri may"
        );
    }
}

#[test]
fn leaf_crates_depend_only_on_what_the_architecture_allows() {
    // engine → gguf is the one edge allowed between the leaf crates; core composes them.
    let leaves = ["cria-engine", "cria-store", "cria-ingest", "cria-gguf"];
    for leaf in leaves {
        let allowed: &[&str] = if leaf == "cria-engine" {
            &["cria-gguf"]
        } else {
            &[]
        };
        let deps = dependencies_of(&format!("crates/{leaf}"));
        for dep in deps.iter().filter(|dep| dep.starts_with("cria-")) {
            assert!(
                allowed.contains(&dep.as_str()),
                "{leaf} must not depend on {dep}"
            );
        }
    }
    let core_deps = dependencies_of("crates/cria-core");
    assert!(
        !core_deps.contains("cria-cli"),
        "the core must not depend on a client"
    );
}

#[test]
fn the_shell_reaches_the_core_only_through_cria_core_and_cria_engine() {
    let deps = dependencies_of("src-tauri");
    for forbidden in [
        "cria-store",
        "cria-ingest",
        "cria-gguf",
        "cria-models",
        "rusqlite",
    ] {
        assert!(
            !deps.contains(forbidden),
            "src-tauri must not depend on {forbidden}"
        );
    }
}
