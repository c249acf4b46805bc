//! The CLI as a user meets it: exit codes and messages of the real binary.

use std::path::Path;
use std::process::{Command, Output};

fn xtask(args: &[&str], tweak: impl FnOnce(&mut Command)) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kme2e"));
    cmd.args(args);
    tweak(&mut cmd);
    cmd.output().expect("the xtask binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A machine without Docker, kind or helm: empty PATH, a Docker socket that does not exist.
fn bare_machine(cmd: &mut Command) {
    let nowhere = std::env::temp_dir().join("kong-mesh-e2e-no-such-dir");
    cmd.env("PATH", &nowhere)
        .env("DOCKER_HOST", format!("unix://{}/docker.sock", nowhere.display()))
        .env("KME2E_TOOLS_DIR", nowhere.join("tools"));
}

#[test]
fn e2e_without_docker_names_what_is_missing_and_fails() {
    let out = xtask(&["e2e", "istio"], bare_machine);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("MISSING docker"), "{err}");
    assert!(err.contains("cannot run the live path: missing docker, docker-cli"), "{err}");
    assert!(err.contains("Nothing was created"), "{err}");
    assert!(err.contains("later   helm"), "helm is fetched by the run: {err}");
    assert!(err.contains("from https://get.helm.sh/helm-v4.3.0-"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn doctor_without_docker_fails_with_fixes() {
    let out = xtask(&["doctor", "--format", "json"], bare_machine);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = report["checks"].as_array().unwrap();
    // What is missing, low or still to download says what to do about it.
    let needs_word = |c: &&serde_json::Value| c["ok"] == false || c["low"] == true || c["will_download"] == true;
    assert!(checks.iter().filter(needs_word).all(|c| c["fix"].is_string()), "{report}");
    let host: Vec<&str> = checks.iter().filter_map(|c| c["name"].as_str()).collect();
    assert!(host.contains(&"disk"), "{report}");
    // Memory comes from Docker (absent here) or /proc/meminfo (Linux).
    assert_eq!(host.contains(&"memory"), cfg!(target_os = "linux"), "{report}");
    let missing: Vec<&str> = checks.iter().filter(|c| c["ok"] == false).filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(missing, ["docker", "docker-cli"], "{report}");
    assert!(checks.iter().filter(|c| c["will_download"] == true).count() == 2, "{report}");
    assert_eq!(report["ready"], false, "{report}");
}

#[test]
fn the_existing_provider_refuses_without_a_context() {
    let out = xtask(&["e2e", "istio", "--provider", "existing", "--proxy", "http://127.0.0.1:8080"], bare_machine);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let err = stderr(&out);
    assert!(err.contains("--context <CONTEXT>"), "{err}");
}

#[test]
fn down_takes_a_run_or_all_not_both() {
    let out = xtask(&["down", "--run", "r1", "--all"], bare_machine);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot be used with"), "{}", stderr(&out));
}

#[test]
fn dry_run_prints_the_plan_without_docker() {
    let out = xtask(&["e2e", "linkerd", "--dry-run"], bare_machine);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("scenario mtls-kong-identity"), "{plan}");
}

#[test]
fn lint_exit_codes_follow_the_contract() {
    assert_eq!(xtask(&["lint"], |_| {}).status.code(), Some(0));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.yaml");
    std::fs::write(&bad, "name: broken\nsummary: s\nmeshes: [istio]\ncovers: [ingress]\nstpes: []\n").unwrap();
    let out = xtask(&["lint", bad.to_str().unwrap(), "--format", "json"], |_| {});
    assert_eq!(out.status.code(), Some(1));
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(findings[0]["rule"], "schema");
    assert_eq!(findings[0]["line"], 5);
    assert_eq!(findings[0]["fix"], "did you mean `steps`?");

    let missing = Path::new("no/such/scenario.yaml");
    assert_eq!(xtask(&["lint", missing.to_str().unwrap()], |_| {}).status.code(), Some(2));
}

#[test]
fn list_json_has_every_scenario_with_meshes_and_tags() {
    let out = xtask(&["list", "--format", "json"], |_| {});
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = listing["scenarios"].as_array().unwrap();
    let names: Vec<&str> = entries.iter().filter_map(|e| e["name"].as_str()).collect();
    assert!(names.contains(&"ingress-basic") && names.contains(&"mtls-kong-identity"), "{names:?}");
    assert!(entries.iter().all(|e| !e["meshes"].as_array().unwrap().is_empty()));
    assert_eq!(listing["broken"], serde_json::json!([]));
}

/// A team's own repository: a copy of versions.toml, scenarios/ and fixtures/ elsewhere, with a
/// scenario of its own and a broken file. The binary run there lists and plans the team's
/// scenarios (not this checkout's), and the broken file fails alone: `list` and `plan` show it
/// and exit 1, `e2e --scenario` of another scenario is not held up by it.
#[test]
fn a_copied_project_with_its_own_and_a_broken_scenario() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let team = tempfile::tempdir().unwrap();
    let copy = |from: &Path, to: &Path| {
        for entry in walk(from) {
            let target = to.join(entry.strip_prefix(from).unwrap());
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(&entry, &target).unwrap();
        }
    };
    std::fs::copy(root.join("versions.toml"), team.path().join("versions.toml")).unwrap();
    copy(&root.join("fixtures"), &team.path().join("fixtures"));
    std::fs::create_dir_all(team.path().join("scenarios")).unwrap();
    let basic = std::fs::read_to_string(root.join("scenarios/ingress-basic.yaml")).unwrap();
    std::fs::write(
        team.path().join("scenarios/orders-api.yaml"),
        basic.replace("name: ingress-basic", "name: orders-api"),
    )
    .unwrap();
    std::fs::write(team.path().join("scenarios/half-written.yaml"), "name: half-written\nsummary: [unclosed\n")
        .unwrap();
    let here = |c: &mut Command| {
        bare_machine(c);
        c.current_dir(team.path());
    };

    let out = xtask(&["list"], here);
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "a broken file fails the listing: {listed}");
    assert!(listed.starts_with("orders-api "), "the team's scenario, not this checkout's: {listed}");
    assert!(!listed.contains("ingress-basic"), "{listed}");
    assert!(
        listed.contains("half-written")
            && listed.contains("DOES NOT LOAD")
            && listed.contains("half-written.yaml:2:10")
    );

    let out = xtask(&["plan", "istio"], here);
    let plan = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{plan}");
    assert!(plan.contains("scenario orders-api (scenarios/orders-api.yaml)"), "{plan}");
    assert!(plan.contains("scenario half-written (scenarios/half-written.yaml) DOES NOT LOAD"), "{plan}");

    let out = xtask(&["e2e", "istio", "--scenario", "orders-api", "--dry-run"], here);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(plan.contains("scenario orders-api") && !plan.contains("half-written"), "{plan}");
    let out = xtask(&["e2e", "istio", "--scenario", "half-written", "--dry-run"], here);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no selected scenario can run"), "{}", stderr(&out));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// `--no-install` on an existing cluster: the dry run shows no kind cluster, no Helm install and
/// no preloading, only what will be discovered.
#[test]
fn no_install_dry_runs_install_and_create_nothing() {
    let args = [
        "e2e",
        "istio",
        "--provider",
        "existing",
        "--context",
        "staging",
        "--proxy",
        "http://127.0.0.1:8080",
        "--no-install",
        "--kong-namespace",
        "edge",
        "--dry-run",
    ];
    let out = xtask(&args, bare_machine);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(plan.contains("cluster: the existing context `staging` (read only"), "{plan}");
    assert!(plan.contains("environment: nothing is installed; Kong in namespace edge and the mesh are discovered"));
    for absent in ["kind ", "helm ", "images loaded", "CRDs"] {
        assert!(!plan.contains(absent), "`{absent}` in {plan}");
    }
    let out = xtask(&["e2e", "istio", "--no-install", "--dry-run"], bare_machine);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("needs --provider existing"), "{}", stderr(&out));
}

