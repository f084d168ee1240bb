//! End to end against a real LocalStack: a gzip CloudTrail object uploaded to
//! a bucket whose notifications go to SQS → the `reconwatch run` binary →
//! an alert at a real local webhook (HMAC-signed) and on an SQS queue
//! subscribed to the SNS topic; the notification is deleted; a file without
//! a burst produces no alert; SIGTERM exits cleanly.

mod common;

use std::time::Duration;

use common::*;
use hmac::{Hmac, KeyInit, Mac};

const SECRET: &str = "e2e-test-secret";

fn config(stack: &Stack, hook: &Webhook, dir: &std::path::Path, port: u16) -> String {
    let sqs = "visibility_timeout_secs = 30\ndelete_after = \"applied\"\n";
    let sinks = format!(
        "{}\n[[sinks]]\ntype = \"sns\"\ntopic_arn = \"{}\"\n\n[[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
        webhook_sink(
            hook,
            &format!("secret = \"{SECRET}\"\nmax_attempts = 3\nbackoff_millis = 100\n")
        ),
        stack.topic_arn,
        dir.join("alerts.jsonl").display(),
    );
    daemon_config(stack, dir, port, sqs, "shutdown_grace_secs = 10\n", &sinks)
        + "log_format = \"json\"\n"
}

fn verify_signature(r: &Received) {
    let sig = r
        .headers
        .get("x-reconwatch-signature")
        .expect("signature header")
        .to_str()
        .unwrap();
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(r.body.as_bytes());
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(sig, want, "HMAC signature must cover the exact body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_object_becomes_alert_on_webhook_and_sns_and_quiet_file_does_not() {
    let stack = Stack::create().await;
    let hook = Webhook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut daemon = Daemon::start(dir.path(), &config(&stack, &hook, dir.path(), port));

    // The operations endpoint comes up.
    let http = reqwest::Client::new();
    wait_for(Duration::from_secs(30), "/healthz", || {
        let http = http.clone();
        async move {
            let r = http
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .send()
                .await
                .ok()?;
            r.status().is_success().then_some(())
        }
    })
    .await;

    // 1. A gzip object with an aws-cli discovery burst (8 distinct calls in 4 s).
    let arn = "arn:aws:iam::111122223333:user/e2e-alice";
    let burst = cli_burst(arn, "10:07", 8, 8, &unique("burst"));
    stack
        .put_trail("us-east-1", "20261120T1010Z", "BURST0000000001", &burst)
        .await;

    let alerts = wait_for(
        Duration::from_secs(60),
        "rule-1 alert at the webhook",
        || {
            let hook = hook.clone();
            async move {
                let a = hook.alerts();
                a.iter()
                    .any(|a| a["rule"]["id"] == "discovery_cli")
                    .then_some(a)
            }
        },
    )
    .await;
    let cli = alerts
        .iter()
        .find(|a| a["rule"]["id"] == "discovery_cli")
        .unwrap();
    assert_eq!(cli["group"]["identity"], arn);
    assert_eq!(cli["severity"], "low");
    assert_eq!(cli["risk_score"], 21);
    assert!(cli["aggregates"]["distinct_count"].as_u64().unwrap() >= 6);
    assert_eq!(
        cli["context"]["source_ips"],
        serde_json::json!(["203.0.113.50"])
    );
    assert!(
        cli["summary"].as_str().unwrap().contains("aws-cli/2.15.30"),
        "{}",
        cli["summary"]
    );
    for r in hook.received.lock().unwrap().iter() {
        verify_signature(r);
    }

    // The same alert arrives through SNS on the subscribed queue, with attributes.
    let via_sns = wait_for(Duration::from_secs(30), "rule-1 alert via SNS", || {
        let stack = &stack;
        async move {
            let got = stack.drain_inbox().await;
            got.into_iter()
                .find(|(a, _)| a["rule"]["id"] == "discovery_cli")
        }
    })
    .await;
    assert_eq!(via_sns.0["alert_id"], cli["alert_id"]);
    assert_eq!(via_sns.1["rule_id"]["Value"], "discovery_cli");
    assert_eq!(via_sns.1["severity"]["Value"], "low");

    // The notification (and S3's test event) were deleted from the queue.
    wait_for(
        Duration::from_secs(30),
        "notification queue to drain",
        || {
            let stack = &stack;
            async move { (stack.queue_depth(&stack.queue_url).await == 0).then_some(()) }
        },
    )
    .await;

    // 2. A file with ordinary traffic: processed and deleted, no new alert.
    let before = hook.alerts().len();
    let quiet: Vec<_> = (0..20)
        .map(|i| {
            record(
                &format!("2026-11-20T10:20:{:02}Z", i * 2),
                "arn:aws:iam::111122223333:user/e2e-bob",
                "IAMUser",
                if i % 2 == 0 {
                    "DescribeInstances"
                } else {
                    "ListBuckets"
                },
                if i % 2 == 0 {
                    "ec2.amazonaws.com"
                } else {
                    "s3.amazonaws.com"
                },
                "us-east-1",
                "198.51.100.7",
                "aws-cli/2.15.30 Python/3.11.8",
                &event_id("quiet", i),
            )
        })
        .collect();
    stack
        .put_trail("us-east-1", "20261120T1020Z", "QUIET0000000001", &quiet)
        .await;
    let http2 = http.clone();
    wait_for(
        Duration::from_secs(30),
        "second notification to be processed",
        || {
            let http = http2.clone();
            async move {
                let m = http
                    .get(format!("http://127.0.0.1:{port}/metrics"))
                    .send()
                    .await
                    .ok()?
                    .text()
                    .await
                    .ok()?;
                let deleted: u64 = m
                    .lines()
                    .find_map(|l| l.strip_prefix("reconwatch_sqs_messages_deleted_total "))?
                    .trim()
                    .parse()
                    .ok()?;
                // test event + burst + quiet
                (deleted >= 3).then_some(())
            }
        },
    )
    .await;
    assert_eq!(stack.queue_depth(&stack.queue_url).await, 0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        hook.alerts().len(),
        before,
        "a file without a burst must not alert"
    );

    // The file sink got the same alert.
    let file = std::fs::read_to_string(dir.path().join("alerts.jsonl")).unwrap();
    assert!(file.contains(cli["alert_id"].as_str().unwrap()));

    // Graceful shutdown on SIGTERM.
    let status = daemon.terminate(Duration::from_secs(30));
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        daemon.log()
    );
    let log = daemon.log();
    assert!(log.contains("Shutdown requested"), "{log}");
    assert!(log.contains("Stopped."), "{log}");
}

