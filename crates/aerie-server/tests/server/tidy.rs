//! `ARCHITECTURE.md`'s invariants about what depends on what, checked on the sources: each
//! fails when a change breaks the boundary it names.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// The names in a crate's `[dependencies]` table (not its dev-dependencies).
fn dependencies(krate: &str) -> Vec<String> {
    let text =
        std::fs::read_to_string(workspace().join("crates").join(krate).join("Cargo.toml")).unwrap();
    let manifest: toml::Table = text.parse().unwrap();
    manifest
        .get("dependencies")
        .and_then(toml::Value::as_table)
        .map(|table| table.keys().cloned().collect())
        .unwrap_or_default()
}

/// Every Rust source file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    aerie_test_support::files_under(dir)
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect()
}

/// The lines of `file` that are code, not comments.
fn code_lines(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter(|line| {
            let line = line.trim_start();
            !line.starts_with("//") && !line.starts_with("///") && !line.starts_with("//!")
        })
        .map(str::to_string)
        .collect()
}

/// Every crate of the workspace but those named.
fn crates_except(kept: &[&str]) -> Vec<String> {
    let mut crates: Vec<String> = std::fs::read_dir(workspace().join("crates"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !kept.contains(&name.as_str()))
        .collect();
    crates.sort();
    crates
}

#[test]
fn only_aerie_db_contains_sql() {
    const SQL: &[&str] = &[
        "\"SELECT ",
        "\"INSERT INTO ",
        "\"UPDATE ",
        "\"DELETE FROM ",
        "sqlx::",
    ];
    let mut found = Vec::new();
    // The test helpers create test databases; they hold no product SQL.
    for krate in crates_except(&["aerie-db", "aerie-test-support"]) {
        for file in sources(&workspace().join("crates").join(&krate).join("src")) {
            for line in code_lines(&file) {
                if SQL.iter().any(|sql| line.contains(sql)) {
                    found.push(format!("{}: {}", file.display(), line.trim()));
                }
            }
        }
        if dependencies(&krate).iter().any(|name| name == "sqlx") {
            found.push(format!("{krate} depends on sqlx"));
        }
    }
    assert!(
        found.is_empty(),
        "SQL outside aerie-db:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_libraries_below_the_server_know_nothing_of_databases_or_http_frameworks() {
    const FORBIDDEN: &[&str] = &[
        "aerie-db",
        "sqlx",
        "axum",
        "tower-http",
        "aerie-api-types",
        "aerie-server",
    ];
    let mut found = Vec::new();
    for krate in [
        "aerie-core",
        "aerie-blob",
        "aerie-resolve",
        "aerie-search",
        "aerie-host",
    ] {
        for dependency in dependencies(krate) {
            if FORBIDDEN.contains(&dependency.as_str()) {
                found.push(format!("{krate} depends on {dependency}"));
            }
        }
    }
    // The core reads bytes and answers values: no runtime, no network, no engine.
    for dependency in dependencies("aerie-core") {
        if ["tokio", "hyper", "wasmtime", "reqwest"].contains(&dependency.as_str()) {
            found.push(format!("aerie-core depends on {dependency}"));
        }
    }
    let mut sdk = dependencies("aerie-sdk");
    sdk.sort();
    if sdk != ["serde", "serde_json", "wit-bindgen"] {
        found.push(format!("aerie-sdk depends on {sdk:?}"));
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn only_aerie_api_types_defines_the_apis_bodies() {
    // A body of the HTTP API is a type the OpenAPI document describes.
    let mut found = Vec::new();
    for krate in crates_except(&["aerie-api-types"]) {
        for file in sources(&workspace().join("crates").join(&krate).join("src")) {
            for line in code_lines(&file) {
                if line.contains("derive(") && line.contains("ToSchema") {
                    found.push(format!("{}: {}", file.display(), line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "wire types outside aerie-api-types:\n{}",
        found.join("\n")
    );
}
