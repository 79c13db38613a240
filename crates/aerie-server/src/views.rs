//! Database records as the API shows them.

use std::time::{Duration, UNIX_EPOCH};

use aerie_api_types::{AuditEntryView, KeyView, TokenView, UserView, VersionSummary, VersionView};
use aerie_db::{ApiToken, AuditEntry, PublisherKey, User, VersionRecord};

use crate::state::AppState;

/// Unix milliseconds as RFC 3339, to the millisecond.
pub fn time(millis: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(millis.max(0) as u64);
    humantime::format_rfc3339_millis(at).to_string()
}

/// Days since 1970-01-01 as `YYYY-MM-DD`.
pub fn date(day: i64) -> String {
    time(day * 86_400_000)[..10].to_string()
}

/// A user as the API shows them.
pub fn user(user: &User) -> UserView {
    UserView {
        username: user.username.clone(),
        is_admin: user.is_admin,
        created_at: time(user.created_at),
    }
}

/// An API token as the API shows it (never its secret).
pub fn token(token: &ApiToken) -> TokenView {
    TokenView {
        id: token.id,
        name: token.name.clone(),
        prefix: token.prefix.clone(),
        scopes: token.scopes.clone(),
        namespaces: token.namespaces.clone(),
        created_at: time(token.created_at),
        expires_at: token.expires_at.map(time),
        last_used_at: token.last_used_at.map(time),
        revoked_at: token.revoked_at.map(time),
    }
}

/// A publisher key as the API shows it.
pub fn key(key: &PublisherKey) -> KeyView {
    KeyView {
        key_id: key.key_id.clone(),
        public_key: key.public_key.clone(),
        added_by: key.added_by.clone(),
        created_at: time(key.created_at),
        revoked_at: key.revoked_at.map(time),
    }
}

/// The version of `versions` the catalogue shows: the one rule of [`aerie_core::shown`].
pub fn shown<'a>(
    versions: impl IntoIterator<Item = &'a VersionRecord>,
) -> Option<&'a VersionRecord> {
    aerie_core::shown::shown(versions, |record| (record.version.as_str(), record.yanked))
}

/// A version's stored manifest, typed. One that does not read is a fault of this server's
/// store, not of the request.
pub fn manifest(record: &VersionRecord) -> crate::error::ApiResult<aerie_core::manifest::Manifest> {
    aerie_core::manifest::Manifest::from_stored(&record.manifest).map_err(|err| {
        crate::error::ApiError::internal(format!(
            "the stored manifest of {}/{} {} does not read: {err}",
            record.namespace, record.name, record.version
        ))
    })
}

/// The API path of a version.
pub fn version_path(record: &VersionRecord) -> String {
    format!(
        "/api/v1/plugins/{}/{}/{}",
        record.namespace, record.name, record.version
    )
}

/// A version as the API shows it, with its download and signature URLs.
pub fn version(state: &AppState, record: &VersionRecord) -> VersionView {
    let base = format!("{}{}", state.config.public_url(), version_path(record));
    VersionView {
        name: format!("{}/{}", record.namespace, record.name),
        version: record.version.clone(),
        digest: record.digest.clone(),
        size: record.size,
        published_at: time(record.published_at),
        publisher: record.publisher.clone(),
        yanked: record.yanked,
        deprecated: record.deprecated.clone(),
        signing_key_id: record.signing_key_id.clone(),
        manifest: serde_json::from_str(&record.manifest).unwrap_or(serde_json::Value::Null),
        download_url: format!("{base}/download"),
        signature_url: record
            .signature
            .as_ref()
            .map(|_| format!("{base}/signature")),
        certification: record.certification.clone(),
    }
}

/// A version as a list of versions shows it.
pub fn version_summary(record: &VersionRecord) -> VersionSummary {
    VersionSummary {
        version: record.version.clone(),
        digest: record.digest.clone(),
        size: record.size,
        published_at: time(record.published_at),
        yanked: record.yanked,
        deprecated: record.deprecated.clone(),
        certification: record.certification.clone(),
    }
}

/// An audit log entry as the API shows it.
pub fn audit(entry: AuditEntry) -> AuditEntryView {
    AuditEntryView {
        id: entry.id,
        at: time(entry.at),
        actor: entry.actor,
        token_id: entry.token_id,
        ip: entry.ip,
        action: entry.action,
        target: entry.target,
        details: entry.details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_and_days_are_dates() {
        assert_eq!(time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(time(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(date(20_000), "2024-10-04");
    }
}
