//! Aerie's HTTP API on the wire: every request and response body, with the doc comments that
//! become its OpenAPI document. The server and the client both use these types, so they cannot
//! drift apart.
//!
//! This crate defines formats only: no behaviour, no I/O.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// One error: a stable code for programs, a message for people.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable code, like `package_unsafe_path` or `token_expired`.
    pub code: String,
    /// What happened, in a sentence.
    pub message: String,
    /// Structured details, for errors with several parts (such as manifest problems).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// A new account.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SignupRequest {
    /// Login name: 1–64 characters of lowercase letters, digits and `-`.
    #[schema(pattern = "^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$")]
    pub username: String,
    /// 10 to 1024 characters.
    #[schema(min_length = 10, max_length = 1024)]
    pub password: String,
    /// Contact address.
    #[serde(default)]
    pub email: Option<String>,
}

/// A sign-in.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A browser session of the caller's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    /// Its id, to end it.
    pub id: i64,
    /// When it began, RFC 3339.
    pub created_at: String,
    /// When it was last used (to within a few minutes), RFC 3339.
    pub last_seen_at: Option<String>,
    /// When it ends, RFC 3339.
    pub expires_at: String,
    /// The address it began from.
    pub ip: Option<String>,
    /// The browser it began in.
    pub user_agent: Option<String>,
    /// Whether it is the session of this request.
    pub current: bool,
}

/// A new password, given with the current one.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PasswordChangeRequest {
    /// The password now.
    pub current_password: String,
    /// The new password (10 to 1024 characters).
    #[schema(min_length = 10, max_length = 1024)]
    pub new_password: String,
}

/// A user, as others see them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    /// Login name.
    pub username: String,
    /// Whether the user administers the server.
    pub is_admin: bool,
    /// Creation time, RFC 3339.
    pub created_at: String,
}

/// The signed-in caller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MeView {
    /// The user.
    pub user: UserView,
    /// The namespaces the user belongs to.
    pub namespaces: Vec<Membership>,
    /// The scopes of the token used, when the caller used one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_scopes: Option<Vec<String>>,
}

/// A user's role in a namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Membership {
    /// The namespace.
    pub namespace: String,
    /// `owner`, `maintainer` or `member`.
    pub role: String,
}

/// A new API token.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CreateTokenRequest {
    /// A label, unique among the user's tokens.
    #[schema(min_length = 1, max_length = 64, pattern = "\\S")]
    pub name: String,
    /// What it may do: `publish`, `yank`, `read-private`, `download`, `admin`.
    pub scopes: Vec<String>,
    /// Limit it to these namespaces; all the user's namespaces when absent.
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
    /// Days until it expires; it never expires when absent.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// An API token's record. The secret is never shown again after creation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    /// Its id, for revoking it.
    pub id: i64,
    /// Its label.
    pub name: String,
    /// The secret's first characters, to recognise it.
    pub prefix: String,
    /// What it may do.
    pub scopes: Vec<String>,
    /// The namespaces it is limited to, if any.
    pub namespaces: Option<Vec<String>>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Expiry time, RFC 3339, if it expires.
    pub expires_at: Option<String>,
    /// Last use, RFC 3339 (to the minute).
    pub last_used_at: Option<String>,
    /// Revocation time, RFC 3339, if revoked.
    pub revoked_at: Option<String>,
}

/// A token just created: the only time its secret is shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// The secret, to send as `Authorization: Bearer ...`.
    pub token: String,
    /// Its record.
    pub info: TokenView,
}

/// A new namespace.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CreateNamespaceRequest {
    /// Its name: 1–64 characters of lowercase letters, digits and `-`.
    #[schema(pattern = "^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$")]
    pub name: String,
    /// Require a signature by a registered key on every version (default: the server's policy).
    #[serde(default)]
    pub require_signature: Option<bool>,
    /// Only members and `read-private`/`download` tokens see a private namespace's plugins.
    #[serde(default)]
    pub private: bool,
}

/// Changes to a namespace's settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdateNamespaceRequest {
    /// Require signed versions.
    #[serde(default)]
    pub require_signature: Option<bool>,
    /// Hide the namespace from non-members.
    #[serde(default)]
    pub private: Option<bool>,
}