#[test]
fn a_typo_in_a_subcommand_is_a_usage_error() {
    let out = xtask(&["e2e", "consul"], |_| {});
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown mesh `consul`"));
}

#[test]
fn a_repro_bundle_exports_lints_and_plans() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bug.yaml");
    let out = xtask(&["repro", "export", "jwt-auth", "--mesh", "istio", "--out", bundle.to_str().unwrap()], |_| {});
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(xtask(&["lint", bundle.to_str().unwrap()], |_| {}).status.code(), Some(0));
    let run = xtask(&["repro", "run", bundle.to_str().unwrap(), "--dry-run"], bare_machine);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert!(String::from_utf8_lossy(&run.stdout).contains("scenario jwt-auth"));
    assert!(stderr(&run).contains("expected: every step passes"), "{}", stderr(&run));
    // The bundle says which harness wrote it and carries Kong's values in force.
    let text = std::fs::read_to_string(&bundle).unwrap();
    let parsed: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(parsed["harness"]["version"], env!("CARGO_PKG_VERSION"), "{text}");
    assert!(parsed["harness"]["commit"].as_str().is_some_and(|c| !c.is_empty()), "{text}");
    assert_eq!(parsed["values"]["kong/ingress"]["gateway"]["proxy"]["http"]["nodePort"], 30080, "{text}");
    // Another harness wrote it: said before anything else happens.
    std::fs::write(
        &bundle,
        text.replacen(&format!("version: \"{}\"", env!("CARGO_PKG_VERSION")), "version: \"0.0.1\"", 1),
    )
    .unwrap();
    let run = xtask(&["repro", "run", bundle.to_str().unwrap(), "--dry-run"], bare_machine);
    assert!(stderr(&run).contains("warning: the bundle was written by harness 0.0.1"), "{}", stderr(&run));
}

