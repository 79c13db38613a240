//! The catalogue's search index, kept from the database: rebuilt when missing or of another
//! schema, brought up to date from the change log at start, updated at once after a publish or
//! yank here, and following the change log in the background for changes other replicas make.

use std::sync::Arc;
use std::time::Duration;

use aerie_core::manifest::Manifest;
use aerie_db::{CatalogEntry, Database};
use aerie_search::{PluginDocument, SearchIndex};
use tokio::sync::watch;

use crate::error::{ApiError, ApiResult};

/// How often the follower reads the change log.
const FOLLOW_EVERY: Duration = Duration::from_secs(2);

/// How long the change log keeps a change: a replica away longer rebuilds its index.
pub const LOG_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// How often the change log is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The extension of the file beside the index naming the database it was built from.
const SOURCE_EXTENSION: &str = "built-from";

/// Plugins read from the database at a time by a rebuild.
const REBUILD_PAGE: i64 = 2_000;

/// Longest README text indexed, in bytes.
const MAX_README: usize = 64 * 1024;

/// A plugin as search shows it, or `None` when search must not show it (a private namespace's
/// plugins are for its members, and search answers everyone).
pub fn document(entry: &CatalogEntry) -> Option<PluginDocument> {
    if entry.private {
        return None;
    }
    let latest = aerie_core::shown::shown(&entry.versions, |version| {
        (version.version.as_str(), version.yanked)
    })?;
    let installable = !latest.yanked;
    let manifest = Manifest::from_stored(&latest.manifest).ok()?;
    let mut readme = latest.readme.clone().unwrap_or_default();
    if readme.len() > MAX_README {
        let mut end = MAX_README;
        while !readme.is_char_boundary(end) {
            end -= 1;
        }
        readme.truncate(end);
    }
    Some(PluginDocument {
        name: entry.name.clone(),
        version: latest.version.clone(),
        description: manifest.plugin.description,
        tags: manifest.plugin.tags,
        categories: manifest.plugin.categories,
        license: manifest.plugin.license,
        dependencies: manifest
            .dependencies
            .keys()
            .map(ToString::to_string)
            .collect(),
        readme,
        certified: entry
            .versions
            .iter()
            .any(|version| version.certified && !version.yanked),
        installable,
        downloads: entry.downloads.max(0) as u64,
        rating: if entry.reviews > 0 {
            entry.stars as f64 / entry.reviews as f64
        } else {
            0.0
        },
        ratings: entry.reviews.max(0) as u64,
        created_at: entry.created_at,
        updated_at: entry.updated_at,
    })
}

fn index_error(err: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("search index: {err}"))
}

/// Runs blocking index work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, aerie_search::SearchError> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(index_error)?
        .map_err(index_error)
}

/// Opens the index in `dir` and brings it up to date: rebuilt whole when it is new or stale,
/// else the changes since its position.
pub async fn open(db: &Database, dir: std::path::PathBuf) -> ApiResult<Arc<SearchIndex>> {
    // Beside the index, not in it: the index's directory is the index library's to manage.
    let source_file = dir.with_extension(SOURCE_EXTENSION);
    let index = Arc::new(
        tokio::task::spawn_blocking(move || SearchIndex::open(&dir))
            .await
            .map_err(index_error)?
            // Said whole: this ends a start, where the log may not be read.
            .map_err(|err| {
                ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "search_index",
                    format!("opening the search index: {err}"),
                )
            })?,
    );
    let logged = db.catalog_position().await?;
    let identity = db.catalog_identity().await?;
    let built_from = std::fs::read_to_string(&source_file).ok();
    match index.position() {
        Some(_) if built_from.as_deref() != Some(identity.as_str()) => {
            tracing::warn!("the search index was built from another database; rebuilding it");
            rebuild(db, &index).await?;
        }
        Some(position) if position as i64 <= logged => catch_up(db, &index).await?,
        Some(position) => {
            // Ahead of the database's log: the database was replaced or restored from an
            // older backup, so the index describes another catalogue.
            tracing::warn!(
                index_position = position,
                database_position = logged,
                "the search index is ahead of the database; rebuilding it"
            );
            rebuild(db, &index).await?;
        }
        None => {
            rebuild(db, &index).await?;
        }
    }
    if built_from.as_deref() != Some(identity.as_str()) {
        crate::keys::write_private_file(&source_file, &identity).map_err(index_error)?;
    }
    Ok(index)
}

