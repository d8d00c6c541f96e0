//! A small SMTP server on 127.0.0.1 for the tests: speaks enough RFC 5321
//! for lettre (EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP,
//! QUIT), stores what it accepted, and misbehaves on command: a 451 on the
//! next N DATA commands, a 550 for chosen recipients, or a dropped
//! connection in the middle of a DATA after N accepted messages. With
//! [`Tls`] it speaks TLS (rustls, the library lettre uses) from the first
//! byte or after STARTTLS, and takes AUTH PLAIN only over TLS.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// A message the server accepted.
#[derive(Clone, Debug)]
pub struct Received {
    pub rcpt: Vec<String>,
    pub data: Vec<u8>,
    /// Whether it came over TLS.
    pub tls: bool,
    /// The user of AUTH PLAIN before it, and the password given.
    pub auth: Option<(String, String)>,
}

/// How the server speaks TLS.
#[derive(Clone, Debug)]
pub enum Tls {
    /// Offers STARTTLS after EHLO.
    Starttls(Arc<rustls::ServerConfig>),
    /// TLS from the first byte (SMTPS).
    Wrapper(Arc<rustls::ServerConfig>),
}

/// How the server misbehaves.
#[derive(Debug, Default)]
pub struct Script {
    /// Answer 451 to this many DATA commands (then accept).
    pub temp_fail_data: usize,
    /// Answer 550 to RCPT TO for these addresses.
    pub reject_rcpt: Vec<String>,
    /// Keep only the envelope of accepted messages (for benchmarks).
    pub discard_bodies: bool,
    /// After this many DATA commands, drop the connection in the middle of
    /// every DATA, without answering, until [`SmtpServer::heal`].
    pub drop_after: Option<usize>,
    /// A slow relay, one message at a time: the n-th DATA is accepted n
    /// times this long after it began.
    pub delay_data: Option<std::time::Duration>,
    /// TLS, if any (plain SMTP without).
    pub tls: Option<Tls>,
}

#[derive(Default)]
struct State {
    script: Script,
    received: Vec<Received>,
    connections: usize,
    data_begun: usize,
}

pub struct SmtpServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl SmtpServer {
    pub fn start(script: Script) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            script,
            ..Default::default()
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let state = shared.clone();
                state.lock().unwrap().connections += 1;
                std::thread::spawn(move || {
                    let _ = serve(stream, &state);
                });
            }
        });
        SmtpServer { addr, state }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Stops dropping connections.
    pub fn heal(&self) {
        self.state.lock().unwrap().script.drop_after = None;
    }

    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    /// Environment for `faktura` to send through this server.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("FAKTURA_MAIL_TRANSPORT".into(), "smtp".into()),
            ("FAKTURA_MAIL_SMTP_HOST".into(), "127.0.0.1".into()),
            (
                "FAKTURA_MAIL_SMTP_PORT".into(),
                self.addr.port().to_string(),
            ),
            ("FAKTURA_MAIL_SMTP_SECURITY".into(), "none".into()),
            ("FAKTURA_MAIL_SMTP_TIMEOUT_SECS".into(), "5".into()),
        ]
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let tls = state.lock().unwrap().script.tls.clone();
    match tls {
        Some(Tls::Wrapper(config)) => {
            let connection =
                rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
            let stream = rustls::StreamOwned::new(connection, stream);
            session(stream, state, Session::SecureFromStart).map(drop)
        }
        Some(Tls::Starttls(config)) => match session(stream, state, Session::OffersStarttls)? {
            Some(stream) => {
                let connection =
                    rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
                let stream = rustls::StreamOwned::new(connection, stream);
                session(stream, state, Session::Secure).map(drop)
            }
            None => Ok(()),
        },
        None => session(stream, state, Session::Plain).map(drop),
    }
}

/// Where a session stands on TLS.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Session {
    Plain,
    OffersStarttls,
    /// TLS from the first byte: greets inside TLS.
    SecureFromStart,
    /// After STARTTLS: no second greeting.
    Secure,
}

