//! Aerie's HTTP server: the registry API over the metadata store (`aerie-db`) and package
//! storage (`aerie-blob`), with package checks from `aerie-core`.
//!
//! [`Server::start`] opens the stores, creates the first administrator on an empty database,
//! and serves until told to stop. Handlers live in [`routes`], one module per resource; the
//! one authorization decision each makes goes through [`auth`]; errors become the one JSON
//! envelope in [`error`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aerie_api_types::ErrorBody;
use aerie_blob::{BlobStore, S3Config};
use aerie_db::{Actor, Database};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod auth;
pub mod backup;
pub mod config;
pub mod consent;
pub mod error;
pub mod gc;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod plugin_origin;
pub mod plugins;
pub mod registry_key;
pub mod routes;
pub mod search;
pub mod serve;
pub mod spaces;
pub mod state;
pub mod telemetry;
pub mod views;

pub use config::Config;
pub use state::AppState;

use crate::auth::hash_password;
use crate::error::{ApiError, Json};

/// Adds to every operation of the OpenAPI `document` the answers any of them may give, in the
/// one error envelope: 401 for a token that does not authenticate, 429 past a budget; 400 for a
/// malformed parameter or body, 404 for a missing thing the path names, 415 and 422 for a body
/// that is not JSON or not of the shape asked, where the operation takes them.
fn document_common_answers(document: &mut serde_json::Value) {
    let error = |description: &str| {
        serde_json::json!({
            "description": description,
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } }
        })
    };
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            let Some(operation) = item.get_mut(method).and_then(|op| op.as_object_mut()) else {
                continue;
            };
            let parameters_in = |place: &str| {
                operation
                    .get("parameters")
                    .and_then(|parameters| parameters.as_array())
                    .is_some_and(|parameters| parameters.iter().any(|p| p["in"] == place))
            };
            let (in_path, in_query) = (parameters_in("path"), parameters_in("query"));
            let takes_body = operation.contains_key("requestBody");
            let responses = operation
                .entry("responses")
                .or_insert_with(|| serde_json::json!({}));
            let Some(responses) = responses.as_object_mut() else {
                continue;
            };
            if in_path || in_query || takes_body {
                responses
                    .entry("400")
                    .or_insert_with(|| error("A parameter or the body is not valid"));
            }
            if in_path {
                responses.entry("404").or_insert_with(|| {
                    error("What the path names does not exist, or is not yours to see")
                });
            }
            if takes_body {
                responses
                    .entry("415")
                    .or_insert_with(|| error("The body is not `application/json`"));
                responses.entry("422").or_insert_with(|| {
                    error("The body is JSON of another shape, or its values are refused")
                });
            }
            responses
                .entry("401")
                .or_insert_with(|| error("The token or session does not authenticate"));
            responses
                .entry("429")
                .or_insert_with(|| error("Over a budget; `Retry-After` says when to try again"));
        }
    }
}

/// The OpenAPI document's frame; the paths come from the handlers.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Aerie", description = "The Aerie plugin registry API."),
    components(schemas(ErrorBody)),
    tags(
        (name = "accounts", description = "Accounts and sessions"),
        (name = "tokens", description = "API tokens"),
        (name = "namespaces", description = "Namespaces, members and publisher keys"),
        (name = "plugins", description = "Plugins and versions"),
        (name = "downloads", description = "Package downloads"),
        (name = "certification", description = "Certification of versions and the registry key"),
        (name = "spaces", description = "Spaces, members, tokens and installations"),
        (name = "admin", description = "Administration"),
    )
)]
struct ApiDoc;

/// Everything the server answers: requests to a space's plugin origin go to the plugin
/// endpoints, every other request to the API. The two are separate, each with the same outer
/// layers, so a request is routed once; cloning the app (once per request) is one `Arc`.
#[derive(Clone)]
pub struct App(Arc<Origins>);

/// A router with its outer layers, boxed once as a whole (not per route).
type Endpoint = tower::util::BoxCloneSyncService<
    axum::extract::Request,
    axum::response::Response,
    std::convert::Infallible,
