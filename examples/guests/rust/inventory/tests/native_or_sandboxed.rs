//! One component source, run both ways: this crate built for `wasm32-wasip2` and hosted by
//! the WASM host (sandboxed, metered), and the same source registered natively
//! (`switchyard_guest::native`). The same messages get the same replies and leave the same
//! stored state.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use inventory::{Inventory, Op, Reply};
use switchyard::{
    Capabilities, ComponentRef, DeadLetterReason, RedbBackend, RequestError, Runtime, StorageRights, WasmConfig,
    WasmHost, WasmOptions,
};

const WAIT: Duration = Duration::from_secs(20);

/// Builds this crate for `wasm32-wasip2` with the real toolchain, into a target directory
/// of its own (the test's own build holds the usual one); `None` when the target is not
/// installed and CI does not require it.
fn build_component() -> Option<PathBuf> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == "wasm32-wasip2"));
    if !installed {
        assert!(
            std::env::var_os("SWITCHYARD_REQUIRE_TOOLCHAINS").is_none(),
            "the wasm32-wasip2 target is not installed (rustup target add wasm32-wasip2)"
        );
        eprintln!("skipped: the wasm32-wasip2 target is not installed (rustup target add wasm32-wasip2)");
        return None;
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("wasm-guests"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../../target/wasm-guests"),
    };
    let built = Command::new(env!("CARGO"))
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .expect("cargo runs");
    assert!(built.success(), "the component builds for wasm32-wasip2");
    Some(target_dir.join("wasm32-wasip2/release/inventory.wasm"))
}

/// The same component both ways, each with a store of its own.
fn both(wasm: &Path) -> (Runtime, ComponentRef, Arc<RedbBackend>, ComponentRef, Arc<RedbBackend>, WasmHost) {
    let rt = Runtime::builder().workers(2).build().expect("runtime");
    let native_store = Arc::new(RedbBackend::in_memory().expect("store"));
    let native = rt
        .spawn_spec("inv-native", switchyard_guest::native::spec::<Inventory>(Some(native_store.clone())))
        .expect("registered natively");
    let wasm_store = Arc::new(RedbBackend::in_memory().expect("store"));
    let host = WasmHost::with_storage(WasmConfig { pooling: false, ..WasmConfig::default() }, wasm_store.clone())
        .expect("host");
    let code = host.load_file(wasm).expect("the component loads");
    let caps = Capabilities { storage: StorageRights::ReadWrite, ..Capabilities::default() };
    let sandboxed = host.spawn(&rt, "inv-wasm", &code, WasmOptions::default().capabilities(caps)).expect("hosted");
    (rt, native, native_store, sandboxed, wasm_store, host)
}

/// A reply, or the failure's text (the same whichever way the component ran).
fn ask(component: &ComponentRef, op: &Op) -> Result<Reply, String> {
    match component.ask_within::<Reply>(op, WAIT).wait() {
        Ok(reply) => Ok(reply),
        Err(switchyard::AskError::Failed(RequestError::Failed(DeadLetterReason::HandlerFailed { error, .. }))) => {
            Err(error)
        }
        Err(other) => panic!("{}: {other}", component.id()),
    }
}

/// Every key and value in `namespace` of `store`.
fn stored(store: &RedbBackend, namespace: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let keys = store.list_keys(namespace, b"").expect("lists");
    keys.into_iter().map(|k| (k.clone(), store.get(namespace, &k).expect("reads").expect("present"))).collect()
}

#[test]
fn one_source_gives_the_same_replies_and_stored_state_native_and_sandboxed() {
    let Some(wasm) = build_component() else { return };
    let (rt, native, native_store, sandboxed, wasm_store, _host) = both(&wasm);
    let item = |s: &str| s.to_string();
    let script = [
        Op::Add { item: item("apple"), qty: 5 },
        Op::Add { item: item("pear"), qty: 2 },
        Op::Take { item: item("apple"), qty: 3 },
        Op::Take { item: item("pear"), qty: 5 },
        Op::Count { item: item("apple") },
        Op::Count { item: item("plum") },
        Op::List,
    ];
    let mut replies = Vec::new();
    for op in &script {
        let (n, w) = (ask(&native, op), ask(&sandboxed, op));
        assert_eq!(n, w, "{op:?}: native and sandboxed answer alike");
        replies.push(n);
    }
    // What the replies were (so that agreeing on nothing would not pass).
    assert_eq!(replies[2], Ok(Reply::Count(2)));
    assert_eq!(replies[3], Err("only 2 pear in stock".to_string()));
    assert_eq!(replies[6], Ok(Reply::Items(vec![(item("apple"), 2), (item("pear"), 2)])));
    // One-way messages too, then the stored state, byte for byte.
    native.tell(&Op::Add { item: item("plum"), qty: 1 }).expect("told");
    sandboxed.tell(&Op::Add { item: item("plum"), qty: 1 }).expect("told");
    assert_eq!(ask(&native, &Op::Count { item: item("plum") }), Ok(Reply::Count(1)));
    assert_eq!(ask(&sandboxed, &Op::Count { item: item("plum") }), Ok(Reply::Count(1)));
    let state = stored(&native_store, "inv-native");
    assert_eq!(state.len(), 3, "{state:?}");
    assert_eq!(state, stored(&wasm_store, "inv-wasm"));
    assert!(rt.shutdown(WAIT).is_balanced());
}