/// Rebuilds the index from every plugin in the database, reading it a page at a time while
/// the index writes, so memory stays bounded whatever the catalogue's size.
pub async fn rebuild(db: &Database, index: &Arc<SearchIndex>) -> ApiResult<usize> {
    let position = db.catalog_position().await?;
    let (sender, mut receiver) =
        tokio::sync::mpsc::channel::<Result<PluginDocument, String>>(REBUILD_PAGE as usize);
    let writing = {
        let index = Arc::clone(index);
        tokio::task::spawn_blocking(move || {
            index.rebuild(
                std::iter::from_fn(|| receiver.blocking_recv()),
                position.max(0) as u64,
            )
        })
    };
    let mut after = 0;
    'pages: loop {
        let page = match db.catalog_entries_after(after, REBUILD_PAGE).await {
            Ok(page) => page,
            Err(err) => {
                // The writer rolls back on the error; its result says why.
                let _ = sender.send(Err(err.to_string())).await;
                break;
            }
        };
        let Some(last) = page.last() else { break };
        after = last.plugin_id;
        for document in page.iter().filter_map(document) {
            if sender.send(Ok(document)).await.is_err() {
                break 'pages; // The writer failed; its result says why.
            }
        }
    }
    drop(sender);
    let count = writing.await.map_err(index_error)?.map_err(index_error)?;
    tracing::info!(plugins = count, position, "rebuilt the search index");
    Ok(count)
}

/// Re-indexes `plugin_ids` from the database, committing at `position`.
async fn reindex_at(
    db: &Database,
    index: &Arc<SearchIndex>,
    plugin_ids: &[i64],
    position: u64,
) -> ApiResult<()> {
    let mut documents = Vec::new();
    let mut removed = Vec::new();
    for &plugin_id in plugin_ids {
        if let Some(entry) = db.catalog_entry(plugin_id).await? {
            match document(&entry) {
                Some(document) => documents.push(document),
                None => removed.push(entry.name),
            }
        }
    }
    let index = Arc::clone(index);
    blocking(move || index.upsert(&documents, &removed, position)).await
}

/// Applies the changes logged after the index's position, or rebuilds the index when the
/// log no longer holds them all.
pub async fn catch_up(db: &Database, index: &Arc<SearchIndex>) -> ApiResult<()> {
    let position = index.position().unwrap_or(0) as i64;
    let Some((changed, next)) = db.catalog_changes_since(position).await? else {
        tracing::warn!(
            position,
            "the change log was pruned past the search index's position; rebuilding it"
        );
        return rebuild(db, index).await.map(|_| ());
    };
    if changed.is_empty() && next == position {
        return Ok(());
    }
    reindex_at(db, index, &changed, next.max(0) as u64).await
}

/// Re-indexes one plugin now, so a change made here is searchable as soon as it is answered.
/// The index's position stays: the follower still reads every change after it.
pub async fn reindex(db: &Database, index: &Arc<SearchIndex>, plugin_id: i64) -> ApiResult<()> {
    let position = index.position().unwrap_or(0);
    reindex_at(db, index, &[plugin_id], position).await
}

/// Follows the change log until `stop`, and prunes what it no longer needs.
pub async fn follow(db: Database, index: Arc<SearchIndex>, mut stop: watch::Receiver<bool>) {
    let mut last_pruned: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_EVERY) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        if let Err(err) = catch_up(&db, &index).await {
            tracing::warn!(error = %err.message, "following the catalogue's changes failed; retrying");
        }
        if last_pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            last_pruned = Some(std::time::Instant::now());
            let before = aerie_db::now_millis() - LOG_RETENTION.as_millis() as i64;
            match db.prune_catalog_changes(before).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "pruned the catalogue's change log"),
                Err(err) => {
                    tracing::warn!(error = %err, "pruning the catalogue's change log failed")
                }
            }
        }
    }
}
