//! The binary as users run it: the README's quick start (`replay samples/`),
//! replay over the public Invictus dataset, `check-config` and `rules list`.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn reconwatch(args: &[&str]) -> Output {
    // Each run gets its own state directory (sink outboxes).
    let state = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_reconwatch"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RECONWATCH_CONFIG")
        .env("RUST_LOG", "warn")
        .env("RECONWATCH__PIPELINE__STATE_DIR", state.path())
        .output()
        .expect("run reconwatch")
}

fn alerts(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"))
        })
        .collect()
}

#[test]
fn quick_start_replay_of_bundled_samples_alerts_on_each_planted_burst() {
    let out = reconwatch(&["replay", "samples/"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let a = alerts(&out);
    let by = |rule: &str, who: &str| {
        a.iter()
            .filter(|x| {
                x["rule"]["id"] == rule && x["group"]["identity"].as_str().unwrap().ends_with(who)
            })
            .count()
    };
    // aws-cli burst (rule 1 and 1b) by dev-alice, straddling a 10 s bucket edge.
    assert_eq!(by("discovery_cli", "user/dev-alice"), 1, "{a:#?}");
    assert_eq!(by("discovery_any_client", "user/dev-alice"), 1);
    // Boto3 sweep + burst by the stolen role session: 1b and the rule-3 chain.
    assert_eq!(by("discovery_any_client", "i-0a1b2c3d4e5f60718"), 1);
    assert_eq!(by("recon_chain", "i-0a1b2c3d4e5f60718"), 1);
    // The console user and the deploy role stay quiet.
    assert!(!a.iter().any(|x| {
        let id = x["group"]["identity"].as_str().unwrap();
        id.ends_with("ops-bob") || id.contains("deployer")
    }));
    // Rule 1 (aws-cli only) never fires on the SDK client.
    assert_eq!(by("discovery_cli", "i-0a1b2c3d4e5f60718"), 0);
    assert!(err.contains("events                         238"), "{err}");
    assert!(
        err.contains("events late / duplicate / no identity  0 / 0 / 0"),
        "{err}"
    );
}

#[test]
fn one_core_runs_the_single_threaded_runtime_with_the_same_alerts() {
    // Under `taskset -c 0` the binary picks a current-thread runtime
    // (main.rs); everything it runs must work there (no `block_in_place`,
    // no task that waits on another without yielding) and alert alike.
    let state = tempfile::tempdir().unwrap();
    let one = Command::new("taskset")
        .args([
            "-c",
            "0",
            env!("CARGO_BIN_EXE_reconwatch"),
            "replay",
            "samples/",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RECONWATCH_CONFIG")
        .env("RUST_LOG", "warn")
        .env("RECONWATCH__PIPELINE__STATE_DIR", state.path())
        .output()
        .expect("taskset (util-linux) runs");
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    let many = reconwatch(&["replay", "samples/"]);
    let ids = |out: &Output| {
        let mut v: Vec<String> = alerts(out)
            .iter()
            .map(|a| a["alert_id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert!(!ids(&one).is_empty());
    assert_eq!(ids(&one), ids(&many));
}

#[test]
fn replay_over_invictus_reports_event_count_and_no_cli_alert() {
    let out = reconwatch(&["replay", "tests/data/invictus_aws/CloudTrail"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("events                         2900"), "{err}");
    assert!(
        err.contains("objects ok / failed / skipped  55 / 0 / 0"),
        "{err}"
    );
    // Events each rule's filter accepted, counted over the JSON by a separate
    // script: 2,033 Describe/List/Get calls (rule 4), 2,566 successful calls
    // by non-service identities (rule 5). No call comes from aws-cli, and a
    // correlation takes detections, not events: both are listed with 0.
    for line in [
        "matched api_recon_spike                2033",
        "matched api_calls_anomaly              2566",
        "matched discovery_cli                  0",
        "matched recon_chain                    0",
    ] {
        assert!(err.contains(line), "{line}: {err}");
    }
    // The dataset has no aws-cli user agent: rule 1 fires nothing.
    assert!(
        !alerts(&out)
            .iter()
            .any(|a| a["rule"]["id"] == "discovery_cli")
    );
}

#[test]
fn replay_reports_bad_files_and_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.json.gz"), b"this is not gzip").unwrap();
    std::fs::write(
        dir.path().join("b.json"),
        b"{\"Records\":[{\"eventTime\":\"2026-01-01T00:00:00Z\"}",
    )
    .unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/invictus_aws/CloudTrail/218007301253_CloudTrail_us-east-1_20230710T1220Z_WMiHxZgr5Hdd6UDc.json"),
        dir.path().join("c.json"),
    )
    .unwrap();
    let out = reconwatch(&["replay", dir.path().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "objects failed → exit 2; {err}");
    assert!(err.contains("content is not gzip"), "{err}");
    assert!(err.contains("truncated JSON"), "{err}");
    assert!(
        err.contains("objects ok / failed / skipped  1 / 2 / 0"),
        "{err}"
    );
}

#[test]
fn check_config_lists_every_problem_and_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(
        &p,
        r#"
[sqs]
max_messages = 0
[pipeline]
tick_millis = 0
[[sinks]]
type = "sns"
topic_arn = "not-an-arn"
"#,
    )
    .unwrap();
    let out = reconwatch(&["--config", p.to_str().unwrap(), "check-config"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    for needle in ["sqs.max_messages", "pipeline.tick_millis", "not an ARN"] {
        assert!(err.contains(needle), "{needle} missing: {err}");
    }

    // A bad rule is named with its field.
    std::fs::write(
        &p,
        r#"
[[rules.rule]]
id = "my_rule"
name = "x"
kind = "threshold"
severity = "low"
window = { size_secs = 0 }
threshold = { min_events = 3 }
"#,
    )
    .unwrap();
    let out = reconwatch(&["--config", p.to_str().unwrap(), "check-config"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains(r#"rule "my_rule": window.size_secs: must be >= 1"#),
        "{err}"
    );

    let ok = reconwatch(&["--config", "config/reconwatch.toml", "check-config"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn rules_list_shows_every_default_rule() {
    let out = reconwatch(&["rules", "list"]);
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    for id in [
        "discovery_cli",
        "discovery_any_client",
        "ec2_multi_region_describe",
        "api_recon_spike",
        "recon_chain",
        "discovery_new_source_ip",
    ] {
        assert!(s.contains(id), "{id} missing:\n{s}");
    }
    assert!(s.contains("distinct(event_name) >= 6"), "{s}");
}

/// Every alert the quick start prints conforms to `schema/alert.schema.json`
/// (required keys present, no undeclared keys, enums respected) - checked
/// recursively with a small validator for the schema features the file uses.
#[test]
fn alerts_conform_to_the_published_schema() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/alert.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let out = reconwatch(&["replay", "samples/", "tests/data/invictus_aws/CloudTrail"]);
    let a = alerts(&out);
    assert!(a.len() >= 6);
    for (i, alert) in a.iter().enumerate() {
        common::check_schema(&schema, alert, &format!("alert[{i}]"));
    }
}
