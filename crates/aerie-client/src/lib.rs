//! A typed client for Aerie's HTTP API. The CLI talks to the server only through it.
//!
//! Every method maps to one endpoint; an error response becomes [`ClientError::Api`] with the
//! server's stable code and message.

use std::fmt;

use aerie_api_types::{
    AddKeyRequest, AuditEntryView, CertificationQueueView, CertificationRequest, CertificationView,
    ConfigRequest, CreateNamespaceRequest, CreateSpaceRequest, CreateTokenRequest, CreatedToken,
    ErrorBody, InstallRequest, InstallationEventView, InstallationView, KeyView, MeView,
    MemberView, NamespaceView, PluginView, PublishResponse, RegistryKeyView, ReviewRequest,
    ReviewsView, RotationView, SearchResponse, SecretRequest, SetSpaceMemberRequest,
    SpaceChangeView, SpaceView, StatsView, TokenView, UpdateRequest, UpdateSpaceRequest,
    VersionView,
};
use bytes::Bytes;
use futures::Stream;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

/// The header a publish sends its signature in.
const SIGNATURE_HEADER: &str = "x-aerie-signature";

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error("{message} ({code})")]
    Api {
        /// The HTTP status.
        status: StatusCode,
        /// The server's stable code.
        code: String,
        /// The server's message.
        message: String,
        /// Structured details, for errors with several parts.
        details: Option<serde_json::Value>,
    },
    /// The server could not be reached, or the connection failed.
    #[error("cannot reach the registry: {0}")]
    Http(#[from] reqwest::Error),
    /// The server's answer was not what the API promises.
    #[error("the registry's answer could not be read: {0}")]
    Decode(String),
}

impl ClientError {
    /// The server's error code, if the server answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The server's structured details, if it gave any.
    pub fn details(&self) -> Option<&serde_json::Value> {
        match self {
            ClientError::Api { details, .. } => details.as_ref(),
            _ => None,
        }
    }
}

/// The result of a call.
pub type ClientResult<T> = Result<T, ClientError>;

/// A client for one registry, optionally with an API token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a secret: never printed.
        f.debug_struct("Client").field("base", &self.base).finish()
    }
}

