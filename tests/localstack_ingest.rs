//! Ingestion and sink faults against a real LocalStack and a real webhook
//! server: every notification shape, messages that need no work, an unknown
//! shape (left for the DLQ), a notification for a missing key, a duplicate
//! notification, and a webhook outage (retries → outbox → replay, and the
//! outbox flushed at shutdown). Each asserts the exact alerts delivered.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use common::*;

fn config(
    stack: &Stack,
    hook: &Webhook,
    dir: &std::path::Path,
    port: u16,
    extra_sink: &str,
) -> String {
    let sqs = "visibility_timeout_secs = 60\ndelete_after = \"applied\"\n";
    let pipeline = "outbox_retry_secs = 1\nshutdown_grace_secs = 20\n";
    let sinks = webhook_sink(hook, "max_attempts = 2\nbackoff_millis = 50\n") + extra_sink;
    daemon_config(stack, dir, port, sqs, pipeline, &sinks)
}

/// The daemon's metrics; empty while its HTTP server is not up yet.
async fn metrics(port: u16) -> String {
    match reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

fn metric(m: &str, series: &str) -> u64 {
    m.lines()
        .find_map(|l| l.strip_prefix(&format!("{series} ")))
        .map(|v| v.trim().parse::<f64>().unwrap() as u64)
        .unwrap_or(0)
}

fn s3_event(bucket: &str, key_encoded: &str, seq: &str) -> String {
    serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-20T10:10:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": key_encoded, "size": 1000, "eTag": "e", "sequencer": seq}}
    }]})
    .to_string()
}

