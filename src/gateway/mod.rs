//! Gateway API on Octavia, the pure part: how a Gateway's listeners and its
//! routes' matches become Octavia L7 rules and in which order their policies
//! stand. No I/O. This first part holds the matching rules every later step
//! builds on: hostnames (a listener's and a route's, intersected as Gateway
//! API says), paths (a `PathPrefix` as a segment-aware regular expression),
//! and the precedence of matches across and within routes.

pub mod matching;
