//! The Docker-less equivalent of `docker compose up`, as the README and
//! deploy/README.md describe it: `scripts/localstack-init.sh` creates the
//! demo resources, the daemon is configured through environment variables
//! only (as in the container), the samples are uploaded with the aws CLI.
//! Checks readiness, JSON logs without raw events, and alerts through SNS.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

fn awscli() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("scripts/localstack.sh"))
        .arg("awscli")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn init(aws: &str) -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("scripts/localstack-init.sh"))
        .env("AWS_CLI", aws)
        .env("AWS_ENDPOINT_URL", endpoint())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_script_env_configured_daemon_and_sample_upload() {
    ensure_localstack();
    let aws = awscli();
    let first = init(&aws);
    // Idempotent: a second run gives the same resources.
    let again = init(&aws);
    assert_eq!(first, again);
    let queue_url = first["queue_url"].clone();
    let inbox_url = first["alerts_inbox_url"].clone();
    let topic_arn = first["topic_arn"].clone();
    let sdk = common::aws().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    // Leftovers from earlier runs of this demo stack.
    take_all_messages(&sqs, &queue_url, 0).await;
    take_all_messages(&sqs, &inbox_url, 0).await;

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _daemon = Daemon::start_with(
        dir.path(),
        None,
        &[
            ("RECONWATCH__AWS__ENDPOINT_URL", endpoint()),
            ("RECONWATCH__SQS__QUEUE_URL", queue_url.clone()),
            ("RECONWATCH__SQS__WAIT_TIME_SECS", "1".into()),
            (
                "RECONWATCH__SINKS",
                format!(r#"[{{type="stdout"}},{{type="sns",topic_arn="{topic_arn}"}}]"#),
            ),
            (
                "RECONWATCH__TELEMETRY__HTTP_LISTEN",
                format!("127.0.0.1:{port}"),
            ),
            (
                "RECONWATCH__PIPELINE__STATE_DIR",
                dir.path().join("state").display().to_string(),
            ),
        ],
    );
    let ready = wait_for(Duration::from_secs(30), "/readyz 200", || async move {
        let r = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
            .await
            .ok()?;
        let ok = r.status().is_success();
        let body = r.text().await.ok()?;
        ok.then_some(body)
    })
    .await;
    assert!(ready.contains("sqs_reachable=true"), "{ready}");

    // The compose demo's uploader: aws s3 cp --recursive samples/.
    let up = Command::new(&aws)
        .args([
            "--endpoint-url",
            &endpoint(),
            "--region",
            "us-east-1",
            "s3",
            "cp",
            "--recursive",
            "--only-show-errors",
        ])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples"))
        .arg(format!("s3://{}/", first["bucket"]))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .status()
        .unwrap();
    assert!(up.success());

    let stack_inbox = inbox_url.clone();
    let sqs2 = sqs.clone();
    let seen_shared = std::sync::Arc::new(std::sync::Mutex::new(Vec::<serde_json::Value>::new()));
    wait_for(
        Duration::from_secs(60),
        "the six sample alerts via SNS",
        || {
            let (sqs, url) = (sqs2.clone(), stack_inbox.clone());
            let seen = seen_shared.clone();
            async move {
                let got = read_sns_alerts(&sqs, &url).await;
                seen.lock().unwrap().extend(got.into_iter().map(|(a, _)| a));
                (seen.lock().unwrap().len() >= 6).then_some(())
            }
        },
    )
    .await;
    let seen = seen_shared.lock().unwrap().clone();
    let rules: std::collections::BTreeSet<&str> = seen
        .iter()
        .map(|a| a["rule"]["id"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains("discovery_cli") && rules.contains("recon_chain"),
        "{rules:?}"
    );

    // Logs: JSON lines (stderr is not a terminal), no raw CloudTrail records.
    let log = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap();
    assert!(log.lines().count() > 3);
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line not JSON ({e}): {line}"));
        assert!(v["level"].is_string());
        for raw in ["userIdentity", "sourceIPAddress", "requestParameters"] {
            assert!(!line.contains(raw), "raw event content in logs: {line}");
        }
    }
}
