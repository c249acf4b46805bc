//! One attempt's result, the vocabulary every wait shares: the API helpers (`k8s`) say what
//! they saw, the waits (`check::converge`) decide when to stop asking. A leaf: it imports nothing
//! of the crate.

/// One attempt's result: passed or not, with what was seen either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt<P, F = P> {
    Pass(P),
    Fail(F),
}
