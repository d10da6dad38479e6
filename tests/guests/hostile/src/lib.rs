//! A hostile guest for the sandbox tests (tests/wasi_sandbox.rs, tests/sandbox_limits.rs,
//! cli/tests/run_hostile_guests.rs): a real Rust component, built by cargo for
//! `wasm32-wasip2`, that tries the ways out a plugin author has: `std::net`, `std::fs`,
//! libc's `symlink`, raw `wasi:sockets` lookups, error text and log lines of any size, and
//! as many subscriptions and requests as it likes. Each message names one attempt; the
//! reply says how it went (`ok ...`, or `err <io::ErrorKind> ...`), so a test tells the
//! sandbox's refusal (`PermissionDenied`: WASI's `access-denied`) from the kernel's (a
//! network namespace without routes answers `NetworkUnreachable`).

use serde::Deserialize;
use switchyard_guest::{Component, Context, Error, ErrorCode, Level};

/// One attempt.
#[derive(Deserialize)]
pub enum Op {
    /// A TCP connection to `host:port` (a name is looked up first, by std).
    Connect(String),
    /// One UDP datagram to `host:port`, from a socket bound to the unspecified address.
    SendTo(String),
    /// The addresses a name resolves to.
    Resolve(String),
    /// Starts `count` lookups of `name` with raw `wasi:sockets` calls, waiting for none of
    /// them: how many were started, and the first refusal.
    LookupStorm { name: String, count: u32 },
    /// The length of a file.
    Read(String),
    /// The names in a directory, sorted.
    List(String),
    /// Writes `text` to a file.
    Write { path: String, text: String },
    /// Renames a file or directory.
    Rename { from: String, to: String },
    /// Makes a symbolic link `link` pointing at `target` (libc's `symlink`).
    Symlink { target: String, link: String },
    /// Fails with a `handler-failed` error whose text is `text` repeated to `len` bytes.
    Fail { text: String, len: usize },
    /// Subscribes to `count` topics `prefix-0`, `prefix-1`, ...: how many were taken, and
    /// the first refusal.
    Subscribe { prefix: String, count: u32 },
    /// Asks `to` `count` times with `timeout_ms`: how many were taken, and the first refusal.
    Ask { to: String, count: u32, timeout_ms: u32 },
    /// Logs `count` lines of `len` bytes.
    Log { count: u32, len: usize },
    /// Keeps the request to answer later, then drops what keeps it.
    Abandon,
    /// Keeps the request for good, never answering it.
    Hoard,
}

/// The hostile guest: the requests it hoards.
#[derive(Default)]
pub struct Hostile {
    hoard: Vec<switchyard_guest::Deferred>,
}

impl Component for Hostile {
    type Message = Op;
    type Reply = String;

    fn handle(&mut self, ctx: &mut Context<'_>, op: Op) -> Result<String, Error> {
        Ok(match op {
            Op::Connect(addr) => outcome(std::net::TcpStream::connect(addr.as_str()).map(|_| "connected".into())),
            Op::SendTo(addr) => outcome(send_to(&addr)),
            Op::Resolve(name) => outcome(resolve(&name)),
            Op::LookupStorm { name, count } => lookup_storm(&name, count),
            Op::Read(path) => outcome(std::fs::read(path).map(|b| b.len().to_string())),
            Op::List(path) => outcome(list(&path)),
            Op::Write { path, text } => outcome(std::fs::write(path, text).map(|()| "written".into())),
            Op::Rename { from, to } => outcome(std::fs::rename(from, to).map(|()| "renamed".into())),
            Op::Symlink { target, link } => outcome(symlink(&target, &link)),
            Op::Fail { text, len } => {
                let message: String = text.chars().cycle().take(len).collect();
                return Err(Error::new(ErrorCode::HandlerFailed, message));
            }
            Op::Subscribe { prefix, count } => tally(count, |i| ctx.subscribe(&format!("{prefix}-{i}")).map(|_| ())),
            Op::Ask { to, count, timeout_ms } => {
                let timeout = std::time::Duration::from_millis(u64::from(timeout_ms));
                tally(count, |i| ctx.ask_within(&to, &i, timeout).map(|_| ()))
            }
            Op::Log { count, len } => {
                let line = "x".repeat(len);
                for _ in 0..count {
                    ctx.log(Level::Info, &line);
                }
                format!("ok logged {count}")
            }
            Op::Abandon => {
                drop(ctx.defer()?);
                String::new()
            }
            Op::Hoard => {
                self.hoard.push(ctx.defer()?);
                String::new()
            }
        })
    }
}

/// `ok ...` or `err <kind> <error>`.
fn outcome(r: std::io::Result<String>) -> String {
    match r {
        Ok(what) => format!("ok {what}"),
        Err(e) => format!("err {:?} {e}", e.kind()),
    }
}

/// Runs `attempt` for `0..count` until one is refused: `ok <n>` or `refused after <n>: <code> <message>`.
fn tally(count: u32, mut attempt: impl FnMut(u32) -> Result<(), Error>) -> String {
    for i in 0..count {
        if let Err(e) = attempt(i) {
            return format!("refused after {i}: {:?} {}", e.code, e.message);
        }
    }
    format!("ok {count}")
}

fn send_to(addr: &str) -> std::io::Result<String> {
    let target =
        std::net::ToSocketAddrs::to_socket_addrs(addr)?.next().ok_or_else(|| std::io::Error::other("no address"))?;
    let local = if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let socket = std::net::UdpSocket::bind(local)?;
    socket.send_to(b"x", target).map(|n| format!("sent {n}"))
}

fn resolve(name: &str) -> std::io::Result<String> {
    let addrs: Vec<String> =
        std::net::ToSocketAddrs::to_socket_addrs(&(name, 0))?.map(|a| a.ip().to_string()).collect();
    Ok(addrs.join(","))
}

fn list(path: &str) -> std::io::Result<String> {
    let mut names: Vec<String> = std::fs::read_dir(path)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    Ok(names.join(","))
}

#[cfg(target_arch = "wasm32")]
fn symlink(target: &str, link: &str) -> std::io::Result<String> {
    let target = std::ffi::CString::new(target).map_err(std::io::Error::other)?;
    let link = std::ffi::CString::new(link).map_err(std::io::Error::other)?;
    // SAFETY: two NUL-terminated strings that outlive the call.
    if unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) } == 0 {
        Ok("linked".into())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn symlink(target: &str, link: &str) -> std::io::Result<String> {
    #[cfg(unix)]
    return std::os::unix::fs::symlink(target, link).map(|()| "linked".into());
    #[cfg(not(unix))]
    return Err(std::io::Error::other(format!("no symbolic links here ({target} -> {link})")));
}

/// Starts lookups without waiting for their answers (std waits for each): the attack on a
/// resolver that runs each lookup to its end whatever happens to its stream.
#[cfg(target_arch = "wasm32")]
fn lookup_storm(name: &str, count: u32) -> String {
    use wasip2::sockets::{instance_network, ip_name_lookup};
    let network = instance_network::instance_network();
    for i in 0..count {
        if let Err(e) = ip_name_lookup::resolve_addresses(&network, name) {
            return format!("refused after {i}: {e:?}");
        }
    }
    format!("ok {count}")
}

#[cfg(not(target_arch = "wasm32"))]
fn lookup_storm(name: &str, count: u32) -> String {
    format!("refused after 0: no raw lookups natively ({count} of {name})")
}

switchyard_guest::export!(Hostile);
