//! Where the program runs, as the X-Ray SDKs' plugins find it: Elastic
//! Beanstalk (its environment file), EKS (a pod's service account), ECS
//! (the task metadata endpoint) and, when asked for, EC2 (IMDSv2). The most
//! specific one found gives `origin`; each adds its `aws.*` object.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::builder::env;
use crate::local_http;

const BEANSTALK_FILE: &str = "/var/elasticbeanstalk/xray/environment.conf";
const K8S_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
const IMDS: &str = "169.254.169.254:80";

/// Where to look; [`Plugins::from_env`] for the real places.
#[derive(Clone, Debug)]
pub(crate) struct Plugins {
    pub(crate) beanstalk_file: PathBuf,
    /// A Kubernetes pod: its service account token is mounted.
    pub(crate) k8s_token: PathBuf,
    pub(crate) kubernetes: bool,
    /// `ECS_CONTAINER_METADATA_URI_V4` (or the v3 variable).
    pub(crate) ecs_uri: Option<String>,
    /// IMDS `host:port`; `None`: EC2 not asked (it is opt-in).
    pub(crate) ec2: Option<String>,
}

/// What the plugins found.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub(crate) origin: Option<&'static str>,
    pub(crate) aws: Vec<(&'static str, String)>,
}

impl Plugins {
    /// The real places; EC2 only when `ec2` (the endpoint may be set with
    /// `AWS_EC2_METADATA_SERVICE_ENDPOINT`, as for the AWS SDKs).
    pub(crate) fn from_env(ec2: bool) -> Self {
        let imds = env("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .map(|e| with_port(strip_scheme(&e).0))
            .unwrap_or_else(|| IMDS.to_string());
        Plugins {
            beanstalk_file: BEANSTALK_FILE.into(),
            k8s_token: K8S_TOKEN.into(),
            kubernetes: env("KUBERNETES_SERVICE_HOST").is_some(),
            ecs_uri: env("ECS_CONTAINER_METADATA_URI_V4")
                .or_else(|| env("ECS_CONTAINER_METADATA_URI")),
            ec2: ec2.then_some(imds),
        }
    }

    /// Asks each plugin in turn, most specific first; each endpoint is given
    /// up after `timeout`.
    pub(crate) fn detect(&self, timeout: Duration) -> Found {
        let mut found = Found::default();
        let mut add = |origin: &'static str, key: &'static str, value: Option<Value>| {
            if let Some(value) = value {
                found.origin.get_or_insert(origin);
                found.aws.push((key, value.to_string()));
            }
        };
        add(
            "AWS::ElasticBeanstalk::Environment",
            "elastic_beanstalk",
            self.beanstalk(),
        );
        add("AWS::EKS::Container", "eks", self.eks());
        add("AWS::ECS::Container", "ecs", self.ecs(timeout));
        add("AWS::EC2::Instance", "ec2", self.ec2(timeout));
        found
    }

    fn beanstalk(&self) -> Option<Value> {
        let text = std::fs::read_to_string(&self.beanstalk_file).ok()?;
        let conf: Value = serde_json::from_str(&text).ok()?;
        let mut out = Map::new();
        for key in ["environment_name", "version_label", "deployment_id"] {
            if let Some(v) = conf.get(key).filter(|v| !v.is_null()) {
                out.insert(key.into(), v.clone());
            }
        }
        Some(Value::Object(out))
    }

    fn eks(&self) -> Option<Value> {
        if !self.kubernetes || !self.k8s_token.exists() {
            return None;
        }
        let mut out = Map::new();
        if let Some(pod) = hostname() {
            out.insert("pod".into(), pod.into());
        }
        if let Some(id) = container_id() {
            out.insert("container_id".into(), id.into());
        }
        Some(Value::Object(out))
    }

    fn ecs(&self, timeout: Duration) -> Option<Value> {
        let uri = self.ecs_uri.as_deref()?;
        let mut out = Map::new();
        if let Some(name) = hostname() {
            out.insert("container".into(), name.into());
        }
        let (address, path) = strip_scheme(uri);
        let address = with_port(address);
        let answer = local_http::request("GET", &address, path, &[], &[], timeout);
        let container = match answer {
            Ok((200, body)) => serde_json::from_slice::<Value>(&body).ok(),
            _ => None,
        };
        if let Some(c) = container {
            let labels = &c["Labels"];
            let fields = [
                ("container_id", &c["DockerId"]),
                ("container_arn", &c["ContainerARN"]),
                ("task_arn", &labels["com.amazonaws.ecs.task-arn"]),
                (
                    "task_family",
                    &labels["com.amazonaws.ecs.task-definition-family"],
                ),
                ("cluster_arn", &labels["com.amazonaws.ecs.cluster"]),
            ];
            for (key, value) in fields {
                if let Some(s) = value.as_str() {
                    out.insert(key.into(), s.into());
                }
            }
            if let (None, Some(name)) = (out.get("container"), c["Name"].as_str()) {
                out.insert("container".into(), name.into());
            }
        }
        Some(Value::Object(out))
    }

    /// IMDSv2: a session token, then the instance identity document, both
    /// within `timeout`.
    fn ec2(&self, timeout: Duration) -> Option<Value> {
        let address = self.ec2.as_deref()?;
        let deadline = Instant::now() + timeout;
        let left = || deadline.saturating_duration_since(Instant::now());
        let ttl = [("X-aws-ec2-metadata-token-ttl-seconds", "60")];
        let token =
            match local_http::request("PUT", address, "/latest/api/token", &ttl, &[], left()) {
                Ok((200, token)) => String::from_utf8(token).ok()?,
                _ => return None,
            };
        let auth = [("X-aws-ec2-metadata-token", token.trim())];
        let path = "/latest/dynamic/instance-identity/document";
        let doc: Value = match local_http::request("GET", address, path, &auth, &[], left()) {
            Ok((200, body)) => serde_json::from_slice(&body).ok()?,
            _ => return None,
        };
        Some(json!({
            "instance_id": doc["instanceId"],
            "availability_zone": doc["availabilityZone"],
            "instance_size": doc["instanceType"],
            "ami_id": doc["imageId"],
        }))
    }
}

/// `http://host:port/path` → (`host:port`, `/path`).
fn strip_scheme(uri: &str) -> (&str, &str) {
    let rest = uri.strip_prefix("http://").unwrap_or(uri);
    match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    }
}

