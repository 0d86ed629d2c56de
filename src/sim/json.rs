//! Request parsing and error shapes of the simulated APIs: Octavia's
//! `{"faultcode", "faultstring", "debuginfo"}`, Neutron's `{"NeutronError": {...}}`,
//! Keystone's `{"error": {...}}`; list filters (`name`, `tags`, `tags-any`,
//! `not-tags`, `not-tags-any`, `fields`, any attribute).

use std::collections::BTreeMap;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// Whose error shape an answer takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKind {
    Octavia,
    /// Neutron, including the legacy LBaaS v2 paths it serves.
    Neutron,
    Keystone,
    Barbican,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// Neutron's exception name (`PortNotFound`, `IpAddressAlreadyAllocated`...).
    pub kind: &'static str,
    pub message: String,
}

pub type ApiResult = Result<(StatusCode, Value), ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }
    pub fn not_found(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, kind, message)
    }
    pub fn conflict(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, kind, message)
    }

    pub fn render(self, api: ApiKind) -> Response {
        let body = match api {
            ApiKind::Octavia => json!({
                "faultcode": if self.status.is_server_error() { "Server" } else { "Client" },
                "faultstring": self.message,
                "debuginfo": null,
            }),
            ApiKind::Neutron => json!({
                "NeutronError": {"type": self.kind, "message": self.message, "detail": ""}
            }),
            // Barbican's: `{"code", "title", "description"}`.
            ApiKind::Barbican => json!({
                "code": self.status.as_u16(),
                "title": self.status.canonical_reason().unwrap_or("Error"),
                "description": self.message,
            }),
            ApiKind::Keystone => json!({
                "error": {
                    "code": self.status.as_u16(),
                    "message": self.message,
                    "title": self.status.canonical_reason().unwrap_or("Error"),
                }
            }),
        };
        (self.status, Json(body)).into_response()
    }
}

/// Renders a handler's result in `api`'s shape; 204 answers carry no body.
pub fn respond(api: ApiKind, result: ApiResult) -> Response {
    match result {
        Ok((StatusCode::NO_CONTENT, _)) => StatusCode::NO_CONTENT.into_response(),
        Ok((status, body)) if body.is_null() => status.into_response(),
        Ok((status, body)) => (status, Json(body)).into_response(),
        Err(e) => e.render(api),
    }
}

/// The JSON body, or Octavia's / Neutron's 400.
pub fn parse_body(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))
}

/// A request body's resource object, e.g. `{"loadbalancer": {...}}`, with its
/// keys checked against `allowed` (Octavia: "Unknown attribute for argument").
pub struct Body<'a> {
    pub resource: &'a str,
    pub map: &'a Map<String, Value>,
}

