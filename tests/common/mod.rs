//! Shared harness for the integration tests: a real LocalStack on 127.0.0.1
//! (started through `scripts/localstack.sh` when not already running), AWS
//! clients pointed at it, a real HTTP webhook receiver, the daemon binary
//! run as a child process, and CloudTrail record builders.
#![allow(dead_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

/// LocalStack endpoint (`LOCALSTACK_ENDPOINT`, default http://127.0.0.1:4566).
pub fn endpoint() -> String {
    std::env::var("LOCALSTACK_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4566".into())
}

fn healthy(ep: &str) -> bool {
    let url = format!("{ep}/_localstack/health");
    let out = Command::new("curl")
        .args(["-fsS", "--max-time", "3", &url])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            ["s3", "sqs", "sns"].iter().all(|s| {
                matches!(
                    v["services"][s].as_str(),
                    Some("available") | Some("running")
                )
            })
        }
        _ => false,
    }
}

/// Make sure LocalStack answers; start it with the project's script if not.
/// Panics (failing the test) when it cannot be had: these tests never skip.
pub fn ensure_localstack() -> String {
    static STARTED: OnceLock<Result<(), String>> = OnceLock::new();
    let ep = endpoint();
    let r = STARTED.get_or_init(|| {
        if healthy(&ep) {
            return Ok(());
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/localstack.sh");
        let status = Command::new("bash")
            .arg(&script)
            .arg("start")
            .status()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if status.success() && healthy(&ep) {
            Ok(())
        } else {
            Err(format!(
                "{} start failed ({status}); see its log",
                script.display()
            ))
        }
    });
    if let Err(e) = r {
        panic!("LocalStack is required for this test: {e}");
    }
    ep
}

/// Shared AWS config for LocalStack (static test credentials).
pub async fn aws() -> aws_config::SdkConfig {
    let ep = ensure_localstack();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(ep)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await
}

/// S3 client (path style).
pub fn s3(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

/// A name unique to this test run.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Resources for one daemon test: trail bucket notifying a queue, an alert
/// topic with an inbox queue subscribed.
pub struct Stack {
    pub sdk: aws_config::SdkConfig,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
    pub bucket: String,
    pub queue_url: String,
    pub topic_arn: String,
    pub inbox_url: String,
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    let a = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes");
    a.attributes()
        .and_then(|m| m.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("queue arn")
        .clone()
}

impl Stack {
    /// Create bucket, queue (+ S3 notification), topic and subscribed inbox.
    pub async fn create() -> Self {
        Self::provision(
            &unique("trail"),
            &unique("notif"),
            &unique("alerts"),
            &unique("inbox"),
        )
        .await
    }

    /// Create (or find again: the calls are idempotent) the named resources.
    async fn provision(bucket: &str, queue: &str, topic: &str, inbox: &str) -> Self {
        use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
        let sdk = aws().await;
        let s3 = s3(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let sns = aws_sdk_sns::Client::new(&sdk);
        s3.create_bucket()
            .bucket(bucket)
            .send()
            .await
            .expect("CreateBucket");
        let queue_url = sqs
            .create_queue()
            .queue_name(queue)
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
                "30",
            )
            .send()
            .await
            .expect("CreateQueue")
            .queue_url()
            .expect("url")
            .to_string();
        let arn = queue_arn(&sqs, &queue_url).await;
        s3.put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .queue_configurations(
                        QueueConfiguration::builder()
                            .queue_arn(arn)
                            .events(Event::S3ObjectCreated)
                            .build()
                            .expect("queue config"),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("PutBucketNotificationConfiguration");
        let topic_arn = sns
            .create_topic()
            .name(topic)
            .send()
            .await
            .expect("CreateTopic")
            .topic_arn()
            .expect("arn")
            .to_string();
        let inbox_url = sqs
            .create_queue()
            .queue_name(inbox)
            .send()
            .await
            .expect("CreateQueue inbox")
            .queue_url()
            .expect("url")
            .to_string();
        let inbox_arn = queue_arn(&sqs, &inbox_url).await;
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(inbox_arn)
            .send()
            .await
            .expect("Subscribe");
        Self {
            sdk,
            s3,
            sqs,
            sns,
            bucket: bucket.to_string(),
            queue_url,
            topic_arn,
            inbox_url,
        }
    }

    /// Upload bytes at `key`.
    pub async fn put(&self, key: &str, body: Vec<u8>) {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .expect("PutObject");
    }

    /// Upload `records` as a gzipped CloudTrail object at
    /// [`trail_key`]`(region, slot, suffix)`.
    pub async fn put_trail(
        &self,
        region: &str,
        slot: &str,
        suffix: &str,
        records: &[serde_json::Value],
    ) {
        self.put(&trail_key(region, slot, suffix), gz(&trail_file(records)))
            .await;
    }

    /// Visible + in-flight messages on a queue.
    pub async fn queue_depth(&self, url: &str) -> u64 {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let a = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("GetQueueAttributes");
        let m = a.attributes().cloned().unwrap_or_default();
        let n = |k: A| m.get(&k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        n(A::ApproximateNumberOfMessages) + n(A::ApproximateNumberOfMessagesNotVisible)
    }

    /// Alerts published to the SNS topic, read from the subscribed inbox
    /// (SNS envelope unwrapped), with their message attributes.
    pub async fn drain_inbox(&self) -> Vec<(serde_json::Value, serde_json::Value)> {
        read_sns_alerts(&self.sqs, &self.inbox_url).await
    }
}

/// The bodies of every message in the SQS queue at `url`, each deleted once
/// read; stops at the first empty receive (long-polled `wait_secs`).
pub async fn take_all_messages(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    wait_secs: i32,
) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let r = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_secs)
            .send()
            .await
            .expect("ReceiveMessage");
        let msgs = r.messages.unwrap_or_default();
        if msgs.is_empty() {
            return out;
        }
        for m in msgs {
            out.push(m.body().unwrap_or("").to_string());
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or(""))
                .send()
                .await
                .expect("DeleteMessage");
        }
    }
}

/// Alerts an SNS topic delivered to the SQS queue at `url` (envelope
/// unwrapped), with their message attributes; every message read is deleted.
pub async fn read_sns_alerts(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
) -> Vec<(serde_json::Value, serde_json::Value)> {
    take_all_messages(sqs, url, 1)
        .await
        .iter()
        .map(|body| {
            let env: serde_json::Value = serde_json::from_str(body).expect("SNS envelope");
            let alert: serde_json::Value =
                serde_json::from_str(env["Message"].as_str().expect("Message"))
                    .expect("alert JSON");
            (alert, env["MessageAttributes"].clone())
        })
        .collect()
}

/// One request received by the webhook server.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
}

