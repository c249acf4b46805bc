//! Kustomize directories in a lint, built by a real `kubectl kustomize`: lint reads the objects
//! the build makes (an overlay's patches applied to its base), never the files one by one, and
//! names the directory built.
//!
//! kubectl comes from `KUBECTL` if set, else `kubectl` on `PATH`. Without one the trial is
//! reported ignored with the reason, except under CI (`harness::in_ci`), where a missing kubectl
//! fails (`.ci/run` takes it from the same registry package as helm).

use std::path::{Path, PathBuf};

use harness::diagnostic::Severity;
use harness::lint::{Inputs, run};
use harness::project::Project;
use harness::scenario::Catalog;
use libtest_mimic::{Arguments, Completion, Failed, Trial};

fn kubectl_dir() -> Option<PathBuf> {
    if let Some(k) = std::env::var_os("KUBECTL").filter(|k| !k.is_empty()) {
        return Path::new(&k).parent().map(Path::to_owned);
    }
    harness::preflight::find_on_path("kubectl", std::env::var_os("PATH").as_deref())
        .and_then(|k| k.parent().map(Path::to_owned))
}

fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
}

/// An overlay whose base routes to a Service through Kong, and whose patch sets the Ingress's
/// class: linted as built, the class is there (no `ingress-no-class`); the base alone, built
/// on its own, lacks it, and the finding names the base's directory.
fn overlays_are_linted_as_built() -> Result<Completion, Failed> {
    let Some(dir) = kubectl_dir() else {
        if harness::in_ci() {
            return Err("no kubectl (set KUBECTL or put kubectl on PATH): under CI this must run".into());
        }
        return Ok(Completion::ignored_with("no kubectl: set KUBECTL or put kubectl on PATH (README, Development)"));
    };
    let tree = tempfile::tempdir().map_err(|e| e.to_string())?;
    write(
        tree.path(),
        &[
            ("base/kustomization.yaml", "resources:\n- ingress.yaml\n"),
            (
                "base/ingress.yaml",
                "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: orders\nspec:\n  rules:\n  \
                 - host: shop.example.com\n    http:\n      paths:\n      - path: /orders\n        pathType: Prefix\n        \
                 backend:\n          service: {name: orders, port: {number: 80}}\n",
            ),
            (
                "overlays/prod/kustomization.yaml",
                "resources:\n- ../../base\nnamespace: shop\npatches:\n- target: {kind: Ingress, name: orders}\n  \
                 patch: |-\n    - op: add\n      path: /spec/ingressClassName\n      value: kong\n",
            ),
        ],
    );
    // kubectl found through PATH, as lint finds it.
    let path = std::env::join_paths(
        std::iter::once(dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .map_err(|e| e.to_string())?;
    // SAFETY: the one trial of this test binary that touches the environment, set before it reads it.
    unsafe { std::env::set_var("PATH", path) };
    let catalog = Catalog::built_in(Project::standalone(tree.path()));
    let lint = |dir: &str| run(&catalog, &Inputs { paths: vec![tree.path().join(dir)], ..Inputs::default() });

    let base = lint("base");
    let shown: Vec<String> =
        base.findings.iter().map(|d| format!("{} {} {}", d.code, d.file.display(), d.message)).collect();
    let no_class = base.findings.iter().find(|d| d.code == "ingress-no-class").ok_or(format!("{shown:?}"))?;
    // Reported at the kustomization file (which exists: CI annotations land there), with the
    // line of the build it is on.
    if !no_class.file.ends_with("base/kustomization.yaml") || !no_class.message.contains("(in `kubectl kustomize") {
        return Err(format!("the finding names the kustomization and the build's line: {shown:?}").into());
    }
    let prod = lint("overlays/prod");
    let shown: Vec<String> =
        prod.findings.iter().map(|d| format!("{} {} {}", d.code, d.file.display(), d.message)).collect();
    if prod.findings.iter().any(|d| d.code == "ingress-no-class" || d.code == "kustomize") || prod.read_nothing {
        return Err(format!("the overlay is read as built, its patch applied: {shown:?}").into());
    }
    if prod.findings.iter().any(|d| d.severity == Severity::Error) {
        return Err(format!("{shown:?}").into());
    }
    Ok(Completion::Completed)
}

fn main() {
    let args = Arguments::from_args();
    let trials = vec![Trial::ignorable_test("kustomize::overlays_are_linted_as_built", overlays_are_linted_as_built)];
    libtest_mimic::run(&args, trials).exit();
}
