//! The manifest parser's tests: resolution, defaults, and a located error for each bad field.

use super::*;

fn parse(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(Path::new("dir/m.toml"), text)
}

const ONE: &str = "[[component]]\nid = \"a\"\nfile = \"a.wasm\"\n";

#[test]
fn minimal_manifest_resolves_files_against_its_directory() {
    let m = parse(ONE).unwrap();
    assert_eq!(m.components[0].file, Path::new("dir/a.wasm"));
    assert_eq!(m.components[0].file_location, Location { position: (3, 8), field: "component[0].file".into() });
    assert_eq!(m.components[0].options, WasmOptions::default());
}

#[test]
fn syntax_error_names_file_and_line() {
    let e = parse("[[component]]\nid = \"a\nfile = 1\n").unwrap_err();
    assert_eq!(e.position.map(|p| p.0), Some(2), "{e}");
    assert!(e.to_string().starts_with("dir/m.toml:2:"), "{e}");
}

#[test]
fn wrong_type_names_the_field_and_its_line() {
    let e = parse(&format!("{ONE}fuel_per_message = \"lots\"\n")).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("component[0].fuel_per_message"), "{e}");
    assert_eq!(e.position.map(|p| p.0), Some(4), "{e}");
}

#[test]
fn unknown_field_is_rejected_with_its_name() {
    let e = parse(&format!("{ONE}fule_per_message = 5\n")).unwrap_err();
    assert!(e.message.contains("fule_per_message"), "{e}");
    assert_eq!(e.position.map(|p| p.0), Some(4), "{e}");
}

#[test]
fn bad_storage_rights_name_the_nested_field() {
    let e = parse(&format!("{ONE}capabilities = {{ storage = \"write-only\" }}\n")).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("component[0].capabilities.storage"), "{e}");
}

#[test]
fn semantic_errors_point_at_the_field() {
    let e = parse("[[component]]\nid = \"not an id\"\nfile = \"a.wasm\"\n").unwrap_err();
    assert_eq!((e.field.as_deref(), e.position), (Some("component[0].id"), Some((2, 6))), "{e}");
    let e = parse(&format!("{ONE}mailbox_capacity = 0\n")).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("component[0].mailbox_capacity"), "{e}");
    let e = parse(&format!("{ONE}{}", ONE.replace("a.wasm", "b.wasm"))).unwrap_err();
    assert!(e.message.contains("declared twice"), "{e}");
    let e = parse(&format!("{ONE}[[message]]\nto = \"ghost\"\npayload = \"x\"\n")).unwrap_err();
    assert_eq!((e.field.as_deref(), e.position), (Some("message[0].to"), Some((5, 6))), "{e}");
    let e = parse(&format!("{ONE}[[message]]\nto = \"a\"\npayload = \"x\"\ncodec = \"yaml\"\n")).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("message[0].codec"), "{e}");
    let e = parse(&format!("{ONE}memory_limit = \"3 parsecs\"\n")).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("component[0].memory_limit"), "{e}");
}

#[test]
fn a_guests_holdings_are_bounded_from_the_manifest() {
    let m = parse(&format!("{ONE}max_subscriptions = 7\nmax_pending_requests = 9\nmax_request_timeout_ms = 250\n"));
    let o = &m.unwrap().components[0].options;
    assert_eq!((o.max_subscriptions, o.max_pending_requests), (7, 9));
    assert_eq!(o.max_request_timeout, Duration::from_millis(250));
    let e = parse(&format!("{ONE}max_pending_requests = 0\n")).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("component[0].max_pending_requests"), "{e}");
}

