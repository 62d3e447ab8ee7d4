use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("/etc/w/warden.toml"), text)
}

fn err_at(text: &str) -> (usize, usize, String) {
    let e = parse(text).expect_err("config should be rejected");
    (e.line, e.col, e.message)
}

const HEAD: &str = "[warden]\ncontrol = \"w.sock\"\n";

#[test]
fn full_example_parses_with_resolved_paths() {
    let c = parse(
        r#"
[warden]
control = "run/warden.sock"
admin = "127.0.0.1:9100"
stop_timeout = "20s"

[[service]]
name = "db"
command = ["sleep", "1000"]
ready = { exec = ["true"] }

[[service]]
name = "web"
command = ["/usr/bin/env", "python3", "-m", "http.server", "8080"]
restart = "on-failure"
after = ["db"]
ready = { http = "http://127.0.0.1:8080/" }
stop_signal = "SIGINT"
stop_timeout = "5s"
backoff = { initial = "1s", max = "30s" }
intensity = { restarts = 5, within = "60s" }
critical = true
listen = [{ name = "http", addr = "127.0.0.1:8080" }]
env = { RUST_LOG = "info" }
working_dir = "srv"
"#,
    )
    .unwrap();
    assert_eq!(c.warden.control, Path::new("/etc/w/run/warden.sock"));
    assert_eq!(c.warden.stop_timeout, Duration::from_secs(20));
    let web = &c.services[1];
    assert_eq!(web.restart, RestartPolicy::OnFailure);
    assert_eq!(web.stop_signal, Signal::Int);
    assert_eq!(web.working_dir, Path::new("/etc/w/srv"));
    assert_eq!(web.intensity, Intensity { max_restarts: 5, period: Duration::from_secs(60) });
    assert!(web.critical);
    assert_eq!(c.graph.start_order(), &[0, 1]);
    assert_eq!(c.services[0].restart, RestartPolicy::Always);
    assert_eq!(c.services[0].working_dir, Path::new("/etc/w/."));
}

#[test]
fn every_error_names_its_line_and_column() {
    let svc = |extra: &str| format!("{HEAD}[[service]]\nname = \"a\"\ncommand = [\"true\"]\n{extra}");
    assert_eq!(err_at(&svc("restrat = \"always\"")).0, 6);
    assert_eq!(err_at(&svc("restart = \"sometimes\"")).0, 6);
    let (line, col, _) = err_at(&svc("after = [\"nope\"]"));
    assert_eq!((line, col), (6, 10));
    assert_eq!(err_at(&svc("stop_timeout = \"soon\"")).0, 6);
    assert_eq!(err_at(&svc("stop_signal = \"SIGFOO\"")).0, 6);
    assert_eq!(err_at(&svc("listen = [{ name = \"x\", addr = \"nowhere\" }]")).0, 6);
    assert_eq!(err_at(&format!("{HEAD}[[service]]\nname = 5\ncommand = [\"true\"]")).0, 4);
    assert_eq!(err_at(&format!("{HEAD}[[service]]\nname = \"a\"\ncommand = []")).0, 5);
    let dup = format!(
        "{HEAD}[[service]]\nname = \"a\"\ncommand = [\"true\"]\n[[service]]\nname = \"a\"\ncommand = [\"true\"]"
    );
    assert_eq!(err_at(&dup).0, 7);
    let cycle = format!(
        "{HEAD}[[service]]\nname = \"a\"\ncommand = [\"true\"]\nafter = [\"b\"]\n[[service]]\nname = \"b\"\ncommand = [\"true\"]\nafter = [\"a\"]"
    );
    let (line, _, msg) = err_at(&cycle);
    assert_eq!((line, msg.as_str()), (6, "dependency cycle: a -> b -> a"));
    assert_eq!(err_at("[warden]\nadmin = \"localhost\"").0, 2);
    assert!(err_at(&svc("ready = { notify = true, exec = [\"x\"] }")).2.contains("exactly one"));
}

#[test]
fn error_display_is_file_line_col() {
    let e = parse("[warden]\nbogus = 1").unwrap_err();
    assert_eq!(e.to_string().split(": ").next(), Some("/etc/w/warden.toml:2:1"));
}
