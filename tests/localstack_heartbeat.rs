//! The visibility heartbeat, against a real LocalStack: a message whose
//! events take much longer to apply than the queue's visibility timeout (the
//! only shard blocks on a one-slot sink channel in front of a webhook that
//! answers after 2.5 s) is not redelivered while it is being processed,
//! because the poller keeps extending its visibility. Without the heartbeat,
//! SQS would make the message visible again after 2 s and the daemon would
//! receive it a second (third, …) time while still working on it.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;

/// Each webhook answer takes this long; six alerts need six answers in a row.
const HOOK_DELAY_MS: u64 = 2_500;
const VISIBILITY_SECS: u64 = 2;

fn config(stack: &Stack, hook: &Webhook, dir: &std::path::Path, port: u16) -> String {
    let sqs = format!("visibility_timeout_secs = {VISIBILITY_SECS}\ndelete_after = \"applied\"\n");
    let pipeline = "shards = 1\nsink_channel_capacity = 1\nshutdown_grace_secs = 30\n";
    let sinks = webhook_sink(
        hook,
        "timeout_secs = 10\nmax_attempts = 1\nbackoff_millis = 100\n",
    );
    daemon_config(stack, dir, port, &sqs, pipeline, &sinks)
}

async fn counter(port: u16, series: &str) -> Option<u64> {
    let m = scrape_metrics(port).await?;
    metric_value(&m, series).map(|v| v as u64)
}

const RECEIVED: &str = "reconwatch_sqs_messages_received_total";
const DELETED: &str = "reconwatch_sqs_messages_deleted_total";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_message_is_not_redelivered_while_being_processed() {
    let stack = Stack::create().await;
    let hook = Webhook::start().await;
    *hook.delay_ms.lock().unwrap() = HOOK_DELAY_MS;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut daemon = Daemon::start(dir.path(), &config(&stack, &hook, dir.path(), port));

    // S3's test event (sent when the bucket notification was configured) is
    // received and deleted first: one message in, one deleted.
    wait_for(
        Duration::from_secs(60),
        "the S3 test event to be received and deleted",
        || async move {
            let r = counter(port, RECEIVED).await?;
            let d = counter(port, DELETED).await?;
            (r == 1 && d == 1).then_some(())
        },
    )
    .await;

    // One object, three identities, each an aws-cli burst of 8 distinct
    // discovery calls: rules 1 and 1b fire for each, six alerts.
    let users = ["hb-ann", "hb-ben", "hb-cat"];
    let arn = |u: &str| format!("arn:aws:iam::111122223333:user/{u}");
    let records: Vec<serde_json::Value> = users
        .iter()
        .enumerate()
        .flat_map(|(i, u)| cli_burst(&arn(u), "10:07", 8 + 10 * i as u32, 8, &unique(u)))
        .collect();
    assert_eq!(records.len(), 24);
    stack
        .put_trail("us-east-1", "20261120T1010Z", "HEARTBEAT0000001", &records)
        .await;

    // Checked by order rather than by time: the second alert is answered
    // only after two full webhook delays (5 s, more than twice the
    // visibility timeout) of this message's processing. By then the message
    // has been received exactly once (not made visible again and
    // redelivered), and it is still not deleted (the shard still holds its
    // last alerts, so its events are not all applied).
    wait_for(
        Duration::from_secs(60),
        "the second alert at the webhook",
        || {
            let hook = hook.clone();
            async move { (hook.alerts().len() >= 2).then_some(()) }
        },
    )
    .await;
    let m = scrape_metrics(port).await.expect("metrics");
    assert_eq!(
        metric_value(&m, RECEIVED),
        Some(2.0),
        "the object's message was redelivered while being processed; log:\n{}",
        daemon.log()
    );
    assert_eq!(
        metric_value(&m, DELETED),
        Some(1.0),
        "the object's message must still be in processing after two slow webhook answers; log:\n{}",
        daemon.log()
    );

    // Every alert arrives.
    wait_for(Duration::from_secs(90), "six alerts at the webhook", || {
        let hook = hook.clone();
        async move { (hook.alerts().len() >= 6).then_some(()) }
    })
    .await;
    // The message is deleted once its events are applied.
    wait_for(
        Duration::from_secs(30),
        "the object's message to be deleted",
        || async move { (counter(port, DELETED).await? >= 2).then_some(()) },
    )
    .await;
    wait_for(Duration::from_secs(30), "an empty queue", || {
        let stack = &stack;
        async move { (stack.queue_depth(&stack.queue_url).await == 0).then_some(()) }
    })
    .await;
    // Longer than a visibility timeout plus a long poll: a copy made visible
    // again during processing would have been received by now.
    tokio::time::sleep(Duration::from_secs(VISIBILITY_SECS * 2 + 2)).await;

    let m = scrape_metrics(port).await.expect("metrics");
    assert_eq!(
        metric_value(&m, RECEIVED),
        Some(2.0),
        "S3 test event + one object notification, each received once (no redelivery while in flight):\n{m}\nlog:\n{}",
        daemon.log()
    );
    assert_eq!(metric_value(&m, DELETED), Some(2.0), "{m}");
    assert_eq!(
        metric_value(
            &m,
            r#"reconwatch_objects_skipped_total{reason="duplicate_notification"}"#
        )
        .unwrap_or(0.0),
        0.0,
        "{m}"
    );

    let status = daemon.terminate(Duration::from_secs(60));
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        daemon.log()
    );
    let log = daemon.log();
    assert!(!log.contains("ChangeMessageVisibility failed"), "{log}");

    // Exactly the six alerts, each once.
    let alerts = hook.alerts();
    let mut want: Vec<(String, String)> = users
        .iter()
        .flat_map(|u| {
            ["discovery_cli", "discovery_any_client"]
                .iter()
                .map(move |r| (r.to_string(), arn(u)))
        })
        .collect();
    want.sort();
    assert_eq!(alert_pairs(&alerts), want);
    let ids: BTreeSet<&str> = alerts
        .iter()
        .map(|a| a["alert_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 6, "six distinct alert ids");
}