/// Issue 25 item 9: a bundle's `expected.detail` and note with terminal sequences (OSC window
/// title, screen clear), bidi controls, `::error::` lines and legacy `##[...]` commands reach
/// the terminal and the CI log only escaped.
#[test]
fn repro_run_shows_a_bundles_expected_text_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bug.yaml");
    let out = xtask(&["repro", "export", "jwt-auth", "--mesh", "istio", "--out", bundle.to_str().unwrap()], |_| {});
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&bundle).unwrap();
    let crafted = "expected:\n  outcome: fails\n  step: 1\n  detail: \"503\\e]0;all green\\a\\e[2J\\e[H\\u202Etxt.exe\
                   \\n::error file=a.yaml::forged ##[error]x ##[stop-commands]tok\"\n  note: \"see \\u2066admin\\u2069\
                   \\n  ::warning::x\\e[31m\"\n";
    assert!(text.contains("expected:\n  outcome: passes\n"), "{text}");
    std::fs::write(&bundle, text.replacen("expected:\n  outcome: passes\n", crafted, 1)).unwrap();
    let run = xtask(&["repro", "run", bundle.to_str().unwrap(), "--dry-run"], bare_machine);
    let err = stderr(&run);
    assert_eq!(run.status.code(), Some(0), "{err}");
    assert!(!err.chars().any(|c| c.is_control() && c != '\n'), "{err:?}");
    assert!(!err.contains(['\u{202e}', '\u{2066}', '\u{2069}']), "{err:?}");
    assert!(!err.contains("##["), "{err}");
    assert!(err.lines().all(|l| !l.trim_start().starts_with("::")), "{err}");
    assert!(err.contains("expected: step 1 fails with `503\\u{1b}]0;all green\\u{7}\\u{1b}[2J"), "{err}");
    assert!(err.contains("\\u{202e}txt.exe\n| ::error file=a.yaml::forged #\\u{23}[error]x"), "{err}");
    assert!(err.contains("note: see \\u{2066}admin\\u{2069}\n|   ::warning::x\\u{1b}[31m"), "{err}");
}

/// `repro new`: a user's manifests, values and one request become a bundle that lints clean,
/// expects its step to fail (the bug), and dry-runs; the user's values are theirs to trust.
#[test]
fn repro_new_round_trips_to_lint_and_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::copy(root.join("fixtures/base/echo.yaml"), manifests.join("shop.yaml")).unwrap();
    let values = dir.path().join("mine.yaml");
    std::fs::write(&values, "gateway:\n  env:\n    log_level: debug\n").unwrap();
    let bundle = dir.path().join("bug.yaml");
    let b = bundle.to_str().unwrap();
    let args = [
        "repro",
        "new",
        "--name",
        "shop-503",
        "--mesh",
        "istio",
        "--manifests",
        manifests.to_str().unwrap(),
        "--values",
        &format!("kong/ingress={}", values.display()),
        "--request",
        "GET /echo/orders",
        "--expect-status",
        "200",
        "--out",
        b,
    ];
    let out = xtask(&args, bare_machine);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The scenario waits for the user's Deployment, then states the request.
    assert!(stderr(&out).contains("expected: step 2 fails"), "{}", stderr(&out));
    // The user's own values only configure Kong (its log level): the bundle lints clean and
    // runs without trust, with those values layered under the harness's.
    let lint = xtask(&["lint", b], bare_machine);
    // Findings on stdout, the summary on stderr.
    let found = String::from_utf8_lossy(&lint.stdout).into_owned();
    assert_eq!(lint.status.code(), Some(0), "{found}{}", stderr(&lint));
    assert!(!found.contains("error["), "{found}");
    let run = xtask(&["repro", "run", b, "--dry-run"], bare_machine);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let plan = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        plan.contains("scenario shop-503")
            && plan.contains("step 1: wait Deployment/echo-v1 available")
            && plan.contains("step 2: http GET /echo/orders"),
        "{plan}"
    );
    assert!(plan.contains("values-kong-ingress.yaml (yours); the harness adds its own"), "{plan}");
    // Values that choose what runs (Kong's image) need trust: named at the bundle's line, with
    // the flag in the hint.
    std::fs::write(&values, "gateway:\n  env:\n    log_level: debug\n  image:\n    repository: acme/kong\n").unwrap();
    let out = xtask(&args, bare_machine);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lint = xtask(&["lint", b], bare_machine);
    let found = String::from_utf8_lossy(&lint.stdout).into_owned();
    assert_eq!(lint.status.code(), Some(1), "{found}");
    assert!(
        found.contains("error[bundle-pins]: the bundle's kong/ingress values set `gateway.image.repository`"),
        "{found}"
    );
    assert!(found.contains("--trust-bundle-pins"), "{found}");
    assert_eq!(found.matches("error[").count(), 1, "the log level needs no trust: {found}");
    let run = xtask(&["repro", "run", b, "--dry-run"], bare_machine);
    assert_eq!(run.status.code(), Some(1));
    assert!(stderr(&run).contains("values.kong/ingress:gateway.image.repository"), "{}", stderr(&run));
    assert!(!stderr(&run).contains("log_level"), "{}", stderr(&run));
    let run = xtask(&["repro", "run", b, "--dry-run", "--trust-bundle-pins"], bare_machine);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
}

