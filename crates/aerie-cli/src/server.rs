//! `aerie serve` and `aerie gc`: running and maintaining a registry.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aerie_core::package::{Package, PackageLimits, read_package};
use aerie_host::InstallationSpec;
use aerie_server::plugins::DEFAULT_SPACE;
use bytes::Bytes;

use aerie_server::gc::collect_garbage;
use aerie_server::{Config, Server, open_stores};
use anyhow::Context as _;

use crate::output::human_size;

fn load_config(file: Option<&Path>) -> anyhow::Result<Config> {
    Ok(Config::load(file, std::env::vars())?)
}

pub fn serve(config_file: Option<&Path>) -> anyhow::Result<()> {
    run(config_file, &[], None, None)
}

/// The installation of a package file in the default space.
fn installation(
    path: &Path,
    tenants: &aerie_server::limits::PluginLimitsConfig,
) -> anyhow::Result<InstallationSpec> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let package = read_package(&bytes, &PackageLimits::default())
        .with_context(|| format!("{} is not a valid package", path.display()))?;
    Ok(installation_of(package, tenants))
}

/// The installation of `package` in the default space, with the operator's default limits
/// (`tenants`) where the manifest asks for nothing else.
pub fn installation_of(
    package: Package,
    tenants: &aerie_server::limits::PluginLimitsConfig,
) -> InstallationSpec {
    let limits = aerie_server::spaces::limits_for(&package.manifest, tenants);
    InstallationSpec {
        id: format!("{DEFAULT_SPACE}/{}", package.manifest.plugin.name),
        space: DEFAULT_SPACE.to_string(),
        digest: package.digest.to_string(),
        component: Bytes::copy_from_slice(package.component_bytes()),
        manifest: Arc::new(package.manifest),
        config: Default::default(),
        allowed_outbound: None,
        limits,
        previous_version: None,
    }
}

/// Serves the registry and runs `packages` in the default space.
pub fn run(
    config_file: Option<&Path>,
    packages: &[PathBuf],
    listen: Option<std::net::SocketAddr>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut config = load_config(config_file)?;
    if let Some(listen) = listen {
        config.listen = listen;
    }
    if let Some(data_dir) = data_dir {
        config.data_dir = data_dir;
    }
    let installations = packages
        .iter()
        .map(|path| installation(path, &config.plugin_limits))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let _telemetry = crate::telemetry::init();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let data_dir = config.data_dir.clone();
        let public_url = config.public_url();
        let server = Server::start_with_pages(
            config,
            std::env::var("AERIE_ADMIN_PASSWORD").ok(),
            Some(aerie_web::pages),
        )
        .await
        .context("cannot start the server")?;
        if !installations.is_empty() {
            server.plugins().serve_locally(DEFAULT_SPACE);
            let host = server
                .plugins()
                .get()
                .context("cannot start the plugin host")?;
            let report = host.load(installations).await;
            for load in &report.plugins {
                match &load.outcome {
                    Ok(()) => println!(
                        "Running {}@{} at {}/{}/ (ready in {} ms)",
                        load.plugin,
                        load.version,
                        server.plugin_origin(DEFAULT_SPACE),
                        load.plugin,
                        load.total.as_millis()
                    ),
                    Err(err) => eprintln!(
                        "error: {}@{} did not start: {err}",
                        load.plugin, load.version
                    ),
                }
            }
            if !report.failures().is_empty() {
                anyhow::bail!(
                    "{} of {} plugins did not start",
                    report.failures().len(),
                    report.plugins.len()
                );
            }
        }
        if let Some(password) = &server.generated_admin_password {
            println!("Created the administrator `admin` with the password (shown once):");
            println!("  {password}");
        }
        println!(
            "Aerie is serving {}: the marketplace at {public_url}/, the API at {public_url}/api/v1 (data in {})",
            server.address(),
            data_dir.display()
        );
        let stop = server.shutdown_signal();
        tokio::spawn(async move {
            wait_for_termination().await;
            tracing::info!("stopping");
            let _ = stop.send(true);
        });
        server.wait().await.context("the server failed")
    })
}

