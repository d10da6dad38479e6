//! The history of every record a test sent across nodes, and the check that each ended
//! exactly one way. It looks at nodes from outside only: what a send returned, what a
//! requester got, what a component's handler saw, what each node's dead-letter hook got,
//! and each node's routing counters.
//!
//! A record is one message with a unique id in its payload (`record:<id>`, so a report can
//! be read against a node's log). It ends exactly one way:
//!
//! - **handed back** at the send (`SendError` with the envelope, whose payload names it);
//! - **handled** exactly once, by one node's component;
//! - **dead-lettered** exactly once, on one node.
//!
//! A request also ends, for its requester, with exactly one outcome (the response, a
//! failure, a timeout): a response means it was handled; a failure without a dead letter
//! anywhere is a refusal the receiving node answered (a full mailbox), which ends it too; a
//! timeout needs the record to have ended one of the three ways above somewhere (a timed
//! out request nobody handled nor dead-lettered is lost). A response dead-lettered (a late
//! reply, one the handling node could not send) is noted, not an end.
//!
//! One pair of ends is the documented outcome of a request across nodes, not a violation:
//! a request its requester got no answer to (a timeout, or a failure) is dead-lettered by
//! the sending node as a transport failure *with its outcome unknown* ("handled or not,
//! unknown": the answer may have been lost with a connection), and the receiving node may
//! have handled it once. Handled twice, or handled and refused, or dead-lettered unknown
//! while its requester got the response, still is.
//!
//! [`History::check`] reports every record that ended no way (lost), more than one way or
//! twice the same way (a duplicate), and every node whose accounting identity does not hold.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use switchyard::{DeadLetter, MessageEnvelope, MessageType, RequestError, RoutingStatsSnapshot};

/// The prefix of a record's payload.
const PREFIX: &str = "record:";

/// How many records of one kind of violation a report lists by id.
const LISTED: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    OneWay,
    Request,
}

/// What a requester got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Response,
    /// A response, but not this request's (another record's payload).
    Mismatched(String),
    Failed(String),
    TimedOut,
}

/// Everything observed of one record.
#[derive(Debug, Clone)]
pub struct Record {
    pub kind: Kind,
    /// The send's refusal (its kind), the envelope handed back.
    pub handed_back: Vec<String>,
    /// The node of each handling.
    pub handled: Vec<String>,
    /// Each dead letter of the record itself: the node and the reason.
    pub dead: Vec<(String, String)>,
    /// A request's outcome(s) at its requester.
    pub outcomes: Vec<Outcome>,
    /// Dead letters of a request's response: the node and the reason.
    pub responses_dead: Vec<(String, String)>,
}

impl Record {
    fn new(kind: Kind) -> Self {
        Self {
            kind,
            handed_back: Vec::new(),
            handled: Vec::new(),
            dead: Vec::new(),
            outcomes: Vec::new(),
            responses_dead: Vec::new(),
        }
    }

    /// The ways it ended so far (handed back, handled, dead-lettered: one entry each).
    fn ends(&self) -> usize {
        self.handed_back.len() + self.handled.len() + self.dead.len()
    }

    /// A request refused by the receiving node: its requester was told why, and nothing
    /// was handled or dead-lettered anywhere.
    fn refused(&self) -> bool {
        self.ends() == 0 && matches!(self.outcomes.as_slice(), [Outcome::Failed(_)])
    }

    /// A request handled once on one node and dead-lettered by its sender with its outcome
    /// unknown, its requester told no response (see the module docs).
    fn unknown_to_its_sender(&self) -> bool {
        self.kind == Kind::Request
            && self.handed_back.is_empty()
            && self.handled.len() == 1
            && matches!(self.dead.as_slice(), [(_, reason)] if reason.starts_with("Transport") && reason.contains("unknown"))
            && matches!(self.outcomes.as_slice(), [Outcome::TimedOut | Outcome::Failed(_)])
    }

    /// True once it ended (for a request: and its requester has its outcome).
    fn ended(&self) -> bool {
        match self.kind {
            Kind::OneWay => self.ends() > 0,
            Kind::Request => {
                !self.handed_back.is_empty() || (!self.outcomes.is_empty() && (self.ends() > 0 || self.refused()))
            }
        }
    }

