//! A stock count, kept in the component's storage: one source that runs as a sandboxed
//! WebAssembly component (built for `wasm32-wasip2`) or natively (`switchyard_guest::native`),
//! with the same replies and the same stored state. `tests/native_or_sandboxed.rs`
//! runs it both ways.

use serde::{Deserialize, Serialize};
use switchyard_guest::{Component, Context, Error, Level};

/// What the inventory is asked.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Op {
    /// Adds `qty` of `item`.
    Add { item: String, qty: u32 },
    /// Takes `qty` of `item`; fails when there are fewer.
    Take { item: String, qty: u32 },
    /// How many of `item` there are.
    Count { item: String },
    /// Every item and its count.
    List,
}

/// What it answers.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Reply {
    /// The count of the item after the operation.
    Count(u32),
    /// Every item with its count, by item.
    Items(Vec<(String, u32)>),
}

/// The component: all of its state is in storage (keys `item/<name>`), so a restart
/// loses nothing.
#[derive(Default)]
pub struct Inventory {
    /// Operations handled by this instance (in memory: starts over after a restart).
    handled: u64,
}

impl Component for Inventory {
    type Message = Op;
    type Reply = Reply;

    fn handle(&mut self, ctx: &mut Context<'_>, op: Op) -> Result<Reply, Error> {
        self.handled += 1;
        let (item, delta) = match op {
            Op::List => {
                let mut items = Vec::new();
                for key in ctx.storage().list("item/")? {
                    let count = ctx.storage().get::<u32>(&key)?.unwrap_or(0);
                    items.push((key.trim_start_matches("item/").to_string(), count));
                }
                return Ok(Reply::Items(items));
            }
            Op::Count { item } => (item, 0i64),
            Op::Add { item, qty } => (item, i64::from(qty)),
            Op::Take { item, qty } => (item, -i64::from(qty)),
        };
        let key = format!("item/{item}");
        let have = ctx.storage().get::<u32>(&key)?.unwrap_or(0);
        let now =
            u32::try_from(i64::from(have) + delta).map_err(|_| Error::msg(format!("only {have} {item} in stock")))?;
        if delta != 0 {
            ctx.storage().set(&key, &now)?;
            ctx.log(Level::Info, &format!("{item}: {have} -> {now} (operation {} here)", self.handled));
        }
        Ok(Reply::Count(now))
    }
}

switchyard_guest::export!(Inventory);
