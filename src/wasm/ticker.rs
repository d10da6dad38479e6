//! The epoch ticker: one thread per [`crate::WasmHost`] that advances the engine's epoch
//! once per tick, which is what ends a guest call at its wall-clock deadline.

use std::time::Duration;

use wasmtime::Engine;

/// The thread that advances the engine's epoch once per tick. Dropping it stops and joins
/// the thread.
pub(crate) struct EpochTicker {
    /// A crossbeam channel and a std thread directly, not through `crate::sync`: the
    /// ticker is no part of the model-checked core. Dropping the sender stops the thread.
    stop: Option<crossbeam_channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts the thread, ticking every `tick`.
    ///
    /// # Errors
    /// When the OS cannot start the thread.
    pub(crate) fn start(engine: Engine, tick: Duration) -> std::io::Result<Self> {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let thread = std::thread::Builder::new().name("switchyard-epoch".into()).spawn(move || {
            // One tick per period until the sender is dropped.
            while let Err(crossbeam_channel::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                engine.increment_epoch();
            }
        })?;
        Ok(Self { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        // Disconnecting ends the thread's wait at once.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