/// A namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NamespaceView {
    /// Its name.
    pub name: String,
    /// Whether versions must be signed by a registered key.
    pub require_signature: bool,
    /// Whether only members see it.
    pub private: bool,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Members and their roles (shown to members only).
    pub members: Vec<MemberView>,
    /// The plugins it holds.
    pub plugins: Vec<String>,
}

/// A namespace member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    /// The user.
    pub username: String,
    /// `owner`, `maintainer` or `member`.
    pub role: String,
}

/// A role to give a member.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SetMemberRequest {
    /// `owner`, `maintainer` or `member`.
    #[schema(pattern = "^(owner|maintainer|member)$")]
    pub role: String,
}

/// A publisher key to register.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AddKeyRequest {
    /// A minisign public key: the `.pub` file, or only its base64 line.
    #[schema(min_length = 1)]
    pub public_key: String,
}

/// A publisher key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    /// minisign's key id.
    pub key_id: String,
    /// The base64 key line.
    pub public_key: String,
    /// Who registered it.
    pub added_by: String,
    /// When, RFC 3339.
    pub created_at: String,
    /// When it was revoked, RFC 3339.
    pub revoked_at: Option<String>,
}

/// A published version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VersionView {
    /// `namespace/name`.
    pub name: String,
    /// The version.
    pub version: String,
    /// The package digest, `sha256:...`: also its download ETag.
    pub digest: String,
    /// Package size in bytes.
    pub size: i64,
    /// Publication time, RFC 3339.
    pub published_at: String,
    /// Who published it.
    pub publisher: String,
    /// Hidden from new resolutions; still downloadable by exact version.
    pub yanked: bool,
    /// The deprecation message, if deprecated.
    pub deprecated: Option<String>,
    /// The key that signed it, if signed.
    pub signing_key_id: Option<String>,
    /// The validated manifest.
    #[schema(value_type = Object)]
    pub manifest: serde_json::Value,
    /// Where to download the package.
    pub download_url: String,
    /// Where to download the signature, if signed.
    pub signature_url: Option<String>,
    /// Where it is in certification (`submitted`, `in_review`, `certified`, `rejected`), if
    /// it was ever submitted.
    pub certification: Option<String>,
}

/// One line of a plugin's version list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VersionSummary {
    /// The version.
    pub version: String,
    /// Package digest.
    pub digest: String,
    /// Package size in bytes.
    pub size: i64,
    /// Publication time, RFC 3339.
    pub published_at: String,
    /// Yanked.
    pub yanked: bool,
    /// Deprecation message.
    pub deprecated: Option<String>,
    /// Certification state, if ever submitted.
    pub certification: Option<String>,
}

/// A plugin and its versions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PluginView {
    /// `namespace/name`.
    pub name: String,
    /// The latest version: the highest that is not yanked (prereleases only if nothing else).
    pub latest: Option<String>,
    /// The latest version's description.
    pub description: Option<String>,
    /// First publication, RFC 3339.
    pub created_at: String,
    /// Last publication, RFC 3339.
    pub updated_at: String,
    /// Downloads of every version.
    pub downloads: i64,
    /// Every version, newest first.
    pub versions: Vec<VersionSummary>,
}

/// The result of a publish.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PublishResponse {
    /// `false` when the same bytes were already published as this version.
    pub created: bool,
    /// The version.
    pub version: VersionView,
}

/// A deprecation.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DeprecateRequest {
    /// Why, and what to use instead: up to 500 characters, not all blank.
    #[schema(max_length = 500, pattern = "\\S")]
    pub message: String,
}

/// Downloads of a plugin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatsView {
    /// `namespace/name`.
    pub name: String,
    /// Downloads of every version.
    pub total: i64,
    /// Per day and version, oldest first.
    pub days: Vec<DownloadDayView>,
    /// Installations serving it now, across every space on this server.
    pub active_installations: i64,
    /// Active installations per version, newest version first.
    pub installations_by_version: Vec<VersionCountView>,
}

