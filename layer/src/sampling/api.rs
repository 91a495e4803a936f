//! The JSON shapes: X-Ray's `GetSamplingRules` and `SamplingTargets` (as
//! the daemon's proxy relays them) and the SDKs' local rules file. Read on
//! the poller thread, never on a request's.

use std::sync::Arc;

use serde_json::{Value, json};

use super::reservoir::{RuleState, Taken};
use super::rules::{Pattern, Rule};

/// Why a body was not understood.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Malformed(pub(crate) String);

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("*")
}

/// The rules of a `GetSamplingRules` answer, in the order they are tried:
/// by priority, then name, with `Default` last. A rule already known by
/// name keeps its reservoir and counts (`previous`).
pub(crate) fn rules(
    body: &[u8],
    previous: &[&Rule],
) -> Result<(Vec<Rule>, Option<String>), Malformed> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| Malformed(format!("not JSON: {e}")))?;
    let records = root["SamplingRuleRecords"]
        .as_array()
        .ok_or_else(|| Malformed("no SamplingRuleRecords".into()))?;
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        let r = &record["SamplingRule"];
        // Version 1 is the only one an SDK may apply.
        if r["Version"].as_u64() != Some(1) {
            continue;
        }
        let Some(name) = r["RuleName"].as_str() else {
            continue;
        };
        let fixed_rate = r["FixedRate"].as_f64().unwrap_or(0.0);
        let state = match previous.iter().find(|p| &*p.name == name) {
            Some(p) => {
                p.state.set_rate(fixed_rate);
                p.state.clone()
            }
            None => Arc::new(RuleState::centralized(fixed_rate)),
        };
        let attributes = r["Attributes"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str().into(), Pattern::new(v.as_str().unwrap_or("*"))))
            .collect();
        out.push(Rule {
            name: name.into(),
            priority: r["Priority"].as_i64().unwrap_or(i64::MAX),
            service_name: Pattern::new(text(r, "ServiceName")),
            service_type: Pattern::new(text(r, "ServiceType")),
            host: Pattern::new(text(r, "Host")),
            http_method: Pattern::new(text(r, "HTTPMethod")),
            url_path: Pattern::new(text(r, "URLPath")),
            any_resource: text(r, "ResourceARN") == "*",
            attributes,
            state,
        });
    }
    out.sort_by(|a, b| {
        let default = |r: &Rule| &*r.name == "Default";
        (default(a), a.priority, &a.name).cmp(&(default(b), b.priority, &b.name))
    });
    let next = root["NextToken"].as_str().map(str::to_string);
    Ok((out, next))
}

/// A `SamplingTargets` request: the counts of every rule since the last one.
pub(crate) fn statistics(client_id: &str, now_epoch: f64, counts: &[(&str, Taken)]) -> Vec<u8> {
    let documents: Vec<Value> = counts
        .iter()
        .map(|(rule, c)| {
            json!({
                "RuleName": rule,
                "ClientID": client_id,
                "Timestamp": now_epoch.floor(),
                "RequestCount": c.requests,
                "SampledCount": c.sampled,
                "BorrowCount": c.borrowed,
            })
        })
        .collect();
    json!({ "SamplingStatisticsDocuments": documents })
        .to_string()
        .into_bytes()
}

/// One rule's new target.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Target {
    pub(crate) rule: String,
    pub(crate) fixed_rate: f64,
    /// Requests a second, and until when (Unix seconds).
    pub(crate) quota: Option<(u64, f64)>,
    pub(crate) interval: Option<u64>,
}

