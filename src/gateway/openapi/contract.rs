//! What the handlers' annotations cannot say, added to the generated
//! document so that it is the contract the API keeps (checked by
//! schemathesis with every check, `scripts/schemathesis`):
//! - an operationId per operation, unique;
//! - every status each operation can answer, with the problem+json schema;
//! - request bodies, required, with the exact rules the handlers apply
//!   (lengths, E.164, credential keys per carrier, limit ranges);
//! - query and header parameters with their bounds (`limit` 1..=500,
//!   cursors and times never empty, `If-Match`, `Idempotency-Key`);
//! - links from each create to the operations on what it made.
//!
//! One table, `OPERATIONS`, holds all of it per (method, path); a test
//! checks it covers every route the document has.

use serde_json::{json, Map, Value};

/// Rust's `char::is_whitespace` as a regex class body: what `Fields` trims.
const WS: &str =
    "\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

/// A required-style text field: 1..=max characters, not blank, no NUL.
fn text(max: u32) -> Value {
    json!({
        "type": "string", "minLength": 1, "maxLength": max,
        "pattern": format!("^[^\\u0000]*[^\\u0000{WS}][^\\u0000]*$"),
    })
}

fn e164() -> Value {
    json!({"type": "string", "pattern": "^\\+[1-9][0-9]{6,14}$",
           "description": "E.164: + then 7 to 15 digits, the first not 0", "example": "+14155550100"})
}

fn uuid() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn limit_value() -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": crate::domain::limits::MAX_LIMIT})
}

fn credentials(keys: &[(&str, Value)]) -> Value {
    credentials_with(keys, &[])
}

/// `optional` keys may be left out; two optional keys come as a pair.
fn credentials_with(keys: &[(&str, Value)], optional: &[(&str, Value)]) -> Value {
    let props: Map<String, Value> = keys
        .iter()
        .chain(optional)
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let required: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
    let mut schema = json!({"type": "object", "properties": props, "required": required, "additionalProperties": false});
    if let [(a, _), (b, _)] = optional {
        schema["dependentRequired"] = json!({ *a: [b], *b: [a] });
    }
    schema
}

fn twilio_credentials() -> Value {
    credentials_with(
        &[
            (
                "account_sid",
                json!({"type": "string", "pattern": "^AC[0-9a-fA-F]{32}$"}),
            ),
            ("auth_token", text(512)),
        ],
        // An API key pair for REST calls; the auth token still signs callbacks.
        &[
            (
                "api_key_sid",
                json!({"type": "string", "pattern": "^SK[0-9a-fA-F]{32}$"}),
            ),
            ("api_key_secret", text(512)),
        ],
    )
}

fn auth_id_credentials() -> Value {
    credentials(&[("auth_id", text(512)), ("auth_token", text(512))])
}

fn create_provider_body() -> Value {
    let variant = |kind: &str, creds: Value| {
        json!({"type": "object", "additionalProperties": false,
               "required": ["provider", "label", "credentials"],
               "properties": {"provider": {"const": kind}, "label": text(200), "credentials": creds}})
    };
    json!({"oneOf": [
        variant("twilio", twilio_credentials()),
        variant("plivo", auth_id_credentials()),
        variant("vobiz", auth_id_credentials()),
    ]})
}

fn update_provider_body() -> Value {
    json!({"type": "object", "additionalProperties": false,
           "description": "credentials take the keys of the provider's own kind",
           "properties": {"label": text(200),
                          "credentials": {"oneOf": [twilio_credentials(), auth_id_credentials()]}}})
}

fn attach_number_body() -> Value {
    json!({"type": "object", "additionalProperties": false,
           "required": ["e164", "provider", "credentials_id"],
           "properties": {
               "e164": e164(),
               "provider": {"enum": ["twilio", "plivo", "vobiz"],
                            "description": "the kind of the provider `credentials_id` names (else 400)"},
               "credentials_id": uuid(),
               "agent_id": {"oneOf": [uuid(), {"type": "null"}]},
               "inbound_enabled": {"type": "boolean"},
               "outbound_enabled": {"type": "boolean"}}})
}

fn update_number_body() -> Value {
    json!({"type": "object", "additionalProperties": false,
           "properties": {
               "agent_id": {"oneOf": [uuid(), {"type": "null"}]},
               "inbound_enabled": {"type": "boolean"},
               "outbound_enabled": {"type": "boolean"},
               "daily_calls_max": {"oneOf": [limit_value(), {"type": "null"}],
                   "description": "the number's own daily call cap (0 stops it); null clears it"}}})
}

