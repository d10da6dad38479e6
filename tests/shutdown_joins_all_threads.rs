//! After shutdown no thread of the runtime is left (this binary holds a single test, so the
//! process's thread count is not disturbed by other tests).

mod common;

use common::*;
use switchyard::{ComponentSpec, Runtime, handler_fn};

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).expect("Linux /proc is available")
}

#[test]
fn shutdown_joins_every_worker_and_the_timer() {
    let before = thread_count();
    for round in 0..3 {
        let rt = Runtime::builder().workers(4).io_workers(2).pin_workers(true).build().unwrap();
        assert_eq!(thread_count(), before + 7, "4 workers, 2 I/O workers and 1 timer (round {round})");
        rt.register(id("echo"), ComponentSpec::new(|| handler_fn(|_c, m| Ok(Some(m.payload.clone()))))).unwrap();
        let reply = rt.request(req(&id("echo"), b"x"), WAIT).unwrap().wait().unwrap();
        assert_eq!(reply.payload, b"x");
        let report = rt.shutdown(WAIT);
        assert!(report.drained);
        assert_eq!(thread_count(), before, "no thread left after shutdown (round {round})");
    }
}
