//! One loaded version of an installation, and the calls into it: each call gets a fresh
//! store from the pre-instantiated component, runs under the installation's limits, and
//! reports to its circuit breaker.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tracing::Instrument as _;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::InstancePre;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::bindings::exports::aerie::plugin::{lifecycle, service};
use crate::bindings::exports::wasi::http::incoming_handler;
use crate::breaker::{Admission, Breaker, BreakerPolicy, BreakerState, Clock};
use crate::error::{CallError, LoadError};
use crate::limiter::MemoryBudgetSpent;
use crate::metrics::{CallKind, HostMetrics, InstallationLabels};
use crate::runtime::Runtime;
use crate::state::{PluginContext, PluginState};

/// The body of a plugin's HTTP response, streamed while the plugin writes it.
pub type ResponseBody = http_body_util::combinators::UnsyncBoxBody<Bytes, CallError>;

/// The exports the host may call, looked up once at load.
struct Exports {
    http: Option<incoming_handler::GuestIndices>,
    service: Option<service::GuestIndices>,
    lifecycle: Option<lifecycle::GuestIndices>,
}

/// One loaded version of an installation.
pub(crate) struct LoadedPlugin {
    pub context: Arc<PluginContext>,
    pub version: semver::Version,
    pub digest: String,
    runtime: Arc<Runtime>,
    pre: InstancePre<PluginState>,
    exports: Exports,
    slots: Arc<Semaphore>,
    breaker: Mutex<Breaker>,
    clock: Clock,
    health: Mutex<Health>,
    metrics: HostMetrics,
    labels: InstallationLabels,
    in_flight: Gauge,
}

/// How an installation's last health check went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// It passed (or the installation has not been checked since its `init` passed).
    Healthy,
    /// It failed.
    Unhealthy {
        /// What `health` reported, or how it failed.
        reason: String,
        /// When it started failing.
        since: SystemTime,
    },
}

/// A call admitted to run: holds a concurrency slot (and, for a call from outside the space,
/// one of the space's) and counts as in flight until dropped.
struct Admitted {
    _slot: OwnedSemaphorePermit,
    _space_slot: Option<OwnedSemaphorePermit>,
    in_flight: Gauge,
    started: Instant,
    deadline: Instant,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.in_flight.dec();
    }
}

impl LoadedPlugin {
    pub fn new(
        runtime: Arc<Runtime>,
        context: Arc<PluginContext>,
        pre: InstancePre<PluginState>,
        digest: String,
        breaker: BreakerPolicy,
        clock: Clock,
        metrics: HostMetrics,
    ) -> LoadedPlugin {
        let exports = Exports {
            http: incoming_handler::GuestIndices::new(&pre).ok(),
            service: service::GuestIndices::new(&pre).ok(),
            lifecycle: lifecycle::GuestIndices::new(&pre).ok(),
        };
        let labels = metrics.labels(&context.space, context.manifest.plugin.name.as_str());
        // Healthy until a check says otherwise, as `health` starts; the series exists from
        // the load on.
        metrics.healthy(&labels, true);
        LoadedPlugin {
            version: context.manifest.plugin.version.clone(),
            slots: Arc::new(Semaphore::new(context.limits.concurrency as usize)),
            breaker: Mutex::new(Breaker::new(breaker)),
            clock,
            health: Mutex::new(Health::Healthy),
            in_flight: metrics.in_flight(&labels),
            labels,
            metrics,
            runtime,
            context,
            pre,
            exports,
            digest,
        }
    }

    fn label(&self) -> String {
        self.context.label.clone()
    }