/// `host` → `host:80`; an address with a port (or a bracketed IPv6 one
/// with a port) as it is.
fn with_port(address: &str) -> String {
    let has_port = match address.rfind(']') {
        Some(end) => address[end..].contains(':'),
        None => address.contains(':'),
    };
    if has_port {
        address.to_string()
    } else {
        format!("{address}:80")
    }
}

fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| env("HOSTNAME"))?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// The container's id: the 64 hex digits ending a line of `/proc/self/cgroup`.
fn container_id() -> Option<String> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    cgroup.lines().find_map(|line| {
        let tail = line
            .trim_end()
            .get(line.trim_end().len().checked_sub(64)?..)?;
        tail.bytes()
            .all(|b| b.is_ascii_hexdigit())
            .then(|| tail.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nothing() -> Plugins {
        Plugins {
            beanstalk_file: "/nonexistent/environment.conf".into(),
            k8s_token: "/nonexistent/token".into(),
            kubernetes: false,
            ecs_uri: None,
            ec2: None,
        }
    }

    #[test]
    fn nothing_found_outside_aws() {
        let found = nothing().detect(Duration::from_millis(100));
        assert!(found.origin.is_none() && found.aws.is_empty());
    }

    #[test]
    fn beanstalk_reads_its_environment_file() {
        let dir = std::env::temp_dir().join(format!("xray-eb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("environment.conf");
        std::fs::write(
            &file,
            r#"{"deployment_id":23,"version_label":"v-7","environment_name":"shop-prod"}"#,
        )
        .unwrap();
        let found = Plugins {
            beanstalk_file: file,
            ..nothing()
        }
        .detect(Duration::from_millis(100));
        assert_eq!(found.origin, Some("AWS::ElasticBeanstalk::Environment"));
        let eb: Value = serde_json::from_str(&found.aws[0].1).unwrap();
        assert_eq!(found.aws[0].0, "elastic_beanstalk");
        assert_eq!(
            eb,
            json!({"deployment_id":23,"version_label":"v-7","environment_name":"shop-prod"})
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn kubernetes_needs_its_token() {
        let dir = std::env::temp_dir().join(format!("xray-k8s-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let token = dir.join("token");
        let without = Plugins {
            kubernetes: true,
            k8s_token: token.clone(),
            ..nothing()
        };
        assert!(without.detect(Duration::from_millis(10)).origin.is_none());
        std::fs::write(&token, "t").unwrap();
        let found = without.detect(Duration::from_millis(10));
        assert_eq!(found.origin, Some("AWS::EKS::Container"));
        let eks: Value = serde_json::from_str(&found.aws[0].1).unwrap();
        assert_eq!(eks["pod"].as_str(), hostname().as_deref());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn uris_split_into_address_and_path() {
        assert_eq!(
            strip_scheme("http://169.254.170.2/v4/abc"),
            ("169.254.170.2", "/v4/abc")
        );
        assert_eq!(
            strip_scheme("http://127.0.0.1:8080"),
            ("127.0.0.1:8080", "/")
        );
        assert_eq!(with_port("169.254.170.2"), "169.254.170.2:80");
        assert_eq!(with_port("[fd00:ec2::254]"), "[fd00:ec2::254]:80");
        assert_eq!(with_port("[fd00:ec2::254]:8080"), "[fd00:ec2::254]:8080");
    }
}
