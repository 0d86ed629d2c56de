//! Test doubles for tests and benches (the `test-util` feature; not in the
//! shipped library): the in-memory cloud the pure planner's and the
//! reconcile loop's tests run on, held to the simulator by a contract test.

#[cfg(test)]
mod contract;
pub mod memory;
