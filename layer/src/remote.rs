//! Calls to other services, told by OpenTelemetry's semantic-convention
//! fields: an HTTP client span becomes a `remote` subsegment named after the
//! host it calls, a database span one with an `sql` block named
//! `database@host` — the nodes the official SDKs and the OpenTelemetry
//! X-Ray exporter put on the service map.
//!
//! The fields are noted while a span's fields are visited (into fixed
//! buffers; nothing is allocated) and acted on once all are seen.

use arrayvec::ArrayString;
use xray_emitter::{Batch, Body, Key, Record, SegmentId, SqlField, Value};

/// What a span's fields said about a remote call.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Remote {
    /// `otel.kind` / `span.kind` is `client`.
    client: bool,
    /// The span looks like an HTTP request (method or URL given).
    http: bool,
    /// `xray.name` / `otel.name` named it: that name stays.
    named: bool,
    db_system: ArrayString<32>,
    peer_service: ArrayString<128>,
    server_address: ArrayString<128>,
    server_port: Option<u64>,
    url_host: ArrayString<128>,
    database: ArrayString<128>,
}

fn put<const N: usize>(to: &mut ArrayString<N>, value: &str) {
    to.clear();
    let mut end = value.len().min(N);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    to.push_str(&value[..end]);
}

/// The host of an absolute URL, without user info or port.
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    }
}

/// X-Ray's name for a database engine, from OpenTelemetry's `db.system`.
fn database_type(system: &str) -> &str {
    const NAMES: &[(&str, &str)] = &[
        ("postgresql", "PostgreSQL"),
        ("mysql", "MySQL"),
        ("mariadb", "MariaDB"),
        ("mssql", "Microsoft SQL Server"),
        ("microsoft.sql_server", "Microsoft SQL Server"),
        ("oracle", "Oracle"),
        ("oracle.db", "Oracle"),
        ("sqlite", "SQLite"),
        ("cockroachdb", "CockroachDB"),
        ("redis", "Redis"),
        ("mongodb", "MongoDB"),
        ("cassandra", "Cassandra"),
        ("h2", "H2"),
        ("db2", "Db2"),
        ("ibm.db2", "Db2"),
        ("aurora", "Aurora"),
    ];
    NAMES
        .iter()
        .find(|(otel, _)| otel.eq_ignore_ascii_case(system))
        .map_or(system, |(_, xray)| xray)
}

impl Remote {
    /// Whether field `name` says anything of a remote call (what
    /// [`Remote::note_str`] and [`Remote::note_u64`] look at).
    pub(crate) fn notes(name: &str) -> bool {
        let mut r = Remote::default();
        let kept = r.note_str(name, "client").is_some();
        r.note_u64(name, 1);
        kept || r != Remote::default()
    }

    /// Notes a string field; returns the record to push for it, if it is
    /// one that goes somewhere of its own (`sql`), else `None` (the field
    /// is recorded as usual too).
    pub(crate) fn note_str(&mut self, name: &str, value: &str) -> Option<Key> {
        // Only these initials can be one of ours: most fields leave here.
        if !matches!(
            name.as_bytes().first(),
            Some(b'o' | b's' | b'h' | b'u' | b'p' | b'd' | b'x' | b'n')
        ) {
            return None;
        }
        match name {
            "otel.kind" | "span.kind" => {
                self.client = value.trim_matches('"').eq_ignore_ascii_case("client");
            }
            "xray.name" | "otel.name" => self.named = true,
            "http.request.method" | "http.method" => self.http = true,
            "url.full" | "http.url" => {
                self.http = true;
                put(&mut self.url_host, url_host(value));
            }
            "peer.service" => put(&mut self.peer_service, value),
            "server.address" | "net.peer.name" => put(&mut self.server_address, value),
            "server.port" | "net.peer.port" => self.server_port = value.trim().parse().ok(),
            "db.system" | "db.system.name" => put(&mut self.db_system, value),
            "db.namespace" | "db.name" => put(&mut self.database, value),
            "db.query.text" | "db.statement" => return Some(Key::Sql(SqlField::SanitizedQuery)),
            "db.user" => return Some(Key::Sql(SqlField::User)),
            _ => {}
        }
        None
    }

    /// Notes an integer field.
    pub(crate) fn note_u64(&mut self, name: &str, value: u64) {
        if matches!(name, "server.port" | "net.peer.port") {
            self.server_port = Some(value);
        }
    }

    /// After every field: marks the span remote, names it, and writes its
    /// `sql` block, if the fields called for it.
    pub(crate) fn finish(&self, b: &mut Batch<'_>, span: SegmentId, span_name: &'static str) {
        let database = !self.db_system.is_empty();
        let http = self.client
            && (self.http || !self.peer_service.is_empty() || !self.server_address.is_empty());
        if !database && !http {
            return;
        }
        b.push(Record::new(
            span,
            Body::Attr {
                key: Key::Remote,
                value: Value::Bool(true),
            },
        ));
        let host = [&self.peer_service, &self.server_address, &self.url_host]
            .into_iter()
            .find(|h| !h.is_empty())
            .map(|h| h.as_str());
        let mut name = ArrayString::<256>::new();
        if database {
            b.push_str(
                span,
                Key::Sql(SqlField::DatabaseType),
                database_type(&self.db_system),
            );
            // host:port/database, from parts that never hold credentials.
            let mut url = ArrayString::<300>::new();
            let _ = url.try_push_str(&self.server_address);
            if let Some(port) = self.server_port {
                let mut digits = itoa::Buffer::new();
                let _ = url.try_push(':');
                let _ = url.try_push_str(digits.format(port));
            }
            if !self.database.is_empty() {
                let _ = url.try_push('/');
                let _ = url.try_push_str(&self.database);
            }
            if !url.is_empty() {
                b.push_str(span, Key::Sql(SqlField::Url), &url);
            }
            let db = if self.database.is_empty() {
                database_type(&self.db_system)
            } else {
                &self.database
            };
            let _ = name.try_push_str(db);
            if !self.server_address.is_empty() {
                let _ = name.try_push('@');
                let _ = name.try_push_str(&self.server_address);
            }
        } else if let Some(host) = host {
            let _ = name.try_push_str(host);
        }
        if !self.named && !name.is_empty() {
            b.push_str(span, Key::Name, &name);
            b.push_str(span, Key::Metadata("span_name"), span_name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_urls() {
        assert_eq!(
            url_host("https://api.partner.example/v1/orders/7"),
            "api.partner.example"
        );
        assert_eq!(url_host("http://user:pw@db.example:5432/x"), "db.example");
        assert_eq!(url_host("https://[::1]:8443/"), "::1");
        assert_eq!(url_host("api.example.com?x"), "api.example.com");
    }

    #[test]
    fn database_types_are_x_rays_names() {
        assert_eq!(database_type("postgresql"), "PostgreSQL");
        assert_eq!(database_type("MySQL"), "MySQL");
        assert_eq!(database_type("somethingdb"), "somethingdb");
    }
}
