//! `aerie dev`: build a plugin project, serve it on a local host, and rebuild and swap it in
//! whenever its sources change. The swap is the host's zero-downtime swap: a build that does
//! not compile, or a version whose `init` or `health` fails, leaves the previous one serving.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aerie_server::plugins::DEFAULT_SPACE;
use aerie_server::{Config, Server};
use anyhow::Context as _;
use notify::{EventKind, RecursiveMode, Watcher as _};

use crate::build;
use crate::server::{installation_of, wait_for_termination};

/// How long to wait after a change for the editor to finish writing.
const SETTLE: Duration = Duration::from_millis(300);

pub fn dev(dir: &Path, listen: SocketAddr, profile: &str) -> anyhow::Result<()> {
    let dir = std::fs::canonicalize(dir)
        .with_context(|| format!("cannot find the plugin project {}", dir.display()))?;
    let first = build::build(&dir, profile, None)?;
    let target_dir = first.target_dir.clone();
    let _telemetry = crate::telemetry::init();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let config = Config {
            listen,
            // State survives between `aerie dev` sessions, beside the build.
            data_dir: target_dir.join("aerie").join("dev"),
            require_signature: false,
            plugin_rate_limit: 0,
            ..Config::default()
        };
        let tenants = config.plugin_limits.clone();
        let server = Server::start(config, None)
            .await
            .context("cannot start the development server")?;
        server.plugins().serve_locally(DEFAULT_SPACE);
        let host = server
            .plugins()
            .get()
            .context("cannot start the plugin host")?
            .clone();
        let spec = installation_of(first.package, &tenants);
        let plugin = spec.plugin().clone();
        let report = host.load(vec![spec]).await;
        if let Some((_, err)) = report.failures().first() {
            eprintln!("error: {plugin} did not start: {err}");
        }
        println!(
            "Serving {plugin} at {}/{plugin}/",
            server.plugin_origin(DEFAULT_SPACE)
        );
        println!("Watching {} for changes; Ctrl-C stops.", dir.display());

        let (changed, mut changes) = tokio::sync::mpsc::unbounded_channel();
        let ignored = [target_dir.clone(), dir.join("target"), dir.join(".git")];
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                let relevant = !matches!(event.kind, EventKind::Access(_))
                    && event
                        .paths
                        .iter()
                        .any(|path| !ignored.iter().any(|ignored| path.starts_with(ignored)));
                if relevant {
                    let _ = changed.send(());
                }
            })
            .context("cannot watch the project's files")?;
        watcher
            .watch(&dir, RecursiveMode::Recursive)
            .with_context(|| format!("cannot watch {}", dir.display()))?;

        let stop = wait_for_termination();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                Some(()) = changes.recv() => {
                    tokio::time::sleep(SETTLE).await;
                    while changes.try_recv().is_ok() {}
                    rebuild(&host, &dir, profile).await;
                }
            }
        }
        server.stop().await.context("stopping the server")
    })
}

/// Builds the project again and swaps the new version in; on any failure the running one
/// stays.
async fn rebuild(host: &aerie_host::Host, dir: &Path, profile: &str) {
    let started = Instant::now();
    let (dir, profile): (PathBuf, String) = (dir.to_path_buf(), profile.to_string());
    let built = tokio::task::spawn_blocking(move || build::build(&dir, &profile, None)).await;
    let package = match built {
        Ok(Ok(built)) => built.package,
        Ok(Err(err)) => {
            eprintln!("error: {err:#}\nThe previous build keeps serving.");
            return;
        }
        Err(err) => {
            eprintln!("error: the build did not finish: {err}");
            return;
        }
    };
    let mut spec = installation_of(
        package,
        &aerie_server::limits::PluginLimitsConfig::default(),
    );
    let plugin = spec.plugin().clone();
    spec.previous_version = host
        .running()
        .into_iter()
        .find(|running| running.plugin == plugin)
        .map(|running| running.version.to_string());
    let digest = spec.digest.clone();
    match host.swap(spec).await {
        Ok(_) => println!(
            "Swapped in {plugin} {digest} ({} ms after the change)",
            started.elapsed().as_millis()
        ),
        Err(err) => eprintln!(
            "error: the new build did not start: {err}\nThe previous build keeps serving."
        ),
    }
}
