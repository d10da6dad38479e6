//! Where a networked guest can go, tried by a real Rust guest (tests/guests/hostile, built by
//! cargo for wasm32-wasip2, using `std::net` and raw `wasi:sockets` calls), each test in a
//! network namespace of its own: only loopback is up, so an address the sandbox fails to
//! refuse ends in the kernel's "Network is unreachable", and a refusal is the sandbox's
//! `access-denied` (`PermissionDenied` to std). Nothing leaves this machine.
#![cfg(all(feature = "wasm", target_os = "linux"))]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::netns::{Namespace, isolated};
use common::*;
use switchyard::{
    Capabilities, DirGrant, MessageEnvelope, MessageType, OutboundRule, WasiGrants, WasmComponent, WasmConfig,
    WasmHost, WasmOptions, codec, new_message_id,
};

fn host() -> Option<(WasmHost, WasmComponent)> {
    let file = common::guests::hostile()?;
    let host = WasmHost::new(WasmConfig { pooling: false, ..WasmConfig::default() }).expect("host starts");
    let code = host.load_file(file).expect("the hostile guest loads");
    Some((host, code))
}

fn options(wasi: WasiGrants) -> WasmOptions {
    WasmOptions::default()
        .capabilities(Capabilities { wasi, ..Capabilities::default() })
        .deadline(Duration::from_secs(20))
        .fuel_per_message(u64::MAX / 2)
}

fn op(to: &str, op: serde_json::Value) -> MessageEnvelope {
    MessageEnvelope::new(
        MessageType::Request,
        id("host"),
        id(to),
        serde_json::to_vec(&op).expect("json"),
        codec::JSON,
        new_message_id(),
    )
}

/// One attempt by a fresh instance with `wasi`: its report, and the capability denials counted.
fn attempt(host: &WasmHost, code: &WasmComponent, wasi: &WasiGrants, what: serde_json::Value) -> (String, u64) {
    let mut instance = host.instantiate_detached(&id("hostile"), code, options(wasi.clone())).expect("instantiates");
    let reply = instance.call(&op("hostile", what)).expect("the call returns").expect("a reply");
    (serde_json::from_slice(&reply).expect("a string"), instance.stats().capability_denials)
}

fn refused(report: &str) -> bool {
    report.starts_with("err PermissionDenied")
}

fn rules(list: &[&str]) -> Vec<OutboundRule> {
    list.iter().map(|r| r.parse().expect("a rule")).collect()
}

#[test]
fn the_network_grant_reaches_public_unicast_addresses_only() {
    let ns = Namespace { local_addrs: &["10.99.0.1/32"], ..Namespace::default() };
    if !isolated("the_network_grant_reaches_public_unicast_addresses_only", &ns) {
        return;
    }
    let Some((host, code)) = host() else { return };
    let network = WasiGrants { network: true, ..WasiGrants::default() };
    for what in [
        serde_json::json!({"Connect": "169.254.169.254:80"}),
        serde_json::json!({"Connect": "[64:ff9b::a9fe:a9fe]:80"}),
        serde_json::json!({"Connect": "[2002:a9fe:a9fe::1]:80"}),
        serde_json::json!({"Connect": "[fe80::1]:80"}),
        serde_json::json!({"SendTo": "239.1.2.3:5000"}),
        serde_json::json!({"SendTo": "224.0.0.251:5353"}),
        serde_json::json!({"SendTo": "255.255.255.255:5000"}),
        serde_json::json!({"SendTo": "[ff02::fb]:5353"}),
        serde_json::json!({"Connect": "10.1.2.3:5432"}),
        serde_json::json!({"Connect": "[fd00::1]:80"}),
        // This machine: loopback, and an address of its own interfaces.
        serde_json::json!({"Connect": "127.0.0.1:80"}),
        serde_json::json!({"Connect": "10.99.0.1:80"}),
    ] {
        let (report, denials) = attempt(&host, &code, &network, what.clone());
        assert!(refused(&report), "{what}: {report}");
        assert!(denials >= 1, "{what}: the refusal is counted");
    }
    // IPv4-mapped and -compatible addresses, and the unspecified address, are refused by
    // WASI itself (`invalid-argument`); the policy judges them all the same.
    for what in [
        serde_json::json!({"Connect": "0.0.0.0:80"}),
        serde_json::json!({"Connect": "[::ffff:169.254.169.254]:80"}),
        serde_json::json!({"Connect": "[::169.254.169.254]:80"}),
        serde_json::json!({"SendTo": "[::ffff:239.1.2.3]:5000"}),
    ] {
        let (report, _) = attempt(&host, &code, &network, what.clone());
        assert!(report.starts_with("err InvalidInput"), "{what}: {report}");
    }
    // A public address is let through to the kernel, which has no route out of here.
    for what in [serde_json::json!({"Connect": "1.1.1.1:80"}), serde_json::json!({"SendTo": "1.1.1.1:53"})] {
        let (report, _) = attempt(&host, &code, &network, what.clone());
        assert!(report.starts_with("err") && !refused(&report), "{what}: {report}");
    }
    // With `loopback`, this machine is reached (nobody listens: refused by the kernel).
    let local = WasiGrants { loopback: true, ..WasiGrants::default() };
    let (report, _) = attempt(&host, &code, &local, serde_json::json!({"Connect": "10.99.0.1:9"}));
    assert!(report.starts_with("err") && !refused(&report), "{report}");
    let (report, _) = attempt(&host, &code, &local, serde_json::json!({"SendTo": "239.1.2.3:5000"}));
    assert!(refused(&report), "loopback is no multicast grant: {report}");
}

