//! Unattended operation (issue 8): a run killed at many moments and re-run
//! ends exactly where an uninterrupted run does; a second concurrent run is
//! refused; bad configuration exits 2 naming file, key and problem.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use mail_parser::MessageParser;

use crate::common::smtp::{Script, SmtpServer};
use crate::common::{faktura_env, read_parquet_dir, run_args, snapshot};

const AS_OF: &str = "2026-11-20";

/// A generated month with VAT, so a kill can also land while e-invoices are
/// written, and credit notes of its first 30 invoices (in full, or 1.00 of
/// them), so one can land while credit notes are numbered, rendered or sent.
fn generated_month() -> tempfile::TempDir {
    let data = crate::common::generated(40, 1500, 40, 5);
    std::fs::write(
        data.path().join("faktura.toml"),
        "[issuer]\nvat_id = \"NO 123 456 785 MVA\"\ncountry = \"NO\"\n[tax]\nrate = 25\n",
    )
    .unwrap();
    let mut credit_notes = "creditNoteRef,invoiceNumber,date,amount,reason\n".to_string();
    for n in 1..=30 {
        let amount = if n % 2 == 0 { "" } else { "1.00" };
        credit_notes += &format!("R{n},INV-{n:08},{AS_OF},{amount},Correction {n}\n");
    }
    std::fs::write(data.path().join("credit_notes.csv"), credit_notes).unwrap();
    data
}

/// Distinct (Message-ID, recipient) pairs the server received, and the total.
fn messages(server: &SmtpServer) -> (BTreeSet<(String, String)>, usize) {
    let received = server.received();
    let ids = received
        .iter()
        .map(|m| {
            let parsed = MessageParser::default().parse(&m.data).unwrap();
            (parsed.message_id().unwrap().to_string(), m.rcpt[0].clone())
        })
        .collect();
    (ids, received.len())
}

