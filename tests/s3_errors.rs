//! S3 error classification and the fetcher's retries, against a real local
//! HTTP server that speaks enough of the S3 REST protocol for a path-style
//! GetObject (`GET /{bucket}/{key}`). LocalStack does not enforce IAM or KMS,
//! so this server answers, per key, with S3's real error documents:
//! `AccessDenied` (IAM), `AccessDenied` caused by KMS (both message shapes S3
//! uses), `NoSuchKey`, or `SlowDown` a number of times before the object.
//!
//! The fetcher is driven through reconwatch's public API
//! (`ingest::s3::S3Fetcher::process`) with an S3 client built by the
//! daemon's own `app::s3_client`, so what is tested is what `run` does.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use reconwatch::decode::{Event, EventOut, Limits, ObjectStats};
use reconwatch::ingest::notification::ObjectRef;
use reconwatch::ingest::s3::{FetchError, S3Fetcher};

const BUCKET: &str = "trail-bucket";

/// What the fake S3 answers for one key.
enum Behavior {
    /// 403 AccessDenied, "Access Denied" (the role lacks s3:GetObject).
    Denied,
    /// 403 AccessDenied with S3's message for an SSE-KMS object whose key the
    /// caller may not use ("The ciphertext refers to a customer master key…").
    KmsCiphertext,
    /// 403 AccessDenied naming the KMS action explicitly.
    KmsNotAuthorized,
    /// 404 NoSuchKey.
    Missing,
    /// 503 SlowDown `remaining` more times (u32::MAX: forever), then 200 with `body`.
    SlowDown { remaining: u32, body: Vec<u8> },
    /// 200 with `body` and `etag`, but the first `breaks` responses are cut
    /// after `cut_at` bytes (the connection drops mid-body). After the first
    /// cut the object is replaced by `replace_with` (body, ETag) if given. A
    /// request whose `If-Match` differs from the current ETag gets 412.
    Cut {
        breaks: u32,
        cut_at: usize,
        body: Vec<u8>,
        etag: String,
        replace_with: Option<(Vec<u8>, String)>,
    },
}

#[derive(Clone, Default)]
struct FakeS3State {
    objects: Arc<Mutex<HashMap<String, Behavior>>>,
    hits: Arc<Mutex<HashMap<String, u32>>>,
    /// Per key, the `If-Match` header of each GetObject, in order.
    if_match: Arc<Mutex<HashMap<String, Vec<Option<String>>>>>,
}

/// A fake S3 endpoint on 127.0.0.1 with an ephemeral port.
struct FakeS3 {
    addr: SocketAddr,
    state: FakeS3State,
}

const KMS_CIPHERTEXT_MSG: &str = "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.";
const KMS_NOT_AUTHORIZED_MSG: &str = "User: arn:aws:sts::111122223333:assumed-role/reconwatch/task is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab because no identity-based policy allows the kms:Decrypt action";

fn s3_error(status: StatusCode, code: &str, message: &str, key: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><Key>{key}</Key><RequestId>4442587FB7D0A2F9</RequestId><HostId>fake-s3</HostId></Error>"
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "application/xml"),
            (
                header::HeaderName::from_static("x-amz-request-id"),
                "4442587FB7D0A2F9",
            ),
        ],
        body,
    )
        .into_response()
}

