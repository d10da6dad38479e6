//! A test run in a network namespace of its own (`unshare --net --mount`, as root): only
//! loopback is up, so a packet to any other address ends in the kernel's "Network is
//! unreachable" and nothing leaves this machine. Addresses can be added to `lo` (another
//! address of "this machine"), and `/etc/hosts` and `/etc/resolv.conf` replaced for the
//! namespace alone (bind mounts in its own mount namespace).
//!
//! The test calls [`isolated`] first: in the test process it runs the same test again in a
//! child process inside the namespace, asserts that it passed, and returns `false`; in
//! the child it returns `true` and the test's body runs there.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// Names the test the child process runs inside the namespace.
const INSIDE: &str = "SWITCHYARD_NETNS_TEST";

/// What the namespace holds besides loopback.
#[derive(Default)]
pub struct Namespace<'a> {
    /// Addresses added to `lo` (`10.99.0.1/32`): more addresses of this machine.
    pub local_addrs: &'a [&'a str],
    /// `/etc/hosts` lines (`"203.0.113.9 api.test"`), replacing the file.
    pub hosts: &'a [&'a str],
    /// `/etc/resolv.conf`'s text, replacing the file.
    pub resolv_conf: Option<&'a str>,
}

/// True inside the namespace (run the test's body); false in the test process, after the
/// test ran inside one and passed (see the module doc). `test` is the test function's name.
pub fn isolated(test: &str, ns: &Namespace<'_>) -> bool {
    if std::env::var(INSIDE).as_deref() == Ok(test) {
        return true;
    }
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("netns-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch directory");
    let mut script = String::from("set -e\nip link set lo up\n");
    for addr in ns.local_addrs {
        script.push_str(&format!("ip addr add {addr} dev lo\n"));
    }
    if !ns.hosts.is_empty() {
        let hosts = scratch.join("hosts");
        std::fs::write(&hosts, format!("127.0.0.1 localhost\n{}\n", ns.hosts.join("\n"))).expect("hosts");
        script.push_str(&format!("mount --bind {} /etc/hosts\n", hosts.display()));
    }
    if let Some(text) = ns.resolv_conf {
        let resolv = scratch.join("resolv.conf");
        std::fs::write(&resolv, text).expect("resolv.conf");
        script.push_str(&format!("mount --bind {} /etc/resolv.conf\n", resolv.display()));
    }
    script.push_str("exec \"$@\"\n");
    let exe = std::env::current_exe().expect("the test binary");
    let out = Command::new("unshare")
        .args(["--net", "--mount", "--", "sh", "-c", &script, "sh"])
        .arg(&exe)
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(INSIDE, test)
        .output()
        .expect("unshare runs (util-linux)");
    let _ = std::fs::remove_dir_all(&scratch);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} in its own network namespace (this needs root: unshare --net --mount) failed \
         ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    false
}
