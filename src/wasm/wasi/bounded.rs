//! `wasi:io` with every wait ended by the call's deadline.
//!
//! A guest call's wall-clock deadline is enforced by epoch interruption, which stops guest
//! code, not host code: a host function that waits (`pollable.block`, `poll`, a stream's
//! `blocking-read`, a file read on a FIFO) would hold the worker, and every component homed
//! on it, for as long as it waits, a clock pollable of an hour included. So each WASI call
//! that may wait does its waiting here, under `tokio::time::timeout_at` with the deadline
//! of the guest call it belongs to (set when the call is armed, `instance.rs`). A wait that
//! reaches the deadline traps the guest call with [`BlockedPastDeadline`], classified as a
//! [`crate::TrapKind::Deadline`] like a deadline reached in guest code: the message is
//! dead-lettered (or redelivered) as trapped and the instance is made anew.
//!
//! The interfaces that wait are `wasi:io/poll`, `wasi:io/streams` (here) and
//! `wasi:filesystem/types` (`bounded_fs.rs`); the others return at once (they create
//! pollables, or make a syscall that does not block). The functions that do not wait are
//! passed on unchanged to wasmtime-wasi's own implementations.

use std::fmt;
use std::future::Future;
use std::time::Instant;

use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::sync::io::{poll, streams};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, StreamError, StreamResult};
use wasmtime_wasi_io::bindings::wasi::io::poll as async_poll;
use wasmtime_wasi_io::bindings::wasi::io::streams::{
    HostInputStream as AsyncInputStream, HostOutputStream as AsyncOutputStream,
};

/// A WASI call waited until its guest call's deadline: the guest call traps with this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockedPastDeadline;

impl fmt::Display for BlockedPastDeadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a blocking WASI call was still waiting at the call's deadline")
    }
}

impl std::error::Error for BlockedPastDeadline {}

/// Runs `fut` on wasmtime-wasi's runtime until it completes or `deadline` passes. A future
/// that is ready is not refused for being late: only waiting past the deadline is.
pub(crate) fn wait<F: Future>(deadline: Instant, fut: F) -> Result<F::Output, BlockedPastDeadline> {
    let deadline = tokio::time::Instant::from_std(deadline);
    wasmtime_wasi::runtime::in_tokio(async move { tokio::time::timeout_at(deadline, fut).await })
        .map_err(|_| BlockedPastDeadline)
}

/// [`wait`] for a stream operation: reaching the deadline traps.
fn wait_stream<T>(deadline: Instant, fut: impl Future<Output = StreamResult<T>>) -> StreamResult<T> {
    wait(deadline, fut).unwrap_or_else(|late| Err(StreamError::Trap(late.into())))
}

/// Names [`BoundedIo`] to the generated `add_to_linker` of `wasi:io/poll` and `streams`.
pub(crate) struct BoundedIoData;

impl HasData for BoundedIoData {
    type Data<'a> = BoundedIo<'a>;
}

/// Names the bare resource table to `wasi:io/error`'s `add_to_linker` (nothing there waits).
pub(crate) struct TableData;

impl HasData for TableData {
    type Data<'a> = &'a mut ResourceTable;
}

/// The `wasi:io` calls' view of an instance: its resource table and the deadline of the
/// guest call running now.
pub(crate) struct BoundedIo<'a> {
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) deadline: Instant,
}

impl poll::Host for BoundedIo<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        wait(self.deadline, async_poll::Host::poll(&mut *self.table, pollables))?
    }
}

impl poll::HostPollable for BoundedIo<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        poll::HostPollable::ready(&mut *self.table, pollable)
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        wait(self.deadline, async_poll::HostPollable::block(&mut *self.table, pollable))?
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::HostPollable::drop(&mut *self.table, pollable)
    }
}

impl streams::Host for BoundedIo<'_> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        streams::Host::convert_stream_error(&mut *self.table, err)
    }
}

impl streams::HostInputStream for BoundedIo<'_> {
    fn drop(&mut self, stream: Resource<DynInputStream>) -> wasmtime::Result<()> {
        wait(self.deadline, AsyncInputStream::drop(&mut *self.table, stream))?
    }

    fn read(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<Vec<u8>> {
        streams::HostInputStream::read(&mut *self.table, stream, len)
    }

    fn blocking_read(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<Vec<u8>> {
        wait_stream(self.deadline, AsyncInputStream::blocking_read(&mut *self.table, stream, len))
    }

    fn skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        streams::HostInputStream::skip(&mut *self.table, stream, len)
    }

    fn blocking_skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        wait_stream(self.deadline, AsyncInputStream::blocking_skip(&mut *self.table, stream, len))
    }

    fn subscribe(&mut self, stream: Resource<DynInputStream>) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostInputStream::subscribe(&mut *self.table, stream)
    }
}

impl streams::HostOutputStream for BoundedIo<'_> {
    fn drop(&mut self, stream: Resource<DynOutputStream>) -> wasmtime::Result<()> {
        wait(self.deadline, AsyncOutputStream::drop(&mut *self.table, stream))?
    }

    fn check_write(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<u64> {
        streams::HostOutputStream::check_write(&mut *self.table, stream)
    }

    fn write(&mut self, stream: Resource<DynOutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        streams::HostOutputStream::write(&mut *self.table, stream, bytes)
    }

    fn blocking_write_and_flush(&mut self, stream: Resource<DynOutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        wait_stream(self.deadline, AsyncOutputStream::blocking_write_and_flush(&mut *self.table, stream, bytes))
    }

    fn blocking_write_zeroes_and_flush(&mut self, stream: Resource<DynOutputStream>, len: u64) -> StreamResult<()> {
        wait_stream(self.deadline, AsyncOutputStream::blocking_write_zeroes_and_flush(&mut *self.table, stream, len))
    }

    fn subscribe(&mut self, stream: Resource<DynOutputStream>) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostOutputStream::subscribe(&mut *self.table, stream)
    }

    fn write_zeroes(&mut self, stream: Resource<DynOutputStream>, len: u64) -> StreamResult<()> {
        streams::HostOutputStream::write_zeroes(&mut *self.table, stream, len)
    }

    fn flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        streams::HostOutputStream::flush(&mut *self.table, stream)
    }

    fn blocking_flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        let stream = Resource::new_borrow(stream.rep());
        wait_stream(self.deadline, AsyncOutputStream::blocking_flush(&mut *self.table, stream))
    }

    fn splice(&mut self, dst: Resource<DynOutputStream>, src: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        streams::HostOutputStream::splice(&mut *self.table, dst, src, len)
    }

    fn blocking_splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        wait_stream(self.deadline, AsyncOutputStream::blocking_splice(&mut *self.table, dst, src, len))
    }
}