    /// Waits for a concurrency slot (until the deadline) after the breaker admits the call. A
    /// call from outside the space (`depth` 0) first waits for one of the space's slots, so
    /// one tenant's flood cannot take every instance; calls between its plugins ride on the
    /// outer call's.
    async fn admit(&self, kind: CallKind, depth: u32) -> Result<Admitted, CallError> {
        let started = Instant::now();
        if let Admission::Refused { retry_after } = self.breaker().admit(self.clock.now()) {
            let err = CallError::BreakerOpen {
                plugin: self.label(),
                retry_after,
            };
            self.metrics
                .call(&self.labels, kind, Err(&err), Duration::ZERO);
            return Err(err);
        }
        let timeout = self.context.limits.timeout;
        let deadline = started + timeout;
        let space_slot = if depth == 0 {
            let slot = tokio::time::timeout(
                timeout,
                Arc::clone(&self.context.space_slots).acquire_owned(),
            )
            .await
            .map_err(|_| CallError::SpaceBusy {
                plugin: self.label(),
            })
            .and_then(|slot| slot.map_err(|_| CallError::NotRunning(self.label())));
            match slot {
                Ok(slot) => Some(slot),
                Err(err) => {
                    self.record::<()>(kind, started, &Err(err.clone()));
                    return Err(err);
                }
            }
        } else {
            None
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let slot = tokio::time::timeout(remaining, Arc::clone(&self.slots).acquire_owned())
            .await
            .map_err(|_| CallError::Timeout {
                plugin: self.label(),
                timeout,
            })
            .and_then(|slot| slot.map_err(|_| CallError::NotRunning(self.label())));
        match slot {
            Ok(slot) => {
                self.in_flight.inc();
                Ok(Admitted {
                    _slot: slot,
                    _space_slot: space_slot,
                    in_flight: self.in_flight.clone(),
                    started,
                    deadline,
                })
            }
            Err(err) => {
                self.record::<()>(kind, started, &Err(err.clone()));
                Err(err)
            }
        }
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(|err| err.into_inner())
    }

    /// Counts how an admitted call ended, and tells the breaker: only misbehaviour counts as
    /// a failure.
    fn record<T>(&self, kind: CallKind, started: Instant, outcome: &Result<T, CallError>) {
        let failed = outcome
            .as_ref()
            .err()
            .is_some_and(CallError::counts_as_failure);
        if let Err(err) = outcome {
            tracing::warn!(
                target: "aerie::plugin",
                plugin = %self.context.label,
                installation = %self.context.id,
                code = err.code(),
                error = %err,
                "plugin call failed"
            );
        }
        let outcome = outcome.as_ref().map(|_| ());
        self.metrics
            .call(&self.labels, kind, outcome, started.elapsed());
        let mut breaker = self.breaker();
        breaker.record(!failed, self.clock.now());
        // Admission only turns open into trial, which the gauge counts as open too. Set under
        // the breaker's lock, so gauge writes follow the state's order.
        let open = !matches!(breaker.state(), BreakerState::Closed { .. });
        self.metrics.breaker_open(&self.labels, open);
        drop(breaker);
    }

    /// A fresh store for one call, with the deadline armed.
    fn store(&self, depth: u32, deadline: Instant) -> Store<PluginState> {
        let mut store = Store::new(
            self.runtime.engine(),
            PluginState::new(&self.context, depth, deadline),
        );
        store.limiter(|state| &mut state.limits);
        // At every epoch tick the guest yields to the async runtime, so a plugin that never
        // returns holds no worker thread for longer than a tick; past the deadline it traps.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        store
    }

    /// What a wasmtime error means for this call.
    fn classify(&self, err: &wasmtime::Error) -> CallError {
        let plugin = self.label();
        if err.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
            return CallError::Timeout {
                plugin,
                timeout: self.context.limits.timeout,
            };
        }
        if err.downcast_ref::<MemoryBudgetSpent>().is_some() {
            return CallError::MemoryLimit {
                plugin,
                limit: self.context.limits.memory,
            };
        }
        let message = format!("{err:#}");
        CallError::Trap { plugin, message }
    }

    /// Runs `call` with a fresh instance, bounded by the deadline both in the guest (epoch)
    /// and while the host awaits (a host call the plugin is waiting on).
    async fn run<T, F>(&self, depth: u32, deadline: Instant, call: F) -> Result<T, CallError>
    where
        F: AsyncFnOnce(
            &mut Store<PluginState>,
            &wasmtime::component::Instance,
        ) -> wasmtime::Result<Result<T, CallError>>,
    {
        let mut store = self.store(depth, deadline);
        let remaining = deadline.saturating_duration_since(Instant::now());
        let work = async {
            let instance = self
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(|err| self.instantiate_error(&err))?;
            match call(&mut store, &instance).await {
                Ok(outcome) => outcome,
                Err(err) => Err(self.classify(&err)),
            }
        };
        tokio::time::timeout(remaining, work)
            .await
            .unwrap_or_else(|_| {
                Err(CallError::Timeout {
                    plugin: self.label(),
                    timeout: self.context.limits.timeout,
                })
            })
    }

    fn instantiate_error(&self, err: &wasmtime::Error) -> CallError {
        match self.classify(err) {
            // Traps during instantiation are the plugin's (a start function, a memory too big);
            // anything else is the host's (the pool is exhausted).
            CallError::Trap { message, .. } if err.downcast_ref::<wasmtime::Trap>().is_none() => {
                CallError::Host {
                    plugin: self.label(),
                    message,
                }
            }
            other => other,
        }
    }

