//! Who is calling, and what they may do.
//!
//! A caller is anonymous, or a user signed in by session cookie, or a user acting through an
//! API token. A token never grants more than its owner has, and only within its scopes and
//! namespaces. Every endpoint makes exactly one authorization decision through this module.

use std::net::SocketAddr;
use std::str::FromStr;

use aerie_db::{Actor, ApiToken, Namespace, Role, Space, SpaceRole, SpaceToken, User, now_millis};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::error::{ApiError, ApiResult};
use crate::limits::{ClientIp, PasswordWork};
use crate::state::AppState;

/// The session cookie's name on a server reached over HTTPS: the `__Host-` prefix makes
/// browsers refuse it unless it is `Secure`, host-only and for the whole site, so no other
/// origin (a plugin origin on a sibling host among them) can set or shadow it.
pub const SECURE_SESSION_COOKIE: &str = "__Host-aerie_session";
/// The session cookie's name on a server reached over plain HTTP (local use), where browsers
/// do not allow the `__Host-` prefix.
pub const SESSION_COOKIE: &str = "aerie_session";
/// Every token starts with this, so leaked tokens are easy to scan for.
pub const TOKEN_PREFIX: &str = "aerie_";
/// Space tokens start with this.
pub const SPACE_TOKEN_PREFIX: &str = "aerie_space_";

/// What an API token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Publish versions to the token's namespaces.
    Publish,
    /// Yank, unyank and deprecate versions.
    Yank,
    /// Read plugins in private namespaces the owner belongs to.
    ReadPrivate,
    /// Download packages (hosts), private ones included where the owner belongs.
    Download,
    /// Act as an administrator, if the owner is one.
    Admin,
    /// Use and manage the owner's spaces, with the owner's roles in them.
    Spaces,
    /// Act as an owner of the owner's namespaces: their settings (signatures required or
    /// not), members and publisher keys. A token made for publishing cannot do these.
    Owner,
}

/// Every scope, by name.
pub const SCOPES: &[(&str, Scope)] = &[
    ("publish", Scope::Publish),
    ("yank", Scope::Yank),
    ("read-private", Scope::ReadPrivate),
    ("download", Scope::Download),
    ("admin", Scope::Admin),
    ("spaces", Scope::Spaces),
    ("owner", Scope::Owner),
];

impl Scope {
    /// The scope's name.
    pub fn as_str(self) -> &'static str {
        SCOPES
            .iter()
            .find(|(_, scope)| *scope == self)
            .map(|(name, _)| *name)
            .expect("every scope is listed")
    }
}

impl FromStr for Scope {
    type Err = ApiError;

    fn from_str(text: &str) -> ApiResult<Scope> {
        SCOPES
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, scope)| *scope)
            .ok_or_else(|| {
                let names: Vec<&str> = SCOPES.iter().map(|(name, _)| *name).collect();
                ApiError::bad_request(
                    "invalid_scope",
                    format!(
                        "`{text}` is not a scope; the scopes are {}",
                        names.join(", ")
                    ),
                )
            })
    }
}

/// The caller of a request.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The user, unless anonymous.
    pub user: Option<User>,
    /// The token used, if any.
    pub token: Option<ApiToken>,
    /// The space token used, if any: it acts in its space alone, with its role.
    pub space_token: Option<SpaceToken>,
    /// The client's address.
    pub ip: Option<std::net::IpAddr>,
    /// The browser session (its row id), when the caller signed in by cookie.
    pub session: Option<i64>,
}

impl Caller {
    /// The caller's role in `space`: a space token's own role in its space (none in any
    /// other); an administrator acts as an owner; a user holds their membership, through a
    /// token only with the `spaces` scope.
    pub async fn space_role(
        &self,
        state: &AppState,
        space: &Space,
    ) -> ApiResult<Option<SpaceRole>> {
        if let Some(token) = &self.space_token {
            return Ok((token.space_id == space.id).then_some(token.role));
        }
        let Some(user) = &self.user else {
            return Ok(None);
        };
        if self.is_admin() {
            return Ok(Some(SpaceRole::Owner));
        }
        if !self.has_scope(Scope::Spaces) {
            return Ok(None);
        }
        Ok(state.db.space_role(space.id, user.id).await?)
    }