/// `replay`: 0 when every verdict is the expected one, 1 when one differs, 2 when unreadable.
#[test]
fn replay_exit_codes_follow_the_verdicts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shipped = root.join("scenarios/transcripts/istio/from-pod-refused-rbac-403.yaml");
    let out = xtask(&["replay", shipped.to_str().unwrap()], |_| {});
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.yaml");
    let text = std::fs::read_to_string(&shipped).unwrap().replace("verdict: pass", "verdict: fail");
    std::fs::write(&wrong, text).unwrap();
    let out = xtask(&["replay", wrong.to_str().unwrap()], |_| {});
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("DIFFERS  pass"), "{out:?}");
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "mesh: istio\nverdict: maybe\n").unwrap();
    let out = xtask(&["replay", dir.path().to_str().unwrap()], |_| {});
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).contains("panicked"));
}

/// lint refuses a mutant naming an object the fixtures do not hold, at the mutant.
#[test]
fn lint_refuses_a_mutant_of_an_object_that_does_not_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("scenarios/mtls-kong-identity.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mtls-kong-identity.yaml");
    std::fs::write(&file, text.replace("name: require-mtls}]", "name: require-mtsl}]")).unwrap();
    let out = xtask(&["lint", file.to_str().unwrap()], |_| {});
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("no PeerAuthentication/require-mtsl among the scenario's fixtures on istio"), "{all}");
    assert!(all.contains("field: mutants[0].name"), "{all}");
}

/// A stranger's bundle cannot choose the binaries that run: lint reports each pin that differs
/// from the checkout's, and `repro run` (even `--dry-run`) refuses it before unpacking.
#[test]
fn a_bundle_with_foreign_pins_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bug.yaml");
    let out =
        xtask(&["repro", "export", "ingress-basic", "--mesh", "istio", "--out", bundle.to_str().unwrap()], |_| {});
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&bundle).unwrap();
    let hostile = text.replace("https://github.com/kubernetes-sigs/kind/releases/download/", "https://evil.test/");
    assert_ne!(hostile, text);
    std::fs::write(&bundle, hostile).unwrap();
    let lint = xtask(&["lint", bundle.to_str().unwrap()], |_| {});
    assert_eq!(lint.status.code(), Some(1), "{}", stderr(&lint));
    let findings = String::from_utf8_lossy(&lint.stdout);
    assert!(findings.contains("error[bundle-pins]: the bundle pins `tools.kind.url`"), "{findings}");
    let run = xtask(&["repro", "run", bundle.to_str().unwrap(), "--dry-run"], bare_machine);
    let err = stderr(&run);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(err.contains("tools.kind.url: bundle `https://evil.test/{version}/kind-{os}-{arch}`"), "{err}");
    assert!(err.contains("--trust-bundle-pins"), "{err}");
    assert!(run.stdout.is_empty(), "no plan for a refused bundle");
}

/// A scenario name that climbs out of its directory is refused at load, before any path exists:
/// the directory it points at is untouched, even without `--dry-run`.
#[test]
fn a_bundle_cannot_delete_outside_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim").join("project");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("precious"), "keep me").unwrap();
    let bundle = dir.path().join("bug.yaml");
    let out =
        xtask(&["repro", "export", "ingress-basic", "--mesh", "istio", "--out", bundle.to_str().unwrap()], |_| {});
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let climb = format!("scenario: ingress-basic/../../../../../../../..{}", dir.path().join("victim").display());
    let text = std::fs::read_to_string(&bundle).unwrap().replacen("scenario: ingress-basic", &climb, 1);
    std::fs::write(&bundle, text).unwrap();
    let run = xtask(&["repro", "run", bundle.to_str().unwrap()], bare_machine);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert!(stderr(&run).contains("is not kebab-case"), "{}", stderr(&run));
    assert_eq!(std::fs::read_to_string(victim.join("precious")).unwrap(), "keep me");
}

/// `lint --format json | head`: a reader that goes away ends the output quietly.
#[test]
fn a_closed_pipe_is_not_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kme2e"))
        .args(["lint", "--format", "json", root.join("fixtures/pitfalls").to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert_ne!(out.status.code(), Some(101));
    // Standard error closed too (`kme2e ... 2>&1 | head`): lint's verdict, not a panic's 101.
    let mut child = Command::new(env!("CARGO_BIN_EXE_kme2e"))
        .args(["lint", root.join("fixtures/pitfalls").to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "the pitfalls hold errors: {status:?}");
}

/// Text output escapes what input says: terminal escapes and GitHub workflow commands in a
/// file's content or name do not reach the log raw.
#[test]
fn diagnostics_do_not_pass_escapes_or_workflow_commands_through() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("evil.yaml");
    std::fs::write(&file, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \"a\\e[2J\\n::error::pwned\"\n")
        .unwrap();
    let out = xtask(&["lint", file.to_str().unwrap()], |_| {});
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains('\u{1b}'), "{err}");
    assert!(err.lines().all(|l| !l.trim_start().starts_with("::")), "{err}");
}

