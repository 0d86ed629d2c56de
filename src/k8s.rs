//! Reading Kubernetes objects: core/v1 Service and Endpoints, discovery/v1
//! EndpointSlice, from JSON or YAML text holding single objects, `List`s
//! (typed lists too) or several documents. Decoding errors name the field.

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A Kubernetes object this tool reads.
#[derive(Debug, Clone)]
pub enum Object {
    Service(Box<Service>),
    Endpoints(Box<Endpoints>),
    EndpointSlice(Box<EndpointSlice>),
    /// A Gateway API object (GatewayClass, Gateway, a route, a
    /// ReferenceGrant), a Secret or a Namespace: what a Gateway's plan
    /// reads, decoded there.
    ForGateways(Box<Value>),
}

/// The kinds a Gateway's plan reads besides Services and EndpointSlices.
const GATEWAY_KINDS: [(&str, &str); 9] = [
    ("gateway.networking.k8s.io", "GatewayClass"),
    ("gateway.networking.k8s.io", "Gateway"),
    ("gateway.networking.k8s.io", "HTTPRoute"),
    ("gateway.networking.k8s.io", "TLSRoute"),
    ("gateway.networking.k8s.io", "TCPRoute"),
    ("gateway.networking.k8s.io", "UDPRoute"),
    ("gateway.networking.k8s.io", "ReferenceGrant"),
    ("", "Secret"),
    ("", "Namespace"),
];

/// An object and where it came from (`file`, `file[2]`, `file[2].items[0]`).
#[derive(Debug, Clone)]
pub struct Located {
    pub origin: String,
    pub object: Object,
}

/// Bad input: which file and object, which field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}{}: {message}", object.as_ref().map(|o| format!(" ({o})")).unwrap_or_default(), field.as_ref().map(|f| format!(", field {f}")).unwrap_or_default())]
pub struct InputError {
    pub origin: String,
    /// `Kind namespace/name` when the object got that far.
    pub object: Option<String>,
    /// Dotted path of the offending field (`spec.ports[0].port`).
    pub field: Option<String>,
    pub message: String,
}

/// What was read from one text, plus notes about what was ignored.
#[derive(Debug, Default)]
pub struct Read {
    pub objects: Vec<Located>,
    pub notes: Vec<String>,
}

/// Reads every object in `text`; `origin` names the text in errors and notes.
pub fn read(origin: &str, text: &str) -> Result<Read, InputError> {
    let documents = parse_documents(origin, text)?;
    let mut read = Read::default();
    let several = documents.len() > 1;
    for (i, doc) in documents.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        let doc_origin = if several {
            format!("{origin}[{i}]")
        } else {
            origin.to_string()
        };
        collect(doc, &doc_origin, "", &mut read)?;
    }
    Ok(read)
}

/// Reads every object in an already parsed JSON value (a request body).
pub fn read_value(origin: &str, value: Value) -> Result<Read, InputError> {
    let mut read = Read::default();
    collect(value, origin, "", &mut read)?;
    Ok(read)
}

/// Decodes one object given as JSON value (the REST and gRPC bodies).
pub fn decode<T: DeserializeOwned>(
    origin: &str,
    field_prefix: &str,
    value: Value,
) -> Result<T, InputError> {
    let object = describe(&value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = match (field_prefix.is_empty(), path == ".") {
            (true, true) => None,
            (true, false) => Some(path),
            (false, true) => Some(field_prefix.trim_end_matches('.').to_string()),
            (false, false) => Some(format!("{field_prefix}{path}")),
        };
        InputError {
            origin: origin.to_string(),
            object,
            field,
            message: e.into_inner().to_string(),
        }
    })
}

fn parse_documents(origin: &str, text: &str) -> Result<Vec<Value>, InputError> {
    let error = |message: String| InputError {
        origin: origin.to_string(),
        object: None,
        field: None,
        message,
    };
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        // JSON: one object or several concatenated (as `kubectl get -w -o json` prints).
        serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .map(|r| r.map_err(|e| error(format!("invalid JSON: {e}"))))
            .collect()
    } else {
        serde_saphyr::from_multiple::<Value>(text).map_err(|e| error(format!("invalid YAML: {e}")))
    }
}

