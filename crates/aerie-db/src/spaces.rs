//! Spaces (tenants): members with roles, space tokens, installations with their config and
//! sealed secrets, installation events, and each space's lockfile.

use std::fmt;
use std::str::FromStr;

use serde_json::json;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::audit::{Actor, record};
use crate::{Backend, Database, DbError, DbResult, WriteTransaction, now_millis};

/// A space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Space {
    /// Row id: stable across renames, so it scopes the space's data.
    pub id: i64,
    /// Its name, in URLs.
    pub name: String,
    /// Creation time.
    pub created_at: i64,
    /// The master key that wraps the space's data key.
    pub master_key_id: String,
    /// The wrapped data key.
    pub wrapped_key: Vec<u8>,
    /// The lockfile's text; empty before the first install.
    pub lockfile: String,
    /// Whether it installs only certified versions.
    pub require_certified: bool,
    /// Whether it installs only versions signed by a key registered on their namespace.
    pub require_signed: bool,
    /// Raised by every change to what it runs ([`Database::commit_space`]).
    pub revision: i64,
    /// When the revision was last raised, in milliseconds since the epoch (0 before).
    pub changed_at: i64,
}

/// What a space installs: its trust policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpacePolicy {
    /// Only versions the registry certified.
    pub require_certified: bool,
    /// Only versions signed by a key registered on their namespace.
    pub require_signed: bool,
}

/// The PostgreSQL notification channel on which a committed space change names its space.
pub const SPACE_CHANNEL: &str = "aerie_space_changed";

/// Notices of the spaces other replicas change ([`Database::space_listener`]).
pub struct SpaceListener(sqlx::postgres::PgListener);

/// What a [`SpaceListener`] heard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpaceNotice {
    /// The space with this id changed (or was deleted).
    Changed(i64),
    /// The connection was lost and is made again at the next wait: notices sent meanwhile are
    /// lost, so every space must be compared again.
    Lost,
}

impl SpaceListener {
    /// Waits for the next notice.
    pub async fn next(&mut self) -> DbResult<SpaceNotice> {
        loop {
            match self.0.try_recv().await? {
                None => return Ok(SpaceNotice::Lost),
                Some(notification) => {
                    // A payload that is not an id was not sent by Aerie: ignored.
                    if let Ok(id) = notification.payload().parse() {
                        return Ok(SpaceNotice::Changed(id));
                    }
                }
            }
        }
    }
}

macro_rules! space_columns {
    () => {
        "s.id, s.name, s.created_at, s.master_key_id, s.wrapped_key, s.lockfile, \
         s.require_certified, s.require_signed, s.revision, s.changed_at"
    };
}

/// How many columns `space_columns!` selects: a query's own columns come after them.
const SPACE_COLUMN_COUNT: usize = 10;

fn space_from_row(row: &AnyRow) -> DbResult<Space> {
    Ok(Space {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        created_at: row.try_get(2)?,
        master_key_id: row.try_get(3)?,
        wrapped_key: row.try_get(4)?,
        lockfile: row.try_get(5)?,
        require_certified: row.try_get::<i64, _>(6)? != 0,
        require_signed: row.try_get::<i64, _>(7)? != 0,
        revision: row.try_get(8)?,
        changed_at: row.try_get(9)?,
    })
}

/// A member's role in a space, from most to least powerful.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SpaceRole {
    /// Everything, including renaming or deleting the space and naming other owners.
    Owner,
    /// Installs, configures, updates and removes plugins; manages members and tokens below
    /// owner.
    Admin,
    /// Uses the space's plugins (member routes) and sees what is installed.
    Member,
    /// Sees what is installed, and viewer routes.
    Viewer,
}

impl SpaceRole {
    /// Every role, most powerful first.
    pub const ALL: [SpaceRole; 4] = [
        SpaceRole::Owner,
        SpaceRole::Admin,
        SpaceRole::Member,
        SpaceRole::Viewer,
    ];

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SpaceRole::Owner => "owner",
            SpaceRole::Admin => "admin",
            SpaceRole::Member => "member",
            SpaceRole::Viewer => "viewer",
        }
    }

    /// Whether this role may do what `needed` may.
    pub fn at_least(self, needed: SpaceRole) -> bool {
        self <= needed
    }
}

impl fmt::Display for SpaceRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SpaceRole {
    type Err = DbError;

    fn from_str(text: &str) -> DbResult<SpaceRole> {
        SpaceRole::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| DbError::Corrupt(format!("unknown space role `{text}`")))
    }
}

