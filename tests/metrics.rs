//! The `metrics` feature: a scrape through a real Prometheus recorder reports the traffic a
//! runtime carried, under the documented names.
#![cfg(feature = "metrics")]

mod common;

use std::sync::OnceLock;

use common::*;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use switchyard::{ComponentSpec, HandlerError, MessageType, Runtime, handler_fn};

/// The process's recorder (one per process: the live metrics go to the global one).
fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &[1e-6, 1e-3, 1.0])
            .expect("buckets")
            .install_recorder()
            .expect("the only recorder of this test binary")
    })
}

#[test]
fn a_scrape_reports_the_traffic_the_runtime_carried_under_the_documented_names() {
    let scrape = recorder();
    let (tx, dead) = crossbeam_channel::unbounded();
    let rt = Runtime::builder()
        .workers(2)
        .io_workers(0)
        .timing_metrics(true)
        .dead_letter_hook(move |d| {
            let _ = tx.send(d);
        })
        .build()
        .unwrap();
    let ok = payload_probe(&rt, "m-ok");
    rt.register(id("m-bad"), ComponentSpec::new(|| handler_fn(|_c, _m| Err(HandlerError::new("no"))))).unwrap();
    rt.register(
        id("m-echo"),
        ComponentSpec::new(|| {
            handler_fn(|_c, m| Ok((m.message_type == MessageType::Request).then(|| m.payload.clone())))
        }),
    )
    .unwrap();
    for i in 0..5u8 {
        rt.try_send(ff(&id("m-ok"), &[i])).unwrap();
    }
    for _ in 0..2 {
        rt.try_send(ff(&id("m-bad"), b"x")).unwrap();
    }
    rt.try_send(ff(&id("m-nobody"), b"?")).expect_err("no such component");
    let reply = rt.request(req(&id("m-echo"), b"ping"), WAIT).unwrap().wait().unwrap();
    assert_eq!(reply.payload, b"ping");
    for _ in 0..5 {
        recv(&ok);
    }
    recv(&dead);
    recv(&dead);
    until("m-ok's five messages are counted as handled", || rt.component_stats(&id("m-ok")).unwrap().handled == 5);
    until("every message is accounted for", || rt.stats().is_balanced());

    rt.record_metrics();
    let text = scrape.render();
    let stats = rt.stats();
    assert_eq!(series_value(&text, "switchyard_messages_sent_total"), stats.messages_sent as f64);
    assert_eq!(series_value(&text, "switchyard_messages_handled_total"), stats.messages_handled as f64);
    assert_eq!(series_value(&text, "switchyard_messages_dead_lettered_total"), 2.0);
    assert_eq!(series_value(&text, r#"switchyard_send_rejections_total{reason="no_such_component"}"#), 1.0);
    assert_eq!(series_value(&text, r#"switchyard_dead_letters_total{reason="handler_failed"}"#), 2.0);
    assert_eq!(series_value(&text, r#"switchyard_component_handled_total{component="m-ok"}"#), 5.0);
    assert_eq!(series_value(&text, r#"switchyard_component_failed_total{component="m-bad"}"#), 2.0);
    assert_eq!(series_value(&text, r#"switchyard_component_mailbox_capacity{component="m-ok"}"#), 128.0);
    assert_eq!(
        series_value(&text, r#"switchyard_component_dead_letters_total{component="m-bad",reason="handler_failed"}"#),
        2.0,
        "counted live, as they happened"
    );
    assert_eq!(series_value(&text, r#"switchyard_components"#), 3.0);
    assert_eq!(series_value(&text, r#"switchyard_components_by_state{state="running"}"#), 3.0);
    assert_eq!(series_value(&text, "switchyard_ready"), 1.0);
    assert_eq!(
        series_value(&text, r#"switchyard_workers{state="busy"}"#)
            + series_value(&text, r#"switchyard_workers{state="idle"}"#),
        2.0
    );
    // The timing histograms: one observation per message handled, one per request.
    assert_eq!(series_value(&text, r#"switchyard_component_handler_seconds_count{component="m-ok"}"#), 5.0);
    assert_eq!(series_value(&text, r#"switchyard_request_duration_seconds_count{outcome="response"}"#), 1.0);
    // Every family in the scrape is documented, with its help text.
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split_whitespace().nth(2).unwrap();
        assert!(switchyard::metrics::names().any(|n| n == name), "{name} is not documented");
        assert!(text.contains(&format!("# HELP {name} ")), "{name} has no help text");
    }

    // Counters only go up: a component registered again under the id starts from 0, and
    // its series goes on from the earlier incarnation's 5.
    rt.unregister(&id("m-ok")).unwrap();
    let again = payload_probe(&rt, "m-ok");
    for i in 0..2u8 {
        rt.try_send(ff(&id("m-ok"), &[i])).unwrap();
        recv(&again);
    }
    until("the new m-ok counted both", || rt.component_stats(&id("m-ok")).unwrap().handled == 2);
    rt.record_metrics();
    let text = scrape.render();
    assert_eq!(series_value(&text, r#"switchyard_component_handled_total{component="m-ok"}"#), 7.0);
    assert!(rt.shutdown(WAIT).is_balanced());
}