    /// The space called `name` if the caller holds at least `needed` in it. A space the
    /// caller has no role in answers exactly as a missing one does.
    pub async fn require_space(
        &self,
        state: &AppState,
        name: &str,
        needed: SpaceRole,
    ) -> ApiResult<(Space, SpaceRole)> {
        let hidden =
            || ApiError::not_found("space_not_found", format!("there is no space `{name}`"));
        let space = state.db.space(name).await?.ok_or_else(hidden)?;
        let role = self.space_role(state, &space).await?.ok_or_else(hidden)?;
        if !role.at_least(needed) {
            return Err(ApiError::forbidden(
                "space_role_required",
                format!("this needs the {needed} role (or higher) in the space `{name}`"),
            ));
        }
        Ok((space, role))
    }

    /// The user, or 401 for an anonymous caller.
    pub fn user(&self) -> ApiResult<&User> {
        self.user.as_ref().ok_or_else(|| {
            ApiError::unauthorized(
                "auth_required",
                "sign in, or send an API token as `Authorization: Bearer ...`",
            )
        })
    }

    /// Who to record in the audit log.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.user.as_ref().map(|user| user.id),
            token_id: self.token.as_ref().map(|token| token.id),
            ip: self.ip.map(|ip| ip.to_string()),
        }
    }

    /// Whether the token used (if any) has `scope`. A signed-in browser session has every
    /// scope its user's roles allow.
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.token.as_ref().is_none_or(|token| {
            token.scopes.iter().any(|s| {
                s == scope.as_str()
                    // An administrator's admin token acts as any owner.
                    || (scope == Scope::Owner && s == Scope::Admin.as_str())
            })
        })
    }

    /// Fails unless the token used (if any) has `scope` and covers `namespace`.
    pub fn require_scope(&self, scope: Scope, namespace: Option<&str>) -> ApiResult<()> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        if !self.has_scope(scope) {
            return Err(ApiError::forbidden(
                "token_scope",
                format!("this token lacks the `{}` scope", scope.as_str()),
            ));
        }
        if let (Some(allowed), Some(namespace)) = (&token.namespaces, namespace)
            && !allowed.iter().any(|n| n == namespace)
        {
            return Err(ApiError::forbidden(
                "token_namespace",
                format!("this token is not valid for the namespace `{namespace}`"),
            ));
        }
        Ok(())
    }

    /// Whether the caller acts as an administrator: an admin user, through a session or a
    /// token with the `admin` scope.
    pub fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(|user| user.is_admin) && self.has_scope(Scope::Admin)
    }

    /// Fails unless the caller is an administrator.
    pub fn require_admin(&self) -> ApiResult<&User> {
        let user = self.user()?;
        if !self.is_admin() {
            return Err(ApiError::forbidden(
                "admin_required",
                "this needs an administrator",
            ));
        }
        Ok(user)
    }

    /// Fails unless the caller holds at least `needed` in `namespace` (administrators always
    /// do) and its token has `scope` for it.
    pub async fn require_role(
        &self,
        state: &AppState,
        namespace: &Namespace,
        needed: Role,
        scope: Scope,
    ) -> ApiResult<&User> {
        let user = self.user()?;
        self.require_scope(scope, Some(&namespace.name))?;
        if self.is_admin() {
            return Ok(user);
        }
        let role = state.db.role_in(namespace.id, user.id).await?;
        if !role.is_some_and(|role| role.at_least(needed)) {
            return Err(ApiError::forbidden(
                "role_required",
                format!(
                    "this needs the {needed} role (or higher) in the namespace `{}`",
                    namespace.name
                ),
            ));
        }
        Ok(user)
    }

    /// Whether the caller may see `namespace` and what it holds, for `purpose` (reading
    /// metadata needs `read-private`, downloading accepts `download` too).
    pub async fn can_see(
        &self,
        state: &AppState,
        namespace: &Namespace,
        purpose: Scope,
    ) -> ApiResult<bool> {
        if !namespace.private || self.is_admin() {
            return Ok(true);
        }
        let Some(user) = &self.user else {
            return Ok(false);
        };
        let token_allows = self.has_scope(Scope::ReadPrivate)
            || (purpose == Scope::Download && self.has_scope(Scope::Download));
        let token_covers = self.token.as_ref().is_none_or(|token| {
            token
                .namespaces
                .as_ref()
                .is_none_or(|allowed| allowed.contains(&namespace.name))
        });
        Ok(
            token_allows
                && token_covers
                && state.db.role_in(namespace.id, user.id).await?.is_some(),
        )
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Caller> {
        let ip = client_ip(state, &parts.extensions, &parts.headers);
        if let Some(header) = parts.headers.get(AUTHORIZATION) {
            let value = header.to_str().unwrap_or("");
            let Some(token) = value.strip_prefix("Bearer ") else {
                return Err(ApiError::unauthorized(
                    "auth_malformed",
                    "the Authorization header must be `Bearer TOKEN`",
                ));
            };
            return bearer_caller(state, token.trim(), ip).await;
        }
        let session = session_user(state, &parts.headers, &parts.method).await?;
        Ok(Caller {
            session: session.as_ref().map(|(id, _)| *id),
            user: session.map(|(_, user)| user),
            token: None,
            space_token: None,
            ip,
        })
    }
}

