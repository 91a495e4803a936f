//! Configuration: from the environment the X-Ray SDKs read, or explicit.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use xray_emitter::testing::Target;
use xray_emitter::testing::Transport;
use xray_emitter::{DaemonAddress, Emitter, EmitterBuilder, StartError};

use crate::format::Format;
use crate::otlp_http::Endpoint;
use crate::subscriber::XRaySubscriber;

/// What to do about spans that belong to no trace, such as spans made while
/// a Lambda function initializes (`AWS_XRAY_CONTEXT_MISSING`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContextMissing {
    /// Count them and print one warning to stderr (the default, and Lambda's setting).
    LogError,
    /// Count them silently.
    IgnoreError,
}

/// Configures an [`XRaySubscriber`]. [`Builder::from_env`] starts from the
/// environment; every setter overrides it.
#[derive(Clone, Debug)]
pub struct Builder {
    /// Where to send; `None`: `AWS_XRAY_DAEMON_ADDRESS` when built.
    pub(crate) target: Option<Target>,
    pub(crate) service_name: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) flush_timeout: Duration,
    pub(crate) queue_capacity: usize,
    pub(crate) open_spans: usize,
    pub(crate) lambda: bool,
    pub(crate) concurrent: bool,
    pub(crate) context_missing: ContextMissing,
    pub(crate) sampling_rate: f64,
    /// The daemon's TCP address (`host:port`), where sampling rules are
    /// fetched; `None`: from `AWS_XRAY_DAEMON_ADDRESS` when built.
    pub(crate) sampling_address: Option<String>,
    /// `None`: on outside Lambda when a daemon address is known.
    pub(crate) centralized_sampling: Option<bool>,
    pub(crate) sampling_rules: Option<PathBuf>,
    pub(crate) report_errors: bool,
    pub(crate) service_version: Option<String>,
    pub(crate) format: Format,
    /// OTLP/HTTP endpoint; `None`: from the OTel variables when built.
    pub(crate) otlp_endpoint: Option<String>,
    pub(crate) otlp_unsampled: bool,
    pub(crate) ec2_metadata: bool,
    pub(crate) metadata_timeout: Duration,
}

/// A set, non-blank environment variable.
pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            target: None,
            service_name: None,
            region: None,
            flush_timeout: Duration::from_millis(20),
            queue_capacity: 16 * 1024,
            open_spans: 1024,
            lambda: false,
            concurrent: false,
            context_missing: ContextMissing::LogError,
            sampling_rate: 0.05,
            sampling_address: None,
            centralized_sampling: None,
            sampling_rules: None,
            report_errors: true,
            service_version: None,
            format: Format::XRay,
            otlp_endpoint: None,
            otlp_unsampled: false,
            ec2_metadata: false,
            metadata_timeout: Duration::from_secs(1),
        }
    }
}