/// The controls CI adoption needs: deny warnings, allow a rule (counted), silence one object,
/// SARIF and GitHub annotations, the rule list and explanations, the schema version.
#[test]
fn lint_controls_for_ci() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ingress.yaml");
    // One warning (no class) and one error (unknown annotation).
    std::fs::write(
        &file,
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: a\n  annotations:\n    konghq.com/stripp-path: \"true\"\nspec:\n  defaultBackend: {service: {name: s, port: {number: 80}}}\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let run = |args: &[&str]| xtask(&[&["lint", path][..], args].concat(), |_| {});
    assert_eq!(run(&[]).status.code(), Some(1));
    let allowed = run(&["--allow", "kong-annotation-unknown"]);
    assert_eq!(allowed.status.code(), Some(0), "{}", stderr(&allowed));
    assert!(stderr(&allowed).contains("1 suppressed (kong-annotation-unknown x1)"), "{}", stderr(&allowed));
    let denied = run(&["--allow", "kong-annotation-unknown", "--deny-warnings"]);
    assert_eq!(denied.status.code(), Some(1), "{}", stderr(&denied));
    assert_eq!(run(&["--allow", "kong-annotation-unknwn"]).status.code(), Some(2));
    // The object silences both of its findings itself.
    let silenced = std::fs::read_to_string(&file).unwrap().replace(
        "  annotations:\n",
        "  annotations:\n    lint.kme2e.dev/ignore: \"kong-annotation-unknown, ingress-no-class\"\n",
    );
    std::fs::write(&file, silenced).unwrap();
    let quiet = run(&["--deny-warnings"]);
    assert_eq!(quiet.status.code(), Some(0), "{}", stderr(&quiet));
    assert!(stderr(&quiet).contains("2 suppressed"), "{}", stderr(&quiet));
    std::fs::write(
        &file,
        "apiVersion: configuration.konghq.com/v1\nkind: KongPlugin\nmetadata: {name: p}\nplugin: rate-limting\n",
    )
    .unwrap();
    let sarif = run(&["--format", "sarif"]);
    let log: serde_json::Value = serde_json::from_slice(&sarif.stdout).unwrap();
    assert_eq!(log["runs"][0]["results"][0]["ruleId"], "kong-plugin-unknown");
    let github = String::from_utf8_lossy(&run(&["--format", "github"]).stdout).into_owned();
    assert!(github.starts_with("::error file=") && github.contains("title=kong-plugin-unknown::"), "{github}");
    let rules = xtask(&["lint", "--list-rules"], |_| {});
    assert!(String::from_utf8_lossy(&rules.stdout).lines().any(|l| l.starts_with("crd-schema")), "{rules:?}");
    let explain = xtask(&["lint", "--explain", "kong-annotation-unknown"], |_| {});
    let text = String::from_utf8_lossy(&explain.stdout);
    assert!(text.contains("evidence: https://") && text.contains("example: fixtures/pitfalls/"), "{text}");
    assert_eq!(xtask(&["lint", "--explain", "no-such-rule"], |_| {}).status.code(), Some(2));
    assert_eq!(run(&["--kubernetes-version", "v1.35.8"]).status.code(), Some(1));
    assert_eq!(run(&["--kubernetes-version", "1.20"]).status.code(), Some(2));
}

/// A dry run on an existing cluster describes that cluster, never a kind cluster it will not
/// create; `--context` without `--provider existing` is an error.
#[test]
fn dry_runs_describe_the_provider_they_would_use() {
    let out = xtask(
        &[
            "e2e",
            "none",
            "--dry-run",
            "--provider",
            "existing",
            "--context",
            "staging",
            "--proxy",
            "http://127.0.0.1:8080",
        ],
        bare_machine,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("cluster: the existing context `staging`"), "{plan}");
    assert!(!plan.contains("cluster: kind"), "{plan}");
    let out = xtask(&["e2e", "none", "--dry-run", "--context", "staging"], bare_machine);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("need --provider existing"), "{}", stderr(&out));
}

/// The project is where the command runs (or --project), not where the binary was built.
#[test]
fn the_project_comes_from_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = xtask(&["list"], |c| {
        c.current_dir(dir.path());
    });
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no kme2e project"), "{}", stderr(&out));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = xtask(&["--project", root.to_str().unwrap(), "list"], |c| {
        c.current_dir(dir.path());
    });
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ingress-basic"));
}

/// `down` says when there is no such run, and downloads nothing when there is nothing to do.
#[test]
fn down_without_anything_to_remove_downloads_nothing() {
    let out = xtask(&["down", "--run", "rnosuchrun"], bare_machine);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no run `rnosuchrun`"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("cannot download"), "{}", stderr(&out));
}

/// Your values, merged under the harness's: the plan names each key the harness set over yours
/// and why; values that take Kong out of the mesh are refused at their line, before anything.
#[test]
fn user_values_are_merged_and_conflicts_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kong.yaml");
    std::fs::write(&file, "gateway:\n  replicaCount: 2\n  proxy:\n    type: LoadBalancer\n").unwrap();
    let values = format!("kong/ingress={}", file.display());
    let out = xtask(&["plan", "istio", "--values", &values], |_| {});
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("the harness sets gateway.proxy.type = \"NodePort\" (yours: \"LoadBalancer\")"), "{plan}");
    let json = xtask(&["plan", "istio", "--values", &values, "--format", "json"], |_| {});
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let kong = plan["environment"].as_array().unwrap().iter().find(|a| a["name"] == "kong").unwrap();
    assert_eq!(kong["values"]["gateway"]["replicaCount"], 2, "{kong}");
    std::fs::write(&file, "gateway:\n  podLabels:\n    sidecar.istio.io/inject: \"false\"\n").unwrap();
    let out = xtask(&["e2e", "istio", "--dry-run", "--values", &values], bare_machine);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("error[values-conflict]") && stderr(&out).contains("kong.yaml:3:5"),
        "{}",
        stderr(&out)
    );
}

