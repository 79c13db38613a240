//! A store's data: one call's WASI context and resource table, and the installation's
//! capabilities behind the host interfaces. Everything here is per call except the
//! [`PluginContext`], shared by every call of one loaded version.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use aerie_core::manifest::{Manifest, OutboundHost};
use aerie_core::name::PluginName;
use async_trait::async_trait;
use tracing::Instrument as _;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::bindings::aerie::plugin::{logging, secrets, services};
use crate::bindings::wasi::config::store as config;
use crate::bindings::wasi::keyvalue::{atomics, batch, store};
use crate::capabilities::{KeyValue, Secrets};
use crate::error::CallError;
use crate::limiter::{CallLimiter, ComponentCaps, KeyValueLimits};
use crate::outbound::{OutboundClient, host_and_port};
use crate::spec::Limits;

/// How deep service calls may nest (A calls B calls C ...), so that plugins calling each
/// other in a loop fail instead of exhausting the host.
const MAX_CALL_DEPTH: u32 = 8;

/// Keys per page of `list-keys`.
const KEY_PAGE: u32 = 1000;

/// Routes service calls between plugins: the host implements it.
#[async_trait]
pub(crate) trait ServiceRouter: Send + Sync {
    /// Calls `service` of `plugin` in `space` on behalf of a plugin at call depth `depth`.
    async fn call_service(
        &self,
        space: &str,
        plugin: &PluginName,
        service: &str,
        request: Vec<u8>,
        depth: u32,
    ) -> Result<Vec<u8>, CallError>;
}

/// What every call of one loaded version shares.
pub(crate) struct PluginContext {
    /// The installation's id: the scope of its state and secrets.
    pub id: String,
    /// The installation's space.
    pub space: String,
    /// `namespace/name@version`, for logs and errors.
    pub label: String,
    pub manifest: Arc<Manifest>,
    pub config: BTreeMap<String, String>,
    pub outbound: Arc<[OutboundHost]>,
    /// The client outbound calls go through, when the installation may make any.
    pub outbound_client: Option<OutboundClient>,
    pub limits: Limits,
    /// What one component may create besides memory.
    pub caps: ComponentCaps,
    /// The longest key and value it may store.
    pub keyvalue: KeyValueLimits,
    /// The space's slots for calls from outside it, shared by all its installations.
    pub space_slots: Arc<tokio::sync::Semaphore>,
    pub kv: Arc<dyn KeyValue>,
    pub secrets: Arc<dyn Secrets>,
    pub router: Weak<dyn ServiceRouter>,
}

/// A store's data.
pub(crate) struct PluginState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    pub limits: CallLimiter,
    outbound: OutboundPolicy,
    context: Arc<PluginContext>,
    /// How deep in a chain of service calls this call is.
    depth: u32,
}

impl PluginState {
    /// Fresh state for one call ending at `deadline`.
    pub fn new(
        context: &Arc<PluginContext>,
        depth: u32,
        deadline: std::time::Instant,
    ) -> PluginState {
        let log = |stream| LogStream {
            label: Arc::from(context.label.as_str()),
            installation: Arc::from(context.id.as_str()),
            stream,
        };
        // No environment, arguments, stdin, preopened directories or sockets: a plugin sees
        // only what its grants link in.
        let wasi = WasiCtx::builder()
            .stdout(log("stdout"))
            .stderr(log("stderr"))
            .build();
        PluginState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limits: CallLimiter::new(context.limits.memory, context.caps),
            outbound: OutboundPolicy {
                label: context.label.clone(),
                hosts: Arc::clone(&context.outbound),
                client: context.outbound_client.clone(),
                deadline,
            },
            context: Arc::clone(context),
            depth,
        }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

/// Outbound HTTP goes only to the hosts the manifest declares and the installation allows, and
/// through the [`OutboundClient`], which connects only to addresses the operator's policy
/// allows.
struct OutboundPolicy {
    label: String,
    hosts: Arc<[OutboundHost]>,
    client: Option<OutboundClient>,
    /// The call's deadline: no outbound wait outlasts it.
    deadline: std::time::Instant,
}

impl OutboundPolicy {
    fn allows(&self, uri: &http::Uri) -> bool {
        host_and_port(uri).is_some_and(|(host, port)| {
            self.hosts.iter().any(|allowed| allowed.allows(&host, port))
        })
    }
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<wasmtime_wasi_http::WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        mut request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _response_errors: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let refused = |reason: &'static str| {
            tracing::warn!(
                target: "aerie::plugin",
                plugin = %self.label,
                uri = %request.uri(),
                reason,
                "outbound request refused"
            );
        };
        if !self.allows(request.uri()) {
            refused("the host and port are not among those the installation may call");
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let Some(client) = self.client.clone() else {
            refused("the host makes no outbound calls");
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        };
        let remaining = self
            .deadline
            .saturating_duration_since(std::time::Instant::now());
        let first_byte = options
            .and_then(|options| options.first_byte_timeout)
            .map_or(remaining, |asked| asked.min(remaining));
        let label = self.label.clone();
        let span = tracing::info_span!(
            target: "aerie::plugin",
            "outbound",
            otel.kind = "client",
            plugin = %self.label,
            method = %request.method(),
            host = request.uri().host().unwrap_or(""),
        );
        crate::telemetry::carry_trace(&span, request.headers_mut());
        Box::new(
            async move {
                let uri = request.uri().clone();
                let outcome = client.send(request, first_byte).await;
                if let Err(err) = &outcome {
                    tracing::warn!(target: "aerie::plugin", plugin = %label, %uri, error = %err, "outbound request failed");
                }
                Ok((
                    outcome?,
                    Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
                ))
            }
            .instrument(span),
        )
    }
}