async fn get_object(
    State(s): State<FakeS3State>,
    Path((bucket, key)): Path<(String, String)>,
    headers: header::HeaderMap,
) -> Response {
    let id = format!("{bucket}/{key}");
    *s.hits.lock().unwrap().entry(id.clone()).or_default() += 1;
    let if_match = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    s.if_match
        .lock()
        .unwrap()
        .entry(id.clone())
        .or_default()
        .push(if_match.clone());
    let mut objects = s.objects.lock().unwrap();
    match objects.get_mut(&id) {
        None | Some(Behavior::Missing) => s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
            &key,
        ),
        Some(Behavior::Denied) => {
            s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Access Denied", &key)
        }
        Some(Behavior::KmsCiphertext) => s3_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            KMS_CIPHERTEXT_MSG,
            &key,
        ),
        Some(Behavior::KmsNotAuthorized) => s3_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            KMS_NOT_AUTHORIZED_MSG,
            &key,
        ),
        Some(Behavior::SlowDown { remaining, .. }) if *remaining > 0 => {
            if *remaining != u32::MAX {
                *remaining -= 1;
            }
            s3_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "SlowDown",
                "Please reduce your request rate.",
                &key,
            )
        }
        Some(Behavior::SlowDown { body, .. }) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (header::ETAG, "\"0123456789abcdef0123456789abcdef\""),
            ],
            body.clone(),
        )
            .into_response(),
        Some(Behavior::Cut {
            breaks,
            cut_at,
            body,
            etag,
            replace_with,
        }) => {
            if if_match.as_ref().is_some_and(|m| m != etag) {
                return s3_error(
                    StatusCode::PRECONDITION_FAILED,
                    "PreconditionFailed",
                    "At least one of the pre-conditions you specified did not hold",
                    &key,
                );
            }
            let full = body.clone();
            let tag = etag.clone();
            let response_body = if *breaks > 0 {
                *breaks -= 1;
                if let Some((b, t)) = replace_with.take() {
                    *body = b;
                    *etag = t;
                }
                // Content-Length promises the whole object; the stream
                // ends in an error after `cut_at` bytes, so the server
                // drops the connection mid-body.
                // The pause lets the server flush the head first (an
                // error right behind it could abort before the response
                // headers were written, which is a different failure).
                use futures::StreamExt;
                let head = bytes::Bytes::copy_from_slice(&full[..*cut_at]);
                let head = futures::stream::iter([Ok::<_, std::io::Error>(head)]);
                let cut = futures::stream::once(async {
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                    Err(std::io::Error::other("connection cut by the test"))
                });
                axum::body::Body::from_stream(head.chain(cut))
            } else {
                axum::body::Body::from(full.clone())
            };
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                    (header::ETAG, tag),
                    (header::CONTENT_LENGTH, full.len().to_string()),
                ],
                response_body,
            )
                .into_response()
        }
    }
}

impl FakeS3 {
    async fn start() -> Self {
        let state = FakeS3State::default();
        let app = axum::Router::new()
            .route("/{bucket}/{*key}", get(get_object))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, state }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set(&self, key: &str, b: Behavior) {
        self.state
            .objects
            .lock()
            .unwrap()
            .insert(format!("{BUCKET}/{key}"), b);
    }

    /// The `If-Match` header of each GetObject for `key`, in order.
    fn if_match(&self, key: &str) -> Vec<Option<String>> {
        self.state
            .if_match
            .lock()
            .unwrap()
            .get(&format!("{BUCKET}/{key}"))
            .cloned()
            .unwrap_or_default()
    }

    /// GetObject requests received for `key`.
    fn hits(&self, key: &str) -> u32 {
        self.state
            .hits
            .lock()
            .unwrap()
            .get(&format!("{BUCKET}/{key}"))
            .copied()
            .unwrap_or(0)
    }
}

/// AWS config pointing at the fake server, with static test credentials
/// (as `common::aws()` builds them). `sdk_retries = false` disables the AWS
/// SDK's own retry layer, so the fetcher's retry loop is observed alone.
async fn sdk_config(endpoint: &str, sdk_retries: bool) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "tests",
        ));
    if !sdk_retries {
        loader = loader.retry_config(aws_config::retry::RetryConfig::disabled());
    }
    loader.load().await
}

/// The S3 client exactly as the daemon builds it (`app::s3_client`: path
/// style because an endpoint override is set).
fn daemon_s3_client(sdk: &aws_config::SdkConfig, endpoint: &str) -> aws_sdk_s3::Client {
    reconwatch::app::s3_client(
        sdk,
        &reconwatch::config::AwsConfig {
            region: Some("us-east-1".into()),
            endpoint_url: Some(endpoint.into()),
            s3_force_path_style: true,
        },
    )
}

fn limits() -> Limits {
    Limits {
        // Streamed, so a cut body has delivered a prefix to resume after.
        whole_object_max_bytes: 0,
        max_decompressed_bytes: 1 << 30,
        max_records: 1_000_000,
        max_record_bytes: 1 << 20,
    }
}

async fn fetcher(server: &FakeS3, attempts: u32, sdk_retries: bool) -> S3Fetcher {
    fetcher_with(server, attempts, sdk_retries, limits()).await
}

async fn fetcher_with(
    server: &FakeS3,
    attempts: u32,
    sdk_retries: bool,
    limits: Limits,
) -> S3Fetcher {
    let sdk = sdk_config(&server.url(), sdk_retries).await;
    S3Fetcher::new(daemon_s3_client(&sdk, &server.url()), limits, attempts)
}

#[derive(Default)]
struct Collect(Vec<Event>);