impl Builder {
    /// Settings from the environment: `AWS_XRAY_TRACING_NAME` (the segment
    /// name outside Lambda), `AWS_XRAY_CONTEXT_MISSING`, `AWS_REGION` (the
    /// region of SDK calls, until the interceptor reports the client's own),
    /// Lambda detection (`AWS_LAMBDA_FUNCTION_NAME` or `LAMBDA_TASK_ROOT`) and
    /// `AWS_LAMBDA_MAX_CONCURRENCY`. `AWS_XRAY_DAEMON_ADDRESS` is read when
    /// the subscriber is built, unless an address was set here.
    pub fn from_env() -> Self {
        let context_missing = match env("AWS_XRAY_CONTEXT_MISSING").as_deref() {
            Some(v) if v.eq_ignore_ascii_case("IGNORE_ERROR") => ContextMissing::IgnoreError,
            _ => ContextMissing::LogError,
        };
        let concurrency =
            env("AWS_LAMBDA_MAX_CONCURRENCY").and_then(|v| v.trim().parse::<u32>().ok());
        Builder {
            service_name: env("AWS_XRAY_TRACING_NAME"),
            region: env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")),
            lambda: env("AWS_LAMBDA_FUNCTION_NAME").is_some() || env("LAMBDA_TASK_ROOT").is_some(),
            concurrent: concurrency.is_some_and(|n| n > 1),
            context_missing,
            sampling_rules: env("TRACING_XRAY_SAMPLING_RULES").map(PathBuf::from),
            service_version: crate::identity::version_from_env(),
            format: Format::from_env(),
            otlp_unsampled: [
                "OTEL_AWS_APPLICATION_SIGNALS_ENABLED",
                "OTEL_AWS_APP_SIGNALS_ENABLED",
            ]
            .iter()
            .any(|v| env(v).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))),
            ec2_metadata: env("TRACING_XRAY_EC2_METADATA")
                .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
            ..Builder::default()
        }
    }

    /// What is sent: X-Ray documents (the default) or OTLP over UDP to the
    /// same daemon address ([`Format`]). From the environment:
    /// `TRACING_XRAY_FORMAT=otlp`.
    #[must_use]
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// With [`Format::Otlp`]: posts OTLP/HTTP (protobuf) to this
    /// `http://` URL (a collector's `/v1/traces`) instead of sending UDP to
    /// the daemon. Default: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`; without either, OTLP
    /// goes over UDP to the daemon address.
    #[must_use]
    pub fn otlp_endpoint(mut self, url: impl Into<String>) -> Self {
        self.otlp_endpoint = Some(url.into());
        self
    }

    /// With [`Format::Otlp`] over UDP: spans of unsampled traces are sent
    /// too, in `T1U` datagrams (what CloudWatch Application Signals reads),
    /// as AWS's OpenTelemetry distribution does when Application Signals is
    /// on. Off by default; from the environment:
    /// `OTEL_AWS_APPLICATION_SIGNALS_ENABLED=true`. Such spans cost the
    /// caller what a sampled span costs.
    #[must_use]
    pub fn otlp_unsampled(mut self, on: bool) -> Self {
        self.otlp_unsampled = on;
        self
    }

    /// Whether spans of unsampled traces are recorded (for `T1U`).
    pub(crate) fn records_unsampled(&self) -> bool {
        self.otlp_unsampled && self.format == Format::Otlp && self.http_endpoint().is_none()
    }

    /// `service.version` of every segment (outside Lambda): the version of
    /// the program. From the environment: `service.version` in
    /// `OTEL_RESOURCE_ATTRIBUTES`, as OpenTelemetry reads it.
    #[must_use]
    pub fn service_version(mut self, version: impl Into<String>) -> Self {
        self.service_version = Some(version.into());
        self
    }

    /// Asks EC2's instance metadata service (IMDSv2) at build for the
    /// instance id, zone, type and image, recorded as `aws.ec2` with origin
    /// `AWS::EC2::Instance` (outside Lambda). Off by default: off EC2 the
    /// question costs up to [`metadata_timeout`](Builder::metadata_timeout).
    /// From the environment: `TRACING_XRAY_EC2_METADATA=true`; the endpoint
    /// follows `AWS_EC2_METADATA_SERVICE_ENDPOINT` as for the AWS SDKs.
    #[must_use]
    pub fn ec2_metadata(mut self, on: bool) -> Self {
        self.ec2_metadata = on;
        self
    }

    /// The longest the build waits for each metadata endpoint (ECS's task
    /// metadata, EC2's IMDS); 1 s by default. An endpoint that does not
    /// answer in time is left out, and the build goes on.
    #[must_use]
    pub fn metadata_timeout(mut self, timeout: Duration) -> Self {
        self.metadata_timeout = timeout;
        self
    }

    /// Sends to this address instead of `AWS_XRAY_DAEMON_ADDRESS`.
    #[must_use]
    pub fn daemon(mut self, address: SocketAddr) -> Self {
        self.target = Some(Target::Addr(address));
        self.sampling_address = Some(address.to_string());
        self
    }

    /// Sends to this daemon address (host names are resolved on the sender thread).
    #[must_use]
    pub fn daemon_address(mut self, address: DaemonAddress) -> Self {
        self.sampling_address = Some(address.tcp.to_string());
        self.target = Some(Target::Host(address.udp));
        self
    }

    /// The segment name outside Lambda (default: `AWS_XRAY_TRACING_NAME`, else the root span's name).
    #[must_use]
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// The region recorded on SDK calls when nothing more precise is known.
    #[must_use]
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The longest a Lambda invocation's end waits for its documents to reach
    /// the socket (default 20 ms; typically it takes tens of microseconds).
    #[must_use]
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// Records each producing thread's ring holds (default 16,384: 1 MiB per
    /// thread that makes spans); a full ring drops and counts.
    #[must_use]
    pub fn queue_capacity(mut self, records: usize) -> Self {
        self.queue_capacity = records;
        self
    }

    /// Sampled spans open at once (default 1,024): past this the sender
    /// reports the oldest in progress. The layer follows four times as many
    /// spans of every kind (unsampled ones and the SDK's inner spans too);
    /// past that a span is not followed, and counted if it would have been sent.
    #[must_use]
    pub fn open_spans(mut self, spans: usize) -> Self {
        self.open_spans = spans;
        self
    }

    /// Whether this is a Lambda function (default: detected from the environment).
    /// In Lambda, traces come only from invocations and nothing is sampled here.
    #[must_use]
    pub fn lambda(mut self, lambda: bool) -> Self {
        self.lambda = lambda;
        self
    }

    /// What to do about spans outside any trace.
    #[must_use]
    pub fn context_missing(mut self, policy: ContextMissing) -> Self {
        self.context_missing = policy;
        self
    }

    /// The default rule's rate outside Lambda: the share of requests
    /// sampled after the first of each second when neither X-Ray's rules
    /// nor local ones apply (default 0.05).
    #[must_use]
    pub fn sampling_rate(mut self, rate: f64) -> Self {
        self.sampling_rate = rate;
        self
    }

    /// Whether the account's sampling rules (set in the X-Ray console) decide
    /// which new traces are recorded, outside Lambda: fetched through the
    /// daemon's TCP address (`AWS_XRAY_DAEMON_ADDRESS`'s `tcp:` part, or
    /// the one address it names) at start and every five minutes, with
    /// quotas every ten seconds. On by default outside Lambda whenever a
    /// daemon address is known; in Lambda the function's segment decides.
    #[must_use]
    pub fn centralized_sampling(mut self, on: bool) -> Self {
        self.centralized_sampling = Some(on);
        self
    }

    /// Local sampling rules, in the X-Ray SDKs' file format (version 2, or
    /// 1): used until centralized rules arrive, or instead of them when
    /// centralized sampling is off or the daemon cannot be reached. Default:
    /// the file `TRACING_XRAY_SAMPLING_RULES` names, if any.
    #[must_use]
    pub fn sampling_rules_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.sampling_rules = Some(path.into());
        self
    }

    /// Whether X-Ray's rules would decide, given a daemon (in Lambda the
    /// function segment decides).
    fn centralized(&self) -> bool {
        !self.lambda && self.centralized_sampling != Some(false)
    }

    /// The sampling setup this builder describes, `address` being the
    /// daemon's TCP address if known.
    pub(crate) fn sampling(&self, address: Option<String>) -> crate::sampling::Config {
        crate::sampling::Config {
            rate: self.sampling_rate,
            centralized: address.filter(|_| self.centralized()),
            local_rules: self.sampling_rules.clone(),
        }
    }

    /// Whether send errors are printed to stderr, at most once a minute (default on).
    #[must_use]
    pub fn report_errors(mut self, on: bool) -> Self {
        self.report_errors = on;
        self
    }

    fn emitter(&self) -> EmitterBuilder {
        let resource = || {
            crate::format::resource(
                self.service_name.as_deref(),
                self.lambda,
                self.service_version.as_deref(),
            )
        };
        let format = match self.format {
            Format::Otlp if self.http_endpoint().is_some() => {
                xray_emitter::Format::OtlpRaw(resource())
            }
            Format::Otlp => xray_emitter::Format::OtlpUdp(resource()),
            _ => xray_emitter::Format::XRay,
        };
        Emitter::builder()
            .format(format)
            .queue_capacity(self.queue_capacity)
            .open_spans(self.open_spans)
            .report_errors(self.report_errors)
            .thread_name("tracing-xray")
            .guard_timeout(self.flush_timeout.max(Duration::from_millis(100)))
    }

    /// Starts the sender thread on a transport of the caller's instead of
    /// the daemon's socket (this workspace's tests and benchmarks).
    #[doc(hidden)]
    pub fn build_with<T, F>(self, make_transport: F) -> Result<XRaySubscriber, StartError>
    where
        T: Transport,
        F: FnOnce() -> T + Send + 'static,
    {
        let (emitter, guard) = self.emitter().start_with(make_transport)?;
        let sampling = self.sampling(self.sampling_address.clone());
        Ok(XRaySubscriber::new(self, emitter, Some(guard), sampling))
    }

    /// The OTLP/HTTP endpoint, if OTLP goes over HTTP.
    fn http_endpoint(&self) -> Option<Result<Endpoint, String>> {
        if self.format != Format::Otlp {
            return None;
        }
        match &self.otlp_endpoint {
            Some(url) => Some(Endpoint::parse(url, "/v1/traces").map(Endpoint::with_env_settings)),
            None => Endpoint::from_env(),
        }
    }

    /// OTLP/HTTP: the sender hands requests to the export worker.
    /// The daemon's sampling address is the builder's, else
    /// `AWS_XRAY_DAEMON_ADDRESS` if it is set (no daemon is assumed), read
    /// only when centralized sampling would use it.
    fn build_http(self, endpoint: Endpoint) -> Result<XRaySubscriber, StartError> {
        let from_env = env("AWS_XRAY_DAEMON_ADDRESS").filter(|_| self.centralized());
        let sampling_address = match (&self.sampling_address, from_env) {
            (Some(a), _) => Some(a.clone()),
            (None, Some(_)) => Some(
                DaemonAddress::from_env()
                    .map_err(StartError::Address)?
                    .tcp
                    .to_string(),
            ),
            (None, None) => None,
        };
        // In Lambda a send waits for the post, so a flush covers it.
        let wait = self
            .lambda
            .then_some(self.flush_timeout.max(Duration::from_millis(500)));
        let transport = crate::otlp_http::start(endpoint, wait).map_err(StartError::Spawn)?;
        let (emitter, guard) = self.emitter().start_with(move || transport)?;
        let sampling = self.sampling(sampling_address);
        Ok(XRaySubscriber::new(self, emitter, Some(guard), sampling))
    }

    /// Starts the sender thread and returns the layer.
    pub fn build(self) -> Result<XRaySubscriber, StartError> {
        match self.http_endpoint() {
            Some(Ok(endpoint)) => return self.build_http(endpoint),
            Some(Err(why)) => return Err(StartError::Endpoint(why)),
            None => {}
        }
        let (target, tcp) = match &self.target {
            Some(t) => (t.clone(), self.sampling_address.clone()),
            None => {
                let address = DaemonAddress::from_env().map_err(StartError::Address)?;
                (Target::Host(address.udp), Some(address.tcp.to_string()))
            }
        };
        let (emitter, guard) = self.emitter().target(target).start()?;
        let sampling = self.sampling(tcp);
        Ok(XRaySubscriber::new(self, emitter, Some(guard), sampling))
    }
}
