//! Plugins, their versions, and download counts.

use serde_json::json;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::audit::{Actor, record};
use crate::{Database, DbError, DbResult, now_millis};

/// A version to publish; its package blob is already stored.
#[derive(Clone, Debug)]
pub struct NewVersion {
    /// The namespace's row id.
    pub namespace_id: i64,
    /// The namespace's name (for the audit log and the returned record).
    pub namespace: String,
    /// The plugin's name within the namespace.
    pub name: String,
    /// The version.
    pub version: String,
    /// The package's digest, `sha256:...`.
    pub digest: String,
    /// The package's size in bytes.
    pub size: i64,
    /// The validated manifest, as JSON.
    pub manifest: String,
    /// The README, if the package has one.
    pub readme: Option<String>,
    /// Its CHANGELOG.md, if the package has one.
    pub changelog: Option<String>,
    /// The detached signature, if any.
    pub signature: Option<String>,
    /// The id of the key that made it.
    pub signing_key_id: Option<String>,
    /// The publishing user.
    pub publisher_id: i64,
}

/// A published version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionRecord {
    /// Row id.
    pub id: i64,
    /// The plugin's row id.
    pub plugin_id: i64,
    /// The namespace.
    pub namespace: String,
    /// The plugin's name within the namespace.
    pub name: String,
    /// The version.
    pub version: String,
    /// The package's digest.
    pub digest: String,
    /// The package's size in bytes.
    pub size: i64,
    /// The validated manifest, as JSON.
    pub manifest: String,
    /// The README, if any.
    pub readme: Option<String>,
    /// Its CHANGELOG.md, if the package has one.
    pub changelog: Option<String>,
    /// The detached signature, if any.
    pub signature: Option<String>,
    /// The id of the key that signed it.
    pub signing_key_id: Option<String>,
    /// Who published it.
    pub publisher: String,
    /// When.
    pub published_at: i64,
    /// Hidden from new resolutions, still downloadable.
    pub yanked: bool,
    /// The deprecation message, if deprecated.
    pub deprecated: Option<String>,
    /// Where it is in certification (`submitted`, `in_review`, `certified`, `rejected`), if
    /// it was ever submitted.
    pub certification: Option<String>,
    /// The registry's signature on its certification, while it is certified.
    pub certification_signature: Option<String>,
}

/// The query `version_from_row` reads, to be followed by a `WHERE` clause.
macro_rules! version_select {
    () => {
        "SELECT v.id, v.plugin_id, n.name, p.name, v.version, v.digest, \
     v.size, v.manifest, v.readme, v.signature, v.signing_key_id, u.username, v.published_at, \
     v.yanked, v.deprecated, c.state, c.signature, v.changelog \
     FROM versions v JOIN plugins p ON p.id = v.plugin_id \
     JOIN namespaces n ON n.id = p.namespace_id JOIN users u ON u.id = v.publisher_id \
     LEFT JOIN certifications c ON c.version_id = v.id "
    };
}

fn version_from_row(row: &AnyRow) -> DbResult<VersionRecord> {
    Ok(VersionRecord {
        id: row.try_get(0)?,
        plugin_id: row.try_get(1)?,
        namespace: row.try_get(2)?,
        name: row.try_get(3)?,
        version: row.try_get(4)?,
        digest: row.try_get(5)?,
        size: row.try_get(6)?,
        manifest: row.try_get(7)?,
        readme: row.try_get(8)?,
        signature: row.try_get(9)?,
        signing_key_id: row.try_get(10)?,
        publisher: row.try_get(11)?,
        published_at: row.try_get(12)?,
        yanked: row.try_get::<i64, _>(13)? != 0,
        deprecated: row.try_get(14)?,
        certification: row.try_get(15)?,
        certification_signature: row.try_get(16)?,
        changelog: row.try_get(17)?,
    })
}

/// What publishing did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublishOutcome {
    /// The version is new.
    Created(VersionRecord),
    /// The same bytes were already published as this version; nothing changed.
    Existing(VersionRecord),
}

/// A plugin and its totals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginSummary {
    /// Row id.
    pub id: i64,
    /// The namespace.
    pub namespace: String,
    /// The name within it.
    pub name: String,
    /// When its first version was published.
    pub created_at: i64,
    /// When its last version was published.
    pub updated_at: i64,
    /// Downloads of all its versions.
    pub downloads: i64,
}

/// Downloads of one version on one day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadDay {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    /// The version.
    pub version: String,
    /// Downloads that day.
    pub count: i64,
}

