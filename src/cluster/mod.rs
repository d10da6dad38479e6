//! Components on other hosts, over NATS (the `cluster` feature).
//!
//! A runtime built with [`crate::RuntimeBuilder::cluster`] joins a cluster by name on a NATS
//! server and becomes a *node*: every component it hosts is reachable from the other nodes,
//! and every component they host is reachable from it, through the same API as a local one
//! (`try_send`, `send_timeout`, `request`, `publish`, `Context::send`/`request`, the WASM
//! host's calls). The registry's entry for an id hosted elsewhere is a remote destination
//! (`docs/design.md`, "Components on other nodes"); a send to it goes into this node's bounded outbound queue and
//! from there, on the bridge's one I/O thread, to NATS. Nothing about the wire is private:
//! the subjects and headers are documented ([`subject`], [`wire`]) so that any NATS client
//! can talk to a component.
//!
//! # The promises, across nodes
//!
//! - **A bounded queue, the envelope handed back.** The outbound queue holds
//!   [`ClusterConfig::outbound_capacity`] messages; when it is full a send returns
//!   [`crate::SendError::Full`] with the envelope.
//! - **Riding out an outage.** While the node is cut off from the server (the server
//!   restarts, the network blips), sends wait in the node's reconnect buffer
//!   ([`ClusterConfig::reconnect_buffer`], bounded in messages and bytes) and go out in order
//!   once the connection is back. A send that finds the buffer full is refused with
//!   [`crate::SendError::Transport`] and the envelope; a message still waiting at the
//!   buffer's deadline is dead-lettered as a transport failure (a request fails with that
//!   reason, or times out first under its own deadline). With the buffer off, every send
//!   made while cut off is refused with `Transport` at once.
//! - **A broken client is replaced.** The NATS client rides out an outage by itself. If
//!   instead its connection task is ever gone (it panicked, or it ended), nothing would
//!   reach the node through it again: the node notices, makes a new client, serves its
//!   components through it and announces its state again, as after a reconnection
//!   (counted in [`ClusterStats::client_rebuilds`] and `reconnects`). Round trips in flight
//!   on the old client fail as they would in an outage.
//! - **Nothing lost silently, nothing handled twice.** Core NATS drops a message nobody
//!   subscribes to without a word, so one-way messages between nodes travel on *links*
//!   (`session.rs`): each pair of nodes has a session (their two epochs), the sender numbers
//!   its messages and sends them in batches on the receiving node's link subject
//!   `sy.<cluster>.l.<node>`, and the receiver settles each in order (into the component's
//!   mailbox, or refused with the reason: a full mailbox, a closed component) and
//!   acknowledges cumulatively. The sender resends from the first message it has no
//!   acknowledgement for (a late acknowledgement, a connection that came back); the
//!   receiver knows by the sequence number what it settled already, for as long as both
//!   nodes run, so a resend after any outage is never delivered twice. A refusal
//!   dead-letters the message on the sending node with the reason; a message the link gave
//!   up on (no progress for [`ClusterConfig::ack_timeout`] times six, counted from the
//!   last reconnection) or that the receiving node may have taken before it restarted is
//!   dead-lettered with its outcome unknown ([`crate::DeadLetterReason::Transport`]). An id
//!   no node hosts is refused at the send with `NoSuchComponent`, as locally: every node
//!   keeps a directory of which node hosts which id.
//! - **Replicas take turns; a leaving one passes on.** The sending node picks the replica of
//!   a one-way message itself (each node hosting the id in turn). A node that leaves says so
//!   first, so the others stop sending to it while it drains; what reaches it meanwhile is
//!   refused as closing, and its sender passes it to another replica. Requests and plain
//!   clients' messages go to the id's queue group, `sy.<cluster>.c.<id>`; a request refused
//!   by a closing replica (or found with no responders) is asked again there, never one that
//!   may have been taken. On the wire a request has an id of its own (its answer is matched
//!   by the inbox it comes to), so a request handed on from one node to a component on the
//!   requester's own node is not taken for the requester's.
//! - **Exactly one outcome per request.** A request's deadline is enforced by the sending
//!   runtime's timer exactly as locally; the response, an error answer (the remote
//!   mailbox was full, the handler failed) or the deadline completes it, whichever comes
//!   first, and a response that comes later is dead-lettered as a late reply.
//! - **The inbound side never blocks the NATS reader** (a blocked reader is cut off by the
//!   server as a slow consumer): it `try_send`s into the mailbox and answers a refusal.
//! - **Every message accounted for**: a node counts a message another node took as
//!   *forwarded* ([`crate::RoutingStatsSnapshot::messages_forwarded`]), so each node's
//!   identity holds on its own, and across nodes what A sent is what B handled, plus what
//!   either dead-lettered, plus what A's callers got back.
//!
//! # Membership
//!
//! Nodes know each other through `sy.<cluster>.n.*` and `sy.<cluster>.s.<node>`
//! (`membership.rs`): a joining node says `hello` and every node answers with its epoch
//! (drawn at random when it starts) and the *digest* of the ids it hosts; every node repeats
//! that every [`ClusterConfig::heartbeat`] (a few dozen bytes, whatever it hosts), announces
//! each `change` of what it hosts (the digest before and after, the ids added and removed),
//! and says `bye` when it leaves. A node whose digest does not match what the directory
//! holds for it (it joined, restarted, or a change was missed) has its ids fetched, page by
//! page, from its own `sy.<cluster>.s.<node>`. So membership traffic grows with the nodes and
//! the changes, not with heartbeats times ids. A node not heard from for three of its own
//! heartbeats is forgotten (a crashed node); a new epoch under a known name is a restarted
//! node.
//!
//! **Joining means knowing the cluster.** Building the runtime returns only once the node
//! has the answers to its hello and the ids of every node that hosts any; for one heartbeat
//! after that, a send to an id no node is known to host waits (up to its time) for
//! membership to learn of it rather than fail ([`ClusterStats::warming`]). A program that
//! starts sending as soon as the runtime is built loses nothing to the join.
//! [`crate::RuntimeHandle::wait_for_component`] waits until an id is reachable, for a node
//! that must not start sending before its peers are up.
//!
//! Membership trusts what is said on these subjects: only nodes may publish there. Give
//! plain clients another account, or publish permissions that leave them out (the table
//! below).
//!
//! # Health across nodes
//!
//! [`crate::RuntimeHandle::health`] (and `health_all`) of an id another node serves asks that
//! node, which probes its component as it would a local one's and answers within the
//! question's time ([`crate::RuntimeHandle::cluster_health`] asks for every remote id, with
//! the node that answered). The question is a request on the component's subject with
//! `sy-type: health`, so any NATS client allowed to call the component can ask it too; a
//! node waits on at most 64 such questions at a time (more get `no_answer` at once).
//!
//! # Discovery
//!
//! Every node answers the NATS services protocol (the "micro" API of `nats micro ls`,
//! `info`, `stats`; ADR-32) as one instance of service `switchyard-<cluster>`, with the
//! node's name as its id and the crate's version: `$SRV.PING`, `$SRV.INFO` and
//! `$SRV.STATS`, each also with `.switchyard-<cluster>` and `.switchyard-<cluster>.<node>`.
//! Its endpoints are the components it serves: named after the escaped id (the id itself
//! in the endpoint's metadata, `component`), on `sy.<cluster>.c.<id>` in queue group
//! [`subject::QUEUE_GROUP`]. `STATS` counts what each component took from its mailbox
//! (`num_requests`, local messages included) and its failed handler attempts
//! (`num_errors`); processing time is not measured (0); `data` holds the component's other
//! counters. A node answers only inbox reply subjects (`_INBOX.`, or `_R_.` through a
//! service import: see "Two accounts"), from a task of its own, at most 64
//! times a second (the rest counted in [`ClusterStats::discovery_refused`]).
//! [`ClusterConfig::discovery`] turns it off.
//!
//! Each `INFO` and `STATS` answer is a copy of a summary the node made beforehand, not a
//! listing made for the asker: `INFO`'s is made again when the set of served components
//! changed, `STATS`' when its counters are a second old, each when asked and at most once a
//! second (counted in [`ClusterStats::discovery_summaries`]); so an answer may be up to a
//! second behind. A summary lists the served components in id order while they fit in the
//! server's largest message (`max_payload`, less 1 KiB for headers); when some do not, its
//! metadata says how many it left out, `"endpoints_omitted": "<n>"` (absent when it lists
//! them all). Making one looks only at the components it lists, so with 100 000 components
//! an answer costs what one of the server's largest messages costs, not a listing of all of
//! them.
//!
//! Publishes go to every node's subscribers of the topic, as core NATS messages (at most
//! once, like a local publish to a subscriber whose mailbox is full).
//!
//! # At-least-once across nodes (JetStream)
//!
//! With [`ClusterConfig::jetstream`], a one-way message sent with
//! [`crate::DeliveryGuarantee::AtLeastOnce`] (or `ExactlyOnce`) to a component on another
//! node is *stored* before the send counts as forwarded: it is published to
//! `sy.<cluster>.d.<id>`, which the cluster's stream `sy-<cluster>` holds (created by the
//! first node that joins; work-queue retention, file storage). `Nats-Msg-Id` makes the
//! server drop a second publish under the same key within its duplicate window: for
//! exactly-once the key is the target and the message id (the key of the receiving
//! component's exactly-once window; a resend of a stored message is dead-lettered on the
//! sending node as a duplicate), for at-least-once a key of the send alone (only the
//! bridge's own publish after a lost acknowledgement is dropped; a caller's resend is a new
//! message, as locally). Each node hosting the id reads through one durable pull consumer
//! per id (replicas share it, as they share the queue group), with explicit
//! acknowledgement:
//!
//! - the message is acknowledged only after the handler returned `Ok`;
//! - a failed handling (an error, a panic, a trap) before the component's `max_attempts`
//!   is given back to the stream (a negative acknowledgement), which offers it again, to
//!   this node or another hosting the id; the handler sees the stream's delivery count as
//!   its attempt number (`Context::attempt`);
//! - the failed handling at or past `max_attempts` dead-letters the message on the node
//!   that ran it, with the handler's reason, and tells the stream to stop offering it;
//! - a message the node cannot take (a full mailbox, a closing component) or that its
//!   component never ran (it stopped, was unregistered, the node shut down) is given back,
//!   so another node or a later start of this one runs it. The server sets no delivery
//!   cap (it would retire a message whose last offer was only given back, leaving it in
//!   the stream unhandled); such offers still count in the delivery count, so they use up
//!   handler attempts. A component that supervision stops is no longer served to the
//!   cluster;
//! - a node that crashed or was cut off never settles what it held: the stream offers it
//!   again after [`ClusterConfig::ack_wait`]. So does a message that waited in a mailbox
//!   longer than that: offers outstanding per id are bounded by the mailbox capacity, so
//!   keep `ack_wait` above capacity x handling time, or expect duplicates (at least once
//!   allows them; they may even end one copy handled and one dead-lettered).
//!
//! The exactly-once window is per component on each node: across replicas, or after an
//! acknowledgement lost with a node, a message can be handled on two nodes. The consumer's
//! settings are those of the node that created it (a later node with other settings reads
//! through it as it is).
//!
//! The stream is bounded: [`ClusterConfig::stream_max_bytes`] (a store past it is refused by
//! the server, `maximum bytes exceeded`, and the sender dead-letters the message with that
//! reason; nothing stored is dropped to make room) and [`ClusterConfig::stream_max_age`] (a
//! message no node took within it is dropped by the server: the one loss no node sees, for
//! an id nobody hosts for that long). Each node sets these limits on the stream when it
//! joins, so nodes of one cluster should agree on them. A component's consumer is deleted by
//! the server once no node has read from it for [`ClusterConfig::consumer_inactive`] (the
//! id unregistered everywhere); its messages stay in the stream for the next node that
//! hosts the id.
//!
//! Requests and publishes are not stored (a request has its own outcome, a timeout
//! included): an at-least-once request or publish to another node is refused with
//! [`crate::InvalidEnvelope::NotForTheCluster`], as is any at-least-once send without
//! JetStream. On the receiving node, every offer counts as a message sent there; one given
//! back after it entered the mailbox counts as forwarded (it left the node), one refused at
//! the mailbox as a routing failure, so each node's identity holds on its own, and across
//! nodes each stored message ends handled or dead-lettered once, however often it was
//! offered (duplicates aside, as above).
//!
//! # Secured servers: TLS, credentials, subject permissions
//!
//! [`ClusterConfig::tls`] checks the server's certificate against a CA file of the node's
//! own (or the system's roots) and can present a client certificate for a server that
//! requires one (mutual TLS); with it set, or with a `tls://` URL, the node refuses a server
//! that does not speak TLS. [`ClusterConfig::auth`] is one kind of credential: user and
//! password, token, NKey seed, or a `.creds` file (operator mode). Secrets are [`Secret`]s,
//! given as values, files or environment variables; no `Debug`, error or log line of the
//! crate shows one, and a URL carrying `user:password@` is refused for that reason. Files
//! are checked when the runtime is built (a missing or malformed one is an
//! `InvalidConfig` naming the field and the path), and a credential or certificate the
//! server refuses fails the build at once with `BuildError::Cluster` and the reason
//! (`authorization violation`, `invalid peer certificate: UnknownIssuer`, `received fatal
//! alert: BadCertificate` for a missing client certificate).
//!
//! A node of cluster `<c>` needs these permissions on the server (`nats-server`
//! `authorization { users = [{..., permissions: {publish: [...], subscribe: [...]}}] }`, or
//! the same in a user JWT); `tests/cluster_security.rs` runs nodes under exactly these:
//!
//! | | publish | subscribe |
//! |---|---|---|
//! | messages and requests to components | `sy.<c>.c.*` | `sy.<c>.c.*` (a queue group per hosted id) |
//! | links: one-way messages between nodes, and their acknowledgements | `sy.<c>.l.*`, `sy.<c>.k.*` | `sy.<c>.l.<node>`, `sy.<c>.k.<node>` (its own name) |
//! | publishes on topics | `sy.<c>.t.*` | `sy.<c>.t.>` |
//! | membership, and fetches of a node's ids | `sy.<c>.n.*`, `sy.<c>.s.*` | `sy.<c>.n.>`, `sy.<c>.s.<node>` |
//! | answers, fetches, round trips | `_INBOX.>` | `_INBOX.>` |
//! | discovery ([`ClusterConfig::discovery`]) | (answers go to `_INBOX.>`) | `$SRV.>` |
//! | with [`ClusterConfig::jetstream`] | `sy.<c>.d.*`, `$JS.API.>`, `$JS.ACK.sy-<c>.>` | (replies come on `_INBOX.>`) |
//!
//! A node subscribes to the wildcards `sy.<c>.t.>` and `sy.<c>.n.>`: give those
//! (nats-server 2.9 also takes `sy.<c>.t.*` as covering the subscription `sy.<c>.t.>`, by
//! matching `>` as a plain token, and then delivers deeper subjects through it anyway; do
//! not rely on that).
//! `_INBOX.>` carries the replies to the node's own requests and its answers to its peers'
//! and to plain clients' requests. A node answers no reply subject outside `_INBOX.` (and
//! `_R_.`, see "Two accounts"), so a client with an inbox prefix of its own keeps it under
//! `_INBOX.` (`_INBOX.<user>`, say). `$JS.API.>` covers
//! creating and reading the stream `sy-<c>` and its consumers and pulling messages;
//! `$JS.ACK.sy-<c>.>` the settling of each message.
//!
//! A discovery tool (`nats micro ls`) needs publish `$SRV.>` and subscribe `_INBOX.>`.
//!
//! A plain NATS client that calls component `<id>` needs publish `sy.<c>.c.<id>` (the
//! escaped id, [`subject::escape`]) and, for a request, subscribe `_INBOX.>` (its reply;
//! better, an inbox prefix of its own: see "Two accounts");
//! to store an at-least-once message, publish `sy.<c>.d.<id>` and subscribe `_INBOX.>` (the
//! stream's acknowledgement). A client without the permission is answered by the server
//! with `Permissions Violation for Publish to "sy.<c>.c.<id>"` and the message goes nowhere.
//!
//! A node missing one of these permissions is refused when its runtime is built
//! (`BuildError::Cluster` with the server's `Permissions Violation for Subscription to
//! "sy.<c>.n.>"` or `... for Publish to ...`): the node makes its subscriptions, says
//! `hello`, publishes once on its own link and acknowledgement subjects and waits for a
//! round trip, and the server answers each refusal on the connection before that. A component registered later whose subject the node may not
//! subscribe to is not announced to the cluster (a sender would wait on a subscription
//! that never receives) and counts in [`ClusterStats::permission_denied`].
//!
//! # Two accounts: the nodes apart from their clients
//!
//! On a server of one account, subject permissions are all that keeps a plain client from
//! speaking as a node, and one too wide (`sy.<c>.>`) puts the directory, the stream and the
//! nodes' own subjects within its reach. NATS accounts draw a boundary the server enforces:
//! the nodes' users in account `NODES` (with JetStream), plain clients in account `CLIENTS`,
//! which imports from `NODES` only the components' subjects `sy.<c>.c.*`, exported as a
//! service (one-way messages, requests, health questions), and optionally discovery's
//! `$SRV.>` (a service with a stream of responses: every node answers). Whatever its own
//! permissions, a client in `CLIENTS` reaches nothing else of `NODES`: not the directory
//! (`sy.<c>.n.*`), not the nodes' links and what numbers the messages on them
//! (`sy.<c>.l.*`, `sy.<c>.k.*`), not the fetches of a node's ids (`sy.<c>.s.*`), not the stream (`sy.<c>.d.*`) nor the JetStream API of `NODES` (the server answers
//! that API for `CLIENTS`, which runs no JetStream: `JetStream not enabled for account`),
//! not the topics (`sy.<c>.t.*`), not the server's reply subjects in `NODES`. So in this
//! deployment a plain client stores no at-least-once message and publishes on no topic (a
//! component can do either for it). `examples/cluster/two-accounts.conf`, under which
//! `tests/cluster_accounts.rs` runs nodes and hostile clients:
//!
//! ```text
#![doc = include_str!("../../examples/cluster/two-accounts.conf")]
//! ```
//!
//! A request through the import reaches a node with the reply subject the server made for
//! it in `NODES`, `_R_.<token>.<token>` (nats-server 2.9: `_R_.bF51Zv.wHlCSP`; with a
//! `Nats-Request-Info` header naming the client's account), not the client's inbox; the
//! node answers there and the server carries the answer to the client's inbox in
//! `CLIENTS`. So a node answers reply subjects under `_R_.` as it answers inboxes
//! ([`wire`]), and needs to publish there. Only the server makes such a subject: it refuses
//! any client a reply subject under `_R_.` (or `$JS.ACK.`), whatever its permissions
//! (`Permissions Violation for Publish with Reply of "_R_.x"`). Every other reply subject a
//! node still refuses, unanswered and counted ([`ClusterStats::inbound_refused`],
//! `discovery_refused`): no client of either account has a node's answer land on
//! `$JS.API...`, another component's subject or the directory.
//!
//! A node's user in `NODES` needs the permissions of the table above, and:
//!
//! | | publish | subscribe |
//! |---|---|---|
//! | answers to plain clients' requests, through the export | `_R_.>` | |
//!
//! (without it, each answer is refused by the server, counted in
//! [`ClusterStats::permission_denied`], and the client's request times out). A client's
//! user in `CLIENTS`:
//!
//! | | publish | subscribe |
//! |---|---|---|
//! | messages, requests, health questions to components | `sy.<c>.c.*`, or `sy.<c>.c.<id>` for each one it may call | |
//! | its replies | | `_INBOX.<user>.>`: an inbox prefix of its own (async-nats `ConnectOptions::custom_inbox_prefix("_INBOX.<user>")`, nats.go `nats.CustomInboxPrefix`) |
//! | discovery, if `$SRV.>` is exported | `$SRV.>` | (its replies) |
//!
//! and nothing else: inside `CLIENTS` only the permissions keep clients apart. With
//! `_INBOX.>` a client reads every other client's replies; with a subscription on
//! `sy.<c>.c.*` it reads their requests, with each requester's reply subject, and can
//! answer before the component does.