pub async fn wait_for_termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).expect("a signal handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// `aerie probe URL`: a GET over plain HTTP/1.0 that must answer 2xx within five seconds.
pub fn probe(url: &str) -> anyhow::Result<()> {
    use std::io::{Read as _, Write as _};
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url} is not an http:// URL"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let address = std::net::ToSocketAddrs::to_socket_addrs(authority)
        .with_context(|| format!("{authority} is not HOST:PORT"))?
        .next()
        .with_context(|| format!("{authority} resolves to nothing"))?;
    let limit = Duration::from_secs(5);
    let mut stream = std::net::TcpStream::connect_timeout(&address, limit)
        .with_context(|| format!("nothing answers at {authority}"))?;
    stream.set_read_timeout(Some(limit))?;
    stream.set_write_timeout(Some(limit))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n")?;
    let mut head = [0u8; 64];
    let read = stream.read(&mut head)?;
    let answer = String::from_utf8_lossy(&head[..read]);
    let status_line = answer.lines().next().unwrap_or("nothing");
    let status = status_line.split_whitespace().nth(1).unwrap_or("");
    anyhow::ensure!(status.starts_with('2'), "{url} answered {status_line}");
    Ok(())
}

/// `aerie backup DIR`.
pub fn backup(config_file: Option<&Path>, dir: &Path) -> anyhow::Result<()> {
    let config = load_config(config_file)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let (db, blobs) = open_stores(&config).await?;
        let manifest = aerie_server::backup::backup(&config, &db, &blobs, dir).await?;
        db.close().await;
        let bytes: u64 = manifest.blobs.iter().map(|blob| blob.size).sum();
        println!(
            "Backed up the database, {} package(s) ({}) and {} key file(s) into {}",
            manifest.blobs.len(),
            human_size(bytes),
            manifest.files.iter().filter(|file| file.path.starts_with("keys/")).count(),
            dir.display()
        );
        if manifest.master_key_from_environment {
            println!(
                "The master keys come from AERIE_MASTER_KEY and are not in the backup: keep them with it."
            );
        }
        Ok(())
    })
}

/// `aerie backup verify DIR`.
pub fn verify_backup(dir: &Path) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let verified = runtime.block_on(aerie_server::backup::verify(dir))?;
    println!(
        "The backup in {} is whole: {} file(s) and {} package(s) match their digests, and every one of its {} version(s) has its package",
        dir.display(),
        verified.manifest.files.len(),
        verified.manifest.blobs.len(),
        verified.versions
    );
    Ok(())
}

/// `aerie restore DIR`.
pub fn restore(config_file: Option<&Path>, dir: &Path) -> anyhow::Result<()> {
    let config = load_config(config_file)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let verified = runtime.block_on(async {
        let blobs = aerie_server::open_blobs(&config)?;
        anyhow::Ok(aerie_server::backup::restore(&config, &blobs, dir).await?)
    })?;
    println!(
        "Restored {} package(s) and the database into {}; `aerie serve` rebuilds the search index at its start",
        verified.manifest.blobs.len(),
        config.data_dir.display()
    );
    Ok(())
}

pub fn gc(config_file: Option<&Path>, grace: Duration, dry_run: bool) -> anyhow::Result<()> {
    let config = load_config(config_file)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let (db, blobs) = open_stores(&config).await?;
        let report = collect_garbage(&db, &blobs, grace, dry_run).await?;
        let verb = if dry_run { "Would remove" } else { "Removed" };
        println!(
            "{verb} {} unreferenced blob(s), {}",
            report.removed.len(),
            human_size(report.removed_bytes)
        );
        for digest in &report.removed {
            println!("  {digest}");
        }
        println!(
            "Kept {} referenced blob(s) and {} younger than {}",
            report.referenced,
            report.young,
            humantime::format_duration(grace)
        );
        Ok(())
    })
}