/// Read `k` with a fetcher of `attempts` (see [`fetcher`]): the outcome and
/// every event delivered, whatever the outcome.
async fn read(
    server: &FakeS3,
    k: &str,
    attempts: u32,
    sdk_retries: bool,
) -> (Result<ObjectStats, FetchError>, Vec<Event>) {
    let f = fetcher(server, attempts, sdk_retries).await;
    let mut out = Collect::default();
    let r = f.process(&obj(k), &mut out).await;
    (r, out.0)
}

impl EventOut for Collect {
    async fn push(&mut self, events: &mut Vec<Event>) -> Result<(), ()> {
        self.0.append(events);
        Ok(())
    }
}

fn obj(key: &str) -> ObjectRef {
    ObjectRef {
        bucket: BUCKET.into(),
        key: key.into(),
        size: None,
        version_tag: None,
    }
}

fn key(suffix: &str) -> String {
    common::trail_key("us-east-1", "20261120T1010Z", suffix)
}

/// A gzip CloudTrail object of `n` records tagged `tag` (event ids
/// `common::event_id(tag, i)`), one per second from 10:00:00.
fn tagged_object(tag: &str, n: u64) -> Vec<u8> {
    let records: Vec<_> = (0..n)
        .map(|i| {
            common::record(
                &format!("2026-11-20T10:{:02}:{:02}Z", (i / 60) % 60, i % 60),
                "arn:aws:iam::111122223333:user/s3-errors",
                "IAMUser",
                "DescribeInstances",
                "ec2.amazonaws.com",
                "us-east-1",
                "203.0.113.50",
                "aws-cli/2.15.30 Python/3.11.8",
                &common::event_id(tag, i),
            )
        })
        .collect();
    common::gz(&common::trail_file(&records))
}