    /// Serves one HTTP request with the plugin's `wasi:http/incoming-handler`.
    #[tracing::instrument(name = "plugin.http", skip_all, fields(plugin = %self.context.label))]
    pub async fn handle_http<B>(
        self: &Arc<Self>,
        request: http::Request<B>,
    ) -> Result<http::Response<ResponseBody>, CallError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let Some(indices) = &self.exports.http else {
            return Err(CallError::NotExported {
                plugin: self.label(),
                export: "wasi:http/incoming-handler",
            });
        };
        let admitted = self.admit(CallKind::Http, 0).await?;
        let mut store = self.store(0, admitted.deadline);
        let instance = match self.pre.instantiate_async(&mut store).await {
            Ok(instance) => instance,
            Err(err) => {
                let outcome = Err(self.instantiate_error(&err));
                self.record(CallKind::Http, admitted.started, &outcome);
                return outcome;
            }
        };
        let handler = indices
            .load(&mut store, &instance)
            .map_err(|err| self.classify(&err))?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let resources: wasmtime::Result<_> = (|| {
            let request = store
                .data_mut()
                .http()
                .new_incoming_request(Scheme::Http, request)?;
            let out = store.data_mut().http().new_response_outparam(sender)?;
            Ok((request, out))
        })();
        let (request, out) = resources.map_err(|err| CallError::Host {
            plugin: self.label(),
            message: format!("{err:#}"),
        })?;