/// `text` with control characters (newlines, carriage returns, terminal escapes) written as
/// escapes, so that what a plugin logs is one line and cannot pass for a line of the host's.
pub(crate) fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for character in text.chars() {
        if character.is_control() {
            escaped.extend(character.escape_default());
        } else {
            escaped.push(character);
        }
    }
    std::borrow::Cow::Owned(escaped)
}

/// A plugin's stdout or stderr: each line becomes a log line tagged with the installation.
#[derive(Clone)]
struct LogStream {
    label: Arc<str>,
    installation: Arc<str>,
    stream: &'static str,
}

/// Lines longer than this are split.
const MAX_LOG_LINE: usize = 8 * 1024;

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            stream: self.clone(),
            pending: Vec::new(),
        })
    }
}

struct LineWriter {
    stream: LogStream,
    pending: Vec<u8>,
}

impl LineWriter {
    fn emit(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = printable(line.trim_end_matches('\r'));
        tracing::info!(
            target: "aerie::plugin",
            plugin = %self.stream.label,
            installation = %self.stream.installation,
            stream = self.stream.stream,
            "{line}"
        );
    }
}

impl tokio::io::AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|&byte| byte == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.emit(&line[..line.len() - 1]);
        }
        while self.pending.len() >= MAX_LOG_LINE {
            let line: Vec<u8> = self.pending.drain(..MAX_LOG_LINE).collect();
            self.emit(&line);
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
    }
}

/// A `wasi:keyvalue` bucket: a name within the installation's state.
pub struct Bucket {
    name: String,
}

fn store_error(err: crate::capabilities::StoreError) -> store::Error {
    store::Error::Other(err.0)
}