/// The client's address: the connection's peer, or behind the configured trusted proxies
/// the address they report ([`ClientIp::of`]).
pub fn client_ip(
    state: &AppState,
    extensions: &axum::http::Extensions,
    headers: &HeaderMap,
) -> Option<std::net::IpAddr> {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    Some(ClientIp::of(peer, headers, state.config.trusted_proxies).0)
}

/// The client's address, as a handler argument.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<ClientAddress, std::convert::Infallible> {
        Ok(ClientAddress(client_ip(
            state,
            &parts.extensions,
            &parts.headers,
        )))
    }
}

/// The caller an Aerie token (an API token or a space token) names, or 401.
pub async fn bearer_caller(
    state: &AppState,
    token: &str,
    ip: Option<std::net::IpAddr>,
) -> ApiResult<Caller> {
    if token.starts_with(SPACE_TOKEN_PREFIX) {
        return Ok(Caller {
            user: None,
            token: None,
            space_token: Some(authenticate_space_token(state, token).await?),
            ip,
            session: None,
        });
    }
    let (token, user) = authenticate_token(state, token).await?;
    Ok(Caller {
        user: Some(user),
        token: Some(token),
        space_token: None,
        ip,
        session: None,
    })
}

async fn authenticate_token(state: &AppState, secret: &str) -> ApiResult<(ApiToken, User)> {
    check_token_form(secret, TOKEN_PREFIX, "Aerie tokens")?;
    let Some((token, user)) = state.db.token_by_hash(&sha256(secret.as_bytes())).await? else {
        return Err(unknown_token());
    };
    check_token_state(token.revoked_at, token.expires_at)?;
    state.db.touch_token(&token).await?;
    Ok((token, user))
}

async fn authenticate_space_token(state: &AppState, secret: &str) -> ApiResult<SpaceToken> {
    check_token_form(secret, SPACE_TOKEN_PREFIX, "space tokens")?;
    let Some(token) = state
        .db
        .space_token_by_hash(&sha256(secret.as_bytes()))
        .await?
    else {
        return Err(unknown_token());
    };
    check_token_state(token.revoked_at, token.expires_at)?;
    state.db.touch_space_token(&token).await?;
    Ok(token)
}

/// Refuses a token that is not `prefix` and 64 hex digits, before any lookup.
fn check_token_form(secret: &str, prefix: &str, kind: &str) -> ApiResult<()> {
    let well_formed = secret
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.len() == 64 && rest.bytes().all(|b| b.is_ascii_hexdigit()));
    if !well_formed {
        return Err(ApiError::unauthorized(
            "token_malformed",
            format!("the token is malformed: {kind} are `{prefix}` followed by 64 hex digits"),
        ));
    }
    Ok(())
}

fn unknown_token() -> ApiError {
    ApiError::unauthorized("token_invalid", "the token is not known")
}

