//! [`HttpStiggGateway`]: the domain's `StiggGateway` port over Stigg's REST API v1.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use onboarding_domain::ports::{
    CallContext, CustomerProvisioning, KeyRenewal, StiggCustomer, StiggError, StiggGateway,
    StiggSubscription, SubscriptionProvisioning,
};
use reqwest::header::HeaderValue;
use reqwest::{Method, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::{Answer, BuildFailure, HttpRequest, StiggClient};
use crate::config::shown_url;
use crate::error::{clean, invalid_response};
use crate::observer::{CallObserver, NoopObserver};
use crate::retry::{FullJitter, Jitter, Sleeper, TokioSleeper};
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

impl From<BuildFailure> for GatewayBuildError {
    fn from(failure: BuildFailure) -> Self {
        match failure {
            BuildFailure::Config(message) => Self::InvalidConfig(message),
            BuildFailure::Http(error) => Self::HttpClient(error),
        }
    }
}

/// The Stigg adapter. Clones are cheap and share the HTTP connection pool and the rate-limit
/// buckets, so one instance should serve the whole process (API and batch jobs alike).
#[derive(Clone)]
pub struct HttpStiggGateway {
    client: Arc<StiggClient>,
    base_url: Arc<Url>,
}

/// Builds an [`HttpStiggGateway`] with replaced parts (sleeper, jitter, observer); the
/// defaults are the real ones.
pub struct HttpStiggGatewayBuilder {
    config: StiggConfig,
    sleeper: Arc<dyn Sleeper>,
    jitter: Arc<dyn Jitter>,
    observer: Arc<dyn CallObserver>,
}

impl HttpStiggGatewayBuilder {
    /// How the gateway waits (backoff and rate-limit waits). Default: Tokio's timer.
    pub fn sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// Where backoff randomness comes from. Default: uniform in `[0, ceiling]` (full jitter).
    pub fn jitter(mut self, jitter: Arc<dyn Jitter>) -> Self {
        self.jitter = jitter;
        self
    }

    /// Who hears about call outcomes (for metrics). Default: nobody.
    pub fn observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = observer;
        self
    }

    pub fn build(self) -> Result<HttpStiggGateway, GatewayBuildError> {
        let base_url = parse_base_url(&self.config.base_url)?;
        let client = StiggClient::new(self.config, self.sleeper, self.jitter, self.observer)?;
        Ok(HttpStiggGateway {
            client: Arc::new(client),
            base_url: Arc::new(base_url),
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

fn parse_base_url(raw: &str) -> Result<Url, GatewayBuildError> {
    let invalid = |why: &str| {
        GatewayBuildError::InvalidConfig(format!("base URL '{}' {why}", shown_url(raw)))
    };
    let url = Url::parse(raw.trim()).map_err(|_| invalid("is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("must use http or https"));
    }
    if url.cannot_be_a_base() || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "must be a plain http(s) URL without query or fragment",
        ));
    }
    Ok(url)
}

impl HttpStiggGateway {
    /// A gateway with the real sleeper, jitter and no observer.
    pub fn new(config: StiggConfig) -> Result<Self, GatewayBuildError> {
        Self::builder(config).build()
    }

    pub fn builder(config: StiggConfig) -> HttpStiggGatewayBuilder {
        HttpStiggGatewayBuilder {
            config,
            sleeper: Arc::new(TokioSleeper),
            jitter: Arc::new(FullJitter),
            observer: Arc::new(NoopObserver),
        }
    }

    /// `{base}/api/v1/{segments...}`, each segment percent-encoded.
    fn endpoint(&self, segments: &[&str]) -> Url {
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
        self.client
            .call(op, &request, ctx, |answer| {
                let data: CustomerData = self.success_data(op, &answer)?;
                same_customer(&data, customer)?;
                Ok(StiggCustomer { id: id.to_owned() })
            })
            .await
    }

    async fn read_back_subscription(
        &self,
        subscription: &SubscriptionProvisioning,
        ctx: &CallContext,
    ) -> Result<StiggSubscription, StiggError> {
        let op = Operation::ReadSubscription;
        let id = subscription.subscription_id.as_str();
        tracing::info!(
            correlation_id = %ctx.correlation_id,
            subscription_id = id,
            "Stigg subscription exists already; reading it back"
        );
        let request = get(self.endpoint(&["subscriptions", id]));
        self.client
            .call(op, &request, ctx, |answer| {
                let data: SubscriptionData = self.success_data(op, &answer)?;
                same_subscription(&data, subscription)?;
                Ok(StiggSubscription { id: id.to_owned() })
            })
            .await
    }

    /// `data` of a 2xx answer; any other status becomes its error.
    fn success_data<T: DeserializeOwned>(
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

/// What a create answered.
enum Created<T> {
    /// A 2xx answer that shows what was asked.
    New(T),
    /// 409 (something with this id exists), or a 2xx answer that does not show the data it
    /// stands for: read it back to see if it is ours.
    Exists,
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
        let request = post(
            op,
            self.endpoint(&["customers"]),
            &idempotency_key("customer", ours, customer.renewal.as_ref()),
            &CustomerRequest::from(customer),
        )?;
        let created = self
            .client
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
        let request = post(
            op,
            self.endpoint(&["subscriptions"]),
            &idempotency_key("subscription", ours, subscription.renewal.as_ref()),
            &SubscriptionRequest::from(subscription),
        )?;
        let created = self
            .client
            .call(op, &request, ctx, |answer| match answer.status.as_u16() {
                200..=299 => {
                    let data: SubscriptionProvisionData = self.success_data(op, &answer)?;
                    subscription_created(op, data, subscription)
                }
                409 => Ok(Created::Exists),
                _ => Err(self.client.error_for(op, &answer)),
            })
            .await?;
        match created {
            Created::New(subscription) => Ok(subscription),
            Created::Exists => self.read_back_subscription(subscription, ctx).await,
        }
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

fn post(
    op: Operation,
    url: Url,
    idempotency_key: &str,
    body: &impl Serialize,
) -> Result<HttpRequest, StiggError> {
    // Neither can fail for ids the domain has parsed; the port has no "bad request" variant,
    // so the unreachable case is reported as an unusable exchange.
    let body = serde_json::to_vec(body)
        .map_err(|e| invalid_response(op, format!("cannot encode the request ({e})")))?;
    let idempotency_key = HeaderValue::from_str(idempotency_key)
        .map_err(|_| invalid_response(op, "the idempotency key is not a valid header value"))?;
    Ok(HttpRequest {
        method: Method::POST,
        url,
        idempotency_key: Some(idempotency_key),
        body: Some(body),
    })
}

fn get(url: Url) -> HttpRequest {
    HttpRequest {
        method: Method::GET,
        url,
        idempotency_key: None,
        body: None,
    }
}

/// A 2xx answer counts only when it shows the customer that was asked for: Stigg replays
/// the first answer to a repeated idempotency key for 24 h, and that answer may describe an
/// earlier request's customer. The id is Stigg's when it tells it, else ours. An answer
/// without the customer's data (an empty body) is checked by reading the customer back; a
/// body that is not JSON is refused.
fn customer_created(
    op: Operation,
    body: &[u8],
    wanted: &CustomerProvisioning,
) -> Result<Created<StiggCustomer>, StiggError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Created::Exists);
    }
    #[derive(serde::Deserialize)]
    struct MaybeEnvelope {
        data: Option<CustomerData>,
    }
    let parsed: MaybeEnvelope =
        serde_json::from_slice(body).map_err(|e| unexpected_json(op, &e))?;
    match parsed.data {
        Some(data) if data.billing_id.is_some() => {
            same_customer(&data, wanted)?;
            Ok(Created::New(StiggCustomer {
                id: data
                    .id
                    .unwrap_or_else(|| wanted.customer_id.as_str().to_owned()),
            }))
        }
        _ => Ok(Created::Exists),
    }
}

/// As for customers, a 2xx answer counts only when the subscription it shows has the
/// customer and plan that were asked for; one that shows none is read back.
fn subscription_created(
    op: Operation,
    data: SubscriptionProvisionData,
    wanted: &SubscriptionProvisioning,
) -> Result<Created<StiggSubscription>, StiggError> {
    let id = data
        .id
        .unwrap_or_else(|| wanted.subscription_id.as_str().to_owned());
    match data.status.as_deref() {
        Some("SUCCESS") => match data.subscription {
            Some(shown) => {
                same_subscription(&shown, wanted)?;
                Ok(Created::New(StiggSubscription { id }))
            }
            None => Ok(Created::Exists),
        },
        Some("PAYMENT_REQUIRED") => Err(StiggError::PaymentRequired(id)),
        Some(other) => Err(invalid_response(
            op,
            format!("unknown status '{}'", clean(other, 64, "")),
        )),
        None => Err(invalid_response(op, "the answer has no status")),
    }
}

fn unexpected_json(op: Operation, error: &serde_json::Error) -> StiggError {
    // serde's message may quote the body; keep it short.
    let why = clean(&error.to_string(), 120, "");
    invalid_response(op, format!("body is not the expected JSON ({why})"))
}

/// The customer Stigg holds is the one asked for: same billing id.
fn same_customer(data: &CustomerData, wanted: &CustomerProvisioning) -> Result<(), StiggError> {
    let expected = wanted.billing_id.as_str();
    if data.billing_id.as_deref() == Some(expected) {
        return Ok(());
    }
    Err(StiggError::Conflict {
        entity: "customer",
        id: wanted.customer_id.as_str().to_owned(),
        difference: difference("billingId", data.billing_id.as_deref(), expected),
    })
}

/// The subscription Stigg holds is the one asked for: same customer, plan and (when Stigg
/// tells it) billing period.
fn same_subscription(
    data: &SubscriptionData,
    wanted: &SubscriptionProvisioning,
) -> Result<(), StiggError> {
    let mut differences = Vec::new();
    let customer_id = wanted.customer_id.as_str();
    if data.customer_id.as_deref() != Some(customer_id) {
        differences.push(difference(
            "customerId",
            data.customer_id.as_deref(),
            customer_id,
        ));
    }
    let plan_id = wanted.stigg_plan_id.as_str();
    if data.plan_id.as_deref() != Some(plan_id) {
        differences.push(difference("planId", data.plan_id.as_deref(), plan_id));
    }
    // Only compared when Stigg tells it: its subscription shape may omit it.
    let period = wanted.billing_period.as_stigg();
    if let Some(actual) = data.billing_period.as_deref()
        && actual != period
    {
        differences.push(difference("billingPeriod", Some(actual), period));
    }
    if differences.is_empty() {
        return Ok(());
    }
    Err(StiggError::Conflict {
        entity: "subscription",
        id: wanted.subscription_id.as_str().to_owned(),
        difference: differences.join("; "),
    })
}

/// e.g. "billingId is 'cus_X', expected 'cus_Y'".
fn difference(field: &str, actual: Option<&str>, expected: &str) -> String {
    match actual {
        Some(actual) => format!(
            "{field} is '{}', expected '{expected}'",
            clean(actual, 100, "")
        ),
        None => format!("{field} is missing, expected '{expected}'"),
    }
}