/// An `AccessDenied` for (BUCKET, `want_key`): the error and its permission.
fn expect_denied(r: Result<ObjectStats, FetchError>, want_key: &str) -> (FetchError, String) {
    match r {
        Err(e) => {
            let FetchError::AccessDenied {
                bucket,
                key,
                permission,
                ..
            } = &e
            else {
                panic!("expected FetchError::AccessDenied, got {e:?}");
            };
            assert_eq!(bucket, BUCKET);
            assert_eq!(key, want_key);
            let permission = permission.to_string();
            (e, permission)
        }
        Ok(stats) => panic!("expected FetchError::AccessDenied, got Ok({stats:?})"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_names_bucket_key_and_s3_get_object() {
    let server = FakeS3::start().await;
    let k = key("DENIED0000000001");
    server.set(&k, Behavior::Denied);
    let (r, out) = read(&server, &k, 5, true).await;
    let (e, permission) = expect_denied(r, &k);
    let FetchError::AccessDenied { detail, .. } = &e else {
        unreachable!()
    };
    assert!(permission.starts_with("s3:GetObject"), "{permission}");
    assert_eq!(detail, "AccessDenied: Access Denied");
    let msg = e.to_string();
    assert!(msg.contains(&format!("s3://{BUCKET}/{k}")), "{msg}");
    assert!(msg.contains("s3:GetObject"), "{msg}");
    assert!(!msg.contains("kms:"), "{msg}");
    assert!(!e.is_final(), "an access-denied message must be kept");
    assert_eq!(e.label(), "access_denied");
    assert!(out.is_empty());
    assert_eq!(server.hits(&k), 1, "access denied is not retried");
}

/// S3's denial when the caller may not use the object's KMS key, in the
/// shape that names the KMS action.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_denial_naming_the_action_names_kms_decrypt() {
    let server = FakeS3::start().await;
    let k = key("KMSNOTAUTH000001");
    server.set(&k, Behavior::KmsNotAuthorized);
    let (r, out) = read(&server, &k, 5, true).await;
    let (e, permission) = expect_denied(r, &k);
    assert!(permission.starts_with("kms:Decrypt"), "{permission}");
    let msg = e.to_string();
    assert!(msg.contains(&format!("s3://{BUCKET}/{k}")), "{msg}");
    assert!(msg.contains("reconwatch's role needs kms:Decrypt"), "{msg}");
    assert!(!e.is_final());
    assert!(out.is_empty());
    assert_eq!(server.hits(&k), 1, "access denied is not retried");
}

/// S3's classic denial for an SSE-KMS object whose key the caller may not
/// use: code `AccessDenied`, message "The ciphertext refers to a customer
/// master key …" (it names neither "KMS" nor "kms:").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_denial_ciphertext_message_names_kms_decrypt() {
    let server = FakeS3::start().await;
    let k = key("KMSCIPHER0000001");
    server.set(&k, Behavior::KmsCiphertext);
    let (r, _) = read(&server, &k, 5, true).await;
    let (e, permission) = expect_denied(r, &k);
    let msg = e.to_string();
    assert!(msg.contains(&format!("s3://{BUCKET}/{k}")), "{msg}");
    assert!(
        permission.starts_with("kms:Decrypt"),
        "S3's KMS denial must name kms:Decrypt, got: {msg}"
    );
    assert!(msg.contains("kms:Decrypt"), "{msg}");
    assert!(!e.is_final());
    assert_eq!(server.hits(&k), 1, "access denied is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_key_is_final_and_named() {
    let server = FakeS3::start().await;
    let k = key("MISSING000000001");
    server.set(&k, Behavior::Missing);
    let (r, out) = read(&server, &k, 5, true).await;
    match r {
        Err(e @ FetchError::Missing { .. }) => {
            let FetchError::Missing { bucket, key, code } = &e else {
                unreachable!()
            };
            assert_eq!(bucket, BUCKET);
            assert_eq!(key, &k);
            assert_eq!(code, "NoSuchKey");
            assert!(e.is_final(), "nothing will ever be readable at that key");
            assert_eq!(e.label(), "missing");
            assert_eq!(
                e.to_string(),
                format!("s3://{BUCKET}/{k} does not exist (NoSuchKey); nothing to read")
            );
        }
        other => panic!("expected FetchError::Missing, got {other:?}"),
    }
    assert!(out.is_empty());
    assert_eq!(server.hits(&k), 1, "a missing key is not retried");
}

/// SlowDown twice, then the object: read with the third request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_down_twice_then_ok_reads_every_event() {
    let server = FakeS3::start().await;
    let k = key("SLOWDOWN00000001");
    server.set(
        &k,
        Behavior::SlowDown {
            remaining: 2,
            body: tagged_object("slow-down", 7),
        },
    );
    // The SDK's own retries off: the fetcher's loop does the retrying.
    let (r, out) = read(&server, &k, 5, false).await;
    let stats = r.expect("the object is read after two SlowDowns");
    assert_eq!(stats.events, 7);
    assert_eq!(stats.records, 7);
    assert_eq!(stats.skipped_total(), 0);
    assert_eq!(out.len(), 7);
    assert_eq!(server.hits(&k), 3, "two SlowDowns + one success");
}

/// SlowDown forever: `Transient` after exactly `attempts` requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_down_forever_is_transient_after_exactly_the_attempts() {
    let server = FakeS3::start().await;
    let k = key("SLOWFOREVER00001");
    server.set(
        &k,
        Behavior::SlowDown {
            remaining: u32::MAX,
            body: Vec::new(),
        },
    );
    let (r, out) = read(&server, &k, 3, false).await;
    match r {
        Err(e @ FetchError::Transient { .. }) => {
            let FetchError::Transient {
                bucket,
                key,
                attempts,
                detail,
            } = &e
            else {
                unreachable!()
            };
            assert_eq!(bucket, BUCKET);
            assert_eq!(key, &k);
            assert_eq!(*attempts, 3);
            assert!(detail.contains("SlowDown"), "{detail}");
            assert!(detail.contains("503"), "{detail}");
            assert!(!e.is_final(), "a throttled message must be kept");
            assert_eq!(e.label(), "transient");
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!(
                    "reading s3://{BUCKET}/{k} failed after 3 attempt(s): "
                )),
                "{msg}"
            );
        }
        other => panic!("expected FetchError::Transient, got {other:?}"),
    }
    assert!(out.is_empty());
    assert_eq!(server.hits(&k), 3);
}

/// The same with the client configured exactly as `reconwatch run`
/// configures it (the AWS SDK's default retry settings kept):
/// `s3.fetch_attempts = 3` must mean 3 GetObject requests, as the README,
/// the configuration reference and the error message ("failed after 3
/// attempt(s)") say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_client_sends_exactly_fetch_attempts_requests() {
    let server = FakeS3::start().await;
    let k = key("SLOWDAEMON000001");
    server.set(
        &k,
        Behavior::SlowDown {
            remaining: u32::MAX,
            body: Vec::new(),
        },
    );
    let (r, _) = read(&server, &k, 3, true).await;
    assert!(
        matches!(r, Err(FetchError::Transient { attempts: 3, .. })),
        "{r:?}"
    );
    assert_eq!(
        server.hits(&k),
        3,
        "s3.fetch_attempts = 3 must send 3 GetObject requests (the SDK's retry layer multiplies them)"
    );
}