impl Database {
    /// Records a new version of a plugin, creating the plugin on its first version.
    ///
    /// Versions are immutable: publishing the same bytes again returns the existing version,
    /// other bytes for an existing version fail with [`DbError::Conflict`]. Of concurrent
    /// publishes of one version exactly one creates it.
    #[tracing::instrument(name = "db.publish_version", skip_all)]
    pub async fn publish_version(
        &self,
        actor: &Actor,
        new: &NewVersion,
    ) -> DbResult<PublishOutcome> {
        let mut transaction = self.write().await?;
        let now = now_millis();
        let plugin_id: i64 = sqlx::query(
            "INSERT INTO plugins (namespace_id, name, created_at, updated_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (namespace_id, name) DO UPDATE SET updated_at = excluded.updated_at \
             RETURNING id",
        )
        .bind(new.namespace_id)
        .bind(&new.name)
        .bind(now)
        .bind(now)
        .fetch_one(&mut **transaction)
        .await?
        .try_get(0)?;
        let inserted = sqlx::query(
            "INSERT INTO versions (plugin_id, version, digest, size, manifest, readme, signature, \
             signing_key_id, publisher_id, published_at, changelog) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (plugin_id, version) DO NOTHING RETURNING id",
        )
        .bind(plugin_id)
        .bind(&new.version)
        .bind(&new.digest)
        .bind(new.size)
        .bind(&new.manifest)
        .bind(new.readme.clone())
        .bind(new.signature.clone())
        .bind(new.signing_key_id.clone())
        .bind(new.publisher_id)
        .bind(now)
        .bind(new.changelog.clone())
        .fetch_optional(&mut **transaction)
        .await?;
        let Some(row) = inserted else {
            // The version exists (perhaps published a moment ago by a concurrent request).
            drop(transaction);
            let existing = self
                .version(&new.namespace, &new.name, &new.version)
                .await?
                .ok_or(DbError::NotFound("version"))?;
            if existing.digest == new.digest {
                return Ok(PublishOutcome::Existing(existing));
            }
            return Err(DbError::Conflict(format!(
                "{}/{}@{} is already published with other contents ({}); versions are immutable, publish a new version",
                new.namespace, new.name, new.version, existing.digest
            )));
        };
        let id: i64 = row.try_get(0)?;
        crate::catalog::record_change(&mut transaction, plugin_id).await?;
        record(
            &mut transaction,
            actor,
            "version.publish",
            &format!("plugin:{}/{}@{}", new.namespace, new.name, new.version),
            json!({ "digest": new.digest, "size": new.size, "signing_key_id": new.signing_key_id }),
        )
        .await?;
        transaction.commit().await?;
        let record = self
            .version_by_id(id)
            .await?
            .ok_or(DbError::NotFound("version"))?;
        Ok(PublishOutcome::Created(record))
    }

