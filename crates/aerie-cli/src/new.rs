//! `aerie plugin new`: a plugin project that builds as generated.

use std::fs;
use std::path::{Path, PathBuf};

use aerie_core::name::PluginName;
use anyhow::{Context as _, bail};

use crate::Template;

const CARGO_TOML: &str = include_str!("../templates/Cargo.toml.tmpl");
const GITIGNORE: &str = include_str!("../templates/gitignore.tmpl");
const README: &str = include_str!("../templates/README.md.tmpl");

/// The SDK beside this crate in the Aerie source tree this binary was built from.
const BUILT_WITH_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../aerie-sdk");

fn template_files(template: Template) -> (&'static str, &'static str, &'static str) {
    match template {
        Template::Http => (
            include_str!("../templates/http/aerie.toml"),
            include_str!("../templates/http/lib.rs"),
            "An HTTP endpoint that greets its callers",
        ),
        Template::Service => (
            include_str!("../templates/service/aerie.toml"),
            include_str!("../templates/service/lib.rs"),
            "A greeting service for other plugins",
        ),
        Template::Minimal => (
            include_str!("../templates/minimal/aerie.toml"),
            include_str!("../templates/minimal/lib.rs"),
            "A plugin with lifecycle hooks only",
        ),
    }
}

pub fn run(
    name: &str,
    template: Template,
    path: Option<PathBuf>,
    sdk_path: Option<PathBuf>,
) -> anyhow::Result<()> {
    let name: PluginName = name.parse()?;
    let dir = path.unwrap_or_else(|| PathBuf::from(name.name()));
    if dir.exists() && fs::read_dir(&dir)?.next().is_some() {
        bail!("{} already exists and is not empty", dir.display());
    }
    let sdk = sdk_dependency(sdk_path)?;
    let (manifest, lib, description) = template_files(template);
    // Cargo package names may not start with a digit; plugin names may.
    let crate_name = if name.name().starts_with(|c: char| c.is_ascii_digit()) {
        format!("plugin-{}", name.name())
    } else {
        name.name().to_string()
    };
    let fill = |text: &str| {
        text.replace("{{name}}", name.as_str())
            .replace("{{plugin}}", name.name())
            .replace("{{description}}", description)
            .replace("{{crate}}", &crate_name)
            .replace("{{sdk}}", &sdk)
            .replace(
                "{{file_stem}}",
                &format!("{}-{}-0.1.0", name.namespace(), name.name()),
            )
    };
    fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    for (file, contents) in [
        ("Cargo.toml", CARGO_TOML),
        ("aerie.toml", manifest),
        ("src/lib.rs", lib),
        ("README.md", README),
        (".gitignore", GITIGNORE),
    ] {
        let target = dir.join(file);
        fs::write(&target, fill(contents))
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    println!(
        "Created {} ({:?} template) in {}",
        name,
        template,
        dir.display()
    );
    println!("Next:");
    println!("  cd {}", dir.display());
    println!("  aerie plugin build");
    Ok(())
}

/// The `aerie-sdk = ...` dependency line's value.
fn sdk_dependency(sdk_path: Option<PathBuf>) -> anyhow::Result<String> {
    let local = match sdk_path {
        Some(path) => Some(path),
        None => Some(PathBuf::from(BUILT_WITH_SDK)).filter(|path| path.join("Cargo.toml").exists()),
    };
    match local {
        Some(path) => {
            let path = absolute(&path)?;
            if !path.join("Cargo.toml").exists() {
                bail!(
                    "{} is not the aerie-sdk crate: it has no Cargo.toml",
                    path.display()
                );
            }
            let path = path.to_str().context("the SDK path is not valid UTF-8")?;
            Ok(format!("{{ path = {} }}", serde_json::to_string(path)?))
        }
        None => Ok(format!("\"{}\"", env!("CARGO_PKG_VERSION"))),
    }
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    fs::canonicalize(path).with_context(|| format!("cannot find {}", path.display()))
}