/// `--shard 1/2` and `2/2` plan disjoint sets that together are every scenario of the mesh.
#[test]
fn shards_plan_disjoint_sets_that_cover_every_scenario() {
    let planned = |shard: Option<&str>| -> Vec<String> {
        let mut args = vec!["e2e", "istio", "--dry-run"];
        if let Some(s) = shard {
            args.extend(["--shard", s]);
        }
        let out = xtask(&args, bare_machine);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("scenario "))
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect();
        names.sort();
        names
    };
    let (all, first, second) = (planned(None), planned(Some("1/2")), planned(Some("2/2")));
    assert!(!first.is_empty() && !second.is_empty(), "{first:?} {second:?}");
    assert!(first.iter().all(|n| !second.contains(n)), "disjoint: {first:?} {second:?}");
    let mut both = [first.clone(), second].concat();
    both.sort();
    assert_eq!(both, all, "together, every scenario");
    assert_eq!(planned(Some("1/2")), first, "stable");
    let out = xtask(&["e2e", "istio", "--dry-run", "--shard", "3/2"], bare_machine);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// Issue 25 item 3: a stranger's bundle whose container chooses its own command is refused by
/// `lint` and `repro run` at its line unless trusted, and never runs on your own cluster
/// (`--provider existing`) without `--trust-bundle`.
#[test]
fn an_untrusted_bundle_chooses_no_command_and_stays_off_your_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bug.yaml");
    let out =
        xtask(&["repro", "export", "ingress-basic", "--mesh", "istio", "--out", bundle.to_str().unwrap()], |_| {});
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let b = bundle.to_str().unwrap();
    let existing =
        ["repro", "run", b, "--dry-run", "--provider", "existing", "--context", "c", "--proxy", "http://127.0.0.1:1"];
    let run = xtask(&existing, bare_machine);
    assert_ne!(run.status.code(), Some(0));
    assert!(stderr(&run).contains("only with --trust-bundle"), "{}", stderr(&run));
    // The echo container, given a command of the bundle's own.
    let text = std::fs::read_to_string(&bundle).unwrap();
    // The fixture is inline in the bundle, indented deeper: keep the image line's indentation.
    let line = text.lines().find(|l| l.trim() == "image: \"{{ images.echo }}\"").expect("the echo image line");
    let indent = &line[..line.len() - line.trim_start().len()];
    let edited = text.replacen(
        &format!("{line}\n"),
        &format!("{line}\n{indent}command: [sh, -c, 'wget -qO- http://169.254.169.254/']\n"),
        1,
    );
    std::fs::write(&bundle, edited).unwrap();
    let lint = xtask(&["lint", b], |_| {});
    assert_eq!(lint.status.code(), Some(1), "{}", String::from_utf8_lossy(&lint.stdout));
    let said = format!("{}{}", String::from_utf8_lossy(&lint.stdout), stderr(&lint));
    assert!(said.contains("run their image's own entrypoint") && said.contains("--trust-bundle"), "{said}");
    let run = xtask(&["repro", "run", b, "--dry-run"], bare_machine);
    assert_ne!(run.status.code(), Some(0));
    assert!(stderr(&run).contains("run their image's own entrypoint"), "{}", stderr(&run));
    // Trusting the pins is not trusting the fixtures: the sandbox stays.
    let pins = xtask(&["repro", "run", b, "--dry-run", "--trust-bundle-pins"], bare_machine);
    assert!(stderr(&pins).contains("run their image's own entrypoint"), "{}", stderr(&pins));
    let trusted = xtask(&["repro", "run", b, "--dry-run", "--trust-bundle"], bare_machine);
    assert!(!stderr(&trusted).contains("own entrypoint"), "{}", stderr(&trusted));
}

/// Issue 28 item 1: repeated `--values CHART=FILE` layer in order as `helm -f a -f b` does,
/// and the plan shows the layering; the second file is never dropped.
#[test]
fn repeated_values_files_layer_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    std::fs::write(&a, "gateway:\n  podLabels: {team: payments}\n  replicaCount: 1\n").unwrap();
    std::fs::write(&b, "gateway:\n  podLabels: {tier: edge}\n  replicaCount: 2\n").unwrap();
    let va = format!("kong/ingress={}", a.display());
    let vb = format!("kong/ingress={}", b.display());
    let out = xtask(&["plan", "istio", "--values", &va, "--values", &vb, "--format", "json"], |_| {});
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kong = plan["environment"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "helm" && a["chart"] == "ingress")
        .expect("the kong release");
    let labels = &kong["values"]["gateway"]["podLabels"];
    assert_eq!(labels["team"], "payments", "{kong}");
    assert_eq!(labels["tier"], "edge", "{kong}");
    assert_eq!(kong["values"]["gateway"]["replicaCount"], 2, "the later file wins: {kong}");
    assert_eq!(kong["user_values"].as_array().map(Vec::len), Some(2), "{kong}");
    let text = xtask(&["plan", "istio", "--values", &va, "--values", &vb], |_| {});
    let shown = String::from_utf8_lossy(&text.stdout);
    assert!(shown.contains("(yours, layered in this order: later wins)"), "{shown}");
}

