//! The rules the sampling benchmark and its callgrind example decide with.

use tracing_xray::sampling_testing::Rules;

fn rule(name: &str, priority: u32, service: &str, method: &str, host: &str, path: &str) -> String {
    format!(
        r#"{{"SamplingRule":{{"RuleName":"{name}","ResourceARN":"*","Priority":{priority},"FixedRate":0.05,"ReservoirSize":1,"ServiceName":"{service}","ServiceType":"*","Host":"{host}","HTTPMethod":"{method}","URLPath":"{path}","Version":1,"Attributes":{{}}}}}}"#
    )
}

/// Ten rules; a `GET /api/orders/42` of service `shop` on `api.example.com`
/// passes the first nine's earlier tests and fails a later one, and is
/// taken by the tenth.
pub fn ten_rules() -> Rules {
    let rules = [
        rule("health", 1, "*", "*", "*", "/health"),
        rule("static", 2, "*", "GET", "*", "/static/*"),
        rule("admin", 3, "shop", "*", "*", "/admin/*"),
        rule("carts", 4, "shop", "*", "*", "/api/carts/*"),
        rule("search", 5, "shop", "GET", "*", "/api/search*"),
        rule("internal", 6, "*", "*", "*.internal", "*"),
        rule("posts", 7, "shop", "POST", "*", "/api/orders/*"),
        rule("legacy", 8, "shop-v1", "*", "*", "*"),
        rule("users", 9, "shop", "GET", "*", "/api/users/?*"),
        rule("orders", 10, "shop", "GET", "api.*.com", "/api/orders/*"),
        rule("Default", 10000, "*", "*", "*", "*"),
    ];
    let body = format!(r#"{{"SamplingRuleRecords":[{}]}}"#, rules.join(","));
    let rules = Rules::from_api(body.as_bytes()).expect("rules parse");
    assert_eq!(
        rules.rule("shop", "GET", "api.example.com", "/api/orders/42"),
        "orders"
    );
    rules
}
