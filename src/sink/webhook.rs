//! Webhook sink: HTTP POST of the alert JSON, with an optional
//! `X-Reconwatch-Signature: sha256=<hex HMAC-SHA256 of the body>` header.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;

use super::{DeliveryError, Envelope};
use crate::config::SinkConfig;

/// Header carrying the body's HMAC.
pub const SIGNATURE_HEADER: &str = "x-reconwatch-signature";

/// Compute the signature header value for `body`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub(super) struct Webhook {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: Option<Vec<u8>>,
}

impl Webhook {
    pub(super) fn new(cfg: &SinkConfig) -> Result<Self, String> {
        let SinkConfig::Webhook {
            url,
            timeout_secs,
            secret,
            secret_env,
            headers,
            ..
        } = cfg
        else {
            return Err("not a webhook config".into());
        };
        let url = reqwest::Url::parse(url).map_err(|e| format!("url: {e}"))?;
        let secret = match (secret, secret_env) {
            (Some(s), _) => Some(s.as_bytes().to_vec()),
            (None, Some(var)) => Some(
                std::env::var(var)
                    .map_err(|_| format!("secret_env: environment variable {var} is not set"))?
                    .into_bytes(),
            ),
            (None, None) => None,
        };
        let mut default_headers = HeaderMap::new();
        for (k, v) in headers {
            let name =
                HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("header {k:?}: {e}"))?;
            let value = HeaderValue::from_str(v).map_err(|e| format!("header {k:?}: {e}"))?;
            default_headers.insert(name, value);
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(*timeout_secs))
            .default_headers(default_headers)
            .user_agent(concat!("reconwatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            url,
            secret,
        })
    }

    pub(super) async fn deliver(&self, env: &Envelope) -> Result<(), DeliveryError> {
        let mut req = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("x-reconwatch-alert-id", &env.alert.alert_id)
            .body(env.json.clone());
        if let Some(secret) = &self.secret {
            req = req.header(SIGNATURE_HEADER, sign(secret, env.json.as_bytes()));
        }
        match req.send().await {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) => {
                let status = resp.status();
                let msg = format!("webhook {} answered {status}", self.url);
                if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
                    Err(DeliveryError::retryable(msg))
                } else {
                    Err(DeliveryError::permanent(msg))
                }
            }
            Err(e) => Err(DeliveryError::retryable(format!(
                "webhook {}: {}",
                self.url,
                if e.is_timeout() {
                    "timed out".to_string()
                } else {
                    e.to_string()
                }
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc4231_test_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
