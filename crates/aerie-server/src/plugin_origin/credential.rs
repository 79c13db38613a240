//! The credential that carries a signed-in user from the API's origin to one space's plugin
//! origin: never the Aerie session or an API token, valid for that one origin only, and short
//! lived.
//!
//! A user opening a plugin page through the API's origin (`/s/SPACE/...`) is sent on with a
//! [`Kind::Ticket`] (valid a minute) in the URL; the plugin origin trades it for a
//! [`Kind::Cookie`] (valid an hour), a host-only cookie of its own. Both say only "browser
//! session N, for the plugin origin of space S, until T", signed with a key derived from the
//! master key. The session and the user's role in the space are looked up again on every
//! request, so signing out, or losing one's membership, ends access at once. A credential of
//! one space does not verify on another's origin.

use aerie_core::sealed::Keyring;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use sha2::Sha256;

/// The host-only cookie that holds a [`Kind::Cookie`] credential on a plugin origin served
/// over HTTPS (the `__Host-` prefix: no `Domain`, so no sibling origin can set it).
pub const SECURE_COOKIE: &str = "__Host-aerie_plugin";
/// The same cookie on a plugin origin served over plain HTTP, where `__Host-` is not allowed.
pub const COOKIE: &str = "aerie_plugin";

/// The path on a plugin origin that trades a ticket for the cookie.
pub const SESSION_PATH: &str = "/.aerie/session";

/// Which credential, and so how long it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// In a URL, from the API's origin to the plugin origin: traded at once for a cookie.
    Ticket,
    /// The plugin origin's own cookie.
    Cookie,
}

impl Kind {
    /// How long a credential of this kind is valid, in milliseconds.
    pub fn lifetime_ms(self) -> i64 {
        match self {
            Kind::Ticket => 60_000,
            Kind::Cookie => 3_600_000,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Ticket => "ticket",
            Kind::Cookie => "cookie",
        }
    }
}

/// What a valid credential says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    /// The browser session (its row id) on the API's origin.
    pub session_id: i64,
    /// When it stops being valid (milliseconds since the epoch).
    pub expires_at: i64,
}

const PURPOSE: &str = "plugin-origin-credential";

/// The MAC of a credential's claims, under the key derived from the master key `key_id`,
/// ready to finish or to check; `None` when the keyring does not hold that key.
fn mac(
    keyring: &Keyring,
    key_id: &str,
    kind: Kind,
    space: &str,
    claims: Claims,
) -> Option<hmac::Hmac<Sha256>> {
    let key = keyring.keys().iter().find(|key| key.id() == key_id)?;
    let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(key.derive(PURPOSE).as_slice())
        .expect("HMAC takes a key of any length");
    mac.update(
        format!(
            "{}\n{space}\n{}\n{}",
            kind.label(),
            claims.session_id,
            claims.expires_at
        )
        .as_bytes(),
    );
    Some(mac)
}

/// A credential of `kind` for `session_id` on the plugin origin of `space`, valid from `now`
/// (milliseconds since the epoch).
pub fn sign(keyring: &Keyring, kind: Kind, space: &str, session_id: i64, now: i64) -> String {
    let claims = Claims {
        session_id,
        expires_at: now + kind.lifetime_ms(),
    };
    let key_id = keyring.primary().id();
    let mac = mac(keyring, key_id, kind, space, claims)
        .expect("the primary key is in its keyring")
        .finalize()
        .into_bytes();
    format!(
        "{key_id}.{}.{}.{}",
        claims.session_id,
        claims.expires_at,
        URL_SAFE_NO_PAD.encode(mac)
    )
}

/// What `text` says, if it is a credential of `kind` for the plugin origin of `space` that is
/// still valid at `now`.
pub fn verify(keyring: &Keyring, kind: Kind, space: &str, text: &str, now: i64) -> Option<Claims> {
    let mut parts = text.split('.');
    let (Some(key_id), Some(session_id), Some(expires_at), Some(given), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let claims = Claims {
        session_id: session_id.parse().ok()?,
        expires_at: expires_at.parse().ok()?,
    };
    let given = URL_SAFE_NO_PAD.decode(given).ok()?;
    // `verify_slice` compares in constant time.
    mac(keyring, key_id, kind, space, claims)?
        .verify_slice(&given)
        .ok()?;
    (now < claims.expires_at && claims.expires_at - now <= kind.lifetime_ms()).then_some(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aerie_core::sealed::MasterKey;

    fn keyring() -> Keyring {
        Keyring::new(vec![MasterKey::generate()]).unwrap()
    }

    #[test]
    fn a_credential_verifies_only_for_its_kind_space_and_lifetime() {
        let keys = keyring();
        let now = 1_000_000;
        let ticket = sign(&keys, Kind::Ticket, "team", 7, now);
        let claims = verify(&keys, Kind::Ticket, "team", &ticket, now + 59_000).unwrap();
        assert_eq!(claims.session_id, 7);
        assert_eq!(
            verify(&keys, Kind::Ticket, "team", &ticket, now + 60_000),
            None
        );
        assert_eq!(verify(&keys, Kind::Cookie, "team", &ticket, now), None);
        assert_eq!(verify(&keys, Kind::Ticket, "other", &ticket, now), None);
        assert_eq!(verify(&keyring(), Kind::Ticket, "team", &ticket, now), None);
        let cookie = sign(&keys, Kind::Cookie, "team", 7, now);
        assert!(verify(&keys, Kind::Cookie, "team", &cookie, now + 3_599_000).is_some());
    }

    #[test]
    fn a_changed_credential_does_not_verify() {
        let keys = keyring();
        let ticket = sign(&keys, Kind::Cookie, "team", 7, 0);
        let parts: Vec<&str> = ticket.split('.').collect();
        let forged = [
            format!("{}.8.{}.{}", parts[0], parts[2], parts[3]),
            format!("{}.7.{}.{}", parts[0], 99_999_999_999i64, parts[3]),
            format!("{}.7.{}.{}", parts[0], parts[2], "AAAA"),
            format!("{}.7.{}", parts[0], parts[2]),
            format!("{ticket}.x"),
            String::new(),
        ];
        for text in forged {
            assert_eq!(
                verify(&keys, Kind::Cookie, "team", &text, 1),
                None,
                "{text}"
            );
        }
    }

    #[test]
    fn a_credential_signed_before_a_rotation_verifies_while_the_old_key_is_held() {
        let old = MasterKey::generate();
        let before = Keyring::new(vec![old.clone()]).unwrap();
        let during = Keyring::new(vec![MasterKey::generate(), old]).unwrap();
        let cookie = sign(&before, Kind::Cookie, "team", 7, 0);
        assert!(verify(&during, Kind::Cookie, "team", &cookie, 1).is_some());
    }
}
