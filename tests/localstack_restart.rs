//! LocalStack stopped and restarted under a running daemon: the daemon keeps
//! running through the outage (ReceiveMessage failures are logged and
//! retried), picks up again once the queue exists again, alerts on the new
//! burst, sends no alert twice, and still exits 0 on SIGTERM.
//!
//! This file restarts the shared LocalStack, so it is its own test binary
//! (cargo runs test binaries one after another). A guard restarts LocalStack
//! when the test ends, even when it fails midway.

mod common;

use std::time::Duration;

use common::*;

fn config(stack: &Stack, hook: &Webhook, dir: &std::path::Path, port: u16) -> String {
    let sqs = "visibility_timeout_secs = 30\ndelete_after = \"applied\"\n";
    let sinks = webhook_sink(hook, "max_attempts = 3\nbackoff_millis = 100\n");
    daemon_config(stack, dir, port, sqs, "shutdown_grace_secs = 10\n", &sinks)
        + "log_format = \"json\"\n"
}

/// Starts LocalStack again on drop if it is not healthy (the test stopped
/// it and failed before starting it again).
struct RestartLocalStackOnDrop;

impl Drop for RestartLocalStackOnDrop {
    fn drop(&mut self) {
        if !localstack_healthy() && !localstack_script("start") {
            eprintln!("could not restart LocalStack after the restart test");
        }
    }
}

const RECEIVE_FAILED: &str = "ReceiveMessage failed";

fn pairs_for(alerts: &[serde_json::Value], arn: &str) -> usize {
    alerts
        .iter()
        .filter(|a| a["group"]["identity"] == arn)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localstack_restart_mid_run_loses_nothing_and_duplicates_nothing() {
    let stack = Stack::create().await;
    let hook = Webhook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut daemon = Daemon::start(dir.path(), &config(&stack, &hook, dir.path(), port));

    let arn_a = "arn:aws:iam::111122223333:user/restart-a";
    let arn_b = "arn:aws:iam::111122223333:user/restart-b";

    // 1. Identity A's burst → its two alerts (rules 1 and 1b).
    stack
        .put_trail(
            "us-east-1",
            "20261120T1010Z",
            "RESTARTA00000001",
            &cli_burst(arn_a, "10:07", 8, 8, &unique("a")),
        )
        .await;
    wait_for(Duration::from_secs(60), "A's two alerts", || {
        let hook = hook.clone();
        async move { (pairs_for(&hook.alerts(), arn_a) >= 2).then_some(()) }
    })
    .await;
    // A's notification (and S3's test event) deleted before the outage.
    wait_for(
        Duration::from_secs(30),
        "A's notification to be deleted",
        || async move {
            let m = scrape_metrics(port).await?;
            (metric_value(&m, "reconwatch_sqs_messages_deleted_total")? >= 2.0).then_some(())
        },
    )
    .await;
    assert_eq!(stack.queue_depth(&stack.queue_url).await, 0);

    // 2. LocalStack goes away under the running daemon.
    let _guard = RestartLocalStackOnDrop;
    let failures_before = daemon.log().matches(RECEIVE_FAILED).count();
    assert!(
        localstack_script("stop"),
        "scripts/localstack.sh stop failed"
    );
    assert!(
        !localstack_healthy(),
        "LocalStack still answers after scripts/localstack.sh stop (not started by the script?)"
    );
    wait_for(
        Duration::from_secs(60),
        "the daemon to log a ReceiveMessage failure",
        || {
            let n = daemon.log().matches(RECEIVE_FAILED).count();
            async move { (n > failures_before).then_some(()) }
        },
    )
    .await;
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "the daemon must keep running through the outage; log:\n{}",
        daemon.log()
    );

    // 3. LocalStack comes back empty; the same resources are created again.
    assert!(
        localstack_script("start"),
        "scripts/localstack.sh start failed"
    );
    assert!(localstack_healthy());
    stack.recreate().await;

    // 4. Identity B's burst after the outage → its two alerts.
    stack
        .put_trail(
            "us-east-1",
            "20261120T1015Z",
            "RESTARTB00000001",
            &cli_burst(arn_b, "10:12", 8, 8, &unique("b")),
        )
        .await;
    wait_for(
        Duration::from_secs(120),
        "B's two alerts after the restart",
        || {
            let hook = hook.clone();
            async move { (pairs_for(&hook.alerts(), arn_b) >= 2).then_some(()) }
        },
    )
    .await;
    wait_for(
        Duration::from_secs(30),
        "B's notification to be deleted",
        || {
            let stack = &stack;
            async move { (stack.queue_depth(&stack.queue_url).await == 0).then_some(()) }
        },
    )
    .await;

    // 5. SIGTERM: clean exit after draining.
    let status = daemon.terminate(Duration::from_secs(30));
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        daemon.log()
    );
    let log = daemon.log();
    assert!(log.contains("Stopped."), "{log}");

    // Exactly A's and B's alerts, each once.
    let mut want: Vec<(String, String)> = [arn_a, arn_b]
        .iter()
        .flat_map(|arn| {
            ["discovery_cli", "discovery_any_client"]
                .iter()
                .map(move |r| (r.to_string(), arn.to_string()))
        })
        .collect();
    want.sort();
    assert_eq!(alert_pairs(&hook.alerts()), want);
}