/// How many of `events` carry the ids of `tag`'s records `0..n`, and whether
/// they come in record order.
fn count_tagged(events: &[Event], tag: &str, n: u64) -> (usize, bool) {
    let ids: HashMap<String, u64> = (0..n).map(|i| (common::event_id(tag, i), i)).collect();
    let order: Vec<u64> = events
        .iter()
        .filter_map(|e| ids.get(&e.id_string()).copied())
        .collect();
    let in_order = order.windows(2).all(|w| w[0] < w[1]);
    (order.len(), in_order)
}

/// `body` served with `etag`, the first response cut at 60 % of the body;
/// later ones whole, or `replace_with` (a new version) when given.
fn cut_once(body: &[u8], etag: &str, replace_with: Option<(Vec<u8>, String)>) -> Behavior {
    Behavior::Cut {
        breaks: 1,
        cut_at: body.len() * 6 / 10,
        body: body.to_vec(),
        etag: etag.into(),
        replace_with,
    }
}

/// The connection drops mid-body: the retry reads the object again under
/// `If-Match` and delivers only the records the first attempt did not, so
/// every record arrives exactly once and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_midway_resumes_after_the_delivered_records() {
    let server = FakeS3::start().await;
    let k = key("CUTRESUME0000001");
    let body = tagged_object("resume", 3000);
    let etag = "\"11111111111111111111111111111111\"".to_string();
    server.set(&k, cut_once(&body, &etag, None));
    let (r, out) = read(&server, &k, 3, false).await;
    let stats = r.expect("the second attempt reads the object");
    assert_eq!(stats.events, 3000);
    let (n, in_order) = count_tagged(&out, "resume", 3000);
    assert_eq!(out.len(), 3000, "no record twice, none missing");
    assert_eq!(n, 3000);
    assert!(in_order, "records arrive in object order");
    assert_eq!(server.hits(&k), 2);
    assert_eq!(
        server.if_match(&k),
        vec![None, Some(etag)],
        "the retry is guarded by the first response's ETag"
    );
}

/// An object small enough to be inflated whole is read completely before
/// any record is delivered: a cut delivers nothing (a streamed read
/// delivers a prefix, see above), and the next read delivers every record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_while_read_whole_delivers_nothing_then_everything() {
    let server = FakeS3::start().await;
    let k = key("CUTWHOLE00000001");
    let body = tagged_object("whole", 3000);
    server.set(
        &k,
        cut_once(&body, "\"44444444444444444444444444444444\"", None),
    );
    let whole = Limits {
        whole_object_max_bytes: 4 << 20,
        ..limits()
    };
    let once = fetcher_with(&server, 1, false, whole).await;
    let mut out = Collect::default();
    let err = once.process(&obj(&k), &mut out).await.unwrap_err();
    assert!(out.0.is_empty(), "nothing delivered before the cut: {err}");
    let stats = once.process(&obj(&k), &mut out).await.expect("read");
    assert_eq!(stats.events, 3000);
    let (n, in_order) = count_tagged(&out.0, "whole", 3000);
    assert_eq!((out.0.len(), n), (3000, 3000), "each record once");
    assert!(in_order);
}

/// The object is replaced between the cut and the retry: If-Match fails
/// (412) and the new version is delivered whole; what the first attempt
/// delivered of the old version stays delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_replaced_after_a_cut_is_read_whole() {
    let server = FakeS3::start().await;
    let k = key("CUTREPLACED00001");
    let old = tagged_object("old-version", 3000);
    server.set(
        &k,
        cut_once(
            &old,
            "\"22222222222222222222222222222222\"",
            Some((
                tagged_object("new-version", 500),
                "\"33333333333333333333333333333333\"".into(),
            )),
        ),
    );
    let (r, out) = read(&server, &k, 4, false).await;
    let stats = r.expect("the new version is read");
    assert_eq!(stats.events, 500);
    let (old_n, old_order) = count_tagged(&out, "old-version", 3000);
    let (new_n, new_order) = count_tagged(&out, "new-version", 500);
    assert!(
        old_n > 0 && old_n < 3000,
        "the cut attempt delivered a prefix: {old_n}"
    );
    assert!(old_order && new_order);
    assert_eq!(new_n, 500, "the new version whole");
    assert_eq!(out.len(), old_n + 500);
    assert_eq!(
        server.if_match(&k),
        vec![
            None,
            Some("\"22222222222222222222222222222222\"".into()),
            None
        ],
        "cut, 412 on the old ETag, then the new version unguarded"
    );
}