/// How many of something one version has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VersionCountView {
    /// The version.
    pub version: String,
    /// How many.
    pub count: i64,
}

/// Downloads of one version on one day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DownloadDayView {
    /// The day, `YYYY-MM-DD` (UTC).
    pub date: String,
    /// The version.
    pub version: String,
    /// Downloads.
    pub count: i64,
}

/// One audit log entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryView {
    /// Entry id; page with `before=ID`.
    pub id: i64,
    /// When, RFC 3339.
    pub at: String,
    /// Who, if a user.
    pub actor: Option<String>,
    /// The token used, if any.
    pub token_id: Option<i64>,
    /// The client's address.
    pub ip: Option<String>,
    /// What, like `version.publish`.
    pub action: String,
    /// To what, like `plugin:acme/hello@1.0.0`.
    pub target: String,
    /// Details.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// A new space.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CreateSpaceRequest {
    /// Its name, in URLs: 1–64 characters of lowercase letters, digits and `-`.
    #[schema(pattern = "^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$")]
    pub name: String,
}

/// Changes to a space.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct UpdateSpaceRequest {
    /// A new name. Endpoints move to the new name's plugin origin; data stays.
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$")]
    pub name: Option<String>,
    /// Install only certified versions (checked against the registry's signature) from now
    /// on; plugins already installed are checked at their next change or start.
    #[serde(default)]
    pub require_certified: Option<bool>,
    /// Install only versions whose publisher signature verifies with a key registered (and
    /// not revoked) on their namespace; checked like `require_certified`.
    #[serde(default)]
    pub require_signed: Option<bool>,
}

/// A space, as the caller sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SpaceView {
    /// Its name.
    pub name: String,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// The caller's role: `owner`, `admin`, `member` or `viewer` (server administrators act
    /// as owners).
    pub role: String,
    /// How many plugins are installed.
    pub installations: usize,
    /// Whether it installs only certified versions (its own policy or the server's).
    pub require_certified: bool,
    /// Whether it installs only versions signed by their publisher.
    #[serde(default)]
    pub require_signed: bool,
}

/// A role to give a space member.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SetSpaceMemberRequest {
    /// `owner`, `admin`, `member` or `viewer`.
    #[schema(pattern = "^(owner|admin|member|viewer)$")]
    pub role: String,
}

/// A new space token.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CreateSpaceTokenRequest {
    /// A label, unique in the space.
    #[schema(pattern = "^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$")]
    pub name: String,
    /// What it may do in the space: `admin`, `member` or `viewer` (never more than the
    /// creator's own role).
    #[schema(pattern = "^(admin|member|viewer)$")]
    pub role: String,
    /// Days until it expires; it never expires when absent.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// A space token's record. The secret is shown only at creation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SpaceTokenView {
    /// Its id, for revoking it.
    pub id: i64,
    /// Its label.
    pub name: String,
    /// The secret's first characters.
    pub prefix: String,
    /// Its role in the space.
    pub role: String,
    /// Who created it.
    pub created_by: Option<String>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Expiry, RFC 3339, if it expires.
    pub expires_at: Option<String>,
    /// Last use, RFC 3339.
    pub last_used_at: Option<String>,
    /// Revocation time, RFC 3339, if revoked.
    pub revoked_at: Option<String>,
}

/// A space token just created: the only time its secret is shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedSpaceToken {
    /// The secret, to send as `Authorization: Bearer ...`.
    pub token: String,
    /// Its record.
    pub info: SpaceTokenView,
}

/// What an installation may do, in plain words, for consent at install.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PermissionsView {
    /// Hosts it may send HTTP requests to.
    #[serde(default)]
    pub outbound: Vec<String>,
    /// Whether it keeps durable key-value state.
    #[serde(default)]
    pub keyvalue: bool,
    /// The secrets it reads, by name.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Other plugins' services it calls.
    #[serde(default)]
    pub services: Vec<String>,
    /// The memory per call it asks for above the server's default, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// The seconds per call it asks for above the server's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// The HTTP routes it answers, and who may call each.
    #[serde(default)]
    pub routes: Vec<RouteView>,
    /// Each permission as a sentence.
    #[serde(default)]
    pub sentences: Vec<String>,
}

