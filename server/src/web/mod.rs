//! The back office: server-rendered pages (askama templates, checked at compile time) for the
//! people of a program, usable without JavaScript (one small script, served from here, shows
//! issuance progress), in English, French and Arabic (right to left).
//!
//! Pages use the same permission table and the same handlers as the JSON API: a page's action
//! calls the API handler, so a rule is never implemented twice. A page needs a browser session
//! (never a bearer token); a state-changing form must come from our own pages (`Origin`) and
//! carry the session's CSRF token, checked once, by [`Posted`].

mod chart;
mod claims;
pub mod i18n;
mod pages;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Router;
use serde::de::DeserializeOwned;

use crate::auth::{allows, Perm, Principal, Via};
use crate::limits::ClientAddr;
use crate::users::User;
use crate::{ApiError, AppState};
use i18n::Tr;

pub fn router() -> Router<AppState> {
    pages::router().merge(claims::router())
}

/// A signed-in person on a page.
pub struct Web {
    pub s: AppState,
    pub tr: Tr,
    pub user: User,
    pub who: Principal,
    pub via: Via,
    pub csrf: String,
    /// The path of this page (for the language links).
    pub path: String,
    pub client: ClientAddr,
}

impl Web {
    /// Whether this person's role allows `perm`.
    pub fn can(&self, perm: Perm) -> bool {
        allows(self.user.role, perm)
    }

    /// 403 unless the role allows `perm`.
    pub fn need(&self, perm: Perm) -> Result<(), WebError> {
        if self.can(perm) {
            Ok(())
        } else {
            Err(WebError::forbidden(self))
        }
    }

    /// 403 (or 404) unless the role allows `perm` on what `id` names (`scope`).
    pub async fn permit(
        &self,
        perm: Perm,
        scope: crate::auth::Scope,
        id: &str,
    ) -> Result<(), WebError> {
        crate::auth::permit(&self.s, &self.who, perm, scope, Some(id))
            .await
            .map_err(|e| WebError::api(self, e))
    }

    /// The common parts of a page.
    pub fn page(&self, title: &str) -> Page {
        let mut nav: Vec<(String, String, bool)> = Vec::new();
        let mut item = |href: String, key: &str, ok: bool| {
            if ok {
                let active = self.path == href
                    || (href != "/" && self.path.starts_with(&format!("{href}/")));
                nav.push((href, self.tr.t(key).to_owned(), active));
            }
        };
        item(
            "/dashboard".into(),
            "nav.dashboard",
            self.can(Perm::ReadPrograms),
        );
        item(
            "/programs".into(),
            "nav.programs",
            self.can(Perm::ReadPrograms),
        );
        item(
            "/vouchers".into(),
            "nav.vouchers",
            self.can(Perm::ReadPrograms),
        );
        let providers = match self.who.own_provider() {
            Some(p) => format!("/providers/{p}"),
            None => "/providers".into(),
        };
        item(providers, "nav.providers", self.can(Perm::ReadProviders));
        item(
            "/redemptions".into(),
            "nav.redemptions",
            self.can(Perm::ReadRedemptions),
        );
        item("/claims".into(), "nav.claims", self.can(Perm::ReadClaims));
        item(
            "/payables".into(),
            "nav.payables",
            self.can(Perm::ReadClaims) && self.who.own_provider().is_none(),
        );
        item("/audit".into(), "nav.audit", self.can(Perm::ReadAudit));
        item("/users".into(), "nav.users", self.can(Perm::ManageUsers));
        item("/tokens".into(), "nav.tokens", true);
        Page {
            tr: self.tr,
            title: title.to_owned(),
            user: Some(NavUser {
                name: self.user.name.clone(),
                role: self
                    .tr
                    .t(&format!("role.{}", self.user.role.as_str()))
                    .to_owned(),
            }),
            nav,
            csrf: self.csrf.clone(),
            flash: None,
            error: None,
            langs: i18n::LANGS.to_vec(),
            path: url_escape(&self.path),
        }
    }
}

/// Who is signed in, for the header.
pub struct NavUser {
    pub name: String,
    pub role: String,
}

/// What every page shows around its content.
pub struct Page {
    pub tr: Tr,
    pub title: String,
    pub user: Option<NavUser>,
    /// (link, text, current page)
    pub nav: Vec<(String, String, bool)>,
    pub csrf: String,
    pub flash: Option<String>,
    pub error: Option<String>,
    pub langs: Vec<(&'static str, &'static str)>,
    pub path: String,
}

impl Page {
    pub fn t(&self, key: &str) -> String {
        self.tr.t(key).to_owned()
    }

    /// A page for someone not signed in.
    pub fn anonymous(tr: Tr, title: &str, path: &str) -> Page {
        Page {
            tr,
            title: title.to_owned(),
            user: None,
            nav: Vec::new(),
            csrf: String::new(),
            flash: None,
            error: None,
            langs: i18n::LANGS.to_vec(),
            path: url_escape(path),
        }
    }

