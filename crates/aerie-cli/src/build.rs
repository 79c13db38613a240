//! `aerie plugin build`: compile a plugin project for `wasm32-wasip2` and package it.
//!
//! The package is checked exactly as the registry checks it at publish, so a package that
//! builds is one that publishes. Builds are reproducible: paths that differ between machines
//! (the project, path dependencies, the cargo home) are remapped, and the archive is written
//! deterministically, so the same sources give the same digest anywhere.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use aerie_core::manifest::Manifest;
use aerie_core::package::{
    COMPONENT_FILE, MANIFEST_FILE, PACKAGE_FILES, Package, PackageFile, PackageLimits,
    read_package, write_package,
};
use anyhow::{Context as _, bail};
use cargo_metadata::camino::{Utf8Path, Utf8PathBuf};
use cargo_metadata::{Message, MetadataCommand};

use crate::output::human_size;

const TARGET: &str = "wasm32-wasip2";

/// A package just built.
pub struct Built {
    /// Where it was written.
    pub path: PathBuf,
    /// The package, read back through the registry's checks.
    pub package: Package,
    /// The project's cargo target directory.
    pub target_dir: PathBuf,
}

pub fn run(dir: &Path, profile: &str, output: Option<PathBuf>, json: bool) -> anyhow::Result<()> {
    let Built { path, package, .. } = build(dir, profile, output)?;
    let plugin = &package.manifest.plugin;
    if json {
        let summary = serde_json::json!({
            "name": plugin.name,
            "version": plugin.version.to_string(),
            "path": path,
            "digest": package.digest,
            "size": package.size,
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("Packaged {} {}", plugin.name, plugin.version);
        println!("  file    {}", path.display());
        println!("  digest  {}", package.digest);
        println!("  size    {}", human_size(package.size));
    }
    Ok(())
}

/// Builds the plugin project in `dir` with the cargo profile `profile` and writes its package
/// to `output` (by default under the project's target directory).
pub fn build(dir: &Path, profile: &str, output: Option<PathBuf>) -> anyhow::Result<Built> {
    let dir = std::fs::canonicalize(dir)
        .with_context(|| format!("cannot find the plugin project {}", dir.display()))?;
    let manifest_path = dir.join(MANIFEST_FILE);
    let manifest_text = std::fs::read_to_string(&manifest_path).with_context(|| {
        format!(
            "cannot read {}; a plugin project has an aerie.toml beside its Cargo.toml",
            manifest_path.display()
        )
    })?;
    // Report manifest mistakes before spending a build on them.
    let manifest = Manifest::parse(&manifest_text)?;

    let cargo_toml = dir.join("Cargo.toml");
    // Without dependencies: resolving the whole graph costs more than the rest of a no-op
    // build, and the local packages are the members and their path dependencies.
    let metadata = MetadataCommand::new()
        .manifest_path(&cargo_toml)
        .no_deps()
        .exec()
        .with_context(|| format!("cannot read the cargo project at {}", dir.display()))?;
    let package = metadata
        .packages
        .iter()
        .find(|package| package.manifest_path.as_std_path() == cargo_toml)
        .with_context(|| format!("{} is not a cargo package", cargo_toml.display()))?;
    if !package
        .targets
        .iter()
        .any(|target| target.kind.iter().any(|kind| kind.to_string() == "cdylib"))
    {
        bail!(
            "{} must build a cdylib: add `[lib] crate-type = [\"cdylib\"]` to its Cargo.toml",
            package.name
        );
    }

    let component = compile(&metadata, package, profile)?;
    let mut files = vec![
        PackageFile {
            name: MANIFEST_FILE.to_string(),
            bytes: manifest_text.into_bytes(),
        },
        PackageFile {
            name: COMPONENT_FILE.to_string(),
            bytes: component,
        },
    ];
    for (name, _) in PACKAGE_FILES {
        let path = dir.join(name);
        if files.iter().all(|file| file.name != *name) && path.is_file() {
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            files.push(PackageFile {
                name: name.to_string(),
                bytes,
            });
        }
    }
    let archive = write_package(&files)?;
    let checked = read_package(&archive, &PackageLimits::default())
        .context("the built package would be refused")?;

    let output = output.unwrap_or_else(|| package_path(&metadata, &manifest));
    write_atomically(&output, &archive)?;
    Ok(Built {
        path: output,
        package: checked,
        target_dir: metadata.target_directory.clone().into_std_path_buf(),
    })
}

/// Where `aerie plugin build` writes a project's package by default.
fn package_path(metadata: &cargo_metadata::Metadata, manifest: &Manifest) -> PathBuf {
    let plugin = &manifest.plugin;
    metadata
        .target_directory
        .as_std_path()
        .join("aerie")
        .join(format!(
            "{}-{}-{}.aerie",
            plugin.name.namespace(),
            plugin.name.name(),
            plugin.version
        ))
}

/// The package `aerie plugin build` writes by default for the project in `dir`.
pub fn default_package_path(dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&manifest_path).with_context(|| {
        format!(
            "give the package to publish, or run this in a plugin project (no {} here)",
            manifest_path.display()
        )
    })?;
    let manifest = Manifest::parse(&text)?;
    let metadata = MetadataCommand::new()
        .manifest_path(dir.join("Cargo.toml"))
        .no_deps()
        .exec()
        .context("cannot read the cargo project")?;
    let path = package_path(&metadata, &manifest);
    if !path.exists() {
        bail!(
            "{} does not exist yet: run `aerie plugin build` first",
            path.display()
        );
    }
    Ok(path)
}

fn check_target_installed() -> anyhow::Result<()> {
    let sysroot = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string()))
        .args(["--print", "sysroot"])
        .output()
        .context("cannot run rustc; is Rust installed?")?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
    if !Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .exists()
    {
        bail!("the {TARGET} target is not installed: run `rustup target add {TARGET}`");
    }
    Ok(())
}