/// `Kind namespace/name` of a raw object, as far as it can be read.
fn describe(value: &Value) -> Option<String> {
    let kind = value.get("kind")?.as_str()?;
    let meta = value.get("metadata");
    let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str);
    let ns = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    Some(match name {
        Some(name) => format!("{kind} {ns}/{name}"),
        None => kind.to_string(),
    })
}

/// The kind and apiVersion of the items of a typed list (`ServiceList`
/// -> `Service`, `v1`): what the API server leaves out of each item.
fn item_kind(list: &Value) -> Option<(String, Value)> {
    let kind = list.get("kind")?.as_str()?.strip_suffix("List")?;
    if kind.is_empty() {
        return None; // a plain `List`: its items carry their own kinds
    }
    Some((
        kind.to_string(),
        list.get("apiVersion").cloned().unwrap_or(Value::Null),
    ))
}

/// The items of a `List` or typed list, each with its kind and apiVersion
/// (filled in from the list's when missing, as the API server sends them).
pub fn list_items(list: &Value) -> Option<Vec<Value>> {
    let items = list.get("items")?.as_array()?;
    let inherited = item_kind(list);
    Some(
        items
            .iter()
            .map(|item| {
                let mut item = item.clone();
                if let (Some((kind, api_version)), Some(map)) = (&inherited, item.as_object_mut()) {
                    map.entry("kind")
                        .or_insert_with(|| Value::from(kind.clone()));
                    if !api_version.is_null() {
                        map.entry("apiVersion")
                            .or_insert_with(|| api_version.clone());
                    }
                }
                item
            })
            .collect(),
    )
}

