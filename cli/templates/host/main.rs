//! A host that embeds the switchyard engine and runs a typed component natively: a counter,
//! sent `Add(n)` one way and asked `Get`.

use std::time::Duration;

use switchyard::{Component, Context, HandlerError, Runtime};

/// What the counter is sent.
#[derive(serde::Serialize, serde::Deserialize)]
enum Op {
    /// Adds `n` to the count.
    Add(u64),
    /// The reply is the count.
    Get,
}

/// The component: its state, and one function of its message.
#[derive(Default)]
struct Counter(u64);

impl Component for Counter {
    type Message = Op;
    type Reply = u64;

    fn handle(&mut self, _ctx: &mut Context<'_>, op: Op) -> Result<u64, HandlerError> {
        if let Op::Add(n) = op {
            self.0 += n;
        }
        Ok(self.0)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::builder().build()?;
    let counter = rt.spawn("counter", Counter::default)?;
    counter.tell(&Op::Add(2))?;
    counter.tell(&Op::Add(40))?;
    let count: u64 = counter.ask(&Op::Get).wait()?;
    println!("count: {count}");
    let report = rt.shutdown(Duration::from_secs(5));
    println!("shut down, every message handled or dead-lettered: {}", report.is_balanced());
    Ok(())
}
