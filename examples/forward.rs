//! A two-stage pipeline: `intake` takes an order (a serde struct), adjusts it and hands the
//! request on to `billing`, which answers the original requester. Run with
//! `cargo run --example forward`.
use serde::{Deserialize, Serialize};
use switchyard::{Component, ComponentId, Context, HandlerError, Runtime};

#[derive(Serialize, Deserialize)]
struct Order {
    item: String,
    qty: u32,
}

struct Intake;
impl Component for Intake {
    type Message = Order;
    type Reply = ();
    fn handle(&mut self, ctx: &mut Context<'_>, mut order: Order) -> Result<(), HandlerError> {
        order.item = order.item.to_uppercase();
        Ok(ctx.forward_with(&ComponentId::new("billing")?, &order)?)
    }
}

struct Billing;
impl Component for Billing {
    type Message = Order;
    type Reply = String;
    fn handle(&mut self, _ctx: &mut Context<'_>, order: Order) -> Result<String, HandlerError> {
        Ok(format!("{} x {}: {} cents", order.qty, order.item, 250 * order.qty))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::builder().build()?;
    rt.spawn("billing", || Billing)?;
    let intake = rt.spawn("intake", || Intake)?;
    let invoice: String = intake.ask(&Order { item: "tea".into(), qty: 3 }).wait()?;
    println!("{invoice}");
    Ok(())
}