fn destinations_body() -> Value {
    json!({"type": "object", "additionalProperties": false,
           "required": ["allowed_countries", "allow_premium_rate", "allow_satellite"],
           "properties": {
               "allowed_countries": {"type": "array", "maxItems": crate::commands::set_destinations::MAX_COUNTRIES,
                   "items": {"type": "string", "enum": country_codes()},
                   "description": "ISO 3166-1 alpha-2 codes; empty: every country"},
               "allow_premium_rate": {"type": "boolean"},
               "allow_satellite": {"type": "boolean"}}})
}

/// Every code an allowlist may name (those with a numbering plan).
fn country_codes() -> Vec<String> {
    (b'A'..=b'Z')
        .flat_map(|a| (b'A'..=b'Z').map(move |b| String::from_utf8(vec![a, b]).unwrap_or_default()))
        .filter(|c| crate::domain::destination::is_country(c))
        .collect()
}

fn limits_body(all: bool) -> Value {
    let mut b = json!({"type": "object", "additionalProperties": false,
           "properties": {
               "concurrent_max": limit_value(), "calls_per_minute": limit_value(),
               "daily_calls_max": limit_value(), "daily_minutes_max": limit_value()}});
    if all {
        b["required"] = json!([
            "concurrent_max",
            "calls_per_minute",
            "daily_calls_max",
            "daily_minutes_max"
        ]);
    } else {
        b["minProperties"] = json!(1);
    }
    b
}

fn originate_body() -> Value {
    json!({"type": "object", "additionalProperties": false,
           "required": ["from_number", "to_number"],
           "properties": {
               "from_number": e164(), "to_number": e164(),
               "agent_id": {"oneOf": [uuid(), {"type": "null"}]},
               "metadata": {"oneOf": [{"$ref": "#/components/schemas/Metadata"}, {"type": "null"}],
                            "description": "any JSON object without NUL characters, stored with the call"}}})
}

/// Query parameter schemas by name, shared by every list.
fn query(name: &str) -> Option<Value> {
    let date_time = json!({"type": "string", "format": "date-time", "minLength": 1});
    Some(match name {
        "limit" => {
            json!({"type": "integer", "minimum": 1, "maximum": super::super::list::MAX_LIMIT, "default": super::super::list::DEFAULT_LIMIT})
        }
        "since" | "until" => date_time,
        "stream_id" | "agent_id" => uuid(),
        "type" => json!({"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]{0,99}$"}),
        "provider" => json!({"enum": ["twilio", "plivo", "vobiz"]}),
        "stream_type" => {
            json!({"enum": events::StreamType::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>()})
        }
        "status" => {
            json!({"enum": events::CallStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()})
        }
        "at" => json!({"oneOf": [
            {"type": "string", "pattern": "^[1-9][0-9]{0,17}$", "description": "a stream version"},
            {"type": "string", "format": "date-time", "pattern": "[^0-9]"}]}),
        _ => return None,
    })
}

/// One operation's contract.
struct Op {
    method: &'static str,
    path: &'static str,
    id: &'static str,
    /// Statuses beyond its successes and 401/403/503, which all have.
    errors: &'static [u16],
    /// The cursor's schema, for lists.
    cursor: Option<fn() -> Value>,
    body: Option<fn() -> Value>,
    /// Takes `If-Match`.
    conditional: bool,
    /// (status, link name, operationId, parameter, runtime expression)
    links: &'static [(
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    )],
}

fn uuid_cursor() -> Value {
    json!({"type": "string", "format": "uuid", "description": "a next_cursor"})
}

fn position_cursor() -> Value {
    json!({"type": "string", "pattern": "^[0-9]{1,18}$", "description": "a next_cursor"})
}

