//! The portable `Context` run natively: a component hands a request on (`forward_with`),
//! keeps one to answer later (`defer`, `reply_deferred`), and asks another component
//! (`ask`, `callback`), through the same calls a sandboxed guest makes.

#![cfg(feature = "native")]

use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchyard::Runtime;
use switchyard_guest::native::spec;
use switchyard_guest::{Component, Context, Deferred, Envelope, Error};

const WAIT: Duration = Duration::from_secs(20);

#[derive(Serialize, Deserialize)]
enum FrontOp {
    /// Hand on to "back", doubled.
    Double(u32),
    /// Keep the request until `Release`.
    Hold,
    /// Answer the held request with this.
    Release(u32),
    /// Ask "back" and remember the answer; `Last` tells it.
    Ask(u32),
    Last,
    /// Keep the request, then drop what keeps it.
    Abandon,
    /// Keep the request for good (never answered).
    Hoard,
}

#[derive(Default)]
struct Front {
    held: Option<Deferred>,
    hoard: Vec<Deferred>,
    last: Option<u32>,
}

impl Component for Front {
    type Message = FrontOp;
    type Reply = Option<u32>;
    fn handle(&mut self, ctx: &mut Context<'_>, op: FrontOp) -> Result<Option<u32>, Error> {
        match op {
            FrontOp::Double(n) => ctx.forward_with("back", &(n * 2))?,
            FrontOp::Hold => self.held = Some(ctx.defer()?),
            FrontOp::Release(n) => {
                let held = self.held.take().ok_or_else(|| Error::msg("nothing held"))?;
                ctx.reply_deferred(held, &Some(n))?;
            }
            FrontOp::Ask(n) => {
                ctx.ask("back", &n)?;
            }
            FrontOp::Last => return Ok(self.last),
            FrontOp::Abandon => drop(ctx.defer()?),
            FrontOp::Hoard => self.hoard.push(ctx.defer()?),
        }
        Ok(None)
    }
    fn callback(
        &mut self,
        _ctx: &mut Context<'_>,
        _id: &str,
        outcome: Result<Envelope<'_>, Error>,
    ) -> Result<(), Error> {
        self.last = Some(outcome?.decode()?);
        Ok(())
    }
}

/// Answers `n + 1`.
#[derive(Default)]
struct Back;

impl Component for Back {
    type Message = u32;
    type Reply = u32;
    fn handle(&mut self, _ctx: &mut Context<'_>, n: u32) -> Result<u32, Error> {
        Ok(n + 1)
    }
}

#[test]
fn forward_defer_and_ask_work_natively_through_the_portable_context() {
    let rt = Runtime::builder().workers(2).build().expect("runtime");
    let front = rt.spawn_spec("front", spec::<Front>(None)).expect("front");
    rt.spawn_spec("back", spec::<Back>(None)).expect("back");
    // Forwarded, doubled: back answers the original requester.
    assert_eq!(front.ask_within::<u32>(&FrontOp::Double(5), WAIT).wait().expect("answered"), 11);
    // Held, then released by a later message.
    let held = front.ask_within::<Option<u32>>(&FrontOp::Hold, WAIT);
    front.tell(&FrontOp::Release(7)).expect("told");
    assert_eq!(held.wait().expect("answered later"), Some(7));
    // An ask whose answer arrives in the callback.
    front.tell(&FrontOp::Ask(41)).expect("told");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let last = front.ask_within::<Option<u32>>(&FrontOp::Last, WAIT).wait().expect("answered");
        if last == Some(42) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the callback never came");
        std::thread::yield_now();
    }
    assert!(rt.shutdown(WAIT).is_balanced());
}

/// The text a requester reads when a kept request failed (any other error: a panic that
/// shows it).
fn failure_text(e: switchyard::AskError) -> String {
    use switchyard::{AskError, DeadLetterReason, RequestError};
    match e {
        AskError::Failed(RequestError::Failed(DeadLetterReason::HandlerFailed { error, .. })) => error,
        other => panic!("expected a failed request, got {other:?}"),
    }
}

#[test]
fn a_dropped_deferred_fails_its_request_at_once_instead_of_at_its_deadline() {
    let rt = Runtime::builder().workers(2).build().expect("runtime");
    let front = rt.spawn_spec("front", spec::<Front>(None)).expect("front");
    // Failed by the drop, not timed out at the deadline.
    let outcome = front.ask_within::<Option<u32>>(&FrontOp::Abandon, WAIT).wait();
    let text = failure_text(outcome.expect_err("a dropped deferred is no answer"));
    assert_eq!(text, "the deferred reply was dropped without an answer");
    // A kept one is not failed: it is still answered later.
    let held = front.ask_within::<Option<u32>>(&FrontOp::Hold, WAIT);
    front.tell(&FrontOp::Release(3)).expect("told");
    assert_eq!(held.wait().expect("answered"), Some(3));
    assert!(rt.shutdown(WAIT).is_balanced());
}

#[test]
fn requests_kept_past_their_deadline_stop_counting_against_the_kept_quota() {
    let rt = Runtime::builder().workers(2).build().expect("runtime");
    let front = rt.spawn_spec("front", spec::<Front>(None)).expect("front");
    let short = Duration::from_millis(50);
    // The quota's worth of kept requests, each abandoned by its requester at its deadline
    // (in rounds the mailbox holds).
    for _ in 0..1024 / 64 {
        let asks: Vec<_> = (0..64).map(|_| front.ask_within::<Option<u32>>(&FrontOp::Hoard, short)).collect();
        for ask in asks {
            match ask.wait() {
                Err(switchyard::AskError::Failed(switchyard::RequestError::Timeout)) => {}
                other => panic!("a hoarded request ends at its deadline, got {other:?}"),
            }
        }
    }
    // The next one is kept too (and ends at its own deadline), not refused over quota.
    match front.ask_within::<Option<u32>>(&FrontOp::Hoard, short).wait() {
        Err(switchyard::AskError::Failed(switchyard::RequestError::Timeout)) => {}
        Err(e) => panic!("kept requests past their deadline still filled the quota: {}", failure_text(e)),
        Ok(r) => panic!("a hoarded request got an answer: {r:?}"),
    }
    assert!(rt.shutdown(WAIT).is_balanced());
}