impl PluginState {
    /// The installation's context and the bucket's name, for a call into the store.
    fn bucket(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<(Arc<PluginContext>, String)> {
        Ok((
            Arc::clone(&self.context),
            self.table.get(bucket)?.name.clone(),
        ))
    }
}

impl PluginState {
    /// Refuses a key (and value) longer than the installation may store, before the store
    /// sees it.
    fn check_kv(&self, key: &str, value: Option<&[u8]>) -> Result<(), store::Error> {
        self.context
            .keyvalue
            .check(key, value)
            .map_err(store::Error::Other)
    }
}

impl store::Host for PluginState {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<Bucket>, store::Error>> {
        if identifier.is_empty() || identifier.len() > 64 {
            return Ok(Err(store::Error::NoSuchStore));
        }
        Ok(Ok(self.table.push(Bucket { name: identifier })?))
    }
}

impl store::HostBucket for PluginState {
    async fn get(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, store::Error>> {
        if let Err(err) = self.check_kv(&key, None) {
            return Ok(Err(err));
        }
        let (context, name) = self.bucket(&bucket)?;
        Ok(context
            .kv
            .get(&context.id, &name, &key)
            .await
            .map_err(store_error))
    }

    async fn set(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), store::Error>> {
        if let Err(err) = self.check_kv(&key, Some(&value)) {
            return Ok(Err(err));
        }
        let (context, name) = self.bucket(&bucket)?;
        Ok(context
            .kv
            .set(&context.id, &name, &key, value)
            .await
            .map_err(store_error))
    }

    async fn delete(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<(), store::Error>> {
        if let Err(err) = self.check_kv(&key, None) {
            return Ok(Err(err));
        }
        let (context, name) = self.bucket(&bucket)?;
        Ok(context
            .kv
            .delete(&context.id, &name, &key)
            .await
            .map_err(store_error))
    }

    async fn exists(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<bool, store::Error>> {
        if let Err(err) = self.check_kv(&key, None) {
            return Ok(Err(err));
        }
        let (context, name) = self.bucket(&bucket)?;
        Ok(context
            .kv
            .get(&context.id, &name, &key)
            .await
            .map(|value| value.is_some())
            .map_err(store_error))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> wasmtime::Result<Result<store::KeyResponse, store::Error>> {
        let (context, name) = self.bucket(&bucket)?;
        Ok(context
            .kv
            .list_keys(&context.id, &name, cursor.unwrap_or(0), KEY_PAGE)
            .await
            .map(|page| store::KeyResponse {
                keys: page.keys,
                cursor: page.cursor,
            })
            .map_err(store_error))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for PluginState {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> wasmtime::Result<Result<u64, store::Error>> {
        if let Err(err) = self.check_kv(&key, None) {
            return Ok(Err(err));
        }
        let (context, name) = self.bucket(&bucket)?;
        Ok(context
            .kv
            .increment(&context.id, &name, &key, delta)
            .await
            .map_err(store_error))
    }
}

impl batch::Host for PluginState {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Option<(String, Vec<u8>)>>, store::Error>> {
        if let Some(err) = keys.iter().find_map(|key| self.check_kv(key, None).err()) {
            return Ok(Err(err));
        }
        let (context, name) = self.bucket(&bucket)?;
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            match context.kv.get(&context.id, &name, &key).await {
                Ok(value) => values.push(value.map(|value| (key, value))),
                Err(err) => return Ok(Err(store_error(err))),
            }
        }
        Ok(Ok(values))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), store::Error>> {
        if let Some(err) = key_values
            .iter()
            .find_map(|(key, value)| self.check_kv(key, Some(value)).err())
        {
            return Ok(Err(err));
        }
        let (context, name) = self.bucket(&bucket)?;
        for (key, value) in key_values {
            if let Err(err) = context.kv.set(&context.id, &name, &key, value).await {
                return Ok(Err(store_error(err)));
            }
        }
        Ok(Ok(()))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), store::Error>> {
        if let Some(err) = keys.iter().find_map(|key| self.check_kv(key, None).err()) {
            return Ok(Err(err));
        }
        let (context, name) = self.bucket(&bucket)?;
        for key in keys {
            if let Err(err) = context.kv.delete(&context.id, &name, &key).await {
                return Ok(Err(store_error(err)));
            }
        }
        Ok(Ok(()))
    }
}

impl config::Host for PluginState {
    async fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Option<String>, config::Error>> {
        Ok(Ok(self.context.config.get(&key).cloned()))
    }

    async fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, config::Error>> {
        Ok(Ok(self
            .context
            .config
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()))
    }
}

impl secrets::Host for PluginState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, secrets::Error>> {
        let context = Arc::clone(&self.context);
        if !context.manifest.permissions.secrets.contains(&name) {
            return Ok(Err(secrets::Error::NotDeclared));
        }
        match context.secrets.get(&context.id, &name).await {
            Ok(Some(value)) => Ok(Ok(value)),
            Ok(None) => Ok(Err(secrets::Error::NotSet)),
            Err(err) => {
                // The store failed: the plugin sees "not set", the operator sees why.
                tracing::error!(plugin = %context.label, secret = %name, error = %err, "reading a secret failed");
                Ok(Err(secrets::Error::NotSet))
            }
        }
    }
}

impl logging::Host for PluginState {
    async fn log(
        &mut self,
        level: logging::Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        let label = &self.context.label;
        let installation = &self.context.id;
        let message = printable(&message);
        let fields = fields
            .iter()
            .map(|(key, value)| format!("{}={value:?}", printable(key)))
            .collect::<Vec<_>>()
            .join(" ");
        macro_rules! emit {
            ($level:ident) => {
                tracing::$level!(target: "aerie::plugin", plugin = %label, installation = %installation, fields = %fields, "{message}")
            };
        }
        match level {
            logging::Level::Trace => emit!(trace),
            logging::Level::Debug => emit!(debug),
            logging::Level::Info => emit!(info),
            logging::Level::Warn => emit!(warn),
            logging::Level::Error => emit!(error),
        }
        Ok(())
    }
}

impl services::Host for PluginState {
    async fn call(
        &mut self,
        plugin: String,
        service: String,
        request: Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<u8>, services::CallError>> {
        let context = Arc::clone(&self.context);
        let Ok(target) = plugin.parse::<PluginName>() else {
            return Ok(Err(services::CallError::NotPermitted));
        };
        if !context.manifest.permissions.services.contains(&target) {
            return Ok(Err(services::CallError::NotPermitted));
        }
        if self.depth + 1 >= MAX_CALL_DEPTH {
            return Ok(Err(services::CallError::Failed(format!(
                "service calls nest deeper than {MAX_CALL_DEPTH}"
            ))));
        }
        let Some(router) = context.router.upgrade() else {
            return Ok(Err(services::CallError::Unavailable(
                "the host is stopping".into(),
            )));
        };
        let outcome = router
            .call_service(&context.space, &target, &service, request, self.depth + 1)
            .await;
        Ok(outcome.map_err(|err| match err {
            CallError::NotRunning(_)
            | CallError::BreakerOpen { .. }
            | CallError::Host { .. }
            | CallError::SpaceBusy { .. } => services::CallError::Unavailable(err.to_string()),
            CallError::NotExported { .. } | CallError::UnknownService { .. } => {
                services::CallError::UnknownService
            }
            CallError::BadRequest { message, .. } => services::CallError::BadRequest(message),
            other => services::CallError::Failed(other.to_string()),
        }))
    }
}