>;

struct Origins {
    api: Endpoint,
    plugins: Endpoint,
    origin: plugin_origin::PluginOrigin,
}

impl tower::Service<axum::extract::Request> for App {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = tower::util::Oneshot<Endpoint, axum::extract::Request>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: axum::extract::Request) -> Self::Future {
        let authority = request
            .uri()
            .authority()
            .map(|authority| authority.as_str())
            .or_else(|| {
                request
                    .headers()
                    .get(axum::http::header::HOST)
                    .and_then(|host| host.to_str().ok())
            });
        let space =
            authority.and_then(|authority| self.0.origin.space_of(authority).map(str::to_string));
        let target = match space {
            Some(space) => {
                request
                    .extensions_mut()
                    .insert(routes::endpoints::OriginSpace(space));
                self.0.plugins.clone()
            }
            None => self.0.api.clone(),
        };
        tower::ServiceExt::oneshot(target, request)
    }
}

/// The web UI's pages, served on the API's origin beside `/api`: a router whose fallback
/// answers every path the API and the pages do not (the API's paths with [`no_route`]).
pub type Pages = fn(AppState) -> axum::Router<AppState>;

/// The answer for a path nothing serves, in the error envelope.
pub fn no_route() -> ApiError {
    ApiError::not_found("no_route", "there is nothing at this path")
}

/// The server's application: the API (with the web UI's `pages`, when given) and the plugin
/// origins.
pub fn router(state: AppState, pages: Option<Pages>) -> App {
    let plugins = axum::Router::new()
        .fallback(routes::endpoints::serve)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count_requests,
        ))
        .with_state(state.clone());
    let api = api_router(state.clone(), pages);
    App(Arc::new(Origins {
        // The API's budgets apply to every path it answers, matched or not.
        api: with_outer_layers(
            tower::ServiceBuilder::new()
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    limits::api_limits,
                ))
                .service(api),
        ),
        plugins: with_outer_layers(plugins),
        origin: state.plugin_origin.clone(),
    }))
}

/// `service` with the layers every request goes through: request ids, tracing, `nosniff`,
/// panics caught, and the body limit. They wrap the router as a whole: added to the router
/// itself, each would be boxed around every route and cloned for every request.
fn with_outer_layers<S>(service: S) -> Endpoint
where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    Endpoint::new(
        tower::ServiceBuilder::new()
        .map_response(|response: axum::http::Response<_>| response.map(axum::body::Body::new))
        .layer(SetRequestIdLayer::x_request_id(
            SequentialRequestId::default(),
        ))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let id = request
                .headers()
                .get("x-request-id")
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            let host = request
                .headers()
                .get(axum::http::header::HOST)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            let span = tracing::info_span!("request", otel.kind = "server", method = %request.method(), host = %host, path = %request.uri().path(), request_id = %id);
            telemetry::continue_trace(&span, request.headers());
            span
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetResponseHeaderLayer::if_not_present(
            axum::http::header::X_CONTENT_TYPE_OPTIONS,
            axum::http::HeaderValue::from_static("nosniff"),
        ))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("a handler panicked").into_response()
        }))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .service(service),
    )
}

