//! Envelope encryption for installation secrets.
//!
//! Each space has a random [`DataKey`]; secrets are sealed with it (XChaCha20-Poly1305, a
//! random 192-bit nonce per value) with their place — space, installation, name — as
//! associated data, so a sealed value copied to another row does not open. Data keys are
//! stored wrapped (sealed) by the server's master key. A [`Keyring`] holds the master keys:
//! the first seals, every one opens, so that rotating to a new key is: put it first, re-wrap
//! every data key, drop the old one.
//!
//! Key text is `aerie-master-key-1:` and 32 bytes in base64, one key per line (or separated
//! by commas in an environment variable); `#` starts a comment.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead as _, Payload};
use chacha20poly1305::{KeyInit as _, XChaCha20Poly1305, XNonce};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

const KEY_PREFIX: &str = "aerie-master-key-1:";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Why keys could not be read or a value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The key text is not what [`MasterKey::to_text`] writes.
    #[error("master key {position}: {message}")]
    BadKey {
        /// Which key (1-based, in the order given).
        position: usize,
        /// What is wrong.
        message: String,
    },
    /// No key was given.
    #[error("no master key is given")]
    NoKey,
    /// A data key is wrapped by a master key the keyring does not hold.
    #[error("the data key is wrapped by master key {0}, which is not in the keyring")]
    UnknownMasterKey(String),
    /// The value does not open with this key and place: tampered, moved or wrongly keyed.
    #[error("the sealed value does not open: it was altered, moved, or sealed with another key")]
    Corrupt,
}

/// 32 random bytes that seal (and open) values.
#[derive(Clone)]
struct Key(Zeroizing<[u8; 32]>);

impl Key {
    fn random() -> Key {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(bytes.as_mut());
        Key(bytes)
    }

    fn seal(&self, plaintext: &[u8], place: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new(self.0.as_ref().into());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: place,
                },
            )
            .expect("sealing in memory does not fail");
        [nonce.as_slice(), &sealed].concat()
    }

    fn open(&self, sealed: &[u8], place: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Corrupt);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new(self.0.as_ref().into());
        cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: place,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::Corrupt)
    }
}

/// A server master key.
#[derive(Clone)]
pub struct MasterKey {
    key: Key,
    id: String,
}

impl MasterKey {
    /// A new random key.
    pub fn generate() -> MasterKey {
        MasterKey::from_key(Key::random())
    }

    fn from_key(key: Key) -> MasterKey {
        // An identifier that names the key without revealing it.
        let id = hex::encode(
            &Sha256::digest([b"aerie master key id:".as_slice(), key.0.as_ref()].concat())[..8],
        );
        MasterKey { key, id }
    }

    /// Its identifier, stored beside each data key it wraps.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A 32-byte key for `purpose`, derived from this one (HMAC-SHA256 of the purpose under
    /// it): other uses, such as signing short-lived credentials, never use the master key
    /// itself, and each purpose gets a key of its own.
    pub fn derive(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        use hmac::Mac as _;
        let mut mac = <hmac::Hmac<Sha256> as hmac::Mac>::new_from_slice(self.key.0.as_ref())
            .expect("HMAC takes a key of any length");
        mac.update(b"aerie derived key:");
        mac.update(purpose.as_bytes());
        Zeroizing::new(mac.finalize().into_bytes().into())
    }

    /// The key as text, for a key file or an environment variable.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{KEY_PREFIX}{}",
            STANDARD.encode(self.key.0.as_ref())
        ))
    }

    fn parse(text: &str, position: usize) -> Result<MasterKey, SealError> {
        let bad = |message: &str| SealError::BadKey {
            position,
            message: message.to_string(),
        };
        let encoded = text
            .strip_prefix(KEY_PREFIX)
            .ok_or_else(|| bad(&format!("expected `{KEY_PREFIX}` followed by base64")))?;
        let bytes = Zeroizing::new(
            STANDARD
                .decode(encoded)
                .map_err(|_| bad("the part after the prefix is not base64"))?,
        );
        let bytes: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| bad(&format!("expected 32 bytes, got {}", bytes.len())))?;
        Ok(MasterKey::from_key(Key(Zeroizing::new(bytes))))
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

