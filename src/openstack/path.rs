//! OpenStack API paths. Every URL this tool sends is built here: literal
//! segments, ids checked to be what OpenStack uses (UUIDs), names and query
//! values percent-encoded, so nothing taken from a Service, a setting or an
//! answer can climb out of its path segment (`../../v3/auth/tokens`) or add
//! a query (`x?fields=id#`).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

pub use crate::names::{is_plain_name, is_uuid};

/// Bytes that stay as they are in a path segment: RFC 3986's unreserved.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An id that is not a UUID where OpenStack uses UUIDs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is not a UUID")]
pub struct InvalidId {
    pub what: &'static str,
    pub value: String,
}

/// `value` if it is a UUID, else the error naming `what` it should have been.
pub fn uuid<'a>(what: &'static str, value: &'a str) -> Result<&'a str, InvalidId> {
    if is_uuid(value) {
        Ok(value)
    } else {
        Err(InvalidId {
            what,
            value: value.chars().take(100).collect(),
        })
    }
}

/// A path below a service's API root, with its query: `/loadbalancers/{id}?cascade=true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiPath {
    path: String,
    query: Option<String>,
}

impl ApiPath {
    /// `/collection`.
    pub fn of(collection: &'static str) -> ApiPath {
        ApiPath {
            path: String::new(),
            query: None,
        }
        .then(collection)
    }

    /// The version document one level above the API root (Octavia's `/`).
    pub fn version_document() -> ApiPath {
        ApiPath {
            path: "/..".into(),
            query: None,
        }
    }

    /// The one encoder of path segments.
    fn push(mut self, raw: &str) -> ApiPath {
        self.path.push('/');
        self.path.extend(utf8_percent_encode(raw, SEGMENT));
        self
    }

    /// A literal segment: `/members`.
    pub fn then(self, segment: &'static str) -> ApiPath {
        self.push(segment)
    }

    /// An id segment; `what` names it in the error ("pool id").
    pub fn id(self, what: &'static str, id: &str) -> Result<ApiPath, InvalidId> {
        Ok(self.push(uuid(what, id)?))
    }

    /// A free-text segment (an availability zone's name), encoded.
    pub fn name(self, name: &str) -> ApiPath {
        self.push(name)
    }

    /// Query pairs, form-encoded.
    pub fn query(mut self, pairs: &[(&str, &str)]) -> ApiPath {
        let mut s = form_urlencoded::Serializer::new(self.query.take().unwrap_or_default());
        for (k, v) in pairs {
            s.append_pair(k, v);
        }
        self.query = Some(s.finish());
        self
    }

    /// The same path below a prefix (the legacy API's `/lbaas`).
    pub fn below(mut self, prefix: &'static str) -> ApiPath {
        self.path.insert_str(0, prefix);
        self
    }

    pub fn as_string(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a81";

    #[test]
    fn ids_must_be_uuids() {
        assert!(is_uuid(ID));
        assert!(is_uuid(&ID.to_uppercase()));
        for bad in [
            "",
            "lb-123",
            "../../../v3/auth/tokens",
            "x?fields=id#",
            "8c8e0a3c4c0f4b3c9d7e0d3b5e6f7a81",
            "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a8",
            "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a8g",
            "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a81/",
            "8c8e0a3c+4c0f-4b3c-9d7e-0d3b5e6f7a81",
        ] {
            assert!(!is_uuid(bad), "{bad:?}");
            let e = ApiPath::of("pools").id("pool id", bad).unwrap_err();
            assert_eq!(e.what, "pool id");
        }
    }

    #[test]
    fn paths_are_built_from_encoded_segments() {
        let p = ApiPath::of("pools")
            .id("pool id", ID)
            .unwrap()
            .then("members");
        assert_eq!(p.as_string(), format!("/pools/{ID}/members"));
        let p = ApiPath::of("availabilityzones").name("../../v3/auth/tokens?x#");
        assert_eq!(
            p.as_string(),
            "/availabilityzones/..%2F..%2Fv3%2Fauth%2Ftokens%3Fx%23"
        );
        let p = ApiPath::of("loadbalancers")
            .query(&[("name", "shop/web?x=1&y#z")])
            .below("/lbaas");
        assert_eq!(
            p.as_string(),
            "/lbaas/loadbalancers?name=shop%2Fweb%3Fx%3D1%26y%23z"
        );
        let p = ApiPath::of("loadbalancers")
            .id("load balancer id", ID)
            .unwrap()
            .query(&[("cascade", "true")]);
        assert_eq!(p.as_string(), format!("/loadbalancers/{ID}?cascade=true"));
    }

    #[test]
    fn plain_names_are_letters_digits_and_few_signs() {
        assert!(is_plain_name("az-1"));
        assert!(is_plain_name("nova:zone_2.a"));
        assert!(!is_plain_name(""));
        assert!(!is_plain_name("a/b"));
        assert!(!is_plain_name("a b"));
        assert!(!is_plain_name(&"a".repeat(256)));
    }
}