/// The API's router and its OpenAPI document, with the web UI's pages when given.
fn api_router(state: AppState, pages: Option<Pages>) -> axum::Router {
    let (api, document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::accounts::signup))
        .routes(routes!(routes::accounts::login, routes::accounts::logout))
        .routes(routes!(routes::accounts::me))
        .routes(routes!(
            routes::accounts::sessions,
            routes::accounts::end_all_sessions
        ))
        .routes(routes!(routes::accounts::end_session))
        .routes(routes!(routes::accounts::change_password))
        .routes(routes!(
            routes::accounts::create_token,
            routes::accounts::list_tokens
        ))
        .routes(routes!(routes::accounts::revoke_token))
        .routes(routes!(routes::namespaces::create))
        .routes(routes!(routes::namespaces::get, routes::namespaces::update))
        .routes(routes!(
            routes::namespaces::set_member,
            routes::namespaces::remove_member
        ))
        .routes(routes!(
            routes::namespaces::keys,
            routes::namespaces::add_key
        ))
        .routes(routes!(routes::namespaces::revoke_key))
        .routes(routes!(routes::plugins::plugin))
        .routes(routes!(routes::plugins::resolve))
        .routes(routes!(routes::plugins::stats))
        .routes(routes!(routes::plugins::version, routes::plugins::publish))
        .routes(routes!(routes::plugins::yank, routes::plugins::unyank))
        .routes(routes!(
            routes::plugins::deprecate,
            routes::plugins::undeprecate
        ))
        .routes(routes!(routes::plugins::signature))
        .routes(routes!(routes::downloads::by_version))
        .routes(routes!(routes::downloads::by_digest))
        .routes(routes!(routes::admin::audit))
        .routes(routes!(routes::admin::users))
        .routes(routes!(routes::admin::replica))
        .routes(routes!(routes::search::search))
        .routes(routes!(routes::reviews::list))
        .routes(routes!(
            routes::certification::get,
            routes::certification::step
        ))
        .routes(routes!(routes::certification::queue))
        .routes(routes!(routes::certification::registry_key))
        .routes(routes!(routes::pages::page))
        .routes(routes!(routes::reviews::set, routes::reviews::delete))
        .routes(routes!(routes::spaces::create, routes::spaces::list))
        .routes(routes!(
            routes::spaces::get,
            routes::spaces::change,
            routes::spaces::delete
        ))
        .routes(routes!(routes::spaces::members))
        .routes(routes!(
            routes::spaces::set_member,
            routes::spaces::remove_member
        ))
        .routes(routes!(
            routes::spaces::create_token,
            routes::spaces::tokens
        ))
        .routes(routes!(routes::spaces::revoke_token))
        .routes(routes!(
            routes::spaces::install,
            routes::spaces::installations
        ))
        .routes(routes!(
            routes::spaces::installation,
            routes::spaces::uninstall
        ))
        .routes(routes!(routes::spaces::update))
        .routes(routes!(routes::spaces::rollback))
        .routes(routes!(routes::spaces::disable))
        .routes(routes!(routes::spaces::enable))
        .routes(routes!(routes::spaces::set_config))
        .routes(routes!(
            routes::spaces::set_secret,
            routes::spaces::remove_secret
        ))
        .routes(routes!(routes::spaces::events))
        .routes(routes!(routes::spaces::lockfile))
        .routes(routes!(routes::spaces::rotate_master_key))
        .split_for_parts();
    let mut document = serde_json::to_value(&document).expect("the OpenAPI document serialises");
    document_common_answers(&mut document);
    let api = api
        .route(
            "/api/openapi.json",
            axum::routing::get(move || async move { Json(document) }),
        )
        .route(
            "/s/{space}",
            axum::routing::any(routes::endpoints::to_plugin_origin),
        )
        .route(
            "/s/{space}/{*rest}",
            axum::routing::any(routes::endpoints::to_plugin_origin),
        )
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route("/readyz", axum::routing::get(ready))
        .route("/metrics", axum::routing::get(metrics::serve));
    match pages {
        Some(pages) => api.merge(pages(state.clone())),
        None => api.fallback(|| async { no_route() }),
    }
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        metrics::count_requests,
    ))
    .with_state(state)
}

