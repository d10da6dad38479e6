//! The `tracing` feature: a real subscriber sees the spans and events of a turn, a handler
//! failure and its restart, a dead letter with its reason, a request's outcome, a WASM trap
//! and a guest's log line, each with the component id.
#![cfg(all(feature = "tracing", feature = "wasm"))]

mod common;
mod wasm_guests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use common::*;
use switchyard::{
    ComponentSpec, DeadLetterReason, MessageType, Runtime, WasmConfig, WasmHost, WasmOptions, handler_fn,
};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// A span or event as the subscriber saw it.
#[derive(Debug, Clone)]
struct Seen {
    span: bool,
    /// The span's name, or the event's message.
    name: String,
    level: tracing::Level,
    fields: HashMap<String, String>,
}

#[derive(Default)]
struct Fields(HashMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_string(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

struct Collect(Arc<Mutex<Vec<Seen>>>);

impl<S: tracing::Subscriber> Layer<S> for Collect {
    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, _id: &tracing::span::Id, _ctx: Context<'_, S>) {
        let mut f = Fields::default();
        attrs.record(&mut f);
        let m = attrs.metadata();
        self.0.lock().unwrap().push(Seen { span: true, name: m.name().to_string(), level: *m.level(), fields: f.0 });
    }

    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let name = f.0.remove("message").unwrap_or_default();
        self.0.lock().unwrap().push(Seen { span: false, name, level: *event.metadata().level(), fields: f.0 });
    }
}

/// Everything the process's subscriber saw so far.
fn seen() -> Vec<Seen> {
    static SEEN: OnceLock<Arc<Mutex<Vec<Seen>>>> = OnceLock::new();
    let all = SEEN.get_or_init(|| {
        let all = Arc::new(Mutex::new(Vec::new()));
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Collect(all.clone())))
            .expect("the only subscriber of this test binary");
        all
    });
    all.lock().unwrap().clone()
}

fn find<'a>(all: &'a [Seen], span: bool, name: &str, component: &str) -> Option<&'a Seen> {
    all.iter().find(|s| {
        s.span == span && s.name.starts_with(name) && s.fields.get("component").map(String::as_str) == Some(component)
    })
}

#[test]
fn the_subscriber_sees_turns_failures_restarts_dead_letters_requests_traps_and_guest_lines() {
    seen();
    let (tx, dead) = crossbeam_channel::unbounded();
    let rt = Runtime::builder()
        .workers(2)
        .dead_letter_hook(move |d| {
            let _ = tx.send(d);
        })
        .build()
        .unwrap();
    rt.register(id("t-panics"), ComponentSpec::new(|| handler_fn(|_c, _m| panic!("boom")))).unwrap();
    rt.register(
        id("t-echo"),
        ComponentSpec::new(|| {
            handler_fn(|_c, m| Ok((m.message_type == MessageType::Request).then(|| m.payload.clone())))
        }),
    )
    .unwrap();
    let host = WasmHost::build(WasmConfig::default(), None, Some(switchyard::tracing_log_sink())).unwrap();
    let logger = wasm_guests::load(&host, &wasm_guests::logger());
    host.register(&rt.handle(), id("t-logger"), &logger, WasmOptions::default()).unwrap();
    let trapper = wasm_guests::load(&host, &wasm_guests::trapper());
    host.register(&rt.handle(), id("t-trap"), &trapper, WasmOptions::default()).unwrap();

    rt.try_send(ff(&id("t-panics"), b"x")).unwrap();
    assert!(matches!(recv(&dead).reason, DeadLetterReason::HandlerPanicked { .. }));
    rt.try_send(ff(&id("t-trap"), b"boom")).unwrap();
    assert!(matches!(recv(&dead).reason, DeadLetterReason::Trapped { .. }));
    let reply = rt.request(req(&id("t-echo"), b"ping"), WAIT).unwrap().wait().unwrap();
    assert_eq!(reply.payload, b"ping");
    rt.try_send(ff(&id("t-logger"), b"hello from the guest")).unwrap();
    until("the guest's line is an event", || seen().iter().any(|s| !s.span && s.name == "hello from the guest"));
    until("the restart is an event", || find(&seen(), false, "restart", "t-panics").is_some());

    let all = seen();
    let turn = find(&all, true, "turn", "t-echo").expect("a turn span with the component");
    assert_eq!(turn.level, tracing::Level::DEBUG);
    let message = find(&all, true, "message", "t-echo").expect("a message span");
    assert!(message.fields.contains_key("message_id") && message.fields["attempt"] == "1", "{message:?}");
    let failed = find(&all, false, "handler failed", "t-panics").expect("the panic");
    assert_eq!((failed.level, failed.fields["reason"].as_str()), (tracing::Level::WARN, "handler_panicked"));
    assert!(find(&all, false, "restart", "t-panics").is_some());
    let letter = find(&all, false, "dead letter", "t-panics").expect("the dead letter");
    assert_eq!(letter.fields["reason"], "handler_panicked");
    let trap = find(&all, false, "trap", "t-trap").expect("the trap");
    assert_eq!(trap.fields["kind"], "unreachable");
    let request = find(&all, false, "request", "t-echo").expect("the request, with its target");
    assert!(request.fields.contains_key("request_id"), "{request:?}");
    let outcome = find(&all, false, "request outcome", "host").expect("the request's outcome, with its requester");
    assert_eq!(outcome.fields["outcome"], "response");
    let line = all.iter().find(|s| s.name == "hello from the guest").unwrap();
    assert_eq!(
        (line.level, line.fields["component"].as_str(), line.fields["stream"].as_str()),
        (tracing::Level::WARN, "t-logger", "log")
    );
    assert!(rt.shutdown(WAIT).is_balanced());
}