    /// What is wrong with it, if anything.
    fn violation(&self) -> Option<&'static str> {
        if self.handled.len() > 1 {
            return Some("handled more than once");
        }
        if self.dead.len() > 1 {
            return Some("dead-lettered more than once");
        }
        if self.handed_back.len() > 1 {
            return Some("handed back more than once");
        }
        if self.ends() > 1 && !self.unknown_to_its_sender() {
            return Some("ended more than one way");
        }
        if self.kind == Kind::Request {
            if self.outcomes.len() > 1 {
                return Some("more than one outcome at the requester");
            }
            if self.outcomes.is_empty() && self.handed_back.is_empty() {
                return Some("no outcome at the requester");
            }
            if matches!(self.outcomes.as_slice(), [Outcome::Mismatched(_)]) {
                return Some("answered with another record's response");
            }
            if self.outcomes == [Outcome::Response] && self.handled.is_empty() {
                return Some("answered without being handled");
            }
            if self.responses_dead.len() > 1 {
                return Some("response dead-lettered more than once");
            }
            if self.outcomes == [Outcome::Response] && !self.responses_dead.is_empty() {
                return Some("response both delivered and dead-lettered");
            }
            if self.refused() {
                return None;
            }
        }
        if self.ends() == 0 {
            return Some("lost (no end anywhere)");
        }
        None
    }

    fn describe(&self, id: u64) -> String {
        let mut s = format!("#{id} {:?}:", self.kind);
        if !self.handed_back.is_empty() {
            let _ = write!(s, " handed back {:?};", self.handed_back);
        }
        if !self.handled.is_empty() {
            let _ = write!(s, " handled on {:?};", self.handled);
        }
        for (node, reason) in &self.dead {
            let _ = write!(s, " dead-lettered on {node}: {reason};");
        }
        if !self.outcomes.is_empty() {
            let _ = write!(s, " requester got {:?};", self.outcomes);
        }
        for (node, reason) in &self.responses_dead {
            let _ = write!(s, " response dead-lettered on {node}: {reason};");
        }
        if s.ends_with(':') {
            s.push_str(" nothing observed");
        }
        s
    }
}

/// The records of one test, filled from the sending thread, the handlers, the requesters'
/// waits and the dead-letter hooks of every node (it is `Sync`: share it in an `Arc`).
#[derive(Default)]
pub struct History {
    records: Mutex<Vec<Record>>,
    /// Notified at every observation ([`History::wait_until_ended`]).
    changed: Condvar,
    /// Payloads of dead letters and handlings that name no record (a test's bug).
    strangers: Mutex<Vec<String>>,
}

impl History {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Record>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn start(&self, kind: Kind) -> Vec<u8> {
        let mut records = self.lock();
        records.push(Record::new(kind));
        format!("{PREFIX}{}", records.len() - 1).into_bytes()
    }

    /// A new one-way record: its payload.
    pub fn one_way(&self) -> Vec<u8> {
        self.start(Kind::OneWay)
    }

    /// A new request record: its payload.
    pub fn request(&self) -> Vec<u8> {
        self.start(Kind::Request)
    }

    /// The record id a payload names.
    pub fn id_of(payload: &[u8]) -> Option<u64> {
        std::str::from_utf8(payload).ok()?.strip_prefix(PREFIX)?.parse().ok()
    }

    fn observe(&self, payload: &[u8], what: &str, f: impl FnOnce(&mut Record)) {
        let mut records = self.lock();
        match Self::id_of(payload).and_then(|id| records.get_mut(usize::try_from(id).ok()?)) {
            Some(record) => f(record),
            None => {
                drop(records);
                let text = String::from_utf8_lossy(&payload[..payload.len().min(64)]).into_owned();
                self.strangers.lock().unwrap_or_else(|e| e.into_inner()).push(format!("{what}: {text:?}"));
            }
        }
        self.changed.notify_all();
    }

    /// The send refused the record and handed back `env` (`why`: the error's kind).
    pub fn handed_back(&self, env: &MessageEnvelope, why: impl std::fmt::Debug) {
        self.observe(&env.payload, "handed back", |r| r.handed_back.push(format!("{why:?}")));
    }

    /// Node `node`'s component handled the message with `payload`.
    pub fn handled(&self, node: &str, payload: &[u8]) {
        self.observe(payload, "handled", |r| r.handled.push(node.to_string()));
    }

    /// Node `node` dead-lettered `d` (the record itself, or a request's response).
    pub fn dead_lettered(&self, node: &str, d: &DeadLetter) {
        let reason = format!("{:?}", d.reason);
        let entry = (node.to_string(), reason);
        if d.envelope.message_type == MessageType::Response {
            self.observe(&d.envelope.payload, "response dead-lettered", |r| r.responses_dead.push(entry));
        } else {
            self.observe(&d.envelope.payload, "dead-lettered", |r| r.dead.push(entry));
        }
    }

