//! The `storage` interface: a guest's key-value calls, confined to the namespace named by
//! its component id and checked against its storage rights.

use wasmtime::component::HasData;

use super::Principal;
use super::types::{ErrorCode, GuestError, error, storage_error};
use crate::storage::{RedbBackend, StorageOperation};
use crate::sync::Arc;
use crate::wasm::bindings::switchyard::component::storage::{Host, Write};
use crate::wasm::config::StorageRights;

/// Names [`StorageView`] to the generated `storage::add_to_linker`.
pub(crate) struct Storage;

impl HasData for Storage {
    type Data<'a> = StorageView<'a>;
}

/// What the storage calls of one instance reach: the host's backend, if it has one.
pub(crate) struct StorageCtx {
    backend: Option<Arc<RedbBackend>>,
}

impl StorageCtx {
    pub(crate) fn new(backend: Option<Arc<RedbBackend>>) -> Self {
        Self { backend }
    }
}

/// The storage calls' view of the Store: the calling component and its context.
pub(crate) struct StorageView<'a> {
    pub(crate) principal: &'a Principal,
    pub(crate) ctx: &'a mut StorageCtx,
}

impl StorageView<'_> {
    /// The backend, when the component's rights allow this kind of call.
    fn store(&self, write: bool) -> Result<&RedbBackend, GuestError> {
        let allowed = match self.principal.caps.storage {
            StorageRights::None => false,
            StorageRights::Read => !write,
            StorageRights::ReadWrite => true,
        };
        if !allowed {
            return Err(self.principal.denied(if write { "write storage" } else { "read storage" }));
        }
        self.ctx.backend.as_deref().ok_or_else(|| error(ErrorCode::Storage, "the host has no storage configured"))
    }

    /// The component's namespace.
    fn namespace(&self) -> &str {
        self.principal.id.as_str()
    }
}

impl Host for StorageView<'_> {
    fn get(&mut self, key: Vec<u8>) -> Result<Option<Vec<u8>>, GuestError> {
        self.store(false)?.get(self.namespace(), &key).map_err(|e| storage_error(&e))
    }

    fn set(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), GuestError> {
        self.store(true)?.set(self.namespace(), &key, &value).map_err(|e| storage_error(&e))
    }

    fn delete(&mut self, key: Vec<u8>) -> Result<(), GuestError> {
        self.store(true)?.delete(self.namespace(), &key).map_err(|e| storage_error(&e))
    }

    fn list_keys(&mut self, prefix: Vec<u8>) -> Result<Vec<Vec<u8>>, GuestError> {
        self.store(false)?.list_keys(self.namespace(), &prefix).map_err(|e| storage_error(&e))
    }

    fn batch(&mut self, writes: Vec<Write>) -> Result<(), GuestError> {
        let store = self.store(true)?;
        let namespace = self.namespace().to_string();
        let mut tx = store.transaction();
        for w in writes {
            let op = match w {
                Write::Set((key, value)) => StorageOperation::Set { namespace: namespace.clone(), key, value },
                Write::Delete(key) => StorageOperation::Delete { namespace: namespace.clone(), key },
            };
            tx.add_operation(op).map_err(|e| storage_error(&e))?;
        }
        tx.commit().map_err(|e| storage_error(&e))
    }
}
