//! Running a storage future to completion on the current thread, without an async runtime.
//!
//! Workers are plain threads. [`block_on`] polls a future and, while it is pending, parks the
//! thread until the future's waker unparks it. With
//! [`RedbBackend`](crate::storage::RedbBackend) the first poll always completes, so this is a
//! single call; the park loop is there for backends whose futures really wait.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

/// Wakes the thread blocked in [`block_on`].
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` on the current thread until it completes, parking between polls.
///
/// Blocks the calling thread; do not call it from inside an async task. A spurious unpark only
/// costs an extra poll.
///
/// ```
/// use switchyard::block_on;
///
/// assert_eq!(block_on(async { 1 + 1 }), 2);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return output,
            Poll::Pending => thread::park(),
        }
    }
}
