//! Each subcommand on a small run against real servers: the numbers must be sane (everything
//! delivered, no errors). Figures such as requests/s or latency are reported, never asserted.

mod common;

use common::{Server, loadgen, loadgen_json};
use serde_json::Value;

fn assert_no_errors(report: &Value, field: &str) {
    assert_eq!(
        report[field],
        serde_json::json!({}),
        "{field} in {report:#}"
    );
}

#[test]
fn rest_get_and_post_on_the_embedded_api_server() {
    let server = Server::embedded_api();
    let get = loadgen_json(&[
        "rest",
        "--url",
        &server.url,
        "--token",
        &server.token,
        "--concurrency",
        "4",
        "--requests",
        "300",
        "--warmup",
        "200ms",
        "--duration",
        "30s",
    ]);
    assert_eq!(get["ok"], 300, "{get:#}");
    assert_eq!(get["error_total"], 0, "{get:#}");
    assert_eq!(get["latency"]["count"], 300);
    assert!(get["requests_per_second"].as_f64().unwrap() > 0.0);

    let post = loadgen_json(&[
        "rest",
        "--url",
        &server.url,
        "--token",
        &server.token,
        "--method",
        "post",
        "--concurrency",
        "4",
        "--requests",
        "100",
        "--warmup",
        "0s",
        "--duration",
        "30s",
    ]);
    assert_eq!(post["ok"], 100, "{post:#}");
    assert_eq!(post["error_total"], 0, "{post:#}");
    assert_eq!(post["method"], "POST");
}

#[test]
fn rest_counts_http_errors_by_status() {
    let server = Server::embedded_api();
    let report = loadgen_json(&[
        "rest",
        "--url",
        &server.url,
        "--token",
        &server.token,
        "--path",
        "/api/nowhere",
        "--concurrency",
        "2",
        "--requests",
        "20",
        "--warmup",
        "0s",
        "--duration",
        "30s",
    ]);
    assert_eq!(report["ok"], 0, "{report:#}");
    assert_eq!(report["errors"]["status_404"], 20, "{report:#}");
}

#[test]
fn rest_on_the_ceiling_server() {
    let server = Server::ceiling();
    let report = loadgen_json(&[
        "rest",
        "--url",
        &server.url,
        "--path",
        "/",
        "--concurrency",
        "8",
        "--requests",
        "2000",
        "--warmup",
        "0s",
        "--duration",
        "30s",
    ]);
    assert_eq!(report["ok"], 2000, "{report:#}");
    assert_eq!(report["error_total"], 0, "{report:#}");
}

fn fanout(transport: &str) {
    let server = Server::embedded_api();
    let pid = server.pid().to_string();
    let report = loadgen_json(&[
        "fanout",
        "--url",
        &server.url,
        "--token",
        &server.token,
        "--transport",
        transport,
        "--clients",
        "20",
        "--messages",
        "5",
        "--interval",
        "20ms",
        "--drain",
        "20s",
        "--server-pid",
        &pid,
    ]);
    assert_eq!(report["connected"], 20, "{report:#}");
    assert_eq!(report["published"], 5, "{report:#}");
    assert_no_errors(&report, "publish_errors");
    let deliveries = &report["deliveries"];
    assert_eq!(deliveries["expected"], 100, "{report:#}");
    assert_eq!(deliveries["delivered"], 100, "{report:#}");
    assert_eq!(deliveries["delivered_ratio"], 1.0, "{report:#}");
    assert_eq!(deliveries["duplicates"], 0, "{report:#}");
    assert_eq!(deliveries["latency"]["count"], 100);
    assert_eq!(report["clients_lost"], 0, "{report:#}");
    let usage = &report["server"];
    assert_eq!(usage["pid"], server.pid(), "{report:#}");
    assert!(
        usage["rss_connected_kib"].as_u64().unwrap() > 0,
        "{report:#}"
    );
}

#[test]
fn fanout_over_plain_websocket() {
    fanout("ws");
}

#[test]
fn fanout_over_server_sent_events() {
    fanout("sse");
}

#[test]
fn fanout_over_socket_io() {
    fanout("socketio");
}

#[test]
fn fanout_over_socket_io_upgraded_from_long_polling() {
    fanout("socketio-upgrade");
}

#[test]
fn e2e_in_embedded_mode_sees_every_notification_delivered() {
    let server = Server::embedded_api();
    for transport in ["ws", "sse", "socketio"] {
        let report = loadgen_json(&[
            "e2e",
            "--url",
            &server.url,
            "--token",
            &server.token,
            "--transport",
            transport,
            "--rate",
            "50",
            "--duration",
            "1s",
            "--clients",
            "2",
            "--drain",
            "20s",
        ]);
        assert_eq!(report["connected"], 2, "{report:#}");
        assert_eq!(report["created"], 50, "{report:#}");
        assert_no_errors(&report, "post_errors");
        assert_eq!(report["not_sent"], 0, "{report:#}");
        assert_eq!(report["failed"], 0, "{report:#}");
        let deliveries = &report["deliveries"];
        assert_eq!(deliveries["expected"], 100, "{report:#}");
        assert_eq!(deliveries["delivered"], 100, "{transport}: {report:#}");
        assert_eq!(deliveries["duplicates"], 0, "{report:#}");
    }
}

#[test]
fn tables_for_people() {
    let server = Server::ceiling();
    let output = loadgen(&[
        "rest",
        "--url",
        &server.url,
        "--path",
        "/",
        "--concurrency",
        "1",
        "--requests",
        "10",
        "--warmup",
        "0s",
    ]);
    assert!(output.status.success());
    let table = String::from_utf8_lossy(&output.stdout);
    for row in ["requests/s", "errors      none", "latency     p50"] {
        assert!(table.contains(row), "no {row:?} in:\n{table}");
    }
}

#[test]
fn refuses_targets_that_are_not_loopback() {
    for args in [
        &["rest", "--url", "http://10.1.2.3:3001"][..],
        &[
            "fanout",
            "--url",
            "http://192.0.2.1:3001",
            "--transport",
            "ws",
        ],
        &["e2e", "--url", "http://[2001:db8::1]:3001"],
        &["ceiling-server", "--bind", "0.0.0.0"],
    ] {
        let output = loadgen(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("not a loopback address"),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("--allow-remote"), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn bad_flags_are_usage_errors() {
    for args in [
        &["rest", "--duration", "10"][..],
        &["rest", "--concurrency", "0"],
        &["fanout", "--transport", "carrier-pigeon"],
        &["fanout", "--transport", "ws", "--interval", "0ms"],
        &["e2e", "--rate", "0"],
    ] {
        let output = loadgen(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(!output.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn the_floor_server_writes_every_frame_to_every_client() {
    let port = common::free_port().to_string();
    let server = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["floor-server", "--port", &port, "--clients", "20"])
        .args([
            "--messages",
            "3",
            "--interval",
            "10ms",
            "--size",
            "100",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starting floor-server");
    // The client waits for the server to listen.
    let client = loadgen(&["floor-client", "--port", &port, "--clients", "20"]);
    assert!(client.status.success(), "{client:?}");
    assert!(
        String::from_utf8_lossy(&client.stderr).contains("20 connections read 6000 bytes"),
        "{client:?}"
    );
    let output = server.wait_with_output().expect("floor-server");
    assert!(output.status.success());
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(report["writes"], 60, "{report:#}");
    assert_eq!(report["would_block"], 0, "{report:#}");
    assert_eq!(report["failed"], 0, "{report:#}");
    assert!(report["cpu_us_per_write"].as_f64().unwrap() >= 0.0);
}
