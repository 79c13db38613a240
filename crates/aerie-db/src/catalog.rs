//! What the catalogue's search index is built from: every plugin with its versions and
//! download total, and the ordered log of changes that index followers read.

use sqlx::Row as _;

use crate::{Backend, Database, DbResult, WriteTransaction, now_millis};

/// One version, as the catalogue needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogVersion {
    /// The version.
    pub version: String,
    /// The validated manifest, JSON.
    pub manifest: String,
    /// The README, if any.
    pub readme: Option<String>,
    /// Whether it is yanked.
    pub yanked: bool,
    /// Whether it is certified.
    pub certified: bool,
}

/// One plugin, as the catalogue needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogEntry {
    /// Row id.
    pub plugin_id: i64,
    /// `namespace/name`.
    pub name: String,
    /// Whether its namespace is private.
    pub private: bool,
    /// First publish.
    pub created_at: i64,
    /// Last publish.
    pub updated_at: i64,
    /// Downloads of all versions.
    pub downloads: i64,
    /// Sum of the stars of its reviews.
    pub stars: i64,
    /// Number of reviews.
    pub reviews: i64,
    /// Its versions, oldest first.
    pub versions: Vec<CatalogVersion>,
}

/// The catalogue's change log, as `change_log_pruned` names it.
const CATALOG_LOG: &str = "catalog";

/// Appends `plugin_id` to the change log, inside the change's transaction.
pub(crate) async fn record_change(
    transaction: &mut WriteTransaction,
    plugin_id: i64,
) -> DbResult<()> {
    sqlx::query("INSERT INTO catalog_changes (plugin_id, at) VALUES ($1, $2)")
        .bind(plugin_id)
        .bind(now_millis())
        .execute(&mut ***transaction)
        .await?;
    Ok(())
}

impl Database {
    /// A reader's position in the change log now: everything written before it is visible
    /// to a read that starts after this answer. On SQLite, whose single writer commits changes
    /// in id order, the newest id; on PostgreSQL, the id of the oldest transaction still
    /// running (every transaction before it has ended), so a reader that starts from here
    /// misses no change a transaction still open will commit.
    #[tracing::instrument(name = "db.catalog_position", skip_all)]
    pub async fn catalog_position(&self) -> DbResult<i64> {
        let query = match self.backend {
            // Ids are never reused; a log pruned empty is still read from past its pruning.
            Backend::Sqlite => {
                "SELECT CAST(MAX(COALESCE((SELECT MAX(id) FROM catalog_changes), 0), \
                 COALESCE((SELECT upto FROM change_log_pruned WHERE log = 'catalog'), 0)) AS BIGINT)"
            }
            Backend::Postgres => "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
        };
        let row = sqlx::query(query).fetch_one(&self.pool).await?;
        Ok(row.try_get(0)?)
    }

    /// The plugins changed at or after `position` (see [`Database::catalog_position`]), and
    /// the position to read from next; `None` when changes after `position` were pruned, so
    /// the reader must rebuild from the catalogue. Changes read once may be read again (a
    /// transaction still open at `position`); applying one twice must do no harm.
    #[tracing::instrument(name = "db.catalog_changes_since", skip_all)]
    pub async fn catalog_changes_since(&self, position: i64) -> DbResult<Option<(Vec<i64>, i64)>> {
        if let Some(upto) = self.pruned_upto(CATALOG_LOG).await?
            && match self.backend {
                Backend::Sqlite => upto > position,
                Backend::Postgres => upto >= position,
            }
        {
            return Ok(None);
        }
        let rows = match self.backend {
            Backend::Sqlite => {
                sqlx::query("SELECT id, plugin_id FROM catalog_changes WHERE id > $1 ORDER BY id")
                    .bind(position)
                    .fetch_all(&self.pool)
                    .await?
            }
            // One statement, one snapshot: the horizon and the changes are read together.
            Backend::Postgres => {
                sqlx::query(
                    "SELECT h.horizon, c.plugin_id FROM \
                     (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon) h \
                     LEFT JOIN catalog_changes c ON c.tx >= $1 ORDER BY c.id",
                )
                .bind(position)
                .fetch_all(&self.pool)
                .await?
            }
        };
        let mut plugins = Vec::new();
        let mut next = position;
        for row in &rows {
            let at: i64 = row.try_get(0)?;
            next = match self.backend {
                Backend::Sqlite => next.max(at),
                Backend::Postgres => at,
            };
            if let Some(plugin) = row.try_get::<Option<i64>, _>(1)?
                && !plugins.contains(&plugin)
            {
                plugins.push(plugin);
            }
        }
        Ok(Some((plugins, next)))
    }

    /// Removes the changes logged before `before` (milliseconds since the epoch) and records
    /// how far the log was pruned; answers how many went.
    #[tracing::instrument(name = "db.prune_catalog_changes", skip_all)]
    pub async fn prune_catalog_changes(&self, before: i64) -> DbResult<u64> {
        let mut transaction = self.write().await?;
        let newest_pruned = match self.backend {
            Backend::Sqlite => "SELECT MAX(id) FROM catalog_changes WHERE at < $1",
            Backend::Postgres => "SELECT MAX(tx) FROM catalog_changes WHERE at < $1",
        };
        let upto: Option<i64> = sqlx::query(newest_pruned)
            .bind(before)
            .fetch_one(&mut **transaction)
            .await?
            .try_get(0)?;
        let Some(upto) = upto else {
            return Ok(0);
        };
        let deleted = sqlx::query("DELETE FROM catalog_changes WHERE at < $1")
            .bind(before)
            .execute(&mut **transaction)
            .await?
            .rows_affected();
        sqlx::query(
            "INSERT INTO change_log_pruned (log, upto) VALUES ($1, $2) \
             ON CONFLICT (log) DO UPDATE SET upto = excluded.upto \
             WHERE excluded.upto > change_log_pruned.upto",
        )
        .bind(CATALOG_LOG)
        .bind(upto)
        .execute(&mut **transaction)
        .await?;
        transaction.commit().await?;
        Ok(deleted)
    }