pub mod subject;
pub mod wire;

mod bridge;
mod client;
mod connect;
mod directory;
mod frame;
mod health;
mod hosting;
mod inbound;
mod io;
mod jobs;
mod links;
mod membership;
mod outbound;
mod served;
mod services;
mod session;

use std::time::Duration;

pub(crate) use bridge::{Bridge, Receipt, RemoteReply, RemoteTarget};
pub use connect::{ClientCertificate, ClusterAuth, ClusterTls, Secret};

/// How a runtime joins a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The NATS server, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// The cluster's name: one subject token of `[A-Za-z0-9_-]`, at most 64 bytes. Nodes
    /// with the same name on the same server form one cluster.
    pub name: String,
    /// This node's name in the directory and the server's connection list. Default: a
    /// random name.
    pub node: Option<String>,
    /// Messages the outbound queue holds before a send returns `Full`; what the node holds
    /// beyond it (on links, in round trips) is bounded by the same number. Default: 8192.
    pub outbound_capacity: usize,
    /// How long building the runtime waits for the server. Default: 5 s.
    pub connect_timeout: Duration,
    /// How long a link waits for the acknowledgement of a batch before it sends what is not
    /// acknowledged again (a receiver that reports a gap is answered at once); when six such
    /// times pass without an acknowledgement moving the link on (counted from the last
    /// reconnection) it gives up on what it holds, dead-lettered as a transport failure with
    /// the outcome unknown. A request
    /// waits this much past its own deadline for an answer that is late. Default: 5 s.
    pub ack_timeout: Duration,
    /// How often this node says it is there (its epoch and the digest of what it hosts); a
    /// node silent for three of its heartbeats is forgotten. Default: 1 s.
    pub heartbeat: Duration,
    /// At-least-once delivery across nodes on JetStream (see the module docs). The server
    /// must run JetStream (`nats-server -js`); building the runtime fails if it does not.
    /// Without it, an at-least-once or exactly-once send to another node is refused with
    /// [`crate::InvalidEnvelope::NotForTheCluster`]. Default: off.
    pub jetstream: bool,
    /// How long the stream waits for a node to settle an at-least-once message it took
    /// (handled, failed, or given back) before it offers the message again, to this node
    /// or another: a node that crashed or was cut off holding messages loses them to the
    /// others after this long. A message that waits in a mailbox longer than this is
    /// offered again too (a duplicate, as at-least-once allows): keep it above mailbox
    /// capacity x handling time. Default: 30 s.
    pub ack_wait: Duration,
    /// Where sends made while the node is cut off from the server wait for the connection
    /// to come back (see the module docs). `None`: refused with `Transport` at once.
    /// Default: [`ReconnectBuffer::default`].
    pub reconnect_buffer: Option<ReconnectBuffer>,
    /// The longest a request from another node or a NATS client waits here for its answer,
    /// whatever its `sy-timeout-ms` says (also its time when it says nothing): a caller
    /// cannot pin this node's pending table. Default: 30 s.
    pub max_request_timeout: Duration,
    /// Other nodes this node's directory holds; announcements of more are dropped (anyone
    /// who may publish on the directory subjects could otherwise grow it). Default: 1024.
    pub max_nodes: usize,
    /// (node, id) entries this node's directory holds over all other nodes; ids announced
    /// past it are dropped. Default: 1 048 576.
    pub max_remote_ids: usize,
    /// TLS to the server: a CA of its own, a client certificate (see [`ClusterTls`]).
    /// Default: none (TLS only if the URL is `tls://` or the server requires it, checked
    /// against the system's roots).
    pub tls: Option<ClusterTls>,
    /// How the node authenticates to the server. Secrets are never printed, not even by
    /// this struct's `Debug`. Default: [`ClusterAuth::None`].
    pub auth: ClusterAuth,
    /// Answer the NATS services protocol (`$SRV.PING`, `INFO`, `STATS`) with the components
    /// this node serves, for `nats micro ls` and the like (see the module docs). Default: on.
    pub discovery: bool,
    /// With JetStream: the most the cluster's stream holds, in bytes. A store past it is
    /// refused by the server and the message dead-lettered by its sender (`Transport`, the
    /// server's reason), never an older message dropped to make room. Nodes of one cluster
    /// should agree: each sets the stream's limits when it joins. Default: 1 GiB.
    pub stream_max_bytes: u64,
    /// With JetStream: how long a stored message waits for a node to take it before the
    /// server drops it (a component no node hosts any more). Default: 7 days.
    pub stream_max_age: Duration,
    /// With JetStream: how long a component's durable consumer outlives the last node that
    /// read from it (the component unregistered everywhere); the server then deletes it.
    /// Its messages stay in the stream for the next node that hosts the id. Default: 1 h.
    pub consumer_inactive: Duration,
}