/// A space token: acts in one space with one role, for machines and integrations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpaceToken {
    /// Row id.
    pub id: i64,
    /// The space.
    pub space_id: i64,
    /// Its name, unique in the space.
    pub name: String,
    /// The token's first characters, to recognise it.
    pub prefix: String,
    /// What it may do.
    pub role: SpaceRole,
    /// Who created it.
    pub created_by: Option<String>,
    /// When.
    pub created_at: i64,
    /// When it stops working, if ever.
    pub expires_at: Option<i64>,
    /// When it was last used.
    pub last_used_at: Option<i64>,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
}

macro_rules! token_select {
    () => {
        "SELECT t.id, t.space_id, t.name, t.prefix, t.role, u.username, t.created_at, \
         t.expires_at, t.last_used_at, t.revoked_at \
         FROM space_tokens t LEFT JOIN users u ON u.id = t.created_by "
    };
}

fn token_from_row(row: &AnyRow) -> DbResult<SpaceToken> {
    Ok(SpaceToken {
        id: row.try_get(0)?,
        space_id: row.try_get(1)?,
        name: row.try_get(2)?,
        prefix: row.try_get(3)?,
        role: row.try_get::<String, _>(4)?.parse()?,
        created_by: row.try_get(5)?,
        created_at: row.try_get(6)?,
        expires_at: row.try_get(7)?,
        last_used_at: row.try_get(8)?,
        revoked_at: row.try_get(9)?,
    })
}

/// A space token to create; the server makes the secret and keeps only its hash.
#[derive(Clone, Debug)]
pub struct NewSpaceToken {
    /// Its name.
    pub name: String,
    /// SHA-256 of the token.
    pub hash: Vec<u8>,
    /// The token's first characters.
    pub prefix: String,
    /// What it may do.
    pub role: SpaceRole,
    /// Who creates it.
    pub created_by: Option<i64>,
    /// When it stops working, if ever.
    pub expires_at: Option<i64>,
}

/// Where an installation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstallationStatus {
    /// Serving.
    Active,
    /// Installed but switched off by an admin.
    Disabled,
    /// Should serve but could not load; the reason says why.
    Failed,
}

impl InstallationStatus {
    /// The status's name.
    pub fn as_str(self) -> &'static str {
        match self {
            InstallationStatus::Active => "active",
            InstallationStatus::Disabled => "disabled",
            InstallationStatus::Failed => "failed",
        }
    }
}

impl FromStr for InstallationStatus {
    type Err = DbError;

    fn from_str(text: &str) -> DbResult<InstallationStatus> {
        match text {
            "active" => Ok(InstallationStatus::Active),
            "disabled" => Ok(InstallationStatus::Disabled),
            "failed" => Ok(InstallationStatus::Failed),
            other => Err(DbError::Corrupt(format!(
                "unknown installation status `{other}`"
            ))),
        }
    }
}

/// A plugin installed in a space, as stored (and as written, by [`Database::commit_space`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installation {
    /// The plugin, `namespace/name`.
    pub plugin: String,
    /// What the space asked for; `None` when installed only as a dependency.
    pub requirement: Option<String>,
    /// The version serving (or to serve).
    pub version: String,
    /// Its package digest.
    pub digest: String,
    /// The version before the last update, for rollback.
    pub previous_version: Option<String>,
    /// Its package digest.
    pub previous_digest: Option<String>,
    /// Where it stands.
    pub status: InstallationStatus,
    /// Why it failed (or why its last update did not take).
    pub status_reason: Option<String>,
    /// The config, a JSON object.
    pub config: String,
    /// The permissions consented to, JSON.
    pub granted: String,
}

/// An installation as read back, with its row id and times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallationRecord {
    /// Row id.
    pub id: i64,
    /// The stored fields.
    pub installation: Installation,
    /// When it was installed.
    pub created_at: i64,
    /// When it last changed.
    pub updated_at: i64,
}

macro_rules! installation_select {
    () => {
        "SELECT id, plugin, requirement, version, digest, previous_version, previous_digest, \
         status, status_reason, config, granted, created_at, updated_at FROM installations "
    };
}