/// Request ids for requests that bring none: this process's start time and a counter, unique
/// enough to find a request in the logs without a system call per request.
#[derive(Clone)]
struct SequentialRequestId {
    prefix: Arc<str>,
    next: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Default for SequentialRequestId {
    fn default() -> SequentialRequestId {
        SequentialRequestId {
            prefix: format!("{:x}", aerie_db::now_millis()).into(),
            next: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }
}

impl MakeRequestId for SequentialRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        axum::http::HeaderValue::from_str(&format!("{}-{n:x}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    if !*state.restored.borrow() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the spaces' plugins are still loading",
        )
        .into_response();
    }
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(err) => {
            // The reason is for the operator's log, not for whoever asks.
            tracing::error!(error = %err, "the readiness check cannot reach the database");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "the database does not answer",
            )
            .into_response()
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The metadata store.
    #[error(transparent)]
    Database(#[from] aerie_db::DbError),
    /// The blob store.
    #[error(transparent)]
    Blobs(#[from] aerie_blob::BlobError),
    /// The configuration.
    #[error("{0}")]
    Config(String),
    /// The listening socket or the data directory.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Opens the stores the configuration names.
pub async fn open_stores(config: &Config) -> Result<(Database, BlobStore), StartError> {
    std::fs::create_dir_all(&config.data_dir)?;
    // On SQLite plugins' key-value state gets a file of its own, so their writes never
    // queue the registry's.
    let state = format!(
        "sqlite://{}",
        config.data_dir.join("plugin-state.db").display()
    );
    let db = Database::connect(&config.database_url())
        .await?
        .with_separate_plugin_state(&state)
        .await?;
    Ok((db, open_blobs(config)?))
}

/// The blob store the configuration names.
pub fn open_blobs(config: &Config) -> Result<BlobStore, StartError> {
    let blobs =
        match config.blobs.store.as_str() {
            "local" => {
                let dir = config
                    .blobs
                    .dir
                    .clone()
                    .unwrap_or_else(|| config.data_dir.join("blobs"));
                BlobStore::local(&dir)?
            }
            "s3" => BlobStore::s3(&S3Config {
                bucket: config.blobs.s3_bucket.clone().ok_or_else(|| {
                    StartError::Config("blobs.s3_bucket is required for S3".into())
                })?,
                region: config
                    .blobs
                    .s3_region
                    .clone()
                    .unwrap_or_else(|| "us-east-1".into()),
                endpoint: config.blobs.s3_endpoint.clone(),
                access_key_id: config.blobs.s3_access_key_id.clone(),
                secret_access_key: config.blobs.s3_secret_access_key.clone(),
                allow_http: config.blobs.s3_allow_http,
                prefix: config.blobs.s3_prefix.clone(),
            })?,
            other => {
                return Err(StartError::Config(format!(
                    "blobs.store is `{other}`; use `local` or `s3`"
                )));
            }
        };
    Ok(blobs)
}

/// A running server.
pub struct Server {
    address: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    state: AppState,
    /// The first administrator's generated password, when this start created one.
    pub generated_admin_password: Option<String>,
}

impl Server {
    /// Opens the stores, creates the first administrator on an empty database (password from
    /// `admin_password`, or generated), and starts serving the API.
    pub async fn start(
        config: Config,
        admin_password: Option<String>,
    ) -> Result<Server, StartError> {
        Server::start_with_pages(config, admin_password, None).await
    }

    /// [`Server::start`], serving the web UI's `pages` beside the API.
    pub async fn start_with_pages(
        config: Config,
        admin_password: Option<String>,
        pages: Option<Pages>,
    ) -> Result<Server, StartError> {
        let (db, blobs) = open_stores(&config).await?;
        let generated_admin_password = first_admin(&db, admin_password).await?;
        let listener = TcpListener::bind(config.listen).await?;
        let address = listener.local_addr()?;
        let keys = keys::MasterKeys::load(
            config.master_key.as_ref().map(|key| key.0.as_str()),
            &config.master_key_file(),
        )
        .map_err(|err| StartError::Config(err.to_string()))?;
        let registry_key = registry_key::RegistryKey::load(&config.registry_key_file())
            .map_err(|err| StartError::Config(err.to_string()))?;
        let search = search::open(&db, config.data_dir.join("search"))
            .await
            .map_err(|err| StartError::Config(err.message))?;
        let plugin_origin = config
            .plugin_origin(address.port())
            .map_err(StartError::Config)?;
        let limits = config.connections.limits();
        config.outbound.policy().map_err(StartError::Config)?;
        let state = AppState::new(db, blobs, config, keys, registry_key, search, plugin_origin);
        let (shutdown, stopped) = watch::channel(false);
        let flusher = tokio::spawn(flush_downloads(state.clone(), shutdown.subscribe()));
        tokio::spawn({
            let state = state.clone();
            let mut stop = shutdown.subscribe();
            async move {
                // Buckets of clients gone quiet are dropped, so their number stays bounded.
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(60)) => state.api_limits.forget_idle(),
                        _ = stop.wait_for(|stop| *stop) => return,
                    }
                }
            }
        });
        tokio::spawn(search::follow(
            state.db.clone(),
            Arc::clone(&state.search),
            shutdown.subscribe(),
        ));
        tokio::spawn({
            let state = state.clone();
            async move {
                // Ready only once the spaces were listed and loaded: until then, a replica
                // would answer for plugins it does not run.
                while let Err(err) = spaces::restore_all(&state).await {
                    tracing::error!(error = %err.message, "restoring the spaces' plugins failed; trying again");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                state.restored.send_replace(true);
            }
        });
        tokio::spawn(spaces::follow(state.clone(), shutdown.subscribe()));
        let app = router(state.clone(), pages);
        let task = tokio::spawn(async move {
            let served = serve::serve(listener, app, limits, stopped).await;
            // The last download counts reach the database before the server is gone.
            let _ = flusher.await;
            served
        });
        tracing::info!(%address, plugin_origin = %state.plugin_origin.template(), "serving");
        Ok(Server {
            address,
            shutdown,
            task,
            state,
            generated_admin_password,
        })
    }

    /// Where the server listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The origin `space`'s plugins are served from, like `http://team.localhost:7878`.
    pub fn plugin_origin(&self, space: &str) -> String {
        self.state.plugin_origin.url(space)
    }

    /// Stops accepting requests, finishes those in flight, flushes counters, and returns.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(true);
        let served = self.task.await.map_err(std::io::Error::other)?;
        if let Some(host) = self.state.plugins.running() {
            host.shutdown().await;
        }
        served
    }

    /// The plugin host, to load plugins into.
    pub fn plugins(&self) -> &plugins::PluginHost {
        &self.state.plugins
    }

    /// Waits until every space's plugins were loaded after the start (what `/readyz` waits
    /// for).
    pub async fn restored(&self) {
        let _ = self.state.restored.subscribe().wait_for(|done| *done).await;
    }

    /// Serves until the task ends (it does not, unless the listener fails).
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.map_err(std::io::Error::other)?
    }

