//! Durable key-value state scoped to the installation (`wasi:keyvalue`).
//!
//! Every installation has its own store; it survives restarts and updates and is removed on
//! uninstall unless the administrator keeps the data. Using it requires
//! `permissions.keyvalue = true` in the manifest.
//!
//! ```no_run
//! let store = aerie_sdk::kv::Store::open().unwrap();
//! let visits = store.increment("visits", 1).unwrap();
//! store.set_json("last-visit", &visits).unwrap();
//! ```

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::imports::wasi::keyvalue::{atomics, batch, store};

/// Why a key-value operation failed.
#[derive(Debug)]
pub enum KvError {
    /// The host refused access: the manifest lacks `permissions.keyvalue`.
    AccessDenied,
    /// The host's storage failed; the message says how.
    Storage(String),
    /// A stored value is not the JSON the caller asked for.
    Decode(String),
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::AccessDenied => f.write_str("key-value access denied"),
            KvError::Storage(message) => write!(f, "key-value storage failed: {message}"),
            KvError::Decode(message) => write!(f, "stored value is not valid JSON: {message}"),
        }
    }
}

impl std::error::Error for KvError {}

impl From<store::Error> for KvError {
    fn from(err: store::Error) -> KvError {
        match err {
            store::Error::AccessDenied => KvError::AccessDenied,
            store::Error::NoSuchStore => KvError::Storage("no such store".to_string()),
            store::Error::Other(message) => KvError::Storage(message),
        }
    }
}

/// The installation's key-value store.
pub struct Store {
    bucket: store::Bucket,
}

impl Store {
    /// Opens the installation's store.
    pub fn open() -> Result<Store, KvError> {
        // The host scopes every bucket to the installation; "default" is the one the SDK uses.
        Ok(Store {
            bucket: store::open("default")?,
        })
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.bucket.get(key)?)
    }

    /// Sets `key` to `value`.
    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        Ok(self.bucket.set(key, value)?)
    }

    /// Removes `key`; removing a missing key is not an error.
    pub fn delete(&self, key: &str) -> Result<(), KvError> {
        Ok(self.bucket.delete(key)?)
    }

    /// Whether `key` is set.
    pub fn exists(&self, key: &str) -> Result<bool, KvError> {
        Ok(self.bucket.exists(key)?)
    }

    /// Every key in the store.
    pub fn keys(&self) -> Result<Vec<String>, KvError> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.bucket.list_keys(cursor)?;
            keys.extend(page.keys);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(keys),
            }
        }
    }

    /// Atomically adds `delta` to the number stored at `key` (missing counts as 0) and returns
    /// the new value.
    pub fn increment(&self, key: &str, delta: u64) -> Result<u64, KvError> {
        Ok(atomics::increment(&self.bucket, key, delta)?)
    }

    /// The values of `keys`, in order; `None` for a missing key.
    pub fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        let found = batch::get_many(&self.bucket, keys)?;
        Ok(found
            .into_iter()
            .map(|entry| entry.map(|(_, value)| value))
            .collect())
    }

    /// Sets every pair in one call.
    pub fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        Ok(batch::set_many(&self.bucket, pairs)?)
    }

    /// The value of `key` decoded from JSON, if set.
    pub fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, KvError> {
        match self.get(key)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|err| KvError::Decode(format!("{key}: {err}"))),
            None => Ok(None),
        }
    }

    /// Sets `key` to `value` encoded as JSON.
    pub fn set_json<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), KvError> {
        let bytes = serde_json::to_vec(value).expect("a Serialize value renders as JSON");
        self.set(key, &bytes)
    }
}