fn installation_from_row(row: &AnyRow) -> DbResult<InstallationRecord> {
    Ok(InstallationRecord {
        id: row.try_get(0)?,
        installation: Installation {
            plugin: row.try_get(1)?,
            requirement: row.try_get(2)?,
            version: row.try_get(3)?,
            digest: row.try_get(4)?,
            previous_version: row.try_get(5)?,
            previous_digest: row.try_get(6)?,
            status: row.try_get::<String, _>(7)?.parse()?,
            status_reason: row.try_get(8)?,
            config: row.try_get(9)?,
            granted: row.try_get(10)?,
        },
        created_at: row.try_get(11)?,
        updated_at: row.try_get(12)?,
    })
}

/// Something that happened to an installation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// The plugin.
    pub plugin: String,
    /// What: `installed`, `updated`, `update_failed`, `rolled_back`, `disabled`, `enabled`,
    /// `config_changed`, `secret_set`, `secret_removed`, `uninstalled`, `failed`, `restored`.
    pub kind: String,
    /// The version before, if it changed.
    pub from_version: Option<String>,
    /// The version after, if it changed.
    pub to_version: Option<String>,
    /// Details for people (never a secret's value).
    pub message: Option<String>,
}

/// An event as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallationEvent {
    /// Row id, increasing.
    pub id: i64,
    /// When.
    pub at: i64,
    /// Who, if a user did it.
    pub actor: Option<String>,
    /// The event.
    pub event: NewEvent,
}

/// One change to a space's installations, written in one transaction with its events and
/// audit row: an install, an update, a rollback, an uninstall...
#[derive(Clone, Debug, Default)]
pub struct SpaceChange {
    /// The new lockfile, if it changes.
    pub lockfile: Option<String>,
    /// Installations added or changed.
    pub upserts: Vec<Installation>,
    /// Plugins uninstalled (their secrets go with them).
    pub removals: Vec<String>,
    /// Plugins whose key-value state is deleted.
    pub delete_state: Vec<String>,
    /// What happened, per plugin.
    pub events: Vec<NewEvent>,
    /// The audit log's action (`installation.install`, ...).
    pub action: String,
    /// The audit log's details.
    pub details: serde_json::Value,
}

/// The key-value scope of `plugin`'s installation in space `space_id`: by id, so a renamed
/// space keeps its data.
pub fn installation_scope(space_id: i64, plugin: &str) -> String {
    format!("space:{space_id}/{plugin}")
}

fn space_target(space: &Space) -> String {
    format!("space:{}", space.name)
}

impl Database {
    /// Creates a space owned by `owner_id`, with its wrapped data key.
    #[tracing::instrument(name = "db.create_space", skip_all)]
    pub async fn create_space(
        &self,
        actor: &Actor,
        name: &str,
        owner_id: i64,
        master_key_id: &str,
        wrapped_key: &[u8],
    ) -> DbResult<Space> {
        let mut transaction = self.write().await?;
        let created_at = now_millis();
        let inserted = sqlx::query(
            "INSERT INTO spaces (name, created_at, master_key_id, wrapped_key, lockfile) \
             VALUES ($1, $2, $3, $4, '') RETURNING id",
        )
        .bind(name)
        .bind(created_at)
        .bind(master_key_id)
        .bind(wrapped_key)
        .fetch_one(&mut **transaction)
        .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get(0)?,
            Err(err) if DbError::is_unique_violation(&err) => {
                return Err(DbError::Conflict(format!(
                    "the space `{name}` already exists"
                )));
            }
            Err(err) => return Err(err.into()),
        };
        sqlx::query("INSERT INTO space_members (space_id, user_id, role) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(owner_id)
            .bind(SpaceRole::Owner.as_str())
            .execute(&mut **transaction)
            .await?;
        let space = Space {
            id,
            name: name.to_string(),
            created_at,
            master_key_id: master_key_id.to_string(),
            wrapped_key: wrapped_key.to_vec(),
            lockfile: String::new(),
            require_certified: false,
            require_signed: false,
            revision: 0,
            changed_at: 0,
        };
        record(
            &mut transaction,
            actor,
            "space.create",
            &space_target(&space),
            json!({ "owner_id": owner_id }),
        )
        .await?;
        transaction.commit().await?;
        Ok(space)
    }