#[test]
fn network_is_a_flag_or_a_located_allow_list() {
    let caps = |network: &str| parse(&format!("{ONE}capabilities = {{ network = {network} }}\n"));
    let wasi = |m: Manifest| m.components[0].options.capabilities.wasi.clone();
    assert!(wasi(caps("true").unwrap()).network);
    assert!(!wasi(caps("false").unwrap()).network);
    let listed = wasi(caps(r#"["api.example.com:443", "10.1.0.0/16:5432"]"#).unwrap());
    assert!(!listed.network, "a list alone reaches only its entries");
    let shown: Vec<String> = listed.outbound.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["api.example.com:443", "10.1.0.0/16:5432"]);
    for (value, field, why) in [
        (r#"["api.example.com:443", "169.254.169.254:80"]"#, "component[0].capabilities.network[1]", "link-local"),
        (r#"["api.example.com"]"#, "component[0].capabilities.network[0]", "has no port"),
        (r#"[443]"#, "component[0].capabilities.network[0]", "a string"),
        ("\"yes\"", "component[0].capabilities.network", "true, false, or a list"),
    ] {
        let e = caps(value).unwrap_err();
        assert_eq!(e.field.as_deref(), Some(field), "{value}: {e}");
        assert!(e.message.contains(why), "{value}: {e}");
        assert_eq!(e.position.map(|p| p.0), Some(4), "{value}: {e}");
    }
}

#[test]
fn empty_manifest_is_an_error() {
    assert!(parse("").unwrap_err().message.contains("no component"));
}

#[test]
fn options_fill_limits_rights_and_supervision() {
    let m = parse(&format!(
        "{ONE}fuel_per_message = 5000\ndeadline_ms = 20\nmemory_limit = \"1MiB\"\nmailbox_capacity = 7\n\
         restart = {{ policy = \"transient\", max_restarts = 2 }}\n\
         capabilities = {{ send = [\"b\", \"svc/*\"], storage = \"read-write\" }}\n\
         [[message]]\nto = \"a\"\npayload = {{ n = 1 }}\nrequest = true\n"
    ))
    .unwrap();
    let o = &m.components[0].options;
    assert_eq!((o.fuel_per_message, o.deadline, o.memory_limit), (5000, Duration::from_millis(20), 1 << 20));
    assert_eq!(o.component.mailbox_capacity, 7);
    assert_eq!((o.component.supervision.policy, o.component.supervision.max_restarts), (RestartPolicy::Transient, 2));
    assert_eq!(o.capabilities.send, vec![TargetPattern::Exact("b".into()), TargetPattern::Prefix("svc/".into())]);
    assert_eq!(o.capabilities.storage, StorageRights::ReadWrite);
    assert!(m.uses_storage());
    let msg = &m.messages[0];
    assert_eq!((msg.payload.as_slice(), msg.codec, msg.request), (&b"{\"n\":1}"[..], switchyard::codec::JSON, true));
}

#[test]
fn numbers_out_of_range_name_the_field_its_place_and_the_range() {
    let cases = [
        ("[runtime]\nworkers = 18446744073709551615\n", "runtime.workers", (2, 11), "from 1 to 1024"),
        ("[runtime]\ndrain_timeout_ms = -1\n", "runtime.drain_timeout_ms", (2, 20), "from 0 ms to"),
        ("[runtime]\nrequest_timeout_ms = 0\n", "runtime.request_timeout_ms", (2, 22), "from 1 ms to"),
        ("[cluster]\nurl = \"nats://h:1\"\nname = \"c\"\nwait_ms = -5\n", "cluster.wait_ms", (4, 11), "from 0 ms to"),
        (
            "[cluster]\nurl = \"nats://h:1\"\nname = \"c\"\nack_wait_ms = 99\n",
            "cluster.ack_wait_ms",
            (4, 15),
            "from 100 ms to",
        ),
        ("fuel_per_message = 0\n", "component[0].fuel_per_message", (4, 20), "from 1 to"),
        ("deadline_ms = 18446744073709551615\n", "component[0].deadline_ms", (4, 15), "3600000 ms"),
        ("memory_limit = \"16GiB\"\n", "component[0].memory_limit", (4, 16), "to 4GiB"),
        ("memory_limit = 4294967297\n", "component[0].memory_limit", (4, 16), "to 4GiB"),
        ("memory_limit = -1\n", "component[0].memory_limit", (4, 16), "from 64KiB"),
        ("mailbox_capacity = 9223372036854775807\n", "component[0].mailbox_capacity", (4, 20), "1048576"),
        ("restart = { max_restarts = 4294967296 }\n", "component[0].restart.max_restarts", (4, 28), "10000"),
        ("restart = { window_ms = 0 }\n", "component[0].restart.window_ms", (4, 25), "from 1 ms"),
        ("restart = { backoff_initial_ms = -1 }\n", "component[0].restart.backoff_initial_ms", (4, 34), "0 ms"),
        ("restart = { backoff_max_ms = 3600001 }\n", "component[0].restart.backoff_max_ms", (4, 30), "0 ms"),
        (
            "capabilities = { storage_quota = { max_bytes = 0, max_keys = 1 } }\n",
            "component[0].capabilities.storage_quota.max_bytes",
            (4, 48),
            "from 1 byte to 1TiB",
        ),
        (
            "capabilities = { storage_quota = { max_bytes = 1, max_keys = -1 } }\n",
            "component[0].capabilities.storage_quota.max_keys",
            (4, 62),
            "from 1 to",
        ),
        (
            "capabilities = { max_payload_bytes = 16777217 }\n",
            "component[0].capabilities.max_payload_bytes",
            (4, 38),
            "16MiB",
        ),
    ];
    for (extra, field, position, range) in cases {
        let text = if extra.starts_with('[') { format!("{extra}{ONE}") } else { format!("{ONE}{extra}") };
        let e = parse(&text).unwrap_err();
        assert_eq!((e.field.as_deref(), e.position), (Some(field), Some(position)), "{text}: {e}");
        assert!(e.message.starts_with("must be from") && e.message.contains(range), "{text}: {e}");
    }
}

#[test]
fn largest_accepted_numbers_reach_the_options() {
    let m = parse(&format!(
        "[runtime]\nworkers = 1024\ndrain_timeout_ms = 0\nrequest_timeout_ms = 3_600_000\n{ONE}\
         fuel_per_message = 1_000_000_000_000\ndeadline_ms = 3_600_000\nmemory_limit = \"4GiB\"\n\
         mailbox_capacity = 1_048_576\n\
         restart = {{ max_restarts = 0, window_ms = 86_400_000, backoff_initial_ms = 0, backoff_max_ms = 0 }}\n\
         capabilities = {{ max_payload_bytes = 16_777_216, \
         storage_quota = {{ max_bytes = 1_099_511_627_776, max_keys = 1_000_000_000 }} }}\n"
    ))
    .unwrap();
    assert_eq!(
        (m.workers, m.drain_timeout, m.request_timeout),
        (Some(1024), Duration::ZERO, Duration::from_secs(3600))
    );
    let o = &m.components[0].options;
    assert_eq!(
        (o.fuel_per_message, o.deadline, o.memory_limit),
        (1_000_000_000_000, Duration::from_secs(3600), 4 << 30)
    );
    assert_eq!(o.component.mailbox_capacity, 1 << 20);
    let s = &o.component.supervision;
    assert_eq!(
        (s.max_restarts, s.window, s.backoff_initial, s.backoff_max),
        (0, Duration::from_secs(86_400), Duration::ZERO, Duration::ZERO)
    );
    assert_eq!(o.capabilities.max_payload_bytes, Some(16 << 20));
    assert_eq!(o.capabilities.storage_quota, Some(StorageQuota { max_bytes: 1 << 40, max_keys: 1_000_000_000 }));
}

#[test]
fn integers_beyond_what_toml_can_hold_are_located() {
    let e = parse(&format!("{ONE}deadline_ms = 1606938044258990275541962092341162602522202993782792835301376\n"))
        .unwrap_err();
    assert_eq!((e.field.as_deref(), e.position), (Some("component[0].deadline_ms"), Some((4, 15))), "{e}");
    let e = parse(&format!("{ONE}deadline_ms = 1.5\n")).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("component[0].deadline_ms"), "{e}");
    assert!(e.message.contains("expected an integer"), "{e}");
}

#[test]
fn numeric_codecs_are_carried_and_negative_ones_are_located() {
    let msg = |codec: &str| parse(&format!("{ONE}[[message]]\nto = \"a\"\npayload = \"x\"\ncodec = {codec}\n"));
    assert_eq!(msg("18446744073709551615").unwrap().messages[0].codec, u64::MAX);
    let e = msg("-1").unwrap_err();
    assert_eq!((e.field.as_deref(), e.position), (Some("message[0].codec"), Some((7, 9))), "{e}");
    assert!(e.message.contains("from 0 to 18446744073709551615"), "{e}");
}

#[test]
fn a_manifest_holds_at_most_max_components() {
    let many =
        |n: usize| -> String { (0..n).map(|i| format!("[[component]]\nid = \"c{i}\"\nfile = \"a.wasm\"\n")).collect() };
    assert_eq!(parse(&many(MAX_COMPONENTS)).unwrap().components.len(), MAX_COMPONENTS);
    let Err(e) = parse(&many(MAX_COMPONENTS + 1)) else { panic!("{} components accepted", MAX_COMPONENTS + 1) };
    let line = 3 * MAX_COMPONENTS + 2;
    assert_eq!((e.field.as_deref(), e.position), (Some("component[10000].id"), Some((line, 6))), "{e}");
    assert!(e.message.contains("at most 10000 components"), "{e}");
}

#[test]
fn idle_strategy_is_named_in_the_runtime_section_and_a_wrong_name_is_located() {
    assert_eq!(parse(ONE).unwrap().idle_strategy, IdleStrategy::default());
    for (name, strategy) in
        [("backoff", IdleStrategy::default()), ("park", IdleStrategy::Park), ("busy-spin", IdleStrategy::BusySpin)]
    {
        let m = parse(&format!("[runtime]\nidle = \"{name}\"\n{ONE}")).unwrap();
        assert_eq!(m.idle_strategy, strategy, "{name}");
    }
    let e = parse(&format!("[runtime]\nidle = \"spin-forever\"\n{ONE}")).unwrap_err();
    assert!(e.message.contains("spin-forever") && e.message.contains("busy-spin"), "{e}");
    assert_eq!(e.position.map(|p| p.0), Some(2), "{e}");
}

#[test]
fn a_cluster_section_joins_a_cluster_and_lets_messages_go_to_other_nodes() {
    let text = format!(
        "[cluster]\nurl = \"nats://127.0.0.1:4222\"\nname = \"demo\"\nnode = \"a\"\n{ONE}[[message]]\nto = \"elsewhere\"\npayload = \"x\"\n"
    );
    let m = parse(&text).unwrap();
    let c = m.cluster.expect("a cluster");
    assert_eq!(
        (c.config.url.as_str(), c.config.name.as_str(), c.config.node.as_deref()),
        ("nats://127.0.0.1:4222", "demo", Some("a"))
    );
    assert_eq!(c.wait, Duration::from_secs(10));
    assert!(c.config.discovery, "discovery is on by default");
    assert_eq!(m.messages[0].to.as_str(), "elsewhere", "another node's component");
    // Without a cluster, the same message is an error.
    let e = parse(&format!("{ONE}[[message]]\nto = \"elsewhere\"\npayload = \"x\"\n")).unwrap_err();
    assert!(e.message.contains("no component"), "{e}");
}

#[test]
fn the_cluster_section_sets_discovery_and_the_streams_limits() {
    let text = format!(
        "[cluster]\nurl = \"nats://127.0.0.1:4222\"\nname = \"demo\"\ndiscovery = false\njetstream = true\n\
         stream_max_bytes = 2097152\nstream_max_age_ms = 60000\nconsumer_inactive_ms = 5000\n{ONE}"
    );
    let c = parse(&text).unwrap().cluster.expect("a cluster").config;
    assert!(!c.discovery && c.jetstream);
    assert_eq!(
        (c.stream_max_bytes, c.stream_max_age, c.consumer_inactive),
        (2 << 20, Duration::from_secs(60), Duration::from_secs(5))
    );
    let e =
        parse(&format!("[cluster]\nurl = \"nats://h:1\"\nname = \"c\"\nstream_max_bytes = 1000\n{ONE}")).unwrap_err();
    assert!(e.to_string().contains("cluster.stream_max_bytes: must be from 1MiB to 1TiB"), "{e}");
}

#[test]
fn a_bad_cluster_section_is_located() {
    for (section, field) in [
        ("url = \"ws://h:1\"\nname = \"c\"\n", "cluster.url"),
        ("url = \"nats://h:1\"\nname = \"de.mo\"\n", "cluster.name"),
        ("url = \"nats://h:1\"\nname = \"c\"\nnode = \"\"\n", "cluster.node"),
        ("name = \"c\"\n", "cluster"),
        ("url = \"nats://h:1\"\nname = \"c\"\nport = 1\n", "cluster.port"),
    ] {
        let e = parse(&format!("[cluster]\n{section}{ONE}")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some(field), "{section}: {e}");
        assert!(e.position.is_some(), "{section}: {e}");
    }
}

/// A manifest in a scratch directory holding the given files.
fn parse_in(dir: &std::path::Path, files: &[(&str, &str)], cluster: &str) -> Result<Manifest, ManifestError> {
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let text = format!("[cluster]\nurl = \"tls://127.0.0.1:4222\"\nname = \"c\"\n{cluster}{ONE}");
    Manifest::parse(&dir.join("m.toml"), &text)
}

#[test]
fn cluster_tls_and_credentials_come_from_files_beside_the_manifest_and_never_show() {
    use switchyard::cluster::{ClientCertificate, ClusterAuth, ClusterTls};
    let dir = switchyard_bench_support::storage::TempDir::new("manifest-cluster-security");
    let files = [("ca.pem", "x"), ("n.pem", "x"), ("n.key", "x"), ("pw", "hunter2-pw\n")];
    let cluster = "tls_ca_file = \"ca.pem\"\ntls_cert_file = \"n.pem\"\ntls_key_file = \"n.key\"\n\
                   user = \"node-a\"\npassword_file = \"pw\"\n";
    let m = parse_in(dir.path(), &files, cluster).unwrap();
    let config = &m.cluster.as_ref().unwrap().config;
    assert_eq!(
        config.tls,
        Some(ClusterTls {
            ca_file: Some(dir.path().join("ca.pem")),
            client_cert: Some(ClientCertificate {
                cert_file: dir.path().join("n.pem"),
                key_file: dir.path().join("n.key")
            }),
        })
    );
    let ClusterAuth::UserPassword { user, password } = &config.auth else { panic!("{:?}", config.auth) };
    assert_eq!((user.as_str(), password.expose()), ("node-a", "hunter2-pw"));
    let shown = format!("{m:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[test]
fn conflicting_or_incomplete_cluster_credentials_are_located() {
    let dir = switchyard_bench_support::storage::TempDir::new("manifest-cluster-conflicts");
    let files = [("pw", "hunter2-pw"), ("empty", "\n"), ("n.pem", "x")];
    for (cluster, field, expected) in [
        (
            "user = \"u\"\npassword_file = \"pw\"\ntoken_file = \"pw\"\n",
            "cluster.token_file",
            "conflicts with cluster.user",
        ),
        (
            "creds_file = \"a.creds\"\nnkey_seed_env = \"X\"\n",
            "cluster.creds_file",
            "conflicts with cluster.nkey_seed_env",
        ),
        (
            "user = \"u\"\npassword_file = \"pw\"\npassword_env = \"P\"\n",
            "cluster.password_env",
            "cluster.password_file is given too",
        ),
        ("user = \"u\"\n", "cluster.user", "needs cluster.password_file or cluster.password_env"),
        ("password_file = \"pw\"\n", "cluster.password_file", "needs cluster.user"),
        ("token_file = \"empty\"\n", "cluster.token_file", "the token is empty"),
        ("token_file = \"absent\"\n", "cluster.token_file", "cannot read the token"),
        (
            "nkey_seed_env = \"SWITCHYARD_SURELY_UNSET\"\n",
            "cluster.nkey_seed_env",
            "SWITCHYARD_SURELY_UNSET is not set",
        ),
        ("tls_cert_file = \"n.pem\"\n", "cluster.tls_cert_file", "needs cluster.tls_key_file"),
        ("tls_ca_file = \"absent.pem\"\n", "cluster.tls_ca_file", "absent.pem"),
    ] {
        let e = parse_in(dir.path(), &files, cluster).unwrap_err();
        assert_eq!(e.field.as_deref(), Some(field), "{cluster}: {e}");
        assert!(e.message.contains(expected) && !e.message.contains("hunter2"), "{cluster}: {e}");
        assert!(e.position.is_some_and(|(line, _)| line >= 4), "{cluster}: {e}");
    }
}
