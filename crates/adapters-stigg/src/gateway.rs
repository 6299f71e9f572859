//! [`HttpStiggGateway`]: the domain's `StiggGateway` port over Stigg's REST API v1 (its
//! `StiggLifecycle` side is in [`crate::lifecycle`]), and the requests both build on.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use onboarding_adapters_http::{ClientBuildError, Jitter, RetryHooks, Sleeper};
use onboarding_domain::ports::{
    CallContext, CustomerProvisioning, KeyRenewal, StiggCustomer, StiggError, StiggGateway,
    StiggSubscription, SubscriptionProvisioning,
};
use reqwest::header::HeaderValue;
use reqwest::{Method, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::budget::SharedBudget;
use crate::checks::{
    Created, WantedSubscription, customer_created, same_customer, same_subscription,
    subscription_created, unexpected_json,
};
use crate::client::{Answer, HttpRequest, StiggClient};
use crate::entity_limit::Entity;
use crate::error::invalid_response;
use crate::observer::{CallObserver, NoopObserver};
use crate::rate_limit::Caller;
use crate::wire::{
    CustomerData, CustomerRequest, Envelope, SubscriptionData, SubscriptionProvisionData,
    SubscriptionRequest,
};
use crate::{Operation, StiggConfig};

/// Why a gateway could not be built. The message never contains the API key.
#[derive(Debug, thiserror::Error)]
pub enum GatewayBuildError {
    #[error("invalid Stigg configuration: {0}")]
    InvalidConfig(String),
    #[error("cannot build the Stigg HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
}

impl From<ClientBuildError> for GatewayBuildError {
    fn from(error: ClientBuildError) -> Self {
        match error {
            ClientBuildError::Config(message) => Self::InvalidConfig(message),
            ClientBuildError::Http(error) => Self::HttpClient(error),
        }
    }
}

/// The Stigg adapter. Clones are cheap and share the HTTP connection pool and the rate-limit
/// buckets, so one instance should serve the whole process (API and batch jobs alike).
#[derive(Clone)]
pub struct HttpStiggGateway {
    client: Arc<StiggClient>,
    base_url: Arc<Url>,
    /// Who this handle's calls are for: how they pay for their rate-limit slots.
    caller: Caller,
}

/// Builds an [`HttpStiggGateway`] with replaced parts (sleeper, jitter, observer, shared
/// budget); the defaults are the real ones and buckets in memory.
pub struct HttpStiggGatewayBuilder {
    config: StiggConfig,
    hooks: RetryHooks,
    observer: Arc<dyn CallObserver>,
    shared_budget: Option<Arc<dyn SharedBudget>>,
}

impl HttpStiggGatewayBuilder {
    /// How the gateway waits (backoff and rate-limit waits). Default: Tokio's timer.
    pub fn sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.hooks.sleeper = sleeper;
        self
    }

    /// Where backoff randomness comes from. Default: uniform in `[0, ceiling]` (full jitter).
    pub fn jitter(mut self, jitter: Arc<dyn Jitter>) -> Self {
        self.hooks.jitter = jitter;
        self
    }

    /// Who hears about call outcomes (for metrics). Default: nobody.
    pub fn observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Keeps the rate-limit buckets in `budget`, shared by every instance of the deployment,
    /// instead of in this process. Default: in this process.
    pub fn shared_budget(mut self, budget: Arc<dyn SharedBudget>) -> Self {
        self.shared_budget = Some(budget);
        self
    }

    /// The gateway, for API requests ([`Caller::Interactive`]); see
    /// [`HttpStiggGateway::for_background`].
    pub fn build(self) -> Result<HttpStiggGateway, GatewayBuildError> {
        let base_url = parse_base_url(&self.config.base_url)?;
        let client = StiggClient::new(self.config, self.hooks, self.observer, self.shared_budget)?;
        Ok(HttpStiggGateway {
            client: Arc::new(client),
            base_url: Arc::new(base_url),
            caller: Caller::Interactive,
        })
    }
}