/// One SMTP session over `stream`; returns the stream when the client
/// asked for STARTTLS (answered, to be wrapped in TLS by the caller).
fn session<S: Read + Write>(
    stream: S,
    state: &Mutex<State>,
    mode: Session,
) -> std::io::Result<Option<S>> {
    let mut reader = BufReader::new(stream);
    let reply = |reader: &mut BufReader<S>, text: &[u8]| -> std::io::Result<()> {
        reader.get_mut().write_all(text)?;
        reader.get_mut().flush()
    };
    if mode != Session::Secure {
        reply(&mut reader, b"220 faktura-test ESMTP\r\n")?;
    }
    let secure = matches!(mode, Session::Secure | Session::SecureFromStart);
    let mut rcpt = Vec::new();
    let mut auth = None;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let command = line.trim_end().to_string();
        let upper = command.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            let extensions: &[u8] = match mode {
                Session::Plain => b"250-faktura-test\r\n250 8BITMIME\r\n",
                Session::OffersStarttls => b"250-faktura-test\r\n250-8BITMIME\r\n250 STARTTLS\r\n",
                Session::Secure | Session::SecureFromStart => {
                    b"250-faktura-test\r\n250-8BITMIME\r\n250 AUTH PLAIN\r\n"
                }
            };
            reply(&mut reader, extensions)?;
        } else if upper == "STARTTLS" && mode == Session::OffersStarttls {
            reply(&mut reader, b"220 2.0.0 ready to start TLS\r\n")?;
            return Ok(Some(reader.into_inner()));
        } else if upper.starts_with("AUTH PLAIN") && secure {
            auth = plain_credentials(command[10..].trim());
            reply(&mut reader, b"235 2.7.0 authenticated\r\n")?;
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            reply(&mut reader, b"250 ok\r\n")?;
        } else if upper.starts_with("MAIL FROM:") {
            rcpt.clear();
            reply(&mut reader, b"250 ok\r\n")?;
        } else if upper.starts_with("RCPT TO:") {
            let address = command[8..]
                .trim()
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or("")
                .to_lowercase();
            if state.lock().unwrap().script.reject_rcpt.contains(&address) {
                reply(&mut reader, b"550 5.1.1 no such mailbox\r\n")?;
            } else {
                rcpt.push(address);
                reply(&mut reader, b"250 ok\r\n")?;
            }
        } else if upper == "DATA" {
            reply(&mut reader, b"354 go ahead\r\n")?;
            // Counted per DATA begun, so that parallel senders see the same cut.
            let (drop_now, delay) = {
                let mut s = state.lock().unwrap();
                s.data_begun += 1;
                let begun = s.data_begun;
                let delay = s.script.delay_data.map(|d| d * begun as u32);
                (s.script.drop_after.is_some_and(|n| begun > n), delay)
            };
            let Some(data) = read_data(&mut reader)? else {
                return Ok(None);
            };
            if drop_now {
                // Gone without a word, as a crashed server or a cut cable.
                return Ok(None);
            }
            if let Some(delay) = delay {
                std::thread::sleep(delay);
            }
            let answer: &[u8] = {
                let mut s = state.lock().unwrap();
                if s.script.temp_fail_data > 0 {
                    s.script.temp_fail_data -= 1;
                    b"451 4.3.0 try again later\r\n"
                } else {
                    let data = if s.script.discard_bodies {
                        Vec::new()
                    } else {
                        data
                    };
                    s.received.push(Received {
                        rcpt: rcpt.clone(),
                        data,
                        tls: secure,
                        auth: auth.clone(),
                    });
                    b"250 2.0.0 queued\r\n"
                }
            };
            reply(&mut reader, answer)?;
        } else if upper.starts_with("RSET") {
            rcpt.clear();
            reply(&mut reader, b"250 ok\r\n")?;
        } else if upper.starts_with("QUIT") {
            reply(&mut reader, b"221 bye\r\n")?;
            return Ok(None);
        } else {
            reply(&mut reader, b"502 5.5.2 command not implemented\r\n")?;
        }
    }
}

/// The user and password of an AUTH PLAIN argument (`\0user\0password`,
/// base64).
fn plain_credentials(argument: &str) -> Option<(String, String)> {
    let bytes = base64_decode(argument)?;
    let mut parts = bytes.split(|b| *b == 0).skip(1);
    let user = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let password = String::from_utf8(parts.next()?.to_vec()).ok()?;
    Some((user, password))
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|c| *c != b'=') {
        let value = ALPHABET.iter().position(|a| *a == c)? as u32;
        buffer = (buffer << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// Reads a DATA body up to the lone `.` line, undoing dot-stuffing; `None`
/// when the client went away first (a real server discards such a message).
fn read_data(reader: &mut impl BufRead) -> std::io::Result<Option<Vec<u8>>> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(Some(data));
        }
        let unstuffed = if line.starts_with(b"..") {
            &line[1..]
        } else {
            &line[..]
        };
        data.extend_from_slice(unstuffed);
    }
}
