//! The `metrics` feature across a component's lifetimes: what a component counted is
//! exported whatever happens between scrapes (a test binary of its own: the recorder is
//! the process's, and these runtimes must not add to another test's global series).
#![cfg(feature = "metrics")]

mod common;

use common::*;
use metrics_exporter_prometheus::PrometheusBuilder;
use switchyard::Runtime;

/// A scrape exports what a component counted since the last one, whatever happened in
/// between: counts made after the last scrape of a component that was then unregistered
/// are not lost, and a component registered again under the id (which may get the memory,
/// and so the address, of the one before) adds to the series instead of being hidden.
#[test]
fn counts_made_after_the_last_scrape_survive_unregistering_and_registering_again() {
    let scrape = PrometheusBuilder::new().install_recorder().expect("the only recorder of this test binary");
    let rt = Runtime::builder().workers(1).io_workers(0).build().unwrap();
    let series = r#"switchyard_component_handled_total{component="m-again"}"#;
    let handled = |n: u64| until("handled", || rt.component_stats(&id("m-again")).is_some_and(|c| c.handled == n));
    let first = payload_probe(&rt, "m-again");
    for i in 0..3u8 {
        rt.try_send(ff(&id("m-again"), &[i])).unwrap();
        recv(&first);
    }
    handled(3);
    rt.record_metrics();
    assert_eq!(series_value(&scrape.render(), series), 3.0);
    // Two more, then unregistered before any scrape sees them.
    for i in 0..2u8 {
        rt.try_send(ff(&id("m-again"), &[i])).unwrap();
        recv(&first);
    }
    handled(5);
    rt.unregister(&id("m-again")).unwrap();
    // Registered again; another unregistration lets the runtime let go of the first one.
    let second = payload_probe(&rt, "m-again");
    let _churn = payload_probe(&rt, "m-churn");
    rt.unregister(&id("m-churn")).unwrap();
    for i in 0..2u8 {
        rt.try_send(ff(&id("m-again"), &[i])).unwrap();
        recv(&second);
    }
    handled(2);
    rt.record_metrics();
    assert_eq!(series_value(&scrape.render(), series), 7.0, "3 scraped, 2 after the last scrape, 2 of the new one");
    assert!(rt.shutdown(WAIT).is_balanced());
}
