//! The sandboxed WebAssembly executor (feature `wasm`, on by default).
//!
//! Guests are WebAssembly components of the world in `wit/switchyard.wit`
//! (`switchyard:component@0.1.0`). A [`crate::WasmHost`] loads them ([`crate::WasmHost::load`],
//! with typed [`crate::LoadError`]s), and turns each into a [`crate::ComponentSpec`] that
//! runs on the same workers as native handlers, under per-message fuel and deadline limits,
//! memory caps and [`crate::Capabilities`].

mod config;
mod host;
mod imports;
mod instance;
mod load;
mod state;
mod stats;
mod ticker;
mod trap;

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "guest",
    });
}

pub use config::{Capabilities, StorageRights, TargetPattern, WasmConfig, WasmOptions};
pub use host::{HostError, UpgradeError, WasmComponent, WasmHost};
pub use imports::logging::LogSink;
pub use instance::DetachedInstance;
pub use load::{
    HANDLER_EXPORT, LIFECYCLE_EXPORT, LoadError, MAX_COMPONENT_FILE_BYTES, WIT, WORLD_PACKAGE, componentize,
    componentize_with_wit, read_component_file,
};
pub use stats::WasmStatsSnapshot;