/// The master keys: the first wraps, all unwrap.
#[derive(Debug)]
pub struct Keyring {
    keys: Vec<MasterKey>,
}

/// A data key as stored: wrapped by a master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The master key that wrapped it.
    pub master_key_id: String,
    /// The sealed key.
    pub sealed: Vec<u8>,
}

/// A space's data key, in memory only.
pub struct DataKey(Key);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl Keyring {
    /// A keyring of `keys`, the first wrapping.
    pub fn new(keys: Vec<MasterKey>) -> Result<Keyring, SealError> {
        if keys.is_empty() {
            return Err(SealError::NoKey);
        }
        Ok(Keyring { keys })
    }

    /// Reads keys from text: one per line or comma-separated, `#` comments, blank lines
    /// ignored.
    pub fn parse(text: &str) -> Result<Keyring, SealError> {
        let keys = text
            .lines()
            .map(|line| line.split('#').next().unwrap_or(""))
            .flat_map(|line| line.split(','))
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .enumerate()
            .map(|(index, key)| MasterKey::parse(key, index + 1))
            .collect::<Result<Vec<_>, _>>()?;
        Keyring::new(keys)
    }

    /// The key that wraps.
    pub fn primary(&self) -> &MasterKey {
        &self.keys[0]
    }

    /// Every key, the primary first.
    pub fn keys(&self) -> &[MasterKey] {
        &self.keys
    }

    /// The keyring as key-file text.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::from(
            "# Aerie master keys: the first wraps new data keys, every one unwraps.\n",
        ));
        for key in &self.keys {
            text.push_str(&key.to_text());
            text.push('\n');
        }
        text
    }

    /// A new data key for `owner` (a space), wrapped by the primary key.
    pub fn new_data_key(&self, owner: &str) -> (DataKey, WrappedKey) {
        let key = DataKey(Key::random());
        let wrapped = self.wrap(&key, owner);
        (key, wrapped)
    }

    /// `key` wrapped by the primary master key, bound to `owner`.
    pub fn wrap(&self, key: &DataKey, owner: &str) -> WrappedKey {
        let primary = self.primary();
        WrappedKey {
            master_key_id: primary.id.clone(),
            sealed: primary.key.seal(key.0.0.as_ref(), &wrap_place(owner)),
        }
    }

    /// Unwraps a data key of `owner`.
    pub fn unwrap(&self, wrapped: &WrappedKey, owner: &str) -> Result<DataKey, SealError> {
        let master = self
            .keys
            .iter()
            .find(|key| key.id == wrapped.master_key_id)
            .ok_or_else(|| SealError::UnknownMasterKey(wrapped.master_key_id.clone()))?;
        let bytes = master.key.open(&wrapped.sealed, &wrap_place(owner))?;
        let bytes: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| SealError::Corrupt)?;
        Ok(DataKey(Key(Zeroizing::new(bytes))))
    }
}

fn wrap_place(owner: &str) -> Vec<u8> {
    format!("aerie data key for {owner}").into_bytes()
}

impl DataKey {
    /// Seals `value`, bound to `place` (what the value is: its space, installation and name).
    pub fn seal(&self, value: &[u8], place: &str) -> Vec<u8> {
        self.0.seal(value, place.as_bytes())
    }