/// Every object of the bundled samples uploaded at once, in reverse order (a
/// CloudTrail catch-up after an outage): the daemon must find the same alerts
/// as `replay`, and no event may be judged late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_of_many_objects_at_once_loses_no_burst() {
    let stack = Stack::create().await;
    let hook = Webhook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _daemon = Daemon::start(dir.path(), &config(&stack, &hook, dir.path(), port));

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut files = reconwatch::ingest::local::list_files(&root).unwrap();
    files.reverse();
    let uploads = files.iter().map(|f| {
        let key = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let body = std::fs::read(f).unwrap();
        let stack = &stack;
        async move { stack.put(&key, body).await }
    });
    futures::future::join_all(uploads).await;

    let want = [
        ("api_recon_spike", "user/dev-alice"),
        ("api_recon_spike", "i-0a1b2c3d4e5f60718"),
        ("discovery_any_client", "user/dev-alice"),
        ("discovery_any_client", "i-0a1b2c3d4e5f60718"),
        ("discovery_cli", "user/dev-alice"),
        ("recon_chain", "i-0a1b2c3d4e5f60718"),
    ];
    let got = wait_for(Duration::from_secs(90), "the six sample alerts", || {
        let hook = hook.clone();
        async move {
            let a = hook.alerts();
            (a.len() >= want.len()).then_some(a)
        }
    })
    .await;
    let mut pairs: Vec<(String, String)> = got
        .iter()
        .map(|a| {
            let id = a["group"]["identity"].as_str().unwrap();
            let who = want
                .iter()
                .find(|(_, w)| id.ends_with(w))
                .map(|(_, w)| *w)
                .unwrap_or(id);
            (
                a["rule"]["id"].as_str().unwrap().to_string(),
                who.to_string(),
            )
        })
        .collect();
    pairs.sort();
    let mut want: Vec<(String, String)> = want
        .iter()
        .map(|(r, w)| (r.to_string(), w.to_string()))
        .collect();
    want.sort();
    assert_eq!(pairs, want);
    let m = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("reconwatch_events_late_total 0\n"), "{m}");
}