/// Refuses a revoked or expired token.
fn check_token_state(revoked_at: Option<i64>, expires_at: Option<i64>) -> ApiResult<()> {
    if revoked_at.is_some() {
        return Err(ApiError::unauthorized(
            "token_revoked",
            "the token has been revoked",
        ));
    }
    if expires_at.is_some_and(|at| at <= now_millis()) {
        return Err(ApiError::unauthorized(
            "token_expired",
            "the token has expired",
        ));
    }
    Ok(())
}

/// The session cookie's name on this server: [`SECURE_SESSION_COOKIE`] when it is reached
/// over HTTPS, else [`SESSION_COOKIE`].
pub fn session_cookie_name(config: &crate::Config) -> &'static str {
    if config.secure_cookies() {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

/// The value of the cookie `name`, if the request has one.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then(|| value.to_string())
        })
}

/// The session cookie's value, if the request has one.
pub fn session_cookie(config: &crate::Config, headers: &HeaderMap) -> Option<String> {
    cookie(headers, session_cookie_name(config))
}

/// Whether a request that would change something, signed in by cookie, comes from a page of
/// this server's own origin: `Sec-Fetch-Site: same-origin`, which browsers set and pages
/// cannot; from a browser that does not send it, an `Origin` equal to the server's; from a
/// client that is not a browser (neither header), `X-Requested-With`, which a cross-site form
/// cannot send. A page of another origin, same-site or not — a plugin origin on a sibling
/// host — never passes.
pub fn same_origin_write(config: &crate::Config, headers: &HeaderMap, method: &Method) -> bool {
    if method.is_safe() {
        return true;
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        return site == "same-origin";
    }
    if let Some(origin) = headers.get(axum::http::header::ORIGIN) {
        return origin
            .to_str()
            .is_ok_and(|origin| origin == config.public_origin());
    }
    headers.contains_key("x-requested-with")
}

/// The session of the request's session cookie (its id and user), if it has a live one. A
/// request that would change something must come from this server's own origin
/// ([`same_origin_write`]), so a cookie alone, sent by another site's page, never changes
/// anything.
pub async fn session_user(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
) -> ApiResult<Option<(i64, User)>> {
    let Some(session) = session_cookie(&state.config, headers) else {
        return Ok(None);
    };
    let Some(session) = state.db.session_user(&sha256(session.as_bytes())).await? else {
        return Ok(None);
    };
    if !same_origin_write(&state.config, headers, method) {
        return Err(ApiError::forbidden(
            "csrf",
            "a change signed in by cookie must come from a page of this server: send \
             `Sec-Fetch-Site: same-origin` (browsers do), or `X-Requested-With` from other clients",
        ));
    }
    Ok(Some(session))
}

/// SHA-256, for storing secrets that are random and long (tokens, sessions).
pub fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// When a token asked to last `days` expires: 1 to 3650 days, or never.
pub fn token_expiry(days: Option<u32>) -> ApiResult<Option<i64>> {
    match days {
        Some(days @ 1..=3650) => Ok(Some(now_millis() + i64::from(days) * 86_400_000)),
        Some(_) => Err(ApiError::bad_request(
            "invalid_expiry",
            "a token expires in 1 to 3650 days",
        )),
        None => Ok(None),
    }
}

/// A fresh random secret: 32 bytes as 64 hex digits.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Hashes a password with argon2id (PHC string), in `work`'s bounded pool.
pub async fn hash_password(work: &PasswordWork, password: String) -> ApiResult<String> {
    work.run(move || {
        let mut salt_bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut salt_bytes);
        let salt = SaltString::encode_b64(&salt_bytes).map_err(ApiError::internal)?;
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(ApiError::internal)
    })
    .await?
}

/// A valid hash of a random password: checking a password against it for an unknown user
/// takes as long as for a known one, so timing does not tell which names exist.
pub async fn dummy_password_hash(work: &PasswordWork) -> ApiResult<String> {
    static HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    HASH.get_or_try_init(|| hash_password(work, random_secret()))
        .await
        .cloned()
}

/// Checks a password against its stored hash, in `work`'s bounded pool.
pub async fn verify_password(
    work: &PasswordWork,
    password: String,
    hash: String,
) -> ApiResult<bool> {
    work.run(move || {
        let parsed = PasswordHash::new(&hash).map_err(ApiError::internal)?;
        Ok(argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await?
}