/// The bounds of a node's reconnect buffer ([`ClusterConfig::reconnect_buffer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectBuffer {
    /// Messages it holds. Default: 8192.
    pub messages: usize,
    /// Bytes it holds: the payloads, plus [`ReconnectBuffer::OVERHEAD`] per message for the
    /// envelope's other fields. Default: 8 MiB.
    pub bytes: usize,
    /// How long a message waits in it before it is dead-lettered. Default: 30 s.
    pub deadline: Duration,
}

impl ReconnectBuffer {
    /// What a message counts in [`ReconnectBuffer::bytes`] beyond its payload.
    pub const OVERHEAD: usize = 128;
}

impl Default for ReconnectBuffer {
    fn default() -> Self {
        Self { messages: 8192, bytes: 8 << 20, deadline: Duration::from_secs(30) }
    }
}

impl ClusterConfig {
    /// Joins cluster `name` on the server at `url`, with default settings.
    pub fn new(url: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            name: name.into(),
            node: None,
            outbound_capacity: 8192,
            connect_timeout: Duration::from_secs(5),
            ack_timeout: Duration::from_secs(5),
            heartbeat: Duration::from_secs(1),
            jetstream: false,
            ack_wait: Duration::from_secs(30),
            reconnect_buffer: Some(ReconnectBuffer::default()),
            max_request_timeout: Duration::from_secs(30),
            max_nodes: 1024,
            max_remote_ids: 1 << 20,
            tls: None,
            auth: ClusterAuth::None,
            discovery: true,
            stream_max_bytes: 1 << 30,
            stream_max_age: Duration::from_secs(7 * 24 * 3600),
            consumer_inactive: Duration::from_secs(3600),
        }
    }

    /// Why this configuration is refused, if it is. Reads the TLS and credentials files it
    /// names, to refuse one that is missing or malformed here rather than at the connection.
    pub(crate) fn invalid(&self) -> Option<String> {
        if url_has_credentials(&self.url) {
            return Some(format!(
                "url {:?}: credentials in the URL would be printed with it; give them in `auth`",
                redacted_url(&self.url)
            ));
        }
        if let Err(why) = connect::options(self) {
            return Some(why);
        }
        if !subject::valid_cluster_name(&self.name) {
            return Some(format!(
                "cluster name {:?}: must be 1 to 64 bytes of ASCII letters, digits, '-' and '_'",
                self.name
            ));
        }
        if let Some(node) = &self.node
            && !subject::valid_cluster_name(node)
        {
            return Some(format!("node name {node:?}: must be 1 to 64 bytes of ASCII letters, digits, '-' and '_'"));
        }
        if self.outbound_capacity == 0 || self.outbound_capacity > 1 << 20 {
            return Some(format!("outbound_capacity is {}; must be from 1 to 1048576", self.outbound_capacity));
        }
        for (what, d) in [
            ("connect_timeout", self.connect_timeout),
            ("ack_timeout", self.ack_timeout),
            ("ack_wait", self.ack_wait),
            ("max_request_timeout", self.max_request_timeout),
        ] {
            if d.is_zero() || d > Duration::from_secs(3600) {
                return Some(format!("{what} is {d:?}; must be from 1 ns to one hour"));
            }
        }
        if !(1 << 20..=1 << 40).contains(&self.stream_max_bytes) {
            return Some(format!("stream_max_bytes is {}; must be from 1 MiB to 1 TiB", self.stream_max_bytes));
        }
        for (what, d, most) in [
            ("stream_max_age", self.stream_max_age, Duration::from_secs(365 * 24 * 3600)),
            ("consumer_inactive", self.consumer_inactive, Duration::from_secs(30 * 24 * 3600)),
        ] {
            if d < Duration::from_secs(1) || d > most {
                return Some(format!("{what} is {d:?}; must be from 1 s to {most:?}"));
            }
        }
        if self.ack_wait < Duration::from_millis(100) {
            return Some(format!("ack_wait is {:?}; must be at least 100 ms", self.ack_wait));
        }
        if self.max_nodes == 0 || self.max_nodes > 1 << 16 {
            return Some(format!("max_nodes is {}; must be from 1 to 65536", self.max_nodes));
        }
        if self.max_remote_ids == 0 || self.max_remote_ids > 1 << 24 {
            return Some(format!("max_remote_ids is {}; must be from 1 to 16777216", self.max_remote_ids));
        }
        if let Some(b) = &self.reconnect_buffer {
            if b.messages == 0 || b.messages > 1 << 20 {
                return Some(format!("reconnect_buffer.messages is {}; must be from 1 to 1048576", b.messages));
            }
            if b.bytes < ReconnectBuffer::OVERHEAD || b.bytes > 1 << 32 {
                return Some(format!(
                    "reconnect_buffer.bytes is {}; must be from {} to 4294967296 (4 GiB)",
                    b.bytes,
                    ReconnectBuffer::OVERHEAD
                ));
            }
            if b.deadline < Duration::from_millis(1) || b.deadline > Duration::from_secs(3600) {
                return Some(format!("reconnect_buffer.deadline is {:?}; must be from 1 ms to one hour", b.deadline));
            }
        }
        if self.heartbeat < Duration::from_millis(10) || self.heartbeat > Duration::from_secs(3600) {
            return Some(format!("heartbeat is {:?}; must be from 10 ms to one hour", self.heartbeat));
        }
        None
    }
}

