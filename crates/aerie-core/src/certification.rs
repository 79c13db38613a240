//! Certification of published versions: the states a version moves through, who may move it,
//! and the registry's signature on a certified version.
//!
//! ```text
//!            submit              start_review            certify
//! (none) ───────────▶ submitted ─────────────▶ in_review ────────▶ certified
//!    rejected ──────▶     │                        │                   │
//!    (resubmit)           └──────── reject ────────┴───── reject ──────┴──▶ rejected
//! ```
//!
//! A publisher submits; only server admins move a version on. Rejecting a certified version
//! withdraws its certification. The registry signs a certified version's statement,
//! `aerie-certified NAMESPACE/NAME@VERSION DIGEST`, with its own minisign key, so a host checks
//! a certification against the registry's public key rather than trusting a database flag:
//!
//! ```text
//! printf 'aerie-certified acme/hello@0.1.0 sha256:9f86...' > statement
//! minisign -Vm statement -p registry.pub -x certification.minisig
//! ```

use std::fmt;
use std::str::FromStr;

use semver::Version;

use crate::digest::Digest;
use crate::name::PluginName;
use crate::signature::{
    PublicKey, SecretKey, SignatureError, VerifiedSignature, sign_message, verify_message,
};

/// Where a version is in certification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificationState {
    /// Waiting for an admin.
    Submitted,
    /// An admin is reviewing it.
    InReview,
    /// Certified and signed by the registry.
    Certified,
    /// Rejected, or its certification withdrawn; it may be submitted again.
    Rejected,
}

impl CertificationState {
    /// Every state, in workflow order.
    pub const ALL: [CertificationState; 4] = [
        CertificationState::Submitted,
        CertificationState::InReview,
        CertificationState::Certified,
        CertificationState::Rejected,
    ];

    /// The state's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            CertificationState::Submitted => "submitted",
            CertificationState::InReview => "in_review",
            CertificationState::Certified => "certified",
            CertificationState::Rejected => "rejected",
        }
    }
}

impl fmt::Display for CertificationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CertificationState {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        by_name(
            &CertificationState::ALL,
            CertificationState::as_str,
            "state",
            text,
        )
    }
}

/// A step in the workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificationAction {
    /// Ask for certification (the version's publishers).
    Submit,
    /// Take a submitted version into review (admins).
    StartReview,
    /// Certify a version in review (admins).
    Certify,
    /// Reject a submitted or reviewed version, or withdraw a certification (admins).
    Reject,
}

impl CertificationAction {
    /// Every action, in workflow order.
    pub const ALL: [CertificationAction; 4] = [
        CertificationAction::Submit,
        CertificationAction::StartReview,
        CertificationAction::Certify,
        CertificationAction::Reject,
    ];

    /// Whether only server admins may take this step.
    pub fn needs_admin(self) -> bool {
        self != CertificationAction::Submit
    }

    /// The action's name as the API takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            CertificationAction::Submit => "submit",
            CertificationAction::StartReview => "start_review",
            CertificationAction::Certify => "certify",
            CertificationAction::Reject => "reject",
        }
    }
}

impl FromStr for CertificationAction {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        by_name(
            &CertificationAction::ALL,
            CertificationAction::as_str,
            "action",
            text,
        )
    }
}

/// The one of `all` whose `name` is `text`, or a message naming them all.
fn by_name<T: Copy>(
    all: &[T],
    name: fn(T) -> &'static str,
    kind: &str,
    text: &str,
) -> Result<T, String> {
    all.iter()
        .copied()
        .find(|item| name(*item) == text)
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|item| name(*item)).collect();
            let (last, others) = names.split_last().expect("a kind has names");
            format!(
                "unknown certification {kind} `{text}`: use {} or {last}",
                others.join(", ")
            )
        })
}

/// A step the workflow does not allow from the version's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", transition_message(*.action, *.from))]
pub struct TransitionError {
    /// The step asked for.
    pub action: CertificationAction,
    /// The version's state (`None`: never submitted).
    pub from: Option<CertificationState>,
}

fn transition_message(action: CertificationAction, from: Option<CertificationState>) -> String {
    let now = match from {
        None => "it has not been submitted".to_string(),
        Some(state) => format!("it is {}", state.as_str().replace('_', " ")),
    };
    let allowed = match action {
        CertificationAction::Submit => "a version is submitted when it is new or rejected",
        CertificationAction::StartReview => "only a submitted version is taken into review",
        CertificationAction::Certify => "only a version in review is certified",
        CertificationAction::Reject => {
            "only a submitted, in-review or certified version is rejected"
        }
    };
    format!(
        "cannot {} this version: {now}; {allowed}",
        action.as_str().replace('_', " ")
    )
}

