//! `aerie plugin inspect`: what a package contains and what it may do.

use std::io::Write as _;
use std::path::Path;

use aerie_core::digest::Digest;
use aerie_core::inspect::{Entry, Export, Import, Need};
use aerie_core::manifest::{Guard, Manifest};
use aerie_core::package::{FileSummary, Package};
use serde::Serialize;

use crate::output::{Table, human_size, load_package};

/// The `--json` document.
#[derive(Serialize)]
struct Report<'a> {
    name: String,
    version: String,
    digest: Digest,
    size: u64,
    manifest: &'a Manifest,
    files: Vec<FileSummary>,
    imports: &'a [Import],
    exports: &'a [Export],
}

pub fn run(path: &Path, json: bool) -> anyhow::Result<()> {
    let (_, package) = load_package(path)?;
    let text = if json {
        let report = Report {
            name: package.manifest.plugin.name.to_string(),
            version: package.manifest.plugin.version.to_string(),
            digest: package.digest,
            size: package.size,
            manifest: &package.manifest,
            files: package.file_summaries(),
            imports: &package.component.imports,
            exports: &package.component.exports,
        };
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        render(&package)
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(())
}

fn render(package: &Package) -> String {
    let manifest = &package.manifest;
    let plugin = &manifest.plugin;
    let mut out = format!(
        "{} {}: {}\n",
        plugin.name, plugin.version, plugin.description
    );

    let mut about = Table::default();
    about.row(["digest".into(), package.digest.to_string()]);
    about.row(["size".into(), human_size(package.size)]);
    about.row(["license".into(), plugin.license.clone()]);
    about.row(["categories".into(), plugin.categories.join(", ")]);
    if !plugin.tags.is_empty() {
        about.row(["tags".into(), plugin.tags.join(", ")]);
    }
    if !plugin.authors.is_empty() {
        about.row(["authors".into(), plugin.authors.join(", ")]);
    }
    for (label, url) in [
        ("homepage", &plugin.homepage),
        ("repository", &plugin.repository),
    ] {
        if let Some(url) = url {
            about.row([label.into(), url.clone()]);
        }
    }
    about.row(["api".into(), format!("aerie:plugin {}", plugin.api)]);
    out.push_str(&about.render());

    let mut files = Table::default();
    for file in package.file_summaries() {
        files.row([file.name, human_size(file.size)]);
    }
    section(&mut out, "files", &files);

    let mut imports = Table::default();
    for import in &package.component.imports {
        let need = match import.needs {
            Need::Nothing => "always available".to_string(),
            Need::Permission(permission) => format!("needs {permission}"),
        };
        imports.row([import.name.clone(), need]);
    }
    section(&mut out, "imports", &imports);

    let mut exports = Table::default();
    for export in &package.component.exports {
        let role = match export.entry {
            Some(Entry::Http) => "HTTP endpoints",
            Some(Entry::Service) => "services for other plugins",
            Some(Entry::Lifecycle) => "lifecycle hooks",
            None => "ignored by Aerie",
        };
        exports.row([export.name.clone(), role.to_string()]);
    }
    section(&mut out, "exports", &exports);

    let permissions = &manifest.permissions;
    let mut granted = Table::default();
    let list = |items: Vec<String>| items.join(", ");
    if !permissions.outbound.is_empty() {
        granted.row([
            "outbound".into(),
            list(
                permissions
                    .outbound
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            ),
        ]);
    }
    if !permissions.secrets.is_empty() {
        granted.row(["secrets".into(), permissions.secrets.join(", ")]);
    }
    if !permissions.services.is_empty() {
        granted.row([
            "services".into(),
            list(
                permissions
                    .services
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            ),
        ]);
    }
    if permissions.keyvalue {
        granted.row(["keyvalue".into(), "yes".into()]);
    }
    if let Some(memory) = permissions.memory {
        granted.row(["memory".into(), human_size(memory)]);
    }
    if let Some(timeout) = permissions.timeout {
        granted.row(["timeout".into(), format!("{timeout:?}")]);
    }
    section(&mut out, "permissions", &granted);

    let mut routes = Table::default();
    for route in &manifest.provides.routes {
        let methods = if route.methods.is_empty() {
            "any method".to_string()
        } else {
            route.methods.join(", ")
        };
        let guard = match route.guard {
            Guard::Public => "public",
            Guard::Viewer => "space members",
            Guard::Member => "space role member or higher",
            Guard::Admin => "space role admin or higher",
            Guard::Owner => "space owners",
        };
        routes.row([route.path.clone(), methods, guard.to_string()]);
    }
    section(&mut out, "routes", &routes);

    let mut services = Table::default();
    for service in &manifest.provides.services {
        services.row([service.clone()]);
    }
    section(&mut out, "services", &services);

    let mut dependencies = Table::default();
    for (name, requirement) in &manifest.dependencies {
        dependencies.row([name.to_string(), requirement.to_string()]);
    }
    section(&mut out, "dependencies", &dependencies);
    out
}

fn section(out: &mut String, title: &str, table: &Table) {
    let body = table.render();
    if !body.is_empty() {
        out.push_str(title);
        out.push('\n');
        out.push_str(&body);
    }
}