/// The health of a component another node serves ([`crate::RuntimeHandle::cluster_health`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteHealth {
    /// The component.
    pub id: crate::ComponentId,
    /// The node that answered (a replica of several, when more serve the id); `None` when
    /// none answered in time.
    pub node: Option<String>,
    /// Its answer: as [`crate::RuntimeHandle::health`] gives it for a local component;
    /// `NoAnswer` when no node answered in time, `NoSuchComponent` when none serves it now.
    pub status: crate::HealthStatus,
}

/// True when `url` (`scheme://[user[:password]@]host:port`) holds a user or password.
fn url_has_credentials(url: &str) -> bool {
    let authority = url.split_once("://").map_or(url, |(_, rest)| rest);
    authority.split(['/', '?', '#']).next().is_some_and(|a| a.contains('@'))
}

/// `url` without what comes before an `@` in its authority.
fn redacted_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    if scheme.is_empty() { format!("..@{host}") } else { format!("{scheme}://..@{host}") }
}

/// What the bridge of one node did (see [`crate::RuntimeHandle::cluster_stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterStats {
    /// This node's name.
    pub node: String,
    /// True while connected to the server.
    pub connected: bool,
    /// Messages another node took (one-way messages it acknowledged, answered requests,
    /// responses published to remote requesters).
    pub forwarded: u64,
    /// Messages another node refused or never acknowledged (dead-lettered here).
    pub remote_failures: u64,
    /// Messages that arrived from the cluster for components hosted here.
    pub inbound: u64,
    /// Of those, refused (a full mailbox, a closed component) or malformed.
    pub inbound_refused: u64,
    /// Publishes sent to the cluster's topic subjects.
    pub published: u64,
    /// Slow-consumer events the client reported (messages the server or client dropped
    /// because this node read too slowly).
    pub slow_consumer_events: u64,
    /// At-least-once messages the stream offered to this node (redeliveries included).
    pub durable_inbound: u64,
    /// Of those, offers after the first (a failed handling, or a node that never settled).
    pub durable_redelivered: u64,
    /// At-least-once messages this node gave back to the stream for another offer (a
    /// handler failed with attempts left, a full mailbox, a component that stopped).
    pub durable_returned: u64,
    /// Times the connection was re-established after a loss.
    pub reconnects: u64,
    /// Times the node made a new NATS client because its client's connection task was gone
    /// (it panicked, or it ended): not an outage, which the client rides out by itself, but a
    /// fault in the client. Each also counts in `reconnects`.
    pub client_rebuilds: u64,
    /// Messages waiting in the reconnect buffer now (sent while cut off).
    pub buffered: usize,
    /// Sends refused because the reconnect buffer was full (or off) while cut off.
    pub buffer_refused: u64,
    /// Messages dead-lettered because they outlived the reconnect buffer's deadline.
    pub buffer_expired: u64,
    /// Other nodes forgotten for their silence (three of their own heartbeats).
    pub nodes_expired: u64,
    /// Directory announcements dropped, or cut, at [`ClusterConfig::max_nodes`] or
    /// [`ClusterConfig::max_remote_ids`], and messages on the directory's subjects that no
    /// node sends (without `sy-node`, a node name that cannot be a subject token, a verb
    /// this node does not know).
    pub directory_refused: u64,
    /// Discovery requests (`$SRV.*`) left unanswered: a reply subject that is not an
    /// inbox (nor the server's mapping of one), or past the node's bound of answers a second.
    pub discovery_refused: u64,
    /// Discovery summaries made: the `INFO` and `STATS` answers are copies of one, made
    /// again at most once a second (see the module docs), however many are asked for.
    pub discovery_summaries: u64,
    /// Subscriptions and publishes the server refused for want of a permission (each a
    /// `Permissions Violation` on the connection). At build such a refusal fails the
    /// build; later, a component whose subject the node may not subscribe to is not
    /// served to the cluster.
    pub permission_denied: u64,
    /// Batches of one-way messages this node sent on its links to other nodes (each one
    /// NATS message), and of those, batches sent again (an acknowledgement was late, or the
    /// connection came back).
    pub link_batches: u64,
    /// See `link_batches`.
    pub link_resends: u64,
    /// Fetches of another node's ids (it joined, restarted, or this node missed a change).
    pub state_fetches: u64,
    /// True for one heartbeat after the node joined: a send to an id no node is known to
    /// host waits for membership to learn of one rather than fail.
    pub warming: bool,
    /// Other nodes in the directory now.
    pub remote_nodes: usize,
    /// Ids hosted by other nodes (and not here) now.
    pub remote_components: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_values_are_refused_naming_the_field() {
        let base = ClusterConfig::new("nats://127.0.0.1:4222", "c");
        assert_eq!(base.invalid(), None);
        let cases: [(&str, ClusterConfig); 8] = [
            ("outbound_capacity", ClusterConfig { outbound_capacity: 0, ..base.clone() }),
            ("ack_wait", ClusterConfig { ack_wait: Duration::from_millis(10), ..base.clone() }),
            ("max_request_timeout", ClusterConfig { max_request_timeout: Duration::ZERO, ..base.clone() }),
            ("max_nodes", ClusterConfig { max_nodes: usize::MAX, ..base.clone() }),
            ("stream_max_bytes", ClusterConfig { stream_max_bytes: 10, ..base.clone() }),
            ("stream_max_bytes", ClusterConfig { stream_max_bytes: u64::MAX, ..base.clone() }),
            ("stream_max_age", ClusterConfig { stream_max_age: Duration::from_secs(400 * 24 * 3600), ..base.clone() }),
            ("consumer_inactive", ClusterConfig { consumer_inactive: Duration::ZERO, ..base.clone() }),
        ];
        for (field, config) in cases {
            let why = config.invalid().unwrap_or_else(|| panic!("{field}: accepted"));
            assert!(why.starts_with(field), "{field}: {why}");
        }
    }
}
