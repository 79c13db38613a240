//! Users, browser sessions and API tokens. Secrets (passwords, session and token values) are
//! stored only as hashes computed by the caller.

use serde_json::json;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::audit::{Actor, record};
use crate::{Database, DbError, DbResult, json_list, now_millis};

/// A user account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Unique login name.
    pub username: String,
    /// Contact address, if given.
    pub email: Option<String>,
    /// The argon2id hash of the password (PHC string).
    pub password_hash: String,
    /// Whether the user administers the server.
    pub is_admin: bool,
    /// Creation time.
    pub created_at: i64,
}

/// The columns `user_from_row` reads, from `users u`.
macro_rules! user_columns {
    () => {
        "u.id, u.username, u.email, u.password_hash, u.is_admin, u.created_at"
    };
}

fn user_from_row(row: &AnyRow, offset: usize) -> DbResult<User> {
    Ok(User {
        id: row.try_get(offset)?,
        username: row.try_get(offset + 1)?,
        email: row.try_get(offset + 2)?,
        password_hash: row.try_get(offset + 3)?,
        is_admin: row.try_get::<i64, _>(offset + 4)? != 0,
        created_at: row.try_get(offset + 5)?,
    })
}

/// How often a session's last use is written, at most.
const SESSION_SEEN_EVERY_MS: i64 = 5 * 60 * 1000;

/// Where a browser session was begun.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionOrigin {
    /// The client's address.
    pub ip: Option<String>,
    /// The browser's `User-Agent`, shortened.
    pub user_agent: Option<String>,
}

/// A browser session, as its user sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// Row id.
    pub id: i64,
    /// When it began.
    pub created_at: i64,
    /// When it ends.
    pub expires_at: i64,
    /// When it was last used (written every few minutes at most).
    pub last_seen_at: Option<i64>,
    /// Where it began.
    pub origin: SessionOrigin,
}

/// An API token's record; its secret value is never stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    /// Row id.
    pub id: i64,
    /// The owner.
    pub user_id: i64,
    /// The owner's label for it, unique per owner.
    pub name: String,
    /// The first characters of the secret, to recognise it in listings.
    pub prefix: String,
    /// What it may do.
    pub scopes: Vec<String>,
    /// The namespaces it is limited to; `None` for all the owner's namespaces.
    pub namespaces: Option<Vec<String>>,
    /// Creation time.
    pub created_at: i64,
    /// When it stops working, if ever.
    pub expires_at: Option<i64>,
    /// When it was last used (updated at most once a minute).
    pub last_used_at: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// The columns `token_from_row` reads, from `api_tokens t`.
macro_rules! token_columns {
    () => {
        "t.id, t.user_id, t.name, t.prefix, t.scopes, t.namespaces, t.created_at, t.expires_at, \
         t.last_used_at, t.revoked_at"
    };
}

fn token_from_row(row: &AnyRow) -> DbResult<ApiToken> {
    let namespaces: Option<String> = row.try_get(5)?;
    Ok(ApiToken {
        id: row.try_get(0)?,
        user_id: row.try_get(1)?,
        name: row.try_get(2)?,
        prefix: row.try_get(3)?,
        scopes: json_list(&row.try_get::<String, _>(4)?)?,
        namespaces: namespaces.as_deref().map(json_list).transpose()?,
        created_at: row.try_get(6)?,
        expires_at: row.try_get(7)?,
        last_used_at: row.try_get(8)?,
        revoked_at: row.try_get(9)?,
    })
}

/// A token to create.
#[derive(Clone, Debug)]
pub struct NewToken {
    /// The owner.
    pub user_id: i64,
    /// The owner's label.
    pub name: String,
    /// The SHA-256 of the secret value.
    pub hash: Vec<u8>,
    /// The first characters of the secret.
    pub prefix: String,
    /// What it may do.
    pub scopes: Vec<String>,
    /// The namespaces it is limited to, if any.
    pub namespaces: Option<Vec<String>>,
    /// When it stops working, if ever.
    pub expires_at: Option<i64>,
}