    /// This database's identity, made when it was created: what a search index records to
    /// know it was built from this database.
    #[tracing::instrument(name = "db.catalog_identity", skip_all)]
    pub async fn catalog_identity(&self) -> DbResult<String> {
        let row = sqlx::query("SELECT id FROM catalog_identity")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    async fn pruned_upto(&self, log: &str) -> DbResult<Option<i64>> {
        let row = sqlx::query("SELECT upto FROM change_log_pruned WHERE log = $1")
            .bind(log)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    /// The catalogue's view of up to `limit` plugins with ids above `after`, in id order: a
    /// whole catalogue is read page by page, so no reader holds all of it.
    #[tracing::instrument(name = "db.catalog_entries_after", skip_all)]
    pub async fn catalog_entries_after(
        &self,
        after: i64,
        limit: i64,
    ) -> DbResult<Vec<CatalogEntry>> {
        let row = sqlx::query(
            "SELECT CAST(MAX(id) AS BIGINT) FROM \
             (SELECT id FROM plugins WHERE id > $1 ORDER BY id LIMIT $2) page",
        )
        .bind(after)
        .bind(limit)
        .fetch_one(&self.pool)
        .await?;
        match row.try_get::<Option<i64>, _>(0)? {
            Some(last) => self.catalog_entries_between(after + 1, last).await,
            None => Ok(Vec::new()),
        }
    }

    /// The catalogue's view of one plugin, if it has any version.
    #[tracing::instrument(name = "db.catalog_entry", skip_all)]
    pub async fn catalog_entry(&self, plugin_id: i64) -> DbResult<Option<CatalogEntry>> {
        Ok(self
            .catalog_entries_between(plugin_id, plugin_id)
            .await?
            .pop())
    }

    /// The plugins with ids from `first` to `last`, with their totals.
    async fn catalog_entries_between(&self, first: i64, last: i64) -> DbResult<Vec<CatalogEntry>> {
        let rows = sqlx::query(concat!(
            catalog_select!(),
            "WHERE p.id BETWEEN $1 AND $2 ORDER BY p.id, v.id"
        ))
        .bind(first)
        .bind(last)
        .fetch_all(&self.pool)
        .await?;
        let mut entries = entries_from_rows(&rows)?;
        let totals = sqlx::query(
            "SELECT v.plugin_id, CAST(SUM(d.count) AS BIGINT) FROM download_counts d \
             JOIN versions v ON v.id = d.version_id WHERE v.plugin_id BETWEEN $1 AND $2 \
             GROUP BY v.plugin_id",
        )
        .bind(first)
        .bind(last)
        .fetch_all(&self.pool)
        .await?;
        for row in &totals {
            let plugin_id: i64 = row.try_get(0)?;
            if let Ok(found) = entries.binary_search_by_key(&plugin_id, |entry| entry.plugin_id) {
                entries[found].downloads = row.try_get(1)?;
            }
        }
        let ratings = sqlx::query(
            "SELECT plugin_id, CAST(SUM(stars) AS BIGINT), COUNT(*) FROM reviews \
             WHERE plugin_id BETWEEN $1 AND $2 GROUP BY plugin_id",
        )
        .bind(first)
        .bind(last)
        .fetch_all(&self.pool)
        .await?;
        for row in &ratings {
            let plugin_id: i64 = row.try_get(0)?;
            if let Ok(found) = entries.binary_search_by_key(&plugin_id, |entry| entry.plugin_id) {
                entries[found].stars = row.try_get(1)?;
                entries[found].reviews = row.try_get(2)?;
            }
        }
        Ok(entries)
    }
}

macro_rules! catalog_select {
    () => {
        "SELECT p.id, n.name, p.name, n.private, p.created_at, p.updated_at, \
         v.version, v.manifest, v.readme, v.yanked, \
         CAST(CASE WHEN c.state = 'certified' THEN 1 ELSE 0 END AS BIGINT) \
         FROM plugins p JOIN namespaces n ON n.id = p.namespace_id \
         JOIN versions v ON v.plugin_id = p.id \
         LEFT JOIN certifications c ON c.version_id = v.id "
    };
}
use catalog_select;

/// Rows of `catalog_select!`, ordered by plugin, as entries.
fn entries_from_rows(rows: &[sqlx::any::AnyRow]) -> DbResult<Vec<CatalogEntry>> {
    let mut entries: Vec<CatalogEntry> = Vec::new();
    for row in rows {
        let plugin_id: i64 = row.try_get(0)?;
        if entries
            .last()
            .is_none_or(|entry| entry.plugin_id != plugin_id)
        {
            let namespace: String = row.try_get(1)?;
            let name: String = row.try_get(2)?;
            entries.push(CatalogEntry {
                plugin_id,
                name: format!("{namespace}/{name}"),
                private: row.try_get::<i64, _>(3)? != 0,
                created_at: row.try_get(4)?,
                updated_at: row.try_get(5)?,
                downloads: 0,
                stars: 0,
                reviews: 0,
                versions: Vec::new(),
            });
        }
        let entry = entries.last_mut().expect("pushed above");
        entry.versions.push(CatalogVersion {
            version: row.try_get(6)?,
            manifest: row.try_get(7)?,
            readme: row.try_get(8)?,
            yanked: row.try_get::<i64, _>(9)? != 0,
            certified: row.try_get::<i64, _>(10)? != 0,
        });
    }
    Ok(entries)
}
