//! Namespaces (organisations), their members and their publisher keys.

use std::fmt;
use std::str::FromStr;

use serde_json::json;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::audit::{Actor, record};
use crate::{Database, DbError, DbResult, now_millis};

/// A namespace: the first part of every plugin name it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    /// Row id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Whether every version published here must carry a signature by a registered key.
    pub require_signature: bool,
    /// Whether only members (and tokens allowed to read private plugins) see it.
    pub private: bool,
    /// Creation time.
    pub created_at: i64,
}

fn namespace_from_row(row: &AnyRow) -> DbResult<Namespace> {
    Ok(Namespace {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        require_signature: row.try_get::<i64, _>(2)? != 0,
        private: row.try_get::<i64, _>(3)? != 0,
        created_at: row.try_get(4)?,
    })
}

/// A member's role in a namespace, from most to least powerful.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Manages members, keys and settings; publishes and yanks.
    Owner,
    /// Publishes and yanks.
    Maintainer,
    /// Reads what the namespace holds.
    Member,
}

impl Role {
    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Maintainer => "maintainer",
            Role::Member => "member",
        }
    }

    /// Whether this role may do what `needed` may.
    pub fn at_least(self, needed: Role) -> bool {
        self <= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = DbError;

    fn from_str(text: &str) -> DbResult<Role> {
        match text {
            "owner" => Ok(Role::Owner),
            "maintainer" => Ok(Role::Maintainer),
            "member" => Ok(Role::Member),
            other => Err(DbError::Corrupt(format!("unknown role `{other}`"))),
        }
    }
}

/// A publisher key registered on a namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublisherKey {
    /// Row id.
    pub id: i64,
    /// minisign's key id (16 hex digits).
    pub key_id: String,
    /// The public key, minisign's base64 line.
    pub public_key: String,
    /// Who added it.
    pub added_by: String,
    /// When.
    pub created_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