#[test]
fn a_run_killed_at_any_moment_and_rerun_ends_like_an_uninterrupted_one() {
    let data = generated_month();
    let clean_server = SmtpServer::start(Script::default());
    let clean = tempfile::tempdir().unwrap();
    let (code, stderr) = faktura_env(
        &run_args(data.path(), clean.path(), AS_OF),
        &clean_server.env(),
    );
    // Periods ending after the last generated day are held: always exit 3.
    assert_eq!(code, 3, "{stderr}");
    let (clean_messages, _) = messages(&clean_server);
    assert!(clean_messages.len() > 50);
    let credit_notes = read_parquet_dir(&clean.path().join("credit_notes"));
    assert!(credit_notes.iter().map(|b| b.num_rows()).sum::<usize>() >= 20);

    // Kill points in every stage, found by watching what the run has done so far.
    let count = |dir: &Path| crate::common::files_under(dir).len();
    type Milestone = (&'static str, Box<dyn Fn(&Path, &SmtpServer) -> bool>);
    let milestones: Vec<Milestone> = vec![
        ("ingest began", Box::new(|o, _| o.join("usage").exists())),
        (
            "ingest half done",
            Box::new(move |o, _| count(&o.join("usage")) >= 20),
        ),
        (
            "aggregate began",
            Box::new(move |o, _| count(&o.join("aggregates")) >= 5),
        ),
        (
            "decide wrote outputs",
            Box::new(|o, _| o.join("decisions").exists()),
        ),
        (
            "render began",
            Box::new(move |o, _| count(&o.join("pdf")) >= 1),
        ),
        (
            "render half done",
            Box::new(move |o, _| count(&o.join("pdf")) >= 20),
        ),
        (
            "e-invoices half written",
            Box::new(move |o, _| count(&o.join("einvoice")) >= 20),
        ),
        (
            "credit notes recorded",
            Box::new(|o, _| o.join("credit_notes").exists()),
        ),
        (
            "credit notes rendering",
            Box::new(|o, _| {
                crate::common::files_under(&o.join("pdf")).iter().any(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("CN-"))
                })
            }),
        ),
        (
            "send began",
            Box::new(|_, server| !server.received().is_empty()),
        ),
        (
            "send half done",
            Box::new(|_, server| server.received().len() >= 50),
        ),
    ];
    let mut kills = 0;
    for (moment, reached) in &milestones {
        let server = SmtpServer::start(Script::default());
        let out = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_faktura"))
            .args(run_args(data.path(), out.path(), AS_OF))
            .envs(server.env())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + std::time::Duration::from_secs(120);
        while child.try_wait().unwrap().is_none()
            && !reached(out.path(), &server)
            && Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL: no destructor, no cleanup
            kills += 1;
        }
        child.wait().unwrap();
        let (code, stderr) = faktura_env(&run_args(data.path(), out.path(), AS_OF), &server.env());
        // Periods ending after the last generated day are held: always exit 3.
        assert_eq!(code, 3, "{stderr}");

        let at = format!("killed when {moment}");
        for folder in ["usage", "lines", "decisions", "invoices", "credit_notes"] {
            assert_eq!(
                read_parquet_dir(&out.path().join(folder)),
                read_parquet_dir(&clean.path().join(folder)),
                "{folder}, {at}"
            );
        }
        // The same invoice numbers with byte-identical PDFs, and no temporary files.
        assert!(
            files(out.path(), "pdf/") == files(clean.path(), "pdf/"),
            "PDFs, {at}"
        );
        let einvoices = files(clean.path(), "einvoice/");
        assert!(!einvoices.is_empty());
        assert!(
            files(out.path(), "einvoice/") == einvoices,
            "e-invoices, {at}"
        );
        assert!(
            snapshot(out.path()).keys().all(|k| !k.contains(".tmp-")),
            "{at}"
        );
        // Every recipient got their message once; a repeat can only be the
        // unavoidable one (killed after the server accepted, before the ledger
        // recorded it), and it carries the same Message-ID.
        // The SMTP senders work in parallel, so one kill can catch a few of
        // them in that window: at most one repeat per recipient, and no more
        // than the batch being recorded, the queue, and one held by each
        // sender (see `send_pending`).
        let (got, total) = messages(&server);
        assert_eq!(got, clean_messages, "{at}");
        let repeats = total - got.len();
        assert!(
            repeats <= 3 * faktura::deliver::SMTP_CONNECTIONS + 1,
            "{repeats} repeats, {at}"
        );
        let mut seen = std::collections::BTreeMap::<(String, String), usize>::new();
        for m in server.received() {
            let parsed = MessageParser::default().parse(&m.data).unwrap();
            *seen
                .entry((parsed.message_id().unwrap().to_string(), m.rcpt[0].clone()))
                .or_default() += 1;
        }
        assert!(seen.values().all(|n| *n <= 2), "{at}");
    }
    assert!(
        kills >= 6,
        "only {kills} of {} runs were still running when killed",
        milestones.len()
    );
}

#[test]
fn a_run_killed_while_writing_the_outbox_ends_with_each_message_once() {
    // The file transport records a batch as sent only once its `.eml` files
    // are flushed to disk: a kill in between rewrites those files, the same
    // bytes under the same names.
    let data = generated_month();
    let clean = tempfile::tempdir().unwrap();
    let (code, stderr) = faktura_env(&run_args(data.path(), clean.path(), AS_OF), &[]);
    assert_eq!(code, 3, "{stderr}");
    let clean_outbox = files(clean.path(), "outbox/");
    assert!(clean_outbox.len() > 50);
    let mut kills = 0;
    for at_least in [1, clean_outbox.len() / 2] {
        let out = tempfile::tempdir().unwrap();
        let outbox = out.path().join("outbox");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_faktura"))
            .args(run_args(data.path(), out.path(), AS_OF))
            .env_remove("FAKTURA_LOG")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + std::time::Duration::from_secs(120);
        while child.try_wait().unwrap().is_none()
            && crate::common::files_under(&outbox).len() < at_least
            && Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        let (code, stderr) = faktura_env(&run_args(data.path(), out.path(), AS_OF), &[]);
        assert_eq!(code, 3, "{stderr}");
        let at = format!("killed with {at_least}+ files in the outbox");
        assert!(files(out.path(), "outbox/") == clean_outbox, "{at}");
        // Every message is recorded as sent: a third run sends none.
        let (code, stderr) = faktura_env(&run_args(data.path(), out.path(), AS_OF), &[]);
        assert_eq!(code, 3, "{stderr}");
        let sent_earlier = format!(
            "0 sent, 0 failed, 0 refused, {} sent earlier",
            clean_outbox.len()
        );
        assert!(stderr.contains(&sent_earlier), "{at}: {stderr}");
    }
    assert!(kills >= 1, "no run was still running when killed");
}