impl fmt::Debug for HttpStiggGatewayBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpStiggGatewayBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Checks a Stigg base URL as the gateway will use it: http(s), with a host, no query or
/// fragment. Settings check it with this too, so the two never disagree.
pub fn parse_base_url(raw: &str) -> Result<Url, GatewayBuildError> {
    onboarding_adapters_http::parse_base_url(raw).map_err(GatewayBuildError::InvalidConfig)
}

impl HttpStiggGateway {
    /// A gateway with the real sleeper, jitter and no observer.
    pub fn new(config: StiggConfig) -> Result<Self, GatewayBuildError> {
        Self::builder(config).build()
    }

    pub fn builder(config: StiggConfig) -> HttpStiggGatewayBuilder {
        HttpStiggGatewayBuilder {
            config,
            hooks: RetryHooks::default(),
            observer: Arc::new(NoopObserver),
            shared_budget: None,
        }
    }

    /// A handle on the same client and buckets whose calls are a backlog's (`reconcile`, the
    /// sync worker): they leave the interactive share to API requests.
    #[must_use]
    pub fn for_background(&self) -> Self {
        Self {
            caller: Caller::Background,
            ..self.clone()
        }
    }

    /// Sends `request` through the client as this handle's caller.
    pub(crate) async fn call<T>(
        &self,
        op: Operation,
        request: &HttpRequest,
        ctx: &CallContext,
        interpret: impl FnOnce(Answer) -> Result<T, StiggError> + Send,
    ) -> Result<T, StiggError> {
        self.client
            .call(op, request, ctx, self.caller, interpret)
            .await
    }

    /// `{base}/api/v1/{segments...}`, each segment percent-encoded.
    pub(crate) fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = Url::clone(&self.base_url);
        // Cannot fail: build() refused cannot-be-a-base URLs.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["api", "v1"]).extend(segments);
        }
        url
    }

    async fn read_back_customer(
        &self,
        customer: &CustomerProvisioning,
        ctx: &CallContext,
    ) -> Result<StiggCustomer, StiggError> {
        let op = Operation::ReadCustomer;
        let id = customer.customer_id.as_str();
        tracing::info!(
            correlation_id = %ctx.correlation_id,
            customer_id = id,
            "Stigg customer exists already; reading it back"
        );
        let request = get(self.endpoint(&["customers", id]));
        self.call(op, &request, ctx, |answer| {
            let data: CustomerData = self.success_data(op, &answer)?;
            same_customer(&data, customer)?;
            Ok(StiggCustomer { id: id.to_owned() })
        })
        .await
    }

    async fn read_back_subscription(
        &self,
        id: &str,
        wanted: &WantedSubscription<'_>,
        ctx: &CallContext,
    ) -> Result<StiggSubscription, StiggError> {
        let op = Operation::ReadSubscription;
        tracing::info!(
            correlation_id = %ctx.correlation_id,
            subscription_id = id,
            "Stigg subscription exists already; reading it back"
        );
        let request = get(self.endpoint(&["subscriptions", id]));
        self.call(op, &request, ctx, |answer| {
            let data: SubscriptionData = self.success_data(op, &answer)?;
            same_subscription(&data, wanted, id)?;
            Ok(StiggSubscription { id: id.to_owned() })
        })
        .await
    }

    /// Sends a subscription create (`op` with `request`) and checks its answer against
    /// `wanted`; reads the subscription back after a 409 (possible only when we chose its
    /// id) or a 2xx answer that does not show it.
    pub(crate) async fn create_subscription_checked(
        &self,
        op: Operation,
        request: &HttpRequest,
        wanted: &WantedSubscription<'_>,
        ctx: &CallContext,
    ) -> Result<StiggSubscription, StiggError> {
        let (created, answered_id) = self
            .call(op, request, ctx, |answer| match answer.status.as_u16() {
                200..=299 => {
                    let data: SubscriptionProvisionData = self.success_data(op, &answer)?;
                    let answered_id = data.id.clone();
                    Ok((subscription_created(op, data, wanted)?, answered_id))
                }
                409 if wanted.id.is_some() => Ok((Created::Exists, None)),
                _ => Err(self.client.error_for(op, &answer)),
            })
            .await?;
        match (created, wanted.id.or(answered_id.as_deref())) {
            (Created::New(subscription), _) => Ok(subscription),
            (Created::Exists, Some(id)) => self.read_back_subscription(id, wanted, ctx).await,
            (Created::Exists, None) => Err(invalid_response(
                op,
                "the answer neither shows nor names the subscription",
            )),
        }
    }

    /// `data` of a 2xx answer; any other status becomes its error.
    pub(crate) fn success_data<T: DeserializeOwned>(
        &self,
        op: Operation,
        answer: &Answer,
    ) -> Result<T, StiggError> {
        if !answer.status.is_success() {
            return Err(self.client.error_for(op, answer));
        }
        serde_json::from_slice::<Envelope<T>>(&answer.body)
            .map(|envelope| envelope.data)
            .map_err(|e| unexpected_json(op, &e))
    }
}