fn who(a: &serde_json::Value) -> String {
    a["group"]["identity"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_notification_shape_bad_messages_and_duplicates() {
    let stack = Stack::create().await;
    let hook = Webhook::start().await;
    // Objects live in a second bucket without notifications: the messages
    // below are the only notifications for them.
    let src = unique("src");
    stack.s3.create_bucket().bucket(&src).send().await.unwrap();
    let arn = |n: &str| format!("arn:aws:iam::111122223333:user/{n}");
    let put = |key: String, user: &'static str| {
        let stack = &stack;
        let src = src.clone();
        let body = gz(&trail_file(&cli_burst(
            &arn(user),
            "10:07",
            8,
            8,
            &unique(user),
        )));
        async move {
            stack
                .s3
                .put_object()
                .bucket(&src)
                .key(&key)
                .body(body.into())
                .send()
                .await
                .unwrap();
            key
        }
    };
    let k_raw = put(
        trail_key("us-east-1", "20261120T1010Z", "RAW0000000000001"),
        "shape-raw",
    )
    .await;
    let k_sns = put(
        trail_key("us-east-1", "20261120T1010Z", "SNS0000000000001"),
        "shape-sns",
    )
    .await;
    let k_snsraw = put(
        trail_key("us-east-1", "20261120T1010Z", "SNSRAW0000000001"),
        "shape-snsraw",
    )
    .await;
    let k_ct = put(
        trail_key("eu-west-1", "20261120T1010Z", "CT00000000000001"),
        "shape-ct",
    )
    .await;
    let k_eb = put(
        "AWSLogs/111122223333/CloudTrail/us-east-1/odd key:1.json.gz".to_string(),
        "shape-eb",
    )
    .await;

    // Real SNS → SQS delivery, with raw message delivery off and on.
    let arn_of = |url: &str| {
        let sqs = stack.sqs.clone();
        let url = url.to_string();
        async move {
            sqs.get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .unwrap()
                .attributes()
                .unwrap()[&QueueAttributeName::QueueArn]
                .clone()
        }
    };
    let qarn = arn_of(&stack.queue_url).await;
    let mut topics = Vec::new();
    for raw in ["false", "true"] {
        let t = stack
            .sns
            .create_topic()
            .name(unique("fanout"))
            .send()
            .await
            .unwrap()
            .topic_arn()
            .unwrap()
            .to_string();
        let sub = stack
            .sns
            .subscribe()
            .topic_arn(&t)
            .protocol("sqs")
            .endpoint(&qarn)
            .return_subscription_arn(true)
            .send()
            .await
            .unwrap();
        stack
            .sns
            .set_subscription_attributes()
            .subscription_arn(sub.subscription_arn().unwrap())
            .attribute_name("RawMessageDelivery")
            .attribute_value(raw)
            .send()
            .await
            .unwrap();
        topics.push(t);
    }

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let daemon = Daemon::start(dir.path(), &config(&stack, &hook, dir.path(), port, ""));

    let enc = |k: &str| k.replace(' ', "+").replace(':', "%3A");
    let send = |body: String| {
        let sqs = stack.sqs.clone();
        let url = stack.queue_url.clone();
        async move {
            sqs.send_message()
                .queue_url(url)
                .message_body(body)
                .send()
                .await
                .unwrap()
        }
    };
    send(s3_event(&src, &enc(&k_raw), "0001")).await;
    stack
        .sns
        .publish()
        .topic_arn(&topics[0])
        .message(s3_event(&src, &enc(&k_sns), "0002"))
        .send()
        .await
        .unwrap();
    stack
        .sns
        .publish()
        .topic_arn(&topics[1])
        .message(s3_event(&src, &enc(&k_snsraw), "0003"))
        .send()
        .await
        .unwrap();
    send(serde_json::json!({"s3Bucket": src, "s3ObjectKey": [k_ct]}).to_string()).await;
    send(
        serde_json::json!({"version": "0", "id": "x", "detail-type": "Object Created", "source": "aws.s3",
            "account": "111122223333", "time": "2026-11-20T10:10:00Z", "region": "us-east-1", "resources": [],
            "detail": {"version": "0", "bucket": {"name": src}, "object": {"key": k_eb, "size": 1000, "sequencer": "0005"}}})
        .to_string(),
    )
    .await;
    send(r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-20T10:00:00.000Z","Bucket":"b","RequestId":"r","HostId":"h"}"#.into()).await;
    send("CloudTrail validation message.".into()).await;
    send(r#"{"Type":"SubscriptionConfirmation","MessageId":"m","TopicArn":"arn:aws:sns:us-east-1:1:t","SubscribeURL":"http://127.0.0.1:1/"}"#.into()).await;
    send(r#"{"hello":"world"}"#.into()).await;
    send(s3_event(
        &src,
        "AWSLogs/111122223333/CloudTrail/us-east-1/gone.json.gz",
        "0009",
    ))
    .await;

    let want: BTreeSet<String> = [
        "shape-raw",
        "shape-sns",
        "shape-snsraw",
        "shape-ct",
        "shape-eb",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let got = wait_for(
        Duration::from_secs(60),
        "an alert per notification shape",
        || {
            let hook = hook.clone();
            let want = want.clone();
            async move {
                let got: BTreeSet<String> = hook
                    .alerts()
                    .iter()
                    .filter(|a| a["rule"]["id"] == "discovery_cli")
                    .map(who)
                    .collect();
                (got == want).then_some(got)
            }
        },
    )
    .await;
    assert_eq!(got, want);

    // Messages that need no work were deleted and counted; the unknown shape
    // was not deleted; the missing key was reported and its message deleted.
    let m = wait_for(
        Duration::from_secs(30),
        "bad messages accounted for",
        || async move {
            let m = metrics(port).await;
            (metric(&m, r#"reconwatch_objects_total{outcome="missing"}"#) == 1
                && metric(
                    &m,
                    r#"reconwatch_sqs_messages_failed_total{reason="unknown_notification"}"#,
                ) == 1)
                .then_some(m)
        },
    )
    .await;
    assert_eq!(
        metric(
            &m,
            r#"reconwatch_notifications_ignored_total{kind="cloudtrail_validation"}"#
        ),
        1,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            r#"reconwatch_notifications_ignored_total{kind="sns_subscription"}"#
        ),
        1
    );
    assert!(
        metric(
            &m,
            r#"reconwatch_notifications_ignored_total{kind="s3_test_event"}"#
        ) >= 1
    );
    wait_for(
        Duration::from_secs(30),
        "only the unknown message left",
        || {
            let stack = &stack;
            async move { (stack.queue_depth(&stack.queue_url).await == 1).then_some(()) }
        },
    )
    .await;
    let log = daemon.log();
    assert!(
        log.contains("gone.json.gz") && log.contains("does not exist"),
        "missing key must be named: {log}"
    );
    assert!(
        log.contains("Unrecognised notification") && log.contains("hello"),
        "{log}"
    );

    // A duplicate notification for an object already read: skipped, no second alert.
    let before = hook.alerts().len();
    send(s3_event(&src, &enc(&k_raw), "0001")).await;
    wait_for(
        Duration::from_secs(30),
        "duplicate skipped",
        || async move {
            let m = metrics(port).await;
            (metric(
                &m,
                r#"reconwatch_objects_skipped_total{reason="duplicate_notification"}"#,
            ) == 1)
                .then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(hook.alerts().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_outage_goes_to_outbox_and_every_alert_arrives_once() {
    let stack = Stack::create().await;
    let hook = Webhook::start().await;
    *hook.fail_next.lock().unwrap() = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file_sink = format!(
        "\n[[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
        dir.path().join("alerts.jsonl").display()
    );
    let mut daemon = Daemon::start(
        dir.path(),
        &config(&stack, &hook, dir.path(), port, &file_sink),
    );
    for (i, user) in ["outage-a", "outage-b"].iter().enumerate() {
        let burst = cli_burst(
            &format!("arn:aws:iam::111122223333:user/{user}"),
            "10:07",
            8,
            8,
            &unique(user),
        );
        stack
            .put_trail(
                "us-east-1",
                "20261120T1010Z",
                &format!("OUTAGE00000000{i:02}"),
                &burst,
            )
            .await;
    }
    // Each burst fires rules 1 and 1b: four alerts, all parked.
    let file_lines = {
        let p = dir.path().join("alerts.jsonl");
        move || {
            std::fs::read_to_string(&p)
                .map(|s| s.lines().count() as u64)
                .unwrap_or(0)
        }
    };
    wait_for(
        Duration::from_secs(60),
        "four alerts parked in the outbox",
        || {
            let n = file_lines();
            async move {
                let m = metrics(port).await;
                (n == 4 && metric(&m, r#"reconwatch_outbox_depth{sink="webhook-0"}"#) == 4)
                    .then_some(())
            }
        },
    )
    .await;
    assert!(hook.alerts().is_empty());
    // The webhook recovers: the outbox is replayed.
    *hook.fail_next.lock().unwrap() = 0;
    wait_for(Duration::from_secs(30), "outbox drained", || {
        let hook = hook.clone();
        async move { (hook.alerts().len() >= 4).then_some(()) }
    })
    .await;

    // Down again; a third alert is parked; the webhook comes back just as we
    // stop: graceful shutdown flushes the outbox.
    *hook.fail_next.lock().unwrap() = 1_000_000;
    let burst = cli_burst(
        "arn:aws:iam::111122223333:user/outage-c",
        "10:07",
        8,
        8,
        &unique("c"),
    );
    stack
        .put_trail("us-east-1", "20261120T1010Z", "OUTAGE0000000003", &burst)
        .await;
    wait_for(
        Duration::from_secs(60),
        "the third burst's alerts parked",
        || {
            let n = file_lines();
            async move {
                let m = metrics(port).await;
                (n == 6 && metric(&m, r#"reconwatch_outbox_depth{sink="webhook-0"}"#) == 2)
                    .then_some(())
            }
        },
    )
    .await;
    *hook.fail_next.lock().unwrap() = 0;
    let status = daemon.terminate(Duration::from_secs(30));
    assert!(status.success());

    // Exactly the alerts the file sink (never down) recorded, each once.
    let file: Vec<String> = std::fs::read_to_string(dir.path().join("alerts.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["alert_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let mut hooked: Vec<String> = hook
        .alerts()
        .iter()
        .map(|a| a["alert_id"].as_str().unwrap().to_string())
        .collect();
    let mut file_sorted = file.clone();
    file_sorted.sort();
    hooked.sort();
    assert_eq!(hooked, file_sorted);
    let users: BTreeSet<String> = hook
        .alerts()
        .iter()
        .filter(|a| a["rule"]["id"] == "discovery_cli")
        .map(who)
        .collect();
    assert_eq!(
        users,
        ["outage-a", "outage-b", "outage-c"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    let outbox = std::fs::read_to_string(dir.path().join("state/outbox/webhook-0.jsonl"))
        .unwrap_or_default();
    assert!(outbox.trim().is_empty(), "outbox not flushed: {outbox}");
}

/// A copy of a message that arrives while the first is still being applied
/// (an SQS redelivery, a duplicate notification) must not let either be
/// deleted before its events are applied, and not before the windows that
/// use them close (default `delete_after = "windows_closed"`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_arriving_mid_processing_is_not_deleted_early() {
    let stack = Stack::create().await;
    let hook = Webhook::start().await;
    // Slow alert delivery keeps the first copy's events queued behind the sink.
    *hook.delay_ms.lock().unwrap() = 1500;
    let src = unique("src");
    stack.s3.create_bucket().bucket(&src).send().await.unwrap();
    let key = trail_key("us-east-1", "20261120T1010Z", "COPY000000000001");
    let mut recs = Vec::new();
    for user in ["copy-a", "copy-b", "copy-c"] {
        recs.extend(cli_burst(
            &format!("arn:aws:iam::111122223333:user/{user}"),
            "10:07",
            8,
            8,
            &unique(user),
        ));
    }
    stack
        .s3
        .put_object()
        .bucket(&src)
        .key(&key)
        .body(gz(&trail_file(&recs)).into())
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(&stack, &hook, dir.path(), port, "")
        .replace("delete_after = \"applied\"\n", "")
        .replace(
            "[pipeline]\n",
            "[pipeline]\nshards = 1\nsink_channel_capacity = 1\n",
        );
    let _daemon = Daemon::start(dir.path(), &cfg);
    let body = s3_event(&src, &key, "00AA");
    let send = || {
        let sqs = stack.sqs.clone();
        let url = stack.queue_url.clone();
        let body = body.clone();
        async move {
            sqs.send_message()
                .queue_url(url)
                .message_body(body)
                .send()
                .await
                .unwrap()
        }
    };
    send().await;
    // The first copy is received (after S3's test event) and is being applied...
    wait_for(
        Duration::from_secs(30),
        "first copy received",
        || async move {
            let m = metrics(port).await;
            (metric(&m, "reconwatch_sqs_messages_received_total") >= 2).then_some(())
        },
    )
    .await;
    wait_for(Duration::from_secs(30), "first alert delivered", || {
        let hook = hook.clone();
        async move { (!hook.alerts().is_empty()).then_some(()) }
    })
    .await;
    assert!(
        hook.alerts().len() < 6,
        "the first copy must still be in progress"
    );
    // ...when the second copy arrives.
    send().await;
    wait_for(
        Duration::from_secs(60),
        "both copies applied and parked",
        || async move {
            let m = metrics(port).await;
            (metric(&m, "reconwatch_sqs_messages_pending_delete") == 2).then_some(())
        },
    )
    .await;
    let m = metrics(port).await;
    // Only S3's test event was deleted; both copies wait for their windows.
    assert_eq!(
        metric(&m, "reconwatch_sqs_messages_deleted_total"),
        1,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            r#"reconwatch_objects_skipped_total{reason="duplicate_notification"}"#
        ),
        0
    );
    assert!(
        metric(&m, "reconwatch_events_duplicate_total") >= 24,
        "the copy's events are deduplicated"
    );
    assert_eq!(stack.queue_depth(&stack.queue_url).await, 2);
    // Each alert exactly once.
    wait_for(Duration::from_secs(60), "all six alerts", || {
        let hook = hook.clone();
        async move { (hook.alerts().len() >= 6).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ids: BTreeSet<String> = hook
        .alerts()
        .iter()
        .map(|a| a["alert_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 6);
    assert_eq!(hook.alerts().len(), 6);
}

/// Webhook timeouts and SNS errors: the webhook answers slower than its
/// timeout and the SNS topic does not exist yet. Both sinks park the alerts
/// in their outboxes; once the webhook is fast again and the topic exists,
/// every alert arrives once on each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_timeouts_and_sns_errors_park_alerts_until_recovery() {
    let stack = Stack::create().await;
    let hook = Webhook::start().await;
    *hook.delay_ms.lock().unwrap() = 3000;
    let topic_name = unique("later");
    let topic_arn = format!("arn:aws:sns:us-east-1:000000000000:{topic_name}");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sns_sink = format!(
        "\n[[sinks]]\ntype = \"sns\"\ntopic_arn = \"{topic_arn}\"\nmax_attempts = 2\nbackoff_millis = 50\n"
    );
    // Only the webhook sink (the first) gets the short timeout.
    let cfg = config(&stack, &hook, dir.path(), port, &sns_sink).replacen(
        "max_attempts = 2\nbackoff_millis = 50\n",
        "max_attempts = 2\nbackoff_millis = 50\ntimeout_secs = 1\n",
        1,
    );
    let _daemon = Daemon::start(dir.path(), &cfg);
    let burst = cli_burst(
        "arn:aws:iam::111122223333:user/sink-fault",
        "10:07",
        8,
        8,
        &unique("sf"),
    );
    stack
        .put_trail("us-east-1", "20261120T1010Z", "SINKFAULT0000001", &burst)
        .await;
    // Rules 1 and 1b fire: two alerts parked on each sink.
    wait_for(
        Duration::from_secs(60),
        "alerts parked on both sinks",
        || async move {
            let m = metrics(port).await;
            (metric(&m, r#"reconwatch_outbox_depth{sink="webhook-0"}"#) == 2
                && metric(&m, r#"reconwatch_outbox_depth{sink="sns-1"}"#) == 2)
                .then_some(())
        },
    )
    .await;
    let log = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap();
    assert!(
        log.contains("timed out"),
        "webhook timeouts are named: {log}"
    );
    assert!(log.contains(&topic_arn), "SNS errors name the topic: {log}");

    // Recovery: a fast webhook, and the topic created with a subscribed queue.
    *hook.delay_ms.lock().unwrap() = 0;
    hook.received.lock().unwrap().clear();
    let created = stack
        .sns
        .create_topic()
        .name(&topic_name)
        .send()
        .await
        .unwrap();
    assert_eq!(created.topic_arn(), Some(topic_arn.as_str()));
    let inbox = stack
        .sqs
        .create_queue()
        .queue_name(unique("late-inbox"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let inbox_arn = stack
        .sqs
        .get_queue_attributes()
        .queue_url(&inbox)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    stack
        .sns
        .subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(inbox_arn)
        .send()
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(60),
        "both outboxes drained",
        || async move {
            let m = metrics(port).await;
            (metric(&m, r#"reconwatch_outbox_depth{sink="webhook-0"}"#) == 0
                && metric(&m, r#"reconwatch_outbox_depth{sink="sns-1"}"#) == 0)
                .then_some(())
        },
    )
    .await;
    // A slow answer can arrive after its timeout: the webhook may hold extra
    // copies from before recovery (cleared above); after recovery, each once.
    let via_hook: BTreeSet<String> = hook
        .alerts()
        .iter()
        .map(|a| a["alert_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(via_hook.len(), 2);
    assert_eq!(hook.alerts().len(), 2);
    let via_sns = std::sync::Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    wait_for(Duration::from_secs(30), "both alerts via SNS", || {
        let sqs = stack.sqs.clone();
        let inbox = inbox.clone();
        let found = via_sns.clone();
        async move {
            let got = read_sns_alerts(&sqs, &inbox).await;
            found.lock().unwrap().extend(
                got.iter()
                    .map(|(a, _)| a["alert_id"].as_str().unwrap().to_string()),
            );
            (found.lock().unwrap().len() == 2).then_some(())
        }
    })
    .await;
    assert_eq!(*via_sns.lock().unwrap(), via_hook);
}