    /// Asks the server to stop, without waiting.
    pub fn shutdown_signal(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Creates the administrator `admin` if there are no users; returns the password when it
/// was generated here.
async fn first_admin(
    db: &Database,
    password: Option<String>,
) -> Result<Option<String>, StartError> {
    // Replicas starting together on an empty database would each count no user and each
    // create an administrator: one at a time, the others then count the first one's.
    let _first = db
        .exclusive(aerie_db::ReplicaLock::FirstAdministrator)
        .await?;
    if db.count_users().await? > 0 {
        return Ok(None);
    }
    let generated = password.is_none();
    let password = password.unwrap_or_else(auth::random_secret);
    let hash = hash_password(&limits::PasswordWork::new(1, 0), password.clone())
        .await
        .map_err(|err| StartError::Config(err.message))?;
    db.create_user(&Actor::system(), "admin", None, &hash, true)
        .await?;
    tracing::info!("created the administrator `admin`");
    Ok(generated.then_some(password))
}

/// Moves download counts into the database every few seconds, and once more at shutdown.
async fn flush_downloads(state: AppState, mut stop: watch::Receiver<bool>) {
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => false,
            _ = stop.wait_for(|stop| *stop) => true,
        };
        if let Err(err) = state.downloads.flush(&state.db).await {
            tracing::warn!(error = %err.message, "flushing download counts failed; retrying later");
        }
        if stopping {
            return;
        }
    }
}