impl Database {
    /// Creates a namespace owned by `owner_id`.
    #[tracing::instrument(name = "db.create_namespace", skip_all)]
    pub async fn create_namespace(
        &self,
        actor: &Actor,
        name: &str,
        owner_id: i64,
        require_signature: bool,
        private: bool,
    ) -> DbResult<Namespace> {
        let mut transaction = self.write().await?;
        let created_at = now_millis();
        let inserted = sqlx::query(
            "INSERT INTO namespaces (name, require_signature, private, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(name)
        .bind(i64::from(require_signature))
        .bind(i64::from(private))
        .bind(created_at)
        .fetch_one(&mut **transaction)
        .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get(0)?,
            Err(err) if DbError::is_unique_violation(&err) => {
                return Err(DbError::Conflict(format!(
                    "the namespace `{name}` already exists"
                )));
            }
            Err(err) => return Err(err.into()),
        };
        sqlx::query(
            "INSERT INTO namespace_members (namespace_id, user_id, role) VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(owner_id)
        .bind(Role::Owner.as_str())
        .execute(&mut **transaction)
        .await?;
        record(
            &mut transaction,
            actor,
            "namespace.create",
            &format!("namespace:{name}"),
            json!({ "owner_id": owner_id, "require_signature": require_signature, "private": private }),
        )
        .await?;
        transaction.commit().await?;
        Ok(Namespace {
            id,
            name: name.to_string(),
            require_signature,
            private,
            created_at,
        })
    }

    /// The namespace called `name`.
    #[tracing::instrument(name = "db.namespace", skip_all)]
    pub async fn namespace(&self, name: &str) -> DbResult<Option<Namespace>> {
        let row = sqlx::query(
            "SELECT id, name, require_signature, private, created_at FROM namespaces WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(namespace_from_row).transpose()
    }

    /// The namespaces `user_id` belongs to, with the role held in each.
    #[tracing::instrument(name = "db.namespaces_of", skip_all)]
    pub async fn namespaces_of(&self, user_id: i64) -> DbResult<Vec<(Namespace, Role)>> {
        let rows = sqlx::query(
            "SELECT n.id, n.name, n.require_signature, n.private, n.created_at, m.role \
             FROM namespaces n JOIN namespace_members m ON m.namespace_id = n.id \
             WHERE m.user_id = $1 ORDER BY n.name",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    namespace_from_row(row)?,
                    row.try_get::<String, _>(5)?.parse()?,
                ))
            })
            .collect()
    }

    /// The role `user_id` holds in the namespace, if any.
    #[tracing::instrument(name = "db.role_in", skip_all)]
    pub async fn role_in(&self, namespace_id: i64, user_id: i64) -> DbResult<Option<Role>> {
        let row = sqlx::query(
            "SELECT role FROM namespace_members WHERE namespace_id = $1 AND user_id = $2",
        )
        .bind(namespace_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| row.try_get::<String, _>(0)?.parse())
            .transpose()
    }

    /// The namespace's members and their roles, owners first.
    #[tracing::instrument(name = "db.members", skip_all)]
    pub async fn members(&self, namespace_id: i64) -> DbResult<Vec<(String, Role)>> {
        let rows = sqlx::query(
            "SELECT u.username, m.role FROM namespace_members m JOIN users u ON u.id = m.user_id \
             WHERE m.namespace_id = $1 ORDER BY u.username",
        )
        .bind(namespace_id)
        .fetch_all(&self.pool)
        .await?;
        let mut members = rows
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get::<String, _>(1)?.parse()?)))
            .collect::<DbResult<Vec<(String, Role)>>>()?;
        members.sort_by_key(|(_, role)| *role);
        Ok(members)
    }

    /// Gives `user_id` the role `role` in the namespace, or removes them with `None`. The last
    /// owner cannot be removed or demoted.
    #[tracing::instrument(name = "db.set_member", skip_all)]
    pub async fn set_member(
        &self,
        actor: &Actor,
        namespace: &Namespace,
        user_id: i64,
        role: Option<Role>,
    ) -> DbResult<()> {
        let mut transaction = self.write().await?;
        // Two owners demoting each other at once would each count the other as the owner
        // left: the second waits for the first and counts again.
        crate::lock_row(&mut transaction, crate::Locked::Namespaces, namespace.id).await?;
        let current: Option<String> = sqlx::query(
            "SELECT role FROM namespace_members WHERE namespace_id = $1 AND user_id = $2",
        )
        .bind(namespace.id)
        .bind(user_id)
        .fetch_optional(&mut **transaction)
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
        if current.as_deref() == Some("owner") && role != Some(Role::Owner) {
            let owners: i64 = sqlx::query(
                "SELECT COUNT(*) FROM namespace_members WHERE namespace_id = $1 AND role = 'owner'",
            )
            .bind(namespace.id)
            .fetch_one(&mut **transaction)
            .await?
            .try_get(0)?;
            if owners <= 1 {
                return Err(DbError::Conflict(format!(
                    "the namespace `{}` needs at least one owner",
                    namespace.name
                )));
            }
        }
        sqlx::query("DELETE FROM namespace_members WHERE namespace_id = $1 AND user_id = $2")
            .bind(namespace.id)
            .bind(user_id)
            .execute(&mut **transaction)
            .await?;
        if let Some(role) = role {
            sqlx::query(
                "INSERT INTO namespace_members (namespace_id, user_id, role) VALUES ($1, $2, $3)",
            )
            .bind(namespace.id)
            .bind(user_id)
            .bind(role.as_str())
            .execute(&mut **transaction)
            .await?;
        }
        record(
            &mut transaction,
            actor,
            "namespace.member",
            &format!("namespace:{}", namespace.name),
            json!({ "user_id": user_id, "role": role.map(Role::as_str) }),
        )
        .await?;
        transaction.commit().await
    }

    /// Changes the namespace's settings: signature policy and visibility.
    #[tracing::instrument(name = "db.update_namespace", skip_all)]
    pub async fn update_namespace(
        &self,
        actor: &Actor,
        namespace: &Namespace,
        require_signature: bool,
        private: bool,
    ) -> DbResult<()> {
        let mut transaction = self.write().await?;
        sqlx::query("UPDATE namespaces SET require_signature = $1, private = $2 WHERE id = $3")
            .bind(i64::from(require_signature))
            .bind(i64::from(private))
            .bind(namespace.id)
            .execute(&mut **transaction)
            .await?;
        if private != namespace.private {
            // Who may see its plugins changed: search shows them, or stops.
            sqlx::query(
                "INSERT INTO catalog_changes (plugin_id, at) \
                 SELECT id, $1 FROM plugins WHERE namespace_id = $2",
            )
            .bind(now_millis())
            .bind(namespace.id)
            .execute(&mut **transaction)
            .await?;
        }
        record(
            &mut transaction,
            actor,
            "namespace.update",
            &format!("namespace:{}", namespace.name),
            json!({ "require_signature": require_signature, "private": private }),
        )
        .await?;
        transaction.commit().await
    }

    /// The names of the plugins in the namespace, sorted.
    #[tracing::instrument(name = "db.plugins_in", skip_all)]
    pub async fn plugins_in(&self, namespace_id: i64) -> DbResult<Vec<String>> {
        let rows = sqlx::query("SELECT name FROM plugins WHERE namespace_id = $1 ORDER BY name")
            .bind(namespace_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
    }

    /// Registers a publisher key on the namespace.
    #[tracing::instrument(name = "db.add_key", skip_all)]
    pub async fn add_key(
        &self,
        actor: &Actor,
        namespace: &Namespace,
        key_id: &str,
        public_key: &str,
        added_by: i64,
    ) -> DbResult<()> {
        let mut transaction = self.write().await?;
        let inserted = sqlx::query(
            "INSERT INTO publisher_keys (namespace_id, key_id, public_key, added_by, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(namespace.id)
        .bind(key_id)
        .bind(public_key)
        .bind(added_by)
        .bind(now_millis())
        .execute(&mut **transaction)
        .await;
        match inserted {
            Ok(_) => {}
            Err(err) if DbError::is_unique_violation(&err) => {
                return Err(DbError::Conflict(format!(
                    "the key {key_id} is already registered on `{}`",
                    namespace.name
                )));
            }
            Err(err) => return Err(err.into()),
        }
        record(
            &mut transaction,
            actor,
            "key.add",
            &format!("namespace:{}", namespace.name),
            json!({ "key_id": key_id }),
        )
        .await?;
        transaction.commit().await
    }

    /// The namespace's keys, revoked ones included.
    #[tracing::instrument(name = "db.keys", skip_all)]
    pub async fn keys(&self, namespace_id: i64) -> DbResult<Vec<PublisherKey>> {
        let rows = sqlx::query(
            "SELECT k.id, k.key_id, k.public_key, u.username, k.created_at, k.revoked_at \
             FROM publisher_keys k JOIN users u ON u.id = k.added_by \
             WHERE k.namespace_id = $1 ORDER BY k.id",
        )
        .bind(namespace_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PublisherKey {
                    id: row.try_get(0)?,
                    key_id: row.try_get(1)?,
                    public_key: row.try_get(2)?,
                    added_by: row.try_get(3)?,
                    created_at: row.try_get(4)?,
                    revoked_at: row.try_get(5)?,
                })
            })
            .collect()
    }

    /// Revokes the key `key_id`: versions signed with it stay, new ones are refused.
    #[tracing::instrument(name = "db.revoke_key", skip_all)]
    pub async fn revoke_key(
        &self,
        actor: &Actor,
        namespace: &Namespace,
        key_id: &str,
    ) -> DbResult<()> {
        let mut transaction = self.write().await?;
        let updated = sqlx::query(
            "UPDATE publisher_keys SET revoked_at = COALESCE(revoked_at, $1) \
             WHERE namespace_id = $2 AND key_id = $3",
        )
        .bind(now_millis())
        .bind(namespace.id)
        .bind(key_id)
        .execute(&mut **transaction)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(DbError::NotFound("key"));
        }
        record(
            &mut transaction,
            actor,
            "key.revoke",
            &format!("namespace:{}", namespace.name),
            json!({ "key_id": key_id }),
        )
        .await?;
        transaction.commit().await
    }
}
