//! OpenID Connect providers: discovery (cached), the authorization-code flow with PKCE, and
//! verification of the ID token (signature, issuer, audience, expiry, nonce) with the
//! `openidconnect` crate. Identities are (issuer, subject), never an email address.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use menshen_config::OidcProvider;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest, HttpResponse, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};

/// A client built from discovery: the authorization endpoint is known, the token and
/// userinfo endpoints may be.
type ProviderClient = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// How long discovered metadata (endpoints and signing keys) is reused.
const METADATA_TTL: Duration = Duration::from_secs(3600);

/// Why a provider step failed, as values the handlers turn into pages.
#[derive(Debug, thiserror::Error)]
pub enum OidcFailure {
    #[error("the provider cannot be reached: {0}")]
    ProviderDown(String),
    #[error("the provider's answer could not be verified: {0}")]
    TokenInvalid(String),
}

/// HTTP for the `openidconnect` crate: reqwest with a timeout and without following
/// redirects (the token endpoint must answer itself).
pub struct HttpClient(reqwest::Client);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

impl HttpClient {
    pub fn new() -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok(HttpClient(
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()?,
        ))
    }
}

impl<'c> openidconnect::AsyncHttpClient<'c> for HttpClient {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let mut req = self
                .0
                .request(parts.method, parts.uri.to_string())
                .body(body);
            for (name, value) in &parts.headers {
                req = req.header(name, value);
            }
            let resp = req.send().await.map_err(|e| HttpError(e.to_string()))?;
            let mut builder = http::Response::builder().status(resp.status());
            for (name, value) in resp.headers() {
                builder = builder.header(name, value);
            }
            let body = resp.bytes().await.map_err(|e| HttpError(e.to_string()))?;
            builder
                .body(body.to_vec())
                .map_err(|e| HttpError(e.to_string()))
        })
    }
}

/// One configured provider with its cached metadata.
pub struct Provider {
    pub config: OidcProvider,
    metadata: Mutex<Option<(CoreProviderMetadata, Instant)>>,
}

/// What the browser is sent to, and what must be kept server-side for the callback.
pub struct Authorization {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// A verified external identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentity {
    pub issuer: String,
    pub subject: String,
    /// The configured claim (email by default), for showing which account is bound.
    pub shown: String,
}

impl Provider {
    pub fn new(config: OidcProvider) -> Self {
        Provider {
            config,
            metadata: Mutex::new(None),
        }
    }

    async fn metadata(&self, http: &HttpClient) -> Result<CoreProviderMetadata, OidcFailure> {
        if let Ok(guard) = self.metadata.lock()
            && let Some((meta, at)) = guard.as_ref()
            && at.elapsed() < METADATA_TTL
        {
            return Ok(meta.clone());
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| OidcFailure::ProviderDown(format!("bad issuer URL: {e}")))?;
        let meta = CoreProviderMetadata::discover_async(issuer, http)
            .await
            .map_err(|e| OidcFailure::ProviderDown(format!("discovery: {e}")))?;
        if let Ok(mut guard) = self.metadata.lock() {
            *guard = Some((meta.clone(), Instant::now()));
        }
        Ok(meta)
    }

    /// Origins a form that starts a flow may be redirected to (the CSP's `form-action` covers
    /// the redirects after a submission): the issuer's, and the authorization endpoint's once
    /// discovery has told it. Only `scheme://host:port` of parsed URLs, so nothing can add a
    /// directive.
    pub fn form_origins(&self) -> Vec<String> {
        let mut urls = vec![self.config.issuer.clone()];
        if let Ok(guard) = self.metadata.lock()
            && let Some((meta, _)) = guard.as_ref()
        {
            urls.push(meta.authorization_endpoint().url().to_string());
        }
        let mut origins: Vec<String> = urls
            .iter()
            .filter_map(|u| reqwest::Url::parse(u).ok())
            .map(|u| u.origin())
            .filter(|o| o.is_tuple())
            .map(|o| o.ascii_serialization())
            .collect();
        origins.dedup();
        origins
    }

    fn forget_metadata(&self) {
        if let Ok(mut guard) = self.metadata.lock() {
            *guard = None;
        }
    }

    /// The crate's client for this provider, from the (cached) discovery, answering to
    /// `redirect_uri`.
    async fn client(
        &self,
        http: &HttpClient,
        redirect_uri: &str,
    ) -> Result<ProviderClient, OidcFailure> {
        let meta = self.metadata(http).await?;
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|e| OidcFailure::ProviderDown(format!("redirect URI: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            meta,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.config.client_secret.clone())),
        )
        .set_redirect_uri(redirect))
    }

    /// Starts a login at the provider: fresh state, nonce and PKCE verifier.
    pub async fn authorize(
        &self,
        http: &HttpClient,
        redirect_uri: &str,
    ) -> Result<Authorization, OidcFailure> {
        let client = self.client(http, redirect_uri).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in self.config.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok(Authorization {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the code and verifies the ID token.
    pub async fn finish(
        &self,
        http: &HttpClient,
        redirect_uri: &str,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<ExternalIdentity, OidcFailure> {
        let client = self.client(http, redirect_uri).await?;
        let request = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| OidcFailure::ProviderDown(format!("no token endpoint: {e}")))?;
        let token = request
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(http)
            .await
            .map_err(|e| match e {
                openidconnect::RequestTokenError::ServerResponse(r) => {
                    OidcFailure::TokenInvalid(format!("token endpoint refused: {}", r.error()))
                }
                other => OidcFailure::ProviderDown(format!("token request: {other}")),
            })?;
        let id_token = token
            .id_token()
            .ok_or_else(|| OidcFailure::TokenInvalid("no ID token in the answer".into()))?;
        let verifier = client.id_token_verifier();
        let claims = match id_token.claims(&verifier, &Nonce::new(nonce.to_string())) {
            Ok(c) => c,
            Err(e) => {
                // Keys may have rotated: the next attempt rediscovers them.
                self.forget_metadata();
                return Err(OidcFailure::TokenInvalid(e.to_string()));
            }
        };
        let shown = match self.config.claim.as_str() {
            "email" => claims.email().map(|e| e.to_string()),
            "name" => claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string()),
            "preferred_username" => claims.preferred_username().map(|u| u.to_string()),
            _ => None,
        }
        .unwrap_or_else(|| claims.subject().to_string());
        Ok(ExternalIdentity {
            issuer: claims.issuer().to_string(),
            subject: claims.subject().to_string(),
            shown,
        })
    }
}