    /// Opens a value sealed for `place`.
    pub fn open(&self, sealed: &[u8], place: &str) -> Result<Zeroizing<Vec<u8>>, SealError> {
        self.0.open(sealed, place.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_in_its_place_with_its_key() {
        let keyring = Keyring::new(vec![MasterKey::generate()]).unwrap();
        let (key, _) = keyring.new_data_key("space 1");
        let sealed = key.seal(b"s3cret", "space 1/acme/a/token");
        assert!(!sealed.windows(6).any(|window| window == b"s3cret"));
        assert_eq!(
            key.open(&sealed, "space 1/acme/a/token")
                .unwrap()
                .as_slice(),
            b"s3cret"
        );
        assert_eq!(
            key.open(&sealed, "space 1/acme/a/other").unwrap_err(),
            SealError::Corrupt
        );
        let (other, _) = keyring.new_data_key("space 1");
        assert_eq!(
            other.open(&sealed, "space 1/acme/a/token").unwrap_err(),
            SealError::Corrupt
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(
            key.open(&tampered, "space 1/acme/a/token").unwrap_err(),
            SealError::Corrupt
        );
        assert_eq!(
            key.open(&sealed[..10], "space 1/acme/a/token").unwrap_err(),
            SealError::Corrupt
        );
        // Two seals of one value differ (fresh nonces).
        assert_ne!(sealed, key.seal(b"s3cret", "space 1/acme/a/token"));
    }

    #[test]
    fn rotation_rewraps_with_the_new_key_and_old_wraps_need_the_old_key() {
        let old = Keyring::new(vec![MasterKey::generate()]).unwrap();
        let (key, wrapped) = old.new_data_key("space 7");
        let sealed = key.seal(b"value", "place");

        let both = Keyring::parse(&format!(
            "{}\n{}",
            MasterKey::generate().to_text().as_str(),
            old.primary().to_text().as_str()
        ))
        .unwrap();
        let unwrapped = both.unwrap(&wrapped, "space 7").unwrap();
        let rewrapped = both.wrap(&unwrapped, "space 7");
        assert_eq!(rewrapped.master_key_id, both.primary().id());
        assert_ne!(rewrapped.master_key_id, wrapped.master_key_id);

        let new_only = Keyring::parse(both.primary().to_text().as_str()).unwrap();
        let reopened = new_only.unwrap(&rewrapped, "space 7").unwrap();
        assert_eq!(
            reopened.open(&sealed, "place").unwrap().as_slice(),
            b"value"
        );
        assert_eq!(
            new_only.unwrap(&wrapped, "space 7").unwrap_err(),
            SealError::UnknownMasterKey(wrapped.master_key_id.clone())
        );
        // A wrapped key is bound to its space.
        assert_eq!(
            new_only.unwrap(&rewrapped, "space 8").unwrap_err(),
            SealError::Corrupt
        );
    }

    #[test]
    fn key_text_round_trips_and_bad_text_is_refused_with_the_reason() {
        let keyring = Keyring::new(vec![MasterKey::generate(), MasterKey::generate()]).unwrap();
        let parsed = Keyring::parse(&keyring.to_text()).unwrap();
        let ids = |keyring: &Keyring| -> Vec<String> {
            keyring
                .keys()
                .iter()
                .map(|key| key.id().to_string())
                .collect()
        };
        assert_eq!(ids(&parsed), ids(&keyring));
        let comma = format!(
            "{}, {}",
            keyring.keys()[0].to_text().as_str(),
            keyring.keys()[1].to_text().as_str()
        );
        assert_eq!(ids(&Keyring::parse(&comma).unwrap()), ids(&keyring));

        assert_eq!(
            Keyring::parse("# nothing\n\n").unwrap_err(),
            SealError::NoKey
        );
        let cases = [
            ("secret", "expected `aerie-master-key-1:`"),
            ("aerie-master-key-1:!!!", "not base64"),
            ("aerie-master-key-1:AAAA", "expected 32 bytes, got 3"),
        ];
        for (text, expected) in cases {
            let err = Keyring::parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(err.starts_with("master key 1:"), "{err}");
        }
        // Debug output never shows key material.
        let debug = format!("{keyring:?}");
        assert!(!debug.contains(&keyring.primary().to_text()[KEY_PREFIX.len()..]));
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_by_master_key_and_are_stable() {
        let key = MasterKey::generate();
        let again = Keyring::parse(&key.to_text()).unwrap().primary().clone();
        assert_eq!(*key.derive("a"), *again.derive("a"));
        assert_ne!(*key.derive("a"), *key.derive("b"));
        assert_ne!(*key.derive("a"), *MasterKey::generate().derive("a"));
        assert_ne!(key.derive("a").as_slice(), key.key.0.as_slice());
    }
}