impl<'a> Body<'a> {
    pub fn wrapped(
        body: &'a Value,
        resource: &'a str,
        allowed: &[&str],
    ) -> Result<Body<'a>, ApiError> {
        let inner = body
            .get(resource)
            .ok_or_else(|| ApiError::bad_request(format!("Missing argument: \"{resource}\"")))?;
        Body::object(inner, resource, allowed)
    }

    pub fn object(
        value: &'a Value,
        resource: &'a str,
        allowed: &[&str],
    ) -> Result<Body<'a>, ApiError> {
        let map = value.as_object().ok_or_else(|| {
            ApiError::bad_request(format!("Invalid input for {resource}: expected an object"))
        })?;
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "Invalid input for field/attribute {resource}. Value: '{key}'. Unknown attribute for argument {resource}: {key}"
                )));
            }
        }
        Ok(Body { resource, map })
    }

    fn invalid(&self, key: &str, value: &Value, why: &str) -> ApiError {
        ApiError::bad_request(format!(
            "Invalid input for field/attribute {key}. Value: '{}'. {why}",
            value_text(value)
        ))
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn value(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub fn string(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.invalid(key, v, "Value should be string")),
        }
    }

    pub fn required_string(&self, key: &str) -> Result<String, ApiError> {
        self.string(key)?.ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid input for field/attribute {key}. Value: 'None'. Mandatory field missing."
            ))
        })
    }

    pub fn integer(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        match self.value(key) {
            None => Ok(None),
            Some(v) => match v.as_i64() {
                Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
                Some(_) => Err(self.invalid(
                    key,
                    v,
                    &format!(
                        "Value should be greater or equal to {min} and lower or equal to {max}"
                    ),
                )),
                None => Err(self.invalid(key, v, "Value should be integer")),
            },
        }
    }

    pub fn boolean(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.invalid(key, v, "Value should be boolean")),
        }
    }

    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| self.invalid(key, i, "Value should be string"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.invalid(key, v, "Value should be a list")),
        }
    }

    /// One of `choices`, or Octavia's 400 listing them.
    pub fn choice(&self, key: &str, choices: &[&str]) -> Result<Option<String>, ApiError> {
        let Some(value) = self.string(key)? else {
            return Ok(None);
        };
        if choices.contains(&value.as_str()) {
            Ok(Some(value))
        } else {
            Err(self.invalid(
                key,
                &Value::String(value.clone()),
                &format!("Value should be one of: {}", choices.join(", ")),
            ))
        }
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A list request's query: every `key=value` pair, in order.
#[derive(Debug, Default, Clone)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    /// The values of an exact-match attribute filter (`name=a&name=b`), to
    /// narrow a list before its objects are built; `None`: not filtered.
    pub fn values(&self, key: &str) -> Option<Vec<&str>> {
        let found: Vec<&str> = self
            .0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect();
        (!found.is_empty()).then_some(found)
    }

    /// The tags a `tags=` filter wants (every one of them), if it has one.
    pub fn all_tags(&self) -> Option<Vec<&str>> {
        self.values("tags").map(|values| {
            values
                .into_iter()
                .flat_map(|v| v.split(','))
                .filter(|t| !t.is_empty())
                .collect()
        })
    }

    pub fn parse(raw: Option<&str>) -> Query {
        Query(
            form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn flag(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }

    /// Keeps the objects matching the filters, then trims them to `fields`.
    /// Attribute filters with several values match any of them (Neutron);
    /// `loadbalancer_id` matches the `loadbalancers` list (Octavia).
    pub fn apply(&self, objects: Vec<Value>) -> Vec<Value> {
        const PAGING: [&str; 6] = [
            "limit",
            "marker",
            "sort_key",
            "sort_dir",
            "page_reverse",
            "fields",
        ];
        let mut attrs: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut fields: Vec<&str> = Vec::new();
        for (k, v) in &self.0 {
            if k == "fields" {
                fields.extend(v.split(',').filter(|f| !f.is_empty()));
            } else if !PAGING.contains(&k.as_str()) {
                attrs.entry(k.as_str()).or_default().push(v.as_str());
            }
        }
        objects
            .into_iter()
            .filter(|o| attrs.iter().all(|(k, values)| matches_filter(o, k, values)))
            .map(|o| {
                if fields.is_empty() {
                    return o;
                }
                let Value::Object(map) = o else { return o };
                Value::Object(
                    map.into_iter()
                        .filter(|(k, _)| fields.contains(&k.as_str()))
                        .collect(),
                )
            })
            .collect()
    }
}

fn tags_of(o: &Value) -> Vec<&str> {
    o.get("tags")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn matches_filter(o: &Value, key: &str, values: &[&str]) -> bool {
    let wanted = || {
        values
            .iter()
            .flat_map(|v| v.split(','))
            .filter(|t| !t.is_empty())
    };
    match key {
        "tags" => {
            let have = tags_of(o);
            wanted().all(|t| have.contains(&t))
        }
        "tags-any" => {
            let have = tags_of(o);
            wanted().any(|t| have.contains(&t))
        }
        "not-tags" => {
            let have = tags_of(o);
            !wanted().all(|t| have.contains(&t))
        }
        "not-tags-any" => {
            let have = tags_of(o);
            !wanted().any(|t| have.contains(&t))
        }
        "loadbalancer_id" if o.get("loadbalancer_id").is_none() => o
            .get("loadbalancers")
            .and_then(Value::as_array)
            .is_some_and(|lbs| {
                lbs.iter()
                    .any(|lb| values.contains(&lb.get("id").and_then(Value::as_str).unwrap_or("")))
            }),
        _ => match o.get(key) {
            None => false,
            Some(v) => {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => "None".to_string(),
                    other => other.to_string(),
                };
                values
                    .iter()
                    .any(|w| *w == text || (text == "None" && w.is_empty()))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_by_attribute_tags_and_fields() {
        let objects = vec![
            json!({"id": "1", "name": "a", "tags": ["x", "y"], "loadbalancers": [{"id": "lb1"}]}),
            json!({"id": "2", "name": "b", "tags": ["y"], "loadbalancers": [{"id": "lb2"}]}),
        ];
        let ids = |q: &str| -> Vec<String> {
            Query::parse(Some(q))
                .apply(objects.clone())
                .iter()
                .map(|o| o["id"].as_str().unwrap_or("?").to_string())
                .collect()
        };
        assert_eq!(ids("name=a"), ["1"]);
        assert_eq!(ids("name=a&name=b"), ["1", "2"]);
        assert_eq!(ids("tags=x,y"), ["1"]);
        assert_eq!(ids("tags-any=x"), ["1"]);
        assert_eq!(ids("not-tags=x"), ["2"]);
        assert_eq!(ids("not-tags-any=y"), Vec::<String>::new());
        assert_eq!(ids("loadbalancer_id=lb2"), ["2"]);
        let trimmed = Query::parse(Some("fields=id&fields=name")).apply(objects.clone());
        assert_eq!(trimmed[0], json!({"id": "1", "name": "a"}));
    }

    #[test]
    fn errors_take_each_apis_shape() {
        let e = ApiError::conflict(
            "Conflict",
            "Load Balancer x is immutable and cannot be updated.",
        );
        let o = e.clone().render(ApiKind::Octavia);
        assert_eq!(o.status(), StatusCode::CONFLICT);
        let n = e.render(ApiKind::Neutron);
        assert_eq!(n.status(), StatusCode::CONFLICT);
    }
}
