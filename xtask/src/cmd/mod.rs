//! One module per command (or family of commands): each turns parsed arguments into library
//! calls and renders the result; none holds logic the library could test.

pub mod bench;
pub mod e2e;
pub mod lint;
pub mod machine;
pub mod plan;
pub mod replay;
pub mod repro;