/// A real HTTP server on 127.0.0.1 that records POSTs. It answers 500 while
/// `fail_next` is above zero (decrementing it), else 200. Each answer is
/// delayed by `delay_ms` (default 0: no delay).
#[derive(Clone)]
pub struct Webhook {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub fail_next: Arc<Mutex<u32>>,
    pub delay_ms: Arc<Mutex<u64>>,
}

#[derive(Clone)]
struct HookState {
    received: Arc<Mutex<Vec<Received>>>,
    fail_next: Arc<Mutex<u32>>,
    delay_ms: Arc<Mutex<u64>>,
}

async fn hook(State(s): State<HookState>, headers: HeaderMap, body: String) -> StatusCode {
    let delay = *s.delay_ms.lock().unwrap();
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    {
        let mut f = s.fail_next.lock().unwrap();
        if *f > 0 {
            *f -= 1;
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    s.received.lock().unwrap().push(Received { headers, body });
    StatusCode::OK
}

impl Webhook {
    /// Start serving on an ephemeral port.
    pub async fn start() -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let fail_next = Arc::new(Mutex::new(0));
        let delay_ms = Arc::new(Mutex::new(0));
        let app = axum::Router::new()
            .route("/hook", post(hook))
            .with_state(HookState {
                received: received.clone(),
                fail_next: fail_next.clone(),
                delay_ms: delay_ms.clone(),
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            addr,
            received,
            fail_next,
            delay_ms,
        }
    }

    /// The URL to configure.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Parsed alert bodies so far.
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|r| serde_json::from_str(&r.body).expect("webhook body is JSON"))
            .collect()
    }
}

