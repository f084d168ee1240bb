//! Durability against a real LocalStack: `kill -9` of the daemon between the
//! two halves of a burst, then a restart. With `delete_after =
//! "windows_closed"` (the default) the first half's message was not deleted,
//! SQS redelivers it, and the restarted daemon produces exactly the alerts a
//! clean run produces, with the same `alert_id`s.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::*;

fn config(stack: &Stack, hook: &Webhook, dir: &std::path::Path, port: u16) -> String {
    let sinks = webhook_sink(hook, "max_attempts = 3\nbackoff_millis = 100\n");
    daemon_config(
        stack,
        dir,
        port,
        "visibility_timeout_secs = 4\n",
        "",
        &sinks,
    )
}

async fn metric(port: u16, name: &str) -> Option<f64> {
    let m = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    m.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_between_halves_of_a_burst_loses_no_alert_and_keeps_alert_ids() {
    let stack = Stack::create().await;
    let hook = Webhook::start().await;
    let arn = "arn:aws:iam::111122223333:user/durable-dana";
    let burst = cli_burst(arn, "10:07", 8, 10, &unique("dana"));
    let (first, second) = burst.split_at(5);
    let files = [
        (
            trail_key("us-east-1", "20261120T1010Z", "HALF000000000001"),
            gz(&trail_file(first)),
        ),
        (
            trail_key("eu-west-1", "20261120T1010Z", "HALF000000000002"),
            gz(&trail_file(second)),
        ),
    ];

    // What a clean run produces.
    let clean = tempfile::tempdir().unwrap();
    for (k, body) in &files {
        let p = clean.path().join(k);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_reconwatch"))
        .args(["replay", clean.path().to_str().unwrap()])
        .env(
            "RECONWATCH__PIPELINE__STATE_DIR",
            clean.path().join("state"),
        )
        .output()
        .unwrap();
    assert!(out.status.success());
    let expected: BTreeSet<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let a: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                a["rule"]["id"].as_str().unwrap().to_string(),
                a["alert_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        expected.iter().any(|(r, _)| r == "discovery_cli"),
        "{expected:?}"
    );
    // Neither half alone is a burst.
    for (_, body) in &files {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("x.json.gz"), body).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_reconwatch"))
            .args(["replay", d.path().to_str().unwrap()])
            .env("RECONWATCH__PIPELINE__STATE_DIR", d.path().join("state"))
            .output()
            .unwrap();
        assert!(o.stdout.is_empty(), "half a burst must not alert");
    }

    // Run 1: apply the first half, then kill -9.
    let dir = tempfile::tempdir().unwrap();
    let port1 = free_port();
    let mut d1 = Daemon::start(dir.path(), &config(&stack, &hook, dir.path(), port1));
    stack.put(&files[0].0, files[0].1.clone()).await;
    wait_for(
        Duration::from_secs(30),
        "first half applied and parked",
        || async move {
            let parked = metric(port1, "reconwatch_sqs_messages_pending_delete").await?;
            (parked >= 1.0).then_some(())
        },
    )
    .await;
    d1.kill9();
    assert!(hook.alerts().is_empty());
    assert!(
        stack.queue_depth(&stack.queue_url).await >= 1,
        "the applied message must not have been deleted"
    );

    // Run 2: restart, then the second half arrives.
    let port2 = free_port();
    let _d2 = Daemon::start(dir.path(), &config(&stack, &hook, dir.path(), port2));
    stack.put(&files[1].0, files[1].1.clone()).await;
    let got = wait_for(
        Duration::from_secs(60),
        "the clean run's alerts after restart",
        || {
            let hook = hook.clone();
            let n = expected.len();
            async move {
                let a = hook.alerts();
                (a.len() >= n).then_some(a)
            }
        },
    )
    .await;
    let got: BTreeSet<(String, String)> = got
        .iter()
        .map(|a| {
            (
                a["rule"]["id"].as_str().unwrap().to_string(),
                a["alert_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hook.alerts().len(), expected.len(), "no duplicate alerts");
}
