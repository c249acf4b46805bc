//! The one seeded generator of the crate (xorshift64*): the split test's simulations and both
//! benchmarks draw from it, so a seed gives the same figures everywhere. Not for secrets (those
//! come from the OS, `names::random_base36`). A leaf.

/// A small deterministic generator (xorshift64*), so simulations and the benchmark repeat exactly.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn seeded(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The generator's state taken as given (0 counts as 1: xorshift never leaves 0). The run
    /// bench seeds this way, so the figures the README quotes for its seeds stay reproducible.
    pub fn with_state(state: u64) -> Self {
        Rng(state.max(1))
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A version drawn from cumulative shares.
    pub fn pick<'a>(&mut self, shares: &'a [(String, f64)]) -> &'a str {
        let u = self.unit();
        let mut acc = 0.0;
        for (version, share) in shares {
            acc += share;
            if u < acc {
                return version;
            }
        }
        shares.last().map_or("", |(v, _)| v.as_str())
    }
}