/// The state `action` leads to from `from`, or why it is not allowed.
pub fn transition(
    from: Option<CertificationState>,
    action: CertificationAction,
) -> Result<CertificationState, TransitionError> {
    use CertificationAction as A;
    use CertificationState as S;
    match (from, action) {
        (None | Some(S::Rejected), A::Submit) => Ok(S::Submitted),
        (Some(S::Submitted), A::StartReview) => Ok(S::InReview),
        (Some(S::InReview), A::Certify) => Ok(S::Certified),
        (Some(S::Submitted | S::InReview | S::Certified), A::Reject) => Ok(S::Rejected),
        _ => Err(TransitionError { action, from }),
    }
}

/// What the registry signs when it certifies `name@version` with package `digest`.
pub fn statement(name: &PluginName, version: &Version, digest: &Digest) -> String {
    format!("aerie-certified {name}@{version} {digest}")
}

/// The registry's signature on the certification of `name@version` (the `.minisig` text).
pub fn sign(
    name: &PluginName,
    version: &Version,
    digest: &Digest,
    registry_key: &SecretKey,
) -> Result<String, SignatureError> {
    let statement = statement(name, version, digest);
    sign_message(statement.as_bytes(), &statement, registry_key)
}

/// Checks that `signature` is the registry's certification of `name@version` with package
/// `digest`.
pub fn verify(
    name: &PluginName,
    version: &Version,
    digest: &Digest,
    signature: &str,
    registry_key: &PublicKey,
) -> Result<VerifiedSignature, SignatureError> {
    let statement = statement(name, version, digest);
    verify_message(statement.as_bytes(), signature, registry_key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::generate_keys;

    #[test]
    fn the_workflow_moves_only_along_its_arrows() {
        use CertificationAction as A;
        use CertificationState as S;
        let states = [
            None,
            Some(S::Submitted),
            Some(S::InReview),
            Some(S::Certified),
            Some(S::Rejected),
        ];
        let actions = [A::Submit, A::StartReview, A::Certify, A::Reject];
        let mut allowed = Vec::new();
        for from in states {
            for action in actions {
                if let Ok(to) = transition(from, action) {
                    allowed.push((from, action, to));
                }
            }
        }
        assert_eq!(
            allowed,
            [
                (None, A::Submit, S::Submitted),
                (Some(S::Submitted), A::StartReview, S::InReview),
                (Some(S::Submitted), A::Reject, S::Rejected),
                (Some(S::InReview), A::Certify, S::Certified),
                (Some(S::InReview), A::Reject, S::Rejected),
                (Some(S::Certified), A::Reject, S::Rejected),
                (Some(S::Rejected), A::Submit, S::Submitted),
            ]
        );
    }

    #[test]
    fn a_refused_step_says_where_the_version_is() {
        let err = transition(
            Some(CertificationState::Submitted),
            CertificationAction::Certify,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot certify this version: it is submitted; only a version in review is certified"
        );
    }

    #[test]
    fn only_submitting_is_open_to_publishers() {
        assert!(!CertificationAction::Submit.needs_admin());
        assert!(CertificationAction::StartReview.needs_admin());
        assert!(CertificationAction::Certify.needs_admin());
        assert!(CertificationAction::Reject.needs_admin());
    }

    #[test]
    fn states_read_back_from_their_names() {
        for state in CertificationState::ALL {
            assert_eq!(state.as_str().parse::<CertificationState>(), Ok(state));
        }
        assert!("approved".parse::<CertificationState>().is_err());
        for action in CertificationAction::ALL {
            assert_eq!(action.as_str().parse::<CertificationAction>(), Ok(action));
        }
        assert!("approve".parse::<CertificationAction>().is_err());
    }

    #[test]
    fn a_certification_verifies_only_for_its_own_version_and_digest() {
        let keys = generate_keys(None).unwrap();
        let secret = SecretKey::parse(&keys.secret_text, None).unwrap();
        let name: PluginName = "acme/hello".parse().unwrap();
        let version = Version::new(0, 1, 0);
        let digest = Digest::of(b"package");
        let signature = sign(&name, &version, &digest, &secret).unwrap();
        let verified = verify(&name, &version, &digest, &signature, &keys.public).unwrap();
        assert_eq!(verified.key_id, keys.public.key_id());
        assert_eq!(
            verified.trusted_comment,
            format!("aerie-certified acme/hello@0.1.0 {digest}")
        );
        assert_eq!(
            verify(
                &name,
                &Version::new(0, 1, 1),
                &digest,
                &signature,
                &keys.public
            ),
            Err(SignatureError::Tampered)
        );
        assert_eq!(
            verify(
                &name,
                &version,
                &Digest::of(b"other"),
                &signature,
                &keys.public
            ),
            Err(SignatureError::Tampered)
        );
        let other = generate_keys(None).unwrap();
        assert!(matches!(
            verify(&name, &version, &digest, &signature, &other.public),
            Err(SignatureError::WrongKey { .. })
        ));
    }
}
