//! A repro bundle as a run: what its trust lets it do. A stranger's bundle never runs on a
//! cluster the harness did not make, never runs commands of its own, gets the sandbox's egress
//! policy and is judged by what it expects (`repro run` without `--trust-bundle`).
//!
//! **Trust boundary**: with `scenario::bundle` (what a bundle may pin and set) and
//! `scenario::scope` (what its objects may do), this is where `repro run`'s trust is decided.

use super::{Options, ProviderChoice, Request, RunChecks, RunError};
use crate::scenario::Catalog;
use crate::scenario::bundle::{Admitted, Bundle, PinTrust};

/// How far a repro bundle is trusted (`repro run`'s flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleTrust {
    /// The default: the checkout's pins and the harness's own values, no commands of its own,
    /// sandboxed, never on the user's cluster.
    None,
    /// `--trust-bundle-pins`: the bundle's `versions.toml` and values as they are.
    Pins,
    /// `--trust-bundle`: everything, the user's own cluster included.
    All,
}

impl BundleTrust {
    /// Whose pins the bundle runs with.
    pub fn pins(self) -> PinTrust {
        match self {
            BundleTrust::None => PinTrust::Checkout,
            BundleTrust::Pins | BundleTrust::All => PinTrust::Bundle,
        }
    }
}

/// A bundle runs on `--provider existing` (a cluster the harness did not make) only when fully
/// trusted. Checked before the bundle is unpacked.
pub fn refuse_own_cluster(options: &Options, trust: BundleTrust) -> Result<(), RunError> {
    match (options.provider, trust) {
        (ProviderChoice::Existing, BundleTrust::None | BundleTrust::Pins) => Err(RunError::BundleOnOwnCluster),
        _ => Ok(()),
    }
}

/// The run of `admitted` (unpacked from `bundle`, its project opened as `catalog`): `base`'s
/// provider, keep and budget, the bundle's mesh, profile, scenario and values, its expected
/// outcome as the verdict (a bundle carries no snapshots); an untrusted bundle's scenario is
/// refused at its line when it runs commands of its own, and its namespaces are sandboxed.
pub fn bundle_request(
    bundle: &Bundle,
    admitted: &Admitted,
    catalog: &Catalog,
    trust: BundleTrust,
    base: Request,
) -> Result<Request, RunError> {
    refuse_own_cluster(&base.options, trust)?;
    if trust != BundleTrust::All {
        let file = catalog.project.scenarios_dir().join(format!("{}.yaml", bundle.scenario));
        for checked in catalog.check(&file, "offline")? {
            if let Some(problem) = crate::scenario::scope::untrusted_problem(&checked.scenario, &checked.manifests) {
                return Err(RunError::UntrustedBundle(problem));
            }
        }
    }
    let mut values = base.values;
    values.extend(admitted.values.iter().cloned());
    Ok(Request {
        mesh: bundle.mesh,
        profile: Some(admitted.profile.clone()),
        only: vec![bundle.scenario.clone()],
        values,
        checks: RunChecks {
            snapshots: None,
            mutants: false,
            expected: Some(bundle.expected.clone()),
            jobs: 1,
            retries: 0,
            sandbox: trust != BundleTrust::All,
        },
        ..base
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::project::Project;
    use crate::scenario::Mesh;

    /// This checkout's ingress-basic as a bundle, admitted with `trust`'s pins.
    fn admitted(work: &Path, trust: BundleTrust) -> (Bundle, Admitted, Catalog) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let checkout = Catalog::open(Project::at(&root)).unwrap();
        let profile = checkout.default_profile(Mesh::Istio).unwrap();
        let values = crate::stack::values::in_force(&crate::stack::environment(&profile));
        let bundle = crate::scenario::bundle::export(&checkout, "ingress-basic", &profile, values).unwrap();
        let file = work.join("bug.yaml");
        std::fs::write(&file, bundle.to_yaml()).unwrap();
        let bundle = Bundle::load(&file).unwrap();
        let admitted = bundle.admit(&file, &checkout, trust.pins(), &work.join("runs")).unwrap();
        let catalog = Catalog::open(admitted.project.clone()).unwrap();
        (bundle, admitted, catalog)
    }

    #[test]
    fn a_strangers_bundle_is_sandboxed_judged_by_what_it_expects_and_kept_off_your_cluster() {
        let work = tempfile::tempdir().unwrap();
        let (bundle, admitted, catalog) = admitted(work.path(), BundleTrust::None);
        let mut base = Request::new(Mesh::Linkerd);
        base.only = vec!["something-else".into()];
        let request = bundle_request(&bundle, &admitted, &catalog, BundleTrust::None, base.clone()).unwrap();
        assert_eq!((request.mesh, request.only.as_slice()), (Mesh::Istio, &["ingress-basic".to_owned()][..]));
        assert_eq!(request.profile.as_deref(), Some(admitted.profile.as_str()));
        assert!(request.checks.sandbox && request.checks.snapshots.is_none() && request.checks.retries == 0);
        assert_eq!(request.checks.expected.as_ref(), Some(&bundle.expected));
        // On the user's own cluster: refused unless trusted entirely.
        base.options.provider = ProviderChoice::Existing;
        for trust in [BundleTrust::None, BundleTrust::Pins] {
            let refused = bundle_request(&bundle, &admitted, &catalog, trust, base.clone()).unwrap_err();
            assert!(matches!(refused, RunError::BundleOnOwnCluster), "{refused}");
        }
        let trusted = bundle_request(&bundle, &admitted, &catalog, BundleTrust::All, base).unwrap();
        assert!(!trusted.checks.sandbox, "a trusted bundle is not sandboxed");
    }
}