/// One HTTP route a plugin answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RouteView {
    /// The path pattern within the plugin, like `/items/{id}` or `/*`.
    pub path: String,
    /// The methods it answers; empty for all.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Who may call it: `public`, `viewer`, `member`, `admin` or `owner`.
    pub guard: String,
}

/// A plugin to install.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct InstallRequest {
    /// `namespace/name`.
    #[schema(pattern = "^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?/[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$")]
    pub plugin: String,
    /// Which versions are acceptable (Cargo syntax, like `^1.2`); the newest when absent.
    #[serde(default)]
    pub requirement: Option<String>,
    /// Its configuration, checked against the plugin's config schema.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// The permissions consented to, as the server showed them (for this plugin and every
    /// dependency the install pulls in). The install is refused with the permissions to
    /// consent to while this does not cover them.
    #[serde(default)]
    pub accept: Option<std::collections::BTreeMap<String, PermissionsView>>,
}

/// A change of version requirement.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdateRequest {
    /// A new requirement; the current one when absent (update to the newest it allows).
    #[serde(default)]
    pub requirement: Option<String>,
    /// Permissions consented to, when the new version asks for more.
    #[serde(default)]
    pub accept: Option<std::collections::BTreeMap<String, PermissionsView>>,
}

/// A new configuration.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ConfigRequest {
    /// The whole configuration, checked against the plugin's config schema.
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
}

/// A secret's value. Sent once; never returned by any endpoint.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct SecretRequest {
    /// The value.
    pub value: String,
}

impl std::fmt::Debug for SecretRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretRequest { value: (redacted) }")
    }
}

/// An installed plugin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InstallationView {
    /// `namespace/name`.
    pub plugin: String,
    /// The version installed.
    pub version: String,
    /// What the space asked for; absent for a plugin installed as a dependency.
    pub requirement: Option<String>,
    /// `active`, `disabled` or `failed`.
    pub status: String,
    /// Why it failed, or why its last update did not take.
    pub status_reason: Option<String>,
    /// The version a rollback returns to.
    pub previous_version: Option<String>,
    /// The version the server that answers runs now: absent when it does not run there, and
    /// another than `version` while that server catches up with a change made through
    /// another replica, or when the version did not start there.
    #[serde(default)]
    pub serving: Option<String>,
    /// Whether it runs now and its last health check: `healthy`, `unhealthy: REASON`, or
    /// `not running`.
    pub health: String,
    /// Its circuit breaker: `closed` (calls go through), `open` (calls are refused for a while
    /// after failures in a row), `trial` (one call tests whether it recovered), or
    /// `not running`.
    #[serde(default)]
    pub breaker: String,
    /// Its configuration.
    pub config: serde_json::Value,
    /// The names of the secrets set (never their values).
    pub secrets: Vec<String>,
    /// The secrets the plugin reads, set or not.
    pub declared_secrets: Vec<String>,
    /// What it was granted.
    pub permissions: PermissionsView,
    /// The plugins it depends on.
    pub dependencies: Vec<String>,
    /// Where its endpoints are: `ORIGIN/NAMESPACE/NAME/` on the space's plugin origin.
    pub endpoint: String,
    /// Install time, RFC 3339.
    pub created_at: String,
    /// Last change, RFC 3339.
    pub updated_at: String,
}

/// What an install, update, rollback or uninstall did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SpaceChangeView {
    /// Each plugin whose version changed: `plugin`: `from -> to` (`none` for absent).
    pub changed: std::collections::BTreeMap<String, String>,
    /// The installations afterwards.
    pub installations: Vec<InstallationView>,
}

/// Something that happened to an installation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InstallationEventView {
    /// When, RFC 3339.
    pub at: String,
    /// Who, if a user did it.
    pub actor: Option<String>,
    /// `installed`, `updated`, `update_failed`, `rolled_back`, `disabled`, `enabled`,
    /// `config_changed`, `secret_set`, `secret_removed`, `uninstalled`, `failed`, `restored`.
    pub kind: String,
    /// The version before.
    pub from_version: Option<String>,
    /// The version after.
    pub to_version: Option<String>,
    /// Details.
    pub message: Option<String>,
}