fn collect(value: Value, origin: &str, prefix: &str, out: &mut Read) -> Result<(), InputError> {
    let fail = |field: &str, message: &str| InputError {
        origin: origin.to_string(),
        object: describe(&value),
        field: Some(format!("{prefix}{field}")),
        message: message.to_string(),
    };
    if !value.is_object() {
        return Err(fail("", "expected a Kubernetes object (a mapping)"));
    }
    let kind = match value.get("kind") {
        Some(Value::String(k)) => k.clone(),
        Some(_) => return Err(fail("kind", "must be a string")),
        None => return Err(fail("kind", "missing")),
    };
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    let object = match (group, kind.as_str()) {
        ("", "Service") => Object::Service(Box::new(decode(origin, prefix, value)?)),
        ("", "Endpoints") => Object::Endpoints(Box::new(decode(origin, prefix, value)?)),
        ("discovery.k8s.io", "EndpointSlice") => {
            Object::EndpointSlice(Box::new(decode(origin, prefix, value)?))
        }
        (g, k) if GATEWAY_KINDS.contains(&(g, k)) => Object::ForGateways(Box::new(value)),
        (_, k) if k.ends_with("List") => {
            let items = match value.get("items") {
                Some(Value::Array(_)) => list_items(&value).unwrap_or_default(),
                Some(Value::Null) | None => Vec::new(),
                Some(_) => return Err(fail("items", "must be a list")),
            };
            for (i, item) in items.into_iter().enumerate() {
                collect(item, origin, &format!("{prefix}items[{i}]."), out)?;
            }
            return Ok(());
        }
        _ => {
            let what = describe(&value).unwrap_or(kind);
            let version = if api_version.is_empty() {
                String::new()
            } else {
                format!(" ({api_version})")
            };
            out.notes.push(format!(
                "{origin}: ignored {what}{version}: not a Service, Endpoints, EndpointSlice or an object a Gateway's plan reads"
            ));
            return Ok(());
        }
    };
    out.objects.push(Located {
        origin: origin.to_string(),
        object,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(read: &Read) -> Vec<&'static str> {
        read.objects
            .iter()
            .map(|o| match o.object {
                Object::Service(_) => "Service",
                Object::Endpoints(_) => "Endpoints",
                Object::EndpointSlice(_) => "EndpointSlice",
                Object::ForGateways(_) => "ForGateways",
            })
            .collect()
    }

    #[test]
    fn reads_a_single_yaml_object() {
        let r = read(
            "svc.yaml",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n",
        )
        .unwrap();
        assert_eq!(kinds(&r), ["Service"]);
        assert_eq!(r.objects[0].origin, "svc.yaml");
    }

    #[test]
    fn reads_multi_document_yaml_and_skips_empty_documents() {
        let text = "---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: a}\n";
        let r = read("f.yaml", text).unwrap();
        assert_eq!(kinds(&r), ["Service", "Endpoints"]);
    }

    #[test]
    fn reads_lists_and_typed_lists() {
        let text = r#"{"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}},
            {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSliceList", "items": [
                {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "a-1"}, "addressType": "IPv4", "endpoints": []}
            ]}
        ]}"#;
        let r = read("l.json", text).unwrap();
        assert_eq!(kinds(&r), ["Service", "EndpointSlice"]);
        let typed = r#"{"apiVersion": "v1", "kind": "ServiceList", "items": [
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "b"}}]}"#;
        assert_eq!(
            kinds(&read("t.json", typed).unwrap()),
            ["Service", "Service"]
        );
    }

    #[test]
    fn reads_concatenated_json() {
        let text = r#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}}
{"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "a"}}"#;
        assert_eq!(
            kinds(&read("w.json", text).unwrap()),
            ["Service", "Endpoints"]
        );
    }

    #[test]
    fn unknown_kinds_are_ignored_with_a_note() {
        let text =
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\n";
        let r = read("d.yaml", text).unwrap();
        assert!(r.objects.is_empty());
        assert_eq!(r.notes.len(), 1);
        assert!(r.notes[0].contains("Deployment shop/web"), "{}", r.notes[0]);
    }

    #[test]
    fn malformed_fields_are_named() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports:\n  - port: eighty\n";
        let e = read("bad.yaml", text).unwrap_err();
        assert_eq!(e.origin, "bad.yaml");
        assert_eq!(e.object.as_deref(), Some("Service default/web"));
        assert_eq!(e.field.as_deref(), Some("spec.ports[0].port"));
    }

    #[test]
    fn malformed_fields_inside_lists_carry_the_item_path() {
        let text = r#"{"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {"ports": [{"port": "x"}]}}]}"#;
        let e = read("l.json", text).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("items[0].spec.ports[0].port"));
    }

    #[test]
    fn documents_without_kind_or_not_objects_are_errors() {
        let e = read("k.yaml", "apiVersion: v1\nmetadata: {name: a}\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("kind"));
        let e = read("s.yaml", "just a string\n").unwrap_err();
        assert!(e.message.contains("mapping"), "{e}");
    }

    #[test]
    fn syntax_errors_name_the_file() {
        let e = read("broken.yaml", "kind: [unclosed\n").unwrap_err();
        assert_eq!(e.origin, "broken.yaml");
        assert!(e.message.starts_with("invalid YAML"), "{e}");
        let e = read("broken.json", "{\"kind\": ").unwrap_err();
        assert!(e.message.starts_with("invalid JSON"), "{e}");
    }

    #[test]
    fn typed_lists_from_the_api_server_have_items_without_kind() {
        // `GET /api/v1/services`, `/api/v1/endpoints`, `/apis/discovery.k8s.io/v1/endpointslices`.
        let services = r#"{"kind": "ServiceList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"},
            "items": [{"metadata": {"name": "a", "namespace": "x"}, "spec": {"ports": [{"port": 80}]}},
                      {"metadata": {"name": "b", "namespace": "x"}, "spec": {"ports": [{"port": 81}]}}]}"#;
        let endpoints = r#"{"kind": "EndpointsList", "apiVersion": "v1",
            "items": [{"metadata": {"name": "a", "namespace": "x"}, "subsets": []}]}"#;
        let slices = r#"{"kind": "EndpointSliceList", "apiVersion": "discovery.k8s.io/v1",
            "items": [{"metadata": {"name": "a-1", "namespace": "x"}, "addressType": "IPv4", "endpoints": []}]}"#;
        assert_eq!(kinds(&read("s", services).unwrap()), ["Service", "Service"]);
        assert_eq!(kinds(&read("e", endpoints).unwrap()), ["Endpoints"]);
        assert_eq!(kinds(&read("k", slices).unwrap()), ["EndpointSlice"]);
        // A plain List's items must say what they are.
        let e = read(
            "l",
            r#"{"kind": "List", "apiVersion": "v1", "items": [{"metadata": {"name": "a"}}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("items[0].kind"));
        // An item's own kind wins over the list's.
        let mixed = r#"{"kind": "ServiceList", "apiVersion": "v1", "items": [{"kind": "Endpoints", "apiVersion": "v1", "metadata": {"name": "a"}}]}"#;
        assert_eq!(kinds(&read("m", mixed).unwrap()), ["Endpoints"]);
    }
}
