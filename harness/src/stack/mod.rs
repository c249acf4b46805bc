//! What gets installed. Today: the Kong values the harness uses per mesh (the installers, order
//! and readiness come with the stack layer).

pub mod kong;
pub mod linkerd;
