//! The gateway as the client sees it: one base URL, one bearer token, JSON
//! in and out, and every non-2xx answer turned into a `Failure::Problem`.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::failure::Failure;

/// A gateway and the token to speak to it with.
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: SecretString,
}

/// A successful answer.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as JSON; `Null` when empty.
    pub body: Value,
}

impl Answer {
    /// The `ETag`, for `--if-match` hints.
    pub fn etag(&self) -> Option<&str> {
        self.headers.get("etag")?.to_str().ok()
    }
}

/// A request beyond its method and path.
#[derive(Default)]
pub struct Request<'a> {
    pub query: Vec<(&'static str, String)>,
    pub body: Option<&'a Value>,
    pub if_match: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    pub last_event_id: Option<&'a str>,
}

impl Api {
    /// `base` is the gateway's root (`http://host:8080`); a trailing `/` or
    /// `/api/v1` is accepted too, so the URL `serve` prints and the API root
    /// both work.
    pub fn new(base: &str, token: SecretString, timeout: Option<Duration>) -> Result<Api, Failure> {
        let base = base.trim_end_matches('/');
        let base = base.strip_suffix("/api/v1").unwrap_or(base).to_owned();
        let parsed = reqwest::Url::parse(&base)
            .map_err(|_| Failure::Usage(format!("--url {base:?} is not a URL")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Failure::Usage("--url must be http:// or https://".into()));
        }
        if token.expose_secret().trim().is_empty() {
            return Err(Failure::Usage(
                "no token: pass --token or set SWITCHBOARD_TOKEN".into(),
            ));
        }
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("switchboard-client/", env!("CARGO_PKG_VERSION")));
        if let Some(t) = timeout {
            builder = builder.timeout(t);
        }
        let http = builder
            .build()
            .map_err(|e| Failure::Other(format!("HTTP client: {e}")))?;
        Ok(Api { http, base, token })
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        r: &Request<'_>,
    ) -> Result<reqwest::RequestBuilder, Failure> {
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", self.token.expose_secret().trim()))
                .map_err(|_| {
                    Failure::Usage("the token has characters a header cannot carry".into())
                })?;
        auth.set_sensitive(true);
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .header(AUTHORIZATION, auth);
        if !r.query.is_empty() {
            req = req.query(&r.query);
        }
        if let Some(body) = r.body {
            req = req.json(body);
        }
        for (name, value) in [
            ("If-Match", r.if_match.map(quoted)),
            ("Idempotency-Key", r.idempotency_key.map(str::to_owned)),
            ("Last-Event-ID", r.last_event_id.map(str::to_owned)),
        ] {
            if let Some(v) = value {
                req = req.header(name, v);
            }
        }
        Ok(req)
    }

    /// Sends a request and reads the whole answer.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        r: Request<'_>,
    ) -> Result<Answer, Failure> {
        let resp = self
            .request(method, path, &r)?
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(unreachable)?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|_| {
                Failure::Other(format!(
                    "the gateway answered {status} with a body that is not JSON"
                ))
            })?
        };
        if !status.is_success() {
            return Err(Failure::Problem {
                status: status.as_u16(),
                body,
            });
        }
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    pub async fn get(
        &self,
        path: &str,
        query: Vec<(&'static str, String)>,
    ) -> Result<Answer, Failure> {
        self.send(
            Method::GET,
            path,
            Request {
                query,
                ..Default::default()
            },
        )
        .await
    }

    /// Opens a streaming answer (the live feed); a non-2xx is read whole.
    pub async fn open(&self, path: &str, r: Request<'_>) -> Result<reqwest::Response, Failure> {
        let resp = self
            .request(Method::GET, path, &r)?
            .send()
            .await
            .map_err(unreachable)?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        Err(Failure::Problem { status, body })
    }
}

/// `If-Match` takes the ETag as printed (`"3"`) or the bare version (`3`).
fn quoted(v: &str) -> String {
    if v.starts_with('"') || v.starts_with("W/") {
        v.to_owned()
    } else {
        format!("\"{v}\"")
    }
}

/// A transport error, without its URL (it holds nothing secret, but the
/// message reads better without it).
pub fn unreachable(e: reqwest::Error) -> Failure {
    let what = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection refused or failed".to_owned()
    } else {
        e.without_url().to_string()
    };
    Failure::Unreachable(what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_may_be_the_root_or_the_api_root() {
        for base in [
            "http://h:1",
            "http://h:1/",
            "http://h:1/api/v1",
            "http://h:1/api/v1/",
        ] {
            let api = Api::new(base, "t".to_owned().into(), None).unwrap();
            assert_eq!(api.base, "http://h:1");
        }
        assert!(matches!(
            Api::new("ftp://h", "t".to_owned().into(), None),
            Err(Failure::Usage(_))
        ));
        assert!(matches!(
            Api::new("http://h", " ".to_owned().into(), None),
            Err(Failure::Usage(_))
        ));
    }

    #[test]
    fn if_match_takes_an_etag_or_a_version() {
        assert_eq!(quoted("3"), "\"3\"");
        assert_eq!(quoted("\"3\""), "\"3\"");
    }
}