impl Database {
    /// Creates a user. Fails with [`DbError::Conflict`] if the name is taken.
    #[tracing::instrument(name = "db.create_user", skip_all)]
    pub async fn create_user(
        &self,
        actor: &Actor,
        username: &str,
        email: Option<&str>,
        password_hash: &str,
        is_admin: bool,
    ) -> DbResult<User> {
        let mut transaction = self.write().await?;
        let created_at = now_millis();
        let inserted = sqlx::query(
            "INSERT INTO users (username, email, password_hash, is_admin, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(username)
        .bind(email)
        .bind(password_hash)
        .bind(i64::from(is_admin))
        .bind(created_at)
        .fetch_one(&mut **transaction)
        .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get(0)?,
            Err(err) if DbError::is_unique_violation(&err) => {
                return Err(DbError::Conflict(format!(
                    "the user name `{username}` is taken"
                )));
            }
            Err(err) => return Err(err.into()),
        };
        let actor = Actor {
            user_id: actor.user_id.or(Some(id)),
            ..actor.clone()
        };
        record(
            &mut transaction,
            &actor,
            "user.create",
            &format!("user:{username}"),
            json!({ "admin": is_admin }),
        )
        .await?;
        transaction.commit().await?;
        Ok(User {
            id,
            username: username.to_string(),
            email: email.map(String::from),
            password_hash: password_hash.to_string(),
            is_admin,
            created_at,
        })
    }

