//! The blocking HTTP transport (reqwest) for the sync protocol, used by the CLI. The Android
//! app has its own transport (the phone's HTTP stack) over the same [`SyncRun`].

use std::path::Path;
use std::time::Duration;

use super::{Answer, Enrolment, Exchange, Request, SyncError, SyncReport, SyncRun};
use crate::ledger::Ledger;

pub struct SyncClient {
    pub(crate) base: String,
    token: Option<String>,
    pub(crate) http: reqwest::blocking::Client,
    attempts: u32,
}

impl std::fmt::Debug for SyncClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SyncClient({})", self.base)
    }
}

impl SyncClient {
    pub fn new(base: &str, token: Option<String>) -> Result<Self, SyncError> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("evoucher/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SyncError::Http(e.to_string()))?;
        Ok(SyncClient {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http,
            attempts: 4,
        })
    }

    /// Send a request, retrying connection failures and 5xx answers with backoff
    /// (0.25 s, 0.5 s, 1 s). 4xx answers are final.
    pub(crate) fn send(
        &self,
        build: impl Fn() -> reqwest::blocking::RequestBuilder,
    ) -> Result<reqwest::blocking::Response, SyncError> {
        let mut wait = Duration::from_millis(250);
        let mut last = SyncError::Http("no attempt".into());
        for attempt in 0..self.attempts {
            if attempt > 0 {
                std::thread::sleep(wait);
                wait *= 2;
            }
            let mut req = build();
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            match req.send() {
                Ok(r) if r.status().is_server_error() => {
                    last = SyncError::Status(r.status().as_u16(), problem(r));
                }
                Ok(r) => return Ok(r),
                Err(e) => last = SyncError::Http(e.to_string()),
            }
        }
        Err(last)
    }

    /// [`send`](Self::send), then a 2xx answer's JSON body; any other answer is
    /// [`SyncError::Status`] with its problem detail.
    pub(crate) fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        build: impl Fn() -> reqwest::blocking::RequestBuilder,
    ) -> Result<T, SyncError> {
        let r = self.send(build)?;
        if !r.status().is_success() {
            return Err(SyncError::Status(r.status().as_u16(), problem(r)));
        }
        r.json().map_err(|e| SyncError::Protocol(e.to_string()))
    }

    /// Enrol a ledger's device with a one-time code and record the enrolment in the ledger
    /// (its provider, category and device id are then fixed). A ledger enrols once.
    pub fn enrol_ledger(&self, ledger: &Ledger, code: &str) -> Result<Enrolment, SyncError> {
        super::check_not_enrolled(ledger)?;
        let body = super::enrol_body(ledger, code);
        let r = self.send(|| {
            self.http
                .post(format!("{}/api/v1/devices/enrol", self.base))
                .header("content-type", "application/json")
                .body(body.clone())
        })?;
        let status = r.status().as_u16();
        let text = r.text().map_err(|e| SyncError::Http(e.to_string()))?;
        super::apply_enrolment(ledger, &self.base, status, &text)
    }

    /// One whole [`SyncRun`]: push the outbox in batches, then pull the trust list (into
    /// `trust_path`, atomically) and the revocations.
    pub fn sync(&self, ledger: &Ledger, trust_path: &Path) -> Result<SyncReport, SyncError> {
        let mut run = SyncRun::new(ledger, trust_path);
        self.drive(ledger, &mut run)?;
        Ok(run.into_report())
    }

    /// Carry an [`Exchange`]'s requests to the server until it has none.
    pub fn drive(&self, ledger: &Ledger, run: &mut impl Exchange) -> Result<(), SyncError> {
        while let Some(req) = run.next(ledger)? {
            let r = self.send(|| self.build(&req))?;
            let status = r.status().as_u16();
            let etag = header(&r, "etag");
            let date = header(&r, "date").and_then(|d| crate::time::parse_http_date(&d));
            let body = r.text().map_err(|e| SyncError::Http(e.to_string()))?;
            run.answer(
                ledger,
                Answer {
                    status,
                    etag: etag.as_deref(),
                    date,
                    body: &body,
                },
            )?;
        }
        Ok(())
    }

    fn build(&self, req: &Request) -> reqwest::blocking::RequestBuilder {
        let url = format!("{}{}", self.base, req.path);
        let mut b = match req.method {
            "POST" => self.http.post(url),
            "PUT" => self.http.put(url),
            _ => self.http.get(url),
        };
        if let Some(path) = &req.body_file {
            // Read for each attempt; a file that went missing fails the request.
            b = b
                .header("content-type", "application/octet-stream")
                .body(std::fs::read(path).unwrap_or_default());
            if let Some(n) = &req.file_name {
                b = b.header("x-file-name", n);
            }
        }
        if let Some(body) = &req.body {
            b = b
                .header("content-type", "application/json")
                .body(body.clone());
        }
        if let Some(tag) = &req.if_none_match {
            b = b.header("if-none-match", tag);
        }
        b
    }
}

fn header(r: &reqwest::blocking::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

pub(crate) fn problem(r: reqwest::blocking::Response) -> String {
    super::problem_detail(&r.text().unwrap_or_default())
}