/// The outcome of a master key rotation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RotationView {
    /// The id of the key that now wraps every data key.
    pub master_key_id: String,
    /// How many spaces' data keys were re-wrapped.
    pub rewrapped: usize,
    /// The ids of the keys removed from the key file.
    pub retired: Vec<String>,
}

/// Where the replica that answers stands with the spaces: how many there are, how many it runs
/// as stored, and those it is catching up with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReplicaView {
    /// Spaces stored.
    pub spaces: usize,
    /// Spaces this replica runs at their stored revision.
    pub current: usize,
    /// Spaces whose stored revision this replica does not run yet (at most 100).
    pub behind: Vec<SpaceRevisionView>,
}

/// A space's stored revision beside the one a replica runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SpaceRevisionView {
    /// The space.
    pub space: String,
    /// The revision stored: raised by every change to what it runs.
    pub stored_revision: i64,
    /// The revision this replica runs; absent before it first loaded the space.
    pub running_revision: Option<i64>,
    /// How long ago the stored revision was written, in milliseconds.
    pub lag_ms: i64,
}

/// A plugin found by a search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchHitView {
    /// `namespace/name`.
    pub name: String,
    /// Its newest installable version (the newest, if every one is yanked).
    pub version: String,
    /// One line about it.
    pub description: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its categories.
    pub categories: Vec<String>,
    /// Its license.
    pub license: String,
    /// Whether its version is certified.
    pub certified: bool,
    /// Whether any version can be installed (false when every one is yanked).
    pub installable: bool,
    /// Downloads, all versions.
    pub downloads: u64,
    /// Average rating (0 when unrated).
    pub rating: f64,
    /// Number of ratings.
    pub ratings: u64,
    /// Last publish, RFC 3339.
    pub updated_at: String,
    /// Relevance (0 when sorted by something else).
    pub score: f32,
}

/// One facet value and how many matches have it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FacetCountView {
    /// The value.
    pub value: String,
    /// Matches with it.
    pub count: u64,
}

/// Facet counts among a search's matches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FacetsView {
    /// Per category.
    pub categories: Vec<FacetCountView>,
    /// Per tag (the 30 most frequent).
    pub tags: Vec<FacetCountView>,
    /// Per license.
    pub licenses: Vec<FacetCountView>,
    /// `certified` and `uncertified`.
    pub certification: Vec<FacetCountView>,
}

/// A page of search results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchResponse {
    /// Matches in all pages: exact up to 10,000; past that, 10,000 and `exhaustive` is false.
    pub total: usize,
    /// Whether `total` and `facets` cover every match; false for a query matching more than
    /// 10,000 plugins, whose facets are counted over the first 10,000 matches.
    pub exhaustive: bool,
    /// This page (from 1).
    pub page: usize,
    /// Results per page.
    pub per_page: usize,
    /// This page's plugins.
    pub hits: Vec<SearchHitView>,
    /// Facet counts among the matches (all of them when `exhaustive`).
    pub facets: FacetsView,
    /// Time the index took, in milliseconds.
    pub took_ms: f64,
}

/// A rating with a review.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ReviewRequest {
    /// 1 to 5.
    #[schema(minimum = 1, maximum = 5)]
    pub stars: i64,
    /// What the reviewer says, as plain text (up to 4,000 characters; may be empty).
    #[serde(default)]
    pub text: String,
}

/// A review.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReviewView {
    /// Who wrote it.
    pub user: String,
    /// 1 to 5.
    pub stars: i64,
    /// The text, as written.
    pub text: String,
    /// The text as HTML to show as is: every character escaped, so markup in a review is
    /// shown, never run.
    pub text_html: String,
    /// First written, RFC 3339.
    pub created_at: String,
    /// Last changed, RFC 3339.
    pub updated_at: String,
}