    /// The space called `name`.
    #[tracing::instrument(name = "db.space", skip_all)]
    pub async fn space(&self, name: &str) -> DbResult<Option<Space>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            space_columns!(),
            " FROM spaces s WHERE s.name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(space_from_row).transpose()
    }

    /// The space with row id `id`.
    #[tracing::instrument(name = "db.space_by_id", skip_all)]
    pub async fn space_by_id(&self, id: i64) -> DbResult<Option<Space>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            space_columns!(),
            " FROM spaces s WHERE s.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(space_from_row).transpose()
    }

    /// Every space, by name.
    #[tracing::instrument(name = "db.all_spaces", skip_all)]
    pub async fn all_spaces(&self) -> DbResult<Vec<Space>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            space_columns!(),
            " FROM spaces s ORDER BY s.name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(space_from_row).collect()
    }

    /// The spaces `user_id` belongs to, with the role held in each, by name.
    #[tracing::instrument(name = "db.spaces_of", skip_all)]
    pub async fn spaces_of(&self, user_id: i64) -> DbResult<Vec<(Space, SpaceRole)>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            space_columns!(),
            ", m.role FROM spaces s JOIN space_members m ON m.space_id = s.id \
             WHERE m.user_id = $1 ORDER BY s.name"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    space_from_row(row)?,
                    row.try_get::<String, _>(SPACE_COLUMN_COUNT)?.parse()?,
                ))
            })
            .collect()
    }

    /// The role `user_id` holds in the space, if any.
    #[tracing::instrument(name = "db.space_role", skip_all)]
    pub async fn space_role(&self, space_id: i64, user_id: i64) -> DbResult<Option<SpaceRole>> {
        let row =
            sqlx::query("SELECT role FROM space_members WHERE space_id = $1 AND user_id = $2")
                .bind(space_id)
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| row.try_get::<String, _>(0)?.parse())
            .transpose()
    }

    /// Sets the space's trust policy.
    #[tracing::instrument(name = "db.set_space_policy", skip_all)]
    pub async fn set_space_policy(
        &self,
        actor: &Actor,
        space: &Space,
        policy: SpacePolicy,
    ) -> DbResult<()> {
        let mut transaction = self.write().await?;
        sqlx::query("UPDATE spaces SET require_certified = $1, require_signed = $2 WHERE id = $3")
            .bind(i64::from(policy.require_certified))
            .bind(i64::from(policy.require_signed))
            .bind(space.id)
            .execute(&mut **transaction)
            .await?;
        record(
            &mut transaction,
            actor,
            "space.policy",
            &space_target(space),
            json!({
                "require_certified": policy.require_certified,
                "require_signed": policy.require_signed,
            }),
        )
        .await?;
        transaction.commit().await
    }

    /// Renames a space.
    #[tracing::instrument(name = "db.rename_space", skip_all)]
    pub async fn rename_space(&self, actor: &Actor, space: &Space, name: &str) -> DbResult<()> {
        let mut transaction = self.write().await?;
        let renamed = sqlx::query("UPDATE spaces SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(space.id)
            .execute(&mut **transaction)
            .await;
        match renamed {
            Ok(_) => {}
            Err(err) if DbError::is_unique_violation(&err) => {
                return Err(DbError::Conflict(format!(
                    "the space `{name}` already exists"
                )));
            }
            Err(err) => return Err(err.into()),
        }
        record(
            &mut transaction,
            actor,
            "space.rename",
            &space_target(space),
            json!({ "name": name }),
        )
        .await?;
        transaction.commit().await
    }

    /// Deletes a space with everything in it: members, tokens, installations, secrets,
    /// events and its plugins' key-value state.
    #[tracing::instrument(name = "db.delete_space", skip_all)]
    pub async fn delete_space(&self, actor: &Actor, space: &Space) -> DbResult<()> {
        let mut transaction = self.write().await?;
        sqlx::query("DELETE FROM spaces WHERE id = $1")
            .bind(space.id)
            .execute(&mut **transaction)
            .await?;
        self.announce_space(&mut transaction, space.id).await?;
        record(
            &mut transaction,
            actor,
            "space.delete",
            &space_target(space),
            json!({}),
        )
        .await?;
        transaction.commit().await?;
        self.state_clear_space(&format!("space:{}", space.id))
            .await?;
        Ok(())
    }

    /// The space's members and their roles, owners first.
    #[tracing::instrument(name = "db.space_members", skip_all)]
    pub async fn space_members(&self, space_id: i64) -> DbResult<Vec<(String, SpaceRole)>> {
        let rows = sqlx::query(
            "SELECT u.username, m.role FROM space_members m JOIN users u ON u.id = m.user_id \
             WHERE m.space_id = $1 ORDER BY u.username",
        )
        .bind(space_id)
        .fetch_all(&self.pool)
        .await?;
        let mut members = rows
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get::<String, _>(1)?.parse()?)))
            .collect::<DbResult<Vec<(String, SpaceRole)>>>()?;
        members.sort_by_key(|(_, role)| *role);
        Ok(members)
    }

    /// Gives `user_id` the role `role` in the space, or removes them with `None`. The last
    /// owner cannot be removed or demoted.
    #[tracing::instrument(name = "db.set_space_member", skip_all)]
    pub async fn set_space_member(
        &self,
        actor: &Actor,
        space: &Space,
        user_id: i64,
        role: Option<SpaceRole>,
    ) -> DbResult<()> {
        let mut transaction = self.write().await?;
        // Two owners demoting each other at once would each count the other as the owner
        // left: the second waits for the first and counts again.
        crate::lock_row(&mut transaction, crate::Locked::Spaces, space.id).await?;
        let current: Option<String> =
            sqlx::query("SELECT role FROM space_members WHERE space_id = $1 AND user_id = $2")
                .bind(space.id)
                .bind(user_id)
                .fetch_optional(&mut **transaction)
                .await?
                .map(|row| row.try_get(0))
                .transpose()?;
        if current.as_deref() == Some("owner") && role != Some(SpaceRole::Owner) {
            let owners: i64 = sqlx::query(
                "SELECT COUNT(*) FROM space_members WHERE space_id = $1 AND role = 'owner'",
            )
            .bind(space.id)
            .fetch_one(&mut **transaction)
            .await?
            .try_get(0)?;
            if owners <= 1 {
                return Err(DbError::Conflict(format!(
                    "the space `{}` needs at least one owner",
                    space.name
                )));
            }
        }
        sqlx::query("DELETE FROM space_members WHERE space_id = $1 AND user_id = $2")
            .bind(space.id)
            .bind(user_id)
            .execute(&mut **transaction)
            .await?;
        if let Some(role) = role {
            sqlx::query("INSERT INTO space_members (space_id, user_id, role) VALUES ($1, $2, $3)")
                .bind(space.id)
                .bind(user_id)
                .bind(role.as_str())
                .execute(&mut **transaction)
                .await?;
        }
        // A token never holds more than the member who made it: leaving the space revokes
        // their tokens, a lower role those above it.
        let above: &[&str] = match role {
            None => &["owner", "admin", "member", "viewer"],
            Some(SpaceRole::Viewer) => &["owner", "admin", "member"],
            Some(SpaceRole::Member) => &["owner", "admin"],
            Some(SpaceRole::Admin) => &["owner"],
            Some(SpaceRole::Owner) => &[],
        };
        let mut revoked = 0;
        for token_role in above {
            revoked += sqlx::query(
                "UPDATE space_tokens SET revoked_at = $4 \
                 WHERE space_id = $1 AND created_by = $2 AND role = $3 AND revoked_at IS NULL",
            )
            .bind(space.id)
            .bind(user_id)
            .bind(*token_role)
            .bind(now_millis())
            .execute(&mut **transaction)
            .await?
            .rows_affected();
        }
        record(
            &mut transaction,
            actor,
            "space.member",
            &space_target(space),
            json!({
                "user_id": user_id,
                "role": role.map(SpaceRole::as_str),
                "tokens_revoked": revoked,
            }),
        )
        .await?;
        transaction.commit().await
    }

    /// Creates a space token.
    #[tracing::instrument(name = "db.create_space_token", skip_all)]
    pub async fn create_space_token(
        &self,
        actor: &Actor,
        space: &Space,
        token: &NewSpaceToken,
    ) -> DbResult<SpaceToken> {
        let mut transaction = self.write().await?;
        let created_at = now_millis();
        let inserted = sqlx::query(
            "INSERT INTO space_tokens \
             (space_id, name, token_hash, prefix, role, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(space.id)
        .bind(&token.name)
        .bind(&token.hash)
        .bind(&token.prefix)
        .bind(token.role.as_str())
        .bind(token.created_by)
        .bind(created_at)
        .bind(token.expires_at)
        .fetch_one(&mut **transaction)
        .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get(0)?,
            Err(err) if DbError::is_unique_violation(&err) => {
                return Err(DbError::Conflict(format!(
                    "the space already has a token named `{}`",
                    token.name
                )));
            }
            Err(err) => return Err(err.into()),
        };
        record(
            &mut transaction,
            actor,
            "space.token.create",
            &space_target(space),
            json!({ "token_id": id, "name": token.name, "role": token.role.as_str() }),
        )
        .await?;
        transaction.commit().await?;
        let row = sqlx::query(concat!(token_select!(), "WHERE t.id = $1"))
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        token_from_row(&row)
    }

    /// The space's tokens, by name.
    #[tracing::instrument(name = "db.space_tokens", skip_all)]
    pub async fn space_tokens(&self, space_id: i64) -> DbResult<Vec<SpaceToken>> {
        let rows = sqlx::query(concat!(
            token_select!(),
            "WHERE t.space_id = $1 ORDER BY t.name"
        ))
        .bind(space_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// The space token with this hash, whatever its state: the caller checks expiry and
    /// revocation.
    #[tracing::instrument(name = "db.space_token_by_hash", skip_all)]
    pub async fn space_token_by_hash(&self, hash: &[u8]) -> DbResult<Option<SpaceToken>> {
        let row = sqlx::query(concat!(token_select!(), "WHERE t.token_hash = $1"))
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Records that a space token was used now, at most once a minute.
    #[tracing::instrument(name = "db.touch_space_token", skip_all)]
    pub async fn touch_space_token(&self, token: &SpaceToken) -> DbResult<()> {
        let now = now_millis();
        if !crate::use_worth_recording(token.last_used_at, now) {
            return Ok(());
        }
        let mut transaction = self.write().await?;
        sqlx::query("UPDATE space_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(token.id)
            .execute(&mut **transaction)
            .await?;
        transaction.commit().await
    }

    /// Revokes one of the space's tokens.
    #[tracing::instrument(name = "db.revoke_space_token", skip_all)]
    pub async fn revoke_space_token(
        &self,
        actor: &Actor,
        space: &Space,
        token_id: i64,
    ) -> DbResult<()> {
        let mut transaction = self.write().await?;
        let revoked = sqlx::query(
            "UPDATE space_tokens SET revoked_at = $1 \
             WHERE id = $2 AND space_id = $3 AND revoked_at IS NULL",
        )
        .bind(now_millis())
        .bind(token_id)
        .bind(space.id)
        .execute(&mut **transaction)
        .await?;
        if revoked.rows_affected() == 0 {
            return Err(DbError::NotFound("space token"));
        }
        record(
            &mut transaction,
            actor,
            "space.token.revoke",
            &space_target(space),
            json!({ "token_id": token_id }),
        )
        .await?;
        transaction.commit().await
    }

    /// Active installations of `plugin` in every space, per version (any order).
    #[tracing::instrument(name = "db.active_installations", skip_all)]
    pub async fn active_installations(&self, plugin: &str) -> DbResult<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT version, COUNT(*) FROM installations WHERE plugin = $1 AND status = 'active' \
             GROUP BY version",
        )
        .bind(plugin)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }

    /// The space's installations, by plugin name.
    #[tracing::instrument(name = "db.installations", skip_all)]
    pub async fn installations(&self, space_id: i64) -> DbResult<Vec<InstallationRecord>> {
        let rows = sqlx::query(concat!(
            installation_select!(),
            "WHERE space_id = $1 ORDER BY plugin"
        ))
        .bind(space_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(installation_from_row).collect()
    }

    /// One installation of the space.
    #[tracing::instrument(name = "db.installation", skip_all)]
    pub async fn installation(
        &self,
        space_id: i64,
        plugin: &str,
    ) -> DbResult<Option<InstallationRecord>> {
        let row = sqlx::query(concat!(
            installation_select!(),
            "WHERE space_id = $1 AND plugin = $2"
        ))
        .bind(space_id)
        .bind(plugin)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(installation_from_row).transpose()
    }

    /// Writes one change to the space's installations: lockfile, installations added,
    /// changed and removed, key-value state deleted, events and the audit row, all in one
    /// transaction, and answers the space's new revision. The change must have been planned
    /// from `space.revision`: if the space changed since (on another replica), nothing is
    /// written and the answer is [`DbError::SpaceChanged`].
    #[tracing::instrument(name = "db.commit_space", skip_all)]
    pub async fn commit_space(
        &self,
        actor: &Actor,
        space: &Space,
        change: &SpaceChange,
    ) -> DbResult<i64> {
        let mut transaction = self.write().await?;
        let now = now_millis();
        let raised = sqlx::query(
            "UPDATE spaces SET revision = revision + 1, changed_at = $4, \
             lockfile = COALESCE($1, lockfile) WHERE id = $2 AND revision = $3 RETURNING revision",
        )
        .bind(change.lockfile.as_deref())
        .bind(space.id)
        .bind(space.revision)
        .bind(now)
        .fetch_optional(&mut **transaction)
        .await?;
        let revision: i64 = match raised {
            Some(row) => row.try_get(0)?,
            None => return Err(DbError::SpaceChanged(space.name.clone())),
        };
        self.announce_space(&mut transaction, space.id).await?;
        for installation in &change.upserts {
            upsert_installation(&mut transaction, space.id, installation, now).await?;
        }
        for plugin in &change.removals {
            sqlx::query("DELETE FROM installations WHERE space_id = $1 AND plugin = $2")
                .bind(space.id)
                .bind(plugin)
                .execute(&mut **transaction)
                .await?;
        }
        for event in &change.events {
            insert_event(&mut transaction, space.id, actor, event, now).await?;
        }
        record(
            &mut transaction,
            actor,
            &change.action,
            &space_target(space),
            change.details.clone(),
        )
        .await?;
        transaction.commit().await?;
        // Plugins' state may live in a store of its own: it goes once the change has landed
        // (a crash in between leaves the data of an uninstalled plugin, never a plugin
        // without its data).
        for plugin in &change.delete_state {
            self.state_clear(&installation_scope(space.id, plugin))
                .await?;
        }
        Ok(revision)
    }

    /// Tells the other replicas, when the transaction commits, that the space changed: a
    /// PostgreSQL notification on [`SPACE_CHANNEL`] carrying its id. (SQLite serves one
    /// replica; there is no one to tell.)
    async fn announce_space(
        &self,
        transaction: &mut WriteTransaction,
        space_id: i64,
    ) -> DbResult<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(SPACE_CHANNEL)
                .bind(space_id.to_string())
                .execute(&mut ***transaction)
                .await?;
        }
        Ok(())
    }

    /// Every space's id and revision: what a replica compares with what it runs.
    #[tracing::instrument(name = "db.space_revisions", skip_all)]
    pub async fn space_revisions(&self) -> DbResult<Vec<(i64, i64)>> {
        let rows = sqlx::query("SELECT id, revision FROM spaces ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }

    /// A listener for the spaces other replicas change, on PostgreSQL; `None` on SQLite.
    #[tracing::instrument(name = "db.space_listener", skip_all)]
    pub async fn space_listener(&self) -> DbResult<Option<SpaceListener>> {
        let Some(url) = self.postgres_url.as_deref() else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect(url).await?;
        listener.listen(SPACE_CHANNEL).await?;
        Ok(Some(SpaceListener(listener)))
    }

    /// The sealed secrets of an installation, by name.
    #[tracing::instrument(name = "db.installation_secrets", skip_all)]
    pub async fn installation_secrets(
        &self,
        installation_id: i64,
    ) -> DbResult<Vec<(String, Vec<u8>)>> {
        let rows = sqlx::query(
            "SELECT name, sealed FROM installation_secrets WHERE installation_id = $1 ORDER BY name",
        )
        .bind(installation_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }

    /// Sets (`Some`) or removes (`None`) one sealed secret of an installation, with its event
    /// and audit row (which name the secret, never its value).
    #[tracing::instrument(name = "db.set_installation_secret", skip_all)]
    pub async fn set_installation_secret(
        &self,
        actor: &Actor,
        space: &Space,
        installation: &InstallationRecord,
        name: &str,
        sealed: Option<&[u8]>,
    ) -> DbResult<()> {
        let mut transaction = self.write().await?;
        let now = now_millis();
        let kind = match sealed {
            Some(sealed) => {
                sqlx::query(
                    "INSERT INTO installation_secrets (installation_id, name, sealed, updated_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (installation_id, name) \
                     DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
                )
                .bind(installation.id)
                .bind(name)
                .bind(sealed)
                .bind(now)
                .execute(&mut **transaction)
                .await?;
                "secret_set"
            }
            None => {
                let removed = sqlx::query(
                    "DELETE FROM installation_secrets WHERE installation_id = $1 AND name = $2",
                )
                .bind(installation.id)
                .bind(name)
                .execute(&mut **transaction)
                .await?;
                if removed.rows_affected() == 0 {
                    return Err(DbError::NotFound("secret"));
                }
                "secret_removed"
            }
        };
        let plugin = &installation.installation.plugin;
        let event = NewEvent {
            plugin: plugin.clone(),
            kind: kind.to_string(),
            from_version: None,
            to_version: None,
            message: Some(format!("secret `{name}`")),
        };
        insert_event(&mut transaction, space.id, actor, &event, now).await?;
        record(
            &mut transaction,
            actor,
            &format!("installation.{kind}"),
            &space_target(space),
            json!({ "plugin": plugin, "secret": name }),
        )
        .await?;
        transaction.commit().await
    }

    /// The installation's events, newest first.
    #[tracing::instrument(name = "db.installation_events", skip_all)]
    pub async fn installation_events(
        &self,
        space_id: i64,
        plugin: &str,
        limit: i64,
    ) -> DbResult<Vec<InstallationEvent>> {
        let rows = sqlx::query(
            "SELECT e.id, e.at, u.username, e.plugin, e.kind, e.from_version, e.to_version, \
             e.message FROM installation_events e LEFT JOIN users u ON u.id = e.actor_id \
             WHERE e.space_id = $1 AND e.plugin = $2 ORDER BY e.id DESC LIMIT $3",
        )
        .bind(space_id)
        .bind(plugin)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(InstallationEvent {
                    id: row.try_get(0)?,
                    at: row.try_get(1)?,
                    actor: row.try_get(2)?,
                    event: NewEvent {
                        plugin: row.try_get(3)?,
                        kind: row.try_get(4)?,
                        from_version: row.try_get(5)?,
                        to_version: row.try_get(6)?,
                        message: row.try_get(7)?,
                    },
                })
            })
            .collect()
    }

    /// The master keys that wrap some space's data key, by id.
    #[tracing::instrument(name = "db.master_keys_in_use", skip_all)]
    pub async fn master_keys_in_use(&self) -> DbResult<Vec<String>> {
        let rows = sqlx::query("SELECT DISTINCT master_key_id FROM spaces ORDER BY master_key_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
    }

    /// Replaces every given space's wrapped data key, in one transaction: a master key
    /// rotation either re-wraps them all or none.
    #[tracing::instrument(name = "db.rewrap_space_keys", skip_all)]
    pub async fn rewrap_space_keys(
        &self,
        actor: &Actor,
        keys: &[(i64, String, Vec<u8>)],
        master_key_id: &str,
    ) -> DbResult<()> {
        let mut transaction = self.write().await?;
        for (space_id, key_id, wrapped) in keys {
            sqlx::query("UPDATE spaces SET master_key_id = $1, wrapped_key = $2 WHERE id = $3")
                .bind(key_id)
                .bind(wrapped)
                .bind(space_id)
                .execute(&mut **transaction)
                .await?;
        }
        record(
            &mut transaction,
            actor,
            "server.rotate_master_key",
            "server",
            json!({ "master_key_id": master_key_id, "spaces": keys.len() }),
        )
        .await?;
        transaction.commit().await
    }
}

async fn upsert_installation(
    transaction: &mut WriteTransaction,
    space_id: i64,
    installation: &Installation,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO installations (space_id, plugin, requirement, version, digest, \
         previous_version, previous_digest, status, status_reason, config, granted, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) \
         ON CONFLICT (space_id, plugin) DO UPDATE SET requirement = excluded.requirement, \
         version = excluded.version, digest = excluded.digest, \
         previous_version = excluded.previous_version, previous_digest = excluded.previous_digest, \
         status = excluded.status, status_reason = excluded.status_reason, \
         config = excluded.config, granted = excluded.granted, updated_at = excluded.updated_at",
    )
    .bind(space_id)
    .bind(&installation.plugin)
    .bind(installation.requirement.as_deref())
    .bind(&installation.version)
    .bind(&installation.digest)
    .bind(installation.previous_version.as_deref())
    .bind(installation.previous_digest.as_deref())
    .bind(installation.status.as_str())
    .bind(installation.status_reason.as_deref())
    .bind(&installation.config)
    .bind(&installation.granted)
    .bind(now)
    .execute(&mut ***transaction)
    .await?;
    Ok(())
}

async fn insert_event(
    transaction: &mut WriteTransaction,
    space_id: i64,
    actor: &Actor,
    event: &NewEvent,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO installation_events \
         (space_id, plugin, at, actor_id, kind, from_version, to_version, message) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(space_id)
    .bind(&event.plugin)
    .bind(now)
    .bind(actor.user_id)
    .bind(&event.kind)
    .bind(event.from_version.as_deref())
    .bind(event.to_version.as_deref())
    .bind(event.message.as_deref())
    .execute(&mut ***transaction)
    .await?;
    Ok(())
}
