//! A real `nats-server` for a test: started on a free loopback port, ready when it says
//! so on its log, stopped (and restartable on the same port) by the test, paused and resumed
//! (SIGSTOP, SIGCONT to its own process), killed on drop.
//! A test may give it a configuration file of its own (TLS, users and their permissions,
//! operator mode: see `security.rs`); the port and address stay the command line's.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `nats-server` (or none: see [`NatsServer::start`]).
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    /// With JetStream: its store directory (removed on drop).
    store: Option<std::path::PathBuf>,
    /// The configuration file it was started with, if any (the caller's to remove).
    config: Option<std::path::PathBuf>,
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local address").port()
}

fn spawn(port: u16, store: Option<&std::path::Path>, config: Option<&std::path::Path>) -> Child {
    let mut args = vec!["-a".to_string(), "127.0.0.1".into(), "-p".into(), port.to_string()];
    if let Some(dir) = store {
        args.extend(["-js".to_string(), "-sd".into(), dir.display().to_string()]);
    }
    if let Some(file) = config {
        args.extend(["-c".to_string(), file.display().to_string()]);
    }
    let mut child = Command::new("nats-server")
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nats-server starts");
    // Ready once it logs so; the log is read on a thread and the line handed over.
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stderr).lines();
        let mut log = String::new();
        for line in lines.by_ref().map_while(Result::ok) {
            log.push_str(&line);
            log.push('\n');
            if line.contains("Server is ready") {
                let _ = tx.send(Ok(()));
                break;
            }
        }
        let _ = tx.send(Err(log));
        // Keep draining so the server never blocks on a full pipe.
        for _ in lines {}
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(())) => child,
        Ok(Err(log)) => panic!("nats-server on port {port} exited before it was ready:\n{log}"),
        Err(_) => panic!("nats-server on port {port} was not ready within 20 s"),
    }
}

impl NatsServer {
    /// Starts a server, or returns `None` (the test then skips, saying so) when
    /// `nats-server` is not installed and `SWITCHYARD_REQUIRE_TOOLCHAINS` is not set; with
    /// it set (as CI sets it), a missing server fails the test.
    pub fn start() -> Option<NatsServer> {
        Self::start_with(false)
    }

    /// As [`NatsServer::start`], with JetStream on (its store in a fresh directory).
    pub fn start_jetstream() -> Option<NatsServer> {
        Self::start_with(true)
    }

    /// As [`NatsServer::start`], reading the configuration file `config` (which must
    /// outlive the server; its `listen`/`port` settings are overridden).
    pub fn start_with_config(config: &std::path::Path) -> Option<NatsServer> {
        if !installed() {
            return None;
        }
        let port = free_port();
        Some(NatsServer {
            child: Some(spawn(port, None, Some(config))),
            port,
            store: None,
            config: Some(config.into()),
        })
    }

    fn start_with(jetstream: bool) -> Option<NatsServer> {
        if !installed() {
            return None;
        }
        let port = free_port();
        let store = jetstream.then(|| {
            let dir = std::env::temp_dir().join(format!("switchyard-js-{}-{port}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("a JetStream store directory");
            dir
        });
        Some(NatsServer { child: Some(spawn(port, store.as_deref(), None)), port, store, config: None })
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The URL with the `tls://` scheme: the client requires TLS.
    pub fn tls_url(&self) -> String {
        format!("tls://127.0.0.1:{}", self.port)
    }

    /// Kills the server and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.child = Some(spawn(self.port, self.store.as_deref(), self.config.as_deref()));
    }

    /// The process id of the running server.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    /// Stops the server's process (SIGSTOP to this server's own child, never by name): its
    /// connections stay open and the kernel still takes their bytes, but the server reads,
    /// writes and answers nothing until [`NatsServer::resume`]. Returns once the kernel
    /// reports the process stopped.
    pub fn pause(&self) {
        self.signal("-STOP");
        self.until_state("stopped", |state| state == 'T');
    }

    /// Lets a paused server run again (SIGCONT). Returns once the kernel reports it running.
    pub fn resume(&self) {
        self.signal("-CONT");
        self.until_state("running again", |state| state != 'T');
    }

    fn signal(&self, signal: &str) {
        let pid = self.pid().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}: {status}");
    }

    /// Waits (5 s at most) until the process's state letter in `/proc/<pid>/stat` (after
    /// the command's name in parentheses) passes `ok`.
    fn until_state(&self, what: &str, ok: impl Fn(char) -> bool) {
        let path = format!("/proc/{}/stat", self.pid());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let stat = std::fs::read_to_string(&path).expect("the server's /proc entry");
            let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
            if state.is_some_and(&ok) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "nats-server was not {what} within 5 s: {stat}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// True when `nats-server` runs here. When it does not, a test skips (saying so), unless
/// `SWITCHYARD_REQUIRE_TOOLCHAINS` is set (as CI sets it): then a missing server fails it.
fn installed() -> bool {
    let installed = Command::new("nats-server").arg("--version").output().is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            std::env::var_os("SWITCHYARD_REQUIRE_TOOLCHAINS").is_none(),
            "nats-server is not installed (Debian: apt-get install nats-server)"
        );
        eprintln!("skipped: nats-server is not installed (Debian: apt-get install nats-server)");
    }
    installed
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = &self.store {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