/// A `SamplingTargets` answer: the targets, and when the rules last changed.
pub(crate) fn targets(body: &[u8]) -> Result<(Vec<Target>, Option<f64>), Malformed> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| Malformed(format!("not JSON: {e}")))?;
    let docs = root["SamplingTargetDocuments"]
        .as_array()
        .ok_or_else(|| Malformed("no SamplingTargetDocuments".into()))?;
    let targets = docs
        .iter()
        .filter_map(|d| {
            Some(Target {
                rule: d["RuleName"].as_str()?.to_string(),
                fixed_rate: d["FixedRate"].as_f64()?,
                quota: d["ReservoirQuota"]
                    .as_u64()
                    .zip(d["ReservoirQuotaTTL"].as_f64()),
                interval: d["Interval"].as_u64(),
            })
        })
        .collect();
    Ok((targets, root["LastRuleModification"].as_f64()))
}

/// The SDKs' local rules file (versions 1 and 2): rules tried in the order
/// written, then `default`. A rule's `fixed_target` is its own reservoir
/// per second; nothing is borrowed and nothing reported.
pub(crate) fn local(body: &[u8]) -> Result<(Vec<Rule>, Rule), Malformed> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| Malformed(format!("not JSON: {e}")))?;
    let version = root["version"].as_u64();
    if !matches!(version, Some(1 | 2)) {
        return Err(Malformed(format!(
            "version {} (1 or 2 expected)",
            root["version"]
        )));
    }
    let rule = |r: &Value, name: String, priority: i64| -> Result<Rule, Malformed> {
        let per_second = r["fixed_target"]
            .as_u64()
            .ok_or_else(|| Malformed(format!("{name}: no fixed_target")))?;
        let rate = r["rate"]
            .as_f64()
            .ok_or_else(|| Malformed(format!("{name}: no rate")))?;
        // Version 1 named the host `service_name`.
        let host = match version {
            Some(1) => text(r, "service_name"),
            _ => text(r, "host"),
        };
        let service = match version {
            Some(1) => "*",
            _ => text(r, "service_name"),
        };
        Ok(Rule {
            name: name.into(),
            priority,
            service_name: Pattern::new(service),
            service_type: Pattern::Any,
            host: Pattern::new(host),
            http_method: Pattern::new(text(r, "http_method")),
            url_path: Pattern::new(text(r, "url_path")),
            any_resource: true,
            attributes: Box::new([]),
            state: Arc::new(RuleState::local(per_second, rate)),
        })
    };
    let mut rules = Vec::new();
    for (i, r) in root["rules"].as_array().into_iter().flatten().enumerate() {
        let name = r["description"]
            .as_str()
            .map_or_else(|| format!("local rule {}", i + 1), str::to_string);
        rules.push(rule(r, name, i as i64)?);
    }
    let default = rule(&root["default"], "Default".into(), i64::MAX)?;
    Ok((rules, default))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"{"SamplingRuleRecords":[
        {"SamplingRule":{"RuleName":"Default","RuleARN":"arn:aws:xray:us-east-1:1:sampling-rule/Default","ResourceARN":"*","Priority":10000,"FixedRate":0.0,"ReservoirSize":0,"ServiceName":"*","ServiceType":"*","Host":"*","HTTPMethod":"*","URLPath":"*","Version":1,"Attributes":{}},"CreatedAt":0.0,"ModifiedAt":1.0},
        {"SamplingRule":{"RuleName":"orders","ResourceARN":"*","Priority":10,"FixedRate":1.0,"ReservoirSize":0,"ServiceName":"shop","ServiceType":"*","Host":"*","HTTPMethod":"GET","URLPath":"/orders/*","Version":1,"Attributes":{"tier":"gold"}}},
        {"SamplingRule":{"RuleName":"health","ResourceARN":"*","Priority":1,"FixedRate":0.0,"ReservoirSize":0,"ServiceName":"*","ServiceType":"*","Host":"*","HTTPMethod":"*","URLPath":"/health","Version":1,"Attributes":{}}},
        {"SamplingRule":{"RuleName":"future","ResourceARN":"*","Priority":2,"FixedRate":1.0,"ServiceName":"*","ServiceType":"*","Host":"*","HTTPMethod":"*","URLPath":"*","Version":2}}
    ]}"#;

    #[test]
    fn rules_come_in_priority_order_default_last_and_keep_their_state() {
        let (rules, next) = rules(RULES.as_bytes(), &[]).unwrap();
        let names: Vec<&str> = rules.iter().map(|r| &*r.name).collect();
        assert_eq!(names, ["health", "orders", "Default"], "version 2 skipped");
        assert_eq!(next, None);
        assert_eq!(rules[1].http_method, Pattern::Exact("get".into()));
        assert_eq!(rules[1].attributes.len(), 1);
        let request = |attributes| super::super::Request {
            service: "shop",
            service_type: "",
            host: "h",
            method: "GET",
            path: "/orders/1",
            attributes,
        };
        assert!(rules[1].matches(&request(&[("tier", "gold")])));
        assert!(!rules[1].matches(&request(&[("tier", "bronze")])));
        assert!(
            !rules[1].matches(&request(&[])),
            "a rule's attributes must all be there"
        );
        rules[1].state.decide(1, || 0);
        let known: Vec<&Rule> = rules.iter().collect();
        let (again, _) = super::rules(RULES.as_bytes(), &known).unwrap();
        assert!(Arc::ptr_eq(&again[1].state, &rules[1].state));
        assert_eq!(again[1].state.take_counts().requests, 1);
        assert!(super::rules(b"{}", &[]).is_err());
        assert!(super::rules(b"<html>", &[]).is_err());
    }

    #[test]
    fn targets_and_statistics_have_the_api_shapes() {
        let body = br#"{"SamplingTargetDocuments":[{"RuleName":"orders","FixedRate":0.5,"ReservoirQuota":3,"ReservoirQuotaTTL":1700000100.0,"Interval":10},{"RuleName":"health","FixedRate":0.0}],"LastRuleModification":1700000000.0,"UnprocessedStatistics":[]}"#;
        let (t, modified) = targets(body).unwrap();
        assert_eq!(modified, Some(1_700_000_000.0));
        assert_eq!(t[0].quota, Some((3, 1_700_000_100.0)));
        assert_eq!(t[1].quota, None);
        let taken = Taken {
            requests: 5,
            sampled: 2,
            borrowed: 1,
        };
        let stats: Value = serde_json::from_slice(&statistics(
            "0123456789abcdef01234567",
            17.5,
            &[("orders", taken)],
        ))
        .unwrap();
        let d = &stats["SamplingStatisticsDocuments"][0];
        assert_eq!(d["RuleName"], "orders");
        assert_eq!(d["ClientID"], "0123456789abcdef01234567");
        assert_eq!(d["Timestamp"], 17.0);
        assert_eq!(
            (
                d["RequestCount"].as_u64(),
                d["SampledCount"].as_u64(),
                d["BorrowCount"].as_u64()
            ),
            (Some(5), Some(2), Some(1))
        );
    }

    #[test]
    fn local_rules_versions_one_and_two() {
        let v2 = br#"{"version":2,"rules":[{"description":"Player moves.","host":"*","http_method":"*","url_path":"/api/move/*","fixed_target":0,"rate":0.05}],"default":{"fixed_target":1,"rate":0.1}}"#;
        let (rules, default) = local(v2).unwrap();
        assert_eq!(&*rules[0].name, "Player moves.");
        assert!(rules[0].url_path.matches_any_case("/api/move/up"));
        assert!((default.state.fixed_rate() - 0.1).abs() < 1e-12);
        let v1 = br#"{"version":1,"rules":[{"service_name":"api.example.com","http_method":"GET","url_path":"*","fixed_target":2,"rate":1}],"default":{"fixed_target":1,"rate":0}}"#;
        let (rules, _) = local(v1).unwrap();
        assert!(rules[0].host.matches_any_case("API.example.com"));
        assert!(local(br#"{"version":3,"default":{"fixed_target":1,"rate":0}}"#).is_err());
        assert!(
            local(br#"{"version":2,"rules":[]}"#).is_err(),
            "a default is required"
        );
    }
}