/// A plugin's rating and reviews.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReviewsView {
    /// The average of the stars (0 when unrated).
    pub rating: f64,
    /// How many ratings.
    pub ratings: i64,
    /// The reviews, most recently changed first.
    pub reviews: Vec<ReviewView>,
}

/// A step in a version's certification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CertificationRequest {
    /// `submit` (the version's publishers), or `start_review`, `certify`, `reject` (server
    /// admins).
    #[schema(pattern = "^(submit|start_review|certify|reject)$")]
    pub action: String,
    /// Why: required to reject, kept with any step; up to 2000 characters.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub reason: Option<String>,
}

/// One step a version's certification went through.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CertificationEventView {
    /// When, RFC 3339.
    pub at: String,
    /// Who.
    pub actor: Option<String>,
    /// The state before, if any.
    pub from: Option<String>,
    /// The state after.
    pub to: String,
    /// The words given.
    pub reason: Option<String>,
}

/// A version's certification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CertificationView {
    /// `namespace/name`.
    pub plugin: String,
    /// The version.
    pub version: String,
    /// The package digest the certification covers.
    pub digest: String,
    /// `not_submitted`, `submitted`, `in_review`, `certified` or `rejected`.
    pub state: String,
    /// Who submitted it last.
    pub submitted_by: Option<String>,
    /// When, RFC 3339.
    pub submitted_at: Option<String>,
    /// The admin who moved it last.
    pub reviewer: Option<String>,
    /// The reviewer's words.
    pub reason: Option<String>,
    /// The statement the registry signed: `aerie-certified NAME@VERSION DIGEST`.
    pub statement: Option<String>,
    /// The registry's signature on the statement (minisign), while certified.
    pub signature: Option<String>,
    /// The registry key that signed it.
    pub signing_key_id: Option<String>,
    /// Every step, oldest first.
    pub history: Vec<CertificationEventView>,
}

/// Versions waiting for (or past) certification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CertificationQueueView {
    /// The versions, longest waiting first.
    pub versions: Vec<CertificationQueueEntry>,
}

/// One version in the certification queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CertificationQueueEntry {
    /// `namespace/name`.
    pub plugin: String,
    /// The version.
    pub version: String,
    /// Its state.
    pub state: String,
    /// Who submitted it.
    pub submitted_by: Option<String>,
    /// When it last changed, RFC 3339.
    pub updated_at: String,
}

/// The registry's public key, which verifies certifications.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RegistryKeyView {
    /// The key id.
    pub key_id: String,
    /// The minisign public key file's text.
    pub public_key: String,
}

/// A dependency as a plugin page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DependencyView {
    /// The plugin depended on.
    pub name: String,
    /// The versions accepted.
    pub requirement: String,
}

/// What a plugin's page shows, for its newest installable version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PluginPageView {
    /// `namespace/name`.
    pub name: String,
    /// The version shown: the highest not yanked, a release before a prerelease (the
    /// highest, if every one is yanked).
    pub version: String,
    /// When the shown version was published, RFC 3339.
    pub published_at: String,
    /// The shown version's certification state, if it was ever submitted.
    pub certification: Option<String>,
    /// The publisher key that signed the shown version, if it is signed.
    pub signing_key_id: Option<String>,
    /// One line about it.
    pub description: String,
    /// Its license.
    pub license: String,
    /// Its web page.
    pub homepage: Option<String>,
    /// Its source repository.
    pub repository: Option<String>,
    /// Its README as HTML, sanitised: no scripts, event handlers, `javascript:` links or
    /// anything else that runs.
    pub readme_html: Option<String>,
    /// Its CHANGELOG as HTML, sanitised like the README.
    #[serde(default)]
    pub changelog_html: Option<String>,
    /// What it may do, in plain words.
    pub permissions: PermissionsView,
    /// What it depends on.
    pub dependencies: Vec<DependencyView>,
    /// Public plugins whose newest version depends on it.
    pub dependents: Vec<String>,
    /// Every version, newest first.
    pub versions: Vec<VersionSummary>,
    /// Downloads, all versions.
    pub downloads: u64,
    /// Average rating (0 when unrated).
    pub rating: f64,
    /// Number of ratings.
    pub ratings: i64,
}
