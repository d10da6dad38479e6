//! A counter component: `Inc(n)` one way, `Get` answered with the count (a typed integer).
//! Run with `cargo run --example counter`.
use switchyard::{Component, Context, HandlerError, Runtime};

#[derive(serde::Serialize, serde::Deserialize)]
enum Counter {
    Inc(u64),
    Get,
}

#[derive(Default)]
struct Count(u64);

impl Component for Count {
    type Message = Counter;
    type Reply = u64;
    fn handle(&mut self, _ctx: &mut Context<'_>, msg: Counter) -> Result<u64, HandlerError> {
        if let Counter::Inc(n) = msg {
            self.0 += n;
        }
        Ok(self.0)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::builder().build()?;
    let counter = rt.spawn("counter", Count::default)?;
    counter.tell(&Counter::Inc(2))?;
    println!("count: {}", counter.ask::<u64>(&Counter::Get).wait()?);
    Ok(())
}
