//! `wasi:filesystem/types` with every wait ended by the call's deadline (`bounded.rs` says
//! why). wasmtime-wasi runs each file operation on tokio's blocking pool and waits for it;
//! here the wait ends at the guest call's deadline, so a read of a FIFO, an open that waits
//! for a writer, or a stalled network filesystem cannot hold the worker. An operation cut
//! off this way still finishes on the blocking pool (tokio bounds that pool), and its
//! result is dropped. Each method mirrors wasmtime-wasi's own synchronous binding
//! (`p2/host/filesystem/sync.rs`), with its wait bounded.

use std::future::Future;
use std::time::Instant;

use wasmtime::component::{HasData, Resource};
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::p2::bindings::filesystem::types as async_fs;
use wasmtime_wasi::p2::bindings::sync::filesystem::types as fs;
use wasmtime_wasi::p2::bindings::sync::io::streams;
use wasmtime_wasi::p2::{FsError, FsResult};

use super::bounded::wait;

/// Names [`BoundedFs`] to the generated `add_to_linker` of `wasi:filesystem/types`.
pub(crate) struct BoundedFsData;

impl HasData for BoundedFsData {
    type Data<'a> = BoundedFs<'a>;
}

/// The filesystem calls' view of an instance: wasmtime-wasi's, and the deadline of the
/// guest call running now.
pub(crate) struct BoundedFs<'a> {
    pub(crate) view: WasiFilesystemCtxView<'a>,
    pub(crate) deadline: Instant,
}

/// [`wait`] for a filesystem operation: reaching the deadline traps.
fn wait_fs<T>(deadline: Instant, fut: impl Future<Output = FsResult<T>>) -> FsResult<T> {
    wait(deadline, fut).unwrap_or_else(|late| Err(FsError::trap(late)))
}

type Fd = Resource<fs::Descriptor>;

impl fs::Host for BoundedFs<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<fs::ErrorCode> {
        fs::Host::convert_error_code(&mut self.view, err)
    }

    fn filesystem_error_code(&mut self, err: Resource<streams::Error>) -> wasmtime::Result<Option<fs::ErrorCode>> {
        fs::Host::filesystem_error_code(&mut self.view, err)
    }
}

