//! What the host needs from its embedder: durable key-value state and secrets. The server
//! implements these over its database; the host knows nothing of how they are stored.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

/// A failure of the embedder's store, shown to the plugin as a store error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// One page of keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPage {
    /// Keys in ascending order.
    pub keys: Vec<String>,
    /// Where the next page starts, when there is one.
    pub cursor: Option<u64>,
}

/// Durable key-value state, scoped: `scope` is the installation's id, so no installation sees
/// another's data, and the state outlives versions of the plugin.
#[async_trait]
pub trait KeyValue: Send + Sync + 'static {
    /// The value of `key`, if set.
    async fn get(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets `key` to `value`.
    async fn set(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), StoreError>;
    /// Removes `key`; removing an absent key succeeds.
    async fn delete(&self, scope: &str, bucket: &str, key: &str) -> Result<(), StoreError>;
    /// The keys in ascending order, `limit` at a time, starting at the offset `cursor`.
    async fn list_keys(
        &self,
        scope: &str,
        bucket: &str,
        cursor: u64,
        limit: u32,
    ) -> Result<KeyPage, StoreError>;
    /// Adds `delta` to the counter at `key` (decimal text; absent is 0) atomically and returns
    /// the new value.
    async fn increment(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
        delta: u64,
    ) -> Result<u64, StoreError>;
}

/// The installations' secrets.
#[async_trait]
pub trait Secrets: Send + Sync + 'static {
    /// The value of the secret `name` of the installation `scope`, if set.
    async fn get(&self, scope: &str, name: &str) -> Result<Option<String>, StoreError>;
}

/// Key-value state in memory, for `aerie dev` and `aerie run --ephemeral`: it survives version
/// swaps but not the process.
#[derive(Default)]
pub struct MemoryKeyValue {
    entries: Mutex<BTreeMap<(String, String, String), Vec<u8>>>,
}

impl MemoryKeyValue {
    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String, String), Vec<u8>>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn entry_key(scope: &str, bucket: &str, key: &str) -> (String, String, String) {
    (scope.to_owned(), bucket.to_owned(), key.to_owned())
}

#[async_trait]
impl KeyValue for MemoryKeyValue {
    async fn get(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.entries().get(&entry_key(scope, bucket, key)).cloned())
    }

    async fn set(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.entries().insert(entry_key(scope, bucket, key), value);
        Ok(())
    }

    async fn delete(&self, scope: &str, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.entries().remove(&entry_key(scope, bucket, key));
        Ok(())
    }

    async fn list_keys(
        &self,
        scope: &str,
        bucket: &str,
        cursor: u64,
        limit: u32,
    ) -> Result<KeyPage, StoreError> {
        let entries = self.entries();
        let all: Vec<String> = entries
            .keys()
            .filter(|(s, b, _)| s == scope && b == bucket)
            .map(|(_, _, key)| key.clone())
            .collect();
        Ok(page_of(all, cursor, limit))
    }

    async fn increment(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
        delta: u64,
    ) -> Result<u64, StoreError> {
        let mut entries = self.entries();
        let slot = entries.entry(entry_key(scope, bucket, key)).or_default();
        let next = parse_counter(slot)?
            .checked_add(delta)
            .ok_or_else(|| StoreError(format!("the counter `{key}` would overflow")))?;
        *slot = next.to_string().into_bytes();
        Ok(next)
    }
}

/// One page of `keys` (sorted) from offset `cursor`.
fn page_of(keys: Vec<String>, cursor: u64, limit: u32) -> KeyPage {
    let start = usize::try_from(cursor).unwrap_or(usize::MAX);
    let end = start.saturating_add(limit as usize);
    let total = keys.len();
    let keys: Vec<String> = keys.into_iter().skip(start).take(limit as usize).collect();
    KeyPage {
        keys,
        cursor: (end < total).then_some(end as u64),
    }
}

/// A counter's stored value: decimal text, and empty for a counter never set.
fn parse_counter(bytes: &[u8]) -> Result<u64, StoreError> {
    if bytes.is_empty() {
        return Ok(0);
    }
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .ok_or_else(|| StoreError("the value is not a counter (decimal text)".into()))
}

/// Secrets given up front, for `aerie dev` and `aerie run` (from the environment).
#[derive(Default)]
pub struct StaticSecrets(pub HashMap<String, String>);

#[async_trait]
impl Secrets for StaticSecrets {
    async fn get(&self, _scope: &str, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self.0.get(name).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_every_key_once() {
        let keys: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
        let first = page_of(keys.clone(), 0, 2);
        assert_eq!(first.keys, ["k0", "k1"]);
        assert_eq!(first.cursor, Some(2));
        let last = page_of(keys.clone(), 4, 2);
        assert_eq!(last.keys, ["k4"]);
        assert_eq!(last.cursor, None);
        assert_eq!(page_of(keys, 9, 2).keys, Vec::<String>::new());
    }

    #[test]
    fn counters_are_decimal_text() {
        assert_eq!(parse_counter(b"").unwrap(), 0);
        assert_eq!(parse_counter(b"41").unwrap(), 41);
        assert!(parse_counter(b"forty").is_err());
    }
}