        // The guest runs in its own task: it may keep writing the body after it has sent the
        // response head. The task ends with the call, which is when the slot is released and
        // the outcome is known.
        let (done_sender, done) = tokio::sync::oneshot::channel();
        let plugin = Arc::clone(self);
        let remaining = admitted.deadline.saturating_duration_since(Instant::now());
        tokio::spawn(
            async move {
                let started = admitted.started;
                let outcome = match tokio::time::timeout(
                    remaining,
                    handler.call_handle(&mut store, request, out),
                )
                .await
                {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(err)) => Err(plugin.classify(&err)),
                    Err(_) => Err(CallError::Timeout {
                        plugin: plugin.label(),
                        timeout: plugin.context.limits.timeout,
                    }),
                };
                plugin.record(CallKind::Http, started, &outcome);
                drop(admitted);
                let _ = done_sender.send(outcome);
            }
            .instrument(tracing::Span::current()),
        );

        match receiver.await {
            Ok(Ok(response)) => Ok(self.limit_body(response, done)),
            Ok(Err(code)) => Err(CallError::Failed {
                plugin: self.label(),
                message: format!("the handler answered with the error {code:?}"),
            }),
            // The guest returned or failed without setting a response.
            Err(_) => match done.await {
                Ok(Err(err)) => Err(err),
                _ => Err(CallError::Failed {
                    plugin: self.label(),
                    message: "the handler returned without a response".into(),
                }),
            },
        }
    }

    /// The response with its body capped at the installation's response size, and ending
    /// with the call's error when the plugin failed while writing it.
    fn limit_body(
        &self,
        response: http::Response<HyperOutgoingBody>,
        done: tokio::sync::oneshot::Receiver<Result<(), CallError>>,
    ) -> http::Response<ResponseBody> {
        let limit = self.context.limits.response_size;
        let label = self.label();
        response.map(move |body| {
            let state = (body, 0u64, Some(done));
            let stream = futures::stream::unfold(state, move |(mut body, sent, done)| {
                let label = label.clone();
                async move {
                    let done = done?;
                    match body.frame().await {
                        Some(Ok(frame)) => {
                            let size = frame.data_ref().map_or(0, |data| data.len() as u64);
                            let sent = sent + size;
                            if sent > limit {
                                let err = CallError::ResponseTooLarge {
                                    plugin: label,
                                    limit,
                                };
                                return Some((Err(err), (body, sent, None)));
                            }
                            Some((Ok(frame), (body, sent, Some(done))))
                        }
                        Some(Err(code)) => {
                            let err = match done.await {
                                Ok(Err(err)) => err,
                                _ => CallError::Failed {
                                    plugin: label,
                                    message: format!("the body failed: {code:?}"),
                                },
                            };
                            Some((Err(err), (body, sent, None)))
                        }
                        // The body ends once the call has ended and its outcome is counted, so
                        // a client that has read the whole response sees the breaker and the
                        // metrics as that call left them.
                        None => {
                            let _ = done.await;
                            None
                        }
                    }
                }
            });
            http_body_util::StreamBody::new(stream).boxed_unsync()
        })
    }

    /// Calls the plugin's service `name`.
    #[tracing::instrument(name = "plugin.service", skip_all, fields(plugin = %self.context.label, service = name, depth))]
    pub async fn call_service(
        &self,
        name: &str,
        request: Vec<u8>,
        depth: u32,
    ) -> Result<Vec<u8>, CallError> {
        let Some(indices) = &self.exports.service else {
            return Err(CallError::NotExported {
                plugin: self.label(),
                export: "aerie:plugin/service",
            });
        };
        if !self
            .context
            .manifest
            .provides
            .services
            .iter()
            .any(|provided| provided == name)
        {
            return Err(CallError::UnknownService {
                plugin: self.label(),
                service: name.to_string(),
            });
        }
        let admitted = self.admit(CallKind::Service, depth).await?;
        let label = self.label();
        let outcome = self
            .run(depth, admitted.deadline, async |store, instance| {
                let guest = indices.load(&mut *store, instance)?;
                let answer = guest.call_handle(&mut *store, name, &request).await?;
                Ok(answer.map_err(|err| match err {
                    service::Error::UnknownService => CallError::UnknownService {
                        plugin: label.clone(),
                        service: name.to_string(),
                    },
                    service::Error::BadRequest(message) => CallError::BadRequest {
                        plugin: label.clone(),
                        message,
                    },
                    service::Error::Failed(message) => CallError::Failed {
                        plugin: label.clone(),
                        message,
                    },
                }))
            })
            .await;
        self.record(CallKind::Service, admitted.started, &outcome);
        outcome
    }

    /// Runs `init(previous)`; a plugin without the `lifecycle` export initialises trivially
    /// once it instantiates.
    pub async fn init(&self, previous: Option<&str>) -> Result<(), LoadError> {
        self.lifecycle_call(async |guest, store| guest.call_init(store, previous).await)
            .await
            .map_err(LoadError::Init)
    }

    /// Runs `health()`, and keeps its outcome as the installation's health.
    pub async fn check_health(&self) -> Result<(), LoadError> {
        let started = Instant::now();
        let outcome = self
            .lifecycle_call(async |guest, store| guest.call_health(store).await)
            .await;
        let failure = outcome.as_ref().err().map(|message| CallError::Failed {
            plugin: self.label(),
            message: message.clone(),
        });
        self.metrics.call(
            &self.labels,
            CallKind::Health,
            failure.as_ref().map_or(Ok(()), Err),
            started.elapsed(),
        );
        self.metrics.healthy(&self.labels, outcome.is_ok());
        let mut health = self.health.lock().unwrap_or_else(|err| err.into_inner());
        match (&*health, &outcome) {
            (Health::Healthy, Err(reason)) => {
                tracing::warn!(
                    target: "aerie::plugin", plugin = %self.context.label,
                    installation = %self.context.id, %reason, "plugin became unhealthy"
                );
                *health = Health::Unhealthy {
                    reason: reason.clone(),
                    since: SystemTime::now(),
                };
            }
            (Health::Unhealthy { since, .. }, Err(reason)) => {
                *health = Health::Unhealthy {
                    reason: reason.clone(),
                    since: *since,
                };
            }
            (Health::Unhealthy { .. }, Ok(())) => {
                tracing::info!(
                    target: "aerie::plugin", plugin = %self.context.label,
                    installation = %self.context.id, "plugin is healthy again"
                );
                *health = Health::Healthy;
            }
            (Health::Healthy, Ok(())) => {}
        }
        outcome.map_err(LoadError::Health)
    }

    /// Where its circuit breaker stands.
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker().state()
    }

    /// How the last health check went.
    pub fn health(&self) -> Health {
        self.health
            .lock()
            .unwrap_or_else(|err| err.into_inner())
            .clone()
    }

    /// Stops counting this installation's state gauges (it no longer runs).
    pub fn forget_metrics(&self) {
        self.metrics.forget(&self.labels);
    }

    /// Runs `shutdown()`, best effort.
    pub async fn shutdown(&self) {
        let outcome = self
            .lifecycle_call(async |guest, store| guest.call_shutdown(store).await.map(Ok))
            .await;
        if let Err(message) = outcome {
            tracing::warn!(target: "aerie::plugin", plugin = %self.context.label, %message, "shutdown failed");
        }
    }

    async fn lifecycle_call<F>(&self, call: F) -> Result<(), String>
    where
        F: AsyncFnOnce(
            &lifecycle::Guest,
            &mut Store<PluginState>,
        ) -> wasmtime::Result<Result<(), String>>,
    {
        let deadline = Instant::now() + self.context.limits.timeout;
        let indices = self.exports.lifecycle.as_ref();
        self.run(0, deadline, async |store, instance| {
            let Some(indices) = indices else {
                return Ok(Ok(()));
            };
            let guest = indices.load(&mut *store, instance)?;
            Ok(call(&guest, store)
                .await?
                .map_err(|message| CallError::Failed {
                    plugin: self.label(),
                    message,
                }))
        })
        .await
        .map_err(|err| match err {
            CallError::Failed { message, .. } => message,
            other => other.to_string(),
        })
    }

    /// Whether the plugin exports an HTTP handler.
    pub fn serves_http(&self) -> bool {
        self.exports.http.is_some()
    }

    /// Waits until no call is running, for at most `grace`.
    pub async fn drain(&self, grace: Duration) {
        let all = self.context.limits.concurrency;
        let _ = tokio::time::timeout(grace, self.slots.acquire_many(all)).await;
    }
}