const PROVIDER_LINKS: &[(&str, &str, &str, &str, &str)] = &[
    ("201", "get", "getProvider", "id", "$response.body#/id"),
    (
        "201",
        "update",
        "updateProvider",
        "id",
        "$response.body#/id",
    ),
    (
        "201",
        "delete",
        "deleteProvider",
        "id",
        "$response.body#/id",
    ),
    (
        "201",
        "audit",
        "getAuditStream",
        "stream_id",
        "$response.body#/id",
    ),
];
const NUMBER_LINKS: &[(&str, &str, &str, &str, &str)] = &[
    ("201", "get", "getNumber", "id", "$response.body#/id"),
    ("201", "update", "updateNumber", "id", "$response.body#/id"),
    (
        "201",
        "release",
        "releaseNumber",
        "id",
        "$response.body#/id",
    ),
];
const CALL_LINKS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "200",
        "get",
        "getCall",
        "call_id",
        "$response.body#/call_id",
    ),
    (
        "202",
        "get",
        "getCall",
        "call_id",
        "$response.body#/call_id",
    ),
    (
        "200",
        "audit",
        "getAuditStream",
        "stream_id",
        "$response.body#/call_id",
    ),
];

const OPERATIONS: &[Op] = &[
    Op {
        method: "post",
        path: "/api/v1/telephony/providers",
        id: "createProvider",
        errors: &[400, 409, 413, 415, 422],
        cursor: None,
        body: Some(create_provider_body),
        conditional: false,
        links: PROVIDER_LINKS,
    },
    Op {
        method: "get",
        path: "/api/v1/telephony/providers",
        id: "listProviders",
        errors: &[400],
        cursor: Some(uuid_cursor),
        body: None,
        conditional: false,
        links: &[],
    },
    Op {
        method: "get",
        path: "/api/v1/telephony/providers/{id}",
        id: "getProvider",
        errors: &[404],
        cursor: None,
        body: None,
        conditional: false,
        links: &[],
    },
    Op {
        method: "patch",
        path: "/api/v1/telephony/providers/{id}",
        id: "updateProvider",
        errors: &[400, 404, 409, 412, 413, 415, 422],
        cursor: None,
        body: Some(update_provider_body),
        conditional: true,
        links: &[],
    },
    Op {
        method: "delete",
        path: "/api/v1/telephony/providers/{id}",
        id: "deleteProvider",
        errors: &[400, 404, 409, 412, 422],
        cursor: None,
        body: None,
        conditional: true,
        links: &[],
    },
    Op {
        method: "post",
        path: "/api/v1/telephony/numbers",
        id: "attachNumber",
        errors: &[400, 404, 409, 413, 415, 422],
        cursor: None,
        body: Some(attach_number_body),
        conditional: false,
        links: NUMBER_LINKS,
    },
    Op {
        method: "get",
        path: "/api/v1/telephony/numbers",
        id: "listNumbers",
        errors: &[400],
        cursor: Some(uuid_cursor),
        body: None,
        conditional: false,
        links: &[],
    },
    Op {
        method: "get",
        path: "/api/v1/telephony/numbers/{id}",
        id: "getNumber",
        errors: &[404],
        cursor: None,
        body: None,
        conditional: false,
        links: &[],
    },
    Op {
        method: "patch",
        path: "/api/v1/telephony/numbers/{id}",
        id: "updateNumber",
        errors: &[400, 404, 409, 412, 413, 415, 422],
        cursor: None,
        body: Some(update_number_body),
        conditional: true,
        links: &[],
    },
    Op {
        method: "delete",
        path: "/api/v1/telephony/numbers/{id}",
        id: "releaseNumber",
        errors: &[400, 404, 409, 412, 422],
        cursor: None,
        body: None,
        conditional: true,
        links: &[],
    },
    Op {
        method: "get",
        path: "/api/v1/call-limits",
        id: "getCallLimits",
        errors: &[],
        cursor: None,
        body: None,
        conditional: false,
        links: &[],
    },
    Op {
        method: "patch",
        path: "/api/v1/call-limits",
        id: "patchCallLimits",
        errors: &[400, 409, 412, 413, 415, 422],
        cursor: None,
        body: Some(|| limits_body(false)),
        conditional: true,
        links: &[],
    },
    Op {
        method: "put",
        path: "/api/v1/call-limits",
        id: "putCallLimits",
        errors: &[400, 409, 412, 413, 415, 422],
        cursor: None,
        body: Some(|| limits_body(true)),
        conditional: true,
        links: &[],
    },
    Op {
        method: "get",
        path: "/api/v1/call-limits/usage",
        id: "getCallLimitsUsage",
        errors: &[],
        cursor: None,
        body: None,
        conditional: false,
        links: &[],
    },
    Op {
        method: "get",
        path: "/api/v1/destinations",
        id: "getDestinations",
        errors: &[],
        cursor: None,
        body: None,
        conditional: false,
        links: &[],
    },
    Op {
        method: "put",
        path: "/api/v1/destinations",
        id: "putDestinations",
        errors: &[400, 409, 412, 413, 415, 422],
        cursor: None,
        body: Some(destinations_body),
        conditional: true,
        links: &[],
    },
    Op {
        method: "post",
        path: "/api/v1/calls/originate",
        id: "originateCall",
        errors: &[400, 409, 413, 415, 422, 429, 502],
        cursor: None,
        body: Some(originate_body),
        conditional: false,
        links: CALL_LINKS,
    },
    Op {
        method: "get",
        path: "/api/v1/calls",
        id: "listCalls",
        errors: &[400],
        cursor: Some(uuid_cursor),
        body: None,
        conditional: false,
        links: &[],
    },
    Op {
        method: "get",
        path: "/api/v1/calls/{call_id}",
        id: "getCall",
        errors: &[404],
        cursor: None,
        body: None,
        conditional: false,
        links: &[],
    },
    Op {
        method: "get",
        path: "/api/v1/audit/events",
        id: "listAuditEvents",
        errors: &[400],
        cursor: Some(position_cursor),
        body: None,
        conditional: false,
        links: &[],
    },
    Op {
        method: "get",
        path: "/api/v1/audit/streams/{stream_id}",
        id: "getAuditStream",
        errors: &[400, 404],
        cursor: None,
        body: None,
        conditional: false,
        links: &[],
    },
    Op {
        method: "get",
        path: "/api/v1/audit/verify",
        id: "verifyAudit",
        errors: &[],
        cursor: None,
        body: None,
        conditional: false,
        links: &[],
    },
    Op {
        method: "get",
        path: "/api/v1/events/stream",
        id: "streamEvents",
        errors: &[400],
        cursor: Some(position_cursor),
        body: None,
        conditional: false,
        links: &[],
    },
];

