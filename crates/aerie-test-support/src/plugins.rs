//! The example and test plugins under `plugins/`, compiled for `wasm32-wasip2` once per test
//! process.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A compiled example plugin: its manifest text and component bytes.
#[derive(Debug, Clone)]
pub struct ExamplePlugin {
    /// The crate's `aerie.toml`.
    pub manifest: String,
    /// The component `cargo build` produced.
    pub component: Vec<u8>,
}

/// The repository root.
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

/// Every plugin under `plugins/`, by directory name, built with the `plugin` profile into a
/// target directory of their own (the `cargo test` running us holds the workspace's).
///
/// Panics with cargo's output when a plugin does not build.
pub fn example_plugins() -> &'static BTreeMap<String, ExamplePlugin> {
    static PLUGINS: OnceLock<BTreeMap<String, ExamplePlugin>> = OnceLock::new();
    PLUGINS.get_or_init(|| {
        let repository = repository();
        let target = repository.join("target/test-plugin-components");
        let mut names: Vec<String> = std::fs::read_dir(repository.join("plugins"))
            .expect("plugins/ exists")
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        command
            .current_dir(&repository)
            .args([
                "build",
                "--quiet",
                "--profile",
                "plugin",
                "--target",
                "wasm32-wasip2",
            ])
            .env("CARGO_TARGET_DIR", &target)
            // The rustflags of the test build are for the host, not for plugins.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
        for name in &names {
            command.args(["-p", name]);
        }
        let output = command.output().expect("cargo runs");
        assert!(
            output.status.success(),
            "building the example plugins failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        names
            .into_iter()
            .map(|name| {
                let manifest = std::fs::read_to_string(
                    repository.join("plugins").join(&name).join("aerie.toml"),
                )
                .expect("every plugin has an aerie.toml");
                let file = format!("{}.wasm", name.replace('-', "_"));
                let component = std::fs::read(target.join("wasm32-wasip2/plugin").join(&file))
                    .unwrap_or_else(|err| panic!("reading {file}: {err}"));
                (
                    name,
                    ExamplePlugin {
                        manifest,
                        component,
                    },
                )
            })
            .collect()
    })
}

/// One example plugin by directory name (`hello`, `counter`, ...).
pub fn example_plugin(name: &str) -> &'static ExamplePlugin {
    example_plugins()
        .get(name)
        .unwrap_or_else(|| panic!("there is no plugin {name} under plugins/"))
}
