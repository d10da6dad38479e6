//! Embedding switchyard with native Rust handlers: a three-stage order pipeline.
//!
//! Shows: registering components, fire-and-forget between components, a request-response
//! round trip from the host, publish-subscribe, supervision (a component that panics on a
//! poisoned order is restarted, the order is dead-lettered with the reason, the rest flow
//! on), component state kept in redb (`./switchyard.redb`, the embedded default: run it
//! twice and the ledger's balance carries over), graceful shutdown, and the stats a host
//! can read.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release --example embedded
//! ```

use std::sync::Arc;
use std::time::Duration;

use switchyard::{
    ComponentId, ComponentSpec, Context, Handler, HandlerError, MessageEnvelope, MessageType, RedbBackend, Runtime,
    Supervision, codec, handler_fn, new_message_id,
};

/// Parses "<qty>x<price>" orders, forwards the total to the ledger. Panics on "poison".
struct Pricer;

impl Handler for Pricer {
    fn handle(&mut self, ctx: &mut Context<'_>, msg: &MessageEnvelope) -> Result<Option<Vec<u8>>, HandlerError> {
        let text = std::str::from_utf8(&msg.payload).map_err(HandlerError::new)?;
        if text == "poison" {
            panic!("pricer cannot digest a poisoned order");
        }
        let (qty, price) = text.split_once('x').ok_or_else(|| HandlerError::new(format!("bad order {text:?}")))?;
        let qty: u64 = qty.parse().map_err(HandlerError::new)?;
        let price: u64 = price.parse().map_err(HandlerError::new)?;
        let total = (qty * price).to_le_bytes().to_vec();
        let ledger = ComponentId::new("ledger").map_err(HandlerError::new)?;
        ctx.send(ctx.envelope(MessageType::FireAndForget, ledger, total, codec::RAW))?;
        Ok(None)
    }
}

/// Sums totals into a balance kept in storage; answers "balance" requests; announces each
/// new total on "ledger.updates".
struct Ledger {
    store: Arc<RedbBackend>,
    balance: u64,
}

impl Ledger {
    const NAMESPACE: &str = "ledger";
    const KEY: &[u8] = b"balance";
}

impl Handler for Ledger {
    fn init(&mut self, _ctx: &mut Context<'_>) -> Result<(), HandlerError> {
        // Restore the balance (also after a restart).
        let stored = self.store.get(Self::NAMESPACE, Self::KEY).map_err(HandlerError::new)?;
        self.balance = match stored {
            Some(bytes) => u64::from_le_bytes(bytes.as_slice().try_into().map_err(HandlerError::new)?),
            None => 0,
        };
        Ok(())
    }

    fn handle(&mut self, ctx: &mut Context<'_>, msg: &MessageEnvelope) -> Result<Option<Vec<u8>>, HandlerError> {
        if msg.is_request() {
            return Ok(Some(self.balance.to_string().into_bytes()));
        }
        let amount = u64::from_le_bytes(msg.payload.as_slice().try_into().map_err(HandlerError::new)?);
        self.balance += amount;
        self.store.set(Self::NAMESPACE, Self::KEY, &self.balance.to_le_bytes()).map_err(HandlerError::new)?;
        let update = ctx
            .envelope(MessageType::Publish, ctx.id().clone(), self.balance.to_string().into_bytes(), codec::RAW)
            .with_topic("ledger.updates");
        ctx.publish(update)?;
        Ok(None)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(RedbBackend::open("switchyard.redb")?);
    let previous = match store.get(Ledger::NAMESPACE, Ledger::KEY)? {
        Some(bytes) => u64::from_le_bytes(bytes.as_slice().try_into()?),
        None => 0,
    };
    println!("ledger balance stored by earlier runs: {previous}");
    let rt = Runtime::builder().build()?;
    let pricer = ComponentId::new("pricer")?;
    let ledger = ComponentId::new("ledger")?;
    let audit = ComponentId::new("audit")?;
    let host = ComponentId::new("host")?;

    let quick_restart = Supervision { backoff_initial: Duration::from_millis(1), ..Supervision::default() };
    rt.register(pricer.clone(), ComponentSpec::new(|| Pricer).supervision(quick_restart))?;
    let ledger_store = store.clone();
    rt.register(ledger.clone(), ComponentSpec::new(move || Ledger { store: ledger_store.clone(), balance: 0 }))?;
    // The audit component relays each ledger update to the host over a plain channel.
    let (updates_tx, updates_rx) = crossbeam_channel::unbounded::<u64>();
    rt.register(
        audit.clone(),
        ComponentSpec::new(move || {
            let updates_tx = updates_tx.clone();
            handler_fn(move |_ctx, msg| {
                let balance = std::str::from_utf8(&msg.payload).map_err(HandlerError::new)?;
                let _ = updates_tx.send(balance.parse().map_err(HandlerError::new)?);
                Ok(None)
            })
        }),
    )?;
    rt.subscribe("ledger.updates", audit.clone());

    let orders = ["2x10", "1x5", "poison", "3x7", "not-an-order", "4x1"];
    for order in orders {
        let env = MessageEnvelope::new(
            MessageType::FireAndForget,
            host.clone(),
            pricer.clone(),
            order.as_bytes().to_vec(),
            codec::RAW,
            new_message_id(),
        );
        rt.send_timeout(env, Duration::from_secs(1))?;
    }

    // Four good orders reach the ledger; wait for its fourth update, then ask it directly.
    for _ in 0..4 {
        let update = updates_rx.recv_timeout(Duration::from_secs(10))?;
        println!("audit saw ledger balance {update}");
    }
    let expected: u64 = previous + 2 * 10 + 5 + 3 * 7 + 4;
    let ask =
        MessageEnvelope::new(MessageType::Request, host.clone(), ledger.clone(), vec![], codec::RAW, new_message_id());
    let reply = rt.request(ask, Duration::from_secs(5))?.wait()?;
    let balance: u64 = String::from_utf8(reply.payload)?.parse()?;
    println!("ledger balance by request: {balance} (expected {expected})");
    if balance != expected {
        return Err("ledger balance is wrong".into());
    }

    let report = rt.shutdown(Duration::from_secs(5));
    let s = report.stats;
    println!("\n{:<10} {:>8} {:>8} {:>8} {:>9}", "component", "received", "handled", "failed", "restarts");
    for id in rt.component_ids() {
        let c = rt.component_stats(&id).expect("registered");
        println!("{:<10} {:>8} {:>8} {:>8} {:>9}", id.as_str(), c.received, c.handled, c.failed, c.restarts);
    }
    println!(
        "\nsent {} = handled {} + dead-lettered {} + rejected {} -> balanced: {}",
        s.messages_sent,
        s.messages_handled,
        s.messages_dead_lettered,
        s.routing_failures,
        s.is_balanced()
    );
    for d in rt.dead_letters() {
        println!("dead letter to {}: {}", d.envelope.to, d.reason);
    }
    for (reason, n) in s.dead_letters_named() {
        println!("dead letters by reason: {reason} = {n}");
    }
    if !s.is_balanced() {
        return Err("accounting identity violated".into());
    }
    Ok(())
}