fn problem_schema() -> Value {
    json!({"type": "object", "required": ["type", "title", "status"],
           "description": "RFC 9457 problem details",
           "properties": {
               "type": {"type": "string"}, "title": {"type": "string"},
               "status": {"type": "integer"}, "detail": {"type": "string"},
               "errors": {"type": "array", "items": {"type": "object", "required": ["field", "message"],
                          "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}}})
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "invalid input; `errors` names each field",
        401 => "no valid bearer token",
        403 => "the token lacks the scope, or the caller id is not the tenant's",
        404 => "no such resource for this tenant",
        409 => "conflicts with the current state, or the Idempotency-Key is in use",
        412 => "If-Match names another version",
        413 => "the body is over 64 KiB",
        415 => "the body is not application/json",
        422 => "the Idempotency-Key was used with another request",
        429 => "a cap refused the call; `dimension`, `retry_after_s`",
        502 => "the Call Processor refused the dial",
        503 => "a dependency is unavailable; retry after Retry-After",
        _ => "error",
    }
}

/// JSON without NUL characters (PostgreSQL's jsonb cannot hold them), in
/// keys or strings at any depth: what originate's `metadata` may be.
fn json_value_schemas() -> (Value, Value) {
    let no_nul = json!({"type": "string", "pattern": "^[^\\u0000]*$"});
    let object = json!({"type": "object", "propertyNames": no_nul,
                        "additionalProperties": {"$ref": "#/components/schemas/JsonValue"}});
    let value = json!({"anyOf": [
        {"type": ["null", "boolean", "number"]},
        no_nul,
        {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
        object,
    ]});
    (value, object)
}

/// Applies the contract to the generated document.
pub fn apply(doc: &mut Value) {
    doc["components"]["schemas"]["Problem"] = problem_schema();
    let (value, object) = json_value_schemas();
    doc["components"]["schemas"]["JsonValue"] = value;
    doc["components"]["schemas"]["Metadata"] = object;
    for op in OPERATIONS {
        let Some(o) = doc.pointer_mut(&format!(
            "/paths/{}/{}",
            op.path.replace('~', "~0").replace('/', "~1"),
            op.method
        )) else {
            continue;
        };
        o["operationId"] = json!(op.id);
        parameters(o, op);
        if let Some(body) = op.body {
            o["requestBody"] = json!({"required": true,
                "content": {"application/json": {"schema": body()}}});
        }
        let responses = o["responses"].as_object_mut().expect("responses");
        for status in op.errors.iter().chain(&[401, 403, 503]) {
            responses.insert(status.to_string(), json!({
                "description": reason(*status),
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}));
        }
        for (status, name, target, param, expr) in op.links {
            if let Some(r) = responses.get_mut(*status) {
                r["links"][*name] = json!({"operationId": target, "parameters": {*param: expr}});
            }
        }
    }
    call_events(doc);
}

/// `POST /internal/v1/call-events`: what a Call Processor sends (SPEC §7),
/// authenticated by its HMAC signature rather than a token.
fn call_events(doc: &mut Value) {
    use crate::callproc::SIGNATURE_HEADER;
    doc["components"]["securitySchemes"]["callproc"] = json!({
        "type": "apiKey", "in": "header", "name": SIGNATURE_HEADER,
        "description": "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\"> keyed with SWITCHBOARD_CALLBACK_SECRET; within 5 minutes of now"});
    let statuses: Vec<&str> = events::CallStatus::CALLBACK
        .iter()
        .map(|s| s.as_str())
        .collect();
    let body = json!({"type": "object", "additionalProperties": false,
        "required": ["call_id", "provider_call_id", "status", "timestamp"],
        "properties": {
            "call_id": uuid(),
            "provider_call_id": text(128),
            "status": {"enum": statuses},
            "timestamp": {
                "description": "when the Call Processor saw the change: RFC 3339 (any offset) or integer Unix seconds, both accepted, 1970 to 9999",
                "oneOf": [
                    {"type": "string", "format": "date-time"},
                    {"type": "integer", "minimum": 0, "maximum": 253_402_300_799_i64}]},
            "duration_s": {"type": "integer", "minimum": 0, "maximum": 604_800},
            "hangup_cause": text(64)}});
    let mut responses = serde_json::Map::new();
    responses.insert("200".into(), json!({"description": "`{applied}`: whether the callback changed the call (repeats and late ones do not)"}));
    for status in [400, 401, 404, 409, 413, 415, 503] {
        let reason = if status == 401 {
            "missing, wrong or stale signature"
        } else {
            reason(status)
        };
        responses.insert(status.to_string(), json!({"description": reason,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}));
    }
    doc["paths"][super::super::callbacks::PATH] = json!({"post": {
        "tags": ["call-processor"], "operationId": "recordCallEvent",
        "summary": "A Call Processor's status callback",
        "security": [{"callproc": []}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": body}}},
        "responses": responses}});
}

fn parameters(o: &mut Value, op: &Op) {
    let params = o["parameters"]
        .as_array_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut out = Vec::new();
    for mut p in params {
        let name = p["name"].as_str().unwrap_or_default().to_owned();
        if p["in"] == "path" {
            p["schema"] = uuid();
        } else if name == "cursor" || name == "after" {
            if let Some(c) = op.cursor {
                p["schema"] = c();
            }
        } else if let Some(s) = query(&name) {
            p["schema"] = s;
        }
        out.push(p);
    }
    if op.conditional {
        out.push(
            json!({"name": "If-Match", "in": "header", "required": false,
            "description": "the version (ETag) the write expects; * or empty: any",
            "schema": {"type": "string", "pattern": "^(\\*|\"[0-9]{1,18}\"|)$"}}),
        );
    }
    if op.method != "get" {
        out.push(json!({"name": "Idempotency-Key", "in": "header", "required": false,
            "description": "the same key with the same request within 24 h answers the first response again",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"}}));
    }
    o["parameters"] = Value::Array(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_a_contract_and_ids_are_unique() {
        let doc = super::super::document();
        let mut ids = std::collections::BTreeSet::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            if path.starts_with("/internal/") {
                continue;
            }
            for (method, o) in ops.as_object().unwrap() {
                assert!(
                    OPERATIONS
                        .iter()
                        .any(|op| op.path == path && op.method == method),
                    "{method} {path} has no contract"
                );
                assert!(ids.insert(o["operationId"].as_str().unwrap().to_owned()));
                for s in ["401", "403", "503"] {
                    assert!(o["responses"].get(s).is_some(), "{method} {path} {s}");
                }
            }
        }
        assert_eq!(ids.len(), OPERATIONS.len());
    }
}
