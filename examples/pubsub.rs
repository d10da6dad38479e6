//! Publish-subscribe: two subscribers of `ticks` count what they hear. Run with
//! `cargo run --example pubsub`.
use switchyard::{Component, Context, HandlerError, Runtime};

#[derive(serde::Serialize, serde::Deserialize)]
enum Event {
    Tick,
    Count,
}

#[derive(Default)]
struct Counter(u64);

impl Component for Counter {
    type Message = Event;
    type Reply = u64;
    fn handle(&mut self, _ctx: &mut Context<'_>, event: Event) -> Result<u64, HandlerError> {
        if let Event::Tick = event {
            self.0 += 1;
        }
        Ok(self.0)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::builder().build()?;
    let subscribers = [rt.spawn("a", Counter::default)?, rt.spawn("b", Counter::default)?];
    for s in &subscribers {
        rt.subscribe("ticks", s.id().clone());
    }
    for _ in 0..3 {
        rt.publish_on("ticks", &Event::Tick)?;
    }
    for s in &subscribers {
        println!("{}: {}", s.id(), s.ask::<u64>(&Event::Count).wait()?);
    }
    Ok(())
}