    async fn version_by_id(&self, id: i64) -> DbResult<Option<VersionRecord>> {
        let row = sqlx::query(concat!(version_select!(), "WHERE v.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(version_from_row).transpose()
    }

    /// One version of a plugin.
    #[tracing::instrument(name = "db.version", skip_all)]
    pub async fn version(
        &self,
        namespace: &str,
        name: &str,
        version: &str,
    ) -> DbResult<Option<VersionRecord>> {
        let row = sqlx::query(concat!(
            version_select!(),
            "WHERE n.name = $1 AND p.name = $2 AND v.version = $3"
        ))
        .bind(namespace)
        .bind(name)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(version_from_row).transpose()
    }

    /// Every version of a plugin, yanked ones included, in publishing order.
    #[tracing::instrument(name = "db.versions", skip_all)]
    pub async fn versions(&self, namespace: &str, name: &str) -> DbResult<Vec<VersionRecord>> {
        let rows = sqlx::query(concat!(
            version_select!(),
            "WHERE n.name = $1 AND p.name = $2 ORDER BY v.id"
        ))
        .bind(namespace)
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_from_row).collect()
    }

    /// The version whose package has this digest.
    #[tracing::instrument(name = "db.version_by_digest", skip_all)]
    pub async fn version_by_digest(&self, digest: &str) -> DbResult<Option<VersionRecord>> {
        let row = sqlx::query(concat!(
            version_select!(),
            "WHERE v.digest = $1 ORDER BY v.id LIMIT 1"
        ))
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(version_from_row).transpose()
    }

    /// A plugin with its download total.
    #[tracing::instrument(name = "db.plugin", skip_all)]
    pub async fn plugin(&self, namespace: &str, name: &str) -> DbResult<Option<PluginSummary>> {
        let row = sqlx::query(
            "SELECT p.id, n.name, p.name, p.created_at, p.updated_at, \
             (SELECT CAST(COALESCE(SUM(d.count), 0) AS BIGINT) FROM download_counts d \
              JOIN versions v ON v.id = d.version_id WHERE v.plugin_id = p.id) \
             FROM plugins p JOIN namespaces n ON n.id = p.namespace_id \
             WHERE n.name = $1 AND p.name = $2",
        )
        .bind(namespace)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(PluginSummary {
                id: row.try_get(0)?,
                namespace: row.try_get(1)?,
                name: row.try_get(2)?,
                created_at: row.try_get(3)?,
                updated_at: row.try_get(4)?,
                downloads: row.try_get(5)?,
            })
        })
        .transpose()
    }

    /// Yanks or unyanks a version.
    #[tracing::instrument(name = "db.set_yanked", skip_all)]
    pub async fn set_yanked(
        &self,
        actor: &Actor,
        version: &VersionRecord,
        yanked: bool,
    ) -> DbResult<()> {
        let mut transaction = self.write().await?;
        sqlx::query("UPDATE versions SET yanked = $1 WHERE id = $2")
            .bind(i64::from(yanked))
            .bind(version.id)
            .execute(&mut **transaction)
            .await?;
        crate::catalog::record_change(&mut transaction, version.plugin_id).await?;
        record(
            &mut transaction,
            actor,
            if yanked {
                "version.yank"
            } else {
                "version.unyank"
            },
            &format!(
                "plugin:{}/{}@{}",
                version.namespace, version.name, version.version
            ),
            json!({}),
        )
        .await?;
        transaction.commit().await
    }

    /// Deprecates a version with a message, or lifts the deprecation with `None`.
    #[tracing::instrument(name = "db.set_deprecated", skip_all)]
    pub async fn set_deprecated(
        &self,
        actor: &Actor,
        version: &VersionRecord,
        message: Option<&str>,
    ) -> DbResult<()> {
        let mut transaction = self.write().await?;
        sqlx::query("UPDATE versions SET deprecated = $1 WHERE id = $2")
            .bind(message)
            .bind(version.id)
            .execute(&mut **transaction)
            .await?;
        record(
            &mut transaction,
            actor,
            "version.deprecate",
            &format!(
                "plugin:{}/{}@{}",
                version.namespace, version.name, version.version
            ),
            json!({ "message": message }),
        )
        .await?;
        transaction.commit().await
    }

    /// Adds download counts, `(version id, day, count)`, in one transaction.
    #[tracing::instrument(name = "db.add_downloads", skip_all)]
    pub async fn add_downloads(&self, counts: &[(i64, i64, i64)]) -> DbResult<()> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut transaction = self.write().await?;
        for (version_id, day, count) in counts {
            sqlx::query(
                "INSERT INTO download_counts (version_id, day, count) VALUES ($1, $2, $3) \
                 ON CONFLICT (version_id, day) DO UPDATE SET count = download_counts.count + excluded.count",
            )
            .bind(*version_id)
            .bind(*day)
            .bind(*count)
            .execute(&mut **transaction)
            .await?;
        }
        transaction.commit().await
    }

    /// A plugin's downloads per day and version, oldest first.
    #[tracing::instrument(name = "db.downloads", skip_all)]
    pub async fn downloads(&self, plugin_id: i64) -> DbResult<Vec<DownloadDay>> {
        let rows = sqlx::query(
            "SELECT d.day, v.version, d.count FROM download_counts d \
             JOIN versions v ON v.id = d.version_id WHERE v.plugin_id = $1 \
             ORDER BY d.day, v.id",
        )
        .bind(plugin_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DownloadDay {
                    day: row.try_get(0)?,
                    version: row.try_get(1)?,
                    count: row.try_get(2)?,
                })
            })
            .collect()
    }

    /// Whether some version refers to the blob `digest`.
    #[tracing::instrument(name = "db.digest_referenced", skip_all)]
    pub async fn digest_referenced(&self, digest: &str) -> DbResult<bool> {
        let row = sqlx::query("SELECT 1 FROM versions WHERE digest = $1 LIMIT 1")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Every digest a version refers to: the blobs garbage collection must keep.
    #[tracing::instrument(name = "db.referenced_digests", skip_all)]
    pub async fn referenced_digests(&self) -> DbResult<Vec<String>> {
        let rows = sqlx::query("SELECT DISTINCT digest FROM versions")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
    }
}