impl Client {
    /// A client for the registry at `base` (like `https://aerie.example.com`).
    pub fn new(base: &str, token: Option<String>) -> ClientResult<Client> {
        // reqwest is built without a default crypto provider; ring is ours.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("aerie/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// The registry's URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn send(request: RequestBuilder) -> ClientResult<reqwest::Response> {
        let response = request.send().await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => ClientError::Api {
                status,
                code: body.error.code,
                message: body.error.message,
                details: body.error.details,
            },
            Err(_) => ClientError::Api {
                status,
                code: "http".to_string(),
                message: format!("the registry answered {status}"),
                details: None,
            },
        })
    }

    async fn json<T: DeserializeOwned>(request: RequestBuilder) -> ClientResult<T> {
        let response = Client::send(request).await?;
        let bytes = response.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|err| ClientError::Decode(err.to_string()))
    }

    /// Creates a token, authenticating with a user name and password.
    pub async fn create_token(
        &self,
        username: &str,
        password: &str,
        request: &CreateTokenRequest,
    ) -> ClientResult<CreatedToken> {
        let builder = self
            .http
            .post(format!("{}/api/v1/tokens", self.base))
            .basic_auth(username, Some(password))
            .json(request);
        Client::json(builder).await
    }

    /// The caller.
    pub async fn me(&self) -> ClientResult<MeView> {
        Client::json(self.request(Method::GET, "/api/v1/me")).await
    }

    /// The caller's browser sessions.
    pub async fn sessions(&self) -> ClientResult<Vec<aerie_api_types::SessionView>> {
        Client::json(self.request(Method::GET, "/api/v1/me/sessions")).await
    }

    /// Ends every browser session of the caller's.
    pub async fn end_sessions(&self) -> ClientResult<()> {
        Client::send(self.request(Method::DELETE, "/api/v1/me/sessions")).await?;
        Ok(())
    }

    /// Changes the caller's password (every browser session of theirs ends).
    pub async fn change_password(
        &self,
        request: &aerie_api_types::PasswordChangeRequest,
    ) -> ClientResult<()> {
        Client::send(
            self.request(Method::PUT, "/api/v1/me/password")
                .json(request),
        )
        .await?;
        Ok(())
    }

    /// The caller's tokens.
    pub async fn tokens(&self) -> ClientResult<Vec<TokenView>> {
        Client::json(self.request(Method::GET, "/api/v1/tokens")).await
    }

    /// Revokes one of the caller's tokens.
    pub async fn revoke_token(&self, id: i64) -> ClientResult<()> {
        Client::send(self.request(Method::DELETE, &format!("/api/v1/tokens/{id}"))).await?;
        Ok(())
    }

    /// Creates a namespace.
    pub async fn create_namespace(
        &self,
        request: &CreateNamespaceRequest,
    ) -> ClientResult<NamespaceView> {
        Client::json(
            self.request(Method::POST, "/api/v1/namespaces")
                .json(request),
        )
        .await
    }

    /// A namespace's publisher keys.
    pub async fn keys(&self, namespace: &str) -> ClientResult<Vec<KeyView>> {
        Client::json(self.request(Method::GET, &format!("/api/v1/namespaces/{namespace}/keys")))
            .await
    }

    /// Registers a publisher key.
    pub async fn add_key(&self, namespace: &str, public_key: &str) -> ClientResult<KeyView> {
        let request = AddKeyRequest {
            public_key: public_key.to_string(),
        };
        Client::json(
            self.request(
                Method::POST,
                &format!("/api/v1/namespaces/{namespace}/keys"),
            )
            .json(&request),
        )
        .await
    }

    /// Publishes a package, streaming `body` (whose total length is `length`).
    pub async fn publish<S>(
        &self,
        name: &str,
        version: &str,
        body: S,
        length: u64,
        signature: Option<&str>,
    ) -> ClientResult<PublishResponse>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    {
        use base64::Engine as _;
        let mut request = self
            .request(Method::PUT, &format!("/api/v1/plugins/{name}/{version}"))
            .header(reqwest::header::CONTENT_TYPE, "application/gzip")
            .header(reqwest::header::CONTENT_LENGTH, length)
            .body(reqwest::Body::wrap_stream(body));
        if let Some(signature) = signature {
            request = request.header(
                SIGNATURE_HEADER,
                base64::engine::general_purpose::STANDARD.encode(signature),
            );
        }
        Client::json(request).await
    }

    /// A plugin and its versions.
    pub async fn plugin(&self, name: &str) -> ClientResult<PluginView> {
        Client::json(self.request(Method::GET, &format!("/api/v1/plugins/{name}"))).await
    }

    /// One version.
    pub async fn version(&self, name: &str, version: &str) -> ClientResult<VersionView> {
        Client::json(self.request(Method::GET, &format!("/api/v1/plugins/{name}/{version}"))).await
    }

    /// The highest version matching `requirement` that is not yanked.
    pub async fn resolve(&self, name: &str, requirement: &str) -> ClientResult<VersionView> {
        Client::json(
            self.request(Method::GET, &format!("/api/v1/plugins/{name}/resolve"))
                .query(&[("requirement", requirement)]),
        )
        .await
    }

    /// Yanks (`true`) or unyanks a version.
    pub async fn set_yanked(
        &self,
        name: &str,
        version: &str,
        yanked: bool,
    ) -> ClientResult<VersionView> {
        let method = if yanked { Method::PUT } else { Method::DELETE };
        Client::json(self.request(method, &format!("/api/v1/plugins/{name}/{version}/yank"))).await
    }

    /// Downloads a version's package.
    pub async fn download(&self, name: &str, version: &str) -> ClientResult<Bytes> {
        let response = Client::send(self.request(
            Method::GET,
            &format!("/api/v1/plugins/{name}/{version}/download"),
        ))
        .await?;
        Ok(response.bytes().await?)
    }

    /// A version's signature.
    pub async fn signature(&self, name: &str, version: &str) -> ClientResult<String> {
        let response = Client::send(self.request(
            Method::GET,
            &format!("/api/v1/plugins/{name}/{version}/signature"),
        ))
        .await?;
        Ok(response.text().await?)
    }

    /// Creates a space; the caller owns it.
    pub async fn create_space(&self, name: &str) -> ClientResult<SpaceView> {
        let request = CreateSpaceRequest {
            name: name.to_string(),
        };
        Client::json(self.request(Method::POST, "/api/v1/spaces").json(&request)).await
    }

    /// The caller's spaces.
    pub async fn spaces(&self) -> ClientResult<Vec<SpaceView>> {
        Client::json(self.request(Method::GET, "/api/v1/spaces")).await
    }

    /// Deletes a space with everything in it.
    pub async fn delete_space(&self, space: &str) -> ClientResult<()> {
        Client::send(self.request(Method::DELETE, &format!("/api/v1/spaces/{space}"))).await?;
        Ok(())
    }

    /// A space's members.
    pub async fn space_members(&self, space: &str) -> ClientResult<Vec<MemberView>> {
        Client::json(self.request(Method::GET, &format!("/api/v1/spaces/{space}/members"))).await
    }

    /// Gives `username` a role in the space (`None` removes them).
    pub async fn set_space_member(
        &self,
        space: &str,
        username: &str,
        role: Option<&str>,
    ) -> ClientResult<()> {
        let path = format!("/api/v1/spaces/{space}/members/{username}");
        let request = match role {
            Some(role) => self
                .request(Method::PUT, &path)
                .json(&SetSpaceMemberRequest {
                    role: role.to_string(),
                }),
            None => self.request(Method::DELETE, &path),
        };
        Client::send(request).await?;
        Ok(())
    }

    /// The space's lockfile, as TOML.
    pub async fn lockfile(&self, space: &str) -> ClientResult<String> {
        let response =
            Client::send(self.request(Method::GET, &format!("/api/v1/spaces/{space}/lockfile")))
                .await?;
        Ok(response.text().await?)
    }

    /// The space's installations.
    pub async fn installations(&self, space: &str) -> ClientResult<Vec<InstallationView>> {
        Client::json(self.request(
            Method::GET,
            &format!("/api/v1/spaces/{space}/installations"),
        ))
        .await
    }

    fn installation_path(space: &str, plugin: &str) -> String {
        format!("/api/v1/spaces/{space}/installations/{plugin}")
    }

    /// One installation.
    pub async fn installation(&self, space: &str, plugin: &str) -> ClientResult<InstallationView> {
        Client::json(self.request(Method::GET, &Client::installation_path(space, plugin))).await
    }

    /// Installs a plugin; `permissions_not_accepted` carries the permissions to consent to in
    /// its details.
    pub async fn install(
        &self,
        space: &str,
        request: &InstallRequest,
    ) -> ClientResult<SpaceChangeView> {
        Client::json(
            self.request(
                Method::POST,
                &format!("/api/v1/spaces/{space}/installations"),
            )
            .json(request),
        )
        .await
    }

    /// Updates a plugin.
    pub async fn update(
        &self,
        space: &str,
        plugin: &str,
        request: &UpdateRequest,
    ) -> ClientResult<SpaceChangeView> {
        let path = format!("{}/update", Client::installation_path(space, plugin));
        Client::json(self.request(Method::POST, &path).json(request)).await
    }

    /// Returns a plugin to its version before the last update.
    pub async fn rollback(&self, space: &str, plugin: &str) -> ClientResult<SpaceChangeView> {
        let path = format!("{}/rollback", Client::installation_path(space, plugin));
        Client::json(self.request(Method::POST, &path)).await
    }

    /// Uninstalls a plugin.
    pub async fn uninstall(
        &self,
        space: &str,
        plugin: &str,
        keep_data: bool,
    ) -> ClientResult<SpaceChangeView> {
        let path = format!(
            "{}?keep_data={keep_data}",
            Client::installation_path(space, plugin)
        );
        Client::json(self.request(Method::DELETE, &path)).await
    }

    /// Switches an installation on or off.
    pub async fn set_enabled(
        &self,
        space: &str,
        plugin: &str,
        enabled: bool,
    ) -> ClientResult<InstallationView> {
        let action = if enabled { "enable" } else { "disable" };
        let path = format!("{}/{action}", Client::installation_path(space, plugin));
        Client::json(self.request(Method::POST, &path)).await
    }

    /// Replaces an installation's config.
    pub async fn set_config(
        &self,
        space: &str,
        plugin: &str,
        config: serde_json::Value,
    ) -> ClientResult<InstallationView> {
        let path = format!("{}/config", Client::installation_path(space, plugin));
        Client::json(
            self.request(Method::PUT, &path)
                .json(&ConfigRequest { config }),
        )
        .await
    }

    /// Sets (`Some`) or removes (`None`) a secret of an installation.
    pub async fn set_secret(
        &self,
        space: &str,
        plugin: &str,
        name: &str,
        value: Option<&str>,
    ) -> ClientResult<()> {
        let path = format!(
            "{}/secrets/{name}",
            Client::installation_path(space, plugin)
        );
        let request = match value {
            Some(value) => self.request(Method::PUT, &path).json(&SecretRequest {
                value: value.to_string(),
            }),
            None => self.request(Method::DELETE, &path),
        };
        Client::send(request).await?;
        Ok(())
    }

    /// An installation's history, newest first.
    pub async fn events(
        &self,
        space: &str,
        plugin: &str,
    ) -> ClientResult<Vec<InstallationEventView>> {
        let path = format!("{}/events", Client::installation_path(space, plugin));
        Client::json(self.request(Method::GET, &path)).await
    }

    /// Re-wraps every space's data key with a new master key (administrators).
    pub async fn rotate_master_key(&self) -> ClientResult<RotationView> {
        Client::json(self.request(Method::POST, "/api/v1/admin/rotate-master-key")).await
    }

    /// Searches the catalogue; `params` are the query string's pairs (`q`, `category`, `tag`,
    /// `license`, `certified`, `sort`, `page`, `per_page`).
    pub async fn search(&self, params: &[(&str, String)]) -> ClientResult<SearchResponse> {
        Client::json(self.request(Method::GET, "/api/v1/search").query(params)).await
    }

    /// Rates and reviews a plugin as the caller (replacing the caller's earlier review).
    pub async fn review(&self, name: &str, request: &ReviewRequest) -> ClientResult<()> {
        let path = format!("/api/v1/plugins/{name}/reviews/mine");
        Client::send(self.request(Method::PUT, &path).json(request)).await?;
        Ok(())
    }

    /// A plugin's rating and most recent reviews.
    pub async fn reviews(&self, name: &str) -> ClientResult<ReviewsView> {
        Client::json(self.request(Method::GET, &format!("/api/v1/plugins/{name}/reviews"))).await
    }

    /// Audit log entries matching `params` (`target`, `action`, `actor`, `since`, `until`,
    /// `before`, `limit`), newest first (administrators).
    pub async fn audit(&self, params: &[(&str, String)]) -> ClientResult<Vec<AuditEntryView>> {
        Client::json(self.request(Method::GET, "/api/v1/audit").query(params)).await
    }

    /// A plugin's downloads per day and its active installations.
    pub async fn stats(&self, name: &str) -> ClientResult<StatsView> {
        Client::json(self.request(Method::GET, &format!("/api/v1/plugins/{name}/stats"))).await
    }

    /// Renames a space or changes its certification policy (owners).
    pub async fn update_space(
        &self,
        space: &str,
        request: &UpdateSpaceRequest,
    ) -> ClientResult<SpaceView> {
        Client::json(
            self.request(Method::PATCH, &format!("/api/v1/spaces/{space}"))
                .json(request),
        )
        .await
    }

    /// A version's certification and its history.
    pub async fn certification(
        &self,
        name: &str,
        version: &str,
    ) -> ClientResult<CertificationView> {
        let path = format!("/api/v1/plugins/{name}/{version}/certification");
        Client::json(self.request(Method::GET, &path)).await
    }

    /// Moves a version's certification one step.
    pub async fn certification_step(
        &self,
        name: &str,
        version: &str,
        request: &CertificationRequest,
    ) -> ClientResult<CertificationView> {
        let path = format!("/api/v1/plugins/{name}/{version}/certification");
        Client::json(self.request(Method::POST, &path).json(request)).await
    }

    /// Versions in a certification state (`all` for every state), longest waiting first
    /// (administrators).
    pub async fn certification_queue(&self, state: &str) -> ClientResult<CertificationQueueView> {
        Client::json(
            self.request(Method::GET, "/api/v1/admin/certifications")
                .query(&[("state", state)]),
        )
        .await
    }

    /// The registry's public key, which verifies certifications.
    pub async fn registry_key(&self) -> ClientResult<RegistryKeyView> {
        Client::json(self.request(Method::GET, "/api/v1/registry/key")).await
    }
}