impl fmt::Debug for HttpStiggGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpStiggGateway")
            .field("config", self.client.config())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl StiggGateway for HttpStiggGateway {
    async fn provision_customer(
        &self,
        customer: &CustomerProvisioning,
        ctx: &CallContext,
    ) -> Result<StiggCustomer, StiggError> {
        let op = Operation::ProvisionCustomer;
        let ours = customer.customer_id.as_str();
        let request = mutation(
            op,
            Method::POST,
            self.endpoint(&["customers"]),
            &idempotency_key("customer", ours, customer.renewal.as_ref()),
            &CustomerRequest::from(customer),
            Entity::Customer(ours.to_owned()),
        )?;
        let created = self
            .call(op, &request, ctx, |answer| match answer.status.as_u16() {
                200..=299 => customer_created(op, &answer.body, customer),
                409 => Ok(Created::Exists),
                _ => Err(self.client.error_for(op, &answer)),
            })
            .await?;
        match created {
            Created::New(customer) => Ok(customer),
            Created::Exists => self.read_back_customer(customer, ctx).await,
        }
    }

    async fn provision_subscription(
        &self,
        subscription: &SubscriptionProvisioning,
        ctx: &CallContext,
    ) -> Result<StiggSubscription, StiggError> {
        let op = Operation::ProvisionSubscription;
        let ours = subscription.subscription_id.as_str();
        // Stigg counts a subscription create against its customer: the subscription does
        // not exist yet.
        let request = mutation(
            op,
            Method::POST,
            self.endpoint(&["subscriptions"]),
            &idempotency_key("subscription", ours, subscription.renewal.as_ref()),
            &SubscriptionRequest::from(subscription),
            Entity::Customer(subscription.customer_id.as_str().to_owned()),
        )?;
        let wanted = WantedSubscription::from(subscription);
        self.create_subscription_checked(op, &request, &wanted, ctx)
            .await
    }
}

/// `customer:{id}` (the contract's key), or `customer:{id}:{renewal}` for a create sent
/// again after Stigg lost what its cached answer stands for.
fn idempotency_key(entity: &str, id: &str, renewal: Option<&KeyRenewal>) -> String {
    match renewal {
        None => format!("{entity}:{id}"),
        Some(KeyRenewal(renewal)) => format!("{entity}:{id}:{renewal}"),
    }
}

/// A request that changes `entity`, sent with `idempotency_key` on every attempt.
pub(crate) fn mutation(
    op: Operation,
    method: Method,
    url: Url,
    idempotency_key: &str,
    body: &impl Serialize,
    entity: Entity,
) -> Result<HttpRequest, StiggError> {
    // Neither can fail for ids the domain has parsed; the port has no "bad request" variant,
    // so the unreachable case is reported as an unusable exchange.
    let body = serde_json::to_vec(body)
        .map_err(|e| invalid_response(op, format!("cannot encode the request ({e})")))?;
    let idempotency_key = HeaderValue::from_str(idempotency_key)
        .map_err(|_| invalid_response(op, "the idempotency key is not a valid header value"))?;
    Ok(HttpRequest {
        method,
        url,
        idempotency_key: Some(idempotency_key),
        body: Some(body),
        entity: Some(entity),
    })
}

fn get(url: Url) -> HttpRequest {
    HttpRequest {
        method: Method::GET,
        url,
        idempotency_key: None,
        body: None,
        entity: None,
    }
}
