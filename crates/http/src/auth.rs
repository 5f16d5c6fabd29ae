//! Authentication: the bearer credential of every API call resolved to its principal (and
//! rate limited per principal), and the bootstrap token that guards owner registration.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;
use waiaas_domain::tenant::{self, Tenant};
use waiaas_domain::{AuditContext, CredentialKind, OwnerId, Principal};

use crate::error::ApiError;
use crate::extract::{client_ip, request_id};
use crate::{SharedState, ratelimit};

/// The authenticated caller of a request, with the audit context of its mutations.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// Who is calling.
    pub principal: Principal,
    /// With an API key or a session token.
    pub kind: CredentialKind,
    /// Who and where, for the audit trail.
    pub audit: AuditContext,
}

impl Caller {
    /// The owner, when the caller is one.
    ///
    /// # Errors
    /// 403 `forbidden` for an agent, saying what only owners may do.
    pub(crate) fn owner(&self, what: &str) -> Result<OwnerId, ApiError> {
        match self.principal {
            Principal::Owner { owner_id } => Ok(owner_id),
            Principal::Agent { .. } => Err(ApiError::forbidden(format!("only owners {what}"))),
        }
    }
}

/// A credential already resolved by [`scope_tenant`], for the handler's [`Caller`].
#[derive(Debug, Clone, Copy)]
struct Authenticated {
    principal: Principal,
    kind: CredentialKind,
}

/// Resolves the credential a request presents before its handler runs, and runs the handler
/// acting for the caller's owner ([`waiaas_domain::tenant`]): with row-level security, every
/// query the request makes sees that owner's rows only. A request without a credential, or
/// whose credential does not resolve, runs unscoped; its handler's extractor answers it as
/// before (a credential that does not resolve is resolved once more there, for its error).
pub(crate) async fn scope_tenant(
    axum::extract::State(state): axum::extract::State<SharedState>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let resolved = match bearer(req.headers()) {
        Some(token) => state.services.authenticate(token).await.ok(),
        None => None,
    };
    let Some((principal, kind)) = resolved else {
        return next.run(req).await;
    };
    req.extensions_mut()
        .insert(Authenticated { principal, kind });
    tenant::scope(Tenant::Owner(principal.owner_id()), next.run(req)).await
}

impl FromRequestParts<SharedState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers).ok_or_else(ApiError::unauthenticated)?;
        let (principal, kind) = match parts.extensions.get::<Authenticated>() {
            Some(a) => (a.principal, a.kind),
            None => state.services.authenticate(token).await?,
        };
        let actor = principal.actor();
        ratelimit::enforce(state, &actor.to_string()).await?;
        Ok(Self {
            principal,
            kind,
            audit: AuditContext {
                actor,
                request_id: request_id(parts),
                ip: client_ip(parts),
            },
        })
    }
}

/// The registration of an owner, allowed by the bootstrap token. Rate limited per client
/// address before the token is compared, so the token cannot be guessed at speed.
#[derive(Debug, Clone)]
pub(crate) struct Bootstrap {
    /// Where the request comes from, for the audit trail (the actor is the system).
    pub audit: AuditContext,
}

impl FromRequestParts<SharedState> for Bootstrap {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let ip = client_ip(parts);
        ratelimit::enforce(state, &ratelimit::ip_subject(ip)).await?;
        // No credential at all is a 401 (as on every other operation); a wrong one, or any
        // while registration is disabled, a 403.
        let presented = bearer(&parts.headers).ok_or_else(ApiError::unauthenticated)?;
        let Some(expected) = state.config.bootstrap_token.as_deref() else {
            return Err(ApiError::forbidden("owner registration is disabled"));
        };
        if !bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
            return Err(ApiError::forbidden(
                "owner registration requires the bootstrap token",
            ));
        }
        let mut audit = AuditContext::system();
        audit.request_id = request_id(parts);
        audit.ip = ip;
        Ok(Self { audit })
    }
}

/// The credential of an `Authorization: Bearer <credential>` header; the scheme is matched
/// without regard to case.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credential) = value.split_once(' ')?;
    let credential = credential.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credential.is_empty()).then_some(credential)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn a_bearer_credential_is_read_whatever_the_scheme_case() {
        assert_eq!(bearer(&headers("Bearer wak_1")), Some("wak_1"));
        assert_eq!(bearer(&headers("bearer  wak_1 ")), Some("wak_1"));
        assert_eq!(bearer(&headers("Basic dXNlcg==")), None);
        assert_eq!(bearer(&headers("Bearer ")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
