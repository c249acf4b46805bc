use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const REFUSED: &str = r#"
mesh: istio
vars: {namespace: t-1}
step:
  from-pod: {client: {meshed: false}, url: "http://echo.{{ namespace }}.svc.cluster.local/", expect: {refused: true}, converge: {passes: 2}}
answers:
  - {error: reset}
  - {status: 403, headers: {content-type: text/plain}, body: "RBAC: access denied"}
verdict: pass
"#;

#[test]
fn a_transcript_replays_to_its_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "t.yaml", REFUSED);
    let FileOutcome::Matches { expected, detail } = replay_file(&path) else { panic!("{:?}", replay_file(&path)) };
    assert_eq!(expected, Verdict::Pass);
    assert!(detail.contains("Istio RBAC"), "{detail}");
    // The template variable reached the step.
    let Step::FromPod(s) = load(&path).unwrap().step else { panic!() };
    assert_eq!(s.url, "http://echo.t-1.svc.cluster.local/");
}

#[test]
fn a_wrong_expected_verdict_is_reported_as_a_difference() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "t.yaml", &REFUSED.replace("verdict: pass", "verdict: fail"));
    assert!(matches!(replay_file(&path), FileOutcome::Differs { expected: Verdict::Fail, got: Verdict::Pass, .. }));
}

#[test]
fn answers_running_out_leave_the_step_undecided() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        REFUSED.replace("  - {status: 403, headers: {content-type: text/plain}, body: \"RBAC: access denied\"}\n", "");
    let path = write(dir.path(), "t.yaml", &text.replace("verdict: pass", "verdict: fail"));
    let FileOutcome::Matches { detail, .. } = replay_file(&path) else { panic!("{:?}", replay_file(&path)) };
    assert!(detail.starts_with("undecided after 1 answer(s)"), "{detail}");
    assert!(detail.contains("needs 2 consecutive passes"), "{detail}");
}

#[test]
fn bad_transcripts_are_unreadable_with_a_location() {
    let dir = tempfile::tempdir().unwrap();
    let unknown = write(dir.path(), "unknown.yaml", &REFUSED.replace("verdict: pass", "verdict: pass\nexpected: pass"));
    let FileOutcome::Unreadable(e) = replay_file(&unknown) else { panic!() };
    assert!(e.to_string().contains("unknown field `expected`"), "{e}");
    let both = write(dir.path(), "both.yaml", &REFUSED.replace("{error: reset}", "{error: reset, status: 200}"));
    let FileOutcome::Unreadable(e) = replay_file(&both) else { panic!() };
    assert!(e.to_string().contains("answers[0]: an answer has either `status` or `error`"), "{e}");
    let kind = write(dir.path(), "kind.yaml", &REFUSED.replace("{error: reset}", "{error: eaten}"));
    assert!(matches!(replay_file(&kind), FileOutcome::Unreadable(ReplayError::Yaml { .. })));
    let var = write(dir.path(), "var.yaml", &REFUSED.replace("{{ namespace }}", "{{ namespaec }}"));
    let FileOutcome::Unreadable(e) = replay_file(&var) else { panic!() };
    assert!(e.to_string().contains("namespace"), "{e}");
    let wait = write(
        dir.path(),
        "wait.yaml",
        "mesh: none\nstep:\n  wait: {resource: {apiVersion: v1, kind: Pod, name: x}, condition: ready}\nanswers: []\nverdict: pass\n",
    );
    assert!(matches!(replay_file(&wait), FileOutcome::Unreadable(ReplayError::Unsupported { kind: "wait", .. })));
}

/// Transcripts are attached to bug reports: credentials never reach them.
#[test]
fn recorded_answers_hold_no_credentials() {
    let echo = r#"{"path":"/secured/valid","host":"h","method":"GET","headers":{"Authorization":["Bearer eyJ.secret.sig"],"X-Token":["t0k"],"X-Kong-Request-Id":["1"]},"namespace":"ns","pod":"echo-v1-a"}"#;
    let headers =
        BTreeMap::from([("set-cookie".to_owned(), crate::scenario::OneOrMany::One("session=abc".to_owned()))]);
    let observation =
        Answer { status: Some(200), headers, body: echo.into(), ..Answer::default() }.observation().unwrap();
    let recorded = serde_saphyr::to_string(&Answer::record(&observation, &["x-token".to_owned()])).unwrap();
    for secret in ["eyJ.secret.sig", "t0k", "session=abc"] {
        assert!(!recorded.contains(secret), "{recorded}");
    }
    assert!(recorded.contains("[redacted]") && recorded.contains("x-kong-request-id"), "{recorded}");
}

/// What a live run records replays to the verdict it reached.
#[test]
fn recorded_answers_round_trip() {
    let echo = crate::probe::observation::tests::ECHO_BODY;
    let observation = Answer { status: Some(200), body: echo.into(), version: Some("v1".into()), ..Answer::default() }
        .observation()
        .unwrap();
    let step: HttpStep = crate::yaml::from_str(
        "{request: {path: /hello}, expect: {status: 200, backend: {version: v1}, mtls: {client: kong/kong-gateway}}, converge: {passes: 1}}",
    )
    .unwrap();
    let recorded = Recorded {
        mesh: Mesh::Istio,
        trace_id: None,
        backend_proven: false,
        step: RecordedStep::Http(&step),
        answers: vec![Answer::record(&observation, &[])],
        load: None,
        verdict: Verdict::Pass,
    };
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "recorded.yaml", &serde_saphyr::to_string(&recorded).unwrap());
    assert!(
        matches!(replay_file(&path), FileOutcome::Matches { expected: Verdict::Pass, .. }),
        "{:?}",
        replay_file(&path)
    );
}

/// A trace transcript without the id the harness sent cannot be judged: its backend headers and
/// the collector's spans are compared with that id. Unreadable, not failed.
#[test]
fn a_trace_transcript_needs_its_trace_id() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/transcripts/linkerd");
    let text = std::fs::read_to_string(root.join("trace-w3c-kong-and-proxies.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "t.yaml", &text);
    assert!(matches!(replay_file(&path), FileOutcome::Matches { expected: Verdict::Pass, .. }));
    let without = text.lines().filter(|l| !l.starts_with("trace_id:")).collect::<Vec<_>>().join("\n");
    let path = write(dir.path(), "t.yaml", &without);
    let err = judge(&load(&path).unwrap(), &path).unwrap_err().to_string();
    assert!(err.ends_with("a trace transcript needs the `trace_id` the harness sent"), "{err}");
}