fn files(dir: &Path, prefix: &str) -> Vec<(String, Vec<u8>)> {
    snapshot(dir)
        .into_iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .collect()
}

#[test]
fn a_second_run_is_refused_while_one_holds_the_lock() {
    let data = crate::common::sample_copy();
    let out = tempfile::tempdir().unwrap();
    let lock_path = out.path().join(".lock");
    std::fs::write(&lock_path, "pid 4242 since 2026-12-03T02:30:00+00:00\n").unwrap();
    let holder = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lock_path)
        .unwrap();
    holder.try_lock().unwrap();
    let (code, stderr) = faktura_env(&run_args(data.path(), out.path(), AS_OF), &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("another faktura run holds"), "{stderr}");
    assert!(
        stderr.contains("pid 4242 since 2026-12-03T02:30:00"),
        "{stderr}"
    );
    assert!(!out.path().join("ledger.sqlite").exists());
    // Released (as the kernel does when the holder dies): the run goes ahead.
    drop(holder);
    let (code, stderr) = faktura_env(&run_args(data.path(), out.path(), AS_OF), &[]);
    assert_eq!(code, 3, "{stderr}");
}

#[test]
fn bad_configuration_exits_2_naming_file_key_and_problem() {
    let data = crate::common::sample_copy();
    let out = data.path().join("out");
    let config = data.path().join("faktura.toml");
    let original = std::fs::read_to_string(&config).unwrap();

    std::fs::write(
        &config,
        original.replace("settle_days = 2", "settle_dayz = 2"),
    )
    .unwrap();
    let (code, stderr) = faktura_env(&run_args(data.path(), &out, AS_OF), &[]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("faktura.toml") && stderr.contains("settle_dayz"),
        "{stderr}"
    );
    assert!(stderr.contains("unknown field"), "{stderr}");

    std::fs::write(
        &config,
        original.replace("transport = \"file\"", "transport = \"pigeon\""),
    )
    .unwrap();
    let (code, stderr) = faktura_env(&run_args(data.path(), &out, AS_OF), &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("pigeon"), "{stderr}");

    std::fs::write(&config, &original).unwrap();
    let (code, stderr) = faktura_env(
        &run_args(data.path(), &out, AS_OF),
        &[("FAKTURA_BILLING_SETTLE_DAYS".into(), "two".into())],
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("FAKTURA_BILLING_SETTLE_DAYS") && stderr.contains("\"two\""),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing under OUT on a configuration error");

    // `faktura config` prints the resolved settings, never the SMTP password.
    let (code, _) = faktura_env(
        &["config", "--data", data.path().to_str().unwrap()],
        &[("FAKTURA_SMTP_PASSWORD".into(), "hunter2".into())],
    );
    assert_eq!(code, 0);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_faktura"))
        .args(["config", "--data", data.path().to_str().unwrap()])
        .env("FAKTURA_SMTP_PASSWORD", "hunter2")
        .env("FAKTURA_MAIL_SMTP_PORT", "2626")
        .output()
        .unwrap();
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(printed.contains("port = 2626"), "{printed}");
    assert!(!printed.contains("hunter2"));
}

/// `faktura --version` names the version and the commit it was built from.
#[test]
fn the_version_names_the_commit_it_was_built_from() {
    let output = crate::common::faktura(&["--version"]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.starts_with(&format!("faktura {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    if let Ok(head) = head
        && head.status.success()
    {
        let head = String::from_utf8(head.stdout).unwrap();
        assert!(
            text.contains(&format!("({})", head.trim())),
            "{text} vs {head}"
        );
    }
}