    /// A dead-letter hook for node `node` that records into this history.
    pub fn hook(self: &std::sync::Arc<Self>, node: &str) -> impl Fn(DeadLetter) + Send + Sync + 'static {
        let (history, node) = (self.clone(), node.to_string());
        move |d| history.dead_lettered(&node, &d)
    }

    /// The requester of the request with `payload` got `outcome`.
    pub fn answered(&self, payload: &[u8], outcome: &Result<MessageEnvelope, RequestError>) {
        let o = match outcome {
            Ok(resp) if resp.payload == payload => Outcome::Response,
            Ok(resp) => Outcome::Mismatched(String::from_utf8_lossy(&resp.payload).into_owned()),
            Err(RequestError::Timeout) => Outcome::TimedOut,
            Err(e) => Outcome::Failed(e.to_string()),
        };
        self.observe(payload, "answered", |r| r.outcomes.push(o));
    }

    /// Records sent so far.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Records handled so far (each once), by any node.
    pub fn handled_count(&self) -> usize {
        self.lock().iter().filter(|r| !r.handled.is_empty()).count()
    }

    /// Records that have not ended yet.
    pub fn open(&self) -> usize {
        self.lock().iter().filter(|r| !r.ended()).count()
    }

    /// Waits until every record sent so far ended, or `timeout` passed; true if they did.
    pub fn wait_until_ended(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut records = self.lock();
        loop {
            if records.iter().all(Record::ended) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            records = self.changed.wait_timeout(records, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Waits until `cond` holds of the history, or `timeout` passed; true if it did.
    pub fn wait_until(&self, timeout: Duration, cond: impl Fn(&[Record]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut records = self.lock();
        loop {
            if cond(&records) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            records = self.changed.wait_timeout(records, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Checks every record and each node's accounting identity (`nodes`: each node's name
    /// and its routing counters).
    pub fn check(&self, nodes: &[(&str, &RoutingStatsSnapshot)]) -> Verdict {
        let records = self.lock();
        let mut violations: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        let mut tally: BTreeMap<String, usize> = BTreeMap::new();
        for (id, r) in records.iter().enumerate() {
            if let Some(what) = r.violation() {
                violations.entry(what).or_default().push(r.describe(id as u64));
            }
            *tally.entry(tally_key(r)).or_default() += 1;
        }
        let one_way = records.iter().filter(|r| r.kind == Kind::OneWay).count();
        let mut report =
            format!("{} records ({one_way} one-way, {} requests):\n", records.len(), records.len() - one_way);
        for (how, n) in &tally {
            let _ = writeln!(report, "  {n:>6}  {how}");
        }
        let mut failed = false;
        for (what, list) in &violations {
            failed = true;
            let _ = writeln!(report, "VIOLATION {what}: {} record(s)", list.len());
            for line in list.iter().take(LISTED) {
                let _ = writeln!(report, "    {line}");
            }
            if list.len() > LISTED {
                let _ = writeln!(report, "    ... and {} more", list.len() - LISTED);
            }
        }
        for (node, s) in nodes {
            let balanced = s.is_balanced();
            failed |= !balanced;
            let _ = writeln!(
                report,
                "{}accounting of node {node}: sent {} = handled {} + dead-lettered {} + refused at send {} + \
                 forwarded {} ({}){}",
                if balanced { "  " } else { "VIOLATION " },
                s.messages_sent,
                s.messages_handled,
                s.messages_dead_lettered,
                s.routing_failures,
                s.messages_forwarded,
                if balanced { "balanced" } else { "NOT balanced" },
                if s.dead_letters_named().is_empty() {
                    String::new()
                } else {
                    format!("; dead letters {:?}", s.dead_letters_named())
                },
            );
        }
        let strangers = self.strangers.lock().unwrap_or_else(|e| e.into_inner());
        if !strangers.is_empty() {
            failed = true;
            let _ = writeln!(
                report,
                "VIOLATION observations of no record: {:?}",
                &strangers[..strangers.len().min(LISTED)]
            );
        }
        Verdict { clean: !failed, report }
    }
}

/// A line of the summary: how a record ended.
fn tally_key(r: &Record) -> String {
    let kind = match r.kind {
        Kind::OneWay => "one-way",
        Kind::Request => "request",
    };
    let mut how = Vec::new();
    if !r.handed_back.is_empty() {
        how.push(format!("handed back ({})", r.handed_back.join(", ")));
    }
    if !r.handled.is_empty() {
        how.push(format!("handled on {}", r.handled.join("+")));
    }
    for (node, reason) in &r.dead {
        // The reason's kind, without its details (they name subjects and timings).
        let kind = reason.split([' ', '{', '(']).next().unwrap_or(reason);
        how.push(format!("dead-lettered on {node} ({kind})"));
    }
    if r.refused() {
        how.push("refused by the receiving node".into());
    }
    if how.is_empty() {
        how.push("no end".into());
    }
    let mut line = format!("{kind} {}", how.join(" and "));
    if r.kind == Kind::Request {
        let outcome = match r.outcomes.as_slice() {
            [] => "nothing".to_string(),
            [Outcome::Response] => "the response".to_string(),
            [Outcome::TimedOut] => "a timeout".to_string(),
            [Outcome::Failed(_)] => "a failure".to_string(),
            [Outcome::Mismatched(_)] => "another record's response".to_string(),
            more => format!("{} outcomes", more.len()),
        };
        let _ = write!(line, "; requester got {outcome}");
        if !r.responses_dead.is_empty() {
            let _ = write!(line, "; response dead-lettered");
        }
    }
    line
}

/// What [`History::check`] found: `clean` when nothing is wrong; `report` says how every
/// record ended (counts) and lists what is wrong.
pub struct Verdict {
    pub clean: bool,
    pub report: String,
}

impl Verdict {
    /// Panics with the report unless the history is clean.
    pub fn assert_clean(&self) {
        assert!(self.clean, "the history is not clean:\n{}", self.report);
    }
}