/// Issue 3's scenario: a 12-region DescribeInstances sweep, one object per
/// region, uploaded out of order over several seconds, then a discovery
/// burst by the same principal: one rule-2 signal and one rule-3 alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_region_sweep_out_of_order_then_burst_gives_one_correlation() {
    const REGIONS: [&str; 12] = [
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "eu-west-1",
        "eu-west-2",
        "eu-central-1",
        "ap-south-1",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-northeast-1",
        "sa-east-1",
    ];
    let stack = Stack::create().await;
    let hook = Webhook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _daemon = Daemon::start(dir.path(), &config(&stack, &hook, dir.path(), port));
    let arn = "arn:aws:sts::111122223333:assumed-role/ci-runner/i-0sweep";
    let boto = "Boto3/1.34.69 md/Botocore#1.34.69";
    let tag = unique("sweep");
    // Out of order: a fixed shuffle of the regions, 400 ms apart.
    let order = [7, 2, 11, 0, 5, 9, 3, 10, 1, 8, 4, 6];
    for (n, &i) in order.iter().enumerate() {
        let region = REGIONS[i];
        let r = record(
            &format!("2026-11-20T10:21:{:02}Z", 10 + i),
            arn,
            "AssumedRole",
            "DescribeInstances",
            "ec2.amazonaws.com",
            region,
            "203.0.113.99",
            boto,
            &event_id(&tag, i as u64),
        );
        stack
            .put_trail(region, "20261120T1025Z", &format!("SWEEP{n:011}"), &[r])
            .await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    wait_for(Duration::from_secs(60), "the rule-2 signal", || {
        let url = metrics_url.clone();
        async move {
            let m = reqwest::get(url).await.ok()?.text().await.ok()?;
            m.contains("reconwatch_signals_total{rule=\"ec2_multi_region_describe\"} 1\n")
                .then_some(())
        }
    })
    .await;
    assert!(hook.alerts().is_empty(), "rule 2 alone is only a signal");

    // The discovery burst (Boto3, so rule 1b) two minutes later.
    let burst: Vec<_> = [
        "ListBuckets",
        "ListUsers",
        "ListRoles",
        "GetAccountAuthorizationDetails",
        "ListFunctions20150331",
        "DescribeDBInstances",
        "ListKeys",
        "DescribeTrails",
        "DescribeVpcs",
    ]
    .iter()
    .enumerate()
    .map(|(i, name)| {
        record(
            &format!("2026-11-20T10:23:{:02}Z", 5 + i / 2),
            arn,
            "AssumedRole",
            name,
            "iam.amazonaws.com",
            "us-east-1",
            "203.0.113.99",
            boto,
            &event_id(&tag, 100 + i as u64),
        )
    })
    .collect();
    stack
        .put_trail("us-east-1", "20261120T1025Z", "SWEEPBURST000001", &burst)
        .await;
    let chain = wait_for(Duration::from_secs(60), "the rule-3 correlation", || {
        let hook = hook.clone();
        async move {
            let a: Vec<_> = hook
                .alerts()
                .into_iter()
                .filter(|a| a["rule"]["id"] == "recon_chain")
                .collect();
            (!a.is_empty()).then_some(a)
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = hook.alerts();
    assert_eq!(
        all.iter()
            .filter(|a| a["rule"]["id"] == "recon_chain")
            .count(),
        1,
        "exactly one correlation"
    );
    let c = &chain[0];
    assert_eq!(c["severity"], "high");
    assert_eq!(c["group"]["identity"], arn);
    let sig: Vec<&str> = c["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rule_id"].as_str().unwrap())
        .collect();
    assert!(
        sig.contains(&"ec2_multi_region_describe") && sig.contains(&"discovery_any_client"),
        "{sig:?}"
    );
    // The rule-2 signal fired as soon as 10 regions were seen; it carries those.
    assert!(c["context"]["regions"].as_array().unwrap().len() >= 10);
}
