//! What the catalogue's search index is built from: every plugin with its versions and
//! download total, and the ordered log of changes that index followers read.

use sqlx::Row as _;

use crate::{Database, DbResult, WriteTransaction, now_millis};

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
    /// The newest position in the change log (0 when empty).
    pub async fn catalog_position(&self) -> DbResult<i64> {
        let row = sqlx::query("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM catalog_changes")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// The plugins changed after `position` or in the last `window_millis` (a transaction
    /// that took its id earlier may commit later; reading a window again costs an idempotent
    /// re-index), with the newest position seen.
    pub async fn catalog_changes_since(
        &self,
        position: i64,
        window_millis: i64,
    ) -> DbResult<(Vec<i64>, i64)> {
        let rows = sqlx::query(
            "SELECT id, plugin_id FROM catalog_changes WHERE id > $1 OR at > $2 ORDER BY id",
        )
        .bind(position)
        .bind(now_millis() - window_millis)
        .fetch_all(&self.pool)
        .await?;
        let mut plugins = Vec::new();
        let mut newest = position;
        for row in &rows {
            newest = newest.max(row.try_get::<i64, _>(0)?);
            let plugin: i64 = row.try_get(1)?;
            if !plugins.contains(&plugin) {
                plugins.push(plugin);
            }
        }
        Ok((plugins, newest))
    }

    /// The catalogue's view of up to `limit` plugins with ids above `after`, in id order: a
    /// whole catalogue is read page by page, so no reader holds all of it.
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