/// Runs `cargo build` for the plugin and returns the component's bytes.
fn compile(
    metadata: &cargo_metadata::Metadata,
    package: &cargo_metadata::Package,
    profile: &str,
) -> anyhow::Result<Vec<u8>> {
    let mut child = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string()))
        .args(["build", "--profile", profile, "--target", TARGET])
        .arg("--manifest-path")
        .arg(&package.manifest_path)
        .args(["--package", &package.name])
        .arg("--message-format=json-render-diagnostics")
        .env("CARGO_ENCODED_RUSTFLAGS", reproducible_rustflags(metadata))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot run cargo")?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut component: Option<Utf8PathBuf> = None;
    for message in Message::parse_stream(BufReader::new(stdout)) {
        if let Message::CompilerArtifact(artifact) = message.context("reading cargo's output")?
            && artifact.package_id == package.id
        {
            component = artifact
                .filenames
                .into_iter()
                .find(|file| file.extension() == Some("wasm"))
                .or(component);
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        check_target_installed()?;
        bail!("cargo build failed for {}", package.name);
    }
    let component = component
        .with_context(|| format!("cargo built {} but produced no .wasm file", package.name))?;
    std::fs::read(&component).with_context(|| format!("cannot read {component}"))
}

/// The caller's rustflags plus path remappings that make the output independent of where the
/// sources and the cargo home are.
fn reproducible_rustflags(metadata: &cargo_metadata::Metadata) -> String {
    let mut flags: Vec<String> = match std::env::var("CARGO_ENCODED_RUSTFLAGS") {
        Ok(encoded) if !encoded.is_empty() => encoded.split('\x1f').map(String::from).collect(),
        _ => std::env::var("RUSTFLAGS")
            .map(|flags| flags.split_whitespace().map(String::from).collect())
            .unwrap_or_default(),
    };
    let cargo_home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .ok()
        .or_else(|| {
            std::env::var("HOME")
                .ok()
                .map(|home| PathBuf::from(home).join(".cargo"))
        });
    if let Some(cargo_home) = cargo_home {
        flags.push(format!(
            "--remap-path-prefix={}=/cargo",
            cargo_home.display()
        ));
    }
    // Every local package: the workspace's members and their path dependencies (the SDK).
    let mut local: Vec<(&str, &Utf8Path)> = Vec::new();
    for package in &metadata.packages {
        if let Some(dir) = package.manifest_path.parent() {
            local.push((&package.name, dir));
        }
        for dependency in &package.dependencies {
            if let Some(dir) = &dependency.path {
                local.push((&dependency.name, dir));
            }
        }
    }
    local.sort();
    local.dedup();
    for (name, dir) in local {
        flags.push(format!("--remap-path-prefix={dir}=/build/{name}"));
    }
    flags.join("\x1f")
}

/// Writes `bytes` to `path` through a temporary file, so no partial package is ever seen.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".partial");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, bytes)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))
}
