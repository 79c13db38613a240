//! Generated bindings for the plugin ABI in the project's `wit/` directory.
//!
//! The imports live in one world. Each optional export has a world of its own, whose export
//! macro also emits that world's type information into the plugin crate, so a plugin's
//! component exports exactly the interfaces its `aerie_sdk::export!` names and nothing else.
#![allow(missing_docs, unsafe_code, unsafe_op_in_unsafe_fn)]

pub mod imports {
    wit_bindgen::generate!({
        path: "../../wit",
        inline: r#"
            package aerie:sdk;

            world guest-imports {
                import wasi:http/outgoing-handler@0.2.12;
                import wasi:keyvalue/store@0.2.0-draft;
                import wasi:keyvalue/atomics@0.2.0-draft;
                import wasi:keyvalue/batch@0.2.0-draft;
                import wasi:config/store@0.2.0-rc.1;
                import aerie:plugin/secrets@0.1.0;
                import aerie:plugin/logging@0.1.0;
                import aerie:plugin/services@0.1.0;
            }
        "#,
        world: "aerie:sdk/guest-imports",
        generate_all,
    });
}

pub mod http_endpoint {
    wit_bindgen::generate!({
        path: "../../wit",
        inline: r#"
            package aerie:sdk;

            world http-endpoint {
                export wasi:http/incoming-handler@0.2.12;
            }
        "#,
        world: "aerie:sdk/http-endpoint",
        with: {
            "wasi:http/types@0.2.12": crate::__private::imports::wasi::http::types,
            "wasi:io/streams@0.2.12": crate::__private::imports::wasi::io::streams,
            "wasi:io/error@0.2.12": crate::__private::imports::wasi::io::error,
            "wasi:io/poll@0.2.12": crate::__private::imports::wasi::io::poll,
            "wasi:clocks/monotonic-clock@0.2.12": crate::__private::imports::wasi::clocks::monotonic_clock,
        },
        pub_export_macro: true,
        export_macro_name: "export_http_endpoint",
        default_bindings_module: "aerie_sdk::__private::http_endpoint",
    });
}

pub mod service_export {
    wit_bindgen::generate!({
        path: "../../wit",
        inline: r#"
            package aerie:sdk;

            world service-export {
                export aerie:plugin/service@0.1.0;
            }
        "#,
        world: "aerie:sdk/service-export",
        pub_export_macro: true,
        export_macro_name: "export_service",
        default_bindings_module: "aerie_sdk::__private::service_export",
    });
}

pub mod lifecycle_export {
    wit_bindgen::generate!({
        path: "../../wit",
        inline: r#"
            package aerie:sdk;

            world lifecycle-export {
                export aerie:plugin/lifecycle@0.1.0;
            }
        "#,
        world: "aerie:sdk/lifecycle-export",
        pub_export_macro: true,
        export_macro_name: "export_lifecycle",
        default_bindings_module: "aerie_sdk::__private::lifecycle_export",
    });
}
