//! The process-wide TLS provider. kube and reqwest are built without a default rustls provider
//! (ring only, no aws-lc): with none installed, or two, they panic at run time. Both the binary
//! and every test that touches TLS call [`install_ring_provider`] first.

use std::sync::OnceLock;

/// Install ring as rustls's process default, once. Safe to call from many threads and tests.
pub fn install_ring_provider() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // An error means a provider is already installed (by an embedding program); keep it.
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_provider_is_installed_after_the_call() {
        super::install_ring_provider();
        super::install_ring_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