/// A config repository's CI has no kme2e project: `lint`, `doctor`, `--list-rules`,
/// `--explain` and `replay` work there with the built-in pins (and say so); other commands
/// still ask for a project. A `scenarios/` directory of the user's is not taken for ours.
#[test]
fn commands_that_need_no_project_work_anywhere() {
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(repo.path().join("deploy")).unwrap();
    std::fs::create_dir_all(repo.path().join("scenarios")).unwrap();
    // An Ingress as users write it, without a class: one warning.
    let ingress = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: orders\nspec:\n  rules:\n    - host: orders.example.com\n      http:\n        paths:\n          - path: /orders\n            pathType: Prefix\n            backend:\n              service: {name: orders, port: {number: 80}}\n";
    std::fs::write(repo.path().join("deploy/orders.yaml"), ingress).unwrap();
    std::fs::write(repo.path().join("scenarios/load-test.yaml"), ingress).unwrap();
    let here = |c: &mut Command| {
        c.current_dir(repo.path());
    };
    let out = xtask(&["lint", "deploy", "scenarios"], here);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let findings = String::from_utf8_lossy(&out.stdout);
    assert_eq!(findings.matches("warning[ingress-no-class]").count(), 2, "{findings}");
    assert!(stderr(&out).contains("note: no kme2e project at"), "{}", stderr(&out));
    assert!(stderr(&out).contains("using the pins built into"), "{}", stderr(&out));
    // Nothing named: an error that says what to do, not a lint of nothing.
    let out = xtask(&["lint"], here);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("name the files or directories to lint"));
    for args in [&["lint", "--list-rules"][..], &["lint", "--explain", "ingress-no-class"]] {
        let out = xtask(args, here);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("ingress-no-class"), "{args:?}");
        // They read no pins: no note about the built-in ones.
        assert!(!stderr(&out).contains("using the pins built into"), "{args:?}: {}", stderr(&out));
    }
    let out = xtask(&["doctor", "--format", "json"], |c| {
        bare_machine(c);
        c.current_dir(repo.path());
    });
    assert_eq!(out.status.code(), Some(1), "a bare machine lacks Docker: {}", stderr(&out));
    assert!(serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok());
    let transcripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/transcripts");
    let out = xtask(&["replay", transcripts.to_str().unwrap()], here);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = xtask(&["list"], here);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no kme2e project"), "{}", stderr(&out));
}

/// As a newcomer ran it: `e2e --dry-run` with Kong values that `lint --values` finds an error in
/// (a boolean pod label the API server rejects) says so at the line and creates nothing, where
/// it used to print "lint: clean".
#[test]
fn e2e_lints_the_values_it_would_install() {
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("kong.yaml");
    std::fs::write(&values, "gateway:\n  podLabels:\n    sidecar.istio.io/inject: true\n").unwrap();
    let arg = format!("kong/ingress={}", values.display());
    let out = xtask(&["e2e", "istio", "--dry-run", "--scenario", "ingress-basic", "--values", &arg], |_| {});
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("error[kong-values-label-type]") && err.contains(":3:"), "{err}");
    assert!(err.contains("nothing was created"), "{err}");
    assert!(out.stdout.is_empty(), "no plan is shown for values that would fail");
}

/// The GitHub Action's lint step (action/lint.sh) as the runner runs it: annotations on
/// standard output, SARIF in its file, lint's exit code as the step's `exit-code` output (the
/// job fails on it after the upload), whatever the findings.
#[test]
fn the_actions_lint_step_annotates_writes_sarif_and_keeps_the_exit_code() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../action/lint.sh");
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(repo.path().join("deploy")).unwrap();
    let ingress = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: orders\nspec:\n  rules:\n    - host: orders.example.com\n      http:\n        paths:\n          - path: /orders\n            pathType: Prefix\n            backend:\n              service: {name: orders, port: {number: 80}}\n";
    std::fs::write(repo.path().join("deploy/orders.yaml"), ingress).unwrap();
    std::fs::write(repo.path().join("kong.yaml"), "gateway:\n  podLabels:\n    sidecar.istio.io/inject: true\n")
        .unwrap();
    let run = |values: &str| {
        let output = repo.path().join("github-output");
        let _ = std::fs::remove_file(&output);
        let out = Command::new("bash")
            .arg(&script)
            .current_dir(repo.path())
            .env("KME2E", env!("CARGO_BIN_EXE_kme2e"))
            .env("KME2E_PATHS", "deploy")
            .env("KME2E_MESH", "istio")
            .env("KME2E_VALUES", values)
            .env("KME2E_SARIF", "lint.sarif")
            .env("GITHUB_OUTPUT", &output)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "the step itself succeeds: {}", stderr(&out));
        let sarif: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(repo.path().join("lint.sarif")).unwrap()).unwrap();
        (String::from_utf8_lossy(&out.stdout).into_owned(), sarif, std::fs::read_to_string(&output).unwrap())
    };
    // A warning only: annotated, in SARIF, exit code 0.
    let (annotations, sarif, outputs) = run("");
    assert!(annotations.contains("::warning file=deploy/orders.yaml"), "{annotations}");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(results.iter().any(|r| r["ruleId"] == "ingress-no-class"), "{sarif}");
    assert_eq!(outputs.trim(), "exit-code=0");
    // With values whose label the API server rejects: an error, and the exit code that fails the job.
    let (annotations, _, outputs) = run("  kong/ingress=kong.yaml  \n");
    assert!(annotations.contains("::error file=kong.yaml"), "{annotations}");
    assert_eq!(outputs.trim(), "exit-code=1");
}