#[test]
fn an_allow_list_reaches_its_hosts_and_networks_and_looks_up_only_its_names() {
    let ns = Namespace {
        hosts: &["1.2.3.4 api.test", "5.6.7.8 other.test", "169.254.169.254 metadata.test", "10.1.2.3 db.test"],
        ..Namespace::default()
    };
    if !isolated("an_allow_list_reaches_its_hosts_and_networks_and_looks_up_only_its_names", &ns) {
        return;
    }
    let Some((host, code)) = host() else { return };
    let listed = WasiGrants {
        outbound: rules(&["api.test:8080", "metadata.test:80", "db.test:5432", "10.1.0.0/16:5432"]),
        ..WasiGrants::default()
    };
    let go = |what: serde_json::Value| attempt(&host, &code, &listed, what).0;
    assert_eq!(go(serde_json::json!({"Resolve": "api.test"})), "ok 1.2.3.4");
    let through = go(serde_json::json!({"Connect": "api.test:8080"}));
    assert!(through.starts_with("err") && !refused(&through), "listed: let through to the kernel: {through}");
    assert!(refused(&go(serde_json::json!({"Connect": "1.2.3.4:9999"}))), "another port");
    assert!(refused(&go(serde_json::json!({"Connect": "5.6.7.8:8080"}))), "an address not listed");
    // A name not on the list is not looked up (/etc/hosts would answer it).
    let (unlisted, denials) = attempt(&host, &code, &listed, serde_json::json!({"Resolve": "other.test"}));
    assert!(unlisted.starts_with("err"), "{unlisted}");
    assert!(denials >= 1, "counted");
    // A listed name that resolves to a link-local address does not reach it.
    assert!(go(serde_json::json!({"Resolve": "metadata.test"})).starts_with("err"));
    assert!(go(serde_json::json!({"Connect": "metadata.test:80"})).starts_with("err"));
    assert!(refused(&go(serde_json::json!({"Connect": "169.254.169.254:80"}))));
    // A private network entry reaches that network, on its port.
    assert_eq!(go(serde_json::json!({"Resolve": "db.test"})), "ok 10.1.2.3");
    let db = go(serde_json::json!({"Connect": "db.test:5432"}));
    assert!(db.starts_with("err") && !refused(&db), "{db}");
    assert!(refused(&go(serde_json::json!({"Connect": "10.1.2.3:22"}))));
    // Without `network`, nothing public beyond the list.
    assert!(refused(&go(serde_json::json!({"Connect": "1.1.1.1:80"}))));
}

/// A guest starting lookups of a name whose server never answers (each lookup holds its
/// thread for the resolver's whole timeout) does not hold up another component's file
/// reads: lookups run on the host's own bounded resolver, a few per component.
#[test]
fn lookups_of_a_black_holed_name_do_not_starve_another_components_file_reads() {
    let ns =
        Namespace { resolv_conf: Some("nameserver 127.0.0.1\noptions timeout:5 attempts:2\n"), ..Namespace::default() };
    if !isolated("lookups_of_a_black_holed_name_do_not_starve_another_components_file_reads", &ns) {
        return;
    }
    let Some((host, code)) = host() else { return };
    // The name server: takes every query and never answers.
    let _black_hole = std::net::UdpSocket::bind("127.0.0.1:53").expect("port 53 in the namespace");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("lookups-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("file"), b"hello").expect("file");
    let (rt, _dead) = runtime(2);
    let storm = WasiGrants { network: true, ..WasiGrants::default() };
    host.register(&rt.handle(), id("storm"), &code, options(storm).max_resources(2048)).expect("storm registers");
    let reader = WasiGrants {
        dirs: vec![DirGrant { host: dir.clone(), guest: "/data".into(), writable: false }],
        ..WasiGrants::default()
    };
    let reading = options(reader).deadline(Duration::from_secs(2));
    host.register(&rt.handle(), id("reader"), &code, reading).expect("reader registers");
    let ask = |to: &str, what: serde_json::Value| -> Result<String, String> {
        let reply = rt.request(op(to, what), Duration::from_secs(30)).expect("accepted").wait();
        reply.map(|r| serde_json::from_slice(&r.payload).expect("a string")).map_err(|e| e.to_string())
    };
    let stormed = ask("storm", serde_json::json!({"LookupStorm": {"name": "black.hole.test", "count": 600}}));
    let stormed = stormed.expect("the storm call returns");
    assert_eq!(ask("reader", serde_json::json!({"Read": "/data/file"})), Ok("ok 5".to_string()));
    assert!(stormed.starts_with("refused after"), "a component's lookups are bounded: {stormed}");
    let denials = host.stats(&id("storm")).expect("stats").capability_denials;
    assert!(denials >= 1, "the refused lookup is counted");
    let _ = std::fs::remove_dir_all(&dir);
}
