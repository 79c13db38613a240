//! Host bindings for the `aerie:plugin` world, generated from `wit/`. The WASI interfaces
//! that wasmtime implements come from `wasmtime-wasi` and `wasmtime-wasi-http`; `wasi:keyvalue`
//! and `wasi:config` are generated here because their state lives in the embedder.

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "aerie:plugin/plugin",
    imports: { default: async | trappable },
    exports: { default: async },
    require_store_data_send: true,
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:cli": wasmtime_wasi::p2::bindings::cli,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "wasi:filesystem": wasmtime_wasi::p2::bindings::filesystem,
        "wasi:random": wasmtime_wasi::p2::bindings::random,
        "wasi:sockets": wasmtime_wasi::p2::bindings::sockets,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:keyvalue/store.bucket": crate::state::Bucket,
    },
});