/// Poll `f` every 250 ms until it returns `Some` or `timeout` passes.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The daemon as a child process; killed on drop.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    /// Start `reconwatch run` with `config` (TOML text) in `dir`.
    pub fn start(dir: &Path, config: &str) -> Self {
        Self::start_with(dir, Some(config), &[])
    }

    /// Start `reconwatch run` with an optional config file and extra
    /// environment variables (e.g. `RECONWATCH__...` overrides only).
    pub fn start_with(dir: &Path, config: Option<&str>, envs: &[(&str, String)]) -> Self {
        let mut args: Vec<String> = Vec::new();
        if let Some(config) = config {
            let cfg = dir.join("reconwatch.toml");
            std::fs::write(&cfg, config).unwrap();
            args.extend(["--config".to_string(), cfg.to_string_lossy().into_owned()]);
        }
        args.push("run".into());
        let log = dir.join("daemon.log");
        let logf = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_reconwatch"))
            .args(&args)
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .current_dir(dir)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_LOG", "info")
            .env_remove("RECONWATCH_CONFIG")
            .stdout(Stdio::null())
            .stderr(logf)
            .spawn()
            .expect("spawn reconwatch");
        Self { child, log }
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM and wait up to `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                panic!(
                    "daemon did not exit within {timeout:?} of SIGTERM; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL (no chance to clean up).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Gzip bytes.
pub fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Deterministic UUID-shaped event id.
pub fn event_id(tag: &str, n: u64) -> String {
    let h = {
        use std::hash::{Hash, Hasher};
        let mut s = std::collections::hash_map::DefaultHasher::new();
        tag.hash(&mut s);
        s.finish()
    };
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h as u32,
        (h >> 32) as u16,
        n & 0xfff,
        (n >> 12) & 0xfff,
        n
    )
}

/// A CloudTrail record.
#[allow(clippy::too_many_arguments)]
pub fn record(
    time: &str,
    arn: &str,
    identity_type: &str,
    name: &str,
    source: &str,
    region: &str,
    ip: &str,
    ua: &str,
    id: &str,
) -> serde_json::Value {
    serde_json::json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": identity_type, "principalId": "AIDAEXAMPLE", "arn": arn,
                          "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLE"},
        "eventTime": time,
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": ip,
        "userAgent": ua,
        "requestParameters": null,
        "responseElements": null,
        "eventID": id,
        "readOnly": true,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": "111122223333"
    })
}

/// `{"Records": [...]}` bytes.
pub fn trail_file(records: &[serde_json::Value]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "Records": records })).unwrap()
}

/// An aws-cli discovery burst: `n` distinct calls from `start_sec` (HH:MM:SS
/// on 2026-11-20), one second apart at most.
pub fn cli_burst(
    arn: &str,
    hhmm: &str,
    start_sec: u32,
    n: usize,
    tag: &str,
) -> Vec<serde_json::Value> {
    const NAMES: [(&str, &str); 12] = [
        ("GetCallerIdentity", "sts"),
        ("ListUsers", "iam"),
        ("ListRoles", "iam"),
        ("ListBuckets", "s3"),
        ("DescribeInstances", "ec2"),
        ("DescribeVpcs", "ec2"),
        ("DescribeSecurityGroups", "ec2"),
        ("ListFunctions20150331", "lambda"),
        ("DescribeDBInstances", "rds"),
        ("ListKeys", "kms"),
        ("DescribeTrails", "cloudtrail"),
        ("ListPolicies", "iam"),
    ];
    (0..n)
        .map(|i| {
            let (name, svc) = NAMES[i % NAMES.len()];
            let sec = start_sec + (i as u32) / 2;
            record(
                &format!("2026-11-20T{hhmm}:{sec:02}Z"),
                arn,
                "IAMUser",
                name,
                &format!("{svc}.amazonaws.com"),
                "us-east-1",
                "203.0.113.50",
                "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0 exe/x86_64.ubuntu.22",
                &event_id(tag, i as u64),
            )
        })
        .collect()
}

/// CloudTrail-style key for an object.
pub fn trail_key(region: &str, slot: &str, suffix: &str) -> String {
    format!(
        "AWSLogs/111122223333/CloudTrail/{region}/2026/11/20/111122223333_CloudTrail_{region}_{slot}_{suffix}.json.gz"
    )
}

/// Whether LocalStack at [`endpoint`] answers with S3, SQS and SNS available
/// (checked now, not cached like [`ensure_localstack`]).
pub fn localstack_healthy() -> bool {
    healthy(&endpoint())
}

/// Run `scripts/localstack.sh <cmd>` (`start`, `stop`, ...); whether it succeeded.
pub fn localstack_script(cmd: &str) -> bool {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/localstack.sh");
    Command::new("bash")
        .arg(&script)
        .arg(cmd)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The last path segment of a URL or the last `:`-field of an ARN.
fn last_segment(s: &str, sep: char) -> String {
    s.rsplit(sep).next().unwrap_or(s).to_string()
}

impl Stack {
    /// After a LocalStack restart (which loses everything): create the same
    /// bucket, queue, notification, topic, inbox and subscription again, and
    /// check they come back at the same URLs and ARNs.
    pub async fn recreate(&self) {
        let again = Self::provision(
            &self.bucket,
            &last_segment(&self.queue_url, '/'),
            &last_segment(&self.topic_arn, ':'),
            &last_segment(&self.inbox_url, '/'),
        )
        .await;
        assert_eq!(
            again.queue_url, self.queue_url,
            "the recreated queue must have the same URL"
        );
        assert_eq!(
            again.topic_arn, self.topic_arn,
            "the recreated topic must have the same ARN"
        );
        assert_eq!(
            again.inbox_url, self.inbox_url,
            "the recreated inbox must have the same URL"
        );
    }
}

/// The daemon's `/metrics` text on 127.0.0.1:`port`; `None` while it does not answer.
pub async fn scrape_metrics(port: u16) -> Option<String> {
    let r = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.text().await.ok()
}

/// The value of one series (name with labels, exactly as rendered) in a
/// Prometheus text document; `None` when absent.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// `(rule id, identity)` of every alert, sorted (duplicates kept).
pub fn alert_pairs(alerts: &[serde_json::Value]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = alerts
        .iter()
        .map(|a| {
            (
                a["rule"]["id"].as_str().expect("rule.id").to_string(),
                a["group"]["identity"]
                    .as_str()
                    .expect("group.identity")
                    .to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Check `v` against the subset of JSON Schema that `schema/alert.schema.json`
/// uses (type, required, properties, additionalProperties, enum, const,
/// items, maxItems, minimum, maximum, date-time format). Panics on mismatch.
pub fn check_schema(s: &serde_json::Value, v: &serde_json::Value, path: &str) {
    if let Some(c) = s.get("const") {
        assert_eq!(v, c, "{path}");
    }
    if let Some(e) = s.get("enum") {
        assert!(e.as_array().unwrap().contains(v), "{path}: {v} not in {e}");
    }
    match s.get("type").and_then(|t| t.as_str()) {
        Some("object") => {
            let o = v
                .as_object()
                .unwrap_or_else(|| panic!("{path} is not an object"));
            for r in s
                .get("required")
                .and_then(|r| r.as_array())
                .into_iter()
                .flatten()
            {
                assert!(o.contains_key(r.as_str().unwrap()), "{path}.{r} missing");
            }
            let props = s.get("properties").and_then(|p| p.as_object());
            for (k, val) in o {
                match props.and_then(|p| p.get(k)) {
                    Some(ps) => check_schema(ps, val, &format!("{path}.{k}")),
                    None => match s.get("additionalProperties") {
                        Some(serde_json::Value::Bool(false)) => {
                            panic!("{path}.{k} is not in the schema")
                        }
                        Some(ap @ serde_json::Value::Object(_)) => {
                            check_schema(ap, val, &format!("{path}.{k}"))
                        }
                        _ => {}
                    },
                }
            }
        }
        Some("array") => {
            let a = v
                .as_array()
                .unwrap_or_else(|| panic!("{path} is not an array"));
            if let Some(m) = s.get("maxItems").and_then(|m| m.as_u64()) {
                assert!(a.len() as u64 <= m, "{path} too long");
            }
            if let Some(items) = s.get("items") {
                for (i, x) in a.iter().enumerate() {
                    check_schema(items, x, &format!("{path}[{i}]"));
                }
            }
        }
        Some("string") => {
            let st = v
                .as_str()
                .unwrap_or_else(|| panic!("{path} is not a string"));
            if s.get("format").and_then(|f| f.as_str()) == Some("date-time") {
                assert!(
                    reconwatch::decode::time::parse_rfc3339_ms(st).is_some(),
                    "{path}: {st}"
                );
            }
        }
        Some("number") => assert!(v.is_number(), "{path} is not a number"),
        Some("boolean") => assert!(v.is_boolean(), "{path} is not a boolean"),
        Some("integer") => {
            let n = v
                .as_i64()
                .unwrap_or_else(|| panic!("{path} is not an integer"));
            if let Some(m) = s.get("minimum").and_then(|m| m.as_i64()) {
                assert!(n >= m, "{path}");
            }
            if let Some(m) = s.get("maximum").and_then(|m| m.as_i64()) {
                assert!(n <= m, "{path}");
            }
        }
        _ => {}
    }
}

/// A daemon configuration against `stack`: the LocalStack endpoint, the
/// stack's queue (long poll 1 s), state under `dir`, metrics on `port`, plus
/// `sqs` and `pipeline` lines and the `[[sinks]]` tables in `sinks`.
pub fn daemon_config(
    stack: &Stack,
    dir: &Path,
    port: u16,
    sqs: &str,
    pipeline: &str,
    sinks: &str,
) -> String {
    format!(
        "[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{ep}\"\n\n\
         [sqs]\nqueue_url = \"{queue}\"\nwait_time_secs = 1\n{sqs}\n\
         [pipeline]\nstate_dir = \"{state}\"\n{pipeline}\n\
         {sinks}\n\
         [telemetry]\nhttp_listen = \"127.0.0.1:{port}\"\n",
        ep = endpoint(),
        queue = stack.queue_url,
        state = dir.join("state").display(),
    )
}

/// A `[[sinks]]` webhook table pointing at `hook`, with `extra` lines.
pub fn webhook_sink(hook: &Webhook, extra: &str) -> String {
    format!(
        "[[sinks]]\ntype = \"webhook\"\nurl = \"{}\"\n{extra}",
        hook.url()
    )
}