    /// The user called `username`.
    #[tracing::instrument(name = "db.user_by_name", skip_all)]
    pub async fn user_by_name(&self, username: &str) -> DbResult<Option<User>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u WHERE u.username = $1"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| user_from_row(&row, 0)).transpose()
    }

    /// Users whose name starts with `prefix` (letters, digits and `-` only, as names are), by
    /// name, after `after` (a name, for paging), at most `limit`.
    #[tracing::instrument(name = "db.users", skip_all)]
    pub async fn users(&self, prefix: &str, after: &str, limit: i64) -> DbResult<Vec<User>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u WHERE u.username LIKE $1 AND u.username > $2 \
             ORDER BY u.username LIMIT $3"
        ))
        .bind(format!("{prefix}%"))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| user_from_row(row, 0)).collect()
    }

    /// How many users exist.
    #[tracing::instrument(name = "db.count_users", skip_all)]
    pub async fn count_users(&self) -> DbResult<i64> {
        Ok(sqlx::query("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    /// Records a refused sign-in for `username` (which may name no user) and why.
    #[tracing::instrument(name = "db.record_failed_login", skip_all)]
    pub async fn record_failed_login(
        &self,
        actor: &Actor,
        username: &str,
        reason: &str,
    ) -> DbResult<()> {
        let mut transaction = self.write().await?;
        record(
            &mut transaction,
            actor,
            "session.login_failed",
            &format!("user:{username}"),
            json!({ "reason": reason }),
        )
        .await?;
        transaction.commit().await
    }

    /// Stores a session whose cookie value hashes to `hash`, begun from `origin`.
    #[tracing::instrument(name = "db.create_session", skip_all)]
    pub async fn create_session(
        &self,
        user_id: i64,
        hash: &[u8],
        expires_at: i64,
        origin: &SessionOrigin,
    ) -> DbResult<()> {
        let mut transaction = self.write().await?;
        let now = now_millis();
        sqlx::query(
            "INSERT INTO sessions (user_id, token_hash, created_at, expires_at, last_seen_at, ip, user_agent) \
             VALUES ($1, $2, $3, $4, $3, $5, $6)",
        )
        .bind(user_id)
        .bind(hash.to_vec())
        .bind(now)
        .bind(expires_at)
        .bind(origin.ip.clone())
        .bind(origin.user_agent.clone())
        .execute(&mut **transaction)
        .await?;
        transaction.commit().await
    }

    /// The unexpired session whose cookie value hashes to `hash`: its id and its user. Its
    /// last use is written at most every few minutes, so a busy session does not write on
    /// every request.
    #[tracing::instrument(name = "db.session_user", skip_all)]
    pub async fn session_user(&self, hash: &[u8]) -> DbResult<Option<(i64, User)>> {
        let now = now_millis();
        let row = sqlx::query(concat!(
            "SELECT s.id, s.last_seen_at, ",
            user_columns!(),
            " FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2"
        ))
        .bind(hash.to_vec())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (id, last_seen): (i64, Option<i64>) = (row.try_get(0)?, row.try_get(1)?);
        if last_seen.is_none_or(|seen| now - seen > SESSION_SEEN_EVERY_MS) {
            let mut transaction = self.write().await?;
            sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(&mut **transaction)
                .await?;
            transaction.commit().await?;
        }
        Ok(Some((id, user_from_row(&row, 2)?)))
    }

    /// The user of the unexpired session with row id `id`.
    #[tracing::instrument(name = "db.session_user_by_id", skip_all)]
    pub async fn session_user_by_id(&self, id: i64) -> DbResult<Option<User>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id = $1 AND s.expires_at > $2"
        ))
        .bind(id)
        .bind(now_millis())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| user_from_row(&row, 0)).transpose()
    }

    /// The unexpired sessions of `user_id`, newest first.
    #[tracing::instrument(name = "db.sessions_of", skip_all)]
    pub async fn sessions_of(&self, user_id: i64) -> DbResult<Vec<Session>> {
        let rows = sqlx::query(
            "SELECT id, created_at, expires_at, last_seen_at, ip, user_agent FROM sessions \
             WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at DESC, id DESC",
        )
        .bind(user_id)
        .bind(now_millis())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Session {
                    id: row.try_get(0)?,
                    created_at: row.try_get(1)?,
                    expires_at: row.try_get(2)?,
                    last_seen_at: row.try_get(3)?,
                    origin: SessionOrigin {
                        ip: row.try_get(4)?,
                        user_agent: row.try_get(5)?,
                    },
                })
            })
            .collect()
    }

    /// Ends sessions of `user_id`: the one with row id `only`, or all of them but `keep`.
    /// Returns how many ended; recorded in the audit log.
    #[tracing::instrument(name = "db.end_sessions", skip_all)]
    pub async fn end_sessions(
        &self,
        actor: &Actor,
        user_id: i64,
        only: Option<i64>,
        keep: Option<i64>,
    ) -> DbResult<u64> {
        let mut transaction = self.write().await?;
        let ended = sqlx::query(
            "DELETE FROM sessions WHERE user_id = $1 \
             AND ($2 IS NULL OR id = $2) AND ($3 IS NULL OR id <> $3)",
        )
        .bind(user_id)
        .bind(only)
        .bind(keep)
        .execute(&mut **transaction)
        .await?
        .rows_affected();
        record(
            &mut transaction,
            actor,
            "session.end",
            &format!("user:{user_id}"),
            json!({ "sessions": ended, "session": only, "kept": keep }),
        )
        .await?;
        transaction.commit().await?;
        Ok(ended)
    }

    /// Replaces `user_id`'s password hash and ends every session but `keep`, in one
    /// transaction with its audit row.
    #[tracing::instrument(name = "db.change_password", skip_all)]
    pub async fn change_password(
        &self,
        actor: &Actor,
        user_id: i64,
        hash: &str,
        keep: Option<i64>,
    ) -> DbResult<()> {
        let mut transaction = self.write().await?;
        sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(user_id)
            .bind(hash)
            .execute(&mut **transaction)
            .await?;
        let ended =
            sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND ($2 IS NULL OR id <> $2)")
                .bind(user_id)
                .bind(keep)
                .execute(&mut **transaction)
                .await?
                .rows_affected();
        record(
            &mut transaction,
            actor,
            "user.password",
            &format!("user:{user_id}"),
            json!({ "sessions_ended": ended }),
        )
        .await?;
        transaction.commit().await
    }

    /// Ends the session whose cookie value hashes to `hash`.
    #[tracing::instrument(name = "db.delete_session", skip_all)]
    pub async fn delete_session(&self, hash: &[u8]) -> DbResult<()> {
        let mut transaction = self.write().await?;
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1 OR expires_at <= $2")
            .bind(hash.to_vec())
            .bind(now_millis())
            .execute(&mut **transaction)
            .await?;
        transaction.commit().await
    }

    /// Creates an API token. Fails with [`DbError::Conflict`] if the owner already has a
    /// token with that name.
    #[tracing::instrument(name = "db.create_token", skip_all)]
    pub async fn create_token(&self, actor: &Actor, token: &NewToken) -> DbResult<ApiToken> {
        let mut transaction = self.write().await?;
        let created_at = now_millis();
        let scopes = serde_json::to_string(&token.scopes).expect("strings serialise");
        let namespaces = token
            .namespaces
            .as_ref()
            .map(|list| serde_json::to_string(list).expect("strings serialise"));
        let inserted = sqlx::query(
            "INSERT INTO api_tokens \
             (user_id, name, token_hash, prefix, scopes, namespaces, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(token.user_id)
        .bind(&token.name)
        .bind(token.hash.clone())
        .bind(&token.prefix)
        .bind(scopes)
        .bind(namespaces)
        .bind(created_at)
        .bind(token.expires_at)
        .fetch_one(&mut **transaction)
        .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get(0)?,
            Err(err) if DbError::is_unique_violation(&err) => {
                return Err(DbError::Conflict(format!(
                    "you already have a token named `{}`",
                    token.name
                )));
            }
            Err(err) => return Err(err.into()),
        };
        record(
            &mut transaction,
            actor,
            "token.create",
            &format!("token:{id}"),
            json!({
                "name": token.name,
                "scopes": token.scopes,
                "namespaces": token.namespaces,
                "expires_at": token.expires_at,
            }),
        )
        .await?;
        transaction.commit().await?;
        Ok(ApiToken {
            id,
            user_id: token.user_id,
            name: token.name.clone(),
            prefix: token.prefix.clone(),
            scopes: token.scopes.clone(),
            namespaces: token.namespaces.clone(),
            created_at,
            expires_at: token.expires_at,
            last_used_at: None,
            revoked_at: None,
        })
    }

    /// The token whose secret hashes to `hash`, with its owner, whatever its state: the caller
    /// decides what an expired or revoked token means.
    #[tracing::instrument(name = "db.token_by_hash", skip_all)]
    pub async fn token_by_hash(&self, hash: &[u8]) -> DbResult<Option<(ApiToken, User)>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            token_columns!(),
            ", ",
            user_columns!(),
            " FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1"
        ))
        .bind(hash.to_vec())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok((token_from_row(&row)?, user_from_row(&row, 10)?)))
            .transpose()
    }

    /// Records a use of the token, at most once a minute so that reads stay reads.
    #[tracing::instrument(name = "db.touch_token", skip_all)]
    pub async fn touch_token(&self, token: &ApiToken) -> DbResult<()> {
        let now = now_millis();
        if !crate::use_worth_recording(token.last_used_at, now) {
            return Ok(());
        }
        let mut transaction = self.write().await?;
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(token.id)
            .execute(&mut **transaction)
            .await?;
        transaction.commit().await
    }

    /// The user's tokens, newest first, revoked ones included.
    #[tracing::instrument(name = "db.tokens_of", skip_all)]
    pub async fn tokens_of(&self, user_id: i64) -> DbResult<Vec<ApiToken>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            token_columns!(),
            " FROM api_tokens t WHERE t.user_id = $1 ORDER BY t.id DESC"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Revokes the user's token `token_id`. Revoking twice is not an error.
    #[tracing::instrument(name = "db.revoke_token", skip_all)]
    pub async fn revoke_token(&self, actor: &Actor, user_id: i64, token_id: i64) -> DbResult<()> {
        let mut transaction = self.write().await?;
        let updated = sqlx::query(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) \
             WHERE id = $2 AND user_id = $3",
        )
        .bind(now_millis())
        .bind(token_id)
        .bind(user_id)
        .execute(&mut **transaction)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(DbError::NotFound("token"));
        }
        record(
            &mut transaction,
            actor,
            "token.revoke",
            &format!("token:{token_id}"),
            json!({}),
        )
        .await?;
        transaction.commit().await
    }
}
