//! A switchyard component: a counter that keeps its count in its storage, so the count
//! survives a restart of the component and carries over to the next run.
//!
//! Build it with `cargo build --release --target wasm32-wasip2` (the `.wasm` file is a
//! WebAssembly component), then host it with `switchyard run` and the manifest beside this
//! crate's Cargo.toml.

use serde::{Deserialize, Serialize};
use switchyard_guest::{Component, Context, Error, Level};

/// What the counter is sent (JSON on the wire: `{"Add": 2}`, `"Get"`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Adds `n` to the count; the reply is the new count.
    Add(u64),
    /// The reply is the count.
    Get,
}

/// The storage key of the count.
const COUNT: &str = "count";

/// The component. `Default` makes it when it starts and after a crash; `init` then reads
/// the count back from storage.
#[derive(Default)]
pub struct Counter {
    count: u64,
}

impl Component for Counter {
    type Message = Op;
    type Reply = u64;

    fn init(&mut self, ctx: &mut Context<'_>) -> Result<(), Error> {
        self.count = ctx.storage().get::<u64>(COUNT)?.unwrap_or(0);
        Ok(())
    }

    fn handle(&mut self, ctx: &mut Context<'_>, op: Op) -> Result<u64, Error> {
        if let Op::Add(n) = op {
            self.count = self.count.checked_add(n).ok_or("the count would overflow")?;
            ctx.storage().set(COUNT, &self.count)?;
            ctx.log(Level::Info, &format!("added {n}: the count is {}", self.count));
        }
        Ok(self.count)
    }
}

switchyard_guest::export!(Counter);