impl fs::HostDescriptor for BoundedFs<'_> {
    fn advise(&mut self, fd: Fd, offset: fs::Filesize, len: fs::Filesize, advice: fs::Advice) -> FsResult<()> {
        wait_fs(self.deadline, async_fs::HostDescriptor::advise(&mut self.view, fd, offset, len, advice.into()))
    }

    fn sync_data(&mut self, fd: Fd) -> FsResult<()> {
        wait_fs(self.deadline, async_fs::HostDescriptor::sync_data(&mut self.view, fd))
    }

    fn get_flags(&mut self, fd: Fd) -> FsResult<fs::DescriptorFlags> {
        Ok(wait_fs(self.deadline, async_fs::HostDescriptor::get_flags(&mut self.view, fd))?.into())
    }

    fn get_type(&mut self, fd: Fd) -> FsResult<fs::DescriptorType> {
        Ok(wait_fs(self.deadline, async_fs::HostDescriptor::get_type(&mut self.view, fd))?.into())
    }

    fn set_size(&mut self, fd: Fd, size: fs::Filesize) -> FsResult<()> {
        wait_fs(self.deadline, async_fs::HostDescriptor::set_size(&mut self.view, fd, size))
    }

    fn set_times(&mut self, fd: Fd, atim: fs::NewTimestamp, mtim: fs::NewTimestamp) -> FsResult<()> {
        wait_fs(self.deadline, async_fs::HostDescriptor::set_times(&mut self.view, fd, atim.into(), mtim.into()))
    }

    fn read(&mut self, fd: Fd, len: fs::Filesize, offset: fs::Filesize) -> FsResult<(Vec<u8>, bool)> {
        wait_fs(self.deadline, async_fs::HostDescriptor::read(&mut self.view, fd, len, offset))
    }

    fn write(&mut self, fd: Fd, buf: Vec<u8>, offset: fs::Filesize) -> FsResult<fs::Filesize> {
        wait_fs(self.deadline, async_fs::HostDescriptor::write(&mut self.view, fd, buf, offset))
    }

    fn read_directory(&mut self, fd: Fd) -> FsResult<Resource<fs::DirectoryEntryStream>> {
        wait_fs(self.deadline, async_fs::HostDescriptor::read_directory(&mut self.view, fd))
    }

    fn sync(&mut self, fd: Fd) -> FsResult<()> {
        wait_fs(self.deadline, async_fs::HostDescriptor::sync(&mut self.view, fd))
    }

    fn create_directory_at(&mut self, fd: Fd, path: String) -> FsResult<()> {
        wait_fs(self.deadline, async_fs::HostDescriptor::create_directory_at(&mut self.view, fd, path))
    }

    fn stat(&mut self, fd: Fd) -> FsResult<fs::DescriptorStat> {
        Ok(wait_fs(self.deadline, async_fs::HostDescriptor::stat(&mut self.view, fd))?.into())
    }

    fn stat_at(&mut self, fd: Fd, path_flags: fs::PathFlags, path: String) -> FsResult<fs::DescriptorStat> {
        let stat = async_fs::HostDescriptor::stat_at(&mut self.view, fd, path_flags.into(), path);
        Ok(wait_fs(self.deadline, stat)?.into())
    }

    fn set_times_at(
        &mut self,
        fd: Fd,
        path_flags: fs::PathFlags,
        path: String,
        atim: fs::NewTimestamp,
        mtim: fs::NewTimestamp,
    ) -> FsResult<()> {
        let set = async_fs::HostDescriptor::set_times_at(
            &mut self.view,
            fd,
            path_flags.into(),
            path,
            atim.into(),
            mtim.into(),
        );
        wait_fs(self.deadline, set)
    }

    fn link_at(
        &mut self,
        fd: Fd,
        old_path_flags: fs::PathFlags,
        old_path: String,
        new_descriptor: Fd,
        new_path: String,
    ) -> FsResult<()> {
        let link = async_fs::HostDescriptor::link_at(
            &mut self.view,
            fd,
            old_path_flags.into(),
            old_path,
            new_descriptor,
            new_path,
        );
        wait_fs(self.deadline, link)
    }

    fn open_at(
        &mut self,
        fd: Fd,
        path_flags: fs::PathFlags,
        path: String,
        oflags: fs::OpenFlags,
        flags: fs::DescriptorFlags,
    ) -> FsResult<Fd> {
        let open =
            async_fs::HostDescriptor::open_at(&mut self.view, fd, path_flags.into(), path, oflags.into(), flags.into());
        wait_fs(self.deadline, open)
    }

    fn drop(&mut self, fd: Fd) -> wasmtime::Result<()> {
        async_fs::HostDescriptor::drop(&mut self.view, fd)
    }

    fn readlink_at(&mut self, fd: Fd, path: String) -> FsResult<String> {
        wait_fs(self.deadline, async_fs::HostDescriptor::readlink_at(&mut self.view, fd, path))
    }

    fn remove_directory_at(&mut self, fd: Fd, path: String) -> FsResult<()> {
        wait_fs(self.deadline, async_fs::HostDescriptor::remove_directory_at(&mut self.view, fd, path))
    }

    fn rename_at(&mut self, fd: Fd, old_path: String, new_fd: Fd, new_path: String) -> FsResult<()> {
        wait_fs(self.deadline, async_fs::HostDescriptor::rename_at(&mut self.view, fd, old_path, new_fd, new_path))
    }

    fn symlink_at(&mut self, fd: Fd, src_path: String, dest_path: String) -> FsResult<()> {
        wait_fs(self.deadline, async_fs::HostDescriptor::symlink_at(&mut self.view, fd, src_path, dest_path))
    }

    fn unlink_file_at(&mut self, fd: Fd, path: String) -> FsResult<()> {
        wait_fs(self.deadline, async_fs::HostDescriptor::unlink_file_at(&mut self.view, fd, path))
    }

    fn read_via_stream(&mut self, fd: Fd, offset: fs::Filesize) -> FsResult<Resource<streams::InputStream>> {
        async_fs::HostDescriptor::read_via_stream(&mut self.view, fd, offset)
    }

    fn write_via_stream(&mut self, fd: Fd, offset: fs::Filesize) -> FsResult<Resource<streams::OutputStream>> {
        async_fs::HostDescriptor::write_via_stream(&mut self.view, fd, offset)
    }

    fn append_via_stream(&mut self, fd: Fd) -> FsResult<Resource<streams::OutputStream>> {
        async_fs::HostDescriptor::append_via_stream(&mut self.view, fd)
    }

    fn is_same_object(&mut self, a: Fd, b: Fd) -> wasmtime::Result<bool> {
        wait(self.deadline, async_fs::HostDescriptor::is_same_object(&mut self.view, a, b))?
    }

    fn metadata_hash(&mut self, fd: Fd) -> FsResult<fs::MetadataHashValue> {
        Ok(wait_fs(self.deadline, async_fs::HostDescriptor::metadata_hash(&mut self.view, fd))?.into())
    }

    fn metadata_hash_at(&mut self, fd: Fd, path_flags: fs::PathFlags, path: String) -> FsResult<fs::MetadataHashValue> {
        let hash = async_fs::HostDescriptor::metadata_hash_at(&mut self.view, fd, path_flags.into(), path);
        Ok(wait_fs(self.deadline, hash)?.into())
    }
}

impl fs::HostDirectoryEntryStream for BoundedFs<'_> {
    fn read_directory_entry(
        &mut self,
        stream: Resource<fs::DirectoryEntryStream>,
    ) -> FsResult<Option<fs::DirectoryEntry>> {
        let entry = async_fs::HostDirectoryEntryStream::read_directory_entry(&mut self.view, stream);
        Ok(wait_fs(self.deadline, entry)?.map(Into::into))
    }

    fn drop(&mut self, stream: Resource<fs::DirectoryEntryStream>) -> wasmtime::Result<()> {
        async_fs::HostDirectoryEntryStream::drop(&mut self.view, stream)
    }
}