    pub fn flash(mut self, m: Option<String>) -> Page {
        self.flash = m;
        self
    }

    pub fn error(mut self, m: Option<String>) -> Page {
        self.error = m;
        self
    }
}

/// Percent-encode a path for a query parameter.
fn url_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A page that could not be shown: an HTML page with its status.
pub struct WebError(Box<Response>);

impl WebError {
    pub fn forbidden(w: &Web) -> WebError {
        WebError::page(w, StatusCode::FORBIDDEN, w.tr.t("error.forbidden"))
    }

    pub fn not_found(w: &Web) -> WebError {
        WebError::page(w, StatusCode::NOT_FOUND, w.tr.t("error.not_found"))
    }

    pub fn page(w: &Web, status: StatusCode, message: &str) -> WebError {
        let p = w
            .page(w.tr.t("error.title"))
            .error(Some(message.to_owned()));
        let mut r = render(&pages::ErrorPage { p });
        *r.status_mut() = status;
        WebError(Box::new(r))
    }

    /// A response that is already an answer (a redirect, a refusal).
    pub fn from_response(r: Response) -> WebError {
        WebError(Box::new(r))
    }

    /// An API error as a page (its message is safe to show: it never holds internals).
    pub fn api(w: &Web, e: ApiError) -> WebError {
        match e.status_code() {
            StatusCode::FORBIDDEN => WebError::forbidden(w),
            StatusCode::NOT_FOUND => WebError::not_found(w),
            s => WebError::page(w, s, &e.to_string()),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// Render a template (a render error is a bug: logged, and a plain 500).
pub fn render<T: askama::Template>(t: &T) -> Response {
    match t.render() {
        Ok(html) => {
            let mut r = axum::response::Html(html).into_response();
            let h = r.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            // Pages run only our own script and styles; nothing is framed.
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                ),
            );
            h.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// The request path and query, for coming back after signing in.
fn path_of(parts: &Parts) -> String {
    parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into())
}

impl FromRequestParts<AppState> for Web {
    type Rejection = Response;

    /// The signed-in person, from the session cookie (never a bearer token); otherwise a
    /// redirect to sign in, and with a one-time password a redirect to change it first.
    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        let client = ClientAddr::from_request_parts(parts, s)
            .await
            .unwrap_or(ClientAddr(None));
        let tr = i18n::of_request(&parts.headers);
        let path = path_of(parts);
        let sign_in =
            || Redirect::to(&format!("/sign-in?next={}", url_escape(&path))).into_response();
        let Some(sid) = crate::auth::cookie(&parts.headers, crate::auth::SESSION_COOKIE) else {
            return Err(sign_in());
        };
        let mut c = match s.db.acquire().await {
            Ok(c) => c,
            Err(e) => return Err(ApiError::from(e).into_response()),
        };
        let (user, csrf) = match crate::users::session(&mut c, sid).await {
            Ok(Some(x)) => x,
            Ok(None) => return Err(sign_in()),
            Err(e) => return Err(e.into_response()),
        };
        if user.must_change && parts.uri.path() != "/password" && parts.uri.path() != "/sign-out" {
            return Err(Redirect::to("/password").into_response());
        }
        Ok(Web {
            s: s.clone(),
            tr,
            who: Principal::User(user.clone()),
            via: Via::Session {
                sid: sid.to_owned(),
                csrf: csrf.clone(),
            },
            user,
            csrf,
            path: parts.uri.path().to_owned(),
            client,
        })
    }
}

/// A posted form from our own pages: the person signed in, the `Origin` (or `Referer`) of the
/// request is this server, and the form's `csrf` field is the session's token. Every
/// state-changing page goes through this one check.
pub struct Posted<T> {
    pub w: Web,
    pub form: T,
}

/// Whether a posted form came from our own page: same origin and the session's CSRF token.
pub fn csrf_ok(w: &Web, headers: &HeaderMap, token: &str) -> bool {
    crate::auth::same_origin(&w.s, headers) && crate::secret::same_secret(token, &w.csrf)
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, s: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let w = Web::from_request_parts(&mut parts, s).await?;
        let headers = parts.headers.clone();
        let req = Request::from_parts(parts, body);
        let bytes = axum::body::Bytes::from_request(req, s)
            .await
            .map_err(|e| e.into_response())?;
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).map_err(|_| {
            WebError::page(&w, StatusCode::BAD_REQUEST, "malformed form").into_response()
        })?;
        let token = fields
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        if !csrf_ok(&w, &headers, token) {
            return Err(WebError::page(
                &w,
                StatusCode::FORBIDDEN,
                "cross-site request refused (origin or CSRF token)",
            )
            .into_response());
        }
        let form = serde_urlencoded::from_bytes::<T>(&bytes).map_err(|e| {
            WebError::page(&w, StatusCode::BAD_REQUEST, &format!("form: {e}")).into_response()
        })?;
        Ok(Posted { w, form })
    }
}
