//! Request-response, from the host and between components.
//!
//! Shows: a host request answered by a component (`request(..)?.wait()`); the two ways a
//! request can end without a reply, each reported exactly once: the handler fails
//! (`RequestError::Failed` with the dead-letter reason) or nobody answers in time
//! (`RequestError::Timeout`, enforced by the runtime's timer); and a component asking another
//! component with `Context::request`, getting the outcome later in `handle_callback` without
//! ever blocking its worker.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release --example request_reply
//! ```

use std::collections::HashMap;
use std::time::Duration;

use crossbeam_channel::Sender;
use switchyard::{
    ComponentId, ComponentSpec, Context, Handler, HandlerError, MessageEnvelope, MessageType, RequestError, Runtime,
    codec, handler_fn, new_message_id,
};

/// Answers "SYMBOL" with its price; fails on unknown symbols; never answers "SLOW".
fn prices(_ctx: &mut Context<'_>, msg: &MessageEnvelope) -> Result<Option<Vec<u8>>, HandlerError> {
    let price = match msg.payload.as_slice() {
        b"ACME" => 42,
        b"INITECH" => 7,
        b"SLOW" => return Ok(None), // leaves the request to time out
        other => return Err(HandlerError::new(format!("no price for {:?}", String::from_utf8_lossy(other)))),
    };
    Ok(Some(format!("{price}").into_bytes()))
}

/// Values holdings: for "SYMBOL QTY" it asks `prices` and, when the answer comes back,
/// reports "SYMBOL QTY = VALUE" (or why there is no value) to the host.
struct Portfolio {
    pending: HashMap<switchyard::MessageId, (String, u64)>,
    report: Sender<String>,
}

impl Handler for Portfolio {
    fn handle(&mut self, ctx: &mut Context<'_>, msg: &MessageEnvelope) -> Result<Option<Vec<u8>>, HandlerError> {
        let text = std::str::from_utf8(&msg.payload).map_err(HandlerError::new)?;
        let (symbol, qty) = text.split_once(' ').ok_or_else(|| HandlerError::new("expected SYMBOL QTY"))?;
        let qty: u64 = qty.parse().map_err(HandlerError::new)?;
        let prices = ComponentId::new("prices").map_err(HandlerError::new)?;
        let ask = ctx.envelope(MessageType::Request, prices, symbol.as_bytes().to_vec(), codec::RAW);
        // Returns at once; the outcome arrives in handle_callback.
        let id = ctx.request(ask, Duration::from_millis(200))?;
        self.pending.insert(id, (symbol.to_string(), qty));
        Ok(None)
    }

    fn handle_callback(
        &mut self,
        _ctx: &mut Context<'_>,
        request_id: &str,
        outcome: Result<&MessageEnvelope, &RequestError>,
    ) -> Result<(), HandlerError> {
        let (symbol, qty) = self.pending.remove(request_id).ok_or_else(|| HandlerError::new("unknown request"))?;
        let line = match outcome {
            Ok(reply) => {
                let price: u64 = std::str::from_utf8(&reply.payload)
                    .map_err(HandlerError::new)?
                    .parse()
                    .map_err(HandlerError::new)?;
                format!("{symbol} x{qty} = {}", price * qty)
            }
            Err(e) => format!("{symbol} x{qty}: no value ({e})"),
        };
        let _ = self.report.send(line);
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::builder().workers(2).pin_workers(false).build()?;
    let host = ComponentId::new("host")?;
    let prices_id = ComponentId::new("prices")?;
    let portfolio_id = ComponentId::new("portfolio")?;
    rt.register(prices_id.clone(), ComponentSpec::new(|| handler_fn(prices)))?;
    let (report_tx, report_rx) = crossbeam_channel::unbounded();
    rt.register(
        portfolio_id.clone(),
        ComponentSpec::new(move || Portfolio { pending: HashMap::new(), report: report_tx.clone() }),
    )?;

    // From the host: one outcome per request, whatever happens.
    let ask = |symbol: &str| {
        MessageEnvelope::new(
            MessageType::Request,
            host.clone(),
            prices_id.clone(),
            symbol.as_bytes().to_vec(),
            codec::RAW,
            new_message_id(),
        )
    };
    for symbol in ["ACME", "NOPE", "SLOW"] {
        match rt.request(ask(symbol), Duration::from_millis(200))?.wait() {
            Ok(reply) => println!("host asked {symbol}: {}", String::from_utf8_lossy(&reply.payload)),
            Err(RequestError::Failed(reason)) => println!("host asked {symbol}: failed ({reason})"),
            Err(RequestError::Timeout) => println!("host asked {symbol}: timed out"),
            Err(e) => println!("host asked {symbol}: {e}"),
        }
    }

    // Between components: portfolio asks prices and hears back through its callback.
    let holdings = ["ACME 3", "INITECH 10", "NOPE 1", "SLOW 2"];
    for holding in holdings {
        let env = MessageEnvelope::new(
            MessageType::FireAndForget,
            host.clone(),
            portfolio_id.clone(),
            holding.as_bytes().to_vec(),
            codec::RAW,
            new_message_id(),
        );
        rt.send_timeout(env, Duration::from_secs(1))?;
    }
    let mut lines: Vec<String> =
        (0..holdings.len()).map(|_| report_rx.recv_timeout(Duration::from_secs(5))).collect::<Result<_, _>>()?;
    lines.sort();
    for line in lines {
        println!("portfolio: {line}");
    }

    let report = rt.shutdown(Duration::from_secs(1));
    let s = report.stats;
    println!(
        "sent {} = handled {} + dead-lettered {} + rejected {} -> balanced: {}",
        s.messages_sent,
        s.messages_handled,
        s.messages_dead_lettered,
        s.routing_failures,
        s.is_balanced()
    );
    if !s.is_balanced() {
        return Err("accounting identity violated".into());
    }
    Ok(())
}