/// A project whose scenarios all run on Istio: the nightly matrix has no Linkerd or no-mesh job,
/// and `e2e linkerd` refuses to build a cluster to test nothing.
#[test]
fn meshes_without_a_scenario_get_no_job_and_no_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let team = tempfile::tempdir().unwrap();
    std::fs::copy(root.join("versions.toml"), team.path().join("versions.toml")).unwrap();
    // The scenario's fixtures, and the manifest the stack applies on Linkerd.
    for fixture in ["base/echo.yaml", "kong/ingress-echo.yaml", "linkerd/kong-ingress-guard.yaml"] {
        let to = team.path().join("fixtures").join(fixture);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root.join("fixtures").join(fixture), to).unwrap();
    }
    std::fs::create_dir_all(team.path().join("scenarios")).unwrap();
    let basic = std::fs::read_to_string(root.join("scenarios/ingress-basic.yaml")).unwrap();
    assert!(basic.contains("meshes: [any]"));
    std::fs::write(
        team.path().join("scenarios/orders-api.yaml"),
        basic.replace("name: ingress-basic", "name: orders-api").replace("meshes: [any]", "meshes: [istio]"),
    )
    .unwrap();
    let here = |c: &mut Command| {
        bare_machine(c);
        c.current_dir(team.path());
    };
    let out = xtask(&["ci-matrix"], here);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let matrix: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let meshes: std::collections::BTreeSet<&str> =
        matrix["include"].as_array().unwrap().iter().filter_map(|e| e["mesh"].as_str()).collect();
    assert_eq!(meshes.into_iter().collect::<Vec<_>>(), ["istio"], "{matrix}");
    let out = xtask(&["e2e", "linkerd", "--dry-run"], here);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no scenario of this project runs on linkerd"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

/// A tree as a config repository holds it: a kind config (as `plan --out` writes one) and a Helm
/// chart with its templates are each skipped with a note saying what to lint instead, and a
/// kustomize directory without kubectl too (never an error, never "nothing to check" with exit
/// 2; with kubectl it is built: harness/tests/kustomize.rs); `lint -` reads standard input and
/// names it `<stdin>`.
#[test]
fn lint_reads_a_real_repository_tree_and_standard_input() {
    let repo = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let path = repo.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "kind/kind-config.yaml",
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n",
    );
    write("chart/Chart.yaml", "apiVersion: v2\nname: orders\nversion: 0.1.0\n");
    write("chart/templates/svc.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\n");
    write("kust/kustomization.yaml", "resources:\n  - cm.yaml\n");
    write("kust/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n");
    let here = |c: &mut Command| {
        c.current_dir(repo.path());
    };
    let out = xtask(&["lint", "."], here);
    let findings = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{findings}{}", stderr(&out));
    assert!(
        findings.contains("a kind cluster config") && findings.contains("template of the Helm chart"),
        "{findings}"
    );
    assert!(!findings.contains("error["), "{findings}");
    // Without kubectl the kustomize directory is not built: a warning says how (a hole in the
    // check, which --deny-warnings fails), nothing was read.
    let out = xtask(&["lint", "kust"], |c| {
        here(c);
        bare_machine(c);
    });
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("nothing was read"), "{}", stderr(&out));
    let note = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(note.contains("warning[kustomize]") && note.contains("no `kubectl` on PATH"), "{note}");
    assert!(note.contains("kubectl kustomize kust | kme2e lint -"), "{note}");
    let strict = xtask(&["lint", "kust", "--deny-warnings"], |c| {
        here(c);
        bare_machine(c);
    });
    assert_eq!(strict.status.code(), Some(1), "an unread overlay fails a strict gate: {}", stderr(&strict));
    let mut child = Command::new(env!("CARGO_BIN_EXE_kme2e"))
        .args(["lint", "-"])
        .current_dir(repo.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ingress = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: orders\nspec:\n  rules:\n    - host: a.example.com\n";
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), ingress.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let findings = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{findings}{}", stderr(&out));
    assert!(findings.contains("warning[ingress-no-class]") && findings.contains("--> <stdin>:4:3"), "{findings}");
}
