//! Expectations -> verdicts. Each check takes observations and returns a verdict with the
//! evidence it was decided on.

pub mod bench;
pub mod converge;
pub mod denial;
pub mod expect;
pub mod injection;
pub mod load;
pub mod metrics;
pub mod rate_limit;
pub mod split;
pub mod xfcc;
