//! After shutdown no thread of the runtime is left (this binary holds a single test, so the
//! process's thread count is not disturbed by other tests).

mod common;

use common::*;
use switchyard::{ComponentSpec, Runtime, handler_fn};

/// This process's threads that still run: `(name, live)` for each task, where a task is
/// live until it has given up the process's memory map on its way out.
///
/// A joined thread can still be listed for a moment: `pthread_join` returns once the
/// kernel clears the thread's id, which it does when the exiting thread releases its memory
/// map, before the task is reaped from `/proc/self/task`. A thread past that point reports
/// a virtual size (field 23 of its `stat`) of 0: it runs no more code of this process.
/// Counting those as left would make the test fail on the kernel's timing, not the
/// runtime's (about one run in seventy under load did, in round 2).
fn threads() -> Vec<(String, bool)> {
    let tasks = std::fs::read_dir("/proc/self/task").expect("Linux /proc is available");
    tasks
        .flatten()
        .filter_map(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            let (head, rest) = stat.rsplit_once(')')?;
            let vsize: u64 = rest.split_whitespace().nth(20)?.parse().ok()?;
            Some((head.to_string() + ")", vsize != 0))
        })
        .collect()
}

fn live_threads() -> usize {
    threads().iter().filter(|(_, live)| *live).count()
}

#[test]
fn shutdown_joins_every_worker_and_the_timer() {
    let before = live_threads();
    for round in 0..3 {
        let rt = Runtime::builder().workers(4).io_workers(2).pin_workers(true).build().unwrap();
        assert_eq!(live_threads(), before + 7, "4 workers, 2 I/O workers and 1 timer (round {round})");
        rt.register(id("echo"), ComponentSpec::new(|| handler_fn(|_c, m| Ok(Some(m.payload.clone()))))).unwrap();
        let reply = rt.request(req(&id("echo"), b"x"), WAIT).unwrap().wait().unwrap();
        assert_eq!(reply.payload, b"x");
        let report = rt.shutdown(WAIT);
        assert!(report.drained);
        assert_eq!(live_threads(), before, "no thread left after shutdown (round {round}): {:?}", threads());
    }
}
