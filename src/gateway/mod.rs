//! Gateway API on Octavia, the pure part (no I/O): the objects as read
//! (api.rs), the matching rules (matching.rs: hostnames, path prefixes,
//! precedence), the compilation of HTTPRoute matches into L7 policies that
//! route as Gateway API's precedence says under HAProxy's own order
//! (compile.rs), and the translation of one Gateway with its routes into
//! listeners, policies, pools and statuses (translate.rs, design.rs).

pub mod api;
pub mod compile;
pub mod design;
pub mod matching;
pub mod plan;
pub mod translate;

#[cfg(test)]
mod tests;
